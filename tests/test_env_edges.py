"""Edge cases of the envs' arguments and inputs (each found by hostile use, issue 26): every
bad value gets a clear error naming the argument, and no input leaks the caller's autograd
graph or overflows a reward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from glimpse_env import ENV_IDS

pytestmark = pytest.mark.usefixtures("glimpse_data")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_scales": 64}, "n_scales=64 is more than"),
        ({"n_scales": 5}, "at most 4 scales"),  # 8 * 2**4 = 128 > 2 * 28
        ({"glimpse_size": 29}, "glimpse_size must be at most the canvas side"),
        ({"sequential": "no"}, "sequential must be True or False"),
        ({"sequential": 1}, "sequential must be True or False"),
    ],
)
def test_bad_sizes_and_flags_are_refused_at_construction(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        gym.make("GlimpseMNIST-v0", **kwargs)
    with pytest.raises(ValueError, match=match):
        gym.make_vec("GlimpseMNIST-v0", num_envs=2, **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_largest_allowed_scale_count_works(env_id: str) -> None:
    base = gym.make(env_id).unwrapped
    k = 1
    while True:  # the largest n_scales the constructor accepts
        try:
            env = gym.make(env_id, n_scales=k + 1)
        except ValueError:
            break
        k += 1
    assert (
        base.glimpse_size * 2 ** (k - 1) >= 2 * base.canvas_size > base.glimpse_size * 2 ** (k - 2)
    )
    env = gym.make(env_id, n_scales=k)
    obs, _ = env.reset(seed=0)
    assert obs["glimpse"].shape[0] == k and np.isfinite(obs["glimpse"]).all()


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7", True])
def test_single_env_bad_seeds(seed: Any) -> None:
    env = gym.make("GlimpseMNIST-v0")
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=seed)


def test_largest_seed_works() -> None:
    env = gym.make("GlimpseMNIST-v0")
    a, _ = env.reset(seed=2**64 - 1)
    b, _ = gym.make("GlimpseMNIST-v0").reset(seed=2**64 - 1)
    np.testing.assert_array_equal(a["glimpse"], b["glimpse"])
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2)
    obs, _ = envs.reset(seed=2**64 - 2)  # sub-env 1 gets 2**64 - 1: no wrap to seed 0
    np.testing.assert_array_equal(obs["glimpse"][1], a["glimpse"])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dense_rewards_are_float64_whatever_the_action_dtype(dtype: type) -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=3, reward="dense", n_glimpses=2)
    envs.reset(seed=0)
    _, rewards, *_ = envs.step(np.zeros((3, 12), dtype=dtype))
    assert rewards.dtype == np.float64
    np.testing.assert_allclose(rewards, np.log(0.1))


def test_dense_rewards_stay_finite_for_huge_finite_scores() -> None:
    """Finite float32 scores of +-3e38 gave -inf (float32 overflow in the log-softmax)."""
    env = gym.make("GlimpseMNIST-v0", reward="dense", n_glimpses=1)
    _, info = env.reset(seed=0)
    label = int(env.unwrapped.data.labels[info["image_index"]])
    action = np.full(12, -3e38, dtype=np.float32)
    action[:2] = 0.0
    action[2 + (label + 1) % 10] = 3e38  # a confident wrong answer
    _, reward, *_ = env.step(action)
    assert np.isfinite(reward) and reward == pytest.approx(-6e38, rel=1e-6)
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=1, reward="dense", n_glimpses=1)
    envs.reset(seed=0)
    _, rewards, *_ = envs.step(action[None])
    assert np.isfinite(rewards).all()


def test_torch_action_that_requires_grad() -> None:
    """The single env raised RuntimeError from NumPy; the manual promises TypeError."""
    env = gym.make("GlimpseMNIST-v0")
    env.reset(seed=0)
    action = torch.zeros(12, requires_grad=True)
    with pytest.raises(TypeError, match="detach"):
        env.step(action)
    obs, *_ = env.step(action.detach())  # a plain CPU tensor is fine
    assert isinstance(obs["glimpse"], np.ndarray)


def test_torch_backend_observations_never_carry_the_callers_graph() -> None:
    envs = gym.make_vec(
        "GlimpseMNIST-v0", num_envs=2, backend="torch", reward="dense", n_glimpses=2
    )
    envs.reset(seed=0)
    actions = torch.zeros(2, 12, requires_grad=True)
    obs, rewards, *_ = envs.step(actions * 1.0)
    assert not obs["location"].requires_grad and not obs["glimpse"].requires_grad
    assert not rewards.requires_grad


@pytest.mark.parametrize(
    "device, match", [("nonsense", "torch device"), ("cuda:0", "CUDA"), (3.5, "torch device")]
)
def test_bad_torch_devices(device: Any, match: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI's machine
    with pytest.raises(ValueError, match=match):
        gym.make_vec("GlimpseMNIST-v0", num_envs=2, backend="torch", device=device)
