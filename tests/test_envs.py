"""Tests for :mod:`glimpse_env.envs`: the single glimpse environments.

Each test checks a promise of the user manual (the :class:`GlimpseEnv` docstring) or of a
variant's docstring: spaces, timing, rewards, seeding, canvases, errors and rendering.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from PIL import Image
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import glimpse_env
from glimpse_env import ALL_IDS, ENV_IDS, _random, _xp, extract_glimpses
from glimpse_env.envs import (
    ClutteredMNIST100Env,
    ClutteredMNISTEnv,
    GlimpseEnv,
    GlimpseMNISTEnv,
    TranslatedMNISTEnv,
    clip_locations,
)
from glimpse_env.rendering import record_episode, save_gif

pytestmark = pytest.mark.usefixtures("glimpse_data")

#: id -> (class, canvas side, n_scales, glimpse_size, n_glimpses), as documented.
DOCUMENTED = {
    "GlimpseMNIST-v0": (GlimpseMNISTEnv, 28, 1, 8, 7),
    "GlimpseTranslatedMNIST-v0": (TranslatedMNISTEnv, 60, 3, 12, 8),
    "GlimpseClutteredMNIST-v0": (ClutteredMNISTEnv, 60, 3, 12, 8),
    "GlimpseClutteredMNIST100-v0": (ClutteredMNIST100Env, 100, 4, 12, 8),
}
CLUTTERED = ["GlimpseClutteredMNIST-v0", "GlimpseClutteredMNIST100-v0"]


# --------------------------------------------------------------------------- helpers


def canvas_of(env: gym.Env) -> np.ndarray:
    """The canvas of the current episode (what the sensor reads)."""
    return env.unwrapped._batch.canvases[0]


def random_actions(rng: np.random.Generator, n: int, spread: float = 1.5) -> np.ndarray:
    """``n`` float32 actions, locations partly outside [-1, 1] (to exercise the clipping)."""
    return rng.uniform(-spread, spread, size=(n, 12)).astype(np.float32)


def rollout(env: gym.Env, actions: np.ndarray, seed: int | None, episodes: int) -> list[Any]:
    """Run ``episodes`` episodes (the first reset seeded) and record every transition."""
    record: list[Any] = []
    k = 0
    for e in range(episodes):
        obs, info = env.reset(seed=seed if e == 0 else None)
        record.append(("reset", obs, info))
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(actions[k % len(actions)])
            k += 1
            record.append(("step", obs, reward, terminated, truncated, info))
            done = terminated or truncated
    return record


def assert_records_equal(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[0] == y[0]
        for u, v in zip(x[1:], y[1:]):
            if isinstance(u, dict) and "glimpse" in u:
                np.testing.assert_array_equal(u["glimpse"], v["glimpse"])
                np.testing.assert_array_equal(u["location"], v["location"])
            else:
                assert u == v


def recorded_warnings(fn: Callable[[], Any]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


# --------------------------------------------------------------------------- checkers


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env_unwrapped(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    assert recorded_warnings(lambda: gym_check_env(env)) == []
    env = gym.make(env_id, render_mode="rgb_array").unwrapped
    assert recorded_warnings(lambda: gym_check_env(env)) == []


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env_on_make(env_id: str) -> None:
    env = gym.make(env_id)
    caught = recorded_warnings(lambda: gym_check_env(env))
    # check_env always says it was handed a wrapped env; nothing else may be reported.
    assert [w for w in caught if "is different from the unwrapped version" not in w] == []


#: SB3's check_env takes any 3-D Box as an image; a float32 (k, g, g) glimpse in [0, 1] is
#: what the manual promises (MultiInputPolicy flattens it, as it is not uint8).
SB3_IMAGE_HEURISTIC = ("is an image", "minimal resolution for an image")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_check_env(env_id: str) -> None:
    assert recorded_warnings(lambda: sb3_check_env(gym.make(env_id), warn=False)) == []
    caught = recorded_warnings(lambda: sb3_check_env(gym.make(env_id), warn=True))
    assert [w for w in caught if not any(s in w for s in SB3_IMAGE_HEURISTIC)] == []


def test_make_with_module_prefix() -> None:
    env = gym.make("glimpse_env:GlimpseMNIST-v0")
    assert isinstance(env.unwrapped, GlimpseMNISTEnv)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------- spaces


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_as_documented(env_id: str) -> None:
    cls, side, k, g, n_glimpses = DOCUMENTED[env_id]
    env = gym.make(env_id)
    assert type(env.unwrapped) is cls
    assert (env.unwrapped.n_scales, env.unwrapped.glimpse_size) == (k, g)
    assert env.unwrapped.n_glimpses == n_glimpses
    assert env.observation_space == gym.spaces.Dict(
        {
            "glimpse": gym.spaces.Box(0.0, 1.0, (k, g, g), np.float32),
            "location": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
    )
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (12,), np.float32)
    env.reset(seed=0)
    assert canvas_of(env).shape == (side, side) and canvas_of(env).dtype == np.uint8
    small = gym.make(env_id, n_glimpses=3, glimpse_size=5, n_scales=2)
    assert small.observation_space["glimpse"].shape == (2, 5, 5)
    assert small.unwrapped.n_glimpses == 3


# --------------------------------------------------------------------------- timing


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("n_glimpses", [None, 2])
def test_timing_table(env_id: str, n_glimpses: int | None) -> None:
    env = gym.make(env_id, n_glimpses=n_glimpses)
    base = env.unwrapped
    T = base.n_glimpses
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=3)
    assert set(info) == {"image_index"} and isinstance(info["image_index"], int)
    index = info["image_index"]
    label = int(base.data.labels[index])
    canvas = canvas_of(env)
    assert env.observation_space.contains(obs)
    start = obs["location"]
    np.testing.assert_array_equal(
        obs["glimpse"],
        extract_glimpses(canvas[None], start[None], base.glimpse_size, base.n_scales)[0],
    )
    actions = random_actions(rng, T)
    for t, action in enumerate(actions, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        expected_loc = np.clip(action[:2], -1, 1).astype(np.float32)
        np.testing.assert_array_equal(obs["location"], expected_loc)
        glimpse = extract_glimpses(
            canvas[None], expected_loc[None], base.glimpse_size, base.n_scales
        )
        np.testing.assert_array_equal(obs["glimpse"], glimpse[0])
        assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
        assert truncated is False
        if t < T:
            assert (reward, terminated, info) == (0.0, False, {"image_index": index})
        else:
            assert terminated is True
            prediction = int(np.argmax(action[2:]))
            assert info == {
                "image_index": index,
                "label": label,
                "prediction": prediction,
                "is_success": label == prediction,
            }
            assert type(info["label"]) is int and type(info["prediction"]) is int
            assert type(info["is_success"]) is bool
            assert reward == float(label == prediction)
    with pytest.raises(ResetNeeded):
        env.step(actions[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sparse_reward_pays_one_for_the_right_class(env_id: str) -> None:
    env = gym.make(env_id, n_glimpses=2)
    _, info = env.reset(seed=11)
    label = int(env.unwrapped.data.labels[info["image_index"]])
    wrong = np.zeros(12, np.float32)
    wrong[2 + (label + 1) % 10] = 1.0  # the right class would win at step 1: no reward yet
    right = np.zeros(12, np.float32)
    right[2 + label] = 1.0
    assert env.step(right)[1] == 0.0
    _, reward, terminated, _, info = env.step(right)
    assert (reward, terminated, info["is_success"], info["prediction"]) == (1.0, True, True, label)
    env.reset()
    env.step(right)
    _, reward, _, _, info = env.step(wrong)
    assert (reward, info["is_success"]) == (0.0, False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_start_center(env_id: str) -> None:
    env = gym.make(env_id, start="center")
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs["location"], np.zeros(2, np.float32))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_start_is_spread_over_the_canvas(env_id: str) -> None:
    env = gym.make(env_id)
    starts = np.array([env.reset(seed=s)[0]["location"] for s in range(100)])
    assert starts.min() >= -1 and starts.max() <= 1
    assert (starts.min(axis=0) < -0.8).all() and (starts.max(axis=0) > 0.8).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_dense_reward_is_log_softmax_at_label(env_id: str) -> None:
    env = gym.make(env_id, reward="dense", n_glimpses=4)
    rng = np.random.default_rng(5)
    for episode in range(2):
        _, info = env.reset(seed=21 if episode == 0 else None)
        label = int(env.unwrapped.data.labels[info["image_index"]])
        done = False
        while not done:
            action = random_actions(rng, 1, spread=4.0)[0]  # scores are not clipped
            _, reward, done, _, info = env.step(action)
            scores = action[2:].astype(np.float64)
            expected = scores[label] - np.log(np.exp(scores).sum())
            assert type(reward) is float
            assert reward == pytest.approx(expected, rel=1e-6, abs=1e-6)
            assert reward < 0
        assert info["label"] == label


# --------------------------------------------------------------------------- seeding


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_actions_same_episodes(env_id: str) -> None:
    actions = random_actions(np.random.default_rng(1), 50)
    a = rollout(gym.make(env_id, n_glimpses=3), actions, seed=7, episodes=4)
    b = rollout(gym.make(env_id, n_glimpses=3), actions, seed=7, episodes=4)
    assert_records_equal(a, b)
    # Re-seeding the same env restarts the same sequence.
    env = gym.make(env_id, n_glimpses=3)
    rollout(env, actions, seed=99, episodes=2)
    assert_records_equal(rollout(env, actions, seed=7, episodes=4), a)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seeds_different_images(env_id: str) -> None:
    env = gym.make(env_id)
    indices, canvases = [], []
    for seed in range(4):
        _, info = env.reset(seed=seed)
        indices.append(info["image_index"])
        canvases.append(canvas_of(env).copy())
    assert len(set(indices)) == 4
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(canvases[i], canvases[j])
    # Unseeded resets move on to new episodes.
    _, info = env.reset()
    _, info2 = env.reset()
    assert info["image_index"] != info2["image_index"]


def _colliding_seeds(env: gym.Env) -> tuple[int, int, int]:
    """Two seeds whose first episode shows the same digit (birthday search)."""
    seen: dict[int, int] = {}
    for seed in range(2000):
        index = env.reset(seed=seed)[1]["image_index"]
        if index in seen:
            return seen[index], seed, index
        seen[index] = seed
    raise AssertionError("no two seeds drew the same digit")


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_eval_canvas_is_a_function_of_split_and_index(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split)
    seed_a, seed_b, index = _colliding_seeds(env)
    obs_a, info_a = env.reset(seed=seed_a)
    canvas_a = canvas_of(env).copy()
    obs_b, info_b = gym.make(env_id, split=split).reset(seed=seed_b)
    assert info_a["image_index"] == info_b["image_index"] == index
    env_b = gym.make(env_id, split=split)
    env_b.reset(seed=seed_b)
    np.testing.assert_array_equal(canvas_of(env_b), canvas_a)
    np.testing.assert_array_equal(obs_a["location"], obs_b["location"])
    np.testing.assert_array_equal(obs_a["glimpse"], obs_b["glimpse"])
    # And in sequential mode (any seed) digit `index` gets that same canvas and start.
    seq = gym.make(env_id, split=split, sequential=True).unwrapped
    batch = seq.draw_episodes(
        np.array([12345], np.uint64), np.array([index]), np.zeros(1, np.int64), 1
    )
    np.testing.assert_array_equal(batch.canvases[0], canvas_a)
    np.testing.assert_array_equal(batch.starts[0], obs_a["location"])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_train_canvas_depends_on_seed(env_id: str) -> None:
    """On ``train`` the same digit under two seeds gets a different start (and layout)."""
    env = gym.make(env_id, split="train")
    seed_a, seed_b, _ = _colliding_seeds(env)
    obs_a, _ = env.reset(seed=seed_a)
    canvas_a = canvas_of(env).copy()
    obs_b, _ = env.reset(seed=seed_b)
    assert not np.array_equal(obs_a["location"], obs_b["location"])
    if env_id != "GlimpseMNIST-v0":
        assert not np.array_equal(canvas_of(env), canvas_a)


_HASH_SNIPPET = """
import hashlib, json, sys
import gymnasium as gym
out = {}
for env_id in sys.argv[2:]:
    env = gym.make("glimpse_env:" + env_id, split="test", sequential=True)
    hashes = []
    for i in range(5):
        obs, info = env.reset(seed=int(sys.argv[1]) if i == 0 else None)
        assert info["image_index"] == i
        h = hashlib.sha256(env.unwrapped._batch.canvases[0].tobytes())
        h.update(obs["location"].tobytes())
        hashes.append(h.hexdigest())
    out[env_id] = hashes
