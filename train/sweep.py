"""``glimpse sweep CONFIG``: seeds and hyperparameter sweeps of ``glimpse train`` on Ray Tune.

``CONFIG`` is a JSON file::

    {"command": "ram", "fixed": {"env": "GlimpseMNIST-v0", "epochs": 1},
     "grid": {"seed": [0, 1], "lr": [0.001, 0.0005]}, "samples": 3, "metric": "test_error_rate"}

``grid`` spans every combination (or, with ``samples: N``, N seeded random picks of them);
each trial is an ordinary run folder ``OUT/<trial name>`` made by ``glimpse train <command>``
in-process (so ``glimpse eval`` / ``glimpse bench`` read it). A trial whose folder already
holds a checkpoint resumes from it (``--resume``), one with an ``eval.json`` is finished and
only reported: a trial killed and restarted by Tune, or a rerun of the sweep, continues.

Each trial reports to Tune at every validation (the harness's :func:`train.harness.reporting`
hook: ``iteration``, ``step`` and the validation metric, ``val_accuracy``, PPO
``eval_accuracy``) and at the end the numbers of its ``eval.json``. With
``"asha": {"grace_period": G, "reduction_factor": R, "max_t": M}`` Tune's ASHA scheduler
stops the trials whose validation metric falls behind at a rung (``iteration`` G, G R,
G R^2, ...); a stopped trial keeps its run folder and checkpoint, and a rerun of the sweep
leaves it stopped. ``OUT/sweep.json`` lists the trials, their flags, folders, status
(``finished``, ``stopped`` by ASHA, ``failed``) and metrics, and the best finished trial.

Ray is imported only when a sweep runs (extra ``ray``: ``pip install 'glimpse-env[ray]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.errors import GlimpseError, UsageError

#: ``glimpse train`` commands a sweep can run.
COMMANDS: tuple[str, ...] = ("ram", "baseline", "ppo")
#: Keys a sweep config may have.
CONFIG_KEYS: tuple[str, ...] = ("command", "fixed", "grid", "samples", "metric", "asha")
#: Keys of the config's ``asha`` object.
ASHA_KEYS: tuple[str, ...] = ("grace_period", "reduction_factor", "max_t")
#: The validation metric each command reports while training (what ASHA compares).
VALIDATION_METRICS: dict[str, str] = {
    "ram": "val_accuracy",
    "baseline": "val_accuracy",
    "ppo": "eval_accuracy",
}
#: Tune's time attribute: the harness's iteration count (the same after a resume).
TIME_ATTR = "iteration"
#: Flags the sweep sets itself for every trial.
RESERVED_FLAGS: tuple[str, ...] = ("run_dir", "resume", "overwrite")
#: The one line printed when Ray is missing.
RAY_MISSING = "glimpse sweep needs Ray Tune; pip install 'glimpse-env[ray]'"


@dataclass
class Trial:
    """One trial: its name (= its run folder's name) and its ``glimpse train`` flags."""

    name: str
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AshaConfig:
    """ASHA early stopping (Tune's ``ASHAScheduler`` over :data:`TIME_ATTR`).

    Attributes:
        grace_period: iterations every trial runs before it can be stopped (the first rung).
        reduction_factor: rungs at ``grace_period * reduction_factor**k``; at each, a trial
            continues only if its validation metric is in the top ``1 / reduction_factor``
            of the trials that reached that rung before it.
        max_t: a trial is stopped at this iteration (None: never; the trials end on their own).
    """

    grace_period: int = 1
    reduction_factor: float = 2.0
    max_t: int | None = None


@dataclass
class SweepConfig:
    """A parsed sweep config (see the module docstring)."""

    command: str
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    samples: int | None = None
    metric: str = "test_error_rate"
    asha: AshaConfig | None = None

    @property
    def mode(self) -> str:
        """``max`` for accuracies, else ``min`` (error rates, losses)."""
        return _mode(self.metric)

    @property
    def validation_metric(self) -> str:
        """The metric trials report at every validation (and ASHA compares)."""
        return VALIDATION_METRICS[self.command]


def _mode(metric: str) -> str:
    return "max" if "accuracy" in metric else "min"


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
    asha = _parse_asha(data["asha"]) if data.get("asha") is not None else None
    grid = {k: list(v) for k, v in grid.items()}
    return SweepConfig(command, dict(fixed), grid, samples, metric, asha)


def _parse_asha(data: Any) -> AshaConfig:
    """The config's ``asha`` object (see :class:`AshaConfig`).

    Raises:
        UsageError: for anything malformed.
    """
    if not isinstance(data, dict):
        raise UsageError(
            "sweep config 'asha' must be an object, e.g. {\"grace_period\": 100}; see docs/sweep.md"
        )
    unknown = sorted(set(data) - set(ASHA_KEYS))
    if unknown:
        raise UsageError(f"unknown sweep config asha keys {unknown}; use only {list(ASHA_KEYS)}")

    def integer(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"sweep config asha {key!r} is {value!r}; give a positive integer")
        return value

    grace = integer("grace_period", data.get("grace_period", 1))
    factor = data.get("reduction_factor", 2.0)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 1:
        raise UsageError(f"sweep config asha 'reduction_factor' is {factor!r}; give a number > 1")
    max_t = data.get("max_t")
    if max_t is not None and integer("max_t", max_t) < grace:
        raise UsageError(
            f"sweep config asha 'max_t' ({max_t}) is below 'grace_period' ({grace}); raise it"
        )
    return AshaConfig(grace, float(factor), max_t)


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
    the numbers of its ``eval.json``, ``start`` (``new``, ``resume``, ``restart`` or
    ``done``), :data:`TIME_ATTR` (the iterations done) and the last validation's metric."""
    from train.cli import main

    eval_path = run_dir / "eval.json"
    start = "done"
    if not eval_path.is_file():
        argv, start = trial_argv(command, flags, run_dir)
        errors = _Tee(sys.stderr)
        try:
            with contextlib.redirect_stderr(errors):  # still shown; the last line kept
                main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                why = errors.last_line or f"exit {exc.code}"
                raise RuntimeError(f"trial {run_dir.name} failed: {why}") from None
    summary = json.loads(eval_path.read_text())
    numbers = {
        k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    last = summary.get("last_validation") or {}
    validation = {last["metric"]: last["value"]} if "metric" in last else {}
    return {**numbers, **validation, TIME_ATTR: summary.get("iterations"), "start": start}


class _Tee(io.TextIOBase):
    """A text stream that writes through to ``stream`` and keeps the last non-empty line
    (``glimpse``'s one-line error)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.last_line = stream, ""

    def write(self, text: str) -> int:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            self.last_line = lines[-1].strip()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class _TrialStopped(BaseException):
    """Tune stopped the trial (ASHA) inside a report: ends it, through every handler of
    ``glimpse``'s own (a BaseException, as the SystemExit Tune raises there)."""


def _trainable(params: dict[str, dict[str, Any]]) -> None:
    """Ray Tune function trainable: one trial, reported at every validation and at the end."""
    from ray import tune

    from train.harness import ProgressReport, reporting

    trial = params["trial"]
    metric = VALIDATION_METRICS[trial["command"]]

    def progress(report: ProgressReport) -> None:
        try:
            tune.report({TIME_ATTR: report.iteration, "step": report.step, metric: report.value})
        except SystemExit:  # Tune stops the trial here (synchronous reporting)
            raise _TrialStopped from None

    try:
        with reporting(progress):
            result = run_trial(trial["command"], trial["flags"], Path(trial["run_dir"]))
    except _TrialStopped:
        return
    # Every report names the scheduler's metric (Tune checks it); NaN if never validated.
    tune.report({metric: float("nan"), **result})


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _stopped_before(out: Path, params: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of ``out/sweep.json`` whose trial ASHA stopped and which are still unfinished
    (same flags, no ``eval.json``): a rerun leaves them stopped."""
    path = out / "sweep.json"
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text()).get("trials", [])
    except (ValueError, AttributeError):
        return {}
    wanted = {p["name"]: p for p in params}
    return {
        row["name"]: row
        for row in rows
        if isinstance(row, dict)
        and row.get("status") == "stopped"
        and row.get("name") in wanted
        and row.get("flags") == wanted[row["name"]]["flags"]
        and not (Path(wanted[row["name"]]["run_dir"]) / "eval.json").exists()
    }


def _scheduler(config: SweepConfig) -> Any:
    """Tune's ASHA scheduler of ``config.asha`` (None without)."""
    if config.asha is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    asha = config.asha
    return ASHAScheduler(
        time_attr=TIME_ATTR,
        metric=config.validation_metric,
        mode=_mode(config.validation_metric),
        grace_period=asha.grace_period,
        reduction_factor=asha.reduction_factor,
        max_t=asha.max_t if asha.max_t is not None else 2**62,
    )


def sweep(
    config: SweepConfig,
    out: Path,
    cpus_per_trial: float = 1.0,
    address: str | None = None,
    data_dir: str | None = None,
    max_failures: int = 2,
    max_concurrent: int | None = None,
) -> dict[str, Any]:
    """Run the sweep on Ray Tune; writes and returns ``out/sweep.json``.

    Args:
        config: the sweep.
        out: folder of the trials' run folders and ``sweep.json``.
        cpus_per_trial: CPUs Ray reserves per trial (and the trials' torch threads).
        address: a Ray cluster (None: ``$RAY_ADDRESS``, else a local Ray).
        data_dir: MNIST folder (else ``$GLIMPSE_ENV_DATA``).
        max_failures: restarts of a failed trial (each resumes from its checkpoint).
        max_concurrent: trials at once at most (None: as many as the CPUs allow).

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
    stopped = _stopped_before(out, params)
    to_run = [p for p in params if p["name"] not in stopped]
    by_name: dict[str, dict[str, Any]] = {}
    if to_run:
        by_name = _fit(
            ray, tune, config, out, to_run, env_vars, cpus_per_trial, address,
            max_failures, max_concurrent,
        )  # fmt: skip
    rows = []
    for p in params:
        if p["name"] in stopped:
            rows.append(stopped[p["name"]])
            continue
        got = by_name.get(p["name"], {"metrics": {}, "error": "no result"})
        if got["error"]:
            status = "failed"
        elif (Path(p["run_dir"]) / "eval.json").is_file():
            status = "finished"
        else:
            status = "stopped"
        rows.append({"name": p["name"], "flags": p["flags"], "run_dir": p["run_dir"],
                     "status": status, **got})  # fmt: skip
    finished = [r for r in rows if r["status"] == "finished" and config.metric in r["metrics"]]
    best = None
    if finished:
        sign = -1.0 if config.mode == "max" else 1.0
        best = min(finished, key=lambda r: sign * r["metrics"][config.metric])["name"]
    summary = {
        "command": config.command,
        "metric": config.metric,
        "mode": config.mode,
        "best": best,
        "asha": None if config.asha is None else {
            **dataclasses.asdict(config.asha), "metric": config.validation_metric,
            "time_attr": TIME_ATTR,
        },
        "cpus_per_trial": cpus_per_trial,
        "trials": rows,
    }  # fmt: skip
    write_json_atomic(out / "sweep.json", summary)
    failed = [r["name"] for r in rows if r["status"] == "failed"]
    if failed:
        raise GlimpseError(
            f"{len(failed)} of {len(rows)} trials failed ({', '.join(failed)}); see "
            f"{out / 'sweep.json'} and rerun the sweep to resume them"
        )
    return summary


def _fit(
    ray: Any,
    tune: Any,
    config: SweepConfig,
    out: Path,
    params: list[dict[str, Any]],
    env_vars: dict[str, str],
    cpus_per_trial: float,
    address: str | None,
    max_failures: int,
    max_concurrent: int | None,
) -> dict[str, dict[str, Any]]:
    """Run ``params`` as Tune trials; their last report and error, by trial name."""
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
            tune_config=tune.TuneConfig(
                num_samples=1,
                scheduler=_scheduler(config),
                max_concurrent_trials=max_concurrent,
            ),
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
        metrics = {k: v for k, v in metrics.items() if not _is_nan(v)}
        by_name[name] = {"metrics": metrics, "error": _error_line(result.error)}
    return by_name


def _error_line(error: BaseException | None) -> str | None:
    """The line that says why a trial failed: the last of Tune's report (the trial's own
    exception, e.g. ``RuntimeError: trial ... failed: glimpse: error: ...``)."""
    if error is None:
        return None
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


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
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help="trials at once at most (default: as many as the CPUs allow)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``glimpse sweep``."""
    if args.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial is {args.cpus_per_trial}; give a positive number")
    if args.max_failures < 0:
        raise UsageError(f"--max-failures is {args.max_failures}; give 0 or more")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent is {args.max_concurrent}; give a positive integer")
    config = load_config(args.config)
    summary = sweep(
        config,
        Path(args.out),
        args.cpus_per_trial,
        args.address,
        args.data_dir,
        args.max_failures,
        args.max_concurrent,
    )
    for row in summary["trials"]:
        value = row["metrics"].get(config.metric)
        if row["status"] == "stopped":
            metric = config.validation_metric
            at = row["metrics"].get(TIME_ATTR)
            print(f"{row['name']}: stopped by ASHA at iteration {at} ({metric} "
                  f"{row['metrics'].get(metric)})")  # fmt: skip
        else:
            print(f"{row['name']}: {config.metric} {value}")
    if summary["best"]:
        print(f"best ({config.mode} {config.metric}): {summary['best']}")
    print(f"wrote {Path(args.out) / 'sweep.json'}")
    return 0
