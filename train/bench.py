"""``glimpse bench``: benchmark a policy with GlimpseBench (:mod:`glimpse_env.bench`).

``glimpse bench --policy SPEC --env ID|all [--mode deterministic|sample] [--seeds 0,1,...]
[--n-images N] [--label NAME] --out DIR`` where ``SPEC`` is

* a run folder (or checkpoint) of ``glimpse train``;
* ``pretrained:ENV_ID``, the weights shipped for that env, or ``pretrained`` alone: for each
  env benchmarked, the weights shipped for it;
* ``package.module:factory``, a user's own code importable from ``PYTHONPATH``: ``factory()``
  returns a policy (``initial_state``/``act``) or a bare callable ``act(obs) -> action``.

It writes, env by env (each file replaced atomically, so an error never loses what an
earlier env wrote): ``DIR/result.json`` (schema version, protocol and package version, the
machine, the command, one result per env), ``DIR/result.md`` (a Markdown table),
``DIR/anytime.png`` (the anytime-accuracy curves) and ``DIR/accuracy_glimpses.png``
(accuracy against glimpses used, with the paper's RAM rows; an adaptive policy is one point:
:mod:`train.bench_plots`). The plots need matplotlib.

``glimpse bench leaderboard --out DIR`` writes the reference entries of every env
(:mod:`train.leaderboard`).

``glimpse bench compare A.json B.json ...`` (files or folders holding ``result.json``)
prints the side-by-side table with intervals. Results sharing a ``--label`` are the
training seeds of one entry: their IQM and mean with stratified-bootstrap 95% intervals and
the probability of improvement between such entries come from ``rliable`` (the ``bench``
extra).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from train.errors import GlimpseError, UsageError
from train.validation import device_name

#: Version of the layout of ``result.json``.
SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_EXTRA_HINT = "pip install 'glimpse-env[bench]'"


def register(subparsers: Any) -> None:
    from glimpse_env.registration import ALL_IDS

    parser = subparsers.add_parser(
        "bench",
        help="benchmark any policy on the fixed test canvases (GlimpseBench-v1)",
        description=(
            "Benchmark a policy (a run folder, pretrained[:ENV_ID] or module:factory) on the "
            "fixed test canvases: final accuracy with a 95% Wilson interval, anytime "
            "accuracy, where it looks, cost. 'glimpse bench compare A.json B.json' compares."
        ),
    )
    parser.add_argument(
        "--policy", metavar="SPEC", help="run folder, pretrained[:ENV_ID] or module:factory"
    )
    parser.add_argument(
        "--env",
        choices=(*ALL_IDS, "all", "adaptive"),
        metavar="ID|all",
        help="env id; all: the four benchmark ids; adaptive: their adaptive twins, where the "
        "policy stops (default: the one the policy was trained on)",
    )
    parser.add_argument("--mode", default="deterministic", choices=("deterministic", "sample"))
    parser.add_argument(
        "--seeds",
        type=_seed_list,
        default=(0,),
        help="evaluation seeds N,N,...: one rollout per image each (default 0)",
    )
    parser.add_argument("--n-images", type=_positive, default=None, help="first N test images")
    parser.add_argument("--num-envs", type=_positive, default=500, help="episodes stepped together")
    parser.add_argument(
        "--radius", type=float, default=0.0, help="px from the digit box that count as on it"
    )
    parser.add_argument("--label", default=None, help="entry name for compare (default: SPEC)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder")
    parser.add_argument(
        "--device",
        default="cpu",
        type=device_name,
        help="torch device of a trained agent: cpu, cuda, cuda:N or auto (default: cpu)",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder")
    parser.set_defaults(func=run, bench_command=None)
    sub = parser.add_subparsers(
        dest="bench_command", title="subcommands", metavar="{compare,leaderboard}"
    )
    compare = sub.add_parser(
        "compare",
        help="side-by-side table of bench results",
        description="Compare result.json files (or folders holding one) side by side.",
    )
    compare.add_argument("results", nargs="+", help="result.json files or their folders")
    compare.add_argument(
        "--reps", type=_positive, default=10000, help="bootstrap replications (rliable)"
    )
    compare.set_defaults(func=run_compare)
    from train import leaderboard

    leaderboard.register(sub)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        seeds = ()
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(
            f"must be non-negative integers separated by commas, got {text!r}"
        )
    return seeds


# --------------------------------------------------------------------------- policies
def load_spec(
    spec: str, env_id: str | None, data_dir: str | None, device: str
) -> tuple[Any, dict[str, Any], str]:
    """The policy ``spec`` names for ``env_id``.

    Returns:
        ``(policy, env keyword arguments, env id)``: a trained agent's own env and settings
        when ``env_id`` is None.

    Raises:
        UsageError: for a spec that is none of the three forms, or a missing env id.
        GlimpseError: for a module, factory or checkpoint that cannot be loaded.
    """
    if spec == "pretrained" or spec.startswith("pretrained:"):
        from agents.pretrained import pretrained_path

        wanted = spec.partition(":")[2] or env_id
        if not wanted:
            raise UsageError("--policy pretrained needs --env ID (or give pretrained:ENV_ID)")
        try:
            path = pretrained_path(wanted)
        except ValueError as exc:
            raise UsageError(f"--policy {spec}: {exc}") from exc
        return _load_agent(path, env_id, data_dir, device)
    if Path(spec).exists():
        return _load_agent(Path(spec), env_id, data_dir, device)
    if _FACTORY.match(spec):
        if env_id is None:
            raise UsageError(f"--policy {spec} needs --env ID|all (it has no env of its own)")
        kwargs = {"data_dir": data_dir} if data_dir else {}
        return _from_factory(spec), kwargs, env_id
    raise UsageError(
        f"--policy {spec!r} is not a run folder, pretrained[:ENV_ID] or package.module:factory "
        "(a module importable from PYTHONPATH and the name of a function in it)"
    )


def _load_agent(
    path: Path, env_id: str | None, data_dir: str | None, device: str
) -> tuple[Any, dict[str, Any], str]:
    from agents.policy import check_policy_fits, env_kwargs_from_meta, load_policy
    from train.common import load_for_cli, read_meta_for_cli, resolve_device

    if read_meta_for_cli(path).get("agent") == "baseline":
        raise UsageError(
            f"--policy {path} is a supervised baseline (it sees whole canvases, no glimpses): "
            "not a glimpse policy; evaluate it with 'glimpse eval'"
        )
    loaded = load_for_cli(path, load_policy, device=str(resolve_device(device)))
    policy = loaded.policy
    env_id = env_id or policy.env_id
    kwargs = env_kwargs_from_meta(loaded.meta, data_dir)
    try:
        check_policy_fits(policy, env_id, kwargs)
    except ValueError as exc:
        raise _DoesNotFit(f"--policy {path}: {exc}") from exc
    return policy, kwargs, env_id


class _DoesNotFit(UsageError):
    """A trained agent's glimpses differ from the env's (``--env all`` skips that env)."""


def _from_factory(spec: str) -> Any:
    module_name, _, factory_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GlimpseError(
            f"--policy {spec}: cannot import {module_name} ({exc}); put the folder holding it "
            "on PYTHONPATH"
        ) from exc
    except Exception as exc:
        raise GlimpseError(
            f"--policy {spec}: importing {module_name} raised {type(exc).__name__}: {exc}"
        ) from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise GlimpseError(
            f"--policy {spec}: {module_name} has no function {factory_name!r}; expected a "
            "factory() that returns a policy or a callable act(obs) -> action"
        )
    try:
        policy = factory()
    except Exception as exc:
        raise GlimpseError(
            f"--policy {spec}: {factory_name}() raised {type(exc).__name__}: {exc}; expected "
            "it to return a policy or a callable act(obs) -> action"
        ) from exc
    if policy is None:
        raise GlimpseError(
            f"--policy {spec}: {factory_name}() returned None; expected a policy or a "
            "callable act(obs) -> action"
        )
    return policy


def count_parameters(policy: Any) -> int | None:
    """``policy.n_parameters``, else the parameters of its torch model (``model`` or SB3's
    ``model.policy``), else those of the policy it wraps (``policy.policy``, e.g. a
    :class:`agents.locations.FixedLocationPolicy`), else None."""
    value = getattr(policy, "n_parameters", None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    model = getattr(policy, "model", None)
    for module in (model, getattr(model, "policy", None)):
        parameters = getattr(module, "parameters", None)
        if callable(parameters):
            return int(sum(p.numel() for p in parameters()))
    inner = getattr(policy, "policy", None)
    if inner is not None and inner is not policy:
        return count_parameters(inner)
    return None


# --------------------------------------------------------------------------- bench
def run(args: argparse.Namespace) -> int:
    from glimpse_env.bench import BenchPolicyError, evaluate
    from glimpse_env.registration import ADAPTIVE_IDS, ENV_IDS
    from train.common import check_images

    missing = [
        flag for flag, value in (("--policy", args.policy), ("--out", args.out)) if not value
    ]
    if missing:
        raise UsageError(
            f"glimpse bench needs {' and '.join(missing)} (or: glimpse bench compare FILES)"
        )
    check_images(args.n_images, "test", "--n-images")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder")
    several = args.env in ("all", "adaptive")
    if several:
        env_ids: list[str | None] = list(ENV_IDS if args.env == "all" else ADAPTIVE_IDS)
        if args.policy == "pretrained":
            from agents.pretrained import available

            env_ids = [e for e in env_ids if e in available()]
    else:
        env_ids = [args.env]
    label = args.label or args.policy
    report = _start_report(out, args, label)
    benchmarked = 0
    for env_id in env_ids:
        try:
            policy, kwargs, env_id = load_spec(args.policy, env_id, args.data_dir, args.device)
        except _DoesNotFit as exc:
            if not several:
                raise
            print(f"{env_id}: skipped ({exc})", flush=True)
            continue
        try:
            result = evaluate(
                policy,
                env_id,
                mode=args.mode,
                n_images=args.n_images,
                num_envs=args.num_envs,
                seeds=args.seeds,
                env_kwargs=kwargs,
                radius_px=args.radius,
                name=args.policy,
                progress=sys.stderr.isatty(),
            )
        except BenchPolicyError as exc:
            done = (
                f" (the envs done before are in {out / RESULT_FILE})" if report["results"] else ""
            )
            raise GlimpseError(f"{exc}{done}") from exc
        entry = result.to_dict()
        if entry["n_parameters"] is None:
            entry["n_parameters"] = count_parameters(policy)
        report["results"][env_id] = entry
        _write_report(out, report)
        benchmarked += 1
        print(f"{env_id}: {_summary_line(entry)}", flush=True)
    if not benchmarked:
        raise UsageError(f"--policy {args.policy} fits none of the envs (see above)")
    return 0


def _start_report(out: Path, args: argparse.Namespace, label: str) -> dict[str, Any]:
    """The report to fill: the one already in ``out`` for the same policy, label and mode
    (its other envs are kept), else a new one.

    Raises:
        UsageError: if ``out`` holds the benchmark of another policy, label or mode.
    """
    from glimpse_env.bench import PROTOCOL
    from train.machine_info import cpu_info

    report = {
        "schema_version": SCHEMA_VERSION,
        "protocol": PROTOCOL,
        "package_version": _package_version(),
        "machine": cpu_info(),
        "command": _command(args),
        "policy": args.policy,
        "label": label,
        "mode": args.mode,
        "seeds": list(args.seeds),
        "results": {},
    }
    path = out / RESULT_FILE
    if path.is_file():
        old = read_report(path)
        same = all(
            old.get(k) == report[k] for k in ("protocol", "policy", "label", "mode", "seeds")
        )
        if not same:
            raise UsageError(
                f"--out {out} holds the benchmark of another policy, label, mode or seeds "
                f"({old.get('label')}, {old.get('mode')}): choose another --out folder"
            )
        report["results"] = dict(old.get("results") or {})
    return report


def _package_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("glimpse-env")
    except PackageNotFoundError:
        return None


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this benchmark."""
    parts = ["glimpse", "bench", "--policy", args.policy]
    if args.env:
        parts += ["--env", args.env]
    parts += ["--mode", args.mode, "--seeds", ",".join(map(str, args.seeds))]
    if args.n_images is not None:
        parts += ["--n-images", str(args.n_images)]
    if args.radius:
        parts += ["--radius", str(args.radius)]
    if args.label:
        parts += ["--label", args.label]
    return shlex.join([*parts, "--out", str(args.out)])


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


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write(temporary path)`` then move it onto ``path`` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_report(out: Path, report: dict[str, Any]) -> None:
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    _atomic_write(out / RESULT_FILE, lambda tmp: Path(tmp).write_text(text))
    table = markdown_table([report])
    head = f"# GlimpseBench: {report['label']}\n\n`{report['command']}`\n\n"
    _atomic_write(out / "result.md", lambda tmp: Path(tmp).write_text(head + table))
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'glimpse-env[viz]')")
        return
    from train.bench_plots import plot_accuracy_glimpses, plot_anytime

    matplotlib.use("Agg")
    _atomic_write(out / "anytime.png", lambda tmp: plot_anytime(report, tmp))
    _atomic_write(out / "accuracy_glimpses.png", lambda tmp: plot_accuracy_glimpses([report], tmp))


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _interval(entry: dict[str, Any]) -> str:
    low, high = entry["accuracy_interval"]
    return f"{_percent(entry['accuracy'])} [{_percent(low)}, {_percent(high)}]"


