"""Pieces every training command shares: devices, run folders, metric logs."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from train.errors import GlimpseError, UsageError
from train.validation import bounds_of, check_fields, describe_bounds, number_type

#: Images in each MNIST split (``val`` is the last 10,000 training digits).
SPLIT_SIZES: dict[str, int] = {"train": 50_000, "val": 10_000, "test": 10_000, "train_full": 60_000}

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
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error.

    Raises:
        UsageError: for a device torch does not know, or CUDA without a CUDA device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(
            f"--device {device!r} is not a torch device; use auto, cpu or cuda (cuda:N)"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {device} was asked for, but torch sees no CUDA device; "
                "use --device cpu (or auto)"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s); "
                "use cuda:0 .. cuda:N-1"
            )
    return resolved


def check_images(n_images: int | None, split: str, flag: str) -> None:
    """Refuse more images than ``split`` has (a usage error naming ``flag``)."""
    size = SPLIT_SIZES.get(split)
    if n_images is not None and size is not None and n_images > size:
        raise UsageError(
            f"{flag} {n_images} is more than the {split} split has ({size:,} images); "
            f"give at most {size} or leave it out for all"
        )


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


def _pretrained_id(text: str) -> str:
    """argparse ``type=`` of ``--pretrained``: an env id with shipped weights."""
    from agents.pretrained import available

    if text not in available():
        raise argparse.ArgumentTypeError(
            f"no pretrained weights for {text!r}; shipped: {', '.join(available()) or 'none'}"
        )
    return text


def add_checkpoint_arguments(parser: Any, verb: str) -> None:
    """``CHECKPOINT`` (a run folder or file) or ``--pretrained ENV_ID``, for eval/render."""
    from glimpse_env.registration import ENV_IDS

    parser.add_argument("checkpoint", nargs="?", help="run folder or checkpoint file")
    parser.add_argument(
        "--pretrained",
        metavar="ENV_ID",
        type=_pretrained_id,
        help=f"{verb} the weights shipped for ENV_ID",
    )
    parser.add_argument(
        "--env",
        default=None,
        choices=ENV_IDS,
        metavar="ENV_ID",
        help="env id (default: the one it was trained on)",
    )
    parser.add_argument("--data-dir", default=None, help="MNIST folder")


def checkpoint_from_args(args: Any) -> Path:
    """The checkpoint named by ``CHECKPOINT`` or ``--pretrained`` (exactly one is needed).

    Raises:
        UsageError: if both or neither are given.
    """
    if (args.checkpoint is None) == (args.pretrained is None):
        got = "both" if args.checkpoint is not None else "neither"
        raise UsageError(
            f"give either a CHECKPOINT (run folder or file) or --pretrained ENV_ID (got {got})"
        )
    if args.pretrained is not None:
        from agents.pretrained import pretrained_path

        return pretrained_path(args.pretrained)
    return Path(args.checkpoint)


#: What loading a checkpoint that is corrupt, truncated or not a glimpse checkpoint raises.
_BAD_CHECKPOINT_ERRORS: tuple[type[BaseException], ...] = (
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    EOFError,
    RuntimeError,
)


def load_for_cli(path: Path, load: Any, **kwargs: Any) -> Any:
    """``load(path, **kwargs)`` with the failures of a bad checkpoint as one clear error.

    Args:
        path: run folder or checkpoint file given on the command line.
        load: the loader (e.g. :func:`agents.policy.load_policy`).
        **kwargs: passed to ``load``.

    Raises:
        GlimpseError: if ``path`` is missing, or holds something ``load`` cannot read (a
            corrupt or truncated checkpoint, a foreign file, a ``meta.json`` without its
            entries); file errors other than a missing file propagate as they are.
    """
    import pickle
    import zipfile

    hint = "give a run folder of 'glimpse train' (with meta.json) or its checkpoint file"
    if not path.exists():
        raise GlimpseError(f"checkpoint {path} not found; {hint}")
    try:
        return load(path, **kwargs)
    except GlimpseError:
        raise
    except FileNotFoundError as exc:
        raise GlimpseError(f"{_reason(exc)}; {hint}") from exc
    except OSError:
        raise
    except ValueError as exc:  # raised where the problem was found, with a message for users
        if getattr(exc, "reason", None) in ("corrupt", "invalid"):  # a CheckpointError
            raise GlimpseError(f"{exc}; {hint}, or retrain") from exc
        message = str(exc)
        if ";" not in message and "give" not in message:  # add what to do
            message = f"{message}; {hint}"
        raise GlimpseError(message) from exc
    except (*_BAD_CHECKPOINT_ERRORS, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise GlimpseError(
            f"cannot load {path}: {_reason(exc)}; it is not a complete checkpoint of "
            "'glimpse train' (corrupt, truncated or another file): "
            f"{hint}, or retrain"
        ) from exc


def read_meta_for_cli(path: Path) -> dict[str, Any]:
    """The metadata of the checkpoint named on the command line (see
    :func:`agents.policy.read_meta`), which must name the kind of agent.

    Raises:
        GlimpseError: as :func:`load_for_cli`, or when the metadata names no agent kind.
    """
    from agents.policy import read_meta

    meta = load_for_cli(path, read_meta)[1]
    if not meta.get("agent"):
        raise GlimpseError(
            f"{path} is not a checkpoint of 'glimpse train' (its metadata names no agent "
            "kind); give a run folder of 'glimpse train' (with meta.json) or its checkpoint file"
        )
    return meta


def _reason(exc: BaseException) -> str:
    """A short phrase for why loading failed."""
    if isinstance(exc, KeyError):
        return f"missing entry {exc.args[0]!r}" if exc.args else "missing entry"
    if isinstance(exc, OSError):
        if exc.strerror is None:  # raised with a message of its own
            return " ".join(str(exc).split())
        return f"{exc.filename}: {exc.strerror.lower()}"
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def env_kwargs_for(trained_kwargs: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """The env keyword arguments an agent was trained with, pointed at ``data_dir`` if given."""
    kwargs = dict(trained_kwargs)
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return kwargs


@dataclasses.dataclass
class RunOptions:
    """Run-control options every ``glimpse train`` config shares (each a ``--flag``)."""

    test_images: int | None = dataclasses.field(
        default=None, metadata={"ge": 1, "le": 10_000, "why": "the test split has 10,000 images"}
    )
    """Test images of the final evaluation (None: the whole test split)."""
    stop_after: int | None = dataclasses.field(default=None, metadata={"ge": 1})
    """Stop abruptly after this many iterations of this invocation, as if killed (no
    checkpoint is written at the stop); for testing ``--resume``."""
    max_minutes: float | None = dataclasses.field(default=None, metadata={"ge": 0.0})
    """Cap on the training wall-clock in minutes (all invocations of the run together,
    validation included): then stop cleanly after the current iteration (checkpoint,
    validation, test evaluation; eval.json records it). None: no cap."""
    threads: int | None = dataclasses.field(default=None, metadata={"ge": 1})
    """torch CPU threads (None: torch's default)."""
    data_dir: str | None = None
    """MNIST folder (default: $GLIMPSE_ENV_DATA or the user cache)."""
    progress: bool = True
    """Progress bar (else a log line per ``log_every``)."""
    extra_env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Further env keyword arguments."""

    def __post_init__(self) -> None:
        """Check every bounded field (``metadata`` bounds; see :mod:`train.validation`).

        Raises:
            ValueError: naming the first field out of bounds.
        """
        check_fields(self)


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
    Numbers are checked as they are parsed: a float must be finite, and a field's
    ``metadata`` bounds (``ge``, ``gt``, ``le``, ``lt``; see :mod:`train.validation`) apply,
    so a value out of bounds is a usage error naming the flag.
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
        bounds = bounds_of(f.metadata)
        allowed = f"; {describe_bounds(bounds)}" if describe_bounds(bounds) else ""
        parser.add_argument(
            flag,
            type=str if kind is str else number_type(kind, **bounds),
            default=None,
            choices=(choices or {}).get(f.name),
            help=f"{docs.get(f.name, '')} (default: {f.default}{allowed})",
        )


def config_from_args(args: Any, cls: type, base: dict[str, Any] | None = None) -> Any:
    """A config: ``cls`` defaults, then ``base`` (e.g. a preset), then the flags given.

    With ``--resume RUN_DIR`` the run's saved ``config.json`` is the starting point instead
    (see :func:`resumed_config`).
    """
    if args.resume:
        return resumed_config(args, cls, base)
    values: dict[str, Any] = dict(base or {})
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "progress":
            values[f.name] = v
    values["progress"] = not args.no_progress
    return cls(**values)


#: Fields a resumed run takes from the command line: they only concern this invocation.
_PER_INVOCATION: tuple[str, ...] = ("progress", "stop_after")


def run_control_fields() -> tuple[str, ...]:
    """Fields of a saved run that ``--resume`` may change: the run-control options of
    :class:`RunOptions` (wall-clock cap, test images, threads, data folder, ...); they do not
    change what is trained."""
    return tuple(f.name for f in dataclasses.fields(RunOptions))


def resumed_config(args: Any, cls: type, base: dict[str, Any] | None = None) -> Any:
    """The saved config of the run named by ``--resume``, with the run-control flags given.

    Every flag given (and every value of ``base``, e.g. a ``--preset``) is compared with
    the run's saved ``config.json``. Run-control options (:func:`run_control_fields`) are
    applied and reported on stdout; any other flag that differs from the saved value is
    refused, naming the flags and the saved values (a flag equal to it is fine).

    Args:
        args: the parsed arguments (``args.resume`` set).
        cls: the config dataclass of the command.
        base: values from a preset, as for a new run.

    Returns:
        The config to continue the run with.

    Raises:
        UsageError: if flags contradict the saved config, or ``--run-dir`` names another
            folder.
        GlimpseError: if the folder is not a run folder of this command.
    """
    run_dir = Path(args.resume)
    agent = getattr(args, "agent", None) or cls.__name__
    saved = read_saved_config(run_dir, cls, agent)
    if getattr(args, "run_dir", None) is not None and (
        Path(args.run_dir).absolute() != run_dir.absolute()
    ):
        raise UsageError(
            f"--run-dir {args.run_dir} and --resume {args.resume} name different folders; "
            "give only --resume RUN_DIR to continue a run"
        )
    origin = f" (from --preset {args.preset})" if getattr(args, "preset", None) else ""
    given: dict[str, tuple[Any, str]] = {k: (v, origin) for k, v in (base or {}).items()}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None and f.name not in ("run_dir", *_PER_INVOCATION):
            given[f.name] = (v, "")
    changeable = set(run_control_fields())
    conflicts, applied = [], []
    changes: dict[str, Any] = {}
    for name, (value, source) in given.items():
        old = getattr(saved, name)
        if value == old:
            continue
        if name in changeable:
            changes[name] = value
            applied.append(f"{_flag_text(name, value)} (was {_show(old)})")
        else:
            conflicts.append(f"{_flag_text(name, value)}{source} (saved: {_show(old)})")
    if conflicts:
        allowed = ", ".join(
            "--" + n.replace("_", "-")
            for n in run_control_fields()
            if n not in ("progress", "extra_env_kwargs")
        )
        raise UsageError(
            f"--resume {args.resume} continues the run with its saved settings, which these "
            f"flags contradict: {', '.join(conflicts)}; drop them to continue the run, or "
            f"start a new run (--run-dir NEW) to use them (on resume only {allowed} may change)"
        )
    if applied:
        print(f"resuming {run_dir} with {', '.join(applied)}")
    return dataclasses.replace(
        saved,
        **changes,
        progress=not args.no_progress,
        stop_after=getattr(args, "stop_after", None),
    )


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag_text(name: str, value: Any) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {_show(value)}"


def read_saved_config(run_dir: Path, cls: type, agent: str) -> Any:
    """The config saved in ``run_dir/config.json`` by ``glimpse train AGENT``.

    Raises:
        GlimpseError: if the folder or its ``config.json`` is missing, unreadable, of
            another agent, or holds settings ``cls`` does not take.
    """
    config_file = run_dir / "config.json"
    if not run_dir.is_dir():
        raise GlimpseError(
            f"--resume {run_dir}: no such folder; give the run folder of the run to continue"
        )
    check_run_agent(run_dir, (agent,))
    if not config_file.is_file():
        raise GlimpseError(
            f"--resume {run_dir}: it has no config.json, so it is not a run folder of "
            f"'glimpse train {agent}'; check the folder, or start a new run there with --run-dir"
        )
    try:
        saved = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise GlimpseError(
            f"{config_file} is not valid JSON ({exc.msg} at line {exc.lineno}): the run folder "
            "is damaged; restore config.json or start a new run"
        ) from exc
    known = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(saved, dict) or set(saved) - known:
        unknown = sorted(set(saved) - known) if isinstance(saved, dict) else type(saved).__name__
        raise GlimpseError(
            f"{config_file} is not a config of 'glimpse train {agent}' (unexpected: {unknown}); "
            "resume a run with the command that started it"
        )
    try:
        return cls(**saved)
    except (TypeError, ValueError) as exc:
        raise GlimpseError(
            f"{config_file} holds settings 'glimpse train {agent}' refuses ({exc}); "
            "restore config.json or start a new run"
        ) from exc


def check_run_agent(run_dir: Path, agents: tuple[str, ...]) -> None:
    """Refuse to resume a run of another kind of agent (read from its ``meta.json``).

    Raises:
        GlimpseError: naming the command that continues it.
    """
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return  # no (readable) meta.json: config.json decides
    kind = meta.get("agent") if isinstance(meta, dict) else None
    if kind is None or kind in agents:
        return
    command = {"recurrent_ppo": "ppo"}.get(kind, kind)
    raise GlimpseError(
        f"--resume {run_dir}: it is a {kind} run; continue it with "
        f"'glimpse train {command} --resume {run_dir}'"
    )


def dump_config(path: Path, config: dict[str, Any]) -> None:
    """Write the resolved configuration as JSON (atomically)."""
    from agents.checkpoints import write_json

    write_json(path, json.loads(json.dumps(config, default=str)))
