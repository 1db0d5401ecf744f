"""Pieces every ``glimpse`` command shares: splits, devices, metric logs, checkpoint
arguments, and the one way a config dataclass becomes command-line flags.

Config to flags: every field of a config dataclass is a ``--flag`` (``n_glimpses`` ->
``--n-glimpses``), documented by the string literal under the field (its attribute
docstring), checked as it is parsed against the bounds and choices in the field's
``metadata`` (:mod:`train.validation`). :func:`add_config_flags` adds them,
:func:`flag_values` reads back the ones given. :class:`RunOptions` (run control) and
:class:`EnvOptions` (the env's own settings) are the parts the training commands share.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import inspect
import itertools
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from agents.sb3_presets import json_ready
from glimpse_env.envs import REWARDS, STARTS, STOPS
from train.errors import GlimpseError, UsageError
from train.validation import (
    MAX_SEED,
    bounds_of,
    check_fields,
    describe_bounds,
    device_name,
    int_list,
    number_type,
)

#: Images in each MNIST split (``val`` is the last 10,000 training digits).
SPLIT_SIZES: dict[str, int] = {"train": 50_000, "val": 10_000, "test": 10_000, "train_full": 60_000}

#: Splits a trainer may train on: ``train`` (the first 50,000 digits; the last 10,000,
#: ``val``, are held out for validation) or ``train_full`` (all 60,000).
TRAINING_SPLITS: tuple[str, ...] = ("train", "train_full")


def validation_held_out(split: str) -> bool:
    """Whether the validation digits (``val``) are outside the training split ``split``."""
    return split == "train"


def epochs_summary(iterations: int, batch_size: int, n_train: int, split: str) -> dict[str, Any]:
    """The entries of ``eval.json`` about the images a run of ``iterations`` batches of
    ``batch_size`` on ``split`` (``n_train`` images) trained on."""
    return {
        "epochs": iterations * batch_size / n_train,
        "images_seen": iterations * batch_size,
        "validation_held_out": validation_held_out(split),
    }


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
    from glimpse_env.registration import ALL_IDS

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
        choices=ALL_IDS,
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


# ------------------------------------------------------------------ config to flags
#: ``metadata`` of a field that ``--resume`` may change (run control: it does not change
#: what is trained); the run's saved value is kept unless the flag is given.
CHANGEABLE: dict[str, str] = {"resume": "changeable"}
#: ``metadata`` of a field that concerns one invocation only: never taken from the saved
#: run, always from the command line (or the field's default).
PER_INVOCATION: dict[str, str] = {"resume": "per_invocation"}

#: Field types that are flags (the text of the annotation up to ``|``), and their kind.
_FLAG_KINDS: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "tuple[int, ...]": tuple,
}


def flag_name(name: str) -> str:
    """The flag of a field: ``n_glimpses`` -> ``--n-glimpses``."""
    return "--" + name.replace("_", "-")


def flag_kind(f: dataclasses.Field) -> type | None:
    """``bool``, ``int``, ``float``, ``str`` or ``tuple`` (of ints) for a field that is a
    flag; None for one that is not (a dict, a nested config)."""
    return _FLAG_KINDS.get(str(f.type).split(" | ")[0])


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings of a dataclass's fields (the string literal under each field), one line each,
    including those of its dataclass bases (a subclass's own text wins).

    Used for ``--help``, so each field's documentation is written once, in the config class.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # source not available (e.g. frozen app)
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
    """A config dataclass's fields in flag order: the env's settings (:class:`EnvOptions`),
    those the config declares itself, then the run control (:class:`RunOptions`)."""
    rank = {EnvOptions: 0, RunOptions: 2}
    return sorted(dataclasses.fields(cls), key=lambda f: rank.get(_declared_by(cls, f.name), 1))


def _declared_by(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO that declares the field ``name``."""
    return next(k for k in cls.__mro__ if name in inspect.get_annotations(k))


