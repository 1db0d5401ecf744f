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

from collections.abc import Sequence
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
            int32 for uint8 images (exact), float64 (NumPy) or float32 (torch) otherwise.
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
    np.cumsum(images, axis=1, dtype=dtype, out=table[:, 1:, 1:])
    np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
    return SummedAreaTable(table, scale)


def glimpse_top_left(
    locations: Array, image_shape: tuple[int, int], sizes: Sequence[int]
) -> tuple[Array, Array]:
    """Top-left pixels ``(x0, y0)`` of squares of the given sizes centred at each location.

    This is the one place the location-to-pixel mapping is written (see the module
    docstring); rendering draws its boxes from it.

    Args:
        locations: ``(N, 2)`` locations ``(x, y)``. The arithmetic is done in float32 so that
            every backend and device rounds alike.
        image_shape: ``(H, W)``.
        sizes: sides of the squares in pixels, one per scale (``k`` of them).

    Returns:
        ``x0, y0``: int32 arrays ``(k, N)``.
    """
    h, w = image_shape
    shift = [[0.5 - size / 2.0] for size in sizes]
    if isinstance(locations, torch.Tensor):
        loc = locations.to(torch.float32).T
        dev = loc.device
        half = torch.tensor([[w / 2.0], [h / 2.0]], dtype=torch.float32, device=dev)
        shifts = torch.tensor(shift, dtype=torch.float32, device=dev)
        centre = (loc + 1.0) * half  # (2, N)
        corner = torch.floor(centre[:, None, :] + shifts).to(torch.int32)
    else:
        loc = np.asarray(locations, dtype=np.float32).T
        half = np.array([[w / 2.0], [h / 2.0]], dtype=np.float32)
        centre = (loc + np.float32(1.0)) * half  # (2, N)
        corner = np.floor(centre[:, None, :] + np.array(shift, dtype=np.float32))
        corner = corner.astype(np.int32)
    return corner[0], corner[1]


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


def _gather_glimpses(
    sat: SummedAreaTable, locations: Array, glimpse_size: int, n_scales: int
) -> Array:
    """Unchecked core of :func:`extract_glimpses` (the envs call it after validating).

    Works batch-last, ``(k, g + 1, g + 1, N)``, so that every elementwise operation runs
    over the long batch axis, and transposes once at the end.
    """
    table = sat.table
    h, w = sat.image_shape
    g = glimpse_size
    n = int(table.shape[0])
    blocks = [2**s for s in range(n_scales)]
    ramp_rows = [[b * i for i in range(g + 1)] for b in blocks]
    norm_rows = [[[[sat.value_scale / b**2]]] for b in blocks]
    if isinstance(table, torch.Tensor):
        xp: Any = torch
        dev = table.device
        ramp = torch.tensor(ramp_rows, dtype=torch.int32, device=dev)[:, :, None]
        norm = torch.tensor(norm_rows, dtype=table.dtype, device=dev)
        base = torch.arange(n, dtype=torch.int64, device=dev) * ((h + 1) * (w + 1))
    else:
        xp = np
        ramp = np.array(ramp_rows, dtype=np.int32)[:, :, None]
        norm = np.array(norm_rows, dtype=table.dtype)
        base = np.arange(n, dtype=np.int64) * ((h + 1) * (w + 1))
    # Block boundaries of every scale, (k, g + 1, N), clamped into the table so that pixels
    # outside the image add 0 to the block sums.
    x0, y0 = glimpse_top_left(locations, (h, w), [g * b for b in blocks])
    cols = xp.clip(x0[:, None, :] + ramp, 0, w)
    rows = xp.clip(y0[:, None, :] + ramp, 0, h) * (w + 1) + base
    corners = xp.take(table.reshape(-1), rows[:, :, None, :] + cols[:, None, :, :])
    sums = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]
    glimpses = sums * norm  # (k, g, g, N)
    if isinstance(glimpses, torch.Tensor):
        return glimpses.permute(3, 0, 1, 2).to(torch.float32).contiguous()
    return np.ascontiguousarray(glimpses.transpose(3, 0, 1, 2), dtype=np.float32)
