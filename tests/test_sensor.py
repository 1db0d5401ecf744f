"""Tests for :mod:`glimpse_env.sensor`: the batched multi-scale glimpse sensor.

Hand-made images check the pixel mapping of the module docstring; a naive per-sample loop
(written here, independent of the summed-area tables) checks every scale's block means. Each
test runs on the NumPy code and on the compiled loops of :mod:`glimpse_env._kernels`; the
NumPy code's batching internals are tested in ``test_sensor_numpy.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glimpse_env.sensor import (
    SummedAreaTable,
    extract_glimpses,
    summed_area_table,
)

#: Every test runs on the NumPy reference code and on the compiled loops (``sensor_impl``).
pytestmark = pytest.mark.usefixtures("sensor_impl")

# --------------------------------------------------------------------------- reference


def reference_glimpse(image: np.ndarray, loc: np.ndarray, g: int, k: int) -> np.ndarray:
    """Naive glimpse of one image: cut each scale's square out, average its blocks.

    ``image`` is ``(H, W)`` with values already in the output unit (uint8 / 255 or float).
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    x, y = float(loc[0]), float(loc[1])
    cx, cy = (x + 1.0) * w / 2.0, (y + 1.0) * h / 2.0
    out = np.zeros((k, g, g))
    for s in range(k):
        b = 2**s
        size = g * b
        x0 = math.floor(cx - size / 2 + 0.5)
        y0 = math.floor(cy - size / 2 + 0.5)
        window = np.zeros((size, size))
        for i in range(size):
            r = y0 + i
            if not 0 <= r < h:
                continue
            for j in range(size):
                c = x0 + j
                if 0 <= c < w:
                    window[i, j] = img[r, c]
        out[s] = window.reshape(g, b, g, b).mean(axis=(1, 3))
    return out


def reference_batch(images: np.ndarray, locs: np.ndarray, g: int, k: int) -> np.ndarray:
    unit = 1.0 / 255.0 if images.dtype == np.uint8 else 1.0
    return np.stack(
        [reference_glimpse(im.astype(np.float64) * unit, lc, g, k) for im, lc in zip(images, locs)]
    )


def one_pixel(h: int, w: int, row: int, col: int) -> np.ndarray:
    image = np.zeros((1, h, w), dtype=np.uint8)
    image[0, row, col] = 255
    return image


def loc(x: float, y: float) -> np.ndarray:
    return np.array([[x, y]], dtype=np.float32)


# --------------------------------------------------------------------------- pixel mapping


@pytest.mark.parametrize("row, col", [(10, 10), (10, 17), (17, 10), (13, 15), (17, 17)])
def test_single_pixel_inside_centre_glimpse(row: int, col: int) -> None:
    """(0, 0) on 28x28 with g=8 reads rows/cols 10..17: pixel (r, c) lands at (r-10, c-10)."""
    out = extract_glimpses(one_pixel(28, 28, row, col), loc(0, 0), 8, 1)
    assert out.shape == (1, 1, 8, 8)
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[row - 10, col - 10] = 1.0
    np.testing.assert_array_equal(out[0, 0], expected)


@pytest.mark.parametrize("row, col", [(9, 12), (18, 12), (12, 9), (12, 18), (0, 0), (27, 27)])
def test_single_pixel_outside_centre_glimpse_is_invisible(row: int, col: int) -> None:
    out = extract_glimpses(one_pixel(28, 28, row, col), loc(0, 0), 8, 1)
    assert not out.any()


def test_centre_glimpse_reads_rows_and_cols_10_to_17() -> None:
    image = np.arange(28 * 28, dtype=np.float64).reshape(1, 28, 28)
    out = extract_glimpses(image, loc(0, 0), 8, 1)
    np.testing.assert_allclose(out[0, 0], image[0, 10:18, 10:18], rtol=1e-6)


