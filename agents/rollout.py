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

Adaptive envs (``stop="action"``, for a model with a stop network) take one more action
component, the stop score, and each sub-environment ends at its own step (at the latest
after ``max_glimpses``). :func:`collect_adaptive_rollout` plays one episode per
sub-environment from fresh observations until every one has ended, reads each episode's
result from the (masked) ``info`` of its end step, and returns a :class:`Rollout` whose
``alive`` mask marks each episode's steps; whatever a sub-environment did after its end
(the next episode) is discarded (zeros).
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
from glimpse_env.play import as_numpy, final_info_value, gather_ends

__all__ = [
    "ObservationAdapter",
    "Rollout",
    "autocast",
    "autoreset_same_step",
    "collect_adaptive_rollout",
    "collect_rollout",
    "env_setting",
]

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
        alive: (T, N) bool, the steps of each episode (adaptive rollouts; None: all).
        stops: (T, N) float stop decisions (1.0 stop, 0.0 go on; adaptive rollouts).
        decided: (T, N) bool, the steps whose stop decision was the agent's choice (alive,
            and not an end the horizon or the env imposed; adaptive rollouts).
        glimpses_taken: (N,) int64 glimpses each episode took (adaptive rollouts).

    In an adaptive rollout every entry after an episode's end is zero, and ``classes``,
    ``labels`` and ``success`` are those of its end step.
    """

    glimpses: Tensor
    locations: Tensor
    samples: Tensor
    classes: Tensor
    rewards: Tensor
    labels: Tensor | None
    success: Tensor | None
    std: float
    alive: Tensor | None = None
    stops: Tensor | None = None
    decided: Tensor | None = None
    glimpses_taken: Tensor | None = None

    @property
    def horizon(self) -> int:
        """T, the number of steps of every episode (adaptive: of the longest)."""
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


def _autoreset_disabled(envs: VectorEnv) -> bool:
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return mode in (AutoresetMode.DISABLED, AutoresetMode.DISABLED.value)


def env_setting(envs: VectorEnv, name: str) -> Any:
    """A setting of a vector env's episodes (``stop``, ``glimpse_cost``, ``max_glimpses``):
    the attribute of the unwrapped vector env, or of its single-env ``task`` (the glimpse
    vector envs); None when neither has it."""
    env = envs.unwrapped
    for source in (env, getattr(env, "task", None)):
        if source is not None and hasattr(source, name):
            return getattr(source, name)
    return None


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


@torch.no_grad()
def collect_adaptive_rollout(
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
    max_steps: int | None = None,
    compute_dtype: torch.dtype | None = None,
    send_stop: bool = True,
) -> Rollout:
    """Play one episode per sub-environment of an adaptive env, each until it stops.

    The model (with a stop network) sends ``[location, class scores, stop score]`` (stop
    score +1 to stop, -1 to go on; stop decisions sampled from its Bernoulli policy, the
    same generator as the locations). Each sub-environment's end step is where it reports
    ``terminated | truncated`` first; its ``label``, ``is_success`` and ``glimpses`` come
    from the masked ``info`` of that step (``info["final_info"]`` under same-step
    autoreset). The envs step until every episode has ended (at most ``max_steps`` times);
    under ``DISABLED`` autoreset the ended sub-environments are reset with a
    ``reset_mask`` so that the others can go on. What a sub-environment did after its end
    is discarded: the returned entries there are zeros and ``alive`` is False.

    Args:
        model: the agent (``model.stop_network`` is not None).
        envs: the vector environment; ``obs`` must be the first observation of fresh
            episodes in every sub-environment (e.g. from ``envs.reset()``).
        obs: batched first observation.
        adapter: observation converter (built from ``envs`` when None).
        std: location std (default: the model's).
        generator: random generator of the location, stop and class samples.
        sample_classes: sample the class from ``softmax(logits)`` (pure REINFORCE);
            otherwise name the argmax.
        location_policy: turns the model's proposals into the locations sent (default:
            :class:`~agents.locations.LearnedLocations`).
        first_episode: index of sub-env 0's episode (counter of the location policy).
        max_steps: the most steps an episode takes (default: the env's ``max_glimpses``):
            a stop there is the horizon's, not the agent's decision.
        compute_dtype: ``torch.autocast`` dtype of the model's forward (None: float32).
        send_stop: send the model's stop decisions; False: send "go on" (-1) at every step,
            so that every episode takes all ``max_glimpses`` glimpses (the decisions are
            still drawn and recorded; the expected-return objective scores them).

    Returns:
        The :class:`Rollout`, with ``alive``, ``stops``, ``decided`` and ``glimpses_taken``; the
        envs are left mid-episode (reset them before the next batch).

    Raises:
        ValueError: if the model has no stop network.
        RuntimeError: if an episode has not ended after ``max_steps`` steps, or the env's
            ``glimpses`` disagree with the steps played.
    """
    if model.stop_network is None:
        raise ValueError("an adaptive rollout needs a model with a stop network (stop=True)")
    device = next(model.parameters()).device
    adapter = adapter or ObservationAdapter(envs.single_observation_space, device)
    location_policy = location_policy or LearnedLocations()
    std = model.location_network.std if std is None else float(std)
    horizon = max_steps or env_setting(envs, "max_glimpses")
    disabled = _autoreset_disabled(envs)
    n = envs.num_envs
    episodes = np.arange(first_episode, first_episode + n)
    state: CoreState | None = None
    previous = torch.zeros(n, model.config.location_dim, device=device)
    frames: dict[str, list[Tensor]] = {k: [] for k in ("glimpse", "location", "sample", "stop")}
    classes: list[Tensor] = []
    rewards: list[Any] = []
    ended = np.zeros(n, dtype=bool)
    end_step = np.zeros(n, dtype=np.int64)
    ends: dict[str, np.ndarray] = {}  # each episode's end info (label, is_success, glimpses)
    with autocast(device, compute_dtype):
        for step in range(horizon or MAX_EPISODE_STEPS):
            glimpse, location, env_device = adapter(obs)
            location = previous if location is None else location.clone()
            out = model.step(glimpse, location, state, std=std, generator=generator, scored=False)
            assert out.stop is not None
            state = out.state
            for key, value in zip(frames, (glimpse, location, out.sample.float(), out.stop)):
                frames[key].append(value)
            logits = out.logits.float()
            named = sample_class(logits, generator) if sample_classes else logits.argmax(-1)
            classes.append(named)
            previous = location_policy(out.location.float(), episodes, step)
            scores = class_scores(named, model.n_classes, torch.float32)
            stop = out.stop * 2.0 - 1.0 if send_stop else torch.full_like(out.stop, -1.0)
            action = pack_action(previous, scores, stop=stop)
            action = action.to(env_device) if env_device is not None else action.cpu().numpy()
            obs, reward, terminated, truncated, info = envs.step(action)
            rewards.append(reward)
            done = as_numpy(terminated).astype(bool) | as_numpy(truncated).astype(bool)
            new = done & ~ended
            if new.any():
                end_step[new] = step
                gather_ends(ends, info, new)
                ended |= new
            if ended.all():
                break
            if disabled and done.any():
                obs, _ = envs.reset(options={"reset_mask": done})
    if not ended.all():
        raise RuntimeError(
            f"{int((~ended).sum())} of {n} episodes did not end within {step + 1} steps; an "
            "adaptive env ends every episode after at most max_glimpses steps"
        )
    steps = len(rewards)
    end = torch.as_tensor(end_step, device=device)
    alive = torch.arange(steps, device=device)[:, None] <= end[None, :]  # (T, N)
    stacked = {k: torch.stack(v) for k, v in frames.items()}
    zero = torch.zeros((), device=device)
    kept = {
        k: torch.where(alive.view(*alive.shape, *[1] * (v.dim() - 2)), v, zero)
        for k, v in stacked.items()
    }
    rewards_t = torch.stack([torch.as_tensor(r) for r in rewards]).to(device, torch.float32)
    rewards_t = torch.where(alive, rewards_t, zero)
    is_end = torch.arange(steps, device=device)[:, None] == end[None, :]
    sent = kept["stop"] if send_stop else torch.zeros_like(kept["stop"])
    forced = is_end & (sent == 0)  # ended without the agent's stop: not its choice
    if horizon:
        forced |= is_end & (end[None, :] >= horizon - 1)

    def reported(key: str) -> np.ndarray | None:
        """``ends[key]`` where every episode reported it, else None."""
        mask = ends.get(f"_{key}")
        return ends[key] if mask is not None and mask.all() else None

    glimpses = reported("glimpses")
    if glimpses is not None and not np.array_equal(glimpses, end_step + 1):
        raise RuntimeError(
            f"the env reports {glimpses.tolist()} glimpses, the rollout played "
            f"{(end_step + 1).tolist()} steps"
        )

    def result(key: str, dtype: torch.dtype) -> Tensor | None:
        value = reported(key)
        return None if value is None else torch.as_tensor(value, device=device).to(dtype)

    return Rollout(
        glimpses=kept["glimpse"],
        locations=kept["location"],
        samples=kept["sample"],
        classes=torch.stack(classes).gather(0, end.view(1, -1)).squeeze(0),
        rewards=rewards_t,
        labels=result("label", torch.int64),
        success=result("is_success", torch.bool),
        std=std,
        alive=alive,
        stops=kept["stop"],
        decided=alive & ~forced,
        glimpses_taken=end + 1,
    )
