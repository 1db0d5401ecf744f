"""The multi-scale glimpse sensor ("retina") of Mnih et al. (2014), batched.

One implementation serves the single env, the vector env (NumPy and torch backends) and
rendering. It works on NumPy arrays and on torch tensors (any device) alike.

Pixel mapping
-------------
A location ``(x, y)`` lies in ``[-1, 1]^2``; ``(0, 0)`` is the image centre, ``(-1, -1)`` the
top-left corner and ``(1, 1)`` the bottom-right corner. Pixel ``j`` of a row covers the
continuous interval ``[j, j + 1)``, so an image of width ``W`` spans ``[0, W]`` and the
location's continuous column is ``cx = (x + 1) * W / 2`` (row: ``cy = (y + 1) * H / 2``).

Scale ``s`` (``0 <= s < n_scales``) covers a square of ``S = glimpse_size * 2**s`` pixels whose
top-left pixel is ``x0 = floor(cx - S / 2 + 1/2)`` (``y0`` likewise): the square of ``S``
pixels whose centre is nearest to ``cx``. Output pixel ``(i, j)`` of scale ``s`` is the exact
mean of the ``2**s x 2**s`` block of rows ``y0 + i*2**s ...`` and columns ``x0 + j*2**s ...``.
Pixels outside the image read as 0 (and count in the mean). Locations outside ``[-1, 1]`` are
not clipped here: the square simply moves further off the image.

Example: on a 28x28 image with ``glimpse_size=8``, ``(0, 0)`` reads rows and columns 10..17;
``(-1, -1)`` reads rows and columns -4..3 (the top-left 4x4 pixels of the image land in the
bottom-right quarter of the glimpse).

Speed
-----
Glimpses are read from a summed-area table (integral image) of each image, so every scale
costs ``(glimpse_size + 1)**2`` table reads whatever its area. Build the table once per image
with :func:`summed_area_table` and pass it instead of the images when an image is glimpsed
several times (the environments do this once per episode).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor


@dataclass(frozen=True)
class SummedAreaTable:
    """Summed-area tables of a batch of images, ready for :func:`extract_glimpses`.

    Attributes:
        table: ``(N, H + 1, W + 1)``; ``table[n, i, j]`` is the sum of ``image[n, :i, :j]``.
            float32 for uint8 images of up to 65,793 pixels (exact integer sums), float64 for
            larger ones; float64 (NumPy) or float32 (torch) for float images.
        value_scale: what a pixel sum is multiplied by to map pixels to [0, 1]
            (``1/255`` for uint8 images, ``1`` for float images).
    """

    table: Array
    value_scale: float

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the images the table was built from."""
        return int(self.table.shape[-2]) - 1, int(self.table.shape[-1]) - 1

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def __getitem__(self, index: Any) -> SummedAreaTable:
        """Select images by a batch index (int, slice, mask or index array)."""
        table = self.table[index]
        if table.ndim == 2:
            table = table[None]
        return SummedAreaTable(table, self.value_scale)


#: uint8 images with at most this many pixels have pixel sums below 2**24, so a float32 table
#: holds them exactly.
_MAX_EXACT_FLOAT32_PIXELS = (2**24 - 1) // 255


