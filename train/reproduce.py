"""``glimpse reproduce``: Tables 1-2 of Mnih et al. (2014), row by row, into one Markdown report.

Every row of the paper's tables (:mod:`train.reproduce_rows`) runs alone, as its real
``glimpse train`` command in a subprocess; its ``eval.json`` and checkpoint are then read
back and one JSON per row is written (atomically) to ``--out-dir``, from which ``README.md``
beside them (the tables, :mod:`train.reproduce_report`) is regenerated. Rows without a JSON
show "not run".

What a row records: the paper's test error, this project's test error (deterministic: mean
locations, one rollout per image, the whole test split unless the command says otherwise;
for the random-glimpse rows a fixed seeded random draw), the sampled-rollout error (RAM),
the glimpse count, the parameter count (computed from the trained model loaded from its
checkpoint), the training wall-clock, the iterations and epochs reached, whether the
wall-clock cap stopped it, and the exact command. RAM rows also get a glimpse animation
(``gifs/<row>.gif`` and a PNG grid) of the trained agent on six test digits.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.errors import GlimpseError, UsageError, describe
from train.reproduce_report import (
    DEFAULT_OUT_DIR,
    DEFAULT_RUNS_DIR,
    list_rows,
    minutes,
    model_label,
    number,
    write_report,
)
from train.reproduce_rows import Row, get_row, select_rows
from train.validation import positive_float, positive_int

_EXAMPLES = """\
examples (1 torch thread by default, as for every CPU benchmark of this project):
  glimpse reproduce --list
  glimpse reproduce --row t1-mnist-7                    # one row
  glimpse reproduce --table 2 --max-minutes 60          # a table, 1 h per row
  glimpse reproduce --row t2-cluttered60-8 --dry-run    # print the command only
  glimpse reproduce --from-run t1-mnist-7 runs/mnist7-b # record a run made by hand
  glimpse reproduce --report                            # regenerate README.md only
"""


# ------------------------------------------------------------------------------ recording
def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _read_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json``, or the ``config`` its ``eval.json`` carries (shipped weights
    such as ``agents/pretrained/<env>`` keep only the latter)."""
    path = run_dir / "config.json"
    if path.is_file():
        return _read_json(path)
    return dict(_read_json(run_dir / "eval.json")["config"])


def count_model_parameters(run_dir: Path) -> int:
    """Parameters of the trained model in a run folder, counted from its checkpoint.

    Args:
        run_dir: a ``glimpse train ram`` or ``glimpse train baseline`` run folder.

    Returns:
        The number of trainable parameters.
    """
    from agents.checkpoints import load_checkpoint
    from agents.ram import count_parameters

    meta = _read_json(run_dir / "meta.json")
    if meta.get("agent") == "baseline":
        from agents.baselines import load_baseline

        return count_parameters(load_baseline(run_dir).model)
    from agents.ram_policy import build_model

    return count_parameters(build_model(load_checkpoint(run_dir / meta["checkpoint"])))


def command_from_config(run_dir: Path) -> str:
    """An equivalent ``glimpse train`` command rebuilt from a run's ``config.json``.

    Every flag field whose value differs from the config's default becomes a flag, in
    ``--help`` order (for runs recorded with ``--from-run``, whose exact command is not
    known); the run folder is the one given, the data folder and per-invocation flags
    (``--no-progress``, ``--stop-after``) are left out.

    Args:
        run_dir: the run folder.

    Returns:
        The command line.
    """
    from train.baseline import BaselineTrainConfig
    from train.common import PER_INVOCATION, config_fields, flag_kind, flag_text
    from train.ram import RAMTrainConfig

    meta = _read_json(run_dir / "meta.json")
    config = _read_config(run_dir)
    cls: type = BaselineTrainConfig if meta.get("agent") == "baseline" else RAMTrainConfig
    args = ["glimpse", "train", cls.command]
    for f in config_fields(cls):
        per_invocation = f.metadata.get("resume") == PER_INVOCATION["resume"]
        if f.name in ("run_dir", "data_dir") or per_invocation or flag_kind(f) is None:
            continue
        value = config.get(f.name)
        value = tuple(value) if isinstance(value, list) else value
        if value is not None and value != f.default:
            args += flag_text(f.name, value).split(" ", 1)
    args += ["--run-dir", str(run_dir)]
    return shlex.join(args)


