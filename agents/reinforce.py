"""Training the Recurrent Attention Model with REINFORCE (and the paper's hybrid loss).

The agent talks to environments only through the Gymnasium vector API
(:class:`gymnasium.vector.VectorEnv`). Environment contract (the glimpse environments and
the tests' memory environment follow it):

* ``reset`` returns the observation of glimpse 1; the action at step t is chosen after
  glimpses 1..t.
* Observations: a ``Box`` or a ``Dict`` of ``Box``; every key but ``location`` is glimpse
  input (flattened); ``location`` (optional) is where the glimpse was taken. Numpy arrays
  or torch tensors (a torch backend takes torch actions on its device).
* Actions: ``Box(-1, 1, (2 + C,))``: the next glimpse location (x, y), then C class
  scores: +1 for the chosen class and -1 for the others.
* Fixed horizon: every sub-environment terminates (or truncates) at the same step T; the
  class scores of that step are judged (reward 1 if right, else 0, others 0). The final
  ``info`` has ``label``, ``prediction`` and ``is_success`` (with ``_label`` etc. masks),
  directly or under ``final_info``.
* ``SAME_STEP`` autoreset: the observation returned by the terminal step already starts
  the next episode, so the trainer never resets between batches (it does reset before
  each batch for other autoreset modes).

Losses (:func:`hybrid_loss`, :func:`reinforce_loss`) are pure functions of tensors;
:class:`ReinforceTrainer` collects batches, updates, evaluates and checkpoints.

Gradient routing in hybrid mode (the paper): cross-entropy on the final logits trains the
action, core and glimpse networks; REINFORCE with the detached advantage ``R - b_t`` trains
the location network (which reads a detached ``h_t``, so REINFORCE reaches nothing else);
the baseline learns by squared error to ``R``. In pure REINFORCE mode the class is
sampled from ``softmax(logits)`` and its log-probability receives the REINFORCE term
too: that is what trains the action, core and glimpse networks there.

The location emitted at the final step T is never observed (the episode ends), so its
log-probability is excluded from the REINFORCE term: it cannot affect the reward and
would only add noise (and a spurious gradient on the location network).

Random-glimpse ablation (``location_policy="random"``, the paper's "RAM, 8 random
glimpses" rows): every location sent to the environment is drawn uniformly in
``[-1, 1]^2`` from the trainer's seeded generator instead of the location network; the
classifier, core and glimpse networks (and the baseline) train as usual, the location
network gets no gradient and is never updated. Evaluation then uses the same random
policy: "deterministic" means a fixed seeded draw (:func:`evaluate` reseeds it from its
``seed``; :class:`RandomLocationPolicy` makes location ``t`` of image ``i`` a pure
function of ``(seed, i, t)``, see :func:`random_locations`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from agents.ram import (
    LOCATION_KEY,
    CoreState,
    RAMConfig,
    RecurrentAttentionModel,
    RolloutTape,
)

__all__ = [
    "LOCATION_POLICIES",
    "LOCATION_REWARDS",
    "LossOutput",
    "RandomLocationPolicy",
    "ReinforceConfig",
    "ReinforceTrainer",
    "Rollout",
    "collect_rollout",
    "evaluate",
    "expected_class_reward",
    "hybrid_loss",
    "random_locations",
    "reinforce_loss",
]

#: Safety cap on the episode length while the horizon is still unknown.
_MAX_EPISODE_STEPS = 10_000

#: Where the glimpse locations come from: the location network (``"learned"``, the
#: paper's RAM) or uniform random draws (``"random"``, the paper's random-glimpse rows).
LOCATION_POLICIES: tuple[str, ...] = ("learned", "random")


def _check_location_policy(location_policy: str) -> bool:
    """Whether ``location_policy`` is ``"random"`` (raises on an unknown value)."""
    if location_policy not in LOCATION_POLICIES:
        raise ValueError(
            f"location_policy must be one of {LOCATION_POLICIES}, got {location_policy!r}"
        )
    return location_policy == "random"


def _seeded_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


@dataclass
class LossOutput:
    """Total loss and its components (scalar tensors; components kept for logging).

    Attributes:
        total: the loss to minimise.
        action_loss: cross-entropy of the final logits (0 in pure REINFORCE mode).
        reinforce_loss: REINFORCE term ``-mean_n sum_t log pi(a_t) (R_t - b_t)``.
        baseline_loss: mean squared error of the baselines to the returns.
    """

    total: Tensor
    action_loss: Tensor
    reinforce_loss: Tensor
    baseline_loss: Tensor


def _returns(rewards: Tensor, horizon: int) -> Tensor:
    """Per-step returns ``R_t`` (T, N) from (N,) episode returns or (T, N) rewards.

    Args:
        rewards: (N,) episode return R (used at every step), or (T, N) per-step rewards
            (then ``R_t`` is the reward-to-go ``sum_{s >= t} r_s``: the action at step t
            is chosen before reward t arrives).
        horizon: T.

    Returns:
        (T, N) float returns.
    """
    if rewards.dim() == 1:
        return rewards.unsqueeze(0).expand(horizon, -1)
    if rewards.shape[0] != horizon:
        raise ValueError(f"rewards {tuple(rewards.shape)} do not match horizon {horizon}")
    return rewards.flip(0).cumsum(0).flip(0)


def _location_terms(
    location_log_probs: Tensor, baselines: Tensor, rewards: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Shared part of both losses.

    Args:
        location_log_probs: (T, N) log pi(l_t | s_1..t).
        baselines: (T, N) b_t.
        rewards: (N,) returns or (T, N) rewards.

    Returns:
        ``(per_episode_location_term (N,), advantage (T, N) detached, baseline_mse)``.
    """
    if location_log_probs.dim() != 2 or baselines.shape != location_log_probs.shape:
        raise ValueError(
            f"location_log_probs {tuple(location_log_probs.shape)} and baselines "
            f"{tuple(baselines.shape)} must both be (T, N)"
        )
    returns = _returns(rewards.to(baselines.dtype), baselines.shape[0])
    advantage = (returns - baselines).detach()
    # The location sampled at the final step is never looked at: leave it out.
    location_term = -(location_log_probs[:-1] * advantage[:-1]).sum(0)
    baseline_mse = F.mse_loss(baselines, returns)
    return location_term, advantage, baseline_mse


