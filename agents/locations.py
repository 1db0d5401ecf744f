"""Where the RAM agent looks: location policies, one small interface.

A :class:`LocationPolicy` turns the location network's proposal for the next glimpse into
the location sent to the environment. :class:`LearnedLocations` sends the proposal (the
paper's RAM; REINFORCE trains the location network). :class:`RandomLocations` is the
paper's "RAM, 8 random glimpses" ablation: uniform locations in ``[-1, 1]^2`` that are a
pure function of ``(seed, stream, episode, step)`` (counter-based, from
:mod:`glimpse_env._random`), so evaluating with 500 or 1000 envs at a time gives the same
glimpses. Two deterministic heuristics are reference entries of the leaderboard:
:class:`CenterLocations` (every glimpse at the centre) and :class:`RasterLocations` (a
fixed scan, :data:`RASTER_POINTS`). :class:`OracleLocations` looks at the centre of the
digit's true 28x28 box, read from the env (:mod:`glimpse_env.oracle`): an upper bound for
"where" (on plain MNIST, where the digit fills the canvas, it is the centre, as ``center``).
With every policy but ``learned`` the location network is never trained (no REINFORCE
term); only the classifier, core and glimpse networks learn.

:class:`FixedLocationPolicy` applies any non-learned location policy to any
:class:`agents.policy.Policy` (e.g. a trained RAM classifier) for evaluation;
:func:`with_locations` builds it from a run's ``location_policy`` name and seed. A location
policy that reads the env (the oracle) is bound to the vector env it acts on: by the trainer
(:func:`make_location_policy` with ``envs``) and, in evaluation, by the evaluation loop
(:func:`glimpse_env.play.play_episodes` calls a policy's ``bind_env(envs)``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from glimpse_env._random import splitmix64
from glimpse_env.actions import LOCATION_DIM, unpack_action
from glimpse_env.oracle import oracle_locations

__all__ = [
    "LOCATION_POLICIES",
    "RASTER_POINTS",
    "CenterLocations",
    "FixedLocationPolicy",
    "LearnedLocations",
    "LocationPolicy",
    "OracleLocations",
    "RandomLocations",
    "RasterLocations",
    "make_location_policy",
    "random_locations",
    "with_locations",
]

#: Names of the location policies the trainer knows.
LOCATION_POLICIES: tuple[str, ...] = ("learned", "random", "center", "raster", "oracle")

#: The raster scan, as ``(x, y)``: the 3x3 grid at ``{-0.5, 0, 0.5}^2`` without its centre
#: (the first glimpse is already there), in row-major order (``y`` outer, top row first;
#: ``x`` inner, left to right). Step ``t`` (glimpse ``t + 2``) goes to point ``t mod 8``: the
#: 7 chosen glimpses of an 8-glimpse env visit 7 distinct points, those of a 7-glimpse env 6.
RASTER_POINTS: tuple[tuple[float, float], ...] = (
    (-0.5, -0.5),
    (0.0, -0.5),
    (0.5, -0.5),
    (-0.5, 0.0),
    (0.5, 0.0),
    (-0.5, 0.5),
    (0.0, 0.5),
    (0.5, 0.5),
)

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


class CenterLocations:
    """Every glimpse at the centre ``(0, 0)``, ignoring the proposal."""

    learned = False

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        return torch.zeros_like(proposal)


class RasterLocations:
    """A fixed scan: step ``t`` goes to ``points[t % len(points)]`` for every episode,
    ignoring the proposal (default :data:`RASTER_POINTS`)."""

    learned = False

    def __init__(self, points: Any = RASTER_POINTS) -> None:
        """Args:
        points: (P, L) the scan's locations in ``[-1, 1]``, visited in order, cycling.
        """
        self.points = torch.as_tensor(np.asarray(points, dtype=np.float32))
        if self.points.ndim != 2 or len(self.points) == 0:
            raise ValueError(
                f"points must be a non-empty (P, L) array, got {tuple(self.points.shape)}"
            )

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        point = self.points[int(step) % len(self.points)].to(proposal.device, proposal.dtype)
        return point.expand_as(proposal).clone()


class OracleLocations:
    """The centre of each current episode's digit (:func:`glimpse_env.oracle.oracle_locations`),
    ignoring the proposal: an upper bound for "where".

    It reads the vector env it is bound to (:meth:`bind_env`) at every call, so it must be
    called while that env's current episodes are the ones being played (as the rollout and
    the evaluation loop do).
    """

    learned = False

    def __init__(self, envs: Any = None) -> None:
        """Args:
        envs: the vector env to read (None: bound later, by :meth:`bind_env`).
        """
        self.envs = envs

    def bind_env(self, envs: Any) -> None:
        """Read the digits of ``envs`` from now on."""
        self.envs = envs

    def __call__(self, proposal: Tensor, episodes: np.ndarray, step: int) -> Tensor:
        if self.envs is None:
            raise RuntimeError(
                "oracle locations read the digit's position from the env, and none is bound: "
                "make_location_policy('oracle', seed, envs=ENVS), or evaluate through "
                "glimpse_env.play (which binds it)"
            )
        locations = oracle_locations(self.envs)
        if locations.shape != tuple(proposal.shape):
            raise RuntimeError(
                f"oracle locations of shape {locations.shape} for proposals of shape "
                f"{tuple(proposal.shape)}: the bound env is not the one being played"
            )
        return torch.as_tensor(locations).to(proposal.device, proposal.dtype)


def make_location_policy(
    name: str, seed: int, stream: int = TRAIN_STREAM, envs: Any = None
) -> LocationPolicy:
    """The location policy called ``name`` (one of :data:`LOCATION_POLICIES`).

    Args:
        name: its name.
        seed: seed of the random draws (``random`` only).
        stream: random stream (``random`` only; training by default).
        envs: the vector env the policy acts on (``oracle`` only: it reads the digits'
            positions there; None: bound later through ``bind_env``).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "oracle":
        return OracleLocations(envs)
    if name == "learned":
        return LearnedLocations()
    if name == "random":
        return RandomLocations(seed, stream)
    if name == "center":
        return CenterLocations()
    if name == "raster":
        return RasterLocations()
    raise ValueError(f"location_policy must be one of {LOCATION_POLICIES}, got {name!r}")


