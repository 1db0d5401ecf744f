"""Tests for :mod:`glimpse_env.registration`: the ids' specs as Gymnasium and other libraries
read them (plain data that round-trips through JSON), and the NumPy-only import."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from glimpse_env import ENV_IDS, vector
from glimpse_env.registration import VARIANTS

pytestmark = pytest.mark.usefixtures("glimpse_data")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spec_is_plain_data_that_round_trips(env_id: str) -> None:
    """Minari and others serialise the spec: every entry point is a ``module:name`` string."""
    spec = gym.spec(env_id)
    assert isinstance(spec.entry_point, str) and isinstance(spec.vector_entry_point, str)
    again = gym.envs.registration.EnvSpec.from_json(spec.to_json())
    assert again == spec
    envs = gym.make_vec(again, num_envs=2)
    assert isinstance(envs, vector.GlimpseVectorEnv)
    assert envs.env_cls is VARIANTS[env_id].env_cls
    assert gym.make(again).unwrapped.spec.id == env_id


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spec_threshold_and_no_time_limit(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.reward_threshold == pytest.approx(1 - VARIANTS[env_id].paper_error / 100)
    assert 0.9 < spec.reward_threshold < 1.0
    # Episodes end by themselves at n_glimpses: no TimeLimit flags them as truncated too.
    assert spec.max_episode_steps is None
    env = gym.make(env_id, n_glimpses=2)
    env.reset(seed=0)
    flags = [env.step(np.zeros(12, np.float32))[2:4] for _ in range(2)]
    assert flags == [(False, False), (True, False)]
    assert gym.make_vec(env_id, num_envs=1).max_episode_steps is None


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_variant_vector_class_is_constructible_directly(env_id: str) -> None:
    cls = getattr(vector, gym.spec(env_id).vector_entry_point.split(":")[1])
    direct, made = cls(num_envs=2, max_episode_steps=None), gym.make_vec(env_id, num_envs=2)
    a, b = direct.reset(seed=1), made.reset(seed=1)
    np.testing.assert_array_equal(a[0]["glimpse"], b[0]["glimpse"])
    assert direct.metadata == made.metadata


def test_base_vector_env_needs_a_variant() -> None:
    with pytest.raises(TypeError, match="env_cls"):
        vector.GlimpseVectorEnv(num_envs=2)


_NUMPY_ONLY = """
import sys
import gymnasium as gym
import numpy as np
import glimpse_env
env = gym.make("GlimpseClutteredMNIST-v0")
env.reset(seed=0)
env.step(env.action_space.sample())
envs = gym.make_vec("GlimpseClutteredMNIST-v0", num_envs=3)
envs.reset(seed=0)
envs.step(envs.action_space.sample())
heavy = sorted(m for m in ("torch", "stable_baselines3", "PIL", "matplotlib") if m in sys.modules)
print(",".join(heavy) or "numpy-only")
"""


def test_import_make_and_make_vec_need_neither_torch_nor_sb3() -> None:
    """``import glimpse_env``, ``gym.make`` and ``gym.make_vec`` (NumPy backend) import no
    torch, SB3 or plotting library (fresh process: the test runner imported them all)."""
    proc = subprocess.run(
        [sys.executable, "-c", _NUMPY_ONLY], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "numpy-only"
