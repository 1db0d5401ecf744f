"""A tiny native vector environment for testing the RAM agent: remember the first glimpse.

Glimpse 1 shows the class (a bit, for 2 classes and a 1-pixel glimpse); later glimpses
are blank. After ``horizon`` steps the class scores are judged. It follows the glimpse
environments' contract: fixed horizon, reward 1 for a right answer at the last step,
``label`` / ``prediction`` / ``is_success`` in the final ``info`` and SAME_STEP autoreset.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class MemoryVectorEnv(VectorEnv):
    """Batched "remember the first glimpse" task (numpy, SAME_STEP autoreset).

    Observations: ``dict(glimpse=float32 (N, *glimpse_shape) in [0, 1],
    location=float32 (N, 2))``. Actions: ``float32 (N, 2 + n_classes)``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        horizon: int = 3,
        n_classes: int = 2,
        glimpse_shape: tuple[int, ...] = (1, 1, 1),
        *,
        with_labels: bool = True,
        ragged: bool = False,
        autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP,
    ) -> None:
        """Build the environment.

        Args:
            num_envs: number of sub-environments N.
            horizon: steps per episode T.
            n_classes: number of classes C.
            glimpse_shape: shape of one glimpse.
            with_labels: report ``label`` in the final info (False: pure REINFORCE only).
            ragged: make sub-environment 0 end one step early (breaks the fixed horizon).
            autoreset_mode: SAME_STEP (default) or NEXT_STEP.
        """
        self.num_envs = num_envs
        self.horizon = horizon
        self.n_classes = n_classes
        self.glimpse_shape = tuple(glimpse_shape)
        self.with_labels = with_labels
        self.ragged = ragged
        self.metadata = {"autoreset_mode": autoreset_mode}
        self.single_observation_space = gym.spaces.Dict(
            glimpse=gym.spaces.Box(0.0, 1.0, self.glimpse_shape, np.float32),
            location=gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        )
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (2 + n_classes,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng()
        self._labels = np.zeros(num_envs, np.int64)
        self._t = np.zeros(num_envs, np.int64)
        self._ends = np.full(num_envs, horizon, np.int64)
        if ragged:
            self._ends[0] = max(horizon - 1, 1)
        self._pending_reset = np.zeros(num_envs, bool)

    def _first_glimpse(self, labels: np.ndarray) -> np.ndarray:
        size = int(np.prod(self.glimpse_shape))
        glimpse = np.zeros((len(labels), size), np.float32)
        if size >= self.n_classes:
            glimpse[np.arange(len(labels)), labels] = 1.0
        else:
            glimpse[:, 0] = labels / max(self.n_classes - 1, 1)
        return glimpse.reshape(len(labels), *self.glimpse_shape)

    def _new_episodes(self, mask: np.ndarray) -> None:
        self._labels[mask] = self._rng.integers(0, self.n_classes, int(mask.sum()))
        self._t[mask] = 0

    def _observation(self, location: np.ndarray) -> dict[str, np.ndarray]:
        glimpse = np.zeros((self.num_envs, *self.glimpse_shape), np.float32)
        first = self._t == 0
        glimpse[first] = self._first_glimpse(self._labels[first])
        return {"glimpse": glimpse, "location": location.astype(np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start new episodes in every sub-environment."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._new_episodes(np.ones(self.num_envs, bool))
        self._pending_reset[:] = False
        location = self._rng.uniform(-1, 1, (self.num_envs, 2))
        return self._observation(location), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every sub-environment by one glimpse."""
        actions = np.asarray(actions, np.float32)
        assert actions.shape == (self.num_envs, 2 + self.n_classes), actions.shape
        rewards = np.zeros(self.num_envs, np.float64)
        info: dict[str, Any] = {}
        if self._pending_reset.any():  # NEXT_STEP mode: this step only resets
            mask = self._pending_reset.copy()
            self._new_episodes(mask)
            self._pending_reset[:] = False
            location = np.clip(actions[:, :2], -1, 1)
            location[mask] = self._rng.uniform(-1, 1, (int(mask.sum()), 2))
            done = np.zeros(self.num_envs, bool)
            return self._observation(location), rewards, done, done.copy(), info
        self._t += 1
        done = self._t >= self._ends
        location = np.clip(actions[:, :2], -1, 1)
        if done.any():
            prediction = actions[:, 2:].argmax(1)
            success = (prediction == self._labels) & done
            rewards[done] = success[done].astype(np.float64)
            entries = {"prediction": prediction, "is_success": success}
            if self.with_labels:
                entries["label"] = self._labels.copy()
            for key, value in entries.items():
                info[key] = value
                info[f"_{key}"] = done.copy()
            if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
                self._new_episodes(done)
                location[done] = self._rng.uniform(-1, 1, (int(done.sum()), 2))
            else:
                self._pending_reset |= done
        return self._observation(location), rewards, done, np.zeros_like(done), info


class TorchMemoryVectorEnv(MemoryVectorEnv):
    """:class:`MemoryVectorEnv` with a torch backend: torch observations, torch actions."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset; observations as torch tensors."""
        import torch

        obs, info = super().reset(seed=seed, options=options)
        return {k: torch.from_numpy(v) for k, v in obs.items()}, info

    def step(self, actions: Any) -> tuple[Any, ...]:
        """Step with a torch action; everything returned as torch tensors."""
        import torch

        assert isinstance(actions, torch.Tensor), type(actions)
        obs, rewards, terminated, truncated, info = super().step(actions.numpy())
        return (
            {k: torch.from_numpy(v) for k, v in obs.items()},
            torch.from_numpy(rewards),
            torch.from_numpy(terminated),
            torch.from_numpy(truncated),
            info,
        )


class BoxMemoryVectorEnv(MemoryVectorEnv):
    """:class:`MemoryVectorEnv` whose observation is the glimpse alone (a Box, no location)."""

    def __init__(self, num_envs: int, **kwargs: Any) -> None:
        """Build it (arguments of :class:`MemoryVectorEnv`)."""
        super().__init__(num_envs, **kwargs)
        self.single_observation_space = self.single_observation_space["glimpse"]
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset; the observation is the glimpse array."""
        obs, info = super().reset(seed=seed, options=options)
        return obs["glimpse"], info

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        """Step; the observation is the glimpse array."""
        obs, *rest = super().step(actions)
        return (obs["glimpse"], *rest)
