"""Playing batches of episodes with the RAM agent, recording what training replays.

:func:`collect_rollout` plays one episode in every sub-environment of a Gymnasium vector
env, without autograd, and returns a :class:`Rollout`: the glimpses, the locations they
were taken at, the location samples, the judged classes and the rewards.
:meth:`agents.ram.RecurrentAttentionModel.replay` then recomputes the model's outputs over
the whole episode in one batched, differentiable forward.

Environment contract (the glimpse environments and the tests' memory environment follow
it):

* ``reset`` returns the observation of glimpse 1; the action at step t is chosen after
  glimpses 1..t.
* Observations: a ``Box`` or a ``Dict`` of ``Box``; every key but ``location`` is glimpse
  input (flattened); ``location`` (optional) is where the glimpse was taken. NumPy arrays,
  or torch tensors (a torch backend takes torch actions on its device).
* Actions: ``Box(-1, 1, (2 + C,))`` (:mod:`glimpse_env.actions`): the next location, then
  C class scores naming one class.
* Fixed horizon: every sub-environment ends at the same step T; the final ``info`` has
  ``label``, ``prediction`` and ``is_success`` (with ``_label`` etc. masks), directly or
  under ``final_info``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from agents.locations import LearnedLocations, LocationPolicy
from agents.ram import LOCATION_KEY, CoreState, RecurrentAttentionModel
from glimpse_env.actions import class_scores, pack_action
from glimpse_env.play import as_numpy, final_info_value

__all__ = ["ObservationAdapter", "Rollout", "autocast", "autoreset_same_step", "collect_rollout"]

#: Safety cap on the episode length while the horizon is still unknown.
MAX_EPISODE_STEPS = 10_000


@dataclass
class Rollout:
    """One batch of N episodes of horizon T, as played (no autograd graph).

    Attributes:
        glimpses: (T, N, D) flattened glimpses.
        locations: (T, N, L) locations the glimpses were taken at.
        samples: (T, N, L) unclamped location samples drawn after each glimpse (what the
            location policy's log-probabilities score).
        classes: (N,) class named at the final (judged) step.
        rewards: (T, N) float32 rewards.
        labels: (N,) labels from the final ``info``, or None when not (all) reported.
        success: (N,) bool ``is_success`` from the final ``info``, or None.
        std: location std the samples were drawn with.
    """

    glimpses: Tensor
    locations: Tensor
    samples: Tensor
    classes: Tensor
    rewards: Tensor
    labels: Tensor | None
    success: Tensor | None
    std: float

    @property
    def horizon(self) -> int:
        """T, the number of steps of every episode."""
        return self.rewards.shape[0]

    @property
    def returns(self) -> Tensor:
        """(N,) episode returns."""
        return self.rewards.sum(0)


class ObservationAdapter:
    """Turns batched observations (NumPy or torch) into the model's inputs."""

    def __init__(self, observation_space: gym.Space, device: torch.device | str) -> None:
        """Args:
        observation_space: the single env's ``Box`` or ``Dict`` space.
        device: the model's device.
        """
        if isinstance(observation_space, gym.spaces.Dict):
            self.keys: list[str] | None = [k for k in observation_space.spaces if k != LOCATION_KEY]
            self.has_location = LOCATION_KEY in observation_space.spaces
        else:
            self.keys = None
            self.has_location = False
        self.device = torch.device(device)

    def _tensor(self, x: Any) -> Tensor:
        if isinstance(x, Tensor):
            return x.to(self.device, torch.float32, non_blocking=True)
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)

    def __call__(self, obs: Any) -> tuple[Tensor, Tensor | None, torch.device | None]:
        """Split an observation batch.

        The glimpse is always a new tensor; the location may share memory with the
        observation: copy it before the next ``step`` if it is kept (:func:`collect_rollout`
        does).

        Returns:
            ``(glimpse (N, D), location (N, L) or None, env_device)``, where ``env_device``
            is the device of torch observations (None for NumPy).
        """
        first = obs if self.keys is None else obs[self.keys[0]]
        if self.keys is None:
            glimpse = self._tensor(obs).flatten(1).clone()
        else:
            glimpse = torch.cat([self._tensor(obs[k]).flatten(1) for k in self.keys], 1)
        location = self._tensor(obs[LOCATION_KEY]) if self.has_location else None
        return glimpse, location, first.device if isinstance(first, Tensor) else None


def autoreset_same_step(envs: VectorEnv) -> bool:
    """Whether ``envs`` autoresets in the terminal step itself."""
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return mode in (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP.value)


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device`` (nothing when ``dtype`` is None)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def sample_class(logits: Tensor, generator: torch.Generator | None) -> Tensor:
    """(N,) classes sampled from ``softmax(logits)`` (N, C) by inverting the CDF."""
    cdf = torch.softmax(logits.float(), -1).cumsum_(-1)
    u = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device)
    return (cdf < u).sum(-1).clamp_(max=logits.shape[-1] - 1)


