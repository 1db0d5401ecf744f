"""Tests for :mod:`glimpse_env.vector`: the native batched vector env.

The reference is Gymnasium itself: sub-env ``i`` of ``make_vec(id).reset(seed=s)`` must be
``make(id).reset(seed=s + i)``, and whole transitions (infos included) must be those of a
``SyncVectorEnv`` of single envs, in every autoreset mode. The native env returns the same
info keys at every call (``SyncVectorEnv`` only those some sub-env set): keys the reference
lacks must be unset (mask all False), and set entries must agree.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from glimpse_env import ENV_IDS, extract_glimpses, vector
from glimpse_env.vector import GlimpseVectorEnv

pytestmark = pytest.mark.usefixtures("glimpse_data")

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]
ALL_INFO_KEYS = {"image_index", "label", "prediction", "is_success"}


# --------------------------------------------------------------------------- helpers


def actions_for(rng: np.random.Generator, n: int) -> np.ndarray:
    """Float32 actions for ``n`` sub-envs, locations partly outside [-1, 1]."""
    return rng.uniform(-1.5, 1.5, size=(n, 12)).astype(np.float32)


def to_numpy(x: Any) -> Any:
    """Recursively turn torch tensors into NumPy arrays (object arrays element-wise)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(to_numpy(v) for v in x)
    if isinstance(x, np.ndarray) and x.dtype == object:
        out = np.empty(x.shape, dtype=object)
        out[:] = [to_numpy(v) for v in x]
        return out
    return x


def assert_same(a: Any, b: Any, path: str = "", exact_dtypes: bool = True) -> None:
    """Structural equality: same dict keys, same array dtypes/shapes/values, recursively.

    With ``exact_dtypes=False`` floats are compared to float32 tolerance and only the kind
    of each dtype (bool, int, float) must agree (for torch vs. NumPy).
    """
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: {type(b)} is not a dict"
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}", exact_dtypes)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {type(b)} of {len(b)}"
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{path}[{i}]", exact_dtypes)
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object, f"{path}: not an object array"
        assert a.shape == b.shape, path
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{path}[{i}]", exact_dtypes)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{path}: {type(b)} is not an array"
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        if exact_dtypes:
            assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} != {b.dtype}"
            np.testing.assert_array_equal(a, b, err_msg=path)
        else:
            assert a.dtype.kind == b.dtype.kind, f"{path}: dtype {a.dtype} vs {b.dtype}"
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=path)
            else:
                np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_transitions_same(a: tuple, b: tuple, exact_dtypes: bool = True) -> None:
    for name, u, v in zip(("obs", "reward", "terminated", "truncated", "info"), a, b):
        assert_same(u, v, name, exact_dtypes)


def assert_info_like(native: dict[str, Any], ref: dict[str, Any], path: str = "info") -> None:
    """``native`` (every key, always) carries ``ref``'s info (``SyncVectorEnv``: only set keys).

    Every key of ``ref`` is in ``native`` with the same mask and the same set entries; every
    other key of ``native`` is unset (its mask all False).
    """
    # Gymnasium before 1.4 added "TimeLimit.truncated" (and its mask) to TimeLimit's infos:
    # a wrapper's key, not the env's.
    ref = {k: v for k, v in ref.items() if not k.lstrip("_").startswith("TimeLimit.")}
    for key in ref:
        assert key in native, f"{path}: {key} missing"
    for key, value in native.items():
        if key.startswith("_"):
            continue
        mask = native[f"_{key}"]
        if key not in ref:
            assert not np.any(mask), f"{path}/{key}: set here but not in the reference"
            continue
        assert_same(mask, ref[f"_{key}"], f"{path}/_{key}")
        if isinstance(value, dict):
            assert_info_like(value, ref[key], f"{path}/{key}")
        elif value.dtype == object:
            assert_same(value[mask], ref[key][mask], f"{path}/{key}")
        else:
            assert value.dtype == ref[key].dtype, f"{path}/{key}: {value.dtype} != {ref[key].dtype}"
            np.testing.assert_array_equal(value[mask], ref[key][mask], err_msg=f"{path}/{key}")


