"""Issue 25's two speed targets: ``glimpse bench`` of the shipped RAM, and a sweep on local Ray.

Usage::

    export GLIMPSE_ENV_DATA=/path/to/mnist
    .venv/bin/python benchmarks/bench_speed.py --part bench
    /path/to/venv-with-ray/bin/python benchmarks/bench_speed.py --part sweep   # pip install -e ".[ray]"

``--part bench`` times the whole ``glimpse bench --policy pretrained --env all --out TMP`` in
a subprocess (start-up and model loading included) and reads each env's rollout
``wall_seconds`` and ``episodes_per_second`` from its ``result.json``. Target: under 120 s on
the 2-core dev machine (not judged with ``--n-images N``, a quick check of the script).

``--part sweep`` times ``glimpse sweep CONFIG --out TMP --cpus-per-trial 1`` (Ray's start
included; CONFIG: ``examples/sweep_ram.json`` with ``--trials`` seeds and ``--epochs``), then
the same trials one after another as ``glimpse train ram ... --threads 1`` (the flags of
:func:`train.sweep.trial_argv`): both wall-clocks, trials/hour, their ratio, and the mean and
peak number of sweep trials training at once. Target: the sweep uses both cores, more
trials/hour than one after another. Run it with a Python that has Ray (the ``ray`` extra);
``--glimpse`` defaults to the ``glimpse`` next to the Python.

Each part is written under ``parts`` of ``--out`` (a part not run keeps what the file held)
with the command, Python, package version, CPU and load average before it. The dev machine is
shared with training runs: figures under load (a 1-minute load average near or above the core
count) are upper bounds on the times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from machine_info import cpu_info

RESULTS = Path(__file__).resolve().parent / "results" / "bench_speed.json"
EXAMPLE_SWEEP = Path(__file__).resolve().parents[1] / "examples" / "sweep_ram.json"
SCHEMA_VERSION = 1
BENCH_TARGET_SECONDS = 120.0
#: The figures printed at the end (all are in the JSON).
SUMMARY = ("command_seconds", "sweep_seconds", "sequential_seconds", "speedup", "target_met")
RAY_MISSING = (
    "the sweep part needs Ray: run it with a Python that has the ray extra "
    "('glimpse-env[ray]'), e.g. /path/to/venv-with-ray/bin/python benchmarks/bench_speed.py --part sweep"
)


def run_command(command: list[str]) -> float:
    """Run ``command``; its wall-clock in seconds. A failure exits with its last error line."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() or done.stdout.splitlines() if x.strip()]
        why = lines[-1] if lines else f"exit {done.returncode}"
        raise SystemExit(f"{Path(command[0]).name} {command[1]} failed: {why}")
    return seconds


def bench_figures(report: dict[str, Any], seconds: float, full: bool) -> dict[str, Any]:
    """The bench part's figures from the command's ``result.json`` and its wall-clock.

    Args:
        report: the parsed ``result.json`` (``results``: env id -> result).
        seconds: wall-clock of the whole command.
        full: every test image was benchmarked (else the target is not judged: None).
    """
    envs = {
        env_id: {k: r[k] for k in ("n_images", "wall_seconds", "episodes_per_second", "accuracy")}
        for env_id, r in report["results"].items()
    }
    rollouts = sum(e["wall_seconds"] for e in envs.values())
    return {
        "envs": envs,
        "command_seconds": seconds,
        "rollout_seconds": rollouts,
        "other_seconds": seconds - rollouts,  # start-up, model loading, tables and plots
        "target_seconds": BENCH_TARGET_SECONDS,
        "target_met": (seconds < BENCH_TARGET_SECONDS and len(envs) == 4) if full else None,
    }


def run_bench(glimpse: str, n_images: int | None) -> dict[str, Any]:
    """Time ``glimpse bench --policy pretrained --env all`` and read its result."""
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        flags = ["bench", "--policy", "pretrained", "--env", "all"]
        if n_images is not None:
            flags += ["--n-images", str(n_images)]
        seconds = run_command([glimpse, *flags, "--out", tmp])
        report = json.loads((Path(tmp) / "result.json").read_text())
    figures = bench_figures(report, seconds, full=n_images is None)
    return {"glimpse_command": " ".join(["glimpse", *flags, "--out", "DIR"]), **figures}


def sweep_config(example: dict[str, Any], epochs: float, trials: int) -> dict[str, Any]:
    """``example`` (a sweep config) with ``fixed.epochs`` set and seeds ``0..trials-1``."""
    fixed = {**example["fixed"], "epochs": epochs}
    return {**example, "fixed": fixed, "grid": {"seed": list(range(trials))}}


def sequential_commands(config: dict[str, Any], out: Path, glimpse: str) -> list[list[str]]:
    """The sweep's trials as plain ``glimpse train`` commands (run folders under ``out``): the
    flags :func:`train.sweep.sweep` gives them for ``--cpus-per-trial 1`` (``threads`` 1 unless
    the config sets it), as arguments by :func:`train.sweep.trial_argv`."""
    from train.sweep import expand, parse_config, trial_argv

    parsed = parse_config(config)
    commands = []
    for trial in expand(parsed):
        flags = {"threads": 1, **trial.flags}
        argv, _ = trial_argv(parsed.command, flags, out / trial.name)
        commands.append([glimpse, *argv])
    return commands


