"""The trained and the not-yet-measured entries of ``glimpse bench leaderboard``.

A **trained entry** is one ``glimpse bench`` result per training seed of one kind of run,
grouped by ``(label, env)`` (:func:`trained_entries`). What the runs were and how long they
trained is read from their run folders (``config.json`` and ``meta.json``) by
:func:`training_of`, which knows the three trainers:

* ``glimpse train ram`` (learned locations or a location heuristic): epochs of batches;
* ``glimpse train ppo`` (PPO with the glimpse history, or ``--recurrent``): env steps;
* ``glimpse train baseline`` (a full-image supervised classifier, not glimpse-limited):
  epochs of batches.

A **pending entry** (:data:`PENDING`) is one the issue asks for that needs training and has
not been given: it is listed with the command that measures it, and no figure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import UsageError
from train.leaderboard_md import TRAINED

#: Epochs and batch size of the equal budget of the trained entries: 5 passes over the
#: 50,000 training images in batches of 64 (3,906 iterations, 250,000 images).
EPOCHS, BATCH_SIZE = 5, 64
#: The same budget in env steps for PPO: 3,906 iterations x 64 episodes x 7 glimpses.
PPO_STEPS = 1_750_000
#: Order of the kinds of trained entries in a table.
_ORDER = ("ram", "ppo", "recurrent-ppo", "baseline")


# --------------------------------------------------------------------------- runs
def read_run(folder: Path) -> dict[str, Any]:
    """The run's ``meta.json`` overlaid with its ``config.json``, or {} if it has neither."""
    config: dict[str, Any] = {}
    for name in ("meta.json", "config.json"):
        if (folder / name).is_file():
            config.update(json.loads((folder / name).read_text()))
    return config


def training_of(run: dict[str, Any], env_id: str) -> dict[str, Any] | None:
    """What a run trained and for how long, from its :func:`read_run` dict.

    Returns:
        ``{"agent", "key", "budget", "short", "standard", "command", ...}``: ``agent`` is
        ``"ram"``, ``"ppo"``, ``"recurrent-ppo"`` or ``"baseline"``; ``standard`` says
        whether the run trained for the equal budget (:data:`EPOCHS` epochs of
        :data:`BATCH_SIZE`, or :data:`PPO_STEPS` env steps); ``key`` names the pending
        entry the run measures (:data:`PENDING`; none unless ``standard``); ``budget`` and
        ``short`` describe the training length (long and short); ``command`` trains seed
        ``S``. None for a run of no known trainer (e.g. a user's own policy).
    """
    training = _training_of(run, env_id)
    if training is not None:
        standard = training.get("total_steps", PPO_STEPS) == PPO_STEPS and (
            training.get("epochs", EPOCHS) == EPOCHS
            and training.get("batch_size", BATCH_SIZE) == BATCH_SIZE
        )
        training["standard"] = standard
        if not standard:  # not the equal budget: it measures no pending entry
            training["key"] += f"@{training['short']}"
    return training


def _training_of(run: dict[str, Any], env_id: str) -> dict[str, Any] | None:
    agent = run.get("agent", "ram")
    threads = run.get("threads") or "auto"
    if agent == "ram" and "epochs" in run:
        where = run.get("location_policy", "learned")
        return {
            "agent": "ram",
            "key": f"location:{where}",
            "location_policy": where,
            "epochs": run["epochs"],
            "batch_size": run["batch_size"],
            "budget": _epochs_text(run),
            "short": f"{run['epochs']:g} epochs",
            "command": f"glimpse train ram --env {env_id} --location-policy {where} "
            f"--epochs {run['epochs']:g} --batch-size {run['batch_size']} --threads {threads} "
            "--seed S",
        }
    if agent == "baseline" and "epochs" in run:
        arch = run["arch"]
        return {
            "agent": "baseline",
            "key": f"baseline:{arch}",
            "arch": arch,
            "epochs": run["epochs"],
            "batch_size": run["batch_size"],
            "budget": f"{_epochs_text(run)}, whole canvases",
            "short": f"{run['epochs']:g} epochs; full image, not glimpse-limited",
            "command": f"glimpse train baseline --env {env_id} --arch {arch} "
            f"--epochs {run['epochs']:g} --batch-size {run['batch_size']} --threads {threads} "
            "--seed S",
        }
    if agent in ("ppo", "recurrent_ppo") and "hyperparams" in run:
        kind = "recurrent-ppo" if run.get("recurrent") or agent == "recurrent_ppo" else "ppo"
        steps = run["hyperparams"]["total_steps"]
        done = run.get("num_timesteps")
        done_text = "" if done is None else f" ({done:,} taken: whole rollouts)"
        return {
            "agent": kind,
            "key": kind,
            "total_steps": steps,
            "budget": f"{steps:,} env steps{done_text}",
            "short": f"{steps / 1e6:g}M env steps",
            "command": f"glimpse train ppo --env {env_id}"
            f"{' --recurrent' if kind == 'recurrent-ppo' else ''} --total-steps {steps} "
            f"{_ppo_evaluation(run)}--threads {threads} --seed S",
        }
    return None


