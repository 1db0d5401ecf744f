"""Compiled loops for the NumPy backend's hot paths (optional: needs ``numba``).

The sensor (:mod:`glimpse_env.sensor`) and the canvas hooks (:mod:`glimpse_env._xp`) are
written with NumPy array operations, which are the reference. On small batches (tens of
envs) those operations cost more in per-call overhead and temporary arrays than in
arithmetic, so when `numba <https://numba.pydata.org>`_ is installed
(``pip install "glimpse-env[fast]"``) three of them run as compiled loops instead:

* :func:`sum_table_u16`: the uint16 summed-area table of uint8 images;
* :func:`glimpses_u8`: every scale of a batch of glimpses of uint8 images (scale 0 read
  from the images, coarser scales from that table);
* :func:`add_saturating_at`: pasting uint8 patches into canvases with saturation.

They give the same values as the NumPy code bit for bit (tests compare both on random
inputs and whole episodes), release the GIL (the vector env's threads run them side by
side) and are compiled on first use (cached on disk by numba afterwards).

Set the environment variable ``GLIMPSE_ENV_NUMBA=0`` (before importing ``glimpse_env``) or
the module attribute :data:`ENABLED` to ``False`` to use the NumPy code only.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import numpy as np

#: Whether the compiled loops are used: numba is installed and ``GLIMPSE_ENV_NUMBA`` is not
#: ``"0"``. Tests switch it off to run the NumPy reference.
ENABLED: bool = (
    os.environ.get("GLIMPSE_ENV_NUMBA", "1") != "0"
    and importlib.util.find_spec("numba") is not None
)

_compiled: dict[str, Callable[..., Any]] = {}


def _kernel(name: str) -> Callable[..., Any]:
    """The compiled loop ``name`` (numba is imported and the loops defined on first use)."""
    if not _compiled:
        _compiled.update(_define())
    return _compiled[name]


def sum_table_u16(images: np.ndarray) -> np.ndarray:
    """Summed-area table of uint8 images modulo ``2**16``.

    Args:
        images: uint8 ``(N, H, W)``.

    Returns:
        uint16 ``(N, H + 1, W + 1)``: ``table[n, i, j]`` is the sum of ``images[n, :i, :j]``
        modulo ``2**16``.
    """
    n, h, w = images.shape
    table = np.empty((n, h + 1, w + 1), dtype=np.uint16)
    _kernel("sum_table_u16")(images, table)
    return table


def glimpses_u8(
    images: np.ndarray, table: np.ndarray, corner: np.ndarray, norm: np.ndarray, out: np.ndarray
) -> None:
    """Multi-scale glimpses of uint8 images (the sensor's mapping, already applied).

    Args:
        images: uint8 ``(N, H, W)``.
        table: uint16 ``(N, H + 1, W + 1)`` of :func:`sum_table_u16` (any array when
            ``k == 1``); every block of scale ``k - 1`` has at most ``2**16`` / 255 pixels.
        corner: int64 ``(N, k, 2)`` top-left pixel ``(x0, y0)`` of each scale's square.
        norm: float32 ``(k,)`` pixel-sum-to-mean factors (``value_scale / 4**s``).
        out: float32 ``(N, k, g, g)``, written: scale 0 is ``pixel * norm[0]``, scale ``s``
            the ``2**s x 2**s`` block sums times ``norm[s]`` (pixels off the image are 0).
    """
    _kernel("glimpses_u8")(images, table, corner, norm, out)


def add_saturating_at(
    canvases: np.ndarray, patches: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> None:
    """:func:`glimpse_env._xp.add_saturating_at` on NumPy uint8 arrays (the same contract).

    Raises:
        IndexError: if a patch does not lie inside its canvas (the patches before it are
            pasted, it and the ones after it are not).
    """
    bad = _kernel("add_saturating_at")(canvases, patches, rows, cols)
    if bad >= 0:
        raise IndexError(
            f"patch {bad} of shape {patches.shape[1:]} at (row, col) = "
            f"({rows[bad]}, {cols[bad]}) does not lie inside its canvas of shape "
            f"{canvases.shape[1:]}"
        )


def _define() -> dict[str, Callable[..., Any]]:
    """Compile the loops (numba imported here, so ``import glimpse_env`` stays light)."""
    import numba

    def jit(function: Callable[..., Any]) -> Callable[..., Any]:
        try:  # compiled once, then loaded from numba's on-disk cache
            return numba.njit(nogil=True, cache=True)(function)
        except RuntimeError:  # no writable cache folder: compile in every process
            return numba.njit(nogil=True)(function)

    @jit
    def sum_table_u16_kernel(images, table):  # type: ignore[no-untyped-def]
        n, h, w = images.shape
        for i in range(n):
            for x in range(w + 1):
                table[i, 0, x] = 0
            for y in range(h):
                table[i, y + 1, 0] = 0
                run = 0
                for x in range(w):
                    run += images[i, y, x]
                    table[i, y + 1, x + 1] = (table[i, y, x + 1] + run) & 0xFFFF

    @jit
    def glimpses_u8_kernel(images, table, corner, norm, out):  # type: ignore[no-untyped-def]
        n, k, g = out.shape[0], out.shape[1], out.shape[2]
        h, w = images.shape[1], images.shape[2]
        ys = np.empty(g + 1, dtype=np.int64)
        xs = np.empty(g + 1, dtype=np.int64)
        for i in range(n):
            x0, y0 = corner[i, 0, 0], corner[i, 0, 1]
            for r in range(g):
                y = y0 + r
                for c in range(g):
                    x = x0 + c
                    if 0 <= y < h and 0 <= x < w:
                        out[i, 0, r, c] = np.float32(images[i, y, x]) * norm[0]
                    else:
                        out[i, 0, r, c] = np.float32(0.0)
            for s in range(1, k):
                block = 1 << s
                x0, y0 = corner[i, s, 0], corner[i, s, 1]
                for j in range(g + 1):  # block boundaries, clamped into the table
                    ys[j] = min(max(y0 + j * block, 0), h)
                    xs[j] = min(max(x0 + j * block, 0), w)
                for r in range(g):
                    top, bottom = ys[r], ys[r + 1]
                    for c in range(g):
                        left, right = xs[c], xs[c + 1]
                        total = (
                            np.int64(table[i, bottom, right])
                            - np.int64(table[i, bottom, left])
                            - np.int64(table[i, top, right])
                            + np.int64(table[i, top, left])
                        ) & 0xFFFF
                        out[i, s, r, c] = np.float32(total) * norm[s]

    @jit
    def add_saturating_at_kernel(canvases, patches, rows, cols):  # type: ignore[no-untyped-def]
        n, p, q = patches.shape
        h, w = canvases.shape[1], canvases.shape[2]
        for i in range(n):
            r0, c0 = rows[i], cols[i]
            if r0 < 0 or c0 < 0 or r0 + p > h or c0 + q > w:
                return i  # outside: nothing written for this patch
            for r in range(p):
                for c in range(q):
                    total = np.int64(canvases[i, r0 + r, c0 + c]) + np.int64(patches[i, r, c])
                    canvases[i, r0 + r, c0 + c] = min(total, 255)
        return -1

    return {
        "sum_table_u16": sum_table_u16_kernel,
        "glimpses_u8": glimpses_u8_kernel,
        "add_saturating_at": add_saturating_at_kernel,
    }


__all__ = ["ENABLED", "add_saturating_at", "glimpses_u8", "sum_table_u16"]
