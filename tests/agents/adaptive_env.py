"""A tiny adaptive vector environment (``stop="action"``) for testing the RAM stop head.

"Wait for the clue": the class (one-hot, ``n_classes`` pixels) is shown at glimpse ``r``,
where ``r`` is drawn per episode in ``1 .. reveal`` (``reveal=1``: always at the first
glimpse); the glimpse also has a last pixel set to 1 from glimpse ``r`` on (the clue has
come). Other glimpses are blank. Actions are ``[x, y, score_0 .. score_{C-1}, stop]``; an
episode ends on the step whose stop score is above 0, or at ``max_glimpses``, with reward
``1[argmax(scores) == label] - glimpse_cost * t`` after ``t`` glimpses (0 before). The end
``info`` has ``label``, ``prediction``, ``is_success`` and ``glimpses``, masked as Gymnasium
does; the three autoreset modes behave as :class:`glimpse_env.vector.GlimpseVectorEnv`'s
with ``stop="action"`` (``SAME_STEP``: ``final_info``; ``DISABLED``: ``ResetNeeded`` until
``reset(options={"reset_mask": ended})``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

RESULT_KEYS = ("label", "prediction", "is_success", "glimpses")


class AdaptiveMemoryVectorEnv(VectorEnv):
    """Batched "wait for the clue, then stop" task (NumPy)."""

    def __init__(
        self,
        num_envs: int,
        max_glimpses: int = 4,
        n_classes: int = 2,
        *,
        reveal: int = 1,
        glimpse_cost: float = 0.0,
        autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP,
        with_labels: bool = True,
    ) -> None:
        """Build the environment.

        Args:
            num_envs: number of sub-environments N.
            max_glimpses: the most glimpses (steps) an episode takes.
            n_classes: number of classes C.
            reveal: the class is shown at a glimpse drawn uniformly in ``1 .. reveal``.
            glimpse_cost: reward charged per glimpse taken.
            autoreset_mode: NEXT_STEP (default), SAME_STEP or DISABLED.
            with_labels: report ``label`` at the end (False: pure REINFORCE only).
        """
        self.num_envs = num_envs
        self.max_glimpses = max_glimpses
        self.n_classes = n_classes
        self.reveal = reveal
        self.glimpse_cost = glimpse_cost
        self.stop = "action"
        self.with_labels = with_labels
        self.metadata = {"autoreset_mode": autoreset_mode}
        self.single_observation_space = gym.spaces.Dict(
            glimpse=gym.spaces.Box(0.0, 1.0, (n_classes + 1,), np.float32),
            location=gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        )
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (2 + n_classes + 1,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng()
        self._labels = np.zeros(num_envs, np.int64)
        self._reveal_at = np.ones(num_envs, np.int64)
        self._t = np.zeros(num_envs, np.int64)  # glimpses taken before the current one
        self._location = np.zeros((num_envs, 2), np.float32)
        self._ended = np.zeros(num_envs, bool)

    @property
    def mode(self) -> AutoresetMode:
        """The autoreset mode."""
        return self.metadata["autoreset_mode"]

    def _new_episodes(self, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self._labels[mask] = self._rng.integers(0, self.n_classes, k)
        self._reveal_at[mask] = self._rng.integers(1, self.reveal + 1, k)
        self._t[mask] = 0
        self._location[mask] = self._rng.uniform(-1, 1, (k, 2))
        self._ended[mask] = False

    def _observation(self) -> dict[str, np.ndarray]:
        glimpse = np.zeros((self.num_envs, self.n_classes + 1), np.float32)
        seen = self._t + 1  # the glimpse being shown is number t + 1
        now = seen == self._reveal_at
        glimpse[now, self._labels[now]] = 1.0
        glimpse[seen >= self._reveal_at, -1] = 1.0
        return {"glimpse": glimpse, "location": self._location.copy()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """New episodes in every sub-env (or those ``options["reset_mask"]`` selects)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mask = np.ones(self.num_envs, bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool)
        self._new_episodes(mask)
        return self._observation(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every sub-env by one glimpse (NEXT_STEP: reset the ended ones instead)."""
        actions = np.asarray(actions, np.float32)
        assert actions.shape == (self.num_envs, 2 + self.n_classes + 1), actions.shape
        rewards = np.zeros(self.num_envs)
        resetting = self._ended.copy()
        if resetting.any():
            if self.mode == AutoresetMode.DISABLED:
                raise ResetNeeded("an episode ended: reset it first")
            self._new_episodes(resetting)
        active = ~resetting
        self._t[active] += 1
        self._location[active] = np.clip(actions[active, :2], -1, 1)
        prediction = actions[:, 2:-1].argmax(1)
        done = active & ((actions[:, -1] > 0) | (self._t >= self.max_glimpses))
        success = (prediction == self._labels) & done
        rewards[done] = success[done] - self.glimpse_cost * self._t[done]
        info: dict[str, Any] = {}
        if done.any():
            values = {
                "label": self._labels.copy(),
                "prediction": prediction,
                "is_success": success,
                "glimpses": self._t.copy(),
            }
            keys = RESULT_KEYS if self.with_labels else RESULT_KEYS[1:]
            result = {k: v for key in keys for k, v in ((key, values[key]), (f"_{key}", done))}
            if self.mode == AutoresetMode.SAME_STEP:
                info = {"final_info": result, "_final_info": done.copy()}
                self._new_episodes(done)
            else:
                info = result
                self._ended = done.copy()
        return self._observation(), rewards, done, np.zeros_like(done), info