def _ppo_evaluation(run: dict[str, Any]) -> str:
    """The evaluation flags of a PPO run (they draw from the env while it trains)."""
    flags = [
        ("--eval-every", run.get("eval_every")),
        ("--eval-images", run.get("eval_images")),
        ("--eval-split", run.get("eval_split")),
        ("--final-eval-images", run.get("final_eval_images")),
    ]
    return "".join(f"{flag} {value} " for flag, value in flags if value is not None)


def _epochs_text(run: dict[str, Any]) -> str:
    iterations = run.get("iterations")
    counted = "" if iterations is None else f" ({iterations:,} iterations)"
    return f"{run['epochs']:g} epochs of batches of {run['batch_size']}{counted}"


# --------------------------------------------------------------------------- trained
def trained_entries(paths: Sequence[str | Path], reps: int = 10_000) -> dict[str, list[dict]]:
    """Entries trained with several seeds, from ``glimpse bench`` results, per env.

    Results are grouped by ``(label, env)`` (one per training seed). Each entry holds the
    per-seed accuracies (in seed order), their mean, the IQM and mean with stratified-bootstrap
    95% intervals (:func:`train.bench.seed_intervals`, rliable), the mean anytime accuracy
    and on-digit share over seeds (None for full-image baselines), whether it is a full-image
    entry, the parameters, and the training budget and command (:func:`training_of`; the
    entry's runs must share them). Within an env, entries come in the order RAM, PPO,
    RecurrentPPO, full-image baselines, each by label.

    Args:
        paths: ``result.json`` files or folders (:func:`result_files`).
        reps: bootstrap replications.

    Raises:
        UsageError: for a result that cannot be read, or seeds trained with different budgets.
    """
    from train.bench_report import check_pooled, read_report, seed_intervals

    runs: dict[tuple[str, str], list[tuple[int, dict[str, Any], dict[str, Any] | None]]] = {}
    members: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any], Path]]] = {}
    for path in result_files(paths):
        report = read_report(path)
        run = read_run(Path(report["policy"]))
        for env_id, result in report["results"].items():
            key = (report.get("label") or report["policy"], env_id)
            members.setdefault(key, []).append((report, result, path))
            runs.setdefault(key, []).append(
                (int(run.get("seed", 0)), result, training_of(run, env_id))
            )
    check_pooled(members)
    stats = seed_intervals(
        {key: [r["accuracy"] for _, r, _ in group] for key, group in runs.items()}, reps
    )
    entries: dict[str, list[dict[str, Any]]] = {}
    for (label, env_id), group in runs.items():
        group.sort(key=lambda item: item[0])
        budgets = {json.dumps(t, sort_keys=True) for _, _, t in group}
        if len(budgets) > 1:
            raise UsageError(f"--entries: the seeds of {label!r} on {env_id} differ in training")
        results = [r for _, r, _ in group]
        entries.setdefault(env_id, []).append(
            {
                "entry": label,
                "kind": TRAINED,
                "full_image": bool(results[0].get("full_image", False)),
                "training_seeds": [seed for seed, _, _ in group],
                "accuracies": [r["accuracy"] for r in results],
                "n_images": results[0]["n_images"],
                "mode": results[0].get("mode", "deterministic"),
                **stats[(label, env_id)],
                "anytime_mean": _mean([r.get("anytime_mean") for r in results]),
                "on_digit_share": _mean([r.get("on_digit_share") for r in results]),
                "n_parameters": results[0]["n_parameters"],
                "training": group[0][2],
            }
        )
    for env_entries in entries.values():
        env_entries.sort(key=_order)
    return entries


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``result.json`` files named by ``paths``: a file itself; a folder's own
    ``result.json``; else every ``result.json`` below the folder, sorted.

    Raises:
        UsageError: for a path that does not exist, or a folder with no result below it.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and (path / "result.json").is_file():
            files.append(path / "result.json")
        elif path.is_dir():
            found = sorted(path.rglob("result.json"))
            if not found:
                raise UsageError(
                    f"--entries {path}: no result.json in it or below it; give glimpse bench "
                    "outputs (result.json or the folders holding them)"
                )
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"--entries {path}: no such file or folder")
    return files