class FixedLocationPolicy:
    """Wraps an :class:`agents.policy.Policy`: its classes, but a non-learned location policy's
    locations.

    Location ``t`` of episode ``i`` is ``locations(proposal, [i], t)`` (``sampled`` in
    sampled mode; default ``locations``), where ``proposal`` is the wrapped policy's location
    and the episode index counts the episodes this wrapper has started, in the order of
    :meth:`initial_state` calls (for :func:`agents.policy.evaluate_policy`, which visits a
    split in order, the episode index is the image index). Use one wrapper per evaluation
    (or :meth:`reset`). :func:`with_locations` builds it from a run's names.
    """

    def __init__(
        self, policy: Any, locations: LocationPolicy, sampled: LocationPolicy | None = None
    ) -> None:
        """Wrap ``policy``.

        Args:
            policy: the policy whose class scores are kept (e.g. a ``RAMPolicy``).
            locations: the locations of deterministic mode.
            sampled: the locations of sampled mode (default: ``locations``).
        """
        self.policy = policy
        self.env_id: str = policy.env_id
        self.env_kwargs: dict[str, Any] = policy.env_kwargs
        self.locations = locations
        self.sampled = locations if sampled is None else sampled
        self._next_episode = 0

    def reset(self) -> None:
        """Start counting episodes from 0 again."""
        self._next_episode = 0

    def bind_env(self, envs: Any) -> None:
        """Bind the location policies (and the wrapped policy) that read the env they act on
        (the oracle) to ``envs``; the evaluation loop calls this
        (:func:`glimpse_env.play.play_episodes`)."""
        for part in (self.locations, self.sampled, self.policy):
            bind = getattr(part, "bind_env", None)
            if callable(bind):
                bind(envs)

    def initial_state(self, num_envs: int) -> Any:
        """The wrapped policy's state, with the episode indices and the step counter."""
        first = self._next_episode
        self._next_episode += num_envs
        episodes = np.arange(first, first + num_envs)
        return episodes, 0, self.policy.initial_state(num_envs)

    def act(self, obs: Any, state: Any, deterministic: bool) -> tuple[Any, Any]:
        """The wrapped policy's action with its location replaced."""
        episodes, step, inner = state
        action, inner = self.policy.act(obs, inner, deterministic)
        locations = self.locations if deterministic else self.sampled
        if isinstance(action, Tensor):
            action = action.clone()
            location = unpack_action(action)[0]  # a view into the copy
            location[...] = locations(location.clone(), episodes, step)
        else:
            action = np.array(action, dtype=np.float32, copy=True)
            location = unpack_action(action)[0]
            location[...] = locations(torch.from_numpy(location.copy()), episodes, step).numpy()
        return action, (episodes, step + 1, inner)


def with_locations(policy: Any, name: str, seed: int = 0) -> Any:
    """``policy`` evaluated with the location policy called ``name``, as a run trained with it.

    ``learned``: ``policy`` itself. ``random``: a :class:`FixedLocationPolicy` with the seeded
    draws of :data:`EVAL_STREAM` (deterministic mode) and :data:`SAMPLE_STREAM` (sampled
    mode): fixed, reproducible and independent of the batch size. ``center``, ``raster`` and
    ``oracle``: the same locations in both modes (the oracle's, one :class:`OracleLocations`
    bound to the env it is evaluated on by the evaluation loop).

    Args:
        policy: an :class:`agents.policy.Policy`.
        name: one of :data:`LOCATION_POLICIES`.
        seed: the run's seed (``random`` only).

    Raises:
        ValueError: for an unknown name.
    """
    locations = make_location_policy(name, seed, EVAL_STREAM)
    if locations.learned:
        return policy
    if name != "random":  # the same locations in both modes
        return FixedLocationPolicy(policy, locations)
    return FixedLocationPolicy(policy, locations, make_location_policy(name, seed, SAMPLE_STREAM))