def summed_area_table(images: Array) -> SummedAreaTable:
    """Build summed-area tables for a batch of images.

    Args:
        images: ``(N, H, W)`` uint8 (0..255) or floating images (values as given, normally in
            [0, 1]); NumPy array or torch tensor.

    Returns:
        The tables, on the same backend and device as ``images``: float32 (exact integer
        sums) for uint8 images of up to 65,793 pixels, float64 for larger ones and for float
        images on NumPy, float32 for float images on torch.

    Raises:
        ValueError: if ``images`` is not 3-D.
        TypeError: if ``images`` is neither uint8 nor floating point.
    """
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got shape {tuple(images.shape)}")
    n, h, w = (int(d) for d in images.shape)
    exact32 = h * w <= _MAX_EXACT_FLOAT32_PIXELS
    if isinstance(images, torch.Tensor):
        if images.dtype == torch.uint8:
            dtype, scale = (torch.float32 if exact32 else torch.float64), 1.0 / 255.0
        elif images.is_floating_point():
            dtype, scale = torch.float32, 1.0
        else:
            raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
        table = torch.zeros((n, h + 1, w + 1), dtype=dtype, device=images.device)
        table[:, 1:, 1:] = images.to(dtype).cumsum(1).cumsum(2)
        return SummedAreaTable(table, scale)
    images = np.asarray(images)
    if images.dtype == np.uint8:
        dtype, scale = (np.float32 if exact32 else np.float64), 1.0 / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        dtype, scale = np.float64, 1.0
    else:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    table = np.zeros((n, h + 1, w + 1), dtype=dtype)
    if n < 8:
        np.cumsum(images, axis=1, dtype=dtype, out=table[:, 1:, 1:])
        np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
    else:  # row by row over the whole batch: 2-4x faster than cumsum for large batches
        for i in range(h):
            np.add(table[:, i, 1:], images[:, i], out=table[:, i + 1, 1:])
        for j in range(w):
            np.add(table[:, :, j + 1], table[:, :, j], out=table[:, :, j + 1])
    return SummedAreaTable(table, scale)


def glimpse_top_left(
    locations: Array, image_shape: tuple[int, int], glimpse_size: int, n_scales: int
) -> Array:
    """Top-left pixel ``(x0, y0)`` of every scale's square at each location.

    This is the one place the location-to-pixel mapping is written (see the module
    docstring); the sensor and rendering both use it. The arithmetic is done in float32 so
    that every backend and device rounds alike.

    Args:
        locations: ``(N, 2)`` locations ``(x, y)``, NumPy or torch.
        image_shape: ``(H, W)``.
        glimpse_size: side ``g`` of the finest scale.
        n_scales: number of scales ``k``; scale ``s`` is ``g * 2**s`` pixels wide.

    Returns:
        int64 ``(N, k, 2)``: ``[..., 0]`` is ``x0`` (column), ``[..., 1]`` is ``y0`` (row).
    """
    if isinstance(locations, torch.Tensor):
        dev = str(locations.device)
        half, shift = _torch_constants(image_shape, glimpse_size, n_scales, 1.0, dev)[:2]
        centre = (locations.to(torch.float32) + 1.0) * half  # (N, 2)
        return torch.floor(centre[:, None, :] + shift).to(torch.int64)
    half, shift = _constants(image_shape, glimpse_size, n_scales, 1.0)[:2]
    centre = (np.asarray(locations, dtype=np.float32) + np.float32(1.0)) * half  # (N, 2)
    return np.floor(centre[:, None, :] + shift).astype(np.int64)


def extract_glimpses(
    images: Array | SummedAreaTable,
    locations: Array,
    glimpse_size: int,
    n_scales: int,
) -> Array:
    """Extract multi-scale glimpses, one per image, at the given locations.

    Args:
        images: ``(N, H, W)`` uint8 or float images (NumPy or torch), or a
            :class:`SummedAreaTable` built from them (faster when an image is glimpsed more
            than once).
        locations: ``(N, 2)`` float locations ``(x, y)``, ``(0, 0)`` the image centre and
            ``(-1, -1)`` the top-left corner (mapping in the module docstring). Same backend
            (and device) as ``images``.
        glimpse_size: side ``g`` of each glimpse in pixels (>= 1).
        n_scales: number of scales ``k`` (>= 1); scale ``s`` covers ``g * 2**s`` pixels.

    Returns:
        float32 ``(N, k, g, g)`` glimpses with values in [0, 1] (for uint8 input), on the
        backend and device of the input.

    Raises:
        ValueError: on mismatched shapes, non-positive sizes or non-finite locations.
    """
    if glimpse_size < 1 or n_scales < 1:
        raise ValueError(
            f"glimpse_size and n_scales must be >= 1, got {glimpse_size} and {n_scales}"
        )
    sat = images if isinstance(images, SummedAreaTable) else summed_area_table(images)
    n = len(sat)
    if tuple(locations.shape) != (n, 2):
        raise ValueError(f"locations must have shape ({n}, 2), got {tuple(locations.shape)}")
    is_torch = isinstance(sat.table, torch.Tensor)
    if not bool((torch.isfinite(locations) if is_torch else np.isfinite(locations)).all()):
        raise ValueError("locations must be finite (got NaN or infinity)")
    return _gather_glimpses(sat, locations, glimpse_size, n_scales)