def add_config_flags(
    parser: Any,
    cls: type,
    choices: dict[str, tuple[str, ...]] | None = None,
    shown: dict[str, str] | None = None,
) -> None:
    """One ``--flag`` per field of the config dataclass ``cls`` (fields that are not flags,
    such as dicts or nested configs, are left out).

    Every flag defaults to ``None`` (= not given: the config's default, a preset's or the
    saved run's value applies); booleans get ``--x/--no-x``, ``tuple[int, ...]`` takes
    ``N,N,...``. Values are checked as they are parsed against the field's ``metadata``:
    bounds (``ge``, ``gt``, ``le``, ``lt``; every float finite), ``choices``, or its own
    argparse ``parse`` function, so a bad value is a usage error naming the flag. Inherited
    fields go into one argument group per base class, titled by its docstring.

    Args:
        parser: the parser (or an argument group).
        cls: the config dataclass.
        choices: allowed values of ``str`` fields whose metadata has none.
        shown: what ``--help`` shows as a field's default (else the field's default).
    """
    docs = field_docs(cls)
    groups: dict[type, Any] = {}
    for f in config_fields(cls):
        kind = flag_kind(f)
        if kind is None:
            continue
        owner = _declared_by(cls, f.name)
        target = parser
        if owner is not cls:
            title = (owner.__doc__ or owner.__name__).strip().splitlines()[0].rstrip(".")
            target = groups.setdefault(owner, parser.add_argument_group(title))
        # A field's documentation says what None means, so only other defaults are shown.
        default = (shown or {}).get(f.name)
        if default is None and f.default is not None:
            default = show_value(f.default).replace("%", "%%")
        notes = [f"default: {default}"] if default is not None else []
        notes += [describe_bounds(bounds_of(f.metadata))] if bounds_of(f.metadata) else []
        text = docs.get(f.name, "") + (f" ({'; '.join(notes)})" if notes else "")
        flag = flag_name(f.name)
        if kind is bool:
            target.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            continue
        parse = f.metadata.get("parse")
        if parse is None:
            parse = {str: str, tuple: int_list}.get(kind) or number_type(
                kind, **bounds_of(f.metadata)
            )
        target.add_argument(
            flag,
            type=parse,
            default=None,
            choices=f.metadata.get("choices") or (choices or {}).get(f.name),
            metavar="N,N,..." if kind is tuple else None,
            help=text,
        )


