"""Checks of command-line values, shared by the parsers and the config dataclasses.

Numbers are checked against bounds given as a plain dict, the same one a config
dataclass field carries in its metadata (``dataclasses.field(default=64,
metadata={"ge": 1})``): ``ge`` / ``gt`` (lower bounds), ``le`` / ``lt`` (upper bounds) and
an optional ``why`` (the reason of an upper bound, shown in the message); a ``str`` field
may carry ``choices``. Every float must be finite. :func:`number_type` makes an argparse
``type=`` from a kind and bounds, so a bad value is a usage error naming the flag before
any work starts; :func:`check_fields` applies the same bounds and choices to a config
instance (a ``config.json`` read back, or the Python API).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: Metadata keys of a field's bounds.
BOUND_KEYS: tuple[str, ...] = ("ge", "gt", "le", "lt")

#: Largest seed every consumer takes (NumPy, torch, Gymnasium): 2**32 - 1.
MAX_SEED = 2**32 - 1


def bounds_of(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The bounds (and ``why``) in a field's metadata."""
    return {k: metadata[k] for k in (*BOUND_KEYS, "why") if k in metadata}


def counted(n: int, noun: str) -> str:
    """``"1 iteration"``, ``"3,906 iterations"``: ``n`` with thousands separators and ``noun``,
    plural (an ``s`` added) unless ``n`` is 1."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def describe_bounds(bounds: Mapping[str, Any]) -> str:
    """The bounds in words, e.g. ``">= 1 and <= 10000"`` (empty without bounds)."""
    ops = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    return " and ".join(f"{op} {_number(bounds[key])}" for key, op in ops if key in bounds)


def _number(value: float) -> str:
    """``5``, ``0.5``, ``4294967295`` (an integer in full, a float short)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_number(value: Any, kind: type, bounds: Mapping[str, Any]) -> Any:
    """``value`` if it is a ``kind`` (``int`` or ``float``) within ``bounds``.

    Args:
        value: the value (an int is accepted for a float).
        kind: ``int`` or ``float``.
        bounds: ``ge`` / ``gt`` / ``le`` / ``lt`` and optional ``why``.

    Returns:
        ``value`` as ``kind``.

    Raises:
        ValueError: with a message saying what is allowed (without the value's name).
    """
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be {noun}, got {value!r}")
    if kind is int and not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"must be {noun}, got {value!r}")
        value = int(value)
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
    ok = (
        ("ge" not in bounds or value >= bounds["ge"])
        and ("gt" not in bounds or value > bounds["gt"])
        and ("le" not in bounds or value <= bounds["le"])
        and ("lt" not in bounds or value < bounds["lt"])
    )
    if not ok:
        why = f" ({bounds['why']})" if "why" in bounds else ""
        raise ValueError(f"must be {noun} {describe_bounds(bounds)}{why}, got {_number(value)}")
    return value


def number_type(kind: type, **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type=``: parse a ``kind`` and check ``bounds`` (see :func:`check_number`).

    A bad value makes argparse report ``argument --flag: must be ..., got ...``.
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        try:
            return check_number(value, kind, bounds)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = kind.__name__  # what argparse calls the type in its messages
    return parse


#: Common argparse types.
positive_int = number_type(int, ge=1)
non_negative_int = number_type(int, ge=0)
positive_float = number_type(float, gt=0.0)
non_negative_float = number_type(float, ge=0.0)
seed_int = number_type(int, ge=0, le=MAX_SEED)


def device_name(text: str) -> str:
    """An argparse ``type=`` for a torch device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``
    (CUDA only where torch sees a CUDA device), checked before any work starts."""
    if text in ("auto", "cpu"):
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type != "cuda":
        raise argparse.ArgumentTypeError(f"use auto, cpu, cuda or cuda:N, got {text!r}")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"{text} was asked for, but torch sees no CUDA device; use cpu (or auto)"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"torch sees {torch.cuda.device_count()} CUDA device(s), so {text} does not exist"
        )
    return text


def int_list(text: str) -> tuple[int, ...]:
    """An argparse ``type=`` for ``N,N,...`` (positive integers; empty: none)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be positive integers separated by commas, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be positive integers, got {text!r}")
    return values


def output_file(suffix: str) -> Callable[[str], str]:
    """An argparse ``type=`` for a file to write: it must end in ``suffix`` and not be a
    folder (whether it can be written is checked by :func:`check_writable` before work)."""

    def parse(text: str) -> str:
        if Path(text).suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"must name a {suffix} file, got {text!r}")
        if Path(text).is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder; name a {suffix} file")
        return text

    parse.__name__ = f"{suffix} file"
    return parse


def check_writable(path: str | Path, flag: str) -> None:
    """Raise :class:`~train.errors.UsageError` unless a file can be created at ``path``
    (its nearest existing folder must be a writable folder), before any work is done."""
    import os

    from train.errors import UsageError

    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is a file, not a folder; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the folder {folder} is not writable; choose another path")


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its metadata: bounds
    (``ge``, ``gt``, ``le``, ``lt``) and ``choices``.

    ``None`` passes where the field's type allows it.

    Raises:
        ValueError: naming the first bad field (as its ``--flag``).
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        flag = "--" + f.name.replace("_", "-")
        choices = f.metadata.get("choices")
        optional = value is None and f.default is None  # a None default is always allowed
        if choices is not None and value not in choices and not optional:
            raise ValueError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        bounds = bounds_of(f.metadata)
        if not bounds:
            continue
        text = str(f.type)
        if value is None and "None" in text:
            continue
        kind = int if text.startswith("int") else float
        try:
            check_number(value, kind, bounds)
        except ValueError as exc:
            raise ValueError(f"{flag} {exc}") from None
