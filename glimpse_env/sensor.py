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

On NumPy, uint8 images take two shortcuts that give the same float32 values bit for bit
(every block sum is an exact integer either way). Scale 0, whose blocks are single pixels,
is a plain crop of the zero-padded image (a slice for one image; for a batch, rows a
multiple of 8 pixels wide are gathered as 8-byte words); the coarser scales read a uint16
table of the sums modulo ``2**16``, exact for blocks of up to 16x16 pixels and half the
memory traffic of a float32 table. Each array is built on first use (chunk by chunk, to stay
in the CPU cache) and shared by every selection (``table[i]``) of the batch.

The reads of a large batch, whose arrays do not fit in the cache, are bound by the latency
of cache misses: they are gathered in chunks of images, each in blocks of 64 images
interleaved (read ``r`` of every image of the block, then read ``r + 1``), so that many
misses are in flight at once (:func:`_read_passes`, :func:`_read_pass`). Small batches are
read image by image.

All of the above is the NumPy reference. Where numba is installed (extra ``fast``), uint8
images are glimpsed by one compiled loop instead (:func:`glimpse_env._kernels.glimpses_u8`:
scale 0 read from the images, coarser scales from a uint16 table built by another compiled
loop), with the same values bit for bit and without the per-call cost of many small array
operations (the 100x100 cluttered vector env steps 2.4x faster at N=64:
``benchmarks/results/env_throughput*.json``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from glimpse_env import _kernels
from glimpse_env._xp import WORD, byte_words, is_torch

if TYPE_CHECKING:
    import torch

Array = Any  # np.ndarray | torch.Tensor

#: uint8 images with at most this many pixels have pixel sums below 2**24, so a float32 table
#: holds them exactly.
_MAX_EXACT_FLOAT32_PIXELS = (2**24 - 1) // 255
#: Largest block side whose uint8 pixel sums stay below 2**16 (255 * 16 * 16 = 65,280), so
#: that differences of a table kept modulo 2**16 are exact.
_MAX_UINT16_BLOCK = 16
#: Pixels per chunk when building a table for many images: the chunk's int32 running sums
#: (2 MiB) stay in the CPU cache while they are summed over rows.
_CHUNK_PIXELS = 2**19
#: Below this many images, summing over rows is one ``cumsum`` call, not a loop over rows.
_MIN_IMAGES_FOR_ROW_LOOP = 8
#: Images whose table reads one gather interleaves (see :func:`_read_pass`).
_READ_BLOCK = 64
#: Images per pass of :func:`_read_block_means`, a multiple of :data:`_READ_BLOCK`: bounds
#: the pass's index and corner-sum arrays (2 MiB of indices for three scales of 12x12).
_READ_CHUNK = 512
#: Glimpses that read tables and bordered images of up to this many bytes in all read them
#: image by image, faster when they stay in the cache (see :func:`_read_passes`).
_INTERLEAVE_BYTES = 2**22

#: ``(start, stop, block)`` triples: how a batch of images is read (:func:`_read_passes`).
_Passes = tuple[tuple[int, int, int], ...]
#: The passes of one image.
_ONE_PASS: _Passes = ((0, 1, 1),)
#: The table argument of :func:`glimpse_env._kernels.glimpses_u8` for one scale (unread).
_NO_TABLE = np.zeros((1, 1, 1), dtype=np.uint16)


class SummedAreaTable:
    """Summed-area tables of a batch of images, ready for :func:`extract_glimpses`.

    Made by :func:`summed_area_table`, which keeps the images and builds every array the
    sensor reads on first use, or directly from a prebuilt table. Indexing selects images;
    a selection shares the arrays its batch builds, so they are built once for the batch.

    Attributes:
        table: ``(N, H + 1, W + 1)``; ``table[n, i, j]`` is the sum of ``image[n, :i, :j]``.
            float32 for uint8 images of up to 65,793 pixels (exact integer sums), float64 for
            larger ones; float64 (NumPy) or float32 (torch) for float images. Built on first
            access when made from images.
        value_scale: what a pixel sum is multiplied by to map pixels to [0, 1]
            (``1/255`` for uint8 images, ``1`` for float images).
        images: the ``(N, H, W)`` images, or ``None`` when made from a table.
    """

    __slots__ = ("_derived", "_images", "_index", "_parent", "_shape", "value_scale")

    def __init__(self, table: Array | None, value_scale: float, images: Array | None = None):
        """Wrap a prebuilt table, or images whose tables are built on first use.

        Args:
            table: ``(N, H + 1, W + 1)`` table (see the class attributes), or ``None``.
            value_scale: pixel-sum-to-[0, 1] factor (see the class attributes).
            images: ``(N, H, W)`` images; required when ``table`` is ``None``. They must not
                change afterwards (:func:`summed_area_table` copies them).

        Raises:
            ValueError: if neither ``table`` nor ``images`` is given.
        """
        if table is None and images is None:
            raise ValueError("SummedAreaTable needs a table or the images to build it from")
        self.value_scale = value_scale
        self._images = images
        self._derived: dict[Hashable, Array] = {} if table is None else {"table": table}
        self._parent: SummedAreaTable | None = None
        self._index: Any = None
        if images is not None:
            self._shape = int(images.shape[-2]), int(images.shape[-1])
        else:
            self._shape = int(table.shape[-2]) - 1, int(table.shape[-1]) - 1

    @property
    def table(self) -> Array:
        """The ``(N, H + 1, W + 1)`` table (built on first access)."""
        return self._cached("table", _float_table)

    @property
    def images(self) -> Array | None:
        """The ``(N, H, W)`` images, or ``None`` when made from a table."""
        return self._images

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the images the table was built from."""
        return self._shape

    def __len__(self) -> int:
        source = self._images if self._images is not None else self.table
        return int(source.shape[0])

    def __repr__(self) -> str:
        h, w = self.image_shape
        return f"SummedAreaTable(n={len(self)}, image_shape=({h}, {w}))"

    def __getitem__(self, index: Any) -> SummedAreaTable:
        """Select images by a batch index (int, slice, mask or index array)."""
        if isinstance(index, (int, np.integer)):
            i = range(len(self))[index]  # IndexError when out of range, as for arrays
            index = slice(i, i + 1)
        part = SummedAreaTable.__new__(SummedAreaTable)
        part.value_scale, part._shape = self.value_scale, self._shape
        part._images = None if self._images is None else self._images[index]
        part._derived = {}
        part._parent, part._index = self, index
        return part

    def _cached(self, key: Hashable, build: Callable[[Array], Array]) -> Array:
        """The derived array ``key``: built from the images on first use, or selected from
        the batch's (built there once for the whole batch)."""
        array = self._derived.get(key)
        if array is None:
            if self._parent is not None:
                array = self._parent._cached(key, build)[self._index]
            else:
                array = build(self._images)
            self._derived[key] = array
        return array

    def _uint16_table(self) -> np.ndarray:
        """uint16 ``(N, H + 1, W + 1)``: the table of uint8 images modulo ``2**16``."""
        return self._cached("uint16", _uint16_table)

    def _padded(self, pad: int) -> np.ndarray:
        """``(N, H + 2 * pad, W + 2 * pad)``: the images in a border of ``pad`` zeros."""
        return self._cached(("padded", pad), functools.partial(_zero_padded, pad=pad))


def summed_area_table(images: Array) -> SummedAreaTable:
    """Prepare a batch of images for :func:`extract_glimpses` (tables built on first use).

    Args:
        images: ``(N, H, W)`` uint8 (0..255) or floating images (values as given, normally in
            [0, 1]); NumPy array or torch tensor. They are copied, so later changes to
            ``images`` do not affect the tables.

    Returns:
        The tables, on the same backend and device as ``images``: float32 (exact integer
        sums) for uint8 images of up to 65,793 pixels, float64 for larger ones and for float
        images on NumPy, float32 for float images on torch.

    Raises:
        ValueError: if ``images`` is not 3-D.
        TypeError: if ``images`` is neither uint8 nor floating point.
    """
    if is_torch(images):
        return _lazy_table(images.clone())
    return _lazy_table(np.array(images))


def _lazy_table(images: Array) -> SummedAreaTable:
    """:func:`summed_area_table` without the copy (for images nobody changes afterwards)."""
    if is_torch(images):
        import torch

        uint8, floating = images.dtype == torch.uint8, images.is_floating_point()
    else:
        images = np.asarray(images)
        uint8, floating = images.dtype == np.uint8, np.issubdtype(images.dtype, np.floating)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got shape {tuple(images.shape)}")
    if not (uint8 or floating):
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return SummedAreaTable(None, 1.0 / 255.0 if uint8 else 1.0, images)


def _float_table(images: Array) -> Array:
    """The documented :attr:`SummedAreaTable.table` of ``(N, H, W)`` images."""
    n, h, w = (int(d) for d in images.shape)
    exact32 = h * w <= _MAX_EXACT_FLOAT32_PIXELS
    if is_torch(images):
        import torch

        if images.dtype == torch.uint8:
            dtype = torch.float32 if exact32 else torch.float64
        else:
            dtype = torch.float32
        table = torch.zeros((n, h + 1, w + 1), dtype=dtype, device=images.device)
        table[:, 1:, 1:] = images.to(dtype).cumsum(1).cumsum(2)
        return table
    if images.dtype == np.uint8:
        return _integer_sum_table(images, np.float32 if exact32 else np.float64)
    # Float images: down the rows, then along them (float rounding depends on this order).
    table = np.zeros((n, h + 1, w + 1), dtype=np.float64)
    np.cumsum(images, axis=1, dtype=np.float64, out=table[:, 1:, 1:])
    np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
    return table


def _uint16_table(images: np.ndarray) -> np.ndarray:
    """Summed-area table of uint8 images modulo ``2**16`` (see :func:`_integer_sum_table`;
    compiled with :func:`glimpse_env._kernels.sum_table_u16` where available)."""
    if _kernels.ENABLED:
        return _kernels.sum_table_u16(images)
    return _integer_sum_table(images, np.uint16)


def _integer_sum_table(images: np.ndarray, dtype: type) -> np.ndarray:
    """Summed-area table of uint8 ``(N, H, W)`` images as ``dtype`` ``(N, H + 1, W + 1)``.

    Exact for float dtypes that hold the sums, modulo ``2**16`` for uint16. The running sums
    are taken in int32 (NumPy's fastest), a cache-sized chunk of images at a time: along
    each row, then down the rows of the whole chunk, which the scratch keeps contiguous
    (``(H, chunk, W)``), and cast into the table once.
    """
    n, h, w = images.shape
    table = np.empty((n, h + 1, w + 1), dtype=dtype)
    table[:, 0] = 0
    table[:, 1:, 0] = 0
    acc = np.int32 if 255 * h * w < 2**31 else np.int64
    chunk = max(1, _CHUNK_PIXELS // (h * w))
    scratch = np.empty((h, min(chunk, n), w), dtype=acc)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sums = scratch[:, : stop - start]
        np.cumsum(images[start:stop], axis=2, dtype=acc, out=sums.transpose(1, 0, 2))
        if stop - start < _MIN_IMAGES_FOR_ROW_LOOP:
            np.cumsum(sums, axis=0, out=sums)
        else:  # one vectorised add per row, over the whole chunk
            for i in range(1, h):
                np.add(sums[i - 1], sums[i], out=sums[i])
        # Exact for float tables; wraps modulo 2**16 for uint16.
        np.copyto(table[start:stop, 1:, 1:], sums.transpose(1, 0, 2), casting="unsafe")
    return table


def _zero_padded(images: np.ndarray, pad: int) -> np.ndarray:
    """``(N, H, W)`` images in a border of ``pad`` zeros: ``(N, H + 2 * pad, W + 2 * pad)``."""
    n, h, w = images.shape
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=images.dtype)
    padded[:, pad : pad + h, pad : pad + w] = images
    return padded


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
    if is_torch(locations):
        import torch

        dev = str(locations.device)
        half, shift = _torch_constants(image_shape, glimpse_size, n_scales, 1.0, dev)[:2]
        centre = (locations.to(torch.float32) + 1.0) * half  # (N, 2)
        return torch.floor(centre[:, None, :] + shift).to(torch.int64)
    half, shift = _constants(image_shape, glimpse_size, n_scales, 1.0)[:2]
    locations = np.asarray(locations, dtype=np.float32)
    return _floor_pixel(locations[:, None, :], half, shift).astype(np.int64)


def _floor_pixel(coordinate: Any, half: Any, shift: Any) -> Any:
    """``floor((coordinate + 1) * half + shift)``, each step rounded to float32.

    The NumPy spelling of the mapping, shared by arrays and by float32 scalars (one glimpse).
    """
    return np.floor((coordinate + np.float32(1.0)) * half + shift)


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
    sat = images if isinstance(images, SummedAreaTable) else _lazy_table(images)
    n = len(sat)
    if tuple(locations.shape) != (n, 2):
        raise ValueError(f"locations must have shape ({n}, 2), got {tuple(locations.shape)}")
    finite = locations.isfinite() if is_torch(locations) else np.isfinite(locations)
    if not bool(finite.all()):
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
    import torch

    consts = _constants(image_shape, glimpse_size, n_scales, value_scale)
    return tuple(torch.tensor(c, device=device) for c in consts)


@functools.lru_cache(maxsize=16)
def _pixel_values(value_scale: float) -> np.ndarray:
    """float32 ``(256,)``: ``p * value_scale`` for every uint8 pixel value ``p``, rounded as
    the sensor's float32 product ``pixel * norm`` rounds it."""
    norm = np.float32(value_scale)
    values = np.multiply(np.arange(256, dtype=np.uint8), norm, dtype=np.float32)
    values.flags.writeable = False
    return values


@functools.lru_cache(maxsize=32)
def _crop_layout(n: int, h: int, w: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index constants of :func:`_crop_pixels` for ``n`` images of ``(h, w)`` in a border of
    ``g`` zeros.

    Returns:
        ``limit (2,)`` largest top-left pixel ``(x0, y0)`` worth reading (``(w, h)``);
        ``strides (2,)`` flat steps of ``x0`` and ``y0``; ``offsets (n, g * c)`` flat index
        of every read of image ``i``'s crop when its top-left pixel is ``(0, 0)``: ``c``
        reads per row, of 8 pixels each when ``g`` is a multiple of 8 (``c = g / 8``
        words), else of one pixel each (``c = g``).
    """
    hp, wp = h + 2 * g, w + 2 * g
    cols = np.arange(0, g, WORD if g % WORD == 0 else 1)
    pattern = (np.arange(g)[:, None] * wp + cols).ravel()
    offsets = np.arange(g * wp + g, n * hp * wp, hp * wp)[:, None] + pattern
    layout = (np.array([w, h]), np.array([1, wp]), offsets)
    for array in layout:
        array.flags.writeable = False
    return layout


def _gather_glimpses(
    sat: SummedAreaTable,
    locations: Array,
    glimpse_size: int,
    n_scales: int,
    out: np.ndarray | None = None,
) -> Array:
    """Unchecked core of :func:`extract_glimpses` (the envs call it after validating).

    ``out``: optional C-contiguous float32 ``(N, k, g, g)`` NumPy array to write into
    (NumPy only; the vector env's threads each fill their part of one batch).
    """
    if is_torch(locations):
        return _gather_torch(sat, locations, glimpse_size, n_scales)
    g, k, n = glimpse_size, n_scales, len(sat)
    images = sat.images
    # Scale 0 of uint8 images has blocks of one pixel: a crop, exactly the table's
    # pixel * value_scale. Coarser scales (and float images) read the table.
    crop = images is not None and images.dtype == np.uint8
    if out is None:
        out = np.empty((n, k, g, g), dtype=np.float32)
    if crop and n == 1 and k == 1:  # one glimpse of one scale: no array arithmetic at all
        half, shift = _constants(sat.image_shape, g, 1, 1.0)[:2]
        x, y = np.asarray(locations, dtype=np.float32)[0]
        x0, y0 = (
            int(_floor_pixel(x, half[0], shift[0, 0])),
            int(_floor_pixel(y, half[1], shift[0, 0])),
        )
        _crop_one(images[0], x0, y0, sat.value_scale, out[0, 0])
        return out
    h, w = sat.image_shape
    corner = glimpse_top_left(locations, (h, w), g, k)  # (N, k, 2)
    if crop and _kernels.ENABLED and 2 ** (k - 1) <= _MAX_UINT16_BLOCK:
        table = sat._uint16_table() if k > 1 else _NO_TABLE
        norm = _constants((h, w), g, k, sat.value_scale)[4].reshape(k)
        _kernels.glimpses_u8(images, table, corner, norm, out)
        return out
    passes = _ONE_PASS if n == 1 else _read_passes(n, _bytes_read(n, (h, w), g, k, crop))
    if crop and n == 1:
        _crop_one(images[0], int(corner[0, 0, 0]), int(corner[0, 0, 1]), sat.value_scale, out[0, 0])
    elif crop:
        _crop_pixels(sat, corner[:, 0], out, passes)
    if k > int(crop):
        _read_block_means(sat, corner, int(crop), out, passes)
    return out


def _bytes_read(n: int, image_shape: tuple[int, int], g: int, k: int, crop: bool) -> int:
    """Bytes of the arrays a glimpse of ``n`` images reads: the bordered images when scale 0
    is cropped, and the (uint16) tables when coarser scales are read."""
    h, w = image_shape
    bordered = (h + 2 * g) * (w + 2 * g) if crop else 0
    tables = 2 * (h + 1) * (w + 1) if k > int(crop) else 0
    return n * (bordered + tables)


def _crop_one(image: np.ndarray, x0: int, y0: int, value_scale: float, out: np.ndarray) -> None:
    """Scale 0 of one uint8 ``(H, W)`` image, by slicing: the fast path of :func:`_crop_pixels`.

    Args:
        image: uint8 ``(H, W)``.
        x0, y0: top-left pixel of the square.
        value_scale: pixel-to-[0, 1] factor.
        out: float32 ``(g, g)``, written: the part of the square on the image as
            ``pixel * value_scale`` (looked up, rounded as the float32 product rounds), zeros
            elsewhere; equal to :func:`_crop_pixels` bit for bit.
    """
    g = out.shape[-1]
    h, w = image.shape
    out.fill(0.0)
    rows = slice(max(y0, 0), min(y0 + g, h))
    cols = slice(max(x0, 0), min(x0 + g, w))
    if rows.start < rows.stop and cols.start < cols.stop:
        target = out[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0]
        target[...] = _pixel_values(value_scale).take(image[rows, cols])


def _crop_pixels(
    sat: SummedAreaTable, corner: np.ndarray, out: np.ndarray, passes: _Passes
) -> None:
    """Scale 0 of uint8 images: gathers from the images in a border of ``g`` zeros.

    A square clamped to ``[-g, W]`` (rows: ``[-g, H]``) still reads zeros only when it lay
    further off the image, so every crop is a fixed pattern of offsets from its corner. Rows
    whose width is a multiple of 8 pixels are gathered as 8-byte words
    (:func:`glimpse_env._xp.byte_words`), in one gather; other rows pixel by pixel, in
    ``passes`` (:func:`_crop_pass`).

    Args:
        sat: the images (uint8, NumPy).
        corner: int64 ``(N, 2)`` top-left pixels ``(x0, y0)`` of scale 0.
        out: C-contiguous float32 ``(N, k, g, g)``; scale 0 is written:
            ``pixel * value_scale``, 0 off the image.
        passes: how the images are read (:func:`_read_passes`).
    """
    n, k, g, _ = out.shape
    h, w = sat.image_shape
    norm = _constants((h, w), g, 1, sat.value_scale)[4][0]  # (1, 1) float32
    limit, strides, offsets = _crop_layout(n, h, w, g)
    start = np.minimum(np.maximum(corner, -g), limit) @ strides  # (N,)
    padded = np.ascontiguousarray(sat._padded(g))  # (a copy only for strided selections)
    if g % WORD == 0:
        words = byte_words(padded)[start[:, None] + offsets]  # (N, g * g / 8)
        np.multiply(words.view(np.uint8).reshape(n, g, g), norm, out=out[:, 0], dtype=np.float32)
        return
    dest, flat = out.reshape(n, k, g * g)[:, 0], padded.reshape(-1)
    if passes == ((0, n, 1),):  # image by image, in one gather
        pixels = flat.take(start[:, None] + offsets)  # (N, g * g)
        np.multiply(pixels, norm, out=dest, dtype=np.float32)
        return
    start += _table_starts(n, (h + 2 * g) * (w + 2 * g))
    for first, stop, block in passes:
        part = slice(first, stop)
        _crop_pass(flat, start[part], offsets[0], block, norm, dest[part])


def _crop_pass(
    padded: np.ndarray,
    start: np.ndarray,
    pattern: np.ndarray,
    block: int,
    norm: np.ndarray,
    out: np.ndarray,
) -> None:
    """Crops of ``M`` images, gathered ``block`` images at a time, interleaved (as in
    :func:`_read_pass`).

    Args:
        padded: the flat bordered images.
        start: int64 ``(M,)`` flat index where each crop's ``pattern`` starts (its image's
            first pixel plus ``x0 + y0 * (W + 2 * g)``).
        pattern: int64 ``(g * g,)`` flat offsets of the crop pixels (:func:`_crop_layout`).
        block: images interleaved per gather; divides ``M``.
        norm: float32 ``(1, 1)`` pixel-to-[0, 1] factor.
        out: float32 ``(M, g * g)``, written.
    """
    m = len(start)
    pixels = padded.take(start.reshape(m // block, 1, block) + pattern[:, None])
    dest = out.reshape(m // block, block, -1)  # splitting the first axis: a view
    np.multiply(pixels.transpose(0, 2, 1), norm, out=dest, dtype=np.float32)


def _read_block_means(
    sat: SummedAreaTable, corner: np.ndarray, first: int, out: np.ndarray, passes: _Passes
) -> None:
    """Scales ``first ..`` from four summed-area-table reads per block.

    The block boundaries of those scales are clamped into the table once (pixels off the
    image add 0) and turned into flat row and column indices; then, pass by pass,
    :func:`_read_pass` gathers the ``(g + 1)^2`` corner sums of every scale and takes two
    differences. uint8 images are read from the uint16 table (sums modulo ``2**16``) while
    every block sum fits in 16 bits.

    Args:
        sat: the tables.
        corner: int64 ``(N, k, 2)`` top-left pixels of every scale.
        first: first scale to compute.
        out: float32 ``(N, k, g, g)``; scales ``first ..`` are written.
        passes: how the images are read (:func:`_read_passes`).
    """
    n, k, g, _ = out.shape
    h, w = sat.image_shape
    ramp, limit, norm = _constants((h, w), g, k, sat.value_scale)[2:]
    ramp, norm = ramp[first:], norm[first:]
    images = sat.images
    uint8 = images is not None and images.dtype == np.uint8
    table = sat._uint16_table() if uint8 and 2 ** (k - 1) <= _MAX_UINT16_BLOCK else sat.table
    bounds = np.minimum(np.maximum(corner[:, first:, :, None] + ramp, 0), limit)
    rows = bounds[:, :, 1, :, None] * (w + 1)  # (N, k', g + 1, 1): flat index of each row
    if n > 1:
        rows += _table_starts(n, (h + 1) * (w + 1))[:, None, None, None]
    cols = bounds[:, :, 0, None, :]  # (N, k', 1, g + 1): column in its row
    flat = table.reshape(-1)
    if len(passes) == 1:  # no slicing
        _read_pass(flat, rows, cols, passes[0][2], norm, out[:, first:])
        return
    for start, stop, block in passes:
        part = slice(start, stop)
        _read_pass(flat, rows[part], cols[part], block, norm, out[part, first:])


@functools.lru_cache(maxsize=32)
def _read_passes(n: int, nbytes: int) -> _Passes:
    """How to read ``n`` images from arrays of ``nbytes``: ``(start, stop, block)`` triples.

    From arrays larger than :data:`_INTERLEAVE_BYTES` (which the cache does not hold):
    chunks of :data:`_READ_CHUNK` images, each cut into a run of whole blocks of
    :data:`_READ_BLOCK` images and one block of the rest (``block`` divides
    ``stop - start``), each block read interleaved (:func:`_read_pass`). From smaller ones:
    all images in one pass, image by image (``block == 1``), faster when the reads hit the
    cache. No passes for no images.
    """
    if nbytes <= _INTERLEAVE_BYTES:
        return ((0, n, 1),) if n else ()
    passes = []
    for start in range(0, n, _READ_CHUNK):
        stop = min(start + _READ_CHUNK, n)
        whole = start + (stop - start) // _READ_BLOCK * _READ_BLOCK
        if whole > start:
            passes.append((start, whole, _READ_BLOCK))
        if stop > whole:
            passes.append((whole, stop, stop - whole))
    return tuple(passes)


@functools.lru_cache(maxsize=32)
def _table_starts(n: int, size: int) -> np.ndarray:
    """int64 ``(n,)``: flat index of the first entry of each of ``n`` tables of ``size``."""
    starts = np.arange(0, n * size, size)
    starts.flags.writeable = False
    return starts


def _read_pass(
    table: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    block: int,
    norm: np.ndarray,
    out: np.ndarray,
) -> None:
    """Block means of ``M`` images, gathered ``block`` images at a time, interleaved.

    The gather reads corner ``(i, j)`` of scale ``s`` of the ``block`` images one after the
    other, then the next corner: consecutive reads fall in different images' tables, so many
    more cache misses are in flight at once than image by image (the gather is about 1.6x
    faster on 1024 tables of 100x100). The values are the same.

    Args:
        table: the flat tables, ``(N * (H + 1) * (W + 1),)``.
        rows: int64 ``(M, k', g + 1, 1)`` flat index of each block-boundary row.
        cols: int64 ``(M, k', 1, g + 1)`` index of each block-boundary column in its row.
        block: images interleaved per gather; divides ``M``.
        norm: float32 ``(k', 1, 1)`` pixel-sum-to-mean factors.
        out: float32 ``(M, k', g, g)``, written.
    """
    m, k, side, _ = rows.shape
    if block > 1:  # (M, ...) -> (M / block, ..., block)
        rows = rows.reshape(m // block, block, k, side, 1).transpose(0, 2, 3, 4, 1)
        cols = cols.reshape(m // block, block, k, 1, side).transpose(0, 2, 3, 4, 1)
    c = table.take(rows + cols)  # (M / block, k', g + 1, g + 1[, block])
    c = c[:, :, 1:] - c[:, :, :-1]
    # Block sums, exact (also modulo 2**16) for uint8 images.
    if block > 1:  # written back in image order: (M / block, block, k', g, g)
        sums = np.empty((m // block, block, k, side - 1, side - 1), dtype=c.dtype)
        np.subtract(c[:, :, :, 1:], c[:, :, :, :-1], out=sums.transpose(0, 2, 3, 4, 1))
        out = out.reshape(sums.shape)  # splitting the first axis: a view
    else:
        sums = c[:, :, :, 1:] - c[:, :, :, :-1]
    if sums.dtype == np.float64:
        out[...] = sums * norm.astype(np.float64)
    else:
        np.multiply(sums, norm, out=out, dtype=np.float32)


def _gather_torch(
    sat: SummedAreaTable, locations: torch.Tensor, glimpse_size: int, n_scales: int
) -> torch.Tensor:
    """:func:`_gather_glimpses` on torch: every scale from the float table (any device)."""
    import torch

    table = sat.table
    h, w = sat.image_shape
    g = glimpse_size
    n = int(table.shape[0])
    dev = table.device
    ramp, limit, norm = _torch_constants((h, w), g, n_scales, sat.value_scale, str(dev))[2:]
    corner = glimpse_top_left(locations, (h, w), g, n_scales)  # (N, k, 2)
    bounds = torch.minimum(torch.clamp(corner[..., None] + ramp, min=0), limit)
    base = torch.arange(n, device=dev)[:, None, None, None] * ((h + 1) * (w + 1))
    flat = bounds[:, :, 1, :, None] * (w + 1) + bounds[:, :, 0, None, :] + base
    c = torch.take(table.reshape(-1), flat)  # (N, k, g + 1, g + 1)
    c = c[..., 1:, :] - c[..., :-1, :]
    return ((c[..., 1:] - c[..., :-1]) * norm.to(c.dtype)).to(torch.float32)