def hybrid_loss(
    location_log_probs: Tensor,
    baselines: Tensor,
    logits: Tensor,
    rewards: Tensor,
    labels: Tensor,
    *,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
) -> LossOutput:
    """The paper's hybrid loss: cross-entropy + REINFORCE (locations) + baseline MSE.

    ``total = CE(logits, labels)
    + reinforce_weight * mean_n [-sum_{t<T} log pi(l_t) (R - b_t).detach()]
    + baseline_weight * mean_{t,n} (b_t - R)^2``.

    The final step's location log-prob (row T-1) is excluded: that location is never
    observed.

    Args:
        location_log_probs: (T, N) log-probabilities of the sampled locations.
        baselines: (T, N) baselines b_t.
        logits: (N, C) class logits of the final step.
        rewards: (N,) episode returns R, or (T, N) per-step rewards.
        labels: (N,) integer class labels.
        reinforce_weight: weight of the REINFORCE term.
        baseline_weight: weight of the baseline MSE.

    Returns:
        The :class:`LossOutput`.
    """
    location_term, _, baseline_mse = _location_terms(location_log_probs, baselines, rewards)
    reinforce = location_term.mean()
    action = F.cross_entropy(logits, labels.long())
    total = action + reinforce_weight * reinforce + baseline_weight * baseline_mse
    return LossOutput(total, action, reinforce, baseline_mse)


def reinforce_loss(
    location_log_probs: Tensor,
    baselines: Tensor,
    rewards: Tensor,
    class_log_probs: Tensor,
    *,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
) -> LossOutput:
    """Pure REINFORCE: the sampled class is an action like the locations.

    ``total = reinforce_weight * mean_n [-sum_{t<T} log pi(l_t) (R - b_t).detach()
    - log pi(c) (R - b_T).detach()] + baseline_weight * mean_{t,n} (b_t - R)^2``,
    where c is the class sampled from ``softmax(logits_T)`` and judged at step T.

    Args:
        location_log_probs: (T, N) log-probabilities of the sampled locations.
        baselines: (T, N) baselines b_t.
        rewards: (N,) episode returns R, or (T, N) per-step rewards.
        class_log_probs: (N,) log-probability of the sampled (judged) class.
        reinforce_weight: weight of the REINFORCE term.
        baseline_weight: weight of the baseline MSE.

    Returns:
        The :class:`LossOutput` (``action_loss`` is 0).
    """
    location_term, advantage, baseline_mse = _location_terms(location_log_probs, baselines, rewards)
    reinforce = (location_term - class_log_probs * advantage[-1]).mean()
    total = reinforce_weight * reinforce + baseline_weight * baseline_mse
    return LossOutput(total, torch.zeros_like(total), reinforce, baseline_mse)


def expected_class_reward(logits: Tensor, labels: Tensor) -> Tensor:
    """``softmax(logits)[label]``: the expected 0/1 reward of a class drawn from the scores.

    The location network's return with ``location_reward="expected"``. Given the glimpses
    (so the final ``h_T``), a class sampled from ``softmax(logits_T)`` is right with exactly
    this probability: averaging the 0/1 reward over the class draw analytically leaves the
    policy gradient of the locations unbiased for that stochastic-class objective and
    removes the class draw's share of its variance (a glimpse that makes the true class
    likelier is credited even when the argmax does not change). Detached.

    Args:
        logits: (N, C) final class logits.
        labels: (N,) integer labels.

    Returns:
        (N,) float32 probabilities of the true classes.
    """
    probs = torch.softmax(logits.detach().float(), dim=-1)
    return probs.gather(1, labels.long().view(-1, 1)).squeeze(1)