def assert_like_sync(native: tuple, sync: tuple) -> None:
    """A ``reset`` or ``step`` result of the native env against ``SyncVectorEnv``'s."""
    assert_same(native[:-1], sync[:-1])
    assert_info_like(native[-1], sync[-1])


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_returns_native_vector_env(env_id: str) -> None:
    envs = gym.make_vec(env_id, num_envs=3)
    assert isinstance(envs, GlimpseVectorEnv)
    assert envs.num_envs == 3
    assert type(envs).__name__ == type(single := gym.make(env_id).unwrapped).__name__.replace(
        "Env", "VectorEnv"
    )
    assert envs.env_cls is type(single)
    # Gymnasium's default autoreset mode, declared where its vector wrappers look.
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    single = gym.make(env_id)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space["glimpse"].shape == (
        3,
        *single.observation_space["glimpse"].shape,
    )
    assert envs.action_space.shape == (3, 12)
    obs, info = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    assert set(info) == ALL_INFO_KEYS | {f"_{k}" for k in ALL_INFO_KEYS}
    for mode in MODES:
        other = gym.make_vec(env_id, num_envs=2, autoreset_mode=mode)
        assert other.metadata["autoreset_mode"] is mode
    for spelling in ("SameStep", "SAME_STEP"):  # the enum's value or its name
        same = gym.make_vec(env_id, num_envs=2, autoreset_mode=spelling)
        assert same.autoreset_mode is AutoresetMode.SAME_STEP


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_envs": 0}, ValueError, "num_envs"),
        ({"num_envs": 2, "backend": "jax"}, ValueError, "backend"),
        ({"num_envs": 2, "device": "cuda"}, ValueError, "backend"),
        ({"num_envs": 2, "autoreset_mode": "Sometimes"}, ValueError, "autoreset_mode"),
        ({"num_envs": 2.5}, ValueError, "num_envs"),
        ({"num_envs": 2, "max_episode_steps": 2.5}, ValueError, "max_episode_steps"),
        ({"num_envs": 2, "max_episode_steps": "a"}, ValueError, "max_episode_steps"),
        ({"num_envs": 2, "max_episode_steps": 0}, ValueError, "max_episode_steps"),
        ({"num_envs": 2, "split": "nope"}, ValueError, "split"),
        ({"num_envs": 2, "n_glimpse": 3}, TypeError, "n_glimpse"),
        ({"num_envs": 2, "num_threads": 0}, ValueError, "num_threads"),
        ({"num_envs": 2, "num_threads": 2.0}, ValueError, "num_threads"),
        ({"num_envs": 2, "num_threads": True}, ValueError, "num_threads"),
        ({"num_envs": 2, "backend": "torch", "num_threads": 2}, ValueError, "num_threads"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        gym.make_vec("GlimpseMNIST-v0", **kwargs)


# --------------------------------------------------------------------------- seeding contract


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sub_env_i_is_single_env_seeded_s_plus_i(env_id: str) -> None:
    n, seed, episodes = 3, 123, 3
    envs = gym.make_vec(env_id, num_envs=n, autoreset_mode=AutoresetMode.SAME_STEP)
    singles = [gym.make(env_id) for _ in range(n)]
    T = singles[0].unwrapped.n_glimpses
    rng = np.random.default_rng(0)

    obs, info = envs.reset(seed=seed)
    for i, env in enumerate(singles):
        o, inf = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs["glimpse"][i], o["glimpse"])
        np.testing.assert_array_equal(obs["location"][i], o["location"])
        assert info["image_index"][i] == inf["image_index"]
    for _ in range(episodes):
        for t in range(1, T + 1):
            actions = actions_for(rng, n)
            obs, rewards, terminated, truncated, info = envs.step(actions)
            assert (terminated == (t == T)).all() and not truncated.any()
            for i, env in enumerate(singles):
                o, r, term, trunc, inf = env.step(actions[i])
                assert rewards[i] == r and terminated[i] == term and truncated[i] == trunc
                if t < T:
                    np.testing.assert_array_equal(obs["glimpse"][i], o["glimpse"])
                    np.testing.assert_array_equal(obs["location"][i], o["location"])
                    continue
                # SAME_STEP: the end of episode i is in final_obs/final_info...
                final_obs, final = info["final_obs"][i], info["final_info"]
                np.testing.assert_array_equal(final_obs["glimpse"], o["glimpse"])
                np.testing.assert_array_equal(final_obs["location"], o["location"])
                assert final["label"][i] == inf["label"]
                assert final["prediction"][i] == inf["prediction"]
                assert final["is_success"][i] == inf["is_success"]
                # ...and the observation already starts the next episode.
                o, inf = env.reset()
                np.testing.assert_array_equal(obs["glimpse"][i], o["glimpse"])
                np.testing.assert_array_equal(obs["location"][i], o["location"])
                assert info["image_index"][i] == inf["image_index"]


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST-v0"])
def test_list_of_seeds(env_id: str) -> None:
    seeds = [5, 900, 5]
    envs = gym.make_vec(env_id, num_envs=3)
    obs, info = envs.reset(seed=seeds)
    for i, s in enumerate(seeds):
        o, inf = gym.make(env_id).reset(seed=s)
        np.testing.assert_array_equal(obs["glimpse"][i], o["glimpse"])
        assert info["image_index"][i] == inf["image_index"]
    np.testing.assert_array_equal(obs["glimpse"][0], obs["glimpse"][2])
    with pytest.raises(ValueError, match="one seed per sub-env"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, -2, 3])


