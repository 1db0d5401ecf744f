"""The few array operations whose spelling differs between NumPy and torch.

The canvas hooks and the episode logic are written once and run on NumPy arrays (the
default backend) or on torch tensors on any device (the vector env's torch backend).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from glimpse_env import _kernels

Array = Any  # np.ndarray | torch.Tensor

#: Bytes per word of :func:`byte_words`.
WORD = 8


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (never imports torch: without it, nothing is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def zeros(like: Array, shape: tuple[int, ...], dtype: str) -> Array:
    """Zeros on the backend (and device) of ``like``; ``dtype`` by name (``"uint8"``...)."""
    if is_torch(like):
        import torch

        return torch.zeros(shape, dtype=getattr(torch, dtype), device=like.device)
    return np.zeros(shape, dtype=dtype)


def randint(u: Array, high: int) -> Array:
    """Map uniforms in [0, 1) to int64 in ``0 .. high - 1`` (identical on every backend)."""
    if is_torch(u):
        import torch

        return torch.clamp((u * high).to(torch.int64), max=high - 1)
    return np.minimum((u * high).astype(np.int64), high - 1)


def saturating_add(a: Array, b: Array) -> Array:
    """``min(a + b, 255)`` of two uint8 arrays, as uint8 (pixel values saturate at 1.0)."""
    if is_torch(a):
        import torch

        return torch.clamp(a.to(torch.int16) + b, max=255).to(torch.uint8)
    # a + min(b, 255 - a) == min(a + b, 255), without leaving uint8.
    return a + np.minimum(b, 255 - a)


def windows(images: Array, index: Array, rows: Array, cols: Array, size: int) -> Array:
    """The ``size x size`` windows of ``images[index]`` whose top-left pixels are ``(rows, cols)``.

    Args:
        images: ``(M, H, W)`` images.
        index, rows, cols: int64 arrays of one shape ``S``: image, top row and left column of
            each window (every window must lie inside its image).
        size: side of the windows.

    Returns:
        ``S + (size, size)`` copies of the windows.
    """
    if is_torch(images):
        view = images.unfold(1, size, 1).unfold(2, size, 1)  # (M, H', W', size, size)
        return view[index, rows, cols]
    words = _row_words(images, size)
    if words is None:
        view = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
        return view[index, rows, cols]
    h, w = images.shape[1:]
    picked = words[_window_index((index * h + rows) * w + cols, size, w)]
    return picked.view(images.dtype).reshape(*picked.shape[:-1], size, size)


def add_saturating_at(canvases: Array, patches: Array, rows: Array, cols: Array) -> None:
    """Add uint8 ``patches (N, p, p)`` into uint8 ``canvases (N, H, W)`` in place, at top-left
    ``(rows, cols)`` (each ``(N,)``; every patch must lie inside its canvas), saturating at
    255 (i.e. at 1.0)."""
    n, p = patches.shape[0], patches.shape[1]
    if is_torch(canvases):
        import torch

        ramp = torch.arange(p, device=canvases.device)
        index: tuple[Array, ...] = (
            torch.arange(n, device=canvases.device)[:, None, None],
            (rows[:, None] + ramp)[:, :, None],
            (cols[:, None] + ramp)[:, None, :],
        )
        canvases[index] = saturating_add(canvases[index], patches)
        return
    if _kernels.ENABLED and canvases.dtype == np.uint8 and patches.dtype == np.uint8:
        _kernels.add_saturating_at(canvases, patches, rows, cols)
        return
    words = _row_words(canvases, p)
    if words is None:  # every canvas's p x p window at (rows, cols), as one block each
        view = np.lib.stride_tricks.sliding_window_view(
            canvases, (p, p), axis=(1, 2), writeable=True
        )
        window = (np.arange(n), rows, cols)
        view[window] = saturating_add(view[window], patches)
        return
    h, w = canvases.shape[1:]
    index = _window_index((np.arange(n) * h + rows) * w + cols, p, w)
    current = words[index].view(np.uint8).reshape(n, p, p)
    words[index] = saturating_add(current, patches).reshape(n, -1).view(words.dtype)


def byte_words(array: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous uint8 array as overlapping 8-byte words.

    Word ``q`` of the uint64 ``(array.size - 7,)`` view holds bytes ``q .. q + 8`` (unaligned;
    only ever copied, so the byte order does not matter): a row of ``8 * c`` pixels is ``c``
    words, so rows are copied with 8 times fewer gathered elements than pixel by pixel.
    Gather it by fancy indexing (``take`` first copies an unaligned array whole). Read-only
    if ``array`` is.
    """
    count = max(array.size - WORD + 1, 0)
    return np.ndarray((count,), dtype=np.uint64, buffer=array, strides=(1,))


def _row_words(images: np.ndarray, width: int) -> np.ndarray | None:
    """:func:`byte_words` of uint8 ``images``, to copy windows ``width`` pixels wide.

    About twice as fast as NumPy's copy of one strided window per index (narrower words
    gain nothing: unaligned reads are slower).

    Returns:
        The words, or ``None`` when ``images`` is not a C-contiguous uint8 array or
        ``width`` is not a multiple of 8.
    """
    if width % WORD or images.dtype != np.uint8 or images.size < WORD:
        return None
    if not images.flags.c_contiguous:
        return None
    return byte_words(images)


def _window_index(start: np.ndarray, size: int, width: int) -> np.ndarray:
    """Indices into :func:`_row_words` of windows, row by row: ``start.shape + (size**2 / 8,)``.

    Args:
        start: int64 flat index of each window's top-left pixel.
        size: side of the windows (a multiple of 8).
        width: row length of the images.
    """
    return start[..., None] + _window_offsets(size, width)


@functools.lru_cache(maxsize=16)
def _window_offsets(size: int, width: int) -> np.ndarray:
    """int64 ``(size**2 / 8,)``: offsets of a window's words from its top-left pixel."""
    offsets = (np.arange(size)[:, None] * width + np.arange(0, size, WORD)).reshape(-1)
    offsets.flags.writeable = False
    return offsets


def to_backend(x: np.ndarray, like: Array) -> Array:
    """Move a NumPy array to the backend (and device) of ``like``."""
    if is_torch(like):
        import torch

        return torch.as_tensor(x, device=like.device)
    return x
