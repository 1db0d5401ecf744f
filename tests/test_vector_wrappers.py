"""Gymnasium's own vector wrappers on ``gym.make_vec`` (the native vector env).

Each wrapper that applies to a Dict observation (or to any observation: actions, rewards,
statistics, infos) is built on the env, run through two episodes and checked for what it
promises. Before ``NEXT_STEP`` became the default the observation wrappers refused the env.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers import vector as vw

pytestmark = pytest.mark.usefixtures("glimpse_data")

N, T = 3, 3
G = 8  # GlimpseMNIST-v0: one 8x8 scale


def _env(**kwargs: Any) -> VectorEnv:
    return gym.make_vec("GlimpseMNIST-v0", num_envs=N, n_glimpses=T, **kwargs)


def _actions(envs: VectorEnv, rng: np.random.Generator) -> Any:
    return rng.uniform(-1, 1, size=(N, 12)).astype(np.float32)


def _run(envs: VectorEnv, episodes: int = 2, actions: Callable | None = None) -> list[tuple]:
    """Reset, then step through ``episodes`` episodes (and the NEXT_STEP reset steps)."""
    rng = np.random.default_rng(0)
    out = [envs.reset(seed=0)]
    for _ in range(episodes * (T + 1)):
        out.append(envs.step((actions or _actions)(envs, rng)))
    return out


def _check_obs(envs: VectorEnv, results: list[tuple], check: Callable[[Any], None]) -> None:
    for result in results:
        assert envs.observation_space.contains(result[0]), result[0]
        check(result[0])


def test_flatten_observation() -> None:
    envs = vw.FlattenObservation(_env())
    assert envs.single_observation_space.shape == (G * G + 2,)

    def check(obs: np.ndarray) -> None:
        assert obs.shape == (N, G * G + 2) and obs.dtype == np.float32

    _check_obs(envs, _run(envs), check)


def test_filter_observation() -> None:
    envs = vw.FilterObservation(_env(), filter_keys=["glimpse"])
    _check_obs(envs, _run(envs), lambda obs: set(obs) == {"glimpse"} or pytest.fail(str(obs)))


def test_normalize_observation() -> None:
    envs = vw.NormalizeObservation(vw.FlattenObservation(_env()))
    results = _run(envs, episodes=4)
    assert envs.obs_rms.count > N * 4 * T  # statistics were updated every step
    last = np.concatenate([r[0] for r in results[-T:]])
    assert np.isfinite(last).all() and abs(last.mean()) < 1.0


def test_dtype_observation() -> None:
    flat = vw.FlattenObservation(_env())
    envs = vw.DtypeObservation(flat, np.float64)
    for result in _run(envs):
        assert result[0].dtype == np.float64 and result[0].shape == (N, G * G + 2)


def test_transform_observation() -> None:
    base = _env()
    space = gym.spaces.Dict({"glimpse": base.single_observation_space["glimpse"]})
    envs = vw.TransformObservation(
        base,
        lambda obs: {"glimpse": obs["glimpse"]},
        observation_space=gym.vector.utils.batch_space(space, N),
        single_observation_space=space,
    )
    _check_obs(envs, _run(envs), lambda obs: obs["glimpse"].shape == (N, 1, G, G) or pytest.fail())


def test_record_episode_statistics_counts_whole_episodes() -> None:
    envs = vw.RecordEpisodeStatistics(_env())
    ends = [r for r in _run(envs) if len(r) == 5 and "episode" in r[4]]
    assert len(ends) == 2
    for *_, info in ends:
        np.testing.assert_array_equal(info["episode"]["l"], np.full(N, T))
        assert info["_episode"].all()


def test_action_and_reward_wrappers() -> None:
    clipped = vw.ClipAction(_env())
    rescaled = vw.RescaleAction(_env(), min_action=np.float32(0), max_action=np.float32(1))
    transformed = vw.TransformAction(_env(), lambda a: -a, action_space=_env().action_space)
    for envs in (clipped, rescaled, transformed):
        assert len(_run(envs)) == 2 * (T + 1) + 1
    rewards = vw.TransformReward(_env(), lambda r: 2.0 * r - 1.0)
    for result in _run(rewards)[1:]:
        assert set(np.unique(result[1])) <= {-1.0, 1.0}
    normalized = vw.NormalizeReward(_env())
    clip = vw.ClipReward(_env(), min_reward=0.0, max_reward=0.5)
    for envs in (normalized, clip):
        assert all(np.isfinite(r[1]).all() for r in _run(envs)[1:])
    assert max(r[1].max() for r in _run(clip)[1:]) <= 0.5


def test_dict_info_to_list_keeps_each_sub_envs_result() -> None:
    envs = vw.DictInfoToList(_env())
    results = _run(envs)
    ends = [r for r in results[1:] if r[2].any()]
    assert len(ends) == 2
    for *_, infos in ends:
        assert isinstance(infos, list) and len(infos) == N
        for info in infos:
            assert {"label", "prediction", "is_success"} <= set(info)


def test_numpy_to_torch() -> None:
    """(Needs ``array-api-compat``, which the ``dev`` extra installs.)"""
    envs = vw.NumpyToTorch(_env())
    obs, _ = envs.reset(seed=0)
    assert isinstance(obs["glimpse"], torch.Tensor)
    out = envs.step(torch.zeros((N, 12)))
    assert isinstance(out[1], torch.Tensor) and out[1].shape == (N,)


def test_default_mode_is_what_the_observation_wrappers_need() -> None:
    """Gymnasium (1.2.x on) refuses observation wrappers over SAME_STEP vector envs; the
    default is Gymnasium's own NEXT_STEP, declared where those wrappers look."""
    assert _env().metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
