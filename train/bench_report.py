"""Reading, printing and comparing ``glimpse bench`` results (``result.json``).

:func:`read_report` reads one; :func:`summary_line` is the line ``glimpse bench`` prints
per env; :func:`markdown_table` is ``result.md`` and the table of ``glimpse bench compare``
(:func:`run_compare`), one row per (result, env), a full-image entry (a supervised baseline,
``full_image`` true: not glimpse-limited) marked, with ``-`` for what it does not have
(glimpses, anytime accuracy, where it looks). Results sharing a ``--label`` are the
training seeds of one entry: :func:`seed_intervals` and :func:`seed_statistics` give their
IQM and mean with stratified-bootstrap 95% intervals and the probability of improvement
between entries, from ``rliable`` (the ``bench`` extra). Such results must have been
measured alike (:data:`POOLED_KEYS`: :func:`check_pooled`); :func:`pooled_note` says which
runs each pooled row holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from train.errors import GlimpseError, UsageError

__all__ = [
    "FULL_IMAGE_MARK",
    "FULL_IMAGE_NOTE",
    "POOLED_KEYS",
    "RESULT_FILE",
    "check_pooled",
    "full_image_name",
    "markdown_table",
    "pooled_note",
    "read_report",
    "run_compare",
    "seed_intervals",
    "seed_statistics",
    "summary_line",
]

RESULT_FILE = "result.json"
_EXTRA_HINT = "pip install 'glimpse-env[bench]'"
#: What marks a full-image entry in the tables, and the note under a table that has one.
FULL_IMAGE_MARK = "(full image)"
FULL_IMAGE_NOTE = (
    f"{FULL_IMAGE_MARK}: a supervised baseline that classifies the whole canvas in one pass, "
    "not glimpse-limited: no glimpses, anytime accuracy or locations (-); episodes/s are "
    "images/s."
)
#: What results pooled as the training seeds of one entry (same label and env) must share.
POOLED_KEYS = ("protocol", "split", "mode", "n_images")


def read_report(path: Path) -> dict[str, Any]:
    """A ``result.json`` written by ``glimpse bench``.

    Raises:
        GlimpseError: if it is missing, not JSON or not a bench result.
    """
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        raise GlimpseError(f"{path} not found; give a result.json of 'glimpse bench' or its folder")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GlimpseError(f"{path} is not valid JSON ({exc}); rerun glimpse bench") from exc
    if not isinstance(report, dict) or "results" not in report or "protocol" not in report:
        raise GlimpseError(f"{path} is not a result of 'glimpse bench' (no protocol/results)")
    return report


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _interval(entry: dict[str, Any]) -> str:
    low, high = entry["accuracy_interval"]
    return f"{_percent(entry['accuracy'])} [{_percent(low)}, {_percent(high)}]"


def _glimpses(entry: dict[str, Any]) -> str:
    """Mean glimpses per image (``-`` for a full-image entry, and in results written before
    it was measured)."""
    value = entry.get("mean_glimpses")
    return "-" if value is None else f"{value:.2f}"


def _curve(entry: dict[str, Any], sep: str) -> str:
    """The anytime curve in percent (``-`` when there is none: a full-image entry)."""
    curve = entry.get("anytime_accuracy") or []
    return sep.join(_percent(a, 1) for a in curve) if curve else "-"


def summary_line(entry: dict[str, Any]) -> str:
    """The line ``glimpse bench`` prints for one env's result (a ``Result.to_dict()``)."""
    head = f"accuracy {_interval(entry)}% (95% Wilson over {entry['n_images']:,} images), "
    speed = f"{entry['wall_seconds']:.1f} s ({entry['episodes_per_second']:.0f} "
    if entry.get("full_image"):
        return f"{head}full image (not glimpse-limited), {speed}images/s)"
    return (
        f"{head}{_glimpses(entry)} glimpses per image, "
        f"anytime [{_curve(entry, ', ')}]% mean {_percent(entry.get('anytime_mean'))}%, "
        f"{speed}episodes/s)"
    )


def full_image_name(name: str) -> str:
    """How tables name a full-image entry: ``name`` with :data:`FULL_IMAGE_MARK` after it,
    unless it already says "full image" (any case)."""
    return name if "full image" in name.lower() else f"{name} {FULL_IMAGE_MARK}"


