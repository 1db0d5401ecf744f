"""The policy protocol of GlimpseBench: what :func:`glimpse_env.bench.evaluate` accepts.

A policy is any of three things:

1. **A bare callable** ``act(obs) -> action`` for ONE observation dict, exactly as
   ``env.step`` takes it: ``obs["glimpse"]`` float32 ``(k, g, g)``, ``obs["location"]``
   float32 ``(2,)``; the action is a floating-point array ``(2 + C,)``: ``x, y`` of the next
   glimpse in [-1, 1], then one score per class (on an adaptive env, ``stop="action"``, then
   the stop score: ``(2 + C + 1,)``). The harness loops it over the batch.
2. **A batched callable**, marked with :func:`batched` (usable as a decorator) or a callable
   object with ``batched = True``: ``act(obs) -> actions (N, 2 + C)`` for batched
   observations (``glimpse (N, k, g, g)``, ``location (N, 2)``).
3. **A policy object** (stateful, e.g. recurrent) with the structure of :class:`BenchPolicy`,
   the same as :class:`agents.policy.Policy` (whose objects already fit)::

       def initial_state(self, n: int) -> state  # memory of n fresh episodes
       def act(self, obs, state, deterministic: bool) -> (actions (N, 2 + C), state)

   Optional attributes the harness reads when present: ``n_parameters`` (int, reported as
   the cost), ``name`` (str, how results and errors name it, else :func:`policy_name`),
   ``seed_sampling(seed)`` (called before each ``"sample"`` rollout, so that sampled actions
   are a function of the seed) and ``bind_env(envs)`` (called with the vector env before
   each batch of episodes, for a policy that reads the env's ground truth).

For example::

    import numpy as np
    from glimpse_env.bench import batched, evaluate

    SAY_THREE = np.array([0, 0, *np.eye(10)[3]], dtype=np.float32)  # look at the centre

    def says_three(obs):  # bare: one observation -> (2 + C,)
        return SAY_THREE

    @batched
    def says_three_batched(obs):  # batched: N observations -> (N, 2 + C)
        return np.tile(SAY_THREE, (len(obs["location"]), 1))

    evaluate(says_three_batched, "GlimpseMNIST-v0", n_images=1000).accuracy

:func:`as_policy` turns any of the three into a :class:`BenchPolicy`. A policy whose output
is wrong (shape, dtype, NaN) or that raises gets one :class:`BenchPolicyError` naming it and
what was expected. NumPy and Gymnasium only: no torch import (a torch tensor a policy returns
is converted with the torch its owner already imported). :mod:`glimpse_env.bench` re-exports
the public names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from glimpse_env.actions import LOCATION_DIM

__all__ = [
    "BatchedCallable",
    "BenchPolicy",
    "BenchPolicyError",
    "as_policy",
    "batched",
    "policy_name",
]


class BenchPolicyError(ValueError):
    """A policy broke the protocol (wrong output or an exception); the message names the
    policy and what was expected."""


class BenchPolicy(Protocol):
    """What the harness calls: the same structure as :class:`agents.policy.Policy`.

    Optional attributes the harness reads when present: ``n_parameters`` (int, reported as
    the cost), ``name`` (str, how results and errors name it) and ``seed_sampling(seed)``
    (called before each ``"sample"`` rollout, so sampled actions are a function of the seed).
    """

    def initial_state(self, num_envs: int) -> Any:
        """Memory at the start of ``num_envs`` fresh episodes (anything; ``None`` if none)."""
        ...

    def act(
        self, obs: dict[str, np.ndarray], state: Any, deterministic: bool
    ) -> tuple[np.ndarray, Any]:
        """Floating-point actions ``(N, 2 + C)`` for batched ``obs`` (``glimpse (N, k, g, g)``,
        ``location (N, 2)``) and the next state."""
        ...


@dataclass
class BatchedCallable:
    """A stateless callable ``fn(batched_obs) -> actions (N, 2 + C)`` as a policy."""

    fn: Callable[[dict[str, np.ndarray]], Any]

    def initial_state(self, num_envs: int) -> None:
        return None

    def act(self, obs: dict[str, np.ndarray], state: Any, deterministic: bool) -> tuple[Any, None]:
        return self.fn(obs), None


def batched(fn: Callable[[dict[str, np.ndarray]], Any]) -> BatchedCallable:
    """Mark ``fn(batched_obs) -> actions (N, 2 + C)`` as batched (usable as a decorator).

    A callable object with a true ``batched`` attribute counts as marked too.
    """
    return BatchedCallable(fn)


@dataclass
class _SingleCallable:
    """A bare ``fn(obs) -> action (2 + C,)`` for one observation, looped over the batch."""

    fn: Callable[[dict[str, np.ndarray]], Any]
    name: str
    n_classes: int
    stop: bool = False

    def initial_state(self, num_envs: int) -> None:
        return None

    def act(
        self, obs: dict[str, np.ndarray], state: Any, deterministic: bool
    ) -> tuple[np.ndarray, None]:
        shape = (LOCATION_DIM + self.n_classes + int(self.stop),)
        actions = [
            _check_actions(
                self.fn({"glimpse": glimpse, "location": location}),
                shape,
                self.name,
                "an action for one observation",
                self.stop,
            )
            for glimpse, location in zip(obs["glimpse"], obs["location"])
        ]
        return np.stack(actions), None


def policy_name(policy: Any) -> str:
    """How results and errors name ``policy``: its ``name`` attribute, else
    ``module.qualname`` of the function or class."""
    name = getattr(policy, "name", None)
    if isinstance(name, str) and name:
        return name
    target = policy.fn if isinstance(policy, BatchedCallable) else policy
    if not callable(target) or not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def as_policy(
    policy: Any, n_classes: int, name: str | None = None, stop: bool = False
) -> BenchPolicy:
    """``policy`` as a :class:`BenchPolicy`: a protocol policy as it is, a batched callable
    (:func:`batched`, or a ``batched`` attribute) as :class:`BatchedCallable`, any other
    callable as a one-observation ``act(obs) -> action`` looped over the batch (``stop``:
    its actions end with the stop score of the adaptive envs).

    Raises:
        BenchPolicyError: if ``policy`` is none of these.
    """
    name = name or policy_name(policy)
    if callable(getattr(policy, "act", None)) and callable(getattr(policy, "initial_state", None)):
        return policy
    if getattr(policy, "batched", False) is True and callable(policy):
        return BatchedCallable(policy)
    if callable(policy):
        return _SingleCallable(policy, name, n_classes, stop)
    raise BenchPolicyError(
        f"policy {name} is a {type(policy).__name__}; expected a policy with "
        "initial_state(n) and act(obs, state, deterministic), or a callable act(obs) -> action"
    )


def _check_actions(
    raw: Any, shape: tuple[int, ...], name: str, what: str, stop: bool = False
) -> np.ndarray:
    """``raw`` as a finite floating-point array of ``shape``, else :class:`BenchPolicyError`
    (``stop``: the last entry is the stop score)."""
    expected = (
        f"expected a finite floating-point array (e.g. float32) of shape {shape}: x, y of the "
        f"next glimpse in [-1, 1], then {shape[-1] - LOCATION_DIM - int(stop)} class scores"
        + (", then the stop score" if stop else "")
    )
    if hasattr(raw, "detach"):  # a torch tensor (torch is already imported by its owner)
        raw = raw.detach().cpu().numpy()
    try:
        array = np.asarray(raw)
    except Exception as exc:
        raise BenchPolicyError(
            f"policy {name} returned {what} that is not an array ({type(raw).__name__}); {expected}"
        ) from exc
    if array.dtype.kind != "f":
        raise BenchPolicyError(
            f"policy {name} returned {what} of dtype {array.dtype} ({type(raw).__name__}); "
            f"{expected}"
        )
    if array.shape != shape:
        raise BenchPolicyError(f"policy {name} returned {what} of shape {array.shape}; {expected}")
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise BenchPolicyError(
            f"policy {name} returned {what} with {bad} NaN or infinite entries; {expected}"
        )
    return array


class _Guarded:
    """A policy whose exceptions and malformed returns become :class:`BenchPolicyError`."""

    def __init__(self, policy: BenchPolicy, name: str, shape: tuple[int, int]) -> None:
        self.policy, self.name, self.shape = policy, name, shape

    def seed_sampling(self, seed: int) -> None:
        seed_policy = getattr(self.policy, "seed_sampling", None)
        if callable(seed_policy):
            seed_policy(seed)

    def bind_env(self, envs: gym.vector.VectorEnv) -> None:
        bind = getattr(self.policy, "bind_env", None)
        if callable(bind):
            bind(envs)

    def initial_state(self, num_envs: int) -> Any:
        policy = self.policy
        return _call(policy, self.name, "initial_state", lambda: policy.initial_state(num_envs))

    def act(self, obs: Any, state: Any, deterministic: bool) -> tuple[Any, Any]:
        policy = self.policy
        out = _call(policy, self.name, "act", lambda: policy.act(obs, state, deterministic))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise BenchPolicyError(
                f"policy {self.name}: act returned a {type(out).__name__}; expected a pair "
                f"(actions of shape {self.shape}, next state)"
            )
        return out


def _call(policy: BenchPolicy, name: str, method: str, call: Callable[[], Any]) -> Any:
    """``call()``, any exception it raises as a :class:`BenchPolicyError` naming the policy."""
    try:
        return call()
    except BenchPolicyError:
        raise
    except Exception as exc:
        if isinstance(policy, _SingleCallable):
            expected = "a callable act(obs) -> action (2 + C,) for one observation dict"
        elif method == "initial_state":
            expected = "initial_state(n) -> state"
        else:
            expected = "act(obs, state, deterministic) -> (actions (N, 2 + C), state)"
        raise BenchPolicyError(
            f"policy {name} raised {type(exc).__name__} in {method}: "
            f"{' '.join(str(exc).split()) or '(no message)'}; expected {expected}"
        ) from exc
