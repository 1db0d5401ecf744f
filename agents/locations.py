"""Where the RAM agent looks: location policies, one small interface.

A :class:`LocationPolicy` turns the location network's proposal for the next glimpse into
the location sent to the environment. :class:`LearnedLocations` sends the proposal (the
paper's RAM; REINFORCE trains the location network). :class:`RandomLocations` is the
paper's "RAM, 8 random glimpses" ablation: uniform locations in ``[-1, 1]^2`` that are a
pure function of ``(seed, stream, episode, step)`` (counter-based, from
:mod:`glimpse_env._random`), so evaluating with 500 or 1000 envs at a time gives the same
glimpses; the location network is then never trained.

:class:`RandomLocationPolicy` applies the random locations to any
:class:`agents.policy.Policy` (e.g. a trained RAM classifier) for evaluation.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from glimpse_env._random import splitmix64
from glimpse_env.actions import LOCATION_DIM, unpack_action

__all__ = [
    "LOCATION_POLICIES",
    "LearnedLocations",
    "LocationPolicy",
    "RandomLocationPolicy",
    "RandomLocations",
    "make_location_policy",
    "random_locations",
]

#: Names of the location policies the trainer knows.
LOCATION_POLICIES: tuple[str, ...] = ("learned", "random")

#: Random streams: deterministic evaluation, sampled evaluation, training.
EVAL_STREAM, SAMPLE_STREAM, TRAIN_STREAM = 0, 1, 2


def random_locations(
    seed: int, episodes: Any, step: int, dim: int = LOCATION_DIM, stream: int = EVAL_STREAM
) -> np.ndarray:
    """Uniform locations in ``[-1, 1)^dim``, a pure function of ``(seed, stream, episode, step)``.

    Args:
        seed: the policy's seed.
        episodes: (N,) non-negative episode indices (e.g. image indices of a split).
        step: step index t (0: the location chosen after the first glimpse).
        dim: location dimension L.
        stream: independent stream (:data:`EVAL_STREAM`, :data:`SAMPLE_STREAM`,
            :data:`TRAIN_STREAM`).

    Returns:
        (N, dim) float32 array.
    """
    mask = 2**64 - 1
    key = splitmix64(np.array([int(seed) & mask], dtype=np.uint64))
    key = splitmix64(key ^ np.uint64(int(stream) & mask))
    key = splitmix64(key ^ np.uint64(int(step) & mask))
    ep = np.asarray(episodes, dtype=np.int64).astype(np.uint64).reshape(-1, 1)
    h = splitmix64(splitmix64(key ^ ep) ^ np.arange(dim, dtype=np.uint64).reshape(1, -1))
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (2.0 * u - 1.0).astype(np.float32)


class LocationPolicy(Protocol):
    """Chooses the locations sent to the environment during training."""

    #: Whether the sent locations are the location network's (then REINFORCE trains it).
    learned: bool

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        """The next glimpse's location.

        Args:
            proposal: (N, L) the location network's clamped sample (or mean).
            episodes: (N,) indices of the episodes (counting from 0 over the run).
            step: step index t.

        Returns:
            (N, L) locations, on ``proposal``'s device and dtype.
        """
        ...


class LearnedLocations:
    """The location network's proposal (the paper's RAM)."""

    learned = True

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        return proposal


class RandomLocations:
    """Uniform random locations (:func:`random_locations`), ignoring the proposal."""

    learned = False

    def __init__(self, seed: int, stream: int = TRAIN_STREAM) -> None:
        """Args:
        seed: seed of the draws.
        stream: random stream.
        """
        self.seed = int(seed)
        self.stream = int(stream)

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        loc = random_locations(self.seed, episodes, step, proposal.shape[-1], self.stream)
        return torch.as_tensor(loc).to(proposal.device, proposal.dtype)


def make_location_policy(name: str, seed: int) -> LocationPolicy:
    """The location policy called ``name`` (one of :data:`LOCATION_POLICIES`).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "learned":
        return LearnedLocations()
    if name == "random":
        return RandomLocations(seed)
    raise ValueError(f"location_policy must be one of {LOCATION_POLICIES}, got {name!r}")


class RandomLocationPolicy:
    """Wraps an :class:`agents.policy.Policy`: its classes, but uniformly random locations.

    Location ``t`` of episode ``i`` is :func:`random_locations` of ``(seed, i, t)``, where
    the episode index counts the episodes this wrapper has started, in the order of
    :meth:`initial_state` calls (for :func:`agents.policy.evaluate_policy`, which visits a
    split in order, the episode index is the image index). Deterministic mode uses
    :data:`EVAL_STREAM` and sampled mode :data:`SAMPLE_STREAM`: both are fixed seeded draws,
    reproducible and independent of the batch size. Use one wrapper per evaluation (or
    :meth:`reset`).
    """

    def __init__(self, policy: Any, seed: int = 0) -> None:
        """Wrap ``policy``.

        Args:
            policy: the policy whose class scores are kept (e.g. a ``RAMPolicy``).
            seed: seed of the random locations.
        """
        self.policy = policy
        self.env_id: str = policy.env_id
        self.env_kwargs: dict[str, Any] = policy.env_kwargs
        self.seed = int(seed)
        self._next_episode = 0

    def reset(self) -> None:
        """Start counting episodes from 0 again."""
        self._next_episode = 0

    def initial_state(self, num_envs: int) -> Any:
        """The wrapped policy's state, with the episode indices and the step counter."""
        first = self._next_episode
        self._next_episode += num_envs
        episodes = np.arange(first, first + num_envs)
        return episodes, 0, self.policy.initial_state(num_envs)

    def act(self, obs: Any, state: Any, deterministic: bool) -> tuple[Any, Any]:
        """The wrapped policy's action with the location replaced by a random one."""
        episodes, step, inner = state
        action, inner = self.policy.act(obs, inner, deterministic)
        stream = EVAL_STREAM if deterministic else SAMPLE_STREAM
        loc = random_locations(self.seed, episodes, step, stream=stream)
        if isinstance(action, Tensor):
            action = action.clone()
            location = unpack_action(action)[0]  # a view into the copy
            location[...] = torch.as_tensor(loc, dtype=action.dtype, device=action.device)
        else:
            action = np.array(action, dtype=np.float32, copy=True)
            unpack_action(action)[0][...] = loc
        return action, (episodes, step + 1, inner)