print(json.dumps(out))
"""


def test_eval_canvases_identical_across_processes() -> None:
    """The test benchmark is the same in another process, whatever its seed."""
    out: dict[str, list[str]] = {}
    for env_id in ENV_IDS:
        env = gym.make(env_id, split="test", sequential=True)
        hashes = []
        for i in range(5):
            obs, info = env.reset(seed=4242 if i == 0 else None)
            assert info["image_index"] == i
            h = hashlib.sha256(canvas_of(env).tobytes())
            h.update(obs["location"].tobytes())
            hashes.append(h.hexdigest())
        out[env_id] = hashes
    proc = subprocess.run(
        [sys.executable, "-c", _HASH_SNIPPET, "7", *ENV_IDS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sequential_shows_digits_in_order(env_id: str) -> None:
    env = gym.make(env_id, split="val", sequential=True)
    data = env.unwrapped.data
    for seed in (0, 5):
        indices = []
        for i in range(4):
            _, info = env.reset(seed=seed if i == 0 else None)
            indices.append(info["image_index"])
            assert env.unwrapped._batch.labels[0] == data.labels[i]
        assert indices == [0, 1, 2, 3]


@pytest.mark.parametrize("kwargs", [{}, {"split": "test", "sequential": True}])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episodes_drawn_ahead_are_the_episodes_drawn_one_by_one(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    """The single env draws ``lookahead`` episodes per call; one per call gives the same."""
    ahead, one = gym.make(env_id, n_glimpses=2, **kwargs), gym.make(env_id, n_glimpses=2, **kwargs)
    assert ahead.unwrapped.lookahead > 1
    one.unwrapped.lookahead = 1
    actions = random_actions(np.random.default_rng(7), 64)
    for seed, episodes in [(5, 20), (11, 3), (5, 18)]:  # across lookahead batches, reseeded
        assert_records_equal(
            rollout(ahead, actions, seed, episodes), rollout(one, actions, seed, episodes)
        )
        np.testing.assert_array_equal(canvas_of(ahead), canvas_of(one))


def test_clip_locations_equals_rounding_to_float32_then_clipping() -> None:
    edges = [1.0, -1.0, 1 + 2**-30, -1 - 2**-30, 1 - 2**-30, -1 + 2**-30, 1 + 2**-24, 3.0]
    values = np.array([*edges, 0.1, -0.7, 1e30, -1e30, 2**-149, 0.0], dtype=np.float64)
    actions = np.zeros((len(values), 12))
    actions[:, 0], actions[:, 1] = values, values[::-1]
    for dtype in (np.float64, np.float32):
        a = actions.astype(dtype)
        expected = np.clip(a[:, :2].astype(np.float32), -1.0, 1.0)
        out = clip_locations(a)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)


def _splitmix64(z: int) -> int:
    """SplitMix64's finaliser on Python ints (the reference for :func:`_random.mix`)."""
    mask = 2**64 - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_random_draws_are_splitmix64_and_leave_their_inputs_alone() -> None:
    golden, mask = 0x9E3779B97F4A7C15, 2**64 - 1
    keys = np.array([0, 1, 2**63, mask, golden, 12345], dtype=np.uint64)
    before = keys.copy()
    expected = np.array([_splitmix64(int(k)) for k in keys], dtype=np.uint64)
    np.testing.assert_array_equal(_random.mix(keys), expected)
    bits = [[_splitmix64((int(k) + i * golden) & mask) >> 11 for i in (1, 2, 3)] for k in keys]
    np.testing.assert_array_equal(_random.uniforms(keys, 3), np.array(bits) * 2.0**-53)
    np.testing.assert_array_equal(keys, before)