def _row_glimpses(meta: dict[str, Any], config: dict[str, Any]) -> int | None:
    """Glimpses per image of a RAM run (None for a baseline)."""
    if meta.get("agent") == "baseline":
        return None
    from glimpse_env.registration import VARIANTS

    n = config.get("n_glimpses")
    return int(n) if n is not None else VARIANTS[meta["env_id"]].env_cls.default_n_glimpses


def check_run_matches(row: Row, run_dir: Path) -> None:
    """Raise unless the run folder holds a finished run of what the row is about.

    Raises:
        GlimpseError: if the folder does not exist or has no ``eval.json`` (not finished),
            or on a different env, agent, architecture, glimpse count or location policy.
    """
    if not run_dir.is_dir():
        raise GlimpseError(f"{run_dir}: no such run folder; check the path")
    if not (run_dir / "eval.json").is_file() or not (run_dir / "meta.json").is_file():
        raise GlimpseError(
            f"{run_dir} has no eval.json or meta.json: the run has not finished; finish it "
            "with 'glimpse train ... --resume RUN_DIR' or give another folder"
        )
    meta = _read_json(run_dir / "meta.json")
    config = _read_config(run_dir)
    baseline = meta.get("agent") == "baseline"
    found = {
        "env": meta.get("env_id"),
        "kind": meta.get("agent"),
        "arch": config.get("arch") if baseline else None,
        "glimpses": _row_glimpses(meta, config),
        "location_policy": None if baseline else config.get("location_policy", "learned"),
    }
    wanted = {
        "env": row.env_id,
        "kind": row.kind,
        "arch": row.model if row.kind == "baseline" else None,
        "glimpses": row.glimpses,
        "location_policy": row.location_policy,
    }
    wrong = {k: (found[k], v) for k, v in wanted.items() if found[k] != v}
    if wrong:
        details = ", ".join(f"{k}: run has {a!r}, row wants {b!r}" for k, (a, b) in wrong.items())
        raise GlimpseError(
            f"{run_dir} does not match row {row.id} ({details}); record it as the row it "
            "trained (see 'glimpse reproduce --list')"
        )