def _glimpses(entry: dict[str, Any]) -> str:
    """Mean glimpses per image (``-`` in results written before it was measured)."""
    value = entry.get("mean_glimpses")
    return "-" if value is None else f"{value:.2f}"


def _summary_line(entry: dict[str, Any]) -> str:
    curve = ", ".join(_percent(a, 1) for a in entry["anytime_accuracy"])
    return (
        f"accuracy {_interval(entry)}% (95% Wilson over {entry['n_images']} images), "
        f"{_glimpses(entry)} glimpses per image, "
        f"anytime [{curve}]% mean {_percent(entry['anytime_mean'])}%, "
        f"{entry['wall_seconds']:.1f} s ({entry['episodes_per_second']:.0f} episodes/s)"
    )


def markdown_table(reports: Sequence[dict[str, Any]]) -> str:
    """One row per (report, env): accuracy with its interval, anytime, where it looks, cost."""
    lines = [
        "| entry | env | mode | images | accuracy % [95% Wilson] | glimpses per image | "
        "anytime mean % | anytime curve % | on digit % | first glimpse to digit (px) | "
        "parameters | episodes/s |",
        "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for report in reports:
        for env_id, e in report["results"].items():
            curve = " ".join(_percent(a, 1) for a in e["anytime_accuracy"])
            first = e["first_glimpse_distance_px"]
            lines.append(
                f"| {report.get('label', report.get('policy'))} | {env_id} | {e['mode']} | "
                f"{e['n_images']} | {_interval(e)} | {_glimpses(e)} | "
                f"{_percent(e['anytime_mean'])} | {curve} | "
                f"{_percent(e['on_digit_share'], 1)} | {'-' if first is None else f'{first:.1f}'} | "
                f"{e['n_parameters'] if e['n_parameters'] is not None else '-'} | "
                f"{e['episodes_per_second']:.0f} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- compare
def run_compare(args: argparse.Namespace) -> int:
    reports = [read_report(Path(p)) for p in args.results]
    print(markdown_table(reports), end="")
    groups: dict[tuple[str, str], list[float]] = {}
    for report in reports:
        for env_id, entry in report["results"].items():
            groups.setdefault((report.get("label") or report["policy"], env_id), []).append(
                entry["accuracy"]
            )
    seeded = {key: runs for key, runs in groups.items() if len(runs) > 1}
    if seeded:
        print()
        print(seed_statistics(seeded, args.reps), end="")
    return 0


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