# --------------------------------------------------------------------------- canvases


def _draw(env: GlimpseEnv, n: int, first_key: int = 0) -> Any:
    keys = np.arange(first_key, first_key + n, dtype=np.uint64)
    return env.draw_episodes(keys, np.zeros(n, np.int64), np.zeros(n, np.int64), 1)


def test_centred_canvas_is_the_mnist_image() -> None:
    env = gym.make("GlimpseMNIST-v0").unwrapped
    batch = _draw(env, 50)
    np.testing.assert_array_equal(batch.canvases, env.data.images[batch.image_indices])
    np.testing.assert_array_equal(batch.labels, env.data.labels[batch.image_indices])
    _, info = env.reset(seed=3)
    np.testing.assert_array_equal(canvas_of(env), env.data.images[info["image_index"]])


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("size", [8, 16, 5, 28])
def test_windows_and_saturating_adds_are_pixel_exact(size: int, contiguous: bool) -> None:
    """The canvas helpers copy windows as 8-byte words (widths that are multiples of 8, of
    contiguous arrays) or as strided windows: either way the pixels of the windows, and
    patches add with saturation at 255."""
    rng = np.random.default_rng(size + contiguous)
    h, w, n = 40, 36, 6
    source = rng.integers(0, 256, size=(4, h, 2 * w), dtype=np.uint8)
    images = np.ascontiguousarray(source[:, :, :w]) if contiguous else source[:, :, ::2]
    index = rng.integers(0, 4, size=(n, 3))
    rows = rng.integers(0, h - size + 1, size=(n, 3))
    cols = rng.integers(0, w - size + 1, size=(n, 3))
    index[0, 0], rows[0, 0], cols[0, 0] = 3, h - size, w - size  # the last bytes of the array
    words = _xp._row_words(images, size) is not None
    assert words == (contiguous and size % 8 == 0)
    windows = _xp.windows(images, index, rows, cols, size)
    assert windows.shape == (n, 3, size, size) and windows.dtype == np.uint8
    for i, j in np.ndindex(n, 3):
        r, c = rows[i, j], cols[i, j]
        np.testing.assert_array_equal(
            windows[i, j], images[index[i, j], r : r + size, c : c + size]
        )

    canvases = rng.integers(0, 256, size=(n, h, 2 * w), dtype=np.uint8)
    if contiguous:
        canvases = np.ascontiguousarray(canvases[:, :, :w])
    else:
        canvases = canvases[:, :, ::2]
    expected = canvases.astype(np.int64)
    for i in range(n):  # patch j = 0 of window i at (rows, cols)[i, 1]
        r, c = rows[i, 1], cols[i, 1]
        expected[i, r : r + size, c : c + size] += windows[i, 0]
    _xp.add_saturating_at(canvases, windows[:, 0], rows[:, 1], cols[:, 1])
    np.testing.assert_array_equal(canvases, np.minimum(expected, 255))
    assert (expected > 255).any()  # the saturation was exercised