def render_row(run_dir: Path, out: Path, n: int = 6) -> Path:
    """Glimpse animation of a trained RAM run on the first ``n`` test digits.

    Random-glimpse runs are rendered with their seeded random locations.

    Args:
        run_dir: the run folder.
        out: the GIF to write (a PNG grid of the last frames is written beside it).
        n: number of test digits.

    Returns:
        The GIF written.
    """
    from glimpse_env.rendering import grid, save_gif, save_png
    from train.ram import load_run_policy
    from train.render_cmd import render_policy

    policy = load_run_policy(run_dir)
    frames = render_policy(policy, policy.env_id, n=n, env_kwargs=policy.env_kwargs)
    tiles = [grid(step, 3) for step in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(tiles[-1], out.with_suffix(".png"))
    return Path(save_gif(tiles, out, fps=1.5))


def record_row(
    row: Row,
    run_dir: Path,
    out_dir: Path,
    command: str | None = None,
    total_wall_s: float | None = None,
    render: bool = True,
) -> dict[str, Any]:
    """Read a finished run and write the row's JSON (atomically) into ``out_dir``.

    Args:
        row: the row.
        run_dir: its run folder (with ``eval.json``).
        out_dir: where the row JSONs (and GIFs) go.
        command: the command that made the run (None: rebuilt from ``config.json``).
        total_wall_s: wall-clock of the whole command (training and evaluation), if known.
        render: write the glimpse animation of RAM rows.

    Returns:
        The row's record.

    Raises:
        GlimpseError: if the run does not match the row (see :func:`check_run_matches`).
    """
    from agents.checkpoints import write_json

    check_run_matches(row, run_dir)
    evaluation = _read_json(run_dir / "eval.json")
    config = _read_config(run_dir)
    deterministic = evaluation["results"]["deterministic"]
    sampled = evaluation.get("test_error_rate_sampled")
    planned_epochs = float(config["epochs"])
    iterations = int(evaluation["iterations"])
    planned = int(evaluation.get("iterations_planned", iterations))
    epochs = float(evaluation.get("epochs", planned_epochs * iterations / max(planned, 1)))
    gif = None
    if render and row.kind == "ram":
        gif_path = render_row(run_dir, out_dir / "gifs" / f"{row.id}.gif")
        gif = gif_path.relative_to(out_dir).as_posix()
    record = {
        "row": row.id,
        "table": row.table,
        "task": row.task_name,
        "model": model_label(row, config),
        "kind": row.kind,
        "env_id": row.env_id,
        "glimpses": row.glimpses,
        "location_policy": row.location_policy,
        "paper_test_error": row.paper,
        "test_error": 100.0 * float(evaluation["test_error_rate"]),
        "test_error_sampled": None if sampled is None else 100.0 * float(sampled),
        "test_images": int(deterministic["n_images"]),
        "parameters": count_model_parameters(run_dir),
        "train_wall_s": float(evaluation["train_wall_s"]),
        "total_wall_s": total_wall_s,
        "iterations": iterations,
        "iterations_planned": planned,
        "epochs": epochs,
        "epochs_planned": planned_epochs,
        "capped": bool(evaluation.get("stopped_early", False)),
        "max_minutes": evaluation.get("max_minutes", config.get("max_minutes")),
        "command": command or command_from_config(run_dir),
        "run_dir": str(run_dir),
        "gif": gif,
        "device": evaluation.get("device"),
        "torch_threads": evaluation.get("torch_threads"),
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(out_dir / f"{row.id}.json", record)
    return record


# ---------------------------------------------------------------------------------- running
def run_row(
    row: Row,
    runs_dir: Path,
    out_dir: Path,
    *,
    threads: int | None = 1,
    max_minutes: float | None = None,
    epochs: float | None = None,
    extra: Sequence[str] = (),
    render: bool = True,
    dry_run: bool = False,
) -> dict[str, Any] | None:
    """Train one row with its real command (``python -m train.cli train ...``), then record it.

    Args:
        row: the row.
        runs_dir: parent of the run folder (``runs_dir / row.id``).
        out_dir: where the row JSON goes.
        threads: torch threads of the training.
        max_minutes: wall-clock cap of the training.
        epochs: override the row's epochs.
        extra: further training arguments.
        render: write the glimpse animation (RAM rows).
        dry_run: only print the command.

    Returns:
        The row's record (None for a dry run).

    Raises:
        GlimpseError: if the training command fails (its own error line is above), or its
            run does not match the row.
    """
    run_dir = runs_dir / row.id
    args = row.train_args(run_dir, threads, max_minutes, epochs, extra)
    command = shlex.join(["glimpse", *args])
    print(f"[{row.id}] {command}", flush=True)
    if dry_run:
        return None
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "train.cli", *args], env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise GlimpseError(
            f"{row.id}: the training command failed (exit status {proc.returncode}); its "
            f"error is above; rerun it alone with: {command}"
        )
    record = record_row(row, run_dir, out_dir, command, total_wall_s=wall, render=render)
    capped = " (capped)" if record["capped"] else ""
    print(
        f"[{row.id}] test error {record['test_error']:.2f}% (paper {number(row.paper)}), "
        f"{record['parameters']:,} parameters, {minutes(record['train_wall_s'])}{capped}",
        flush=True,
    )
    return record


# ------------------------------------------------------------------------------ command line
def register(subparsers: Any) -> None:
    """Add ``glimpse reproduce`` to the ``glimpse`` command's subparsers."""
    parser = subparsers.add_parser(
        "reproduce",
        help="train and record the rows of the paper's Tables 1-2",
        description=(
            "Reproduce Tables 1-2 of Mnih et al. (2014): train each row with its real\n"
            "'glimpse train' command, record its test error, parameters and wall-clock as\n"
            "one JSON per row in --out-dir, and regenerate the tables (README.md there)."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument(
        "--row", action="append", default=[], metavar="ID", help="run this row (repeatable)"
    )
    parser.add_argument(
        "--table", action="append", type=int, default=[], choices=(1, 2), help="run a table"
    )
    parser.add_argument(
        "--from-run",
        nargs=2,
        action="append",
        default=[],
        metavar=("ROW_ID", "RUN_DIR"),
        help="record a finished run folder as this row (repeatable)",
    )
    parser.add_argument(
        "--command",
        dest="run_command",
        metavar="COMMAND",
        default=None,
        help="with one --from-run: the command that made the run (default: rebuilt from "
        "its config.json)",
    )
    parser.add_argument("--report", action="store_true", help="only regenerate README.md")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads of each training (default: 1)",
    )
    parser.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="wall-clock cap per row (training): the run then stops cleanly, the row says 'capped'",
    )
    parser.add_argument(
        "--epochs", type=positive_float, default=None, help="override every row's epochs"
    )
    parser.add_argument(
        "--extra",
        default="",
        help='arguments appended to every training command, e.g. --extra="--test-images 1000"',
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"row JSONs, GIFs and the report (default: {DEFAULT_OUT_DIR})",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=DEFAULT_RUNS_DIR,
        help=f"run folders, one per row (default: {DEFAULT_RUNS_DIR}/<row>)",
    )
    parser.add_argument("--no-render", action="store_true", help="no glimpse animations")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> list[Row]:
    """The rows to train, after checking the command line.

    Raises:
        UsageError: on an unknown row, a bad value or combination of flags, or nothing to do.
    """
    rows = select_rows(args.row, args.table)
    for row_id, _ in args.from_run:
        get_row(row_id)
    if not rows and not args.from_run and not args.report:
        raise UsageError("nothing to do: give --row, --table, --from-run, --report or --list")
    if args.run_command is not None and len(args.from_run) != 1:
        raise UsageError("--command goes with exactly one --from-run")
    try:
        shlex.split(args.extra)
    except ValueError as exc:
        raise UsageError(f"--extra {args.extra!r}: {exc}; quote it as a shell would") from None
    return rows


def run(args: argparse.Namespace) -> int:
    """``glimpse reproduce``: record the ``--from-run`` folders, train the selected rows,
    then regenerate the report.

    A row that fails does not stop the others; the command then fails (exit status 1) once
    the report is written, with one line per failed row.

    Returns:
        0 when every selected row succeeded.

    Raises:
        UsageError: on a bad command line.
        GlimpseError: when a row failed.
    """
    if args.list:
        print(list_rows(args.out_dir))
        return 0
    rows = _check_args(args)
    jobs = len(args.from_run) + len(rows)
    failed: list[tuple[str, Exception]] = []

    def failure(row_id: str, exc: Exception) -> None:
        failed.append((row_id, exc))
        if jobs > 1:  # a single row's error is the command's own error line
            print(f"[{row_id}] failed: {describe(exc)[0]}", file=sys.stderr, flush=True)

    for row_id, run_dir in args.from_run:
        row = get_row(row_id)
        try:
            record = record_row(
                row, Path(run_dir), args.out_dir, args.run_command, render=not args.no_render
            )
        except (GlimpseError, OSError, ValueError) as exc:
            failure(row_id, exc)
            continue
        print(f"[{row_id}] recorded {run_dir}: test error {record['test_error']:.2f}%")
    for row in rows:
        try:
            run_row(
                row,
                args.runs_dir,
                args.out_dir,
                threads=args.threads,
                max_minutes=args.max_minutes,
                epochs=args.epochs,
                extra=shlex.split(args.extra),
                render=not args.no_render,
                dry_run=args.dry_run,
            )
        except (GlimpseError, OSError, ValueError) as exc:
            failure(row.id, exc)
    if not args.dry_run:
        print(f"wrote {write_report(args.out_dir)}")
    if len(failed) == 1 and jobs == 1:
        raise failed[0][1]
    if failed:
        names = ", ".join(row_id for row_id, _ in failed)
        raise GlimpseError(f"{len(failed)} of {jobs} rows failed ({names}); see the lines above")
    return 0
