"""Gymnasium wrappers for memoryless agents: the episode's glimpses, and which action parts count.

Two observation wrappers, each for a single env (``gymnasium.Wrapper``) and for a vector
env (``gymnasium.vector.VectorWrapper``), usable with any library:

* :class:`GlimpseHistory` / :class:`VectorGlimpseHistory`: the observation becomes every
  glimpse (and location) seen so far in the episode, in ``T`` fixed slots (glimpse ``t``
  in slot ``t - 1``), zero-padded, with a mask of the filled slots
  (:func:`history_space`). A memoryless policy then sees the whole episode.
* :class:`ActionUse` / :class:`VectorActionUse`: the observation gains ``"action_use"``,
  float32 ``(2,)``: whether the env will read the location of the next action (every step
  but the last) and its class scores (the last step under the sparse reward, every step
  under the dense one). A policy gradient can then leave out of ``log pi`` the parts of an
  action that cannot change the reward, as the RAM agent does.

::

    import gymnasium as gym
    from glimpse_env.wrappers import ActionUse, GlimpseHistory, VectorGlimpseHistory

    env = ActionUse(GlimpseHistory(gym.make("GlimpseMNIST-v0")))
    envs = VectorGlimpseHistory(gym.make_vec("GlimpseMNIST-v0", num_envs=64))

The vector wrappers follow the wrapped env's autoreset mode (``NEXT_STEP``, ``SAME_STEP``
or ``DISABLED``) and give, step by step, the transitions of Gymnasium's ``SyncVectorEnv``
over single envs wrapped with the single-env wrapper (tested). The observation of a
finished episode (after its last step; ``final_obs`` under ``SAME_STEP``) still gets that
last glimpse when a slot is left for it, and ``action_use`` as after the last step.

The bookkeeping is written once, batched, in the episode trackers
(:class:`GlimpseHistoryBuffer`, :class:`ActionUseCounter`); the wrappers, the SB3
``VecEnv`` wrappers of :mod:`agents.sb3_policy` and the SB3 evaluation adapter all drive
them. NumPy observations only (wrap a ``backend="torch"`` env's output yourself, or put
Gymnasium's ``NumpyToTorch`` outside these wrappers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from glimpse_env.actions import LOCATION_DIM

__all__ = [
    "ACTION_USE_KEY",
    "GLIMPSES_KEY",
    "LOCATIONS_KEY",
    "MASK_KEY",
    "ActionUse",
    "ActionUseCounter",
    "EpisodeTracker",
    "GlimpseHistory",
    "GlimpseHistoryBuffer",
    "VectorActionUse",
    "VectorGlimpseHistory",
    "action_use",
    "action_use_space",
    "history_space",
]

Obs = dict[str, np.ndarray]

#: Keys of a history observation (see :func:`history_space`).
GLIMPSES_KEY = "glimpses"
LOCATIONS_KEY = "locations"
MASK_KEY = "mask"
#: Key of the observation entry :class:`ActionUse` adds.
ACTION_USE_KEY = "action_use"


# ---------------------------------------------------------------------- spaces
def history_space(single: spaces.Dict, n_slots: int) -> spaces.Dict:
    """Observation space of a glimpse history with ``n_slots`` slots.

    Args:
        single: the env's ``Dict(glimpse=Box((k, g, g)), location=Box((2,)))``.
        n_slots: ``T``.

    Returns:
        ``Dict(glimpses=Box(0, 1, (T, k, g, g)), locations=Box(-1, 1, (T, 2)),
        mask=Box(0, 1, (T,)))``, all float32.

    Raises:
        ValueError: if ``single`` is not a ``Dict`` of exactly ``glimpse`` and ``location``.
    """
    if not isinstance(single, spaces.Dict) or set(single.spaces) != {"glimpse", "location"}:
        raise ValueError(
            f"a glimpse history needs Dict(glimpse, location) observations, got {single}"
        )
    glimpse, location = single["glimpse"], single["location"]
    return spaces.Dict(
        {
            GLIMPSES_KEY: spaces.Box(0.0, 1.0, (n_slots, *glimpse.shape), np.float32),
            LOCATIONS_KEY: spaces.Box(-1.0, 1.0, (n_slots, *location.shape), np.float32),
            MASK_KEY: spaces.Box(0.0, 1.0, (n_slots,), np.float32),
        }
    )


def action_use_space(single: spaces.Space) -> spaces.Dict:
    """``single`` (a ``Dict``) with ``action_use = Box(0, 1, (2,), float32)`` added.

    Raises:
        ValueError: if ``single`` is not a ``Dict`` or already has ``action_use``.
    """
    if not isinstance(single, spaces.Dict) or ACTION_USE_KEY in single.spaces:
        raise ValueError(
            f"ActionUse needs Dict observations without {ACTION_USE_KEY!r}, got {single}"
        )
    return spaces.Dict({**single.spaces, ACTION_USE_KEY: spaces.Box(0.0, 1.0, (2,), np.float32)})


def action_use(steps: np.ndarray, horizon: int, class_every_step: bool) -> np.ndarray:
    """Which parts of the next action the env reads, for observations at ``steps``.

    Args:
        steps: int ``(N,)``: how many steps each episode has taken (0 for its first
            observation).
        horizon: ``T``, steps per episode (the env's ``n_glimpses``).
        class_every_step: True under the dense reward (every step's scores are rewarded);
            False under the sparse one (only the last step's scores are judged).

    Returns:
        float32 ``(N, 2)``: column 0 is 1 where the location is read (the step is not the
        episode's last), column 1 is 1 where the class scores are (the last step, or every
        step when ``class_every_step``).
    """
    last = np.asarray(steps) >= horizon - 1
    return np.stack([~last, last | bool(class_every_step)], axis=1).astype(np.float32)


# ---------------------------------------------------------------------- episode trackers
class EpisodeTracker(ABC):
    """What a wrapper remembers about ``num_envs`` running episodes, batched (NumPy).

    A tracker is told when episodes start (:meth:`start`) and step (:meth:`advance`), and
    turns a batched observation into the wrapped one (:meth:`observation`). The drivers
    :meth:`reset`, :meth:`step` and :meth:`step_same_step` apply the autoreset modes, so
    every wrapper (single, vector, SB3) updates its tracker the same way.

    In every method ``envs`` selects the episodes (bool ``(num_envs,)``; ``None``: all) and
    ``obs`` holds one row per selected episode.
    """

    num_envs: int

    @abstractmethod
    def start(self, obs: Obs, envs: np.ndarray | None = None) -> None:
        """Episodes ``envs`` start; ``obs`` is their first observation."""

    @abstractmethod
    def advance(
        self, obs: Obs, envs: np.ndarray | None = None, ending: np.ndarray | None = None
    ) -> None:
        """Episodes ``envs`` took a step that returned ``obs``; ``ending`` (bool, one per
        row; ``None``: none) marks the rows whose episode ended at that step."""

    @abstractmethod
    def observation(self, obs: Obs, envs: np.ndarray | None = None) -> Obs:
        """The wrapped observation of episodes ``envs`` (new arrays) whose raw one is ``obs``."""

    # ------------------------------------------------------------------ drivers
    def reset(self, obs: Obs, envs: np.ndarray | None = None) -> Obs:
        """Episodes ``envs`` start with ``obs`` (rows of all ``num_envs`` episodes); returns
        the wrapped observation of all of them (others keep their memory)."""
        self.start(_rows(obs, envs), envs)
        return self.observation(obs)

    def step(
        self, obs: Obs, started: np.ndarray | None = None, ending: np.ndarray | None = None
    ) -> Obs:
        """One step of all episodes, as a single env or a ``NEXT_STEP`` / ``DISABLED``
        vector env gives it.

        Args:
            obs: the step's observation (``num_envs`` rows).
            started: bool ``(num_envs,)``: episodes whose row is the first observation of a
                new episode (``NEXT_STEP``'s reset step); ``None``: none.
            ending: bool ``(num_envs,)``: episodes that ended at this step (their row is
                the last observation); ``None``: none.

        Returns:
            The wrapped observation.
        """
        if started is None or not started.any():
            self.advance(obs, None, ending)
        else:
            going = ~started
            if going.any():
                self.advance(_rows(obs, going), going, None if ending is None else ending[going])
            self.start(_rows(obs, started), started)
        return self.observation(obs)

    def step_same_step(
        self, obs: Obs, ended: np.ndarray, final_obs: Mapping[int, Obs | None]
    ) -> tuple[Obs, dict[int, Obs]]:
        """One step of all episodes with ``SAME_STEP`` autoreset (Gymnasium's, SB3's).

        Args:
            obs: the step's observation (``num_envs`` rows; the rows of ended episodes
                are already the first observation of the next ones).
            ended: bool ``(num_envs,)``: episodes that ended at this step.
            final_obs: the last observation of each ended episode ``i``, single (unbatched)
                ``final_obs[i]``; a missing or ``None`` entry: not reported.

        Returns:
            ``(wrapped obs, {i: wrapped last observation of ended episode i})``.
        """
        ended = np.asarray(ended, dtype=bool)
        if not ended.any():
            self.advance(obs)
            return self.observation(obs), {}
        going = ~ended
        if going.any():
            self.advance(_rows(obs, going), going)
        rows = np.flatnonzero(ended)
        finals = [final_obs.get(int(i)) for i in rows]
        # Rows without a reported last observation get any stand-in (never shown).
        last = {
            key: np.stack(
                [np.asarray(value[i] if f is None else f[key]) for i, f in zip(rows, finals)]
            )
            for key, value in obs.items()
        }
        self.advance(last, ended, np.ones(len(rows), dtype=bool))
        wrapped_last = self.observation(last, ended)
        reported = {
            int(i): {key: value[j] for key, value in wrapped_last.items()}
            for j, (i, f) in enumerate(zip(rows, finals))
            if f is not None
        }
        self.start(_rows(obs, ended), ended)
        return self.observation(obs), reported


def _rows(obs: Obs, envs: np.ndarray | None) -> Obs:
    """The rows ``envs`` (bool mask; ``None``: all, no copy) of a batched observation."""
    if envs is None:
        return obs
    return {key: value[envs] for key, value in obs.items()}


def _index(envs: np.ndarray | None) -> slice | np.ndarray:
    return slice(None) if envs is None else np.flatnonzero(np.asarray(envs, dtype=bool))


class GlimpseHistoryBuffer(EpisodeTracker):
    """The glimpses of ``num_envs`` running episodes, one slot per glimpse.

    Slot ``t`` (0-based) of episode ``i`` holds the ``t+1``-th observation of its episode;
    later slots are zero and ``mask[i, t]`` is 1 exactly for the filled slots.

    Args:
        num_envs: episodes tracked.
        n_slots: slots ``T`` (the number of glimpses per episode).
        glimpse_shape: shape ``(k, g, g)`` of one glimpse.
        location_dim: size of a location.
    """

    def __init__(
        self,
        num_envs: int,
        n_slots: int,
        glimpse_shape: tuple[int, ...],
        location_dim: int = LOCATION_DIM,
    ) -> None:
        if int(n_slots) < 1:
            raise ValueError(f"n_slots must be >= 1, got {n_slots}")
        self.num_envs, self.n_slots = int(num_envs), int(n_slots)
        self.glimpses = np.zeros((num_envs, n_slots, *glimpse_shape), np.float32)
        self.locations = np.zeros((num_envs, n_slots, location_dim), np.float32)
        self.mask = np.zeros((num_envs, n_slots), np.float32)
        #: Filled slots per episode (= glimpses seen in it).
        self.count = np.zeros(num_envs, np.int64)

    def clear(self, envs: np.ndarray | None = None) -> None:
        """Empty the history of episodes ``envs`` (bool; all when ``None``)."""
        sel = _index(envs)
        self.glimpses[sel] = 0.0
        self.locations[sel] = 0.0
        self.mask[sel] = 0.0
        self.count[sel] = 0

    def push(
        self, obs: Obs, envs: np.ndarray | None = None, ending: np.ndarray | None = None
    ) -> None:
        """Append ``{"glimpse": (n, k, g, g), "location": (n, 2)}`` to episodes ``envs``.

        The last observation of an episode (``ending``) whose history is full is left
        out: it is never acted on.

        Raises:
            ValueError: if an episode that goes on already has ``n_slots`` glimpses.
        """
        rows = np.arange(self.num_envs) if envs is None else _index(envs)
        glimpses = np.asarray(obs["glimpse"], np.float32)
        locations = np.asarray(obs["location"], np.float32)
        full = self.count[rows] >= self.n_slots
        if full.any():
            if ending is None or (full & ~np.asarray(ending, dtype=bool)).any():
                raise ValueError(
                    f"an episode has more than {self.n_slots} glimpses: the history has "
                    f"{self.n_slots} slots (clear it at episode ends, or use more slots)"
                )
            keep = ~full
            rows, glimpses, locations = rows[keep], glimpses[keep], locations[keep]
        slots = self.count[rows]
        self.glimpses[rows, slots] = glimpses
        self.locations[rows, slots] = locations
        self.mask[rows, slots] = 1.0
        self.count[rows] += 1

    def start(self, obs: Obs, envs: np.ndarray | None = None) -> None:
        self.clear(envs)
        self.push(obs, envs)

    def advance(
        self, obs: Obs, envs: np.ndarray | None = None, ending: np.ndarray | None = None
    ) -> None:
        self.push(obs, envs, ending)

    def observation(self, obs: Obs | None = None, envs: np.ndarray | None = None) -> Obs:
        """The history of episodes ``envs`` (copies; ``obs`` is not needed)."""
        sel = _index(envs)
        return {
            GLIMPSES_KEY: self.glimpses[sel].copy(),
            LOCATIONS_KEY: self.locations[sel].copy(),
            MASK_KEY: self.mask[sel].copy(),
        }


class ActionUseCounter(EpisodeTracker):
    """Steps taken by ``num_envs`` running episodes, and the ``action_use`` they give.

    Args:
        num_envs: episodes tracked.
        horizon: steps per episode (the env's ``n_glimpses``).
        class_every_step: whether the class scores are read at every step (dense reward).
    """

    def __init__(self, num_envs: int, horizon: int, class_every_step: bool) -> None:
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.num_envs = int(num_envs)
        self.horizon, self.class_every_step = int(horizon), bool(class_every_step)
        #: Steps taken in each episode so far.
        self.steps = np.zeros(num_envs, np.int64)

    def start(self, obs: Obs, envs: np.ndarray | None = None) -> None:
        self.steps[_index(envs)] = 0

    def advance(
        self, obs: Obs, envs: np.ndarray | None = None, ending: np.ndarray | None = None
    ) -> None:
        self.steps[_index(envs)] += 1

    def observation(self, obs: Obs, envs: np.ndarray | None = None) -> Obs:
        """``obs`` with ``action_use`` of episodes ``envs`` added (float32 ``(n, 2)``)."""
        use = action_use(self.steps[_index(envs)], self.horizon, self.class_every_step)
        return {**obs, ACTION_USE_KEY: use}


# ---------------------------------------------------------------------- settings of an env
def _scores_every_step(reward_type: str, stop: str) -> bool:
    """Whether every step's class scores can count: the dense reward rewards them all, and
    with the stop action any step may be the episode's last."""
    return reward_type == "dense" or stop == "action"


def _single_setting(env: gym.Env, name: str, wrapper: str) -> Any:
    try:
        return env.get_wrapper_attr(name)
    except AttributeError as exc:
        raise ValueError(f"{wrapper}: the env has no {name!r}; pass it explicitly") from exc


def _vector_setting(env: VectorEnv, name: str, wrapper: str) -> Any:
    """``name`` of the envs behind a vector env: the native env's task, or sub-env 0."""
    base = env.unwrapped
    task = getattr(base, "task", None)
    if task is not None and hasattr(task, name):
        return getattr(task, name)
    get_attr = getattr(base, "get_attr", None)
    if get_attr is not None:
        try:
            return get_attr(name)[0]
        except AttributeError:
            pass
    raise ValueError(f"{wrapper}: the envs have no {name!r}; pass it explicitly")


def _autoreset_mode(env: VectorEnv) -> AutoresetMode:
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, AutoresetMode):
        return mode
    try:
        return AutoresetMode(mode)
    except ValueError:
        return AutoresetMode[mode]


def _numpy_obs(obs: Any, wrapper: str) -> Obs:
    if not isinstance(obs, Mapping) or not all(isinstance(v, np.ndarray) for v in obs.values()):
        raise TypeError(
            f"{wrapper} needs Dict observations of NumPy arrays (backend='numpy'), got "
            f"{type(obs).__name__}; convert to torch outside it (gymnasium NumpyToTorch)"
        )
    return dict(obs)


# ---------------------------------------------------------------------- base wrappers
class _TrackedWrapper(gym.Wrapper[Obs, Any, Obs, Any]):
    """A single env whose observations go through an :class:`EpisodeTracker` of one."""

    tracker: EpisodeTracker

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return _single(self.tracker.reset(_batch(obs))), info

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        ending = np.array([bool(terminated or truncated)])
        return (
            _single(self.tracker.step(_batch(obs), ending=ending)),
            reward,
            terminated,
            truncated,
            info,
        )


def _batch(obs: Mapping[str, Any]) -> Obs:
    return {key: np.asarray(value)[None] for key, value in obs.items()}


def _single(obs: Obs) -> Obs:
    return {key: value[0] for key, value in obs.items()}


class _TrackedVectorWrapper(VectorWrapper):
    """A vector env whose observations go through an :class:`EpisodeTracker`, following
    the env's autoreset mode."""

    tracker: EpisodeTracker

    def __init__(self, env: VectorEnv, single_space: spaces.Space) -> None:
        super().__init__(env)
        self.autoreset_mode = _autoreset_mode(env)
        self.single_observation_space = single_space
        self.observation_space = batch_space(single_space, env.num_envs)
        #: Episodes that ended at the last step (``NEXT_STEP`` resets them at the next).
        self._ended = np.zeros(env.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        mask = None if options is None else options.get("reset_mask")
        obs, info = self.env.reset(seed=seed, options=options)
        obs = _numpy_obs(obs, type(self).__name__)
        envs = None if mask is None else np.asarray(mask, dtype=bool)
        self._ended[_index(envs)] = False
        return self.tracker.reset(obs, envs), info

    def step(self, actions: Any) -> tuple[Obs, Any, Any, Any, dict[str, Any]]:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        obs = _numpy_obs(obs, type(self).__name__)
        ended = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            finals: dict[int, Obs | None] = {}
            if ended.any() and "final_obs" in info:
                has = np.asarray(info.get("_final_obs", ended), dtype=bool)
                finals = {int(i): info["final_obs"][i] for i in np.flatnonzero(ended & has)}
            wrapped, last = self.tracker.step_same_step(obs, ended, finals)
            if last:
                final_obs = np.array(info["final_obs"], dtype=object, copy=True)
                for i, value in last.items():
                    final_obs[i] = value
                info = {**info, "final_obs": final_obs}
            return wrapped, rewards, terminated, truncated, info
        started = self._ended if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        wrapped = self.tracker.step(obs, started, ended)
        self._ended = ended
        return wrapped, rewards, terminated, truncated, info


# ---------------------------------------------------------------------- the wrappers
class GlimpseHistory(_TrackedWrapper, gym.utils.RecordConstructorArgs):
    """Single-env wrapper: the observation is every glimpse of the episode so far.

    After ``t`` glimpses the observation holds them in slots ``0..t-1`` of ``T`` fixed
    slots, the other slots zero, and ``mask[t'] = 1`` exactly for the filled slots
    (:func:`history_space`). ``reset`` starts a new history. The observation returned by
    the step that ends the episode gets its glimpse when a slot is left for it (a full
    history is returned as it is: nothing acts on that observation).

    Args:
        env: an env with ``Dict(glimpse, location)`` observations.
        n_slots: ``T``; default the env's ``n_glimpses`` (every observation an agent acts
            on then fits).

    Raises:
        ValueError: on other observations, or without ``n_slots`` on an env that has no
            ``n_glimpses``.
    """

    def __init__(self, env: gym.Env, n_slots: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, n_slots=n_slots)
        super().__init__(env)
        single = env.observation_space
        if n_slots is None:
            n_slots = int(_single_setting(env, "n_glimpses", "GlimpseHistory"))
        self.observation_space = history_space(single, int(n_slots))
        self.n_slots = int(n_slots)
        self.tracker = GlimpseHistoryBuffer(
            1, self.n_slots, single["glimpse"].shape, single["location"].shape[0]
        )


class VectorGlimpseHistory(_TrackedVectorWrapper, gym.utils.RecordConstructorArgs):
    """:class:`GlimpseHistory` for a vector env (any autoreset mode).

    Each sub-env keeps its own history, started again when its episode restarts (at
    ``reset``, at ``NEXT_STEP``'s reset step, at the step that ends it under
    ``SAME_STEP``, whose ``info["final_obs"][i]`` becomes the finished episode's history).

    Args:
        env: a vector env with ``Dict(glimpse, location)`` observations (NumPy).
        n_slots: ``T``; default the envs' ``n_glimpses``.
    """

    def __init__(self, env: VectorEnv, n_slots: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, n_slots=n_slots)
        single = env.single_observation_space
        if n_slots is None:
            n_slots = int(_vector_setting(env, "n_glimpses", "VectorGlimpseHistory"))
        super().__init__(env, history_space(single, int(n_slots)))
        self.n_slots = int(n_slots)
        self.tracker = GlimpseHistoryBuffer(
            env.num_envs, self.n_slots, single["glimpse"].shape, single["location"].shape[0]
        )


class ActionUse(_TrackedWrapper, gym.utils.RecordConstructorArgs):
    """Single-env wrapper adding ``"action_use"`` (:func:`action_use`) to the observation.

    ``action_use`` = (location read, class scores read) for the action taken on this
    observation, float32. Steps are counted from ``reset``, so the episodes must last
    ``horizon`` steps (the glimpse envs do).

    Args:
        env: an env with ``Dict`` observations (e.g. a :class:`GlimpseHistory`).
        horizon: steps per episode; default the env's ``n_glimpses``.
        class_every_step: default True exactly when the env's ``reward_type`` is
            ``"dense"`` or its ``stop`` is ``"action"`` (any step may be the judged one).
    """

    def __init__(
        self, env: gym.Env, horizon: int | None = None, class_every_step: bool | None = None
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, horizon=horizon, class_every_step=class_every_step
        )
        super().__init__(env)
        self.observation_space = action_use_space(env.observation_space)
        if horizon is None:
            horizon = int(_single_setting(env, "n_glimpses", "ActionUse"))
        if class_every_step is None:
            class_every_step = _scores_every_step(
                _single_setting(env, "reward_type", "ActionUse"),
                _single_setting(env, "stop", "ActionUse"),
            )
        self.tracker = ActionUseCounter(1, horizon, class_every_step)
        self.horizon, self.class_every_step = self.tracker.horizon, self.tracker.class_every_step


class VectorActionUse(_TrackedVectorWrapper, gym.utils.RecordConstructorArgs):
    """:class:`ActionUse` for a vector env (any autoreset mode): steps are counted per
    sub-env from its episode's start.

    Args:
        env: a vector env with ``Dict`` observations (NumPy).
        horizon: steps per episode; default the envs' ``n_glimpses``.
        class_every_step: default True exactly when the envs' ``reward_type`` is ``"dense"``
            or their ``stop`` is ``"action"`` (any step may be the judged one).
    """

    def __init__(
        self, env: VectorEnv, horizon: int | None = None, class_every_step: bool | None = None
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, horizon=horizon, class_every_step=class_every_step
        )
        space = action_use_space(env.single_observation_space)
        if horizon is None:
            horizon = int(_vector_setting(env, "n_glimpses", "VectorActionUse"))
        if class_every_step is None:
            class_every_step = _scores_every_step(
                _vector_setting(env, "reward_type", "VectorActionUse"),
                _vector_setting(env, "stop", "VectorActionUse"),
            )
        super().__init__(env, space)
        self.tracker = ActionUseCounter(env.num_envs, horizon, class_every_step)
        self.horizon, self.class_every_step = self.tracker.horizon, self.tracker.class_every_step
