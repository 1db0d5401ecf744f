"""Checkpoint files: atomic, safe to load, and the previous one kept as a fallback.

* **Atomic**: a file is written to a temp file in the same folder, flushed and
  ``os.replace``-d, so a killed run never leaves a half-written checkpoint behind.
* **Previous kept**: with ``keep_previous=True`` the checkpoint being replaced becomes
  ``<name>.prev<suffix>`` (``checkpoint.prev.pt``, ``model.prev.zip``) first; at every
  instant ``<name>`` holds a complete checkpoint. :func:`load_latest` falls back to the
  previous one when the newest cannot be read (a truncated or corrupt file).
* **Safe to load**: :func:`load_checkpoint` uses ``torch.load(..., weights_only=True)``: a
  checkpoint may hold tensors and plain data (dict, list, tuple, str, int, float, bool,
  None) only, and loading one never runs code from the file. :func:`save_checkpoint`
  stores NumPy arrays as tensors of their bytes (tagged with their dtype and shape) and
  NumPy scalars as Python numbers, and :func:`load_checkpoint` turns the arrays back into
  NumPy arrays; any other object in a payload is refused when saving.

Checkpoints written before this format stored NumPy arrays as pickled NumPy objects; they
still load (torch's ``safe_globals`` allow-list holds exactly NumPy's array and scalar
reconstruction functions, which build plain arrays and numbers).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

#: Mode of files written here (mkstemp's own 0o600 would hide them from other users).
_FILE_MODE = 0o644

#: Key that tags an encoded NumPy array in a saved payload.
_NDARRAY_TAG = "__ndarray__"

T = TypeVar("T")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, truncated, foreign or unsafe.

    Attributes:
        path: the file.
        reason: ``"corrupt"`` (unreadable: truncated, not a torch file), ``"unsafe"`` (it
            holds objects other than tensors and plain data; refused unread) or
            ``"invalid"`` (readable, but not a checkpoint of this project).
    """

    def __init__(self, message: str, path: str | os.PathLike, reason: str) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.reason = reason


