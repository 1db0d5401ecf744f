"""Tests of the NumPy sensor's batching internals: how large batches are read.

These paths exist only in the NumPy reference code (:mod:`glimpse_env.sensor`), so every
test here runs with the compiled loops switched off (``numpy_sensor``); the values the
sensor returns are tested on both in ``test_sensor.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from test_sensor import _random_case, reference_batch

from glimpse_env import sensor
from glimpse_env.sensor import extract_glimpses

pytestmark = pytest.mark.usefixtures("numpy_sensor")


@pytest.fixture
def read_passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Lets a test change how batches are read (the passes are cached per size)."""
    sensor._read_passes.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    sensor._read_passes.cache_clear()


@pytest.mark.parametrize("n", [0, 1, 3, 4, 13, 30])
@pytest.mark.parametrize(
    "h, w, g, k, dtype",
    [
        (28, 28, 8, 1, "uint8"),  # crops of 8-pixel words only
        (60, 60, 12, 1, "uint8"),  # crops pixel by pixel only
        (100, 100, 12, 4, "uint8"),  # crops and the uint16 table
        (31, 17, 5, 3, "uint8"),
        (20, 45, 7, 2, "float32"),  # the float64 table, no crops
        (300, 300, 7, 6, "uint8"),  # 32x32 blocks: the float64 table
    ],
)
def test_interleaved_reads_equal_image_by_image_reads(
    read_passes: pytest.MonkeyPatch, n: int, h: int, w: int, g: int, k: int, dtype: str
) -> None:
    """Large batches are read in chunks of interleaved blocks (with a last, smaller block):
    the glimpses are those read image by image, bit for bit."""
    rng = np.random.default_rng(n * 7 + h + k)
    images, locs = _random_case(rng, max(n, 2), h, w, dtype)
    images, locs = images[:n], locs[:n]
    read_passes.setattr(sensor, "_INTERLEAVE_BYTES", 2**62)  # always image by image
    plain = extract_glimpses(images, locs, g, k)
    read_passes.setattr(sensor, "_INTERLEAVE_BYTES", 0)  # always interleaved
    read_passes.setattr(sensor, "_READ_BLOCK", 4)
    read_passes.setattr(sensor, "_READ_CHUNK", 12)
    sensor._read_passes.cache_clear()
    interleaved = extract_glimpses(images, locs, g, k)
    assert interleaved.shape == plain.shape == (n, k, g, g)
    np.testing.assert_array_equal(interleaved, plain)
    if 0 < n <= 4 and h * w <= 10_000:
        np.testing.assert_allclose(
            interleaved, reference_batch(images, locs, g, k), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("nbytes", [0, 2**62])
def test_read_passes_cover_every_image_once(read_passes: pytest.MonkeyPatch, nbytes: int) -> None:
    read_passes.setattr(sensor, "_READ_BLOCK", 4)
    read_passes.setattr(sensor, "_READ_CHUNK", 12)
    sensor._read_passes.cache_clear()
    assert sensor._read_passes(0, nbytes) == ()
    for n in range(1, 40):
        passes = sensor._read_passes(n, nbytes)
        assert [p[0] for p in passes] == [0] + [p[1] for p in passes[:-1]]  # contiguous
        assert passes[-1][1] == n
        for start, stop, block in passes:
            assert (stop - start) % block == 0
            if nbytes <= sensor._INTERLEAVE_BYTES:  # small arrays: image by image
                assert (start, stop, block) == (0, n, 1)
            else:  # chunks of at most 12 images, blocks of at most 4
                assert stop - start <= 12 and block <= 4


def test_large_batch_is_read_interleaved_and_matches_one_image_at_a_time() -> None:
    """A batch whose tables exceed the cache takes the interleaved path."""
    n, h, g, k = 260, 100, 12, 4
    assert n * (h + 1) ** 2 * 2 > sensor._INTERLEAVE_BYTES
    rng = np.random.default_rng(9)
    images, locs = _random_case(rng, n, h, h, "uint8")
    passes = sensor._read_passes(n, n * (h + 1) ** 2 * 2)
    assert any(block > 1 for _, _, block in passes)
    out = extract_glimpses(images, locs, g, k)
    for i in range(0, n, 37):
        one = extract_glimpses(images[i : i + 1], locs[i : i + 1], g, k)
        np.testing.assert_array_equal(out[i : i + 1], one)
