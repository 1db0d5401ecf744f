"""stable-baselines3 agents on the glimpse envs: features extractors, memory, evaluation.

The PPO comparison should compare *learning algorithms*, not feature stacks, so every SB3
agent here reads a glimpse through the same glimpse network as RAM
(:class:`agents.ram.GlimpseNetwork`: ``h_g = ReLU(Linear(glimpse))`` 128,
``h_l = ReLU(Linear(location))`` 128, ``g = ReLU(Linear(h_g) + Linear(h_l))`` 256).

Memory. A glimpse episode is partially observed: one glimpse says little about the digit.

* **RecurrentPPO** (sb3-contrib, ``MultiInputLstmPolicy``) gets its memory from an LSTM on
  top of :class:`GlimpseFeatures` (the single-glimpse extractor): the closest match to
  RAM's recurrent core.
* **Plain PPO** has no memory, so it gets an explicit one: :class:`GlimpseHistory`, an
  SB3 ``VecEnvWrapper`` whose observation is every glimpse (and location) seen so far in
  the episode, in ``T`` fixed slots, zero-padded, with a mask of the filled slots (the
  SB3 form of :mod:`glimpse_env.wrappers`' Gymnasium wrappers, whose bookkeeping it uses).
  :class:`GlimpseHistoryFeatures` applies the glimpse network to each filled slot and
  combines the slot features with the mask: their masked mean (default; a bag of
  glimpses, each ``g_t`` already encoding where it was taken) or their concatenation in
  slot order. Without the wrapper PPO sees only the current glimpse and would have to
  name the class from the last one alone.

Credit. :class:`ActionUse` adds to the observation which parts of the next action the env
will read: the location (every step but the last: the glimpse after the last step is never
taken) and the class scores (judged at the last step under the sparse reward, at every step
under the dense one). With it the policies of :mod:`agents.sb3_distributions` count in
``log pi`` only the parts the env reads (``used_actions_only``), as the RAM agent does.

Evaluation. :class:`SB3Policy` adapts a trained SB3 model to the :class:`agents.policy.Policy`
protocol (batched observations of the native vector env; the LSTM state and the episode
trackers of the training wrappers are the policy state), so ``glimpse eval RUN_DIR`` works as for RAM. Loaders for
``"ppo"`` and ``"recurrent_ppo"`` run folders are registered on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from torch import Tensor

from agents.policy import register_loader
from agents.ram import GlimpseNetwork
from glimpse_env.wrappers import (
    ACTION_USE_KEY,
    GLIMPSES_KEY,
    LOCATIONS_KEY,
    MASK_KEY,
    ActionUseCounter,
    EpisodeTracker,
    GlimpseHistoryBuffer,
    action_use,
    action_use_space,
    history_space,
)

__all__ = [
    "ACTION_USE_KEY",
    "GLIMPSES_KEY",
    "LOCATIONS_KEY",
    "MASK_KEY",
    "ActionUse",
    "GlimpseFeatures",
    "GlimpseHistory",
    "GlimpseHistoryBuffer",
    "GlimpseHistoryFeatures",
    "RecurrentState",
    "SB3Policy",
    "SB3State",
    "action_use",
    "history_space",
    "load_sb3_policy",
]


# ---------------------------------------------------------------------- features extractors
class GlimpseFeatures(BaseFeaturesExtractor):
    """The RAM glimpse network as an SB3 features extractor for one glimpse.

    Input: the env's observation ``{"glimpse": (B, k, g, g), "location": (B, 2)}``.
    Output: ``g = ReLU(Linear(h_g) + Linear(h_l))``, ``(B, features_dim)``.

    Args:
        observation_space: the env's ``Dict(glimpse, location)`` space.
        glimpse_hidden: units of ``h_g``.
        location_hidden: units of ``h_l``.
        features_dim: units of ``g``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        features_dim: int = 256,
    ) -> None:
        super().__init__(observation_space, features_dim)
        glimpse = observation_space["glimpse"]
        location = observation_space["location"]
        self.glimpse_net = GlimpseNetwork(
            int(np.prod(glimpse.shape)),
            int(location.shape[0]),
            glimpse_hidden,
            location_hidden,
            features_dim,
        )

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        """Features ``(B, features_dim)`` of a batch of single glimpses."""
        return self.glimpse_net(observations["glimpse"], observations["location"])


