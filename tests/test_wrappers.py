"""Tests for :mod:`glimpse_env.wrappers`: glimpse history and action use, single and vector.

The vector wrappers on the native vector env must give, step by step and in every
autoreset mode, what Gymnasium's ``SyncVectorEnv`` gives over single envs wrapped with the
single-env wrappers (observations, rewards, flags, infos, ``final_obs``); the single-env
wrappers are checked by hand and with Gymnasium's ``check_env``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import FlattenObservation

from glimpse_env.wrappers import (
    ACTION_USE_KEY,
    GLIMPSES_KEY,
    LOCATIONS_KEY,
    MASK_KEY,
    ActionUse,
    GlimpseHistory,
    GlimpseHistoryBuffer,
    VectorActionUse,
    VectorGlimpseHistory,
    action_use,
)

pytestmark = pytest.mark.usefixtures("glimpse_data")

ENV_ID = "GlimpseMNIST-v0"
N, T = 3, 3
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]

#: The wrapper stacks under test: (single-env wrappers, vector wrappers), innermost first.
STACKS: dict[str, tuple[list[Callable], list[Callable]]] = {
    "history": ([GlimpseHistory], [VectorGlimpseHistory]),
    "action_use": ([ActionUse], [VectorActionUse]),
    "both": ([GlimpseHistory, ActionUse], [VectorGlimpseHistory, VectorActionUse]),
}


def _wrap(env: Any, wrappers: list[Callable]) -> Any:
    for wrapper in wrappers:
        env = wrapper(env)
    return env


def _sync(stack: str, mode: AutoresetMode, limits: list[int | None] | None = None, **kw: Any):
    """``SyncVectorEnv`` over single envs wrapped with the single-env wrappers."""
    limits = limits or [None] * N

    def make(limit: int | None) -> Callable[[], gym.Env]:
        return lambda: _wrap(
            gym.make(ENV_ID, n_glimpses=T, max_episode_steps=limit, **kw), STACKS[stack][0]
        )

    return SyncVectorEnv([make(limit) for limit in limits], autoreset_mode=mode)


def _native(stack: str, mode: AutoresetMode, **kw: Any) -> VectorEnv:
    envs = gym.make_vec(ENV_ID, num_envs=N, n_glimpses=T, autoreset_mode=mode, **kw)
    return _wrap(envs, STACKS[stack][1])


def _drive(envs: VectorEnv, steps: int, seed: int = 0) -> list[tuple]:
    """Reset, then ``steps`` calls: a step, or (``DISABLED``) a masked reset of the
    sub-envs whose episodes ended. Records every call's return value."""
    rng = np.random.default_rng(seed)
    disabled = envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    out: list[tuple] = [envs.reset(seed=seed)]
    ended = np.zeros(envs.num_envs, dtype=bool)
    for _ in range(steps):
        if disabled and ended.any():
            out.append(envs.reset(options={"reset_mask": ended.copy()}))
            ended[:] = False
            continue
        width = envs.single_action_space.shape[0]
        actions = rng.uniform(-1, 1, (envs.num_envs, width)).astype(np.float32)
        if width == 13:  # an adaptive env: stop a third of the time
            actions[:, -1] = np.where(rng.random(envs.num_envs) < 1 / 3, 1.0, -1.0)
        result = envs.step(actions)
        ended = np.asarray(result[2]) | np.asarray(result[3])
        out.append(result)
    return out


def _set_entries(info: dict[str, Any]) -> dict[str, Any]:
    """A vector info as ``{key: {i: value}}`` for the sub-envs whose ``_key`` mask is set
    (the native env also returns unset keys, all masked out; ``SyncVectorEnv`` does not)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            out[key] = _set_entries(value)
        else:
            mask = np.asarray(info[f"_{key}"], dtype=bool)
            if mask.any():
                out[key] = {int(i): value[i] for i in np.flatnonzero(mask)}
    return out


def _assert_same_results(a: list[tuple], b: list[tuple]) -> None:
    """Equal vector-env results, infos compared on their set entries."""
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        _assert_same(x[:-1], y[:-1], f"call {k}")
        _assert_same(_set_entries(x[-1]), _set_entries(y[-1]), f"call {k} info")


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    """Deep equality of nested dicts / tuples / arrays (dtype and shape included)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            _assert_same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.shape == a.shape, path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        b = np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), (path, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, np.generic):
        assert type(a) is type(b) and a == b, (path, a, b)
    else:
        assert a == b, (path, a, b)


