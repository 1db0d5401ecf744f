"""Tests for :mod:`glimpse_env.sb3`: the SB3 ``VecEnv`` over the native vector env.

The reference is SB3's own ``DummyVecEnv`` over single envs: ``DummyVecEnv.seed(s)`` seeds
env ``i`` with ``s + i``, as ``GlimpseVecEnv`` does.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from glimpse_env import ENV_IDS
from glimpse_env.sb3 import GlimpseVecEnv
from glimpse_env.vector import GlimpseVectorEnv

pytestmark = pytest.mark.usefixtures("glimpse_data")


def _dummy(env_id: str, n: int, **kwargs: Any) -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])


def _assert_obs_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b) == {"glimpse", "location"}
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _assert_info_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert set(a) == set(b), f"{sorted(a)} != {sorted(b)}"
    for key in a:
        if key == "terminal_observation":
            _assert_obs_equal(a[key], b[key])
        else:
            assert a[key] == b[key] and type(a[key]) is type(b[key]), key


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_matches_dummy_vec_env(env_id: str) -> None:
    n, T, seed = 3, 3, 40
    native = GlimpseVecEnv(env_id, num_envs=n, n_glimpses=T)
    dummy = _dummy(env_id, n, n_glimpses=T)
    assert isinstance(native, VecEnv)
    assert native.observation_space == dummy.observation_space
    assert native.action_space == dummy.action_space
    assert native.seed(seed) == [seed + i for i in range(n)]
    dummy.seed(seed)
    _assert_obs_equal(native.reset(), dummy.reset())
    assert native.reset_infos == dummy.reset_infos
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(4 * T):
        actions = rng.uniform(-1.5, 1.5, size=(n, 12)).astype(np.float32)
        native.step_async(actions)
        dummy.step_async(actions)
        obs, rewards, dones, infos = native.step_wait()
        d_obs, d_rewards, d_dones, d_infos = dummy.step_wait()
        _assert_obs_equal(obs, d_obs)
        assert rewards.dtype == d_rewards.dtype and dones.dtype == d_dones.dtype
        np.testing.assert_array_equal(rewards, d_rewards)
        np.testing.assert_array_equal(dones, d_dones)
        assert len(infos) == n
        for a, b in zip(infos, d_infos):
            _assert_info_equal(a, b)
        assert native.reset_infos == dummy.reset_infos
        episodes += int(dones.all())
    assert episodes == 4


def test_matches_dummy_vec_env_with_time_limit() -> None:
    """Truncation: same dones and ``TimeLimit.truncated``; nothing is a success."""
    n, k = 2, 2
    native = GlimpseVecEnv("GlimpseTranslatedMNIST-v0", num_envs=n, seed=3, max_episode_steps=k)
    dummy = _dummy("GlimpseTranslatedMNIST-v0", n, max_episode_steps=k)
    dummy.seed(3)
    _assert_obs_equal(native.reset(), dummy.reset())
    rng = np.random.default_rng(1)
    for step in range(1, 3 * k + 1):
        actions = rng.uniform(-1, 1, size=(n, 12)).astype(np.float32)
        obs, rewards, dones, infos = native.step(actions)
        d_obs, d_rewards, d_dones, d_infos = dummy.step(actions)
        _assert_obs_equal(obs, d_obs)
        np.testing.assert_array_equal(rewards, d_rewards)
        np.testing.assert_array_equal(dones, d_dones)
        assert dones.all() == (step % k == 0)
        for a, b in zip(infos, d_infos):
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"] == bool(step % k == 0)
            if b.get("terminal_observation") is not None:
                _assert_obs_equal(a["terminal_observation"], b["terminal_observation"])
                assert a.get("is_success", False) is False


def test_seed_none_and_reset_without_seed() -> None:
    envs = GlimpseVecEnv("GlimpseMNIST-v0", num_envs=2, seed=5)
    first = envs.reset()
    again = envs.reset()  # the constructor's seed is used once
    assert not np.array_equal(first["glimpse"], again["glimpse"])
    envs.seed(5)
    _assert_obs_equal(envs.reset(), first)
    assert envs.seed(None) == [None, None]


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="SAME_STEP"):
        GlimpseVecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=2, autoreset_mode="NextStep"))
    same_step = {"autoreset_mode": "SameStep"}
    with pytest.raises(ValueError, match="numpy"):
        GlimpseVecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=2, backend="torch", **same_step))
    with pytest.raises(TypeError, match="env id"):
        GlimpseVecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=2, **same_step), split="val")
    with pytest.raises(TypeError, match="GlimpseVectorEnv"):
        GlimpseVecEnv(gym.make("GlimpseMNIST-v0"))
    with pytest.raises(TypeError, match="autoreset_mode"):
        GlimpseVecEnv("GlimpseMNIST-v0", num_envs=2, **same_step)
    # From an id, the adapter asks for the mode SB3 needs (make_vec's default is NEXT_STEP).
    assert GlimpseVecEnv("GlimpseMNIST-v0").venv.autoreset_mode.name == "SAME_STEP"
    wrapped = GlimpseVecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=3, split="test", **same_step))
    assert wrapped.num_envs == 3 and isinstance(wrapped.venv, GlimpseVectorEnv)
    assert wrapped.get_attr("split") == ["test"] * 3


def test_get_set_attr_env_method_env_is_wrapped() -> None:
    envs = GlimpseVecEnv("GlimpseClutteredMNIST-v0", num_envs=3, n_glimpses=2, seed=0)
    assert envs.get_attr("n_glimpses") == [2, 2, 2]
    assert envs.get_attr("glimpse_size", indices=[0, 2]) == [12, 12]
    assert envs.get_attr("n_scales", indices=1) == [3]
    with pytest.raises(AttributeError):
        envs.get_attr("no_such_attribute")

    # set_attr on all sub-envs changes the shared task: here the reward becomes dense.
    envs.set_attr("reward_type", "dense")
    assert envs.get_attr("reward_type") == ["dense"] * 3
    envs.reset()
    _, rewards, _, _ = envs.step(np.zeros((3, 12), np.float32))
    np.testing.assert_allclose(rewards, np.log(0.1), rtol=1e-6)  # uniform scores
    with pytest.raises(ValueError, match="subset"):
        envs.set_attr("reward_type", "sparse", indices=[0])

    keys = envs.env_method("new_keys", 7, 2)
    assert len(keys) == 3
    for k in keys:
        np.testing.assert_array_equal(k, np.array([7, 8], np.uint64))
    assert len(envs.env_method("new_keys", 1, 1, indices=[0, 2])) == 2

    assert envs.env_is_wrapped(Monitor) == [False, False, False]
    assert envs.env_is_wrapped(Monitor, indices=[1]) == [False]


def test_works_under_vec_monitor() -> None:
    envs = VecMonitor(GlimpseVecEnv("GlimpseMNIST-v0", num_envs=4, n_glimpses=2, seed=0))
    envs.reset()
    for t in range(1, 5):
        _, _, dones, infos = envs.step(np.zeros((4, 12), np.float32))
        assert dones.all() == (t % 2 == 0)
        if dones.all():
            assert all(info["episode"]["l"] == 2 for info in infos)
            assert all("is_success" in info for info in infos)


def test_ppo_learns_without_error() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = GlimpseVecEnv("GlimpseMNIST-v0", num_envs=16, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PPO(
                "MultiInputPolicy",
                env,
                n_steps=32,
                batch_size=128,
                n_epochs=2,
                seed=0,
                device="cpu",
            )
            model.learn(2048)
        assert model.num_timesteps == 2048
        # Every episode end reported is_success, which SB3 collects as the success rate.
        assert len(model.ep_success_buffer) == 100
        assert [str(w.message) for w in caught] == []
    finally:
        torch.set_num_threads(threads)


def test_adaptive_ids_match_dummy_vec_env_with_mixed_lengths() -> None:
    """Sub-envs that stop at different steps: per-env dones, terminal observations, results
    (with ``glimpses``) and reset infos as DummyVecEnv gives them."""
    n, env_id = 4, "GlimpseClutteredMNISTAdaptive-v0"
    native = GlimpseVecEnv(env_id, num_envs=n, seed=5, max_glimpses=3, glimpse_cost=0.1)
    dummy = _dummy(env_id, n, max_glimpses=3, glimpse_cost=0.1)
    dummy.seed(5)
    _assert_obs_equal(native.reset(), dummy.reset())
    rng = np.random.default_rng(2)
    mixed, lengths = 0, set()
    for _ in range(15):
        actions = rng.uniform(-1.5, 1.5, size=(n, 13)).astype(np.float32)
        actions[:, -1] = np.where(rng.random(n) < 0.4, 1.0, -1.0)
        obs, rewards, dones, infos = native.step(actions)
        d_obs, d_rewards, d_dones, d_infos = dummy.step(actions)
        _assert_obs_equal(obs, d_obs)
        np.testing.assert_allclose(rewards, d_rewards, rtol=1e-6)
        np.testing.assert_array_equal(dones, d_dones)
        for a, b in zip(infos, d_infos):
            _assert_info_equal(a, b)
        assert native.reset_infos == dummy.reset_infos
        mixed += int(dones.any() and not dones.all())
        lengths.update(info["glimpses"] for info in infos if "label" in info)
    assert mixed >= 3 and lengths == {1, 2, 3}


def test_ppo_runs_on_an_adaptive_id() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = GlimpseVecEnv("GlimpseMNISTAdaptive-v0", num_envs=8, seed=0, glimpse_cost=0.01)
        model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=64, n_epochs=1, seed=0)
        model.learn(512)
        assert model.num_timesteps == 512 and len(model.ep_success_buffer) > 0
        assert model.action_space.shape == (13,)
    finally:
        torch.set_num_threads(threads)
