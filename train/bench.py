"""``glimpse bench``: benchmark a policy with GlimpseBench (:mod:`glimpse_env.bench`).

``glimpse bench --policy SPEC --env ID|all [--mode deterministic|sample] [--seeds 0,1,...]
[--n-images N] [--label NAME] --out DIR`` where ``SPEC`` is

* a run folder (or checkpoint) of ``glimpse train``; a supervised baseline's (``glimpse train
  baseline``) is an entry that sees the whole canvas, not glimpse-limited
  (:func:`agents.baselines.bench_baseline`: ``full_image`` true, no glimpses, anytime
  accuracy or locations; deterministic mode only);
* ``pretrained:ENV_ID``, the weights shipped for that env, or ``pretrained`` alone: for each
  env benchmarked, the weights shipped for it;
* ``package.module:factory``, a user's own code importable from ``PYTHONPATH``: ``factory()``
  returns a policy (``initial_state``/``act``) or a bare callable ``act(obs) -> action``.

It writes, env by env (each file replaced atomically, so an error never loses what an
earlier env wrote): ``DIR/result.json`` (schema version, protocol and package version, the
machine, the command, one result per env), ``DIR/result.md`` (a Markdown table),
``DIR/anytime.png`` (the anytime-accuracy curves; none for a full-image entry, which has
none) and ``DIR/accuracy_glimpses.png`` (accuracy against glimpses used, with the paper's
RAM rows; an adaptive policy is one point: :mod:`train.bench_plots`). The plots need
matplotlib. The entry's label is ``--label``, else the policy's own ``name`` (a factory's
policy may have one), else ``SPEC``; the results keep ``SPEC`` as their ``policy``.

``glimpse bench leaderboard --out DIR`` writes the reference entries of every env
(:mod:`train.leaderboard`).

``glimpse bench compare A.json B.json ...`` (files or folders holding ``result.json``)
prints the side-by-side table with intervals (:mod:`train.bench_report`, which reads,
prints and compares results). Results sharing a label (and env) are the training seeds of
one entry, so they must have been measured alike (same images, mode, split, protocol):
their IQM and mean with stratified-bootstrap 95% intervals and the probability of
improvement between such entries come from ``rliable`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.bench_plots import has_anytime
from train.bench_report import (
    RESULT_FILE,
    markdown_table,
    read_report,
    run_compare,
    summary_line,
)
from train.bench_report import seed_intervals as seed_intervals  # re-exported
from train.bench_report import seed_statistics as seed_statistics  # re-exported
from train.errors import GlimpseError, UsageError
from train.validation import device_name

if TYPE_CHECKING:
    from glimpse_env.bench import Result

#: Version of the layout of ``result.json``.
SCHEMA_VERSION = 1
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: The line ``glimpse eval`` gives too.
_NO_SAMPLED_MODE = "a supervised baseline has no sampled mode: use --mode deterministic"


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
        help="env id; all: the four fixed-length benchmark ids; adaptive: their four adaptive "
        "twins, where the policy stops (default: the one the policy was trained on)",
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
    parser.add_argument(
        "--label",
        default=None,
        help="entry name in tables and compare (default: the policy's own name, else SPEC)",
    )
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
        when ``env_id`` is None; a supervised baseline's run gives a
        :class:`FullImagePolicy` (benchmark any of them with :func:`benchmark`).

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
            if wanted.endswith("Adaptive-v0"):
                raise UsageError(f"--policy {spec}: {_no_shipped_model([wanted])}") from exc
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


def _no_shipped_model(env_ids: Sequence[str]) -> str:
    """Why ``pretrained`` cannot benchmark ``env_ids`` (adaptive ids: no model is shipped
    for them) and how to train one."""
    from agents.pretrained import available

    example = env_ids[0] if env_ids[0].endswith("Adaptive-v0") else "GlimpseMNISTAdaptive-v0"
    return (
        f"no shipped model for {', '.join(env_ids)} (shipped: {', '.join(available())}); "
        f"train one with glimpse train ram --env {example} --init-from "
        f"pretrained:{example.replace('Adaptive-', '-')} --run-dir runs/stop and benchmark it "
        "with --policy runs/stop (docs/stopping.md)"
    )


def _load_agent(
    path: Path, env_id: str | None, data_dir: str | None, device: str
) -> tuple[Any, dict[str, Any], str]:
    from agents.policy import check_policy_fits, env_kwargs_from_meta, load_policy
    from train.common import load_for_cli, read_meta_for_cli, resolve_device

    if read_meta_for_cli(path).get("agent") == "baseline":
        return _load_baseline(path, env_id, data_dir, device)
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
    """A trained agent's glimpses (a baseline's canvas size) differ from the env's
    (``--env all`` skips that env)."""


@dataclass
class FullImagePolicy:
    """What :func:`load_spec` gives for a supervised baseline's run: a classifier of whole
    canvases (no glimpses), benchmarked by :func:`agents.baselines.bench_baseline`.

    Attributes:
        model: the baseline (a torch module taking ``(N, S, S)`` canvases).
        path: its checkpoint.
    """

    model: Any
    path: Path


def _load_baseline(
    path: Path, env_id: str | None, data_dir: str | None, device: str
) -> tuple[FullImagePolicy, dict[str, Any], str]:
    """A supervised baseline's run for ``env_id`` (default: its own env).

    Raises:
        _DoesNotFit: if the env's canvases are not the size the baseline takes.
    """
    from agents.baselines import check_baseline_fits, load_baseline
    from agents.policy import env_kwargs_from_meta
    from train.common import load_for_cli, resolve_device

    loaded = load_for_cli(path, load_baseline, device=str(resolve_device(device)))
    env_id = env_id or loaded.env_id
    try:
        check_baseline_fits(loaded.model, loaded.env_id, env_id)
    except ValueError as exc:
        raise _DoesNotFit(f"--policy {path}: {exc}") from exc
    return (
        FullImagePolicy(loaded.model, loaded.path),
        env_kwargs_from_meta(loaded.meta, data_dir),
        env_id,
    )


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
def benchmark(
    policy: Any,
    env_id: str,
    *,
    mode: str = "deterministic",
    n_images: int | None = None,
    num_envs: int = 500,
    seeds: Sequence[int] = (0,),
    env_kwargs: dict[str, Any] | None = None,
    radius_px: float = 0.0,
    name: str | None = None,
    progress: bool = False,
) -> Result:
    """GlimpseBench of what :func:`load_spec` gave: a :class:`FullImagePolicy` through
    :func:`agents.baselines.bench_baseline` (``num_envs`` canvases classified together),
    any other policy through :func:`glimpse_env.bench.evaluate` (same arguments).

    Raises:
        UsageError: for a full-image policy in ``"sample"`` mode.
        BenchPolicyError: as :func:`glimpse_env.bench.evaluate`.
    """
    from glimpse_env.bench import evaluate

    if isinstance(policy, FullImagePolicy):
        from agents.baselines import bench_baseline

        if mode != "deterministic":
            raise UsageError(_NO_SAMPLED_MODE)
        return bench_baseline(
            policy.model,
            env_id,
            n_images=n_images,
            seeds=seeds,
            env_kwargs=env_kwargs,
            radius_px=radius_px,
            batch_size=num_envs,
            name=name,
            progress=progress,
        )
    return evaluate(
        policy,
        env_id,
        mode=mode,
        n_images=n_images,
        num_envs=num_envs,
        seeds=seeds,
        env_kwargs=env_kwargs,
        radius_px=radius_px,
        name=name,
        progress=progress,
    )


def run(args: argparse.Namespace) -> int:
    from glimpse_env.bench import BenchPolicyError
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

            shipped = [e for e in env_ids if e in available()]
            if not shipped:
                message = _no_shipped_model([e for e in env_ids if e])
                raise UsageError(f"--policy pretrained --env {args.env}: {message}")
            env_ids = list(shipped)
    else:
        env_ids = [args.env]
    report: dict[str, Any] | None = None
    plots: bool | None = None  # matplotlib installed (checked once, at the first write)
    for env_id in env_ids:
        try:
            policy, kwargs, env_id = load_spec(args.policy, env_id, args.data_dir, args.device)
        except _DoesNotFit as exc:
            if not several:
                raise
            print(f"{env_id}: skipped ({exc})", flush=True)
            continue
        if report is None:  # the label may be the policy's own name
            report = _start_report(out, args, args.label or _own_name(policy) or args.policy)
        try:
            result = benchmark(
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
        plots = _plots_available() if plots is None else plots
        _write_report(out, report, plots)
        print(f"{env_id}: {summary_line(entry)}", flush=True)
    if report is None:
        raise UsageError(f"--policy {args.policy} fits none of the envs (see above)")
    if plots and not has_anytime(report):
        print("anytime.png not written: no result has an anytime curve (a full-image entry)")
    return 0


def _own_name(policy: Any) -> str | None:
    """The policy's own ``name`` attribute (as :func:`glimpse_env.bench_policy.policy_name`
    reads it), or None."""
    name = getattr(policy, "name", None)
    return name if isinstance(name, str) and name else None


def _plots_available() -> bool:
    """Whether matplotlib is installed; if not, says so (once per command)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'glimpse-env[viz]')")
        return False
    matplotlib.use("Agg")
    return True


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


def _write_report(out: Path, report: dict[str, Any], plots: bool = True) -> None:
    """``result.json``, ``result.md`` and, with ``plots`` (matplotlib installed), the plots:
    ``anytime.png`` only when some result has an anytime curve."""
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    _atomic_write(out / RESULT_FILE, lambda tmp: Path(tmp).write_text(text))
    table = markdown_table([report])
    head = f"# GlimpseBench: {report['label']}\n\n`{report['command']}`\n\n"
    _atomic_write(out / "result.md", lambda tmp: Path(tmp).write_text(head + table))
    if not plots:
        return
    from train.bench_plots import plot_accuracy_glimpses, plot_anytime

    if has_anytime(report):
        _atomic_write(out / "anytime.png", lambda tmp: plot_anytime(report, tmp))
    _atomic_write(out / "accuracy_glimpses.png", lambda tmp: plot_accuracy_glimpses([report], tmp))