def test_unseeded_resets_continue_and_seeded_resets_repeat() -> None:
    envs = gym.make_vec("GlimpseTranslatedMNIST-v0", num_envs=4)
    first = envs.reset(seed=8)[1]["image_index"].copy()
    second = envs.reset()[1]["image_index"].copy()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(envs.reset(seed=8)[1]["image_index"], first)
    # Never seeded: draws its own seeds, one per sub-env.
    a = gym.make_vec("GlimpseMNIST-v0", num_envs=4).reset()[1]["image_index"]
    assert len(set(a.tolist())) > 1


def test_sequential_sub_envs_interleave() -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=3, split="test", sequential=True)
    seen = [envs.reset(seed=77)[1]["image_index"].tolist()]
    seen.append(envs.reset()[1]["image_index"].tolist())
    assert seen == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST100-v0"])
def test_many_sub_envs_glimpse_their_canvas_as_one_env_would(env_id: str) -> None:
    """A large batch (its tables built in several cache-sized chunks and, for the 100x100
    canvases, read in interleaved blocks) observes each canvas exactly as the sensor does
    for that canvas alone."""
    n = 130
    envs = gym.make_vec(env_id, num_envs=n)
    g, k = envs.task.glimpse_size, envs.task.n_scales
    rng = np.random.default_rng(4)
    obs, _ = envs.reset(seed=2)
    for _ in range(3):
        canvases = envs.canvases
        for i in range(0, n, 11):
            expected = extract_glimpses(canvases[i : i + 1], obs["location"][i : i + 1], g, k)
            np.testing.assert_array_equal(obs["glimpse"][i : i + 1], expected)
        obs = envs.step(actions_for(rng, n))[0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_layout_reports_where_each_digit_was_put(backend: str) -> None:
    """On translated canvases (a blank canvas plus one digit) every lit pixel lies in the
    28x28 window at the reported ``digit_pos``; plain MNIST has no layout."""
    envs = gym.make_vec("GlimpseTranslatedMNIST-v0", num_envs=16, backend=backend)
    with pytest.raises(ResetNeeded):
        _ = envs.unwrapped.layout
    envs.reset(seed=3)
    pos = envs.unwrapped.layout["digit_pos"]
    assert isinstance(pos, np.ndarray) and pos.shape == (16, 2)
    for canvas, (row, col) in zip(envs.unwrapped.canvases, pos, strict=True):
        window = np.zeros_like(canvas, dtype=bool)
        window[row : row + 28, col : col + 28] = True
        assert canvas[window].any() and not canvas[~window].any()
    envs.close()
    plain = gym.make_vec("GlimpseMNIST-v0", num_envs=2)
    plain.reset(seed=0)
    assert plain.unwrapped.layout == {}
    plain.close()


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST100-v0"])
def test_threads_change_nothing(
    env_id: str, mode: AutoresetMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards stepped in threads (uneven ones too) give the unthreaded env's transitions,
    canvases and states exactly."""
    monkeypatch.setattr(vector, "MIN_SHARD_PIXELS", 1)  # shard even a small batch
    n, T = 7, 3
    plain = gym.make_vec(env_id, num_envs=n, n_glimpses=T, autoreset_mode=mode)
    for threads in (2, 3):
        sharded = gym.make_vec(
            env_id, num_envs=n, n_glimpses=T, autoreset_mode=mode, num_threads=threads
        )
        assert sharded.num_threads == threads
        rng = np.random.default_rng(threads)
        assert_same(sharded.reset(seed=8), plain.reset(seed=8))
        for _ in range(3 * (T + 1)):
            actions = actions_for(rng, n)
            out = sharded.step(actions)
            assert_transitions_same(out, plain.step(actions))
            np.testing.assert_array_equal(sharded.canvases, plain.canvases)
            if mode == AutoresetMode.DISABLED and out[2].any():
                assert_same(sharded.reset(), plain.reset())
        assert_same(sharded.reset(), plain.reset())
        state = plain.get_state()
        assert_same(sharded.set_state(state), plain.set_state(state))
        sharded.close()
        assert sharded._pool is not None and sharded._pool._shutdown


@pytest.mark.parametrize(
    "env_id, num_envs, asked, expected",
    [
        ("GlimpseClutteredMNIST100-v0", 1024, 2, 2),
        ("GlimpseClutteredMNIST100-v0", 1024, 16, 9),  # 2**20 canvas pixels per thread
        ("GlimpseClutteredMNIST100-v0", 210, 4, 2),
        ("GlimpseClutteredMNIST100-v0", 209, 4, 1),
        ("GlimpseMNIST-v0", 1024, 2, 1),  # 28x28: too little work to hand over
        ("GlimpseMNIST-v0", 4096, 2, 2),
    ],
)
def test_threads_only_for_large_batches(
    env_id: str, num_envs: int, asked: int, expected: int
) -> None:
    assert gym.make_vec(env_id, num_envs=num_envs).num_threads == 1  # the default
    envs = gym.make_vec(env_id, num_envs=num_envs, num_threads=asked)
    assert envs.num_threads == expected
    envs.close()


# --------------------------------------------------------------------------- vs. SyncVectorEnv


def _sync(env_id: str, n: int, mode: AutoresetMode, **kwargs: Any) -> SyncVectorEnv:
    return SyncVectorEnv(
        [lambda: gym.make(env_id, **kwargs) for _ in range(n)], autoreset_mode=mode
    )


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_matches_sync_vector_env(env_id: str, mode: AutoresetMode) -> None:
    n, T = 3, 3
    native = gym.make_vec(env_id, num_envs=n, n_glimpses=T, autoreset_mode=mode)
    sync = _sync(env_id, n, mode, n_glimpses=T)
    rng = np.random.default_rng(1)
    assert_like_sync(native.reset(seed=31), sync.reset(seed=31))
    steps = 4 * (T + 1)  # >= 4 episodes in every mode
    for k in range(steps):
        actions = actions_for(rng, n)
        if k == steps // 2:
            actions[:, 2:] = 0.0  # ties: argmax must pick the first class on both
        out = native.step(actions)
        assert_like_sync(out, sync.step(actions))
        if mode == AutoresetMode.DISABLED and (out[2].any() or out[3].any()):
            mask = np.ones(n, dtype=bool)
            assert_like_sync(
                native.reset(options={"reset_mask": mask}),
                sync.reset(options={"reset_mask": mask.copy()}),
            )
    # An unseeded reset mid-episode moves every sub-env to its next episode.
    native.step(actions)
    sync.step(actions)
    assert_like_sync(native.reset(), sync.reset())
    for _ in range(T):
        actions = actions_for(rng, n)
        assert_like_sync(native.step(actions), sync.step(actions))


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_dense_reward_matches_sync_vector_env(mode: AutoresetMode) -> None:
    n, T = 2, 2
    native = gym.make_vec(
        "GlimpseClutteredMNIST-v0", num_envs=n, n_glimpses=T, reward="dense", autoreset_mode=mode
    )
    sync = _sync("GlimpseClutteredMNIST-v0", n, mode, n_glimpses=T, reward="dense")
    rng = np.random.default_rng(2)
    assert_like_sync(native.reset(seed=0), sync.reset(seed=0))
    for _ in range(3 * (T + 1)):
        actions = actions_for(rng, n)
        a, b = native.step(actions), sync.step(actions)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
        assert_same(a[0], b[0])
        assert_same(a[2:4], b[2:4])
        assert_info_like(a[4], b[4])
        if mode == AutoresetMode.DISABLED and a[2].any():
            assert_like_sync(native.reset(), sync.reset())


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_max_episode_steps_truncates(mode: AutoresetMode) -> None:
    n, k = 2, 3
    native = gym.make_vec("GlimpseMNIST-v0", num_envs=n, max_episode_steps=k, autoreset_mode=mode)
    sync = _sync("GlimpseMNIST-v0", n, mode, max_episode_steps=k)
    assert native.task.n_glimpses == 7 > k
    rng = np.random.default_rng(3)
    assert_like_sync(native.reset(seed=4), sync.reset(seed=4))
    ends = 0
    for _ in range(3 * (k + 1)):
        actions = actions_for(rng, n)
        a, b = native.step(actions), sync.step(actions)
        assert_like_sync(a, b)
        _, rewards, terminated, truncated, info = a
        assert not terminated.any()
        if truncated.any():
            ends += 1
            assert truncated.all() and not rewards.any()
            final = info["final_info"] if mode == AutoresetMode.SAME_STEP else info
            # Nothing was judged: no result, as for a single env under TimeLimit.
            assert not final["_is_success"].any() and not final["_label"].any()
            if mode == AutoresetMode.DISABLED:
                assert_like_sync(native.reset(), sync.reset())
    assert ends == 3 * (k + 1) // (k if mode != AutoresetMode.NEXT_STEP else k + 1)
    # max_episode_steps >= n_glimpses never truncates: the episode terminates at n_glimpses.
    long = gym.make_vec("GlimpseMNIST-v0", num_envs=n, n_glimpses=2, max_episode_steps=5)
    assert long.max_episode_steps == 5
    long.reset(seed=0)
    for t in (1, 2):
        _, _, terminated, truncated, _ = long.step(actions_for(rng, n))
        assert terminated.all() == (t == 2) and not truncated.any()
    # max_episode_steps == n_glimpses: both flags at the last step, as gym.make's TimeLimit.
    same = gym.make_vec("GlimpseMNIST-v0", num_envs=n, n_glimpses=2, max_episode_steps=2)
    single = gym.make("GlimpseMNIST-v0", n_glimpses=2, max_episode_steps=2)
    same.reset(seed=0)
    single.reset(seed=0)
    for t in (1, 2):
        actions = actions_for(rng, n)
        _, _, terminated, truncated, _ = same.step(actions)
        _, _, term1, trunc1, _ = single.step(actions[0])
        assert terminated.all() == truncated.all() == term1 == trunc1 == (t == 2)


# --------------------------------------------------------------------------- torch backend


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_torch_backend_matches_numpy(env_id: str, mode: AutoresetMode) -> None:
    n, T = 3, 2
    np_env = gym.make_vec(env_id, num_envs=n, n_glimpses=T, autoreset_mode=mode)
    t_env = gym.make_vec(
        env_id, num_envs=n, n_glimpses=T, autoreset_mode=mode, backend="torch", device="cpu"
    )
    obs, info = t_env.reset(seed=9)
    assert isinstance(obs["glimpse"], torch.Tensor) and obs["glimpse"].dtype == torch.float32
    assert isinstance(info["image_index"], torch.Tensor)
    assert_same(to_numpy((obs, info)), np_env.reset(seed=9), exact_dtypes=False)
    rng = np.random.default_rng(4)
    for _ in range(3 * (T + 1)):
        actions = actions_for(rng, n)
        out = t_env.step(torch.as_tensor(actions))
        obs, rewards, terminated, truncated, info = out
        assert isinstance(obs["location"], torch.Tensor)
        assert rewards.dtype == torch.float32
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        assert_transitions_same(to_numpy(out), np_env.step(actions), exact_dtypes=False)
        if mode == AutoresetMode.DISABLED and bool(terminated.any()):
            assert_same(to_numpy(t_env.reset()), np_env.reset(), exact_dtypes=False)


def test_torch_backend_dense_rewards_match_numpy() -> None:
    np_env = gym.make_vec("GlimpseMNIST-v0", num_envs=4, reward="dense", n_glimpses=2)
    t_env = gym.make_vec(
        "GlimpseMNIST-v0", num_envs=4, reward="dense", n_glimpses=2, backend="torch"
    )
    np_env.reset(seed=1)
    t_env.reset(seed=1)
    rng = np.random.default_rng(5)
    for _ in range(4):
        actions = actions_for(rng, 4) * 3
        r_np = np_env.step(actions)[1]
        r_t = t_env.step(torch.as_tensor(actions))[1]
        np.testing.assert_allclose(r_t.numpy(), r_np, rtol=1e-5, atol=1e-5)


def test_torch_backend_bad_actions() -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2, backend="torch", device="cpu")
    good = torch.zeros(2, 12)
    with pytest.raises(ResetNeeded):
        envs.step(good)
    envs.reset(seed=0)
    with pytest.raises(TypeError, match="torch tensor"):
        envs.step(np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError, match="device"):
        envs.step(torch.zeros(2, 12, device="meta"))
    with pytest.raises(TypeError, match="floating-point"):
        envs.step(torch.zeros(2, 12, dtype=torch.int64))
    with pytest.raises(ValueError, match="shape"):
        envs.step(torch.zeros(3, 12))
    for bad in (float("nan"), float("inf")):
        actions = good.clone()
        actions[1, 4] = bad
        with pytest.raises(ValueError, match="finite"):
            envs.step(actions)
    assert not envs._t.any()  # nothing above counted as a step
    envs.step(good.double())


def test_numpy_backend_bad_actions() -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2)
    good = np.zeros((2, 12), np.float32)
    with pytest.raises(ResetNeeded):
        envs.step(good)
    envs.reset(seed=0)
    for shape in [(12,), (3, 12), (2, 11), (1, 2, 12)]:
        with pytest.raises(ValueError, match="shape"):
            envs.step(np.zeros(shape, np.float32))
    for bad in (np.nan, -np.inf):
        actions = good.copy()
        actions[0, 0] = bad
        with pytest.raises(ValueError, match="finite"):
            envs.step(actions)
    with pytest.raises(TypeError, match="torch tensor"):
        envs.step(torch.zeros(2, 12))
    with pytest.raises(TypeError, match="floating-point"):
        envs.step(good.astype(np.int32))
    assert not envs._t.any()
    envs.step(good)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"reset_mask": np.array([False, False])}, "at least one"),
        ({"reset_mask": np.array([1, 1])}, "bool array"),
        ({"reset_mask": np.array([True, True, True])}, "bool array"),
        ({"mask": np.array([True, True])}, "only the option 'reset_mask'"),
    ],
)
def test_bad_reset_options(options: dict[str, Any], match: str) -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2)
    with pytest.raises(ValueError, match=match):
        envs.reset(seed=0, options=options)


def test_disabled_autoreset_needs_a_reset() -> None:
    """DISABLED: a step after the episodes ended raises until ``reset``; a full reset_mask
    continues the episode streams as a plain ``reset()`` does."""
    envs = gym.make_vec(
        "GlimpseMNIST-v0", num_envs=2, n_glimpses=2, autoreset_mode=AutoresetMode.DISABLED
    )
    twin = gym.make_vec("GlimpseMNIST-v0", num_envs=2, n_glimpses=2, autoreset_mode="Disabled")
    zeros = np.zeros((2, 12), np.float32)
    for env in (envs, twin):
        env.reset(seed=3)
        env.step(zeros)
        assert env.step(zeros)[2].all()
        with pytest.raises(ResetNeeded, match="DISABLED"):
            env.step(zeros)
    assert_same(envs.reset(options={"reset_mask": np.ones(2, bool)}), twin.reset())
    assert not envs.step(zeros)[2].any()


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7", True])
def test_bad_seeds(seed: Any) -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2)
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=seed)
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[0, seed])
    with pytest.raises(ValueError, match="2\\*\\*64"):
        envs.reset(seed=2**64 - 1)  # sub-env 1 would need seed 2**64


def test_failed_construction_closes_cleanly() -> None:
    """A constructor that raises leaves nothing for ``__del__`` to trip over (it printed
    ``AttributeError: ... no attribute '_pool'``); run in a fresh process to see stderr."""
    code = (
        "import gymnasium as gym, glimpse_env\n"
        "try:\n    gym.make_vec('GlimpseMNIST-v0', num_envs=2, split='nope')\n"
        "except ValueError:\n    print('raised')\n"
        "import gc; gc.collect()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "raised"
    assert "Error" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_render_returns_one_frame_per_sub_env() -> None:
    envs = gym.make_vec("GlimpseClutteredMNIST-v0", num_envs=2, render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        envs.render()
    envs.reset(seed=0)
    envs.step(np.zeros((2, 12), np.float32))
    frames = envs.render()
    assert isinstance(frames, tuple) and len(frames) == 2
    for frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (240, 480, 3)
    assert not np.array_equal(frames[0], frames[1])


_NO_WARNINGS_SNIPPET = """
import warnings
warnings.simplefilter("error")
import gymnasium as gym
import numpy as np
import torch
import glimpse_env
for backend in ("torch", "numpy"):
    envs = gym.make_vec("GlimpseClutteredMNIST-v0", num_envs=2, n_glimpses=2, backend=backend)
    envs.reset(seed=0)
    for _ in range(3):
        actions = np.zeros((2, 12), np.float32)
        envs.step(torch.as_tensor(actions) if backend == "torch" else actions)
print("clean")
"""


def test_no_warnings_in_a_fresh_process() -> None:
    """Creating and stepping either backend warns about nothing (torch warns only once per
    process, hence a fresh one)."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_WARNINGS_SNIPPET],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"
