"""The Markdown of ``glimpse bench leaderboard`` (:mod:`train.leaderboard`): a header with
the protocol and the command that regenerates it, one table per env, the training budgets
and commands of the trained entries, and the commands of the entries not yet measured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: How the paper's rows are marked.
PAPER_MARK = "paper, not measured here"
#: Kind of the entries read from ``--entries`` (several training seeds).
TRAINED = "measured, training seeds"
#: The protocol's documentation in this project's source tree.
BENCH_DOC = Path(__file__).resolve().parents[1] / "docs" / "bench.md"


def bench_doc_link(out: Path) -> str:
    """The link from a leaderboard written in ``out`` to ``docs/bench.md`` (relative, POSIX
    separators; ``bench.md`` for the project's own ``docs/leaderboard.md``)."""
    return Path(os.path.relpath(BENCH_DOC, Path(out).resolve())).as_posix()


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _row(entry: dict[str, Any]) -> str:
    if entry["kind"] == "measured":
        r = entry["result"]
        low, high = r["accuracy_interval"]
        params = "-" if r["n_parameters"] is None else f"{r['n_parameters']:,}"
        cells = [
            f"{entry['entry']} (`{entry['spec']}`)",
            "measured",
            f"{_pct(r['accuracy'])} [{_pct(low)}, {_pct(high)}]",
            _pct(r["error_rate"]),
            _pct(r["anytime_mean"]),
            _pct(r["on_digit_share"], 1),
            params,
        ]
    elif entry["kind"] == "paper":
        cells = [
            entry["entry"].removeprefix("paper: "),
            f"{PAPER_MARK} ({entry['source'].split(',')[0]})",
            f"{100 - entry['error_percent']:.2f}",
            f"{entry['error_percent']:.2f}",
            "-",
            "-",
            "-",
        ]
    elif entry["kind"] == TRAINED:
        low, high = entry["iqm_interval"]
        budget = f", {entry['training']['short']}" if entry["training"] else ""
        if entry.get("full_image") and "full image" not in budget:
            budget += "; full image, not glimpse-limited"
        params = "-" if entry["n_parameters"] is None else f"{entry['n_parameters']:,}"
        n = entry["seeds"]
        accuracy = (
            f"mean {_pct(entry['mean'])}; IQM {_pct(entry['iqm'])} [{_pct(low)}, {_pct(high)}]"
            if n > 1
            else f"{_pct(entry['mean'])} (one seed: no interval over seeds)"
        )
        cells = [
            entry["entry"],
            f"measured, {n} training seed{'s' if n != 1 else ''}{budget}",
            accuracy,
            _pct(1.0 - entry["mean"]),
            _pct(entry["anytime_mean"]),
            _pct(entry["on_digit_share"], 1),
            params,
        ]
    else:
        cells = [entry["entry"], "not yet measured", "-", "-", "-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def markdown_leaderboard(report: dict[str, Any], bench_link: str = "bench.md") -> str:
    """``leaderboard.md``: a header, one table per env, the commands of the pending entries.

    Args:
        report: the leaderboard (``leaderboard.json``).
        bench_link: the link to ``docs/bench.md`` from where the file is written.
    """
    n = report["n_images"]
    images = "all 10,000" if n is None else f"the first {n}"
    machine = report["machine"].get("model") or "unknown CPU"
    lines = [
        "# GlimpseBench leaderboard",
        "",
        f"Protocol {report['protocol']}, deterministic actions, reset seed {report['seed']}, "
        f"{images} test canvases of each env; accuracy with its 95% Wilson interval over "
        f"images (see [bench.md]({bench_link})). Regenerate with",
        "",
        f"    {report['command']}",
        "",
        f"Measured on {machine} ({report['machine'].get('logical_cpus')} logical CPUs), "
        f"glimpse-env {report['package_version']}.",
        "",
        "Kinds: **measured** here by GlimpseBench; **measured, N training seeds**: one "
        "model per training seed, each measured by GlimpseBench (budgets and commands below); "
        "**full image, not glimpse-limited**: supervised baselines that see the whole canvas; "
        "**paper, not measured here**: the test "
        f"error reported by {report['paper_source']} (accuracy = 100 - error; the paper gives "
        "no interval, anytime, glimpse or parameter figures; its FC and convolutional rows "
        "are full-image baselines, not glimpse-limited); **not yet measured**: entries that "
        "need training, with their commands below. Chance looks at uniformly random places "
        "and names a uniformly random class (expected accuracy 10%).",
    ]
    for env_id, env in report["envs"].items():
        lines += [
            "",
            f"## {env_id}",
            "",
            "| entry | kind | accuracy % [95% Wilson] | test error % | anytime mean % | "
            "on digit % | parameters |",
            "|---|---|---|---:|---:|---:|---:|",
            *(_row(e) for e in env["entries"]),
        ]
    lines += _trained_section(report) + _pending_section(report)
    return "\n".join(lines).rstrip("\n") + "\n"


def _trained_section(report: dict[str, Any]) -> list[str]:
    """The budget and command of every trained entry."""
    trained = [
        (env_id, e)
        for env_id, env in report["envs"].items()
        for e in env["entries"]
        if e["kind"] == TRAINED
    ]
    if not trained:
        return []
    lines = [
        "",
        "## Trained entries: budget and commands",
        "",
        "Each trained entry is one model per training seed, each benchmarked as above "
        "(`glimpse bench --policy RUN --env ENV --label LABEL --out DIR`), then grouped by "
        "label: the accuracy cell gives the mean over training seeds and the IQM with its "
        "stratified-bootstrap 95% interval over them (rliable, as `glimpse bench compare`); "
        "the other cells are means over seeds. "
        + (
            "**Short, equal budgets, not the paper's**: each RAM and baseline run sees "
            "250,000 training images (5 epochs of batches of 64), each PPO run the same 1.75M "
            "env steps (250,000 episodes of 7 glimpses), so these entries compare with each "
            "other, not with the shipped models or the paper."
            if all(e["training"] and e["training"].get("standard") for _, e in trained)
            else "**The budgets differ** (see each entry below): compare entries trained "
            "for the same budget only."
        )
        + " Full-image baselines see the whole canvas: they are not glimpse-limited.",
        "",
    ]
    for env_id, e in trained:
        t = e["training"]
        seeds = ", ".join(map(str, e["training_seeds"]))
        if t is None:
            lines.append(f"- {env_id}, {e['entry']} (seeds {seeds}): not a run of glimpse train")
            continue
        lines += [
            f"- {env_id}, {e['entry']}: {t['budget']}; training seeds S = {seeds}:",
            "",
            f"      {t['command']}",
            "",
        ]
    return lines


def _pending_section(report: dict[str, Any]) -> list[str]:
    """The command of every entry not yet measured, once per entry, with its envs."""
    pending: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for env_id, env in report["envs"].items():
        for e in env["entries"]:
            if e["kind"] == "not yet measured":
                pending.setdefault(e["entry"], (e, []))[1].append(env_id)
    if not pending:
        return []
    lines = [
        "",
        "## Not yet measured: the commands",
        "",
        "Each needs training (`S` = 0..4, the training seeds; `glimpse bench compare` "
        "then gives IQM, bootstrap intervals and the probability of improvement). Shown "
        "for the first env it is missing on; the others differ only in `--env` and the "
        "folders.",
        "",
    ]
    for name, (e, env_ids) in pending.items():
        lines += [
            f"- {name} ({e['why']}); not yet measured on {', '.join(env_ids)}:",
            "",
            f"      {e['command']}",
            "",
        ]
    return lines