def markdown_table(reports: Sequence[dict[str, Any]]) -> str:
    """One row per (report, env): accuracy with its interval, anytime, where it looks, cost.

    A full-image entry is named by :func:`full_image_name`, has ``-`` for glimpses,
    anytime accuracy and locations, and :data:`FULL_IMAGE_NOTE` under the table.
    """
    lines = [
        "| entry | env | mode | images | accuracy % [95% Wilson] | glimpses per image | "
        "anytime mean % | anytime curve % | on digit % | first glimpse to digit (px) | "
        "parameters | episodes/s |",
        "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    full_image = False
    for report in reports:
        for env_id, e in report["results"].items():
            name = report.get("label", report.get("policy"))
            if e.get("full_image"):
                name, full_image = full_image_name(name), True
            first = e.get("first_glimpse_distance_px")
            lines.append(
                f"| {name} | {env_id} | {e['mode']} | "
                f"{e['n_images']} | {_interval(e)} | {_glimpses(e)} | "
                f"{_percent(e.get('anytime_mean'))} | {_curve(e, ' ')} | "
                f"{_percent(e.get('on_digit_share'), 1)} | "
                f"{'-' if first is None else f'{first:.1f}'} | "
                f"{e['n_parameters'] if e.get('n_parameters') is not None else '-'} | "
                f"{e['episodes_per_second']:.0f} |"
            )
    if full_image:
        lines += ["", FULL_IMAGE_NOTE]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- compare
def run_compare(args: argparse.Namespace) -> int:
    """``glimpse bench compare``: the side-by-side table, then, for entries with several
    results (training seeds), their bootstrap statistics and which runs each pools.

    Raises:
        UsageError: if results pooled under one (label, env) were measured differently
            (:func:`check_pooled`); nothing is printed then.
        GlimpseError: if some entry pools several results and rliable is not installed
            (checked before anything is printed).
    """
    files = [Path(p) for p in args.results]
    reports = [read_report(f) for f in files]
    groups = _groups(reports, files)
    check_pooled(groups)
    seeded = {key: members for key, members in groups.items() if len(members) > 1}
    if seeded:
        _rliable()  # before printing anything: no table and then an error
    print(markdown_table(reports), end="")
    if seeded:
        accuracies = {
            key: [e["accuracy"] for _, e, _ in members] for key, members in seeded.items()
        }
        print()
        print(seed_statistics(accuracies, args.reps), end="")
        print()
        print(pooled_note(seeded), end="")
    return 0


#: One result of a compare: ``(report, its entry for the env, the file it came from)``.
_Member = tuple[dict[str, Any], dict[str, Any], Path]


def _groups(
    reports: Sequence[dict[str, Any]], files: Sequence[Path]
) -> dict[tuple[str, str], list[_Member]]:
    """The results of ``reports`` by ``(label, env)`` (label: ``--label``, else the spec)."""
    groups: dict[tuple[str, str], list[_Member]] = {}
    for report, file in zip(reports, files, strict=True):
        label = report.get("label") or report["policy"]
        for env_id, entry in report["results"].items():
            groups.setdefault((label, env_id), []).append((report, entry, file))
    return groups


def _measured(report: dict[str, Any], entry: dict[str, Any], key: str) -> Any:
    """What one result has for ``key`` of :data:`POOLED_KEYS` (the entry's, else the
    report's)."""
    return entry.get(key, report.get(key))


def _and(values: Sequence[Any]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    texts = [str(v) for v in values]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]}"


def check_pooled(groups: dict[tuple[str, str], list[_Member]]) -> None:
    """Refuse to pool results measured differently as the training seeds of one entry.

    Args:
        groups: ``(label, env_id) -> results`` (:func:`_groups`).

    Raises:
        UsageError: naming the label, the env and the values of :data:`POOLED_KEYS` that
            differ, if the results of some group differ in one of them.
    """
    for (label, env_id), members in groups.items():
        differ = []
        for key in POOLED_KEYS:
            values = list(dict.fromkeys(_measured(r, e, key) for r, e, _ in members))
            if len(values) > 1:
                differ.append(f"{key} {_and(values)}")
        if differ:
            raise UsageError(
                f"the results labelled {label!r} on {env_id} differ in {'; '.join(differ)}, "
                "but results sharing a label are pooled as the training seeds of one entry: "
                "rebench them with the same --n-images and --mode, or give them different "
                "--label names"
            )


def _run_name(report: dict[str, Any]) -> str:
    """The policy spec of a result, with the training seed of its run folder's
    ``config.json`` when it has one."""
    spec = str(report.get("policy"))
    path = Path(spec)
    folder = path if path.is_dir() else path.parent if path.is_file() else None
    config = folder / "config.json" if folder is not None else None
    if config is not None and config.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            seed = json.loads(config.read_text()).get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                return f"{spec} (training seed {seed})"
    return spec