@pytest.mark.parametrize("row, col", [(0, 0), (5, 20), (27, 3), (14, 14), (27, 27)])
@pytest.mark.parametrize("g, k", [(5, 3), (3, 4), (1, 1)])
def test_location_at_pixel_centre_puts_pixel_at_glimpse_centre(
    row: int, col: int, g: int, k: int
) -> None:
    """With an odd glimpse size, aiming at a pixel's centre centres it in every scale."""
    x = 2 * (col + 0.5) / 28 - 1
    y = 2 * (row + 0.5) / 28 - 1
    out = extract_glimpses(one_pixel(28, 28, row, col), loc(x, y), g, k)[0]
    for s in range(k):
        expected = np.zeros((g, g), dtype=np.float32)
        expected[g // 2, g // 2] = 1.0 / 4**s
        np.testing.assert_allclose(out[s], expected, atol=1e-7, err_msg=f"scale {s}")


def test_corner_top_left_is_half_off_image() -> None:
    """(-1, -1) reads rows/cols -4..3: the image's top-left 4x4 lands bottom-right."""
    image = (np.arange(28 * 28) % 251).astype(np.uint8).reshape(1, 28, 28)
    out = extract_glimpses(image, loc(-1, -1), 8, 1)[0, 0]
    np.testing.assert_allclose(out[4:, 4:], image[0, :4, :4] / 255.0, rtol=1e-6)
    assert not out[:4].any()
    assert not out[:, :4].any()


def test_corner_bottom_right_is_half_off_image() -> None:
    """(1, 1) reads rows/cols 24..31: the image's bottom-right 4x4 lands top-left."""
    image = (np.arange(28 * 28) % 251).astype(np.uint8).reshape(1, 28, 28)
    out = extract_glimpses(image, loc(1, 1), 8, 1)[0, 0]
    np.testing.assert_allclose(out[:4, :4], image[0, 24:, 24:] / 255.0, rtol=1e-6)
    assert not out[4:].any()
    assert not out[:, 4:].any()


@pytest.mark.parametrize(
    "x, y, rows, cols",
    [
        (-1.0, 0.0, (10, 18), (-4, 4)),  # left edge
        (1.0, 0.0, (10, 18), (24, 32)),  # right edge
        (0.0, -1.0, (-4, 4), (10, 18)),  # top edge
        (0.0, 1.0, (24, 32), (10, 18)),  # bottom edge
    ],
)
def test_edges(x: float, y: float, rows: tuple[int, int], cols: tuple[int, int]) -> None:
    image = np.full((1, 28, 28), 255, dtype=np.uint8)
    out = extract_glimpses(image, loc(x, y), 8, 1)[0, 0]
    expected = np.zeros((8, 8), dtype=np.float32)
    r = np.arange(*rows)
    c = np.arange(*cols)
    inside = ((r >= 0) & (r < 28))[:, None] & ((c >= 0) & (c < 28))[None, :]
    expected[inside] = 1.0
    np.testing.assert_array_equal(out, expected)


def test_corner_coarser_scale_averages_blocks_with_zeros() -> None:
    """Scale 1 at (-1, -1) (16 pixels, rows -8..7): 4 of the 8 block rows are off-image."""
    image = np.full((1, 28, 28), 255, dtype=np.uint8)
    out = extract_glimpses(image, loc(-1, -1), 8, 2)[0]
    assert not out[1, :4].any() and not out[1, :, :4].any()
    np.testing.assert_array_equal(out[1, 4:, 4:], np.ones((4, 4), np.float32))


def test_non_square_image_uses_width_for_x_and_height_for_y() -> None:
    """20x33 image: (0, 0) -> cx = 16.5, cy = 10 -> cols 13..20, rows 6..13."""
    image = np.arange(20 * 33, dtype=np.float64).reshape(1, 20, 33)
    out = extract_glimpses(image, loc(0, 0), 8, 1)[0, 0]
    np.testing.assert_allclose(out, image[0, 6:14, 13:21], rtol=1e-6)
    # Transposed image, transposed location: the transposed glimpse.
    out_t = extract_glimpses(image.transpose(0, 2, 1).copy(), loc(0.3, -0.6), 8, 2)[0]
    out_n = extract_glimpses(image, loc(-0.6, 0.3), 8, 2)[0]
    np.testing.assert_allclose(out_t, out_n.transpose(0, 2, 1), rtol=1e-6)


def test_far_off_image_location_reads_zeros() -> None:
    image = np.full((4, 28, 28), 255, dtype=np.uint8)
    locs = np.array([[3, 0], [-3, 0], [0, 50], [-1e4, 1e4]], dtype=np.float32)
    out = extract_glimpses(image, locs, 8, 3)
    assert out.shape == (4, 3, 8, 8)
    assert not out.any()


# --------------------------------------------------------------------------- vs. the reference


def _random_case(
    rng: np.random.Generator, n: int, h: int, w: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    if dtype == "uint8":
        images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    else:
        images = rng.random((n, h, w)).astype(dtype)
    # Mostly inside [-1, 1], some beyond (the sensor does not clip).
    locs = rng.uniform(-1.6, 1.6, size=(n, 2)).astype(np.float32)
    locs[0] = (-1, -1)
    locs[1] = (1, 1)
    return images, locs


@pytest.mark.parametrize(
    "h, w, g, k, dtype",
    [
        (28, 28, 8, 1, "uint8"),
        (28, 28, 8, 3, "uint8"),
        (60, 60, 12, 3, "uint8"),
        (100, 100, 12, 4, "uint8"),
        (28, 28, 5, 3, "uint8"),  # odd glimpse size
        (31, 17, 3, 4, "uint8"),  # non-square, odd sizes
        (20, 45, 7, 2, "float32"),
        (33, 29, 4, 3, "float64"),
    ],
)
def test_multiscale_matches_naive_reference(h: int, w: int, g: int, k: int, dtype: str) -> None:
    rng = np.random.default_rng(h * 1000 + w * 10 + g + k)
    images, locs = _random_case(rng, 6, h, w, dtype)
    expected = reference_batch(images, locs, g, k)
    out = extract_glimpses(images, locs, g, k)
    assert out.dtype == np.float32 and out.shape == (6, k, g, g)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # The torch backend agrees too: exactly for uint8 (integer sums are exact in float32),
    # to float32 round-off of the table's running sums for float images.
    out_t = extract_glimpses(torch.as_tensor(images), torch.as_tensor(locs), g, k)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    atol = 1e-6 if dtype == "uint8" else 2e-4
    np.testing.assert_allclose(out_t.numpy(), expected, rtol=1e-5, atol=atol)


def test_uint8_output_is_float32_in_unit_interval() -> None:
    rng = np.random.default_rng(0)
    images, locs = _random_case(rng, 16, 60, 60, "uint8")
    images[:4] = 255  # saturated images: full-coverage blocks must read exactly 1
    locs[2:4] = 0.0
    out = extract_glimpses(images, locs, 12, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out[2:4].max() == 1.0  # the finest scale at the centre is fully on-image


def test_summed_area_table_input_equals_raw_input() -> None:
    rng = np.random.default_rng(1)
    images, locs = _random_case(rng, 8, 60, 60, "uint8")
    table = summed_area_table(images)
    assert isinstance(table, SummedAreaTable)
    assert table.image_shape == (60, 60) and len(table) == 8
    np.testing.assert_array_equal(
        extract_glimpses(table, locs, 12, 3), extract_glimpses(images, locs, 12, 3)
    )
    # Table rows selected by index give the same glimpses as the matching images.
    np.testing.assert_array_equal(
        extract_glimpses(table[2:5], locs[2:5], 12, 3),
        extract_glimpses(images[2:5], locs[2:5], 12, 3),
    )
    np.testing.assert_array_equal(
        extract_glimpses(table[3], locs[3:4], 12, 3),
        extract_glimpses(images[3:4], locs[3:4], 12, 3),
    )


def test_summed_area_table_values() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    sat = summed_area_table(image)
    assert sat.table.shape == (1, 4, 5)
    assert sat.value_scale == pytest.approx(1 / 255)
    assert sat.table[0, 3, 4] == image.sum()
    assert sat.table[0, 2, 3] == image[0, :2, :3].sum()
    assert not sat.table[0, 0].any() and not sat.table[0, :, 0].any()


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_torch_matches_numpy(dtype: str) -> None:
    rng = np.random.default_rng(2)
    images, locs = _random_case(rng, 32, 60, 60, dtype)
    out_np = extract_glimpses(images, locs, 12, 3)
    images_t, locs_t = torch.as_tensor(images), torch.as_tensor(locs)
    out_t = extract_glimpses(images_t, locs_t, 12, 3)
    assert isinstance(out_t, torch.Tensor)
    assert out_t.dtype == torch.float32 and out_t.device == images_t.device
    atol = 1e-6 if dtype == "uint8" else 2e-4  # float32 table for float images on torch
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-5, atol=atol)
    out_sat = extract_glimpses(summed_area_table(images_t), locs_t, 12, 3)
    torch.testing.assert_close(out_sat, out_t)


# --------------------------------------------------------------------------- errors


def test_error_wrong_location_shape() -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"locations must have shape \(2, 2\)"):
        extract_glimpses(images, np.zeros((3, 2), np.float32), 8, 1)
    with pytest.raises(ValueError, match="locations must have shape"):
        extract_glimpses(images, np.zeros((2,), np.float32), 8, 1)
    with pytest.raises(ValueError, match="locations must have shape"):
        extract_glimpses(torch.zeros(2, 28, 28), torch.zeros(2, 3), 8, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_non_finite_location(bad: float) -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    locs = np.zeros((2, 2), np.float32)
    locs[1, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        extract_glimpses(images, locs, 8, 1)
    with pytest.raises(ValueError, match="finite"):
        extract_glimpses(torch.as_tensor(images), torch.as_tensor(locs), 8, 1)


@pytest.mark.parametrize("g, k", [(0, 1), (8, 0), (-1, 2), (8, -3)])
def test_error_bad_sizes(g: int, k: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        extract_glimpses(np.zeros((1, 28, 28), np.uint8), loc(0, 0), g, k)


def test_error_two_dimensional_images() -> None:
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        extract_glimpses(np.zeros((28, 28), np.uint8), loc(0, 0), 8, 1)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        summed_area_table(torch.zeros(28, 28))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.int8, np.bool_])
def test_error_unsupported_image_dtype(dtype: type) -> None:
    with pytest.raises(TypeError, match="uint8 or floating point"):
        extract_glimpses(np.zeros((1, 28, 28), dtype), loc(0, 0), 8, 1)
    with pytest.raises(TypeError, match="uint8 or floating point"):
        extract_glimpses(torch.as_tensor(np.zeros((1, 28, 28), dtype)), torch.zeros(1, 2), 8, 1)


# --------------------------------------------------------------------------- fast paths


def _table_only(images: np.ndarray) -> SummedAreaTable:
    """The images' documented float table alone: every scale from four table reads."""
    return SummedAreaTable(summed_area_table(images).table, 1.0 / 255.0)


def _edge_locations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random locations, with corners, edges and far-off ones among the first."""
    locs = rng.uniform(-1.4, 1.4, size=(n, 2)).astype(np.float32)
    special = [(-1, -1), (1, 1), (-1, 1), (1, -1), (0, 0), (-1, 0), (0, 1), (5, 0), (0, -40)]
    locs[: len(special)] = special
    return locs


@pytest.mark.parametrize(
    "h, w, g",
    [(28, 28, 8), (60, 60, 12), (31, 17, 5), (9, 40, 12), (40, 33, 16), (50, 50, 20), (7, 7, 1)],
)
def test_one_scale_crop_equals_table_path_bit_for_bit(h: int, w: int, g: int) -> None:
    """One scale of uint8 images is a crop: batched (gathers from the bordered images, of
    8-pixel words when g is a multiple of 8) and one image (slice)."""
    rng = np.random.default_rng(h * w + g)
    images = rng.integers(0, 256, size=(40, h, w), dtype=np.uint8)
    locs = _edge_locations(rng, 40)
    expected = extract_glimpses(_table_only(images), locs, g, 1)
    np.testing.assert_array_equal(extract_glimpses(images, locs, g, 1), expected)
    np.testing.assert_array_equal(extract_glimpses(summed_area_table(images), locs, g, 1), expected)
    every_other = extract_glimpses(summed_area_table(images)[::2], locs[::2], g, 1)
    np.testing.assert_array_equal(every_other, expected[::2])  # a strided selection
    for i in range(len(images)):  # the one-image path
        one = extract_glimpses(images[i : i + 1], locs[i : i + 1], g, 1)
        assert one.shape == (1, 1, g, g) and one.dtype == np.float32
        np.testing.assert_array_equal(one, expected[i : i + 1], err_msg=f"location {locs[i]}")


@pytest.mark.parametrize("k", [2, 4, 5, 6])
@pytest.mark.parametrize("n", [1, 7, 30])
def test_uint16_table_equals_float_table_bit_for_bit(k: int, n: int) -> None:
    """Coarse scales of uint8 images read sums modulo 2**16 (exact up to 16x16 blocks; a
    6th scale, 32x32 blocks, falls back to the float table)."""
    rng = np.random.default_rng(k * 100 + n)
    images = rng.integers(200, 256, size=(n, 90, 70), dtype=np.uint8)  # large sums: wraps
    locs = _edge_locations(rng, max(n, 10))[:n]
    expected = extract_glimpses(_table_only(images), locs, 5, k)
    np.testing.assert_array_equal(extract_glimpses(images, locs, 5, k), expected)
    np.testing.assert_allclose(expected, reference_batch(images, locs, 5, k), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 5, 8, 200])  # cumsum, row loop, several chunks (100x100)
@pytest.mark.parametrize("size", [28, 100])
def test_tables_hold_exact_sums(n: int, size: int) -> None:
    rng = np.random.default_rng(n + size)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    exact = np.zeros((n, size + 1, size + 1), dtype=np.int64)
    exact[:, 1:, 1:] = images.astype(np.int64).cumsum(1).cumsum(2)
    sat = summed_area_table(images)
    assert sat.table.dtype == np.float32
    np.testing.assert_array_equal(sat.table, exact)
    wrapped = sat._uint16_table()
    assert wrapped.dtype == np.uint16
    np.testing.assert_array_equal(wrapped, exact % 2**16)


def test_float_image_table_is_summed_down_then_along() -> None:
    images = np.random.default_rng(3).random((9, 20, 30))
    table = np.zeros((9, 21, 31))
    table[:, 1:, 1:] = np.cumsum(np.cumsum(images, axis=1), axis=2)
    np.testing.assert_array_equal(summed_area_table(images).table, table)
    assert summed_area_table(images.astype(np.float32)).table.dtype == np.float64


def test_summed_area_table_is_a_snapshot_built_on_first_use(sensor_impl: str) -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(6, 60, 60), dtype=np.uint8)
    locs = rng.uniform(-1, 1, size=(6, 2)).astype(np.float32)
    sat = summed_area_table(images)
    assert sat._derived == {}  # nothing built yet
    before = extract_glimpses(images.copy(), locs, 12, 3)
    images[:] = 0  # the table copied the images
    np.testing.assert_array_equal(extract_glimpses(sat, locs, 12, 3), before)
    # No float table; the NumPy code also borders the images for its crops.
    built = {"uint16"} if sensor_impl == "compiled" else {"uint16", ("padded", 12)}
    assert set(sat._derived) == built


def test_selection_shares_the_batch_arrays() -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    sat = summed_area_table(images)
    part = sat[3]
    assert len(part) == 1 and part.image_shape == (28, 28)
    assert np.shares_memory(part.table, sat.table)  # built for the batch, then selected
    assert np.shares_memory(sat[2:5][1]._uint16_table(), sat._uint16_table())
    np.testing.assert_array_equal(sat[-1].table, sat.table[9:])
    with pytest.raises(IndexError):
        sat[10]
    from_table = SummedAreaTable(sat.table, sat.value_scale)
    assert from_table.images is None and from_table.image_shape == (28, 28)
    np.testing.assert_array_equal(from_table[2:4].table, sat.table[2:4])
    with pytest.raises(ValueError, match="table or the images"):
        SummedAreaTable(None, 1.0)