def trials_per_hour(trials: int, seconds: float) -> float:
    """``trials`` finished in ``seconds``, as trials per hour."""
    return 3600.0 * trials / seconds


def sweep_figures(
    sweep_seconds: float, sequential_seconds: float, spans: list[tuple[float, float]]
) -> dict[str, Any]:
    """The sweep part's figures.

    Args:
        sweep_seconds: wall-clock of ``glimpse sweep`` (Ray's start included).
        sequential_seconds: wall-clock of the same trials one after another.
        spans: each sweep trial's training (start, end) in seconds, shape (trials, 2).
    """
    n = len(spans)
    window = max(e for _, e in spans) - min(s for s, _ in spans)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])  # ends first
    return {
        "trials": n,
        "sweep_seconds": sweep_seconds,
        "sequential_seconds": sequential_seconds,
        "sweep_trials_per_hour": trials_per_hour(n, sweep_seconds),
        "sequential_trials_per_hour": trials_per_hour(n, sequential_seconds),
        "speedup": sequential_seconds / sweep_seconds,
        # from the first trial's start to the last one's end (Ray's start left out)
        "mean_trials_training_at_once": sum(e - s for s, e in spans) / window,
        "peak_trials_training_at_once": max(itertools.accumulate(d for _, d in events)),
        "target": "the sweep uses both cores: more trials/hour than one after another",
        "target_met": sequential_seconds > sweep_seconds,
    }


def require_ray() -> None:
    """Exit with one line when this Python has no Ray."""
    if find_spec("ray") is None:
        raise SystemExit(RAY_MISSING)


def training_spans(out: Path, names: list[str]) -> list[tuple[float, float]]:
    """Each trial's training (start, end): ``eval.json``'s time, less its ``train_wall_s``."""
    spans = []
    for name in names:
        path = out / name / "eval.json"
        end = path.stat().st_mtime
        spans.append((end - json.loads(path.read_text())["train_wall_s"], end))
    return spans


def run_sweep(glimpse: str, epochs: float, trials: int) -> dict[str, Any]:
    """Time the sweep on local Ray, then the same trials one after another (needs Ray)."""
    from train.sweep import expand, parse_config

    config = sweep_config(json.loads(EXAMPLE_SWEEP.read_text()), epochs, trials)
    names = [t.name for t in expand(parse_config(config))]
    with tempfile.TemporaryDirectory(prefix="bench_speed_sweep_") as tmp:
        path = Path(tmp) / "sweep.json"
        path.write_text(json.dumps(config))
        out, seq = Path(tmp) / "sweep", Path(tmp) / "seq"
        command = [glimpse, "sweep", str(path), "--out", str(out), "--cpus-per-trial", "1"]
        sweep = run_command(command)
        spans, load = training_spans(out, names), list(os.getloadavg())
        sequential = sum(run_command(c) for c in sequential_commands(config, seq, glimpse))
        walls = [e - s for s, e in training_spans(seq, names)]
    return {
        "config": config,
        **sweep_figures(sweep, sequential, spans),
        "sweep_train_wall_s": [e - s for s, e in spans],
        "sequential_train_wall_s": walls,
        "load_average_before_sequential": load,
    }


def part_header(argv: list[str]) -> dict[str, Any]:
    """What every part records besides its figures (load average: before the part)."""
    return {
        "command": " ".join(["python", "benchmarks/bench_speed.py", *argv]),
        "python": sys.executable,
        "package_version": version("glimpse-env"),
        "machine": cpu_info(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": list(os.getloadavg()),
    }


def assemble(old: dict[str, Any] | None, parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON to write: ``parts`` over the parts of ``old`` (if of this schema)."""
    kept = dict(old["parts"]) if old and old.get("schema_version") == SCHEMA_VERSION else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "note": "shared machine: figures under load (load_average_before) are upper bounds",
        "parts": {**kept, **parts},
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("bench", "sweep", "all"), default="all")
    parser.add_argument("--glimpse", default=str(Path(sys.executable).parent / "glimpse"))
    parser.add_argument("--n-images", type=int, default=None, help="bench: quick check only")
    parser.add_argument("--epochs", type=float, default=0.5, help="sweep: epochs per trial")
    parser.add_argument("--trials", type=int, default=4, help="sweep: trials (seeds)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.part in ("sweep", "all"):
        require_ray()  # before the bench part spends two minutes
    parts: dict[str, dict[str, Any]] = {}
    if args.part in ("bench", "all"):
        parts["bench"] = {**part_header(argv), **run_bench(args.glimpse, args.n_images)}
    if args.part in ("sweep", "all"):
        header = part_header(argv)  # before the part: its load average
        parts["sweep"] = {**header, **run_sweep(args.glimpse, args.epochs, args.trials)}
    print(json.dumps({n: {k: p[k] for k in SUMMARY if k in p} for n, p in parts.items()}))
    old = json.loads(args.out.read_text()) if args.out.is_file() else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(assemble(old, parts), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