# --------------------------------------------------------------------------------------
# Rollouts
# --------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """Tensors collected over one batch of N episodes of horizon T.

    Attributes:
        location_log_probs: (T, N) log pi(l_t) of the emitted locations.
        baselines: (T, N) b_t.
        logits: (N, C) class logits of the final (judged) step.
        class_log_probs: (N,) log pi of the emitted class at the final step (meaningful
            when it was sampled).
        predictions: (N,) class emitted at the final step.
        rewards: (T, N) rewards (float32, on the model's device).
        labels: (N,) labels from the final ``info``, or None when not (all) present.
        success: (N,) bool ``is_success`` from the final ``info``, or None.
    """

    location_log_probs: Tensor
    baselines: Tensor
    logits: Tensor
    class_log_probs: Tensor
    predictions: Tensor
    rewards: Tensor
    labels: Tensor | None
    success: Tensor | None

    @property
    def horizon(self) -> int:
        """T, the number of steps of every episode."""
        return self.rewards.shape[0]

    @property
    def returns(self) -> Tensor:
        """(N,) episode returns."""
        return self.rewards.sum(0)


class _ObservationAdapter:
    """Turns batched observations (numpy or torch) into model inputs, actions back."""

    def __init__(self, observation_space: gym.Space, device: torch.device) -> None:
        if isinstance(observation_space, gym.spaces.Dict):
            self.keys: list[str] | None = [k for k in observation_space.spaces if k != LOCATION_KEY]
            self.has_location = LOCATION_KEY in observation_space.spaces
        else:
            self.keys = None
            self.has_location = False
        self.device = device

    def _tensor(self, x: Any) -> tuple[Tensor, bool]:
        """(N, ...) array -> float32 tensor on the device, and whether it may alias numpy."""
        if isinstance(x, Tensor):
            return x.to(self.device, torch.float32, non_blocking=True), False
        source = torch.from_numpy(np.ascontiguousarray(x))
        out = source.to(self.device, torch.float32)
        return out, out.data_ptr() == source.data_ptr()

    def _owned(self, x: Any) -> Tensor:
        """Like :meth:`_tensor`, but never aliasing a numpy buffer.

        Autograd saves the inputs of the first Linear layers for the backward pass; an
        environment that writes the next observation into the same numpy buffer would
        silently corrupt them, so a zero-copy view of numpy memory is copied once (a few
        kB per step).
        """
        t, aliased = self._tensor(x)
        return t.clone() if aliased else t

    def __call__(
        self, obs: Any, owned: bool = True
    ) -> tuple[Tensor, Tensor | None, torch.device | None]:
        """Split an observation batch.

        Args:
            obs: batched observation (dict of arrays/tensors, or one array/tensor).
            owned: never return a view of a numpy buffer (False: the caller copies the
                tensors before the next env step, as a :class:`RolloutTape` does).

        Returns:
            ``(glimpse (N, D), location (N, L) or None, env_device)`` where
            ``env_device`` is the device of torch observations (None for numpy).
        """
        convert = self._owned if owned else lambda x: self._tensor(x)[0]
        if self.keys is None:
            first = obs
            glimpse = convert(obs).flatten(1)
            location = None
        else:
            first = obs[self.keys[0]]
            if len(self.keys) == 1:
                glimpse = convert(first).flatten(1)
            else:  # torch.cat copies: no aliasing possible.
                glimpse = torch.cat([self._tensor(obs[k])[0].flatten(1) for k in self.keys], 1)
            location = convert(obs[LOCATION_KEY]) if self.has_location else None
        return glimpse, location, first.device if isinstance(first, Tensor) else None


def _to_env_action(action: Tensor, env_device: torch.device | None) -> Any:
    """Model action (N, L + C) -> what the environment takes (numpy, or torch on its device)."""
    if env_device is not None:
        return action.to(env_device, non_blocking=True)
    return action.cpu().numpy()


def _as_numpy(x: Any) -> np.ndarray:
    """Array-like (numpy or torch) -> numpy."""
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _final_info_value(info: Mapping[str, Any], key: str) -> np.ndarray | None:
    """``info[key]`` of a terminal step where every sub-env has it, else None.

    Looks in ``info`` and, for Gymnasium's wrapper vector envs, in ``info["final_info"]``.
    """
    for source in (info, info.get("final_info")):
        if isinstance(source, Mapping) and key in source:
            mask = source.get(f"_{key}")
            if mask is not None and not bool(np.all(_as_numpy(mask))):
                continue  # not set here (e.g. the same-step autoreset reports final_info)
            return _as_numpy(source[key])
    return None


@torch.no_grad()
def _sample_class(logits: Tensor, generator: torch.Generator | None) -> Tensor:
    """(N,) classes sampled from ``softmax(logits)`` (N, C) by inverting the CDF."""
    cdf = torch.softmax(logits, -1).cumsum_(-1)
    u = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device)
    return (cdf < u).sum(-1).clamp_(max=logits.shape[-1] - 1)


def _check_fixed_horizon(done: np.ndarray, step: int) -> None:
    """Raise if some but not all sub-environments finished at ``step``."""
    if done.any() and not done.all():
        raise RuntimeError(
            f"RAM training needs a fixed horizon: at step {step + 1}, {int(done.sum())} of "
            f"{done.size} sub-environments ended and the others did not. Every "
            "sub-environment must terminate (or truncate) at the same step."
        )


def collect_rollout(
    model: RecurrentAttentionModel,
    envs: VectorEnv,
    obs: Any,
    *,
    adapter: _ObservationAdapter | None = None,
    deterministic: bool = False,
    sample_class: bool = False,
    std: float | None = None,
    generator: torch.Generator | None = None,
    horizon: int | None = None,
    use_tape: bool = True,
    compute_dtype: torch.dtype | None = None,
    location_policy: str = "learned",
    tape: RolloutTape | None = None,
) -> tuple[Rollout, Any]:
    """Play one batch of episodes (one per sub-environment) from ``obs``.

    Gradients are recorded unless called under :func:`torch.no_grad`. With ``use_tape``
    (and the model's RNN core), the steps run without autograd and record a
    :class:`~agents.ram.RolloutTape`, replayed once at the end: same values and
    gradients, but the backward pass is batched over time (much less per-step overhead).

    Args:
        model: the agent.
        envs: the vector environment; ``obs`` must be the first observation of fresh
            episodes.
        obs: batched first observation.
        adapter: observation converter (built from ``envs`` when None).
        deterministic: use the mean locations.
        sample_class: sample the class from ``softmax(logits)`` (pure REINFORCE);
            otherwise emit the argmax.
        std: location std (default: the model's).
        generator: random generator for the location and class samples.
        horizon: known episode length T; the fixed-horizon check then runs once after
            the loop (no per-step host sync for torch backends). None: detect it.
        use_tape: record a tape instead of an autograd graph when gradients are on and
            the model supports it.
        compute_dtype: dtype of the tape's glimpse and core products (None: the
            parameters'; see :class:`~agents.ram.RolloutTape`).
        location_policy: ``"learned"`` (the location network) or ``"random"``: every
            location sent to the env is uniform in ``[-1, 1]^L``, drawn from
            ``generator``; the location network still runs (at its mean, no sample
            drawn) but its outputs are not used, and the rollout's
            ``location_log_probs`` are then meaningless (the trainer zeroes them).
        tape: the tape to record on when one is used (:meth:`RolloutTape.reset` first,
            so its storage is reused once the previous replay was backpropagated); None:
            a new one.

    Returns:
        ``(rollout, next_obs)`` where ``next_obs`` is the observation returned by the
        terminal step (the start of the next episodes under SAME_STEP autoreset).

    Raises:
        RuntimeError: if the sub-environments do not all end at the same step.
    """
    param = next(model.parameters())
    device = param.device
    random_policy = _check_location_policy(location_policy)
    if adapter is None:
        adapter = _ObservationAdapter(envs.single_observation_space, device)
    n = envs.num_envs
    n_classes = model.n_classes
    state: CoreState | None = None  # zero initial state
    previous_location = torch.zeros(n, model.config.location_dim, device=device)
    score_rows = 2.0 * torch.eye(n_classes, device=device) - 1.0  # row c: the scores naming c
    log_probs: list[Tensor] = []
    baselines: list[Tensor] = []
    rewards: list[Any] = []
    dones: list[Any] = []
    step = 0
    info: dict[str, Any] = {}
    env_device: torch.device | None = None
    logits = chosen = torch.empty(0)
    max_steps = horizon if horizon is not None else _MAX_EPISODE_STEPS
    if not (use_tape and torch.is_grad_enabled() and model.supports_tape):
        tape = None
    elif tape is None:
        tape = RolloutTape(horizon, compute_dtype)
    else:
        tape.reset(horizon, compute_dtype)
    while step < max_steps:
        glimpse, location, env_device = adapter(obs, owned=tape is None)
        if location is None:
            location = previous_location
        out = model.step(
            glimpse,
            location,
            state,
            deterministic=deterministic or random_policy,
            std=std,
            generator=generator,
            tape=tape,
        )
        state = out.state
        logits = out.logits
        chosen = _sample_class(logits, generator) if sample_class else logits.detach().argmax(-1)
        scores = score_rows.index_select(0, chosen)  # +1 for the chosen class, -1 elsewhere
        next_location = out.location
        if random_policy:  # uniform in [-1, 1]^L, from the (seeded) generator
            u = torch.rand(
                next_location.shape, generator=generator, device=device, dtype=torch.float32
            )
            next_location = u.mul_(2.0).sub_(1.0).to(next_location.dtype)
        action = torch.cat([next_location, scores], 1)
        previous_location = next_location
        obs, reward, terminated, truncated, info = envs.step(_to_env_action(action, env_device))
        if tape is None:  # a tape's replay gives them
            assert out.location_log_prob is not None
            log_probs.append(out.location_log_prob)
            baselines.append(out.baseline)
        rewards.append(reward)
        step += 1
        if horizon is None:
            done = _as_numpy(terminated) | _as_numpy(truncated)
            _check_fixed_horizon(done, step - 1)
            if done.all():
                break
        else:
            dones.append(terminated | truncated)
    else:
        if horizon is None:
            raise RuntimeError(f"episodes did not end within {_MAX_EPISODE_STEPS} steps")
    if horizon is not None:
        done_all = np.stack([_as_numpy(d) for d in dones]).astype(bool)
        for t in range(horizon):
            _check_fixed_horizon(done_all[t], t)
        if done_all[:-1].any() or not done_all[-1].all():
            raise RuntimeError(
                "RAM training needs a fixed horizon: the episodes of this batch did not "
                f"end at step {horizon} like the first batch's."
            )

    if env_device is not None:
        reward_t = torch.stack([torch.as_tensor(r) for r in rewards]).to(device, torch.float32)
    else:
        reward_t = torch.from_numpy(np.stack(rewards).astype(np.float32, copy=False)).to(device)
    labels = _final_info_value(info, "label")
    success = _final_info_value(info, "is_success")
    if tape is not None:
        replayed = model.replay(tape)
        location_log_probs, baselines_t = replayed.location_log_probs, replayed.baselines
        logits = replayed.logits
    else:
        location_log_probs, baselines_t = torch.stack(log_probs), torch.stack(baselines)
    class_log_probs = torch.log_softmax(logits, -1).gather(1, chosen.unsqueeze(1)).squeeze(1)
    rollout = Rollout(
        location_log_probs=location_log_probs,
        baselines=baselines_t,
        logits=logits,
        class_log_probs=class_log_probs,
        predictions=chosen,
        rewards=reward_t,
        labels=None if labels is None else torch.from_numpy(labels.astype(np.int64)).to(device),
        success=None if success is None else torch.from_numpy(success.astype(bool)).to(device),
    )
    return rollout, obs


def _autoreset_same_step(envs: VectorEnv) -> bool:
    """Whether ``envs`` autoresets in the terminal step itself."""
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return mode == AutoresetMode.SAME_STEP or mode == AutoresetMode.SAME_STEP.value


@torch.no_grad()
def _run_episodes(
    model: RecurrentAttentionModel,
    envs: VectorEnv,
    obs: Any,
    n_episodes: int,
    *,
    deterministic: bool,
    std: float | None,
    generator: torch.Generator | None,
    location_policy: str = "learned",
) -> tuple[dict[str, float], Any]:
    """Play at least ``n_episodes`` episodes from ``obs``; score the first ``n_episodes``."""
    adapter = _ObservationAdapter(envs.single_observation_space, next(model.parameters()).device)
    same_step = _autoreset_same_step(envs)
    correct: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    played = 0
    horizon = 0
    while played < n_episodes:
        if obs is None or (played > 0 and not same_step):
            obs, _ = envs.reset()
        rollout, obs = collect_rollout(
            model,
            envs,
            obs,
            adapter=adapter,
            deterministic=deterministic,
            std=std,
            generator=generator,
            location_policy=location_policy,
        )
        horizon = rollout.horizon
        ret = rollout.returns.cpu().numpy()
        if rollout.success is not None:
            ok = rollout.success.cpu().numpy()
        elif rollout.labels is not None:
            ok = (rollout.predictions == rollout.labels).cpu().numpy()
        else:
            ok = ret > 0.5
        correct.append(ok)
        returns.append(ret)
        played += len(ret)
    ok_all = np.concatenate(correct)[:n_episodes]
    accuracy = float(ok_all.mean())
    metrics = {
        "accuracy": accuracy,
        "error_rate": 1.0 - accuracy,
        "mean_return": float(np.concatenate(returns)[:n_episodes].mean()),
        "n_episodes": float(n_episodes),
        "horizon": float(horizon),
        "deterministic": float(deterministic),
    }
    return metrics, obs


def evaluate(
    model: RecurrentAttentionModel,
    envs: VectorEnv,
    n_episodes: int,
    deterministic: bool = True,
    *,
    seed: int | None = None,
    std: float | None = None,
    generator: torch.Generator | None = None,
    location_policy: str = "learned",
) -> dict[str, float]:
    """Accuracy from one rollout per episode (never averaged over repeated rollouts).

    Resets ``envs`` (with ``seed``) and plays ``ceil(n_episodes / num_envs)`` batches;
    the class is the argmax of the final logits.

    Args:
        model: the agent.
        envs: vector environment (e.g. on the test split).
        n_episodes: episodes to score.
        deterministic: glimpse at the mean locations; otherwise one stochastic rollout
            per episode with the location std ``std``.
        seed: reset seed.
        std: location std for stochastic rollouts (default: the model's).
        generator: random generator for stochastic rollouts.
        location_policy: ``"learned"`` or ``"random"`` (uniform locations, see
            :func:`collect_rollout`). With ``"random"`` and ``deterministic``, the
            locations come from a fresh generator seeded with ``seed`` (0 when None),
            not from ``generator``: a fixed seeded draw, the same on every call.

    Returns:
        ``accuracy``, ``error_rate``, ``mean_return``, ``n_episodes``, ``horizon``,
        ``deterministic`` (1.0 or 0.0).
    """
    if _check_location_policy(location_policy) and deterministic:
        generator = _seeded_generator(next(model.parameters()).device, seed or 0)
    was_training = model.training
    model.eval()
    try:
        obs, _ = envs.reset(seed=seed)
        metrics, _ = _run_episodes(
            model,
            envs,
            obs,
            n_episodes,
            deterministic=deterministic,
            std=std,
            generator=generator,
            location_policy=location_policy,
        )
    finally:
        model.train(was_training)
    return metrics


_GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(_GOLDEN_GAMMA)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_locations(
    seed: int, episodes: Any, step: int, dim: int = 2, stream: int = 0
) -> np.ndarray:
    """Uniform locations in ``[-1, 1)^dim``, a pure function of ``(seed, stream, episode, step)``.

    Counter-based (a SplitMix64 hash of the indices), so the location of episode ``i`` at
    step ``t`` does not depend on how episodes are batched: evaluating with 500 or 1000
    envs at a time gives the same glimpses.

    Args:
        seed: the policy's seed.
        episodes: (N,) non-negative episode indices (e.g. image indices of a split).
        step: step index t (0: the location chosen after the first glimpse).
        dim: location dimension L.
        stream: independent stream (e.g. 0 for deterministic, 1 for sampled evaluation).

    Returns:
        (N, dim) float32 array.
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([int(seed) & (2**64 - 1)], dtype=np.uint64))
        key = _splitmix64(key ^ np.uint64(int(stream) & (2**64 - 1)))
        key = _splitmix64(key ^ np.uint64(int(step) & (2**64 - 1)))
        ep = np.asarray(episodes, dtype=np.int64).astype(np.uint64).reshape(-1, 1)
        h = _splitmix64(key ^ ep)
        h = _splitmix64(h ^ np.arange(dim, dtype=np.uint64).reshape(1, -1))
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (2.0 * u - 1.0).astype(np.float32)


class RandomLocationPolicy:
    """Wraps an :class:`agents.policy.Policy`: its classes, but uniformly random locations.

    Every location it emits is :func:`random_locations` of ``(seed, episode, step)``,
    where the episode index counts the episodes this wrapper has started, in the order
    of :meth:`initial_state` calls (for :func:`agents.policy.evaluate_policy`, which
    visits a split in order, the episode index is the image index). Deterministic mode
    uses stream 0 and sampled mode stream 1: both are fixed seeded draws, reproducible
    and independent of the batch size. Use one wrapper per evaluation (or :meth:`reset`).
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
        loc = random_locations(self.seed, episodes, step, stream=0 if deterministic else 1)
        if isinstance(action, Tensor):
            action = action.clone()
            action[:, : loc.shape[1]] = torch.as_tensor(
                loc, dtype=action.dtype, device=action.device
            )
        else:
            action = np.array(action, dtype=np.float32, copy=True)
            action[:, : loc.shape[1]] = loc
        return action, (episodes, step + 1, inner)


# --------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------


@dataclass
class ReinforceConfig:
    """Options of :class:`ReinforceTrainer`."""

    model: RAMConfig = field(default_factory=RAMConfig)
    """Model sizes and options (``model.location_std`` is the default std)."""

    total_iterations: int = 10_000
    """Length of the run in iterations (batches); the schedules anneal over it."""

    optimizer: Literal["adam", "sgd"] = "adam"
    """``"adam"`` or ``"sgd"`` (with ``momentum``, as in the paper)."""

    lr: float = 3e-4
    """Initial learning rate."""

    momentum: float = 0.9
    """SGD momentum (ignored by Adam)."""

    weight_decay: float = 0.0
    """L2 weight decay."""

    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    """Learning-rate schedule: constant, or linear / cosine anneal to 0 at
    ``total_iterations`` (the paper anneals linearly)."""

    std_start: float | None = None
    """Location std at the start (None: ``model.location_std``)."""

    std_end: float | None = None
    """Location std at ``total_iterations``, linearly annealed (None: constant)."""

    hybrid: bool = True
    """Use the hybrid loss (cross-entropy) when the final ``info`` carries ``label``;
    otherwise (or when no labels arrive) pure REINFORCE with a sampled class."""

    location_reward: Literal["env", "expected"] = "env"
    """Return of the location network's REINFORCE term under the hybrid loss: ``"env"``
    the env's reward (the paper: 1 if the judged class is right, else 0); ``"expected"``
    the probability the final scores give the true class (:func:`expected_class_reward`,
    the 0/1 reward averaged over a class drawn from the scores; needs the label, so only
    with the hybrid loss). The baseline learns to predict the return used."""

    location_policy: Literal["learned", "random"] = "learned"
    """``"learned"``: the location network picks the glimpses (RAM). ``"random"``: the
    random-glimpse ablation: locations uniform in ``[-1, 1]^2`` from the trainer's seeded
    generator, the location network gets no gradient (never updated), everything else
    trains as usual; deterministic evaluation is a fixed seeded random draw."""

    reinforce_weight: float = 1.0
    """Weight of the REINFORCE term."""

    baseline_weight: float = 1.0
    """Weight of the baseline's squared error."""

    max_grad_norm: float | None = None
    """Clip the global gradient norm (None: no clipping)."""

    fast_backward: bool = True
    """Record a :class:`~agents.ram.RolloutTape` and backpropagate through time in
    batched matrix products (RNN core only; same gradients as plain autograd)."""

    precision: Literal["float32", "bfloat16"] = "float32"
    """Compute dtype of the glimpse and core networks during training (with
    ``fast_backward``): ``"bfloat16"`` runs their forward and backward matrix products in
    bfloat16 from float32 master weights (gradients, heads, optimiser and evaluation stay
    float32); about halves their cost on CPUs with native bfloat16 (AVX512-BF16, AMX)
    and on GPUs, but is slower where bfloat16 is emulated."""

    seed: int = 0
    """Seeds the model initialisation, the sampling generator and the first env reset."""


#: Values of :attr:`ReinforceConfig.location_reward`.
LOCATION_REWARDS: tuple[str, ...] = ("env", "expected")

#: ``ReinforceConfig.precision`` -> the tape's compute dtype.
_COMPUTE_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


def _derived_seed(*values: int) -> int:
    """A 31-bit seed derived from integers."""
    return int(np.random.SeedSequence(list(values)).generate_state(1)[0] & 0x7FFFFFFF)


class ReinforceTrainer:
    """Trains a :class:`RecurrentAttentionModel` on a Gymnasium vector environment.

    One :meth:`train_iteration` plays one episode per sub-environment (a batch of
    ``envs.num_envs`` episodes), then takes one optimiser step. The model is sized from
    ``envs.single_observation_space`` / ``single_action_space``.
    """

    def __init__(
        self,
        envs: VectorEnv,
        config: ReinforceConfig | None = None,
        device: torch.device | str = "cpu",
        model: RecurrentAttentionModel | None = None,
    ) -> None:
        """Build the model (unless given), optimiser and random generator.

        Args:
            envs: the training vector environment.
            config: options.
            device: torch device of the model.
            model: an existing model to train (default: one built from the spaces with
                ``config.model``, initialised from ``config.seed``).
        """
        self.envs = envs
        self.config = config = config or ReinforceConfig()
        self.device = torch.device(device)
        if model is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                model = RecurrentAttentionModel.from_spaces(
                    envs.single_observation_space, envs.single_action_space, config.model
                )
        self.model = model.to(self.device)
        params = self.model.parameters()
        if config.optimizer == "adam":
            # The fused kernel (CPU and CUDA) saves ~1 ms per step over the per-tensor loop.
            fused = self.device.type in ("cpu", "cuda")
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=config.lr, weight_decay=config.weight_decay, fused=fused
            )
        elif config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")
        if config.precision not in _COMPUTE_DTYPES:
            raise ValueError(
                f"precision must be one of {sorted(_COMPUTE_DTYPES)}, got {config.precision!r}"
            )
        _check_location_policy(config.location_policy)
        if config.location_reward not in LOCATION_REWARDS:
            raise ValueError(
                f"location_reward must be one of {LOCATION_REWARDS}, got {config.location_reward!r}"
            )
        if config.location_reward == "expected" and not config.hybrid:
            raise ValueError(
                "location_reward='expected' needs the label, i.e. the hybrid loss; pure "
                "REINFORCE (hybrid=False) learns from the env's reward alone"
            )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.iteration = 0
        self._adapter = _ObservationAdapter(envs.single_observation_space, self.device)
        self._same_step = _autoreset_same_step(envs)
        self._obs: Any = None
        self._reset_seed: int | None = config.seed
        self._horizon: int | None = None
        self._labels_available: bool | None = None
        self._tape = RolloutTape()  # reused by every rollout (its storage too)

    # ---- schedules -------------------------------------------------------------------

    def _progress(self) -> float:
        return min(self.iteration / max(self.config.total_iterations, 1), 1.0)

    def current_lr(self) -> float:
        """Learning rate of the next update."""
        p = self._progress()
        lr = self.config.lr
        if self.config.lr_schedule == "linear":
            return lr * (1.0 - p)
        if self.config.lr_schedule == "cosine":
            return lr * 0.5 * (1.0 + math.cos(math.pi * p))
        return lr

    def current_std(self) -> float:
        """Location std of the next batch."""
        start = self.config.std_start
        start = self.model.config.location_std if start is None else start
        end = self.config.std_end
        if end is None:
            return start
        return start + (end - start) * self._progress()

    # ---- training --------------------------------------------------------------------

    def _next_obs(self) -> Any:
        if self._obs is None or not self._same_step:
            self._obs, _ = self.envs.reset(seed=self._reset_seed)
            self._reset_seed = None
        return self._obs

    def _collect(self, hybrid: bool, std: float) -> Rollout:
        rollout, self._obs = collect_rollout(
            self.model,
            self.envs,
            self._next_obs(),
            adapter=self._adapter,
            sample_class=not hybrid,
            std=std,
            generator=self.generator,
            horizon=self._horizon,
            use_tape=self.config.fast_backward,
            compute_dtype=_COMPUTE_DTYPES[self.config.precision],
            location_policy=self.config.location_policy,
            tape=self._tape,
        )
        if not self._same_step:
            self._obs = None
        self._horizon = rollout.horizon
        return rollout

    def train_iteration(self) -> dict[str, float]:
        """Collect one batch of episodes and take one optimiser step.

        Returns:
            Metrics: ``loss``, ``action_loss``, ``reinforce_loss``, ``baseline_loss``,
            ``reward`` (mean return), ``accuracy`` (``is_success`` rate, if reported),
            ``baseline`` (mean b_t), ``lr``, ``std``, ``hybrid`` (1.0 / 0.0), ``horizon``,
            ``iteration`` (after the update).
        """
        cfg = self.config
        self.model.train()
        std = self.current_std()
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        hybrid = cfg.hybrid and self._labels_available is not False
        rollout = self._collect(hybrid, std)
        if hybrid and rollout.labels is None:
            warnings.warn(
                "the environment reports no 'label' at episode end: training with pure "
                "REINFORCE (sampled class, the env's reward as every return) instead of "
                "the hybrid loss",
                stacklevel=2,
            )
            self._labels_available = False
            hybrid = False
            rollout = self._collect(hybrid, std)  # re-collect with sampled classes
        elif hybrid:
            self._labels_available = True

        location_log_probs = rollout.location_log_probs
        if cfg.location_policy == "random":
            # The env saw random locations, not the location network's: no REINFORCE term,
            # no gradient into (and no update of) the location network.
            location_log_probs = torch.zeros_like(location_log_probs.detach())
        if hybrid:
            assert rollout.labels is not None
            returns = (
                expected_class_reward(rollout.logits, rollout.labels)
                if cfg.location_reward == "expected"
                else rollout.rewards
            )
            losses = hybrid_loss(
                location_log_probs,
                rollout.baselines,
                rollout.logits,
                returns,
                rollout.labels,
                reinforce_weight=cfg.reinforce_weight,
                baseline_weight=cfg.baseline_weight,
            )
        else:
            losses = reinforce_loss(
                location_log_probs,
                rollout.baselines,
                rollout.rewards,
                rollout.class_log_probs,
                reinforce_weight=cfg.reinforce_weight,
                baseline_weight=cfg.baseline_weight,
            )
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.iteration += 1

        names = ["loss", "action_loss", "reinforce_loss", "baseline_loss", "reward", "baseline"]
        values = [
            losses.total.detach(),
            losses.action_loss.detach(),
            losses.reinforce_loss.detach(),
            losses.baseline_loss.detach(),
            rollout.returns.mean(),
            rollout.baselines.detach().mean(),
        ]
        if rollout.success is not None:
            names.append("accuracy")
            values.append(rollout.success.float().mean())
        metrics = dict(zip(names, torch.stack(values).tolist()))  # one host sync
        metrics.update(
            lr=lr,
            std=std,
            hybrid=float(hybrid),
            horizon=float(rollout.horizon),
            iteration=float(self.iteration),
        )
        return metrics

    def evaluate(
        self,
        envs: VectorEnv | None = None,
        n_episodes: int = 1000,
        deterministic: bool = True,
        *,
        seed: int | None = None,
    ) -> dict[str, float]:
        """Accuracy of the current model (see :func:`evaluate`).

        Args:
            envs: evaluation vector env (e.g. the test split). None: the training envs,
                continuing from the current episodes without a reset (training then
                continues from where evaluation left them).
            n_episodes: episodes to score.
            deterministic: mean locations (otherwise one stochastic rollout per episode
                at the current std). With ``location_policy="random"``: a fixed random
                draw seeded with ``seed`` (``config.seed`` on the training envs).
            seed: reset seed for ``envs`` (ignored when evaluating on the training envs).

        Returns:
            The metrics of :func:`evaluate`.
        """
        std = self.current_std()
        location_policy = self.config.location_policy
        if envs is not None and envs is not self.envs:
            return evaluate(
                self.model,
                envs,
                n_episodes,
                deterministic,
                seed=seed,
                std=std,
                generator=self.generator,
                location_policy=location_policy,
            )
        generator = self.generator
        if location_policy == "random" and deterministic:  # a fixed seeded draw
            generator = _seeded_generator(self.device, self.config.seed)
        was_training = self.model.training
        self.model.eval()
        try:
            metrics, obs = _run_episodes(
                self.model,
                self.envs,
                self._next_obs(),
                n_episodes,
                deterministic=deterministic,
                std=std,
                generator=generator,
                location_policy=location_policy,
            )
        finally:
            self.model.train(was_training)
        self._obs = obs if self._same_step else None
        return metrics

    # ---- checkpointing ---------------------------------------------------------------

    def set_observation(self, obs: Any) -> None:
        """Continue from ``obs``, the current first observations of the envs' episodes.

        For exact resumption when the caller restored the environments' own state (e.g.
        :meth:`glimpse_env.vector.GlimpseVectorEnv.set_state`) after :meth:`load_state_dict`:
        the next batch then starts from these episodes instead of a reseeded reset.
        """
        self._obs = obs
        self._reset_seed = None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: model, optimiser, iteration (schedule step), RNG.

        Returns:
            A dict of tensors and plain Python values (``torch.save``-able).
        """
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "iteration": self.iteration,
            "generator": self.generator.get_state(),
            "horizon": self._horizon,
            "labels_available": self._labels_available,
            "seed": self.config.seed,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        The environments' own state cannot be captured through the vector API, so the
        envs are reset on the next batch with a seed derived from the checkpoint's
        ``(seed, iteration)``: resuming from the same checkpoint always reproduces the same run,
        though its episodes differ from the ones the uninterrupted run would have seen.

        Args:
            state: a dict from :meth:`state_dict`.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = int(state["iteration"])
        self.generator.set_state(state["generator"].cpu())
        self._horizon = state.get("horizon")
        self._labels_available = state.get("labels_available")
        self._obs = None
        self._reset_seed = _derived_seed(int(state.get("seed", self.config.seed)), self.iteration)