def flag_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` whose flags were given on the command line, with their values."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if flag_kind(f) is not None and getattr(args, f.name, None) is not None
    }


def show_value(value: Any) -> str:
    """A value as a flag takes it: ``none``, ``on``/``off``, ``5e-4``, ``64,64``."""
    if value is None or value is dataclasses.MISSING:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def flag_text(name: str, value: Any) -> str:
    """A flag as it would be given: ``--lr 0.1``, ``--no-hybrid``."""
    flag = flag_name(name)
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {show_value(value)}"


# ------------------------------------------------------------------ shared config parts
class Checked:
    """Base of the config dataclasses: every field is checked when a config is built."""

    def __post_init__(self) -> None:
        """Check every field's bounds and choices (see :mod:`train.validation`).

        Raises:
            ValueError: naming the first bad field (as its ``--flag``).
        """
        check_fields(self)


@dataclass
class RunOptions(Checked):
    """Run control (every glimpse train command).

    The base of every training config: besides these fields it names the command
    (:attr:`command`, :attr:`agent`) and reads itself back from ``config.json``
    (:meth:`from_dict`). Every field is a ``--flag`` (:func:`add_config_flags`).
    """

    #: The ``glimpse train`` subcommand of the config.
    command: ClassVar[str] = ""
    #: The ``meta.json`` agent kinds its runs have (what ``--resume`` continues).
    agents: ClassVar[tuple[str, ...]] = ()
    #: Keys of older ``config.json`` files that no longer exist (dropped when read back).
    retired: ClassVar[tuple[str, ...]] = ("extra_env_kwargs",)

    seed: int = field(default=0, metadata={"ge": 0, "le": MAX_SEED})
    """Seed of the model, the sampling and the env."""
    device: str = field(default="auto", metadata={"parse": device_name})
    """Torch device: auto (CUDA when available), cpu, cuda or cuda:N."""
    run_dir: str | None = None
    """Run folder, empty or new (default: runs/<agent>-<env>-<time>); it belongs to this
    run and is locked while it trains."""
    data_dir: str | None = field(default=None, metadata=CHANGEABLE)
    """MNIST folder (default: $GLIMPSE_ENV_DATA or the user cache)."""
    threads: int | None = field(default=None, metadata={"ge": 1, **CHANGEABLE})
    """torch CPU threads (None: torch's default)."""
    max_minutes: float | None = field(default=None, metadata={"ge": 0.0, **CHANGEABLE})
    """Cap on the training wall-clock in minutes (all invocations of the run together,
    validation included): then stop cleanly after the current iteration (checkpoint,
    validation, final evaluation; eval.json records it). None: no cap."""
    stop_after: int | None = field(default=None, metadata={"ge": 1, **PER_INVOCATION})
    """Stop abruptly after this many iterations of this invocation, as if killed (no
    checkpoint is written at the stop); for testing --resume."""
    progress: bool = field(default=True, metadata=PER_INVOCATION)
    """Progress bar (--no-progress: a log line per metrics row instead)."""

    @property
    def agent(self) -> str:
        """The run's agent kind (``meta.json["agent"]``; the default run folder's name)."""
        return self.command

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able data (what ``config.json`` holds)."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """The config saved as ``values`` by :meth:`to_dict`.

        Raises:
            TypeError: for keys the config does not have (naming them).
            ValueError: for values out of bounds.
        """
        values = {k: v for k, v in values.items() if k not in cls.retired}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unexpected: {unknown}")
        return cls(**values)


@dataclass
class EnvOptions(Checked):
    """The env's own settings (the arguments of glimpse_env.envs.GlimpseEnv).

    :meth:`env_kwargs` turns them into the env's keyword arguments; what a run was trained
    with is saved in its ``meta.json`` and read back by :func:`agents.policy.env_kwargs_from_meta`.
    """

    n_glimpses: int | None = field(default=None, metadata={"ge": 1})
    """Glimpses per episode (None: the env's default, the paper's setting)."""
    glimpse_size: int | None = field(default=None, metadata={"ge": 1})
    """Side of the glimpse's first scale in pixels (None: the env's default)."""
    n_scales: int | None = field(default=None, metadata={"ge": 1})
    """Scales per glimpse, each twice the side of the one before (None: the env's default)."""
    start: str = field(default="random", metadata={"choices": STARTS})
    """First glimpse location: random (paper) or center."""
    reward: str = field(default="sparse", metadata={"choices": REWARDS})
    """sparse: 1 at the last step if the class is right (paper); dense: log p(label) at
    every step."""
    stop: str | None = field(default=None, metadata={"choices": STOPS})
    """action: the agent decides when to stop (a stop score ends the episode); never: every
    episode takes n_glimpses glimpses (None: the id's, action for the ...Adaptive ids)."""
    glimpse_cost: float = field(default=0.0, metadata={"ge": 0.0})
    """Reward charged per glimpse taken: the (sparse) return is 1[right] - cost * glimpses."""
    max_glimpses: int | None = field(default=None, metadata={"ge": 1})
    """On an adaptive env (an ...Adaptive id or --stop action): the most glimpses an
    episode takes (None: the env's default)."""

    def env_kwargs(self) -> dict[str, Any]:
        """The env keyword arguments of these settings (``None``, and the stop settings'
        defaults: the env's default, left out)."""
        kwargs: dict[str, Any] = {"start": self.start, "reward": self.reward}
        for name in ("n_glimpses", "glimpse_size", "n_scales", "max_glimpses"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        if self.stop is not None:
            kwargs["stop"] = self.stop
        if self.glimpse_cost:
            kwargs["glimpse_cost"] = self.glimpse_cost
        return kwargs

    def stops(self, env_id: str) -> bool:
        """Whether the agent ends the episodes on ``env_id`` with these settings."""
        from agents.policy import policy_stops

        return policy_stops(env_id, {} if self.stop is None else {"stop": self.stop})

    def check_length(self, env_id: str) -> None:
        """``--n-glimpses`` on a fixed-length env, ``--max-glimpses`` on an adaptive one.

        Raises:
            ValueError: naming the flag to use instead.
        """
        if self.stops(env_id) and self.n_glimpses is not None:
            raise ValueError(
                f"--n-glimpses {self.n_glimpses} fixes the episode length, but on {env_id} "
                f"the agent stops: pass --max-glimpses {self.n_glimpses} (the most it may "
                "take; a --preset sets --n-glimpses: use it with a fixed-length id)"
            )
        if not self.stops(env_id) and self.max_glimpses is not None:
            raise ValueError(
                f"--max-glimpses applies to adaptive envs (an ...Adaptive id or --stop "
                f"action); {env_id} takes every glimpse: pass --n-glimpses {self.max_glimpses}"
            )
