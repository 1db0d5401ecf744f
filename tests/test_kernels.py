"""Tests for :mod:`glimpse_env._kernels`: the compiled loops equal the NumPy code bit for bit.

Each loop is compared with the NumPy function it replaces on random inputs (edges, strided
selections, wrapping sums), and whole episodes of every registered env (single and vector,
with threads) are compared with the compiled loops switched on and off.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from glimpse_env import ENV_IDS, _kernels, _xp, sensor
from glimpse_env.sensor import extract_glimpses, summed_area_table

pytest.importorskip("numba", reason="the compiled loops need numba (extra 'fast')")
pytestmark = pytest.mark.usefixtures("glimpse_data")


@pytest.mark.parametrize("n, h, w", [(1, 1, 1), (3, 28, 28), (5, 100, 100), (2, 7, 40)])
def test_sum_table_u16_equals_numpy(n: int, h: int, w: int) -> None:
    rng = np.random.default_rng(n * h + w)
    images = rng.integers(180, 256, size=(n, h, w), dtype=np.uint8)  # large sums: wraps
    expected = sensor._integer_sum_table(images, np.uint16)
    table = _kernels.sum_table_u16(images)
    assert table.dtype == np.uint16 and table.shape == (n, h + 1, w + 1)
    np.testing.assert_array_equal(table, expected)
    np.testing.assert_array_equal(_kernels.sum_table_u16(images[::-2]), expected[::-2])


def _glimpses(images: np.ndarray, locs: np.ndarray, g: int, k: int, compiled: bool) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "ENABLED", compiled)
        return extract_glimpses(images, locs, g, k)


@pytest.mark.parametrize(
    "n, h, w, g, k",
    [(1, 28, 28, 8, 1), (9, 28, 28, 8, 3), (40, 60, 60, 12, 3), (33, 100, 100, 12, 4),
     (7, 31, 17, 5, 5), (4, 9, 40, 3, 2)],
)  # fmt: skip
def test_glimpses_equal_numpy(n: int, h: int, w: int, g: int, k: int) -> None:
    rng = np.random.default_rng(n + h + g + k)
    images = rng.integers(0, 256, size=(2 * n, h, w), dtype=np.uint8)[::2]  # strided
    locs = rng.uniform(-1.5, 1.5, size=(n, 2)).astype(np.float32)
    locs[: min(n, 4)] = [(-1, -1), (1, 1), (0, 0), (9, -9)][: min(n, 4)]
    expected = _glimpses(images, locs, g, k, compiled=False)
    np.testing.assert_array_equal(_glimpses(images, locs, g, k, compiled=True), expected)
    sat = summed_area_table(images)  # a selection of a prebuilt table, as the envs read it
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "ENABLED", True)
        np.testing.assert_array_equal(extract_glimpses(sat[1:], locs[1:], g, k), expected[1:])


def test_scales_beyond_the_uint16_table_use_numpy() -> None:
    """32x32 blocks (a 6th scale) would overflow the uint16 sums: the float table is read."""
    rng = np.random.default_rng(0)
    images = rng.integers(200, 256, size=(3, 300, 300), dtype=np.uint8)
    locs = rng.uniform(-1, 1, size=(3, 2)).astype(np.float32)
    np.testing.assert_array_equal(
        _glimpses(images, locs, 7, 6, compiled=True), _glimpses(images, locs, 7, 6, compiled=False)
    )


@pytest.mark.parametrize("p", [8, 5, 28])
def test_add_saturating_at_equals_numpy(p: int) -> None:
    rng = np.random.default_rng(p)
    canvases = rng.integers(0, 256, size=(6, 60, 60), dtype=np.uint8)
    patches = rng.integers(0, 256, size=(6, 2, p, p), dtype=np.uint8)[:, 1]  # strided
    rows, cols = rng.integers(0, 60 - p + 1, size=(2, 6))
    expected = canvases.copy()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "ENABLED", False)
        _xp.add_saturating_at(expected, patches, rows, cols)
    _kernels.add_saturating_at(canvases, patches, rows, cols)
    np.testing.assert_array_equal(canvases, expected)


@pytest.mark.parametrize("row, col", [(-1, 0), (0, -2), (53, 0), (0, 60)])
def test_add_saturating_at_refuses_a_patch_outside_its_canvas(row: int, col: int) -> None:
    canvases = np.zeros((3, 60, 60), dtype=np.uint8)
    patches = np.full((3, 8, 8), 7, dtype=np.uint8)
    rows, cols = np.array([0, row, 0]), np.array([0, col, 0])
    with pytest.raises(IndexError, match="patch 1 of shape"):
        _kernels.add_saturating_at(canvases, patches, rows, cols)
    assert canvases[0].sum() == 7 * 64 and canvases[1:].sum() == 0  # stopped at patch 1


def _episodes_digest(make: Any, steps: int, compiled: bool) -> str:
    """Hash of every observation, reward and layout over ``steps`` random steps."""
    digest = hashlib.sha256()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "ENABLED", compiled)
        env = make()
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            for part in (obs["glimpse"], obs["location"]):
                digest.update(np.ascontiguousarray(part).tobytes())
            actions = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(actions)
            digest.update(np.asarray(reward, dtype=np.float64).tobytes())
            if np.all(terminated | truncated) and not hasattr(env, "num_envs"):
                obs, _ = env.reset()
        env.close()
    return digest.hexdigest()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_whole_episodes_equal_numpy(env_id: str) -> None:
    for make in (
        lambda: gym.make(env_id),
        lambda: gym.make_vec(env_id, num_envs=5),
        lambda: gym.make_vec(env_id, num_envs=300, num_threads=2),
    ):
        assert _episodes_digest(make, 18, compiled=True) == _episodes_digest(
            make, 18, compiled=False
        )
