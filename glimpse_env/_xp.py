"""The few array operations whose spelling differs between NumPy and torch.

The canvas hooks and the episode logic are written once and run on NumPy arrays (the
default backend) or on torch tensors on any device (the vector env's torch backend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor

_TORCH_DTYPES = {
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int64": torch.int64,
    "float32": torch.float32,
}


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor."""
    return isinstance(x, torch.Tensor)


def zeros(like: Array, shape: tuple[int, ...], dtype: str) -> Array:
    """Zeros on the backend (and device) of ``like``; ``dtype`` by name (``"uint8"``...)."""
    if is_torch(like):
        return torch.zeros(shape, dtype=_TORCH_DTYPES[dtype], device=like.device)
    return np.zeros(shape, dtype=dtype)


def arange(like: Array, n: int) -> Array:
    """``0 .. n-1`` as int64 on the backend of ``like``."""
    if is_torch(like):
        return torch.arange(n, device=like.device)
    return np.arange(n)


def randint(u: Array, high: int) -> Array:
    """Map uniforms in [0, 1) to int64 in ``0 .. high - 1`` (identical on every backend)."""
    if is_torch(u):
        return torch.clamp((u * high).to(torch.int64), max=high - 1)
    return np.minimum((u * high).astype(np.int64), high - 1)


def saturating_add(a: Array, b: Array) -> Array:
    """``min(a + b, 255)`` of two uint8 arrays, as uint8 (pixel values saturate at 1.0)."""
    if is_torch(a):
        return torch.clamp(a.to(torch.int16) + b, max=255).to(torch.uint8)
    total = a.astype(np.int16)
    total += b
    return np.minimum(total, 255, out=total).astype(np.uint8)


def to_backend(x: np.ndarray, like: Array) -> Array:
    """Move a NumPy array to the backend (and device) of ``like``."""
    if is_torch(like):
        return torch.as_tensor(x, device=like.device)
    return x