class GlimpseHistoryFeatures(BaseFeaturesExtractor):
    """The RAM glimpse network applied to every slot of a :class:`GlimpseHistory` observation.

    For each filled slot ``t`` the *same* glimpse network gives ``g_t`` (256 units); empty
    slots (mask 0) give exactly 0 (the network is not run on them). The slots are then
    combined:

    * ``"mean"`` (default): ``[mean of the filled g_t, mask]``, ``256 + T`` features.
      Order-free (a bag of glimpses; each ``g_t`` encodes its location, and the mask says
      how many have been seen), like a sum-pooling core; the MLP head on top does the
      rest. Cheap, and it learned faster than ``"concat"`` on GlimpseMNIST-v0.
    * ``"concat"``: ``[g_1, ..., g_T, mask]``, ``T * 256 + T`` features. Slot order is
      kept (the policy knows which glimpse came when), at the price of a 7x wider
      input to the policy and value heads.

    Args:
        observation_space: the ``Dict(glimpses, locations, mask)`` of :func:`history_space`.
        glimpse_hidden: units of ``h_g``.
        location_hidden: units of ``h_l``.
        glimpse_features: units of ``g_t``.
        combine: ``"mean"`` or ``"concat"``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        glimpse_features: int = 256,
        combine: str = "mean",
    ) -> None:
        if combine not in ("concat", "mean"):
            raise ValueError(f"combine must be 'concat' or 'mean', got {combine!r}")
        glimpses = observation_space[GLIMPSES_KEY]
        locations = observation_space[LOCATIONS_KEY]
        n_slots = int(glimpses.shape[0])
        per_slot = glimpse_features * (n_slots if combine == "concat" else 1)
        super().__init__(observation_space, per_slot + n_slots)
        self.n_slots = n_slots
        self.combine = combine
        self.glimpse_net = GlimpseNetwork(
            int(np.prod(glimpses.shape[1:])),
            int(locations.shape[1]),
            glimpse_hidden,
            location_hidden,
            glimpse_features,
        )

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        """Features ``(B, features_dim)`` of a batch of glimpse histories."""
        glimpses = observations[GLIMPSES_KEY]
        locations = observations[LOCATIONS_KEY]
        mask = observations[MASK_KEY]
        b, t = glimpses.shape[0], self.n_slots
        # The glimpse network runs on the filled slots only (on average about half of
        # them); empty slots get exactly 0, the same as running it and masking.
        filled = mask.reshape(b * t) > 0
        g_filled = self.glimpse_net(
            glimpses.reshape(b * t, -1)[filled], locations.reshape(b * t, -1)[filled]
        )
        g = g_filled.new_zeros((b * t, g_filled.shape[1]))
        g[filled] = g_filled
        g = g.reshape(b, t, -1)
        if self.combine == "concat":
            pooled = g.reshape(b, -1)
        else:
            pooled = g.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return torch.cat([pooled, mask], dim=1)


# ---------------------------------------------------------------------- SB3 wrappers
def _track(
    tracker: EpisodeTracker, obs: dict[str, Any], dones: np.ndarray, infos: list[dict]
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """One SB3 ``VecEnv`` step (same-step autoreset) through ``tracker``: the wrapped
    observation, and the infos with each ``terminal_observation`` wrapped too."""
    dones = np.asarray(dones, dtype=bool)
    finals = {int(i): infos[i].get("terminal_observation") for i in np.flatnonzero(dones)}
    wrapped, last = tracker.step_same_step(dict(obs), dones, finals)
    if last:
        infos = list(infos)
        for i, terminal in last.items():
            infos[i] = {**infos[i], "terminal_observation": terminal}
    return wrapped, infos


class GlimpseHistory(VecEnvWrapper):
    """SB3 ``VecEnvWrapper`` version of :class:`glimpse_env.wrappers.GlimpseHistory`.

    The observation after ``t`` glimpses of an episode holds them in slots ``0..t-1`` of
    ``T`` fixed slots (see :func:`history_space`). At an episode end (``dones[i]``) the
    history of env ``i`` starts again with the observation returned (the first of the next
    episode, SB3's same-step autoreset); ``infos[i]["terminal_observation"]`` becomes the
    finished episode's history with its last observation appended (when a slot is left for
    it; SB3 only needs it to bootstrap truncated episodes, which are shorter than ``T``).
    Works over any SB3 ``VecEnv`` with ``Dict(glimpse, location)`` observations, including
    ``DummyVecEnv`` with episodes of different lengths. The bookkeeping is
    :class:`GlimpseHistoryBuffer`'s, shared with the Gymnasium wrappers.

    Args:
        venv: the wrapped env (e.g. :class:`glimpse_env.sb3.GlimpseVecEnv`).
        n_slots: ``T``; default the env's ``n_glimpses`` (every observation an agent acts
            on then fits).
    """

    def __init__(self, venv: VecEnv, n_slots: int | None = None) -> None:
        single = venv.observation_space
        if n_slots is None:
            n_slots = int(venv.get_attr("n_glimpses", indices=[0])[0])
        super().__init__(venv, observation_space=history_space(single, int(n_slots)))
        self.n_slots = int(n_slots)
        self.buffer = GlimpseHistoryBuffer(
            venv.num_envs, self.n_slots, single["glimpse"].shape, single["location"].shape[0]
        )

    def reset(self) -> dict[str, np.ndarray]:
        """Reset the wrapped env; every history holds just the first glimpse."""
        return self.buffer.reset(dict(self.venv.reset()))

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Step the wrapped env and update the histories (see the class docstring)."""
        obs, rewards, dones, infos = self.venv.step_wait()
        obs, infos = _track(self.buffer, obs, dones, infos)
        return obs, rewards, np.asarray(dones, dtype=bool), infos