# ---------------------------------------------------------------------- single vs vector
@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
@pytest.mark.parametrize("stack", list(STACKS))
def test_vector_wrappers_equal_sync_vector_env_of_single_wrappers(
    stack: str, mode: AutoresetMode
) -> None:
    native, sync = _native(stack, mode), _sync(stack, mode)
    assert native.single_observation_space == sync.single_observation_space
    assert native.observation_space == sync.observation_space
    assert native.observation_space == batch_space(native.single_observation_space, N)
    results = _drive(native, 3 * (T + 1))
    _assert_same_results(results, _drive(sync, 3 * (T + 1)))
    for result in results:
        assert native.observation_space.contains(result[0])
    if mode == AutoresetMode.SAME_STEP:
        final = results[T][4]["final_obs"]
        assert all(native.single_observation_space.contains(f) for f in final)
    native.close()
    sync.close()


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_vector_wrappers_over_sub_envs_that_end_at_different_steps(mode: AutoresetMode) -> None:
    """Sub-envs truncated after 1 and 2 steps beside a full one: every history and step
    count is started again on its own (masked resets under ``DISABLED``)."""
    limits = [1, None, 2]
    inner = gym.vector.SyncVectorEnv(
        [
            lambda limit=limit: gym.make(ENV_ID, n_glimpses=T, max_episode_steps=limit)
            for limit in limits
        ],
        autoreset_mode=mode,
    )
    native = _wrap(inner, STACKS["both"][1])
    sync = _sync("both", mode, limits)
    _assert_same_results(_drive(native, 12), _drive(sync, 12))


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_vector_wrappers_over_an_adaptive_env(mode: AutoresetMode) -> None:
    """Sub-envs that stop on their own (``stop="action"``): the native env with the vector
    wrappers equals ``SyncVectorEnv`` of single envs with the single-env wrappers; the
    history has ``max_glimpses`` slots and ``action_use`` marks the scores at every step."""
    env_id, kw = "GlimpseMNISTAdaptive-v0", {"max_glimpses": T}
    native = _wrap(gym.make_vec(env_id, num_envs=N, autoreset_mode=mode, **kw), STACKS["both"][1])
    sync = SyncVectorEnv(
        [lambda: _wrap(gym.make(env_id, **kw), STACKS["both"][0]) for _ in range(N)],
        autoreset_mode=mode,
    )
    results = _drive(native, 15, seed=3)
    _assert_same_results(results, _drive(sync, 15, seed=3))
    assert native.class_every_step and results[0][0][MASK_KEY].shape == (N, T)
    assert (results[0][0][ACTION_USE_KEY] == [1.0, 1.0]).all()


def test_next_step_history_by_hand() -> None:
    envs = _native("history", AutoresetMode.NEXT_STEP)
    raw = gym.make_vec(ENV_ID, num_envs=N, n_glimpses=T)
    rng = np.random.default_rng(0)
    obs, _ = envs.reset(seed=1)
    raw_obs, _ = raw.reset(seed=1)
    seen = [raw_obs]
    for step in range(2 * (T + 1)):
        t = len(seen)  # glimpses in the current episode (T + 1 after the last step)
        filled = min(t, T)
        assert obs[MASK_KEY].tolist() == [[1.0] * filled + [0.0] * (T - filled)] * N
        for slot in range(filled):
            np.testing.assert_array_equal(obs[GLIMPSES_KEY][:, slot], seen[slot]["glimpse"])
            np.testing.assert_array_equal(obs[LOCATIONS_KEY][:, slot], seen[slot]["location"])
        assert (obs[GLIMPSES_KEY][:, filled:] == 0).all()
        actions = rng.uniform(-1, 1, (N, 12)).astype(np.float32)
        obs, rewards, terminated, *_ = envs.step(actions)
        raw_obs, raw_rewards, raw_terminated, *_ = raw.step(actions)
        np.testing.assert_array_equal(rewards, raw_rewards)
        # The step after the last one is NEXT_STEP's reset: a new episode.
        seen = [raw_obs] if step % (T + 1) == T else [*seen, raw_obs]
        assert terminated.all() == raw_terminated.all() == (step % (T + 1) == T - 1)


