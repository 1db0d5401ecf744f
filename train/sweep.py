"""``glimpse sweep CONFIG``: seeds and hyperparameter sweeps of ``glimpse train`` on Ray Tune.

``CONFIG`` is a JSON file::

    {"command": "ram", "fixed": {"env": "GlimpseMNIST-v0", "epochs": 1},
     "grid": {"seed": [0, 1], "lr": [0.001, 0.0005]}, "samples": 3, "metric": "test_error_rate"}

``grid`` spans every combination (or, with ``samples: N``, N seeded random picks of them);
each trial is an ordinary run folder ``OUT/<trial name>`` made by ``glimpse train <command>``
in-process (so ``glimpse eval`` / ``glimpse bench`` read it). A trial whose folder already
holds a checkpoint resumes from it (``--resume``), one with an ``eval.json`` is finished and
only reported: a trial killed and restarted by Tune, or a rerun of the sweep, continues.
Each trial reports once, at the end, the numbers of its ``eval.json``. ``OUT/sweep.json``
lists the trials, their flags, folders and final metrics.

Ray is imported only when a sweep runs (extra ``ray``: ``pip install 'glimpse-env[ray]'``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.errors import GlimpseError, UsageError

#: ``glimpse train`` commands a sweep can run.
COMMANDS: tuple[str, ...] = ("ram", "baseline", "ppo")
#: Keys a sweep config may have.
CONFIG_KEYS: tuple[str, ...] = ("command", "fixed", "grid", "samples", "metric", "asha")
#: Flags the sweep sets itself for every trial.
RESERVED_FLAGS: tuple[str, ...] = ("run_dir", "resume", "overwrite")
#: The one line printed when Ray is missing.
RAY_MISSING = "glimpse sweep needs Ray Tune; pip install 'glimpse-env[ray]'"


@dataclass
class Trial:
    """One trial: its name (= its run folder's name) and its ``glimpse train`` flags."""

    name: str
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepConfig:
    """A parsed sweep config (see the module docstring)."""

    command: str
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    samples: int | None = None
    metric: str = "test_error_rate"

    @property
    def mode(self) -> str:
        """``max`` for accuracies, else ``min`` (error rates, losses)."""
        return "max" if "accuracy" in self.metric else "min"


def parse_config(data: Any) -> SweepConfig:
    """Check a sweep config (parsed JSON) and return it.

    Raises:
        UsageError: for anything malformed, saying what and how to fix it.
    """
    if not isinstance(data, dict):
        raise UsageError("the sweep config must be a JSON object; see docs/sweep.md")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(f"unknown sweep config keys {unknown}; use only {list(CONFIG_KEYS)}")
    command = data.get("command")
    if command not in COMMANDS:
        raise UsageError(f"sweep config 'command' is {command!r}; use one of {list(COMMANDS)}")
    fixed, grid = data.get("fixed", {}), data.get("grid", {})
    if not isinstance(fixed, dict) or not isinstance(grid, dict):
        raise UsageError("sweep config 'fixed' and 'grid' must be objects of flag: value(s)")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"sweep config grid[{key!r}] must be a non-empty list of values")
    clash = sorted(set(fixed) & set(grid))
    if clash:
        raise UsageError(f"flags {clash} are both fixed and in the grid; keep one")
    reserved = sorted({k.replace("-", "_") for k in [*fixed, *grid]} & set(RESERVED_FLAGS))
    if reserved:
        raise UsageError(f"the sweep sets {reserved} itself; remove them from the config")
    samples = data.get("samples")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise UsageError(f"sweep config 'samples' is {samples!r}; give a positive integer")
    metric = data.get("metric", "test_error_rate")
    if not isinstance(metric, str) or not metric:
        raise UsageError("sweep config 'metric' must be the name of an eval.json number")
    if data.get("asha") is not None:
        raise UsageError(
            "sweep config 'asha' is not supported yet: trials report once, at the end; remove it"
        )
    return SweepConfig(command, dict(fixed), {k: list(v) for k, v in grid.items()}, samples, metric)