class ActionUse(VecEnvWrapper):
    """SB3 ``VecEnvWrapper`` version of :class:`glimpse_env.wrappers.ActionUse`.

    The observation space gains ``action_use = Box(0, 1, (2,))`` (:func:`action_use`):
    (location read, class scores read) for the action taken on this observation. It is
    what a policy needs to leave out of ``log pi`` the parts of an action that cannot
    change the reward (:class:`agents.sb3_distributions.LocationClassDistribution`); a
    features extractor may ignore it. Episodes are counted from the last reset or
    ``done``, so the wrapper needs episodes of ``horizon`` steps (the glimpse envs without
    ``max_episode_steps``). ``terminal_observation`` gets the key too (SB3 reads it to
    bootstrap truncations).

    Args:
        venv: the wrapped env (``Dict`` observations).
        horizon: steps per episode; default the env's ``n_glimpses``.
        class_every_step: default True exactly when the env's ``reward_type`` is
            ``"dense"``.
    """

    def __init__(
        self, venv: VecEnv, horizon: int | None = None, class_every_step: bool | None = None
    ) -> None:
        space = action_use_space(venv.observation_space)
        if horizon is None:
            horizon = int(venv.get_attr("n_glimpses", indices=[0])[0])
        if class_every_step is None:
            class_every_step = venv.get_attr("reward_type", indices=[0])[0] == "dense"
        self.counter = ActionUseCounter(venv.num_envs, horizon, class_every_step)
        super().__init__(venv, observation_space=space)
        self.horizon, self.class_every_step = self.counter.horizon, self.counter.class_every_step

    @property
    def steps(self) -> np.ndarray:
        """int64 ``(num_envs,)``: steps taken in each running episode."""
        return self.counter.steps

    def reset(self) -> dict[str, np.ndarray]:
        """Reset the wrapped env; every episode is at step 0."""
        return self.counter.reset(dict(self.venv.reset()))

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Step the wrapped env and count the steps of every episode."""
        obs, rewards, dones, infos = self.venv.step_wait()
        obs, infos = _track(self.counter, obs, dones, infos)
        return obs, rewards, np.asarray(dones, dtype=bool), infos


# ---------------------------------------------------------------------- evaluation adapter
@dataclass
class RecurrentState:
    """Policy state of a RecurrentPPO agent over a batch of episodes.

    Attributes:
        lstm: the LSTM states SB3's ``predict`` returns (``None`` before the first step).
        episode_start: bool ``(N,)``: True where the next step starts an episode.
    """

    lstm: tuple[np.ndarray, ...] | None
    episode_start: np.ndarray


@dataclass
class SB3State:
    """Policy state of :class:`SB3Policy` over a batch of episodes started together.

    Attributes:
        memory: a :class:`RecurrentState` (RecurrentPPO) or ``None`` (PPO).
        trackers: the episode trackers of the wrappers the model was trained under, in
            their order: a :class:`GlimpseHistoryBuffer` (PPO trained on
            :class:`GlimpseHistory`), then an :class:`ActionUseCounter` (trained with
            :class:`ActionUse`).
        step: steps taken in the episodes so far.
    """

    memory: RecurrentState | None
    trackers: tuple[EpisodeTracker, ...] = ()
    step: int = 0


class SB3Policy:
    """A trained SB3 PPO / RecurrentPPO model behind the :class:`agents.policy.Policy` API.

    ``act`` calls ``model.predict(obs, deterministic=...)`` on the whole batch
    (deterministic = the mean location and the likeliest class). The state
    (:class:`SB3State`) holds what the model needs besides the current observation: the
    LSTM state for RecurrentPPO, and the episode trackers of the wrappers it was trained
    under (:class:`GlimpseHistory`, :class:`ActionUse`), which turn the env's
    observations into the ones the model saw in training.

    Args:
        model: the SB3 model.
        env_id: the env it was trained on.
        env_kwargs: the env keyword arguments it was trained with.
        action_use: for a model trained with :class:`ActionUse`, its ``horizon`` and
            ``class_every_step`` (as in ``meta.json["action_use"]``).

    Raises:
        ValueError: if the model observes ``action_use`` and ``action_use`` is None.
    """

    def __init__(
        self,
        model: Any,
        env_id: str,
        env_kwargs: dict[str, Any],
        action_use: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        space = model.observation_space
        self.history_slots: int | None = (
            int(space[GLIMPSES_KEY].shape[0]) if GLIMPSES_KEY in space.spaces else None
        )
        self._glimpse_shape = (
            tuple(space[GLIMPSES_KEY].shape[1:]) if self.history_slots is not None else None
        )
        self.recurrent = hasattr(model.policy, "lstm_actor")
        if ACTION_USE_KEY in space.spaces and action_use is None:
            raise ValueError(
                f"the model observes {ACTION_USE_KEY!r}: pass action_use "
                "(horizon, class_every_step) as in the run's meta.json"
            )
        self.action_use = dict(action_use) if ACTION_USE_KEY in space.spaces else None

    def initial_state(self, num_envs: int) -> SB3State:
        """Empty memory for ``num_envs`` fresh episodes."""
        trackers: list[EpisodeTracker] = []
        if not self.recurrent and self.history_slots is not None:
            assert self._glimpse_shape is not None
            trackers.append(GlimpseHistoryBuffer(num_envs, self.history_slots, self._glimpse_shape))
        if self.action_use is not None:
            horizon = int(self.action_use["horizon"])
            every = bool(self.action_use["class_every_step"])
            trackers.append(ActionUseCounter(num_envs, horizon, every))
        memory = RecurrentState(None, np.ones(num_envs, dtype=bool)) if self.recurrent else None
        return SB3State(memory, tuple(trackers))

    def act(
        self, obs: dict[str, np.ndarray], state: SB3State, deterministic: bool
    ) -> tuple[np.ndarray, SB3State]:
        """Actions float32 ``(N, 2 + C)`` for batched ``obs`` and the next state.

        The trackers of ``state`` are updated in place.
        """
        model_obs = {k: np.asarray(v) for k, v in obs.items()}
        for tracker in state.trackers:  # the training wrappers, innermost first
            model_obs = tracker.reset(model_obs) if state.step == 0 else tracker.step(model_obs)
        memory = state.memory
        if memory is not None:
            actions, lstm = self.model.predict(
                model_obs,
                state=memory.lstm,
                episode_start=memory.episode_start,
                deterministic=deterministic,
            )
            memory = RecurrentState(lstm, np.zeros_like(memory.episode_start))
        else:
            actions, _ = self.model.predict(model_obs, deterministic=deterministic)
        return np.asarray(actions, dtype=np.float32), SB3State(
            memory, state.trackers, state.step + 1
        )


def _algorithm(agent: str) -> type:
    if agent == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    from stable_baselines3 import PPO

    return PPO


def load_sb3_policy(path: Path, meta: dict[str, Any], device: str = "cpu") -> SB3Policy:
    """Load a ``model.zip`` written by ``glimpse train ppo`` as a :class:`SB3Policy`.

    Args:
        path: the model file.
        meta: the run's ``meta.json`` (``agent``, ``env_id``, ``env_kwargs``, as
            :func:`agents.policy.load_policy` passes them: with the run's data folder when
            it exists here).
        device: torch device for the model.
    """
    model = _algorithm(meta["agent"]).load(str(path), device=device)
    env_kwargs = dict(meta.get("env_kwargs", {}))  # load_policy: env_kwargs_from_meta
    return SB3Policy(model, meta["env_id"], env_kwargs, meta.get("action_use"))


register_loader("ppo", load_sb3_policy)
register_loader("recurrent_ppo", load_sb3_policy)