def pooled_note(seeded: dict[tuple[str, str], list[_Member]]) -> str:
    """The note under the seed statistics: which results each row pools (their policy
    specs, with the training seeds of run folders; the result files when the specs do not
    tell them apart), and, when the rows were measured on different numbers of images or
    in different modes, each row's.

    Args:
        seeded: ``(label, env_id) -> results``, the groups of several results.
    """
    lines = ["Pooled results (the training seeds of each entry):"]
    for (label, env_id), members in seeded.items():
        names = [_run_name(report) for report, _, _ in members]
        if len(set(names)) < len(names):
            names = [f"{name} [{file}]" for name, (_, _, file) in zip(names, members, strict=True)]
        lines.append(f"- {label} | {env_id}: {', '.join(names)}")
    measured = {
        key: f"{_measured(r, e, 'n_images')} images, {_measured(r, e, 'mode')}"
        for key, ((r, e, _), *_) in seeded.items()
    }
    if len(set(measured.values())) > 1:
        rows = "; ".join(f"{label} | {env}: {how}" for (label, env), how in measured.items())
        lines += ["", f"The rows were measured differently ({rows}): not like for like."]
    return "\n".join(lines) + "\n"


def _rliable() -> tuple[Any, Any]:
    try:
        from rliable import library, metrics
    except ImportError as exc:
        raise GlimpseError(
            "entries with several training seeds (results sharing a --label) need rliable for "
            f"IQM, bootstrap intervals and the probability of improvement: {_EXTRA_HINT}"
        ) from exc
    return library, metrics


@contextlib.contextmanager
def _numpy_seed(seed: int = 0) -> Iterator[None]:
    """NumPy's global generator seeded for the block (rliable's bootstrap draws from it),
    restored after it: the bootstrap figures are the same every time."""
    import numpy as np

    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _seed_scores(groups: dict[tuple[str, str], list[float]]) -> dict[str, Any]:
    """rliable's score matrices (runs x 1 task), keyed ``"label | env"``."""
    import numpy as np

    return {f"{label} | {env}": np.asarray(runs)[:, None] for (label, env), runs in groups.items()}


def seed_intervals(
    groups: dict[tuple[str, str], list[float]], reps: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """IQM and mean with their stratified-bootstrap 95% intervals per (entry, env), from
    rliable (its bootstrap seeded, so the figures are the same every time).

    Args:
        groups: ``(label, env_id) -> final accuracies``, one per training seed.
        reps: bootstrap replications.

    Returns:
        ``(label, env_id) -> {"seeds", "iqm", "iqm_interval", "mean", "mean_interval"}``.
    """
    import numpy as np

    library, metrics = _rliable()
    scores = _seed_scores(groups)
    with _numpy_seed():
        points, intervals = library.get_interval_estimates(
            scores,
            lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
            reps=reps,
        )
    out = {}
    for key, group in zip(scores, groups):
        (iqm, mean), ci = points[key], intervals[key]
        out[group] = {
            "seeds": len(groups[group]),
            "iqm": float(iqm),
            "iqm_interval": [float(ci[0][0]), float(ci[1][0])],
            "mean": float(mean),
            "mean_interval": [float(ci[0][1]), float(ci[1][1])],
        }
    return out


def seed_statistics(groups: dict[tuple[str, str], list[float]], reps: int) -> str:
    """IQM and mean with stratified-bootstrap 95% intervals per (entry, env) with several
    training seeds (:func:`seed_intervals`), and the probability of improvement between
    entries on the same env (rliable, its bootstrap seeded).

    Args:
        groups: ``(label, env_id) -> final accuracies``, one per training seed.
        reps: bootstrap replications.

    Returns:
        The Markdown tables.
    """
    import numpy as np

    stats = seed_intervals(groups, reps)
    lines = ["| entry | env | seeds | IQM % [95% CI] | mean % [95% CI] |", "|---|---|---:|---|---|"]
    for (label, env), row in stats.items():
        iqm_low, iqm_high = row["iqm_interval"]
        mean_low, mean_high = row["mean_interval"]
        lines.append(
            f"| {label} | {env} | {row['seeds']} | "
            f"{_percent(row['iqm'])} [{_percent(iqm_low)}, {_percent(iqm_high)}] | "
            f"{_percent(row['mean'])} [{_percent(mean_low)}, {_percent(mean_high)}] |"
        )
    scores = _seed_scores(groups)
    pairs = {
        f"{a} > {b} | {env}": (scores[f"{a} | {env}"], scores[f"{b} | {env}"])
        for (a, env) in groups
        for (b, env_b) in groups
        if env_b == env and a < b
    }
    if pairs:
        library, metrics = _rliable()
        with _numpy_seed():
            p_points, p_intervals = library.get_interval_estimates(
                pairs, metrics.probability_of_improvement, reps=reps
            )
        lines += ["", "| comparison | env | P(improvement) [95% CI] |", "|---|---|---|"]
        for key in pairs:
            what, env = key.rsplit(" | ", 1)
            ci = np.ravel(p_intervals[key])
            lines.append(
                f"| {what} | {env} | {float(p_points[key]):.2f} "
                f"[{float(ci[0]):.2f}, {float(ci[1]):.2f}] |"
            )
    return "\n".join(lines) + "\n"