# ---------------------------------------------------------------------- single env by hand
def test_single_history_fills_slots_and_keeps_the_last_glimpse_when_it_fits() -> None:
    raw = gym.make(ENV_ID, n_glimpses=T)
    env = GlimpseHistory(gym.make(ENV_ID, n_glimpses=T), n_slots=T + 1)
    assert env.n_slots == T + 1
    assert env.observation_space[GLIMPSES_KEY].shape == (T + 1, 1, 8, 8)
    obs, info = env.reset(seed=3)
    raw_obs, raw_info = raw.reset(seed=3)
    assert info == raw_info
    glimpses = [raw_obs["glimpse"]]
    action = np.zeros(12, np.float32)
    for t in range(T):
        assert obs[MASK_KEY].tolist() == [1.0] * (t + 1) + [0.0] * (T - t)
        np.testing.assert_array_equal(obs[GLIMPSES_KEY][: t + 1], np.stack(glimpses))
        obs, reward, terminated, _, info = env.step(action)
        raw_obs, raw_reward, raw_terminated, _, raw_info = raw.step(action)
        assert (reward, terminated, info) == (raw_reward, raw_terminated, raw_info)
        glimpses.append(raw_obs["glimpse"])
    assert terminated and obs[MASK_KEY].tolist() == [1.0] * (T + 1)  # the last one fits
    np.testing.assert_array_equal(obs[GLIMPSES_KEY], np.stack(glimpses))
    obs, _ = env.reset()
    assert obs[MASK_KEY].tolist() == [1.0] + [0.0] * T  # a new history


def test_single_history_without_room_for_the_last_glimpse() -> None:
    env = GlimpseHistory(gym.make(ENV_ID, n_glimpses=T))
    assert env.n_slots == T  # the env's n_glimpses
    obs, _ = env.reset(seed=0)
    for _ in range(T):
        before = obs
        obs, _, terminated, _, _ = env.step(np.zeros(12, np.float32))
    assert terminated
    _assert_same(obs, before)  # full: returned as it was
    short = GlimpseHistory(gym.make(ENV_ID, n_glimpses=T), n_slots=T - 1)
    short.reset(seed=0)
    short.step(np.zeros(12, np.float32))
    with pytest.raises(ValueError, match="more than 2 glimpses"):
        short.step(np.zeros(12, np.float32))


@pytest.mark.parametrize("reward", ["sparse", "dense"])
def test_single_action_use_by_hand(reward: str) -> None:
    env = ActionUse(gym.make(ENV_ID, n_glimpses=T, reward=reward))
    assert (env.horizon, env.class_every_step) == (T, reward == "dense")
    assert env.observation_space[ACTION_USE_KEY] == gym.spaces.Box(0, 1, (2,), np.float32)
    obs, _ = env.reset(seed=0)
    for step in range(T + 1):  # the observation after the last step too
        read = [step < T - 1, step >= T - 1 or reward == "dense"]
        assert obs[ACTION_USE_KEY].dtype == np.float32
        assert obs[ACTION_USE_KEY].tolist() == [float(r) for r in read]
        assert set(obs) == {"glimpse", "location", ACTION_USE_KEY}
        if step < T:
            obs, *_ = env.step(np.zeros(12, np.float32))
    obs, _ = env.reset()
    assert obs[ACTION_USE_KEY].tolist() == [1.0, float(reward == "dense")]