# ------------------------------------------------------------------------------ writing
def previous_path(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_write_bytes` keeps the replaced file: ``a/b.pt`` -> ``a/b.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def corrupt_path(path: str | os.PathLike) -> Path:
    """Where :func:`load_latest` moves an unreadable newest file: ``b.pt`` -> ``b.corrupt.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.corrupt{path.suffix}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, keep_previous: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``.

    Args:
        path: destination file.
        data: its new content.
        keep_previous: first keep the file being replaced (if any) as
            :func:`previous_path` (``checkpoint.prev.pt``); ``path`` itself always holds a
            complete file (the old one until the new one is complete).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, lambda f: f.write(data))
    try:
        if keep_previous and path.is_file():
            prev = previous_path(path)
            # A hard link (or copy) of the current file becomes the previous one atomically.
            link = path.parent / f".{prev.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            try:
                os.link(path, link)
            except OSError:  # no hard links on this filesystem
                shutil.copyfile(path, link)
            try:
                os.replace(link, prev)
            except BaseException:
                link.unlink(missing_ok=True)
                raise
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _write_temp(path: Path, write: Callable[[Any], Any]) -> Path:
    """A complete, flushed temp file beside ``path`` with what ``write(file)`` wrote."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the OS allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | os.PathLike, payload: dict[str, Any], keep_previous: bool = False
) -> Path:
    """``torch.save`` ``payload`` to ``path`` atomically, in a form ``weights_only`` loads.

    Args:
        path: destination file (``.pt``).
        payload: a dict of tensors, NumPy arrays and plain data (nested dicts, lists,
            tuples, str, int, float, bool, None); by convention it has ``"agent"``
            (``"ram"``, ``"ppo"``, ``"recurrent_ppo"``, ``"baseline"``), ``"env_id"`` and
            ``"env_kwargs"`` so that :func:`agents.policy.load_policy` and ``glimpse eval``
            can rebuild the agent.
        keep_previous: keep the checkpoint being replaced as ``<name>.prev.pt``.

    Raises:
        TypeError: if the payload holds another kind of object (the message names where).
    """
    buffer = io.BytesIO()
    torch.save(encode_payload(payload), buffer)
    return atomic_write_bytes(path, buffer.getvalue(), keep_previous=keep_previous)


def encode_payload(obj: Any, where: str = "payload") -> Any:
    """``obj`` with NumPy arrays as tagged byte tensors and NumPy scalars as Python numbers.

    Containers without NumPy content are returned as they are (a module's ``state_dict``
    keeps its ``OrderedDict`` and ``_metadata``).

    Raises:
        TypeError: for any object that is not a tensor, a NumPy array or scalar, or plain
            data (dict, OrderedDict, list, tuple, str, int, float, bool, None); the message
            says where in the payload it is.
    """
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"{where}: NumPy arrays of Python objects cannot be saved")
        raw = bytearray(obj.tobytes(order="C"))
        data = (
            torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        )
        return {_NDARRAY_TAG: obj.dtype.str, "shape": list(obj.shape), "data": data}
    if type(obj) in (dict, OrderedDict):
        for key in obj:
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is not a str or an int")
        return _map_dict(obj, lambda k, v: encode_payload(v, f"{where}[{k!r}]"))
    if type(obj) in (list, tuple, torch.Size):
        items = [encode_payload(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"{where}: a {type(obj).__name__} cannot be saved in a checkpoint (only tensors, "
        "NumPy arrays and plain data: dict, list, tuple, str, int, float, bool, None)"
    )


def decode_payload(obj: Any) -> Any:
    """Invert :func:`encode_payload` (tagged byte tensors back to NumPy arrays)."""
    if isinstance(obj, dict):
        if _NDARRAY_TAG in obj and set(obj) == {_NDARRAY_TAG, "shape", "data"}:
            raw = obj["data"].cpu().numpy().tobytes()
            array = np.frombuffer(raw, dtype=np.dtype(obj[_NDARRAY_TAG]))
            return array.reshape(obj["shape"]).copy()
        return _map_dict(obj, lambda k, v: decode_payload(v))
    if type(obj) in (list, tuple):
        items = [decode_payload(v) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _map_dict(obj: dict, fn: Callable[[Any, Any], Any]) -> dict:
    """``{k: fn(k, v)}`` of the same type (``_metadata`` kept), or ``obj`` if nothing changed."""
    items = {k: fn(k, v) for k, v in obj.items()}
    if all(items[k] is v for k, v in obj.items()):
        return obj
    out = type(obj)(items)
    if hasattr(obj, "_metadata"):
        out._metadata = obj._metadata  # type: ignore[attr-defined]
    return out


# ------------------------------------------------------------------------------ reading
def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        CheckpointError: if it is corrupt or truncated, holds objects other than tensors
            and plain data (refused without running anything), or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        with _legacy_numpy_allowed():
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise _load_error(path, exc) from exc
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path} is not a glimpse checkpoint (it holds a {type(payload).__name__}, not a dict)",
            path,
            "invalid",
        )
    return decode_payload(payload)


def _load_error(path: Path, exc: Exception) -> CheckpointError:
    """A one-line :class:`CheckpointError` for a failed ``torch.load`` of ``path``."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return CheckpointError(
            f"refused to load {path}: it holds Python objects ({found.group(1)}), not only "
            "tensors and plain data, and unpickling them could run code; checkpoints written "
            "by glimpse never do: do not use this file",
            path,
            "unsafe",
        )
    detail = text.strip().splitlines()[0].split(". ")[0] if text.strip() else "empty file"
    if "Weights only load failed" in detail:
        detail = "not a torch checkpoint"
    return CheckpointError(
        f"{path} is corrupt or truncated ({type(exc).__name__}: {detail[:150]})", path, "corrupt"
    )


def _legacy_numpy_allowed() -> Any:
    """Allow NumPy arrays and scalars pickled by older checkpoints (plain data only)."""
    import contextlib

    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5: such old files are then refused
        return contextlib.nullcontext()
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed: list[Any] = [core._reconstruct, core.scalar, np.ndarray, np.dtype]
    allowed += [type(np.dtype(c)) for c in "?bhilqBHILQefdFD"]  # numpy.dtypes.*DType
    allowed += [
        (core._reconstruct, "numpy.core.multiarray._reconstruct"),
        (core.scalar, "numpy.core.multiarray.scalar"),
    ]
    return safe_globals(allowed)


def load_latest(
    path: str | os.PathLike,
    load: Callable[[Path], T],
    notice: Callable[[str], None] = print,
) -> T | None:
    """Load the newest usable checkpoint: ``path``, else its previous one.

    When ``path`` is unreadable (``load`` raises :class:`CheckpointError`) and the previous
    checkpoint (:func:`previous_path`) loads, ``path`` is moved aside to
    :func:`corrupt_path` (so the next save does not make it the "previous" one) and
    ``notice`` says so.

    Args:
        path: the newest checkpoint (``checkpoint.pt``, ``model.zip``).
        load: reads one file; raises :class:`CheckpointError` for an unusable file.
        notice: where the fallback is reported.

    Returns:
        What ``load`` returned, or None when neither file exists.

    Raises:
        CheckpointError: if a checkpoint exists but none of them is usable (the message
            says what was found in each).
    """
    path = Path(path)
    prev = previous_path(path)
    problems: list[str] = []
    for candidate in (path, prev):
        if not candidate.is_file():
            continue
        try:
            loaded = load(candidate)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if candidate == prev and path.is_file():
            os.replace(path, corrupt_path(path))
            notice(
                f"note: {problems[0]}; moved it to {corrupt_path(path).name} and resuming "
                f"from the previous checkpoint, {prev.name}"
            )
        elif candidate == prev:
            notice(f"note: {path.name} is missing; resuming from {prev.name}")
        return loaded
    if not problems:
        return None
    raise CheckpointError(
        f"no usable checkpoint in {path.parent}: " + "; ".join(problems), path, "corrupt"
    )


def write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = True) -> Path:
    """Write ``obj`` as indented JSON, atomically (keys sorted unless ``sort_keys=False``)."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n"
    return atomic_write_bytes(path, text.encode())
