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


def randint(u: Array, high: int) -> Array:
    """Map uniforms in [0, 1) to int64 in ``0 .. high - 1`` (identical on every backend)."""
    if is_torch(u):
        return torch.clamp((u * high).to(torch.int64), max=high - 1)
    return np.minimum((u * high).astype(np.int64), high - 1)


def saturating_add(a: Array, b: Array) -> Array:
    """``min(a + b, 255)`` of two uint8 arrays, as uint8 (pixel values saturate at 1.0)."""
    if is_torch(a):
        return torch.clamp(a.to(torch.int16) + b, max=255).to(torch.uint8)
    # a + min(b, 255 - a) == min(a + b, 255), without leaving uint8.
    return a + np.minimum(b, 255 - a)


def windows(images: Array, index: Array, rows: Array, cols: Array, size: int) -> Array:
    """The ``size x size`` windows of ``images[index]`` whose top-left pixels are ``(rows, cols)``.

    Args:
        images: ``(M, H, W)`` images.
        index, rows, cols: int64 arrays of one shape ``S``: image, top row and left column of
            each window.
        size: side of the windows.

    Returns:
        ``S + (size, size)`` copies of the windows.
    """
    if is_torch(images):
        view = images.unfold(1, size, 1).unfold(2, size, 1)  # (M, H', W', size, size)
    else:
        view = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    return view[index, rows, cols]


def add_saturating_at(canvases: Array, patches: Array, rows: Array, cols: Array) -> None:
    """Add uint8 ``patches (N, p, p)`` into uint8 ``canvases (N, H, W)`` in place, at top-left
    ``(rows, cols)`` (each ``(N,)``), saturating at 255 (i.e. at 1.0)."""
    n, p = patches.shape[0], patches.shape[1]
    if is_torch(canvases):
        ramp = torch.arange(p, device=canvases.device)
        index: tuple[Array, ...] = (
            torch.arange(n, device=canvases.device)[:, None, None],
            (rows[:, None] + ramp)[:, :, None],
            (cols[:, None] + ramp)[:, None, :],
        )
        canvases[index] = saturating_add(canvases[index], patches)
        return
    # Every canvas's p x p window at (rows, cols), read and written as one block each.
    view = np.lib.stride_tricks.sliding_window_view(canvases, (p, p), axis=(1, 2), writeable=True)
    index = (np.arange(n), rows, cols)
    view[index] = saturating_add(view[index], patches)


def to_backend(x: np.ndarray, like: Array) -> Array:
    """Move a NumPy array to the backend (and device) of ``like``."""
    if is_torch(like):
        return torch.as_tensor(x, device=like.device)
    return x
