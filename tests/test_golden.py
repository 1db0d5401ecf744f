"""Golden transitions: every registered id, single and vector, against recorded arrays.

The arrays in ``tests/data/golden_envs.npz`` were recorded with ``python tests/test_golden.py
--write``: those of the four original ids from the code before the issue-27 redesign (commit
719e3db), those of a later id when it was added (``--write`` re-records every id; the
existing arrays come out the same when nothing else changed). A refactor that changes
an observation, a reward, an episode end or an info value of any env fails here. Observations
are compared to within 1e-6 (NumPy's reductions may round differently on another CPU);
everything else exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.registration import ENV_IDS

GOLDEN = Path(__file__).parent / "data" / "golden_envs.npz"
STEPS = 17  # more than two 8-glimpse episodes: crosses episode boundaries
NUM_ENVS = 3
MODES = {"single": None, "next": AutoresetMode.NEXT_STEP, "same": AutoresetMode.SAME_STEP}


def _actions(space: gym.spaces.Box, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, *space.shape)).astype(np.float32)


def record(env_id: str, mode: str) -> dict[str, np.ndarray]:
    """Arrays of ``STEPS`` seeded random steps of ``env_id`` (``mode``: single, next, same)."""
    out: dict[str, list[np.ndarray]] = {}

    def add(key: str, value: object) -> None:
        out.setdefault(key, []).append(np.asarray(value))

    if MODES[mode] is None:
        env = gym.make(env_id, split="test")
        obs, info = env.reset(seed=7)
        actions = _actions(env.action_space, STEPS, seed=11)
        for t in range(STEPS):
            add("glimpse", obs["glimpse"])
            add("location", obs["location"])
            add("image_index", info["image_index"])
            obs, reward, terminated, truncated, info = env.step(actions[t])
            add("reward", reward)
            add("done", [terminated, truncated])
            add("label", info.get("label", -1))
            add("prediction", info.get("prediction", -1))
            if terminated or truncated:
                obs, info = env.reset()
        env.close()
    else:
        envs = gym.make_vec(env_id, num_envs=NUM_ENVS, split="test", autoreset_mode=MODES[mode])
        obs, info = envs.reset(seed=7)
        actions = _actions(envs.single_action_space, STEPS * NUM_ENVS, seed=11)
        actions = actions.reshape(STEPS, NUM_ENVS, -1)
        for t in range(STEPS):
            add("glimpse", obs["glimpse"])
            add("location", obs["location"])
            add("image_index", info["image_index"])
            obs, reward, terminated, truncated, info = envs.step(actions[t])
            add("reward", reward)
            add("done", np.stack([terminated, truncated]))
            add("label", np.where(info["_label"], info["label"], -1))
            add("prediction", np.where(info["_prediction"], info["prediction"], -1))
        envs.close()
    return {key: np.stack(values) for key, values in out.items()}


CASES = [(env_id, mode) for env_id in ENV_IDS for mode in MODES]


@pytest.mark.parametrize(("env_id", "mode"), CASES)
def test_transitions_match_the_recorded_ones(env_id: str, mode: str) -> None:
    golden = np.load(GOLDEN)
    got = record(env_id, mode)
    for key, value in got.items():
        expected = golden[f"{env_id}/{mode}/{key}"]
        assert value.shape == expected.shape, key
        if key in ("glimpse", "location"):
            np.testing.assert_allclose(value, expected, rtol=0, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(value, expected, err_msg=key)


def write() -> None:
    """Record the golden arrays (run on the reference code)."""
    arrays = {
        f"{env_id}/{mode}/{key}": value
        for env_id, mode in CASES
        for key, value in record(env_id, mode).items()
    }
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **arrays)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes, {len(arrays)} arrays)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write")
    write()