def _check_fixed_horizon(dones: np.ndarray, horizon: int | None) -> None:
    """Raise unless every sub-env ended at the last of the (T, N) ``dones`` and not before."""
    ended = dones.any(1)
    if not (dones[-1].all() and not dones[:-1].any()):
        first = int(np.argmax(ended)) + 1
        raise RuntimeError(
            f"RAM training needs a fixed horizon: at step {first}, {int(dones[first - 1].sum())} "
            f"of {dones.shape[1]} sub-environments ended"
            + ("" if horizon is None else f" (the first batch ended at step {horizon})")
            + ". Every sub-environment must terminate (or truncate) at the same step."
        )


@torch.no_grad()
def collect_rollout(
    model: RecurrentAttentionModel,
    envs: VectorEnv,
    obs: Any,
    *,
    adapter: ObservationAdapter | None = None,
    std: float | None = None,
    generator: torch.Generator | None = None,
    sample_classes: bool = False,
    location_policy: LocationPolicy | None = None,
    first_episode: int = 0,
    horizon: int | None = None,
    compute_dtype: torch.dtype | None = None,
) -> tuple[Rollout, Any]:
    """Play one batch of episodes (one per sub-environment) from ``obs``, without autograd.

    Args:
        model: the agent.
        envs: the vector environment; ``obs`` must be the first observation of fresh
            episodes.
        obs: batched first observation.
        adapter: observation converter (built from ``envs`` when None).
        std: location std (default: the model's).
        generator: random generator of the location and class samples.
        sample_classes: sample the class from ``softmax(logits)`` (pure REINFORCE);
            otherwise name the argmax.
        location_policy: turns the model's proposals into the locations sent (default:
            :class:`~agents.locations.LearnedLocations`).
        first_episode: index of sub-env 0's episode (counter of the location policy).
        horizon: the episode length T when known: the loop then syncs with the host only
            at the end (torch backends). None: found from the episode ends.
        compute_dtype: ``torch.autocast`` dtype of the model's forward (None: float32).

    Returns:
        ``(rollout, next_obs)`` where ``next_obs`` is the observation returned by the
        terminal step (the start of the next episodes under SAME_STEP autoreset).

    Raises:
        RuntimeError: if the sub-environments do not all end at the same step.
    """
    device = next(model.parameters()).device
    adapter = adapter or ObservationAdapter(envs.single_observation_space, device)
    location_policy = location_policy or LearnedLocations()
    std = model.location_network.std if std is None else float(std)
    n = envs.num_envs
    episodes = np.arange(first_episode, first_episode + n)
    state: CoreState | None = None
    previous = torch.zeros(n, model.config.location_dim, device=device)
    glimpses: list[Tensor] = []
    locations: list[Tensor] = []
    samples: list[Tensor] = []
    rewards: list[Any] = []
    dones: list[Any] = []
    classes = torch.empty(0)
    info: dict[str, Any] = {}
    with autocast(device, compute_dtype):  # one context: the weights are cast once
        for step in range(horizon or MAX_EPISODE_STEPS):
            glimpse, location, env_device = adapter(obs)
            location = previous if location is None else location.clone()
            glimpses.append(glimpse)  # a new tensor (the adapter concatenates)
            locations.append(location)  # cloned: NumPy buffers are reused by the next step
            out = model.step(glimpse, location, state, std=std, generator=generator, scored=False)
            state = out.state
            samples.append(out.sample.float())
            logits = out.logits.float()
            classes = sample_class(logits, generator) if sample_classes else logits.argmax(-1)
            previous = location_policy(out.location.float(), episodes, step)
            action = pack_action(previous, class_scores(classes, model.n_classes, torch.float32))
            action = action.to(env_device) if env_device is not None else action.cpu().numpy()
            obs, reward, terminated, truncated, info = envs.step(action)
            rewards.append(reward)
            dones.append(terminated | truncated)
            if horizon is None and as_numpy(dones[-1]).any():
                break
    done = np.stack([as_numpy(d) for d in dones]).astype(bool)
    _check_fixed_horizon(done, horizon)
    rewards_t = torch.stack([torch.as_tensor(r) for r in rewards]).to(device, torch.float32)
    labels = final_info_value(info, "label")
    success = final_info_value(info, "is_success")
    rollout = Rollout(
        glimpses=torch.stack(glimpses),
        locations=torch.stack(locations),
        samples=torch.stack(samples),
        classes=classes,
        rewards=rewards_t,
        labels=None if labels is None else torch.as_tensor(labels.astype(np.int64), device=device),
        success=None if success is None else torch.as_tensor(success.astype(bool), device=device),
        std=std,
    )
    return rollout, obs
