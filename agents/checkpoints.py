"""Atomic checkpoint files: a killed run never leaves a half-written checkpoint behind."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

#: Mode of files written here (mkstemp's own 0o600 would hide them from other users).
_FILE_MODE = 0o644


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """``torch.save`` ``payload`` to ``path`` atomically.

    Args:
        path: destination file (``.pt``).
        payload: a dict; by convention it has ``"agent"`` (``"ram"``, ``"ppo"``,
            ``"recurrent_ppo"``, ``"baseline"``), ``"env_id"`` and ``"env_kwargs"`` so that
            :func:`agents.policy.load_policy` and ``glimpse eval`` can rebuild the agent.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    return torch.load(path, map_location=map_location, weights_only=False)


def write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = True) -> Path:
    """Write ``obj`` as indented JSON, atomically (keys sorted unless ``sort_keys=False``)."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n"
    return atomic_write_bytes(path, text.encode())
