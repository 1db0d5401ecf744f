"""Pieces every training command shares: devices, run folders, metric logs."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

#: Splits a trainer may train on: ``train`` (the first 50,000 digits; the last 10,000,
#: ``val``, are held out for validation) or ``train_full`` (all 60,000).
TRAINING_SPLITS: tuple[str, ...] = ("train", "train_full")


def validation_held_out(split: str) -> bool:
    """Whether the validation digits (``val``) are outside the training split ``split``."""
    return split == "train"


def training_split_notice(split: str) -> str | None:
    """The line a trainer prints when its validation is not held out (else None)."""
    if validation_held_out(split):
        return None
    return f"note: training on {split!r}, which contains the validation digits"


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(device)


def make_run_dir(run_dir: str | None, agent: str, env_id: str) -> Path:
    """Create (or reuse) the run folder."""
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join("runs", f"{agent}-{env_id}-{stamp}")
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


class MetricLogger:
    """Append metrics to ``metrics.csv`` (and TensorBoard when installed).

    The CSV is flushed after every row, so a killed run keeps what it logged. On resume the
    rows logged after the checkpoint's step are dropped, so the file matches an
    uninterrupted run.
    """

    def __init__(
        self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True
    ) -> None:
        self.path = run_dir / "metrics.csv"
        self._fields: list[str] | None = None
        if resume_step is not None and self.path.is_file():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= resume_step]
            if rows:
                self._fields = list(rows[0].keys())
                with self.path.open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=self._fields)
                    writer.writeheader()
                    writer.writerows(rows)
            else:
                self.path.unlink()
        elif self.path.exists():
            self.path.unlink()
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)
            except ImportError:  # tensorboard extra not installed: CSV only
                self._tb = None

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Append one row; a metric seen for the first time adds a column (earlier rows blank)."""
        row = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        if self._fields is None or not set(row) <= set(self._fields):
            self._widen([*(self._fields or []), *(k for k in row if k not in (self._fields or []))])
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._fields).writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)

    def _widen(self, fields: list[str]) -> None:
        """Rewrite the CSV with the header ``fields`` (rows so far keep their values)."""
        rows: list[dict[str, str]] = []
        if self._fields is not None and self.path.is_file():
            with self.path.open() as f:
                rows = list(csv.DictReader(f))
        self._fields = fields
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item()
    if hasattr(v, "item"):
        return v.item()
    return v


def add_checkpoint_arguments(parser: Any, verb: str) -> None:
    """``CHECKPOINT`` (a run folder or file) or ``--pretrained ENV_ID``, for eval/render."""
    parser.add_argument("checkpoint", nargs="?", help="run folder or checkpoint file")
    parser.add_argument(
        "--pretrained", metavar="ENV_ID", help=f"{verb} the weights shipped for ENV_ID"
    )
    parser.add_argument("--env", default=None, help="env id (default: the one it was trained on)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder")


def checkpoint_from_args(args: Any) -> Path:
    """The checkpoint named by ``CHECKPOINT`` or ``--pretrained`` (exactly one is needed)."""
    if (args.checkpoint is None) == (args.pretrained is None):
        raise SystemExit("give either a CHECKPOINT or --pretrained ENV_ID")
    if args.pretrained is not None:
        from agents.pretrained import pretrained_path

        return pretrained_path(args.pretrained)
    return Path(args.checkpoint)


def env_kwargs_for(trained_kwargs: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """The env keyword arguments an agent was trained with, pointed at ``data_dir`` if given."""
    kwargs = dict(trained_kwargs)
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return kwargs


@dataclasses.dataclass
class RunOptions:
    """Run-control options every ``glimpse train`` config shares (each a ``--flag``)."""

    test_images: int | None = None
    """Test images of the final evaluation (None: the whole test split)."""
    stop_after: int | None = None
    """Stop abruptly after this many iterations of this invocation, as if killed (no
    checkpoint is written at the stop); for testing ``--resume``."""
    max_minutes: float | None = None
    """Cap on the training wall-clock in minutes (all invocations of the run together,
    validation included): then stop cleanly after the current iteration (checkpoint,
    validation, test evaluation; eval.json records it). None: no cap."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    data_dir: str | None = None
    """MNIST folder (default: $GLIMPSE_ENV_DATA or the user cache)."""
    progress: bool = True
    """Progress bar (else a log line per ``log_every``)."""
    extra_env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Further env keyword arguments."""


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings of a dataclass's fields (the string literal under each field), one line each,
    including those of its dataclass bases (a subclass's own text wins).

    Used for ``--help``, so each field's documentation is written once, in the config class.
    """
    import ast
    import inspect
    import itertools

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(inspect.getsource(klass))
        except (OSError, TypeError):  # source not available (e.g. frozen app)
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
            ):
                docs[node.target.id] = " ".join(str(nxt.value.value).split()).replace("%", "%%")
    return docs


def config_fields(cls: type) -> list[dataclasses.Field]:
    """A config dataclass's fields in flag order: those it declares itself first, then the
    inherited ones (the shared :class:`RunOptions`)."""
    own = set(vars(cls).get("__annotations__", {}))
    return sorted(dataclasses.fields(cls), key=lambda f: f.name not in own)


def add_config_flags(
    parser: Any, cls: type, skip: set[str], choices: dict[str, tuple[str, ...]] | None = None
) -> None:
    """One ``--flag`` per field of the config dataclass ``cls`` (except ``skip``).

    Flags default to ``None`` (= keep the config's default); booleans get ``--x/--no-x``.
    """
    docs = field_docs(cls)
    for f in config_fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = str(f.type)
        if text.startswith("bool"):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=docs.get(f.name)
            )
            continue
        kind = int if text.startswith("int") else float if text.startswith("float") else str
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            choices=(choices or {}).get(f.name),
            help=f"{docs.get(f.name, '')} (default: {f.default})",
        )


def config_from_args(args: Any, cls: type, base: dict[str, Any] | None = None) -> Any:
    """A config: ``cls`` defaults, then ``base`` (e.g. a preset), then the flags given.

    With ``--resume RUN_DIR`` the run's saved ``config.json`` is the starting point instead,
    and only ``--no-progress`` / ``--stop-after`` apply.
    """
    if args.resume:
        saved = json.loads((Path(args.resume) / "config.json").read_text())
        return dataclasses.replace(
            cls(**saved), progress=not args.no_progress, stop_after=args.stop_after
        )
    values: dict[str, Any] = dict(base or {})
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "progress":
            values[f.name] = v
    values["progress"] = not args.no_progress
    return cls(**values)


def dump_config(path: Path, config: dict[str, Any]) -> None:
    """Write the resolved configuration as JSON (atomically)."""
    from agents.checkpoints import write_json

    write_json(path, json.loads(json.dumps(config, default=str)))