def load_config(path: str | Path) -> SweepConfig:
    """Read and check the sweep config file ``path`` (JSON)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise GlimpseError(f"sweep config {path} not found; check the path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"sweep config {path} is not valid JSON ({exc}); fix it") from None
    return parse_config(data)


def _name_part(key: str, value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)
    return f"{key.replace('_', '-')}{safe}"


def expand(config: SweepConfig) -> list[Trial]:
    """The sweep's trials: every grid combination, or ``samples`` seeded random picks of them
    (deterministic, so a rerun names the same trials and resumes their folders)."""
    keys = list(config.grid)
    points = [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(config.grid[k] for k in keys))
    ]
    if config.samples is not None:
        rng = random.Random(0)
        points = [{k: rng.choice(config.grid[k]) for k in keys} for _ in range(config.samples)]
    trials = []
    for index, point in enumerate(points):
        label = "_".join(_name_part(k, v) for k, v in point.items())
        name = f"{config.command}-{index:03d}" + (f"_{label}" if label else "")
        trials.append(Trial(name, {**config.fixed, **point}))
    return trials


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """``{"batch_size": 16, "hybrid": False}`` -> ``["--batch-size", "16", "--no-hybrid"]``
    (``None`` values are left out)."""
    argv: list[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, str(value)]
    return argv


def trial_argv(command: str, flags: dict[str, Any], run_dir: Path) -> tuple[list[str], str]:
    """The ``glimpse`` arguments of a trial and how it starts: ``new``, ``resume`` (its
    folder has a checkpoint) or ``restart`` (a folder without one: written over)."""
    meta = run_dir / "meta.json"
    if meta.is_file():
        try:
            checkpoint = run_dir / json.loads(meta.read_text())["checkpoint"]
        except (ValueError, KeyError, TypeError):
            checkpoint = None
        if checkpoint is not None and checkpoint.exists():
            keep = {k: v for k, v in flags.items() if k in ("data_dir", "threads")}
            argv = ["train", command, "--resume", str(run_dir), "--no-progress"]
            return argv + flags_to_argv(keep), "resume"
    base = ["train", command, *flags_to_argv(flags), "--run-dir", str(run_dir), "--no-progress"]
    if run_dir.exists() and any(run_dir.iterdir()):
        return [*base, "--overwrite"], "restart"
    return base, "new"


def run_trial(command: str, flags: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Run (or resume, or just read back) one trial in-process; returns its final metrics:
    the numbers of its ``eval.json`` and ``start`` (``new``, ``resume``, ``restart`` or
    ``done``)."""
    from train.cli import main

    eval_path = run_dir / "eval.json"
    start = "done"
    if not eval_path.is_file():
        argv, start = trial_argv(command, flags, run_dir)
        try:
            main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise RuntimeError(f"trial {run_dir.name} failed (exit {exc.code})") from None
    summary = json.loads(eval_path.read_text())
    numbers = {
        k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return {**numbers, "start": start}


def _trainable(params: dict[str, dict[str, Any]]) -> None:
    """Ray Tune function trainable: one trial, reported once at the end."""
    from ray import tune

    trial = params["trial"]
    result = run_trial(trial["command"], trial["flags"], Path(trial["run_dir"]))
    tune.report(result)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def sweep(
    config: SweepConfig,
    out: Path,
    cpus_per_trial: float = 1.0,
    address: str | None = None,
    data_dir: str | None = None,
    max_failures: int = 2,
) -> dict[str, Any]:
    """Run the sweep on Ray Tune; writes and returns ``out/sweep.json``.

    Raises:
        GlimpseError: without Ray (one line saying how to install it), or when trials fail.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise GlimpseError(RAY_MISSING) from None
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    trials = expand(config)
    env_vars = {}
    data = data_dir or os.environ.get("GLIMPSE_ENV_DATA")
    if data:
        env_vars["GLIMPSE_ENV_DATA"] = str(Path(data).resolve())
    threads = max(1, int(cpus_per_trial))
    params = []
    for trial in trials:
        flags = {"threads": threads, **trial.flags}
        if data_dir:
            flags.setdefault("data_dir", str(Path(data_dir).resolve()))
        trial.flags = flags
        params.append(
            {"name": trial.name, "command": config.command, "flags": flags,
             "run_dir": str(out / trial.name)}
        )  # fmt: skip
    address = address or os.environ.get("RAY_ADDRESS")
    init: dict[str, Any] = {"runtime_env": {"env_vars": env_vars}, "log_to_driver": False}
    if address:
        ray.init(address=address, **init)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **init)
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trainable, {"cpu": cpus_per_trial}),
            param_space={"trial": tune.grid_search(params)},
            tune_config=tune.TuneConfig(num_samples=1, metric=config.metric, mode=config.mode),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out / "ray_results"),
                failure_config=tune.FailureConfig(max_failures=max_failures),
                verbose=0,
            ),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    by_name: dict[str, dict[str, Any]] = {}
    for result in grid:
        name = result.config["trial"]["name"]
        metrics = {k: v for k, v in (result.metrics or {}).items() if k in _result_keys(result)}
        by_name[name] = {"metrics": metrics, "error": None if result.error is None else
                         str(result.error).splitlines()[0]}  # fmt: skip
    rows = []
    for p in params:
        got = by_name.get(p["name"], {"metrics": {}, "error": "no result"})
        rows.append({"name": p["name"], "flags": p["flags"], "run_dir": p["run_dir"], **got})
    summary = {
        "command": config.command,
        "metric": config.metric,
        "mode": config.mode,
        "cpus_per_trial": cpus_per_trial,
        "trials": rows,
    }
    write_json_atomic(out / "sweep.json", summary)
    failed = [r["name"] for r in rows if r["error"]]
    if failed:
        raise GlimpseError(
            f"{len(failed)} of {len(rows)} trials failed ({', '.join(failed)}); see "
            f"{out / 'sweep.json'} and rerun the sweep to resume them"
        )
    return summary


def _result_keys(result: Any) -> set[str]:
    """The keys of a trial's report (Tune adds its own bookkeeping; those are left out)."""
    tune_keys = {
        "timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
        "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config",
        "time_since_restore", "iterations_since_restore", "experiment_tag",
    }  # fmt: skip
    return set(result.metrics or {}) - tune_keys


def register(subparsers: Any) -> None:
    """Add ``sweep`` to the ``glimpse`` subcommands."""
    parser = subparsers.add_parser(
        "sweep",
        help="run seeds / hyperparameter sweeps of glimpse train on Ray Tune",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("config", metavar="CONFIG", help="sweep config (JSON; docs/sweep.md)")
    parser.add_argument("--out", required=True, help="folder of the trials' run folders")
    parser.add_argument(
        "--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)"
    )
    parser.add_argument("--address", default=None, help="Ray cluster (default: $RAY_ADDRESS, "
                        "else a local Ray over this machine's cores)")  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="MNIST folder (or $GLIMPSE_ENV_DATA)")
    parser.add_argument("--max-failures", type=int, default=2, help="restarts of a failed trial")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``glimpse sweep``."""
    if args.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial is {args.cpus_per_trial}; give a positive number")
    config = load_config(args.config)
    summary = sweep(
        config, Path(args.out), args.cpus_per_trial, args.address, args.data_dir, args.max_failures
    )
    for row in summary["trials"]:
        print(f"{row['name']}: {config.metric} {row['metrics'].get(config.metric)}")
    print(f"wrote {Path(args.out) / 'sweep.json'}")
    return 0