def _assert_full_range(values: np.ndarray, high: int) -> None:
    """Values lie in 0..high and, over many draws, hit both ends (catches off-by-ones)."""
    assert values.min() == 0 and values.max() == high


@pytest.mark.parametrize("env_id", ["GlimpseTranslatedMNIST-v0", *CLUTTERED])
def test_layout_positions_cover_their_documented_range(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    side = env.canvas_size
    batch = _draw(env, 3000)
    _assert_full_range(batch.layout["digit_pos"], side - 28)
    if env_id in CLUTTERED:
        _assert_full_range(batch.layout["clutter_window"], 28 - 8)  # offset 0..20
        _assert_full_range(batch.layout["clutter_pos"], side - 8)
        sources = batch.layout["clutter_source"]
        assert sources.min() >= 0 and sources.max() < len(env.data)
        assert len(np.unique(sources)) > 0.5 * min(sources.size, len(env.data))


def test_translated_canvas_places_the_whole_digit() -> None:
    env = gym.make("GlimpseTranslatedMNIST-v0", split="val").unwrapped
    batch = _draw(env, 300)
    digits = env.data.images[batch.image_indices]
    pos = batch.layout["digit_pos"]
    assert batch.canvases.shape == (300, 60, 60) and batch.canvases.dtype == np.uint8
    assert pos.shape == (300, 2)
    assert pos.min() >= 0 and pos.max() <= 60 - 28
    for canvas, digit, (r, c) in zip(batch.canvases, digits, pos):
        expected = np.zeros((60, 60), np.uint8)
        expected[r : r + 28, c : c + 28] = digit
        np.testing.assert_array_equal(canvas, expected)


@pytest.mark.parametrize("env_id", CLUTTERED)
@pytest.mark.parametrize("split", ["train", "test"])
def test_cluttered_canvas_matches_its_layout(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split).unwrapped
    side, n_clutter, piece = env.canvas_size, env.n_clutter, 8
    n = 200
    batch = _draw(env, n, first_key=1000)
    canvases, layout = batch.canvases, batch.layout
    assert canvases.shape == (n, side, side) and canvases.dtype == np.uint8
    assert set(layout) == {"digit_pos", "clutter_source", "clutter_window", "clutter_pos"}
    assert layout["digit_pos"].shape == (n, 2)
    assert layout["clutter_source"].shape == (n, n_clutter)
    assert layout["clutter_window"].shape == (n, n_clutter, 2)
    assert layout["clutter_pos"].shape == (n, n_clutter, 2)
    for key, high in [("digit_pos", side - 28), ("clutter_window", 20), ("clutter_pos", side - 8)]:
        assert layout[key].min() >= 0 and layout[key].max() <= high, key
    sources = layout["clutter_source"]
    assert sources.min() >= 0 and sources.max() < len(env.data)
    np.testing.assert_array_equal(batch.labels, env.data.labels[batch.image_indices])
    saturated = 0
    for i in range(n):
        total = np.zeros((side, side), np.int64)
        for j in range(n_clutter):
            (wr, wc), (pr, pc) = layout["clutter_window"][i, j], layout["clutter_pos"][i, j]
            src = env.data.images[sources[i, j]]
            total[pr : pr + piece, pc : pc + piece] += src[wr : wr + piece, wc : wc + piece]
        r, c = layout["digit_pos"][i]
        digit = env.data.images[batch.image_indices[i]]
        total[r : r + 28, c : c + 28] += digit
        saturated += int((total > 255).sum())
        np.testing.assert_array_equal(canvases[i], np.minimum(total, 255).astype(np.uint8))
        # The whole digit is on the canvas (saturating addition never hides it).
        assert (canvases[i, r : r + 28, c : c + 28] >= digit).all()
    assert saturated > 0  # overlaps happened, so the saturation was exercised


@pytest.mark.parametrize("env_id", CLUTTERED)
def test_cluttered_env_episode_uses_drawn_canvas(env_id: str) -> None:
    """The canvas the env glimpses is the one ``draw_episodes`` makes for its key/episode."""
    env = gym.make(env_id).unwrapped
    env.reset(seed=17)
    env.reset()
    batch = env.draw_episodes(np.array([17], np.uint64), np.array([1]), np.zeros(1, np.int64), 1)
    np.testing.assert_array_equal(canvas_of(env), batch.canvases[0])
    clutter = np.count_nonzero(canvas_of(env)) - np.count_nonzero(
        env.data.images[batch.image_indices[0]]
    )
    assert clutter > 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make", [lambda i: gym.make(i), lambda i: gym.make(i).unwrapped])
@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST-v0"])
def test_bad_actions(env_id: str, make: Callable[[str], gym.Env]) -> None:
    env = make(env_id)
    env.reset(seed=0)
    good = np.zeros(12, np.float32)
    for bad_value in (np.nan, np.inf, -np.inf):
        for where in (0, 5):
            action = good.copy()
            action[where] = bad_value
            with pytest.raises(ValueError, match="finite"):
                env.step(action)
    for shape in [(11,), (13,), (1, 12), (2,)]:
        with pytest.raises(ValueError, match=r"shape \(12,\)"):
            env.step(np.zeros(shape, np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        env.step(np.zeros(12, np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        env.step([0] * 12)
    # None of the rejected actions counted as a step.
    assert env.unwrapped._t == 0
    env.step(good.astype(np.float64))  # any float dtype is fine


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_and_after_end(env_id: str) -> None:
    action = np.zeros(12, np.float32)
    with pytest.raises(ResetNeeded, match="reset"):
        gym.make(env_id).unwrapped.step(action)
    with pytest.raises(ResetNeeded):
        gym.make(env_id).step(action)
    env = gym.make(env_id, n_glimpses=2).unwrapped
    env.reset(seed=0)
    env.step(action)
    env.step(action)
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(action)
    env.reset()
    env.step(action)  # fine again after reset


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "training"}, "split must be one of"),
        ({"start": "corner"}, "start must be one of"),
        ({"reward": "shaped"}, "reward must be one of"),
        ({"n_glimpses": 0}, "n_glimpses must be a positive integer"),
        ({"n_glimpses": -2}, "n_glimpses must be a positive integer"),
        ({"n_glimpses": 2.5}, "n_glimpses must be a positive integer"),
        ({"n_glimpses": True}, "n_glimpses must be a positive integer"),
        ({"glimpse_size": 0}, "glimpse_size must be a positive integer"),
        ({"n_scales": "3"}, "n_scales must be a positive integer"),
        ({"render_mode": "human"}, "render_mode must be one of"),
    ],
)
@pytest.mark.parametrize("cls", [GlimpseMNISTEnv, ClutteredMNISTEnv])
def test_bad_arguments(cls: type[GlimpseEnv], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="n_glimpse"):
        GlimpseMNISTEnv(n_glimpse=3)
    with pytest.raises(TypeError, match="clutter"):
        gym.make("GlimpseClutteredMNIST-v0", clutter=4)


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST-v0"])
def test_negative_seed(env_id: str) -> None:
    for env in (gym.make(env_id), gym.make(env_id).unwrapped):
        with pytest.raises((ValueError, gym.error.Error), match=r"(?i)seed"):
            env.reset(seed=-1)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_rgb_array(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        env.unwrapped.render()
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray)
    assert first.dtype == np.uint8 and first.shape == (240, 480, 3)
    env.step(np.array([0.9, -0.9] + [0.0] * 10, np.float32))
    second = env.render()
    assert second.shape == (240, 480, 3) and not np.array_equal(first, second)


def test_render_without_render_mode_warns_and_returns_none() -> None:
    env = GlimpseMNISTEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_save_gif_writes_a_readable_gif(tmp_path: Path) -> None:
    env = gym.make("GlimpseClutteredMNIST-v0", render_mode="rgb_array", n_glimpses=3)
    frames, info = record_episode(env, seed=0)
    assert len(frames) == 4 and set(info) == {"image_index", "label", "prediction", "is_success"}
    path = save_gif(frames, tmp_path / "sub" / "episode.gif", fps=4)
    assert path == tmp_path / "sub" / "episode.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(frames)
        assert gif.size == (480, 240)
    assert [p.name for p in path.parent.iterdir()] == ["episode.gif"]  # no temp file left
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "empty.gif")


def test_package_exports() -> None:
    assert set(ENV_IDS) == set(DOCUMENTED)
    for env_id in ALL_IDS:
        assert env_id in gym.registry
    assert glimpse_env.extract_glimpses is extract_glimpses