def test_action_use_function() -> None:
    steps = np.array([0, 5, 6, 7])
    np.testing.assert_array_equal(action_use(steps, 7, False), [[1, 0], [1, 0], [0, 1], [0, 1]])
    np.testing.assert_array_equal(action_use(steps, 7, True), [[1, 1], [1, 1], [0, 1], [0, 1]])
    assert action_use(steps, 7, False).dtype == np.float32


@pytest.mark.parametrize("stack", list(STACKS))
def test_check_env_on_the_wrapped_single_env(stack: str) -> None:
    env = _wrap(gym.make(ENV_ID), STACKS[stack][0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    messages = [str(w.message) for w in caught]
    # check_env always says it was handed a wrapped env; nothing else may be reported.
    assert [m for m in messages if "is different from the unwrapped version" not in m] == []


# ---------------------------------------------------------------------- errors
def test_errors() -> None:
    with pytest.raises(ValueError, match="Dict"):
        GlimpseHistory(FlattenObservation(gym.make(ENV_ID)))
    with pytest.raises(ValueError, match=ACTION_USE_KEY):
        ActionUse(ActionUse(gym.make(ENV_ID)))
    with pytest.raises(ValueError, match=ACTION_USE_KEY):
        VectorActionUse(VectorActionUse(gym.make_vec(ENV_ID, num_envs=2)))
    with pytest.raises(ValueError, match="horizon"):
        ActionUse(gym.make(ENV_ID), horizon=0)
    with pytest.raises(ValueError, match="n_slots"):
        VectorGlimpseHistory(gym.make_vec(ENV_ID, num_envs=2), n_slots=0)
    torch_envs = VectorGlimpseHistory(gym.make_vec(ENV_ID, num_envs=2, backend="torch"))
    with pytest.raises(TypeError, match="NumPy"):
        torch_envs.reset(seed=0)


class _NoSettings(gym.Env):
    """A Dict env without ``n_glimpses`` / ``reward_type``."""

    observation_space = gym.spaces.Dict(
        glimpse=gym.spaces.Box(0, 1, (1, 2, 2), np.float32),
        location=gym.spaces.Box(-1, 1, (2,), np.float32),
    )
    action_space = gym.spaces.Box(-1, 1, (3,), np.float32)


def test_envs_without_settings_need_them_passed() -> None:
    with pytest.raises(ValueError, match="n_glimpses"):
        GlimpseHistory(_NoSettings())
    with pytest.raises(ValueError, match="reward_type"):
        ActionUse(_NoSettings(), horizon=2)
    assert GlimpseHistory(_NoSettings(), n_slots=2).n_slots == 2
    assert ActionUse(_NoSettings(), horizon=2, class_every_step=False).horizon == 2
    sync = SyncVectorEnv([_NoSettings, _NoSettings])
    with pytest.raises(ValueError, match="n_glimpses"):
        VectorGlimpseHistory(sync)
    assert VectorGlimpseHistory(sync, n_slots=4).single_observation_space[MASK_KEY].shape == (4,)


def test_history_buffer_push_and_clear() -> None:
    buffer = GlimpseHistoryBuffer(2, 2, (1, 2, 2))
    obs = {"glimpse": np.ones((2, 1, 2, 2)), "location": np.full((2, 2), 0.5)}
    buffer.push(obs)
    buffer.push(obs)
    assert buffer.count.tolist() == [2, 2]
    with pytest.raises(ValueError, match="more than 2"):
        buffer.push(obs)
    buffer.push(obs, ending=np.array([True, True]))  # a full episode's last: left out
    buffer.clear(np.array([True, False]))
    assert buffer.count.tolist() == [0, 2] and buffer.mask.tolist() == [[0, 0], [1, 1]]
    assert (buffer.glimpses[0] == 0).all() and (buffer.glimpses[1] == 1).all()
