"""The losses of the RAM agent: the paper's hybrid loss and pure REINFORCE.

Pure functions of tensors, tested against values computed by hand
(``tests/agents/test_losses.py``).

Gradient routing in hybrid mode (the paper): cross-entropy on the final logits trains the
action, core and glimpse networks; REINFORCE with the detached advantage ``R - b_t`` trains
the location network (which reads a detached ``h_t``, so REINFORCE reaches nothing else);
the baseline learns by squared error to ``R``. In pure REINFORCE mode the class is
sampled from ``softmax(logits)`` and its log-probability receives the REINFORCE term
too: that is what trains the action, core and glimpse networks there.

The location emitted at the final step T is never observed (the episode ends), so its
log-probability is excluded from the REINFORCE term: it cannot affect the reward and
would only add noise (and a spurious gradient on the location network).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LossOutput", "expected_class_reward", "hybrid_loss", "reinforce_loss"]


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