def _mean(values: Iterable[float | None]) -> float | None:
    """The mean, or None if any value is missing (a full-image entry has no anytime curve)."""
    values = list(values)
    return None if any(v is None for v in values) else float(np.mean(values))


def _order(entry: dict[str, Any]) -> tuple[int, str]:
    agent = (entry["training"] or {}).get("agent")
    return (_ORDER.index(agent) if agent in _ORDER else len(_ORDER), entry["entry"])


# --------------------------------------------------------------------------- pending
@dataclass(frozen=True)
class Pending:
    """An entry the issue asks for that needs training.

    Attributes:
        key: what :func:`training_of` calls a run that measures it.
        entry: its name in the table.
        why: why it is not measured.
        command: the commands that measure seed ``S`` (``{env}``: the env id).
    """

    key: str
    entry: str
    why: str
    command: str


def _bench(name: str, label: str) -> str:
    return (
        f' && glimpse bench --policy runs/leaderboard/{{env}}/{name}-S --label "{label}" '
        f"--out bench/leaderboard/{{env}}/{name}-S"
    )


_BUDGET = f"--epochs {EPOCHS} --batch-size {BATCH_SIZE} --threads 1 --seed S"

#: The entries the issue asks for that need training, in table order.
PENDING: tuple[Pending, ...] = (
    *(
        Pending(
            f"location:{where}",
            f"RAM classifier, {where} locations",
            "needs training"
            + (
                "; on GlimpseMNIST-v0 its locations are center's, the digit filling the canvas"
                if where == "oracle"
                else ""
            ),
            f"glimpse train ram --env {{env}} --location-policy {where} {_BUDGET} "
            f"--run-dir runs/leaderboard/{{env}}/{where}-S"
            + _bench(where, f"RAM classifier, {where} locations"),
        )
        for where in ("random", "center", "raster", "oracle")
    ),
    Pending(
        "location:learned",
        "RAM, learned locations",
        "needs training",
        f"glimpse train ram --env {{env}} --location-policy learned {_BUDGET} "
        "--run-dir runs/leaderboard/{env}/learned-S" + _bench("learned", "RAM, learned locations"),
    ),
    Pending(
        "ram:paper-budget",
        "RAM, learned locations, the shipped model's budget",
        "needs training: the shipped model is one seed, and one more seed takes 30 min "
        "(28x28) to hours (60x60, 100x100) on 2 CPU cores",
        "glimpse train ram --env {env} --seed S --run-dir runs/leaderboard/{env}/ram-S"
        + _bench("ram", "RAM, learned locations, the shipped model's budget"),
    ),
    *(
        Pending(
            name,
            label,
            "needs training",
            f"glimpse train ppo --env {{env}}{flag} --total-steps {PPO_STEPS} --threads 1 "
            f"--seed S --run-dir runs/leaderboard/{{env}}/{name}-S" + _bench(name, label),
        )
        for label, flag, name in (
            ("PPO (glimpse history)", "", "ppo"),
            ("RecurrentPPO (LSTM)", " --recurrent", "recurrent-ppo"),
        )
    ),
    *(
        Pending(
            f"baseline:{arch}",
            f"full-image {arch} baseline",
            "needs training",
            f"glimpse train baseline --env {{env}} --arch {arch} {_BUDGET} "
            f"--run-dir runs/leaderboard/{{env}}/{arch}-S"
            + _bench(arch, f"full-image {arch} baseline"),
        )
        for arch in ("fc64", "fc256", "conv")
    ),
)


def pending_entries(env_id: str, measured: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The entries of ``env_id`` not yet measured, with the commands that will measure them.

    Args:
        env_id: the env.
        measured: the :func:`training_of` keys of the trained entries given on ``env_id``
            (left out here).
    """
    done = set(measured)
    return [
        {
            "entry": p.entry,
            "key": p.key,
            "kind": "not yet measured",
            "why": p.why,
            "command": p.command.format(env=env_id),
        }
        for p in PENDING
        if p.key not in done
    ]