@functools.lru_cache(maxsize=128)
def _constants(
    image_shape: tuple[int, int], glimpse_size: int, n_scales: int, value_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NumPy constants of one sensor configuration (built once, reused every call).

    Returns:
        ``half (2,)`` float32 half extents (x, y); ``shift (k, 1)`` float32 offsets from the
        centre to the top-left pixel of each scale; ``ramp (k, 1, g + 1)`` int64 block
        boundaries; ``limit (2, 1)`` int64 largest table index (x, y); ``norm (k, 1, 1)``
        pixel-sum-to-mean factors.
    """
    h, w = image_shape
    g, k = glimpse_size, n_scales
    half = np.array([w / 2.0, h / 2.0], dtype=np.float32)
    shift = np.array([[0.5 - g * 2**s / 2.0] for s in range(k)], dtype=np.float32)
    ramp = np.array([[[2**s * i for i in range(g + 1)]] for s in range(k)], dtype=np.int64)
    limit = np.array([[w], [h]], dtype=np.int64)
    norm = np.array([[[value_scale / 4**s]] for s in range(k)], dtype=np.float32)
    for array in (half, shift, ramp, limit, norm):
        array.flags.writeable = False
    return half, shift, ramp, limit, norm


@functools.lru_cache(maxsize=128)
def _torch_constants(
    image_shape: tuple[int, int], glimpse_size: int, n_scales: int, value_scale: float, device: str
) -> tuple[torch.Tensor, ...]:
    """:func:`_constants` as tensors on ``device`` (cached: no host-to-device copy per call)."""
    consts = _constants(image_shape, glimpse_size, n_scales, value_scale)
    return tuple(torch.tensor(c, device=device) for c in consts)


def _gather_glimpses(
    sat: SummedAreaTable, locations: Array, glimpse_size: int, n_scales: int
) -> Array:
    """Unchecked core of :func:`extract_glimpses` (the envs call it after validating).

    Per call: the block boundaries of every scale as ``(N, k, 2, g + 1)`` table indices
    (clamped into the table, so pixels off the image add 0), one gather of the
    ``(g + 1)^2`` corner sums per scale, and two differences.
    """
    table = sat.table
    h, w = sat.image_shape
    g = glimpse_size
    n = int(table.shape[0])
    if isinstance(table, torch.Tensor):
        dev = table.device
        ramp, limit, norm = _torch_constants((h, w), g, n_scales, sat.value_scale, str(dev))[2:]
        corner = glimpse_top_left(locations, (h, w), g, n_scales)  # (N, k, 2)
        bounds = torch.minimum(torch.clamp(corner[..., None] + ramp, min=0), limit)
        base = torch.arange(n, device=dev)[:, None, None, None] * ((h + 1) * (w + 1))
        flat = bounds[:, :, 1, :, None] * (w + 1) + bounds[:, :, 0, None, :] + base
        c = torch.take(table.reshape(-1), flat)  # (N, k, g + 1, g + 1)
        c = c[..., 1:, :] - c[..., :-1, :]
        return ((c[..., 1:] - c[..., :-1]) * norm.to(c.dtype)).to(torch.float32)
    ramp, limit, norm = _constants((h, w), g, n_scales, sat.value_scale)[2:]
    corner = glimpse_top_left(locations, (h, w), g, n_scales)  # (N, k, 2)
    bounds = np.minimum(np.maximum(corner[..., None] + ramp, 0), limit)  # (N, k, 2, g + 1)
    rows = bounds[:, :, 1, :, None] * (w + 1)
    if n > 1:
        rows += np.arange(0, n * (h + 1) * (w + 1), (h + 1) * (w + 1))[:, None, None, None]
    c = table.reshape(-1).take(rows + bounds[:, :, 0, None, :])  # (N, k, g + 1, g + 1)
    c = c[..., 1:, :] - c[..., :-1, :]
    out = c[..., 1:] - c[..., :-1]
    if out.dtype == np.float32:
        out *= norm
        return out
    return (out * norm.astype(out.dtype)).astype(np.float32)
