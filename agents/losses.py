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

:func:`stopping_loss` is the loss of a model with a stop network on an adaptive env
(``stop="action"``), where each episode ends at its own step: the classifier is trained at
every step up to the episode's end (so its scores mean something wherever it stops), and
REINFORCE trains the stop decisions and the locations, all over each episode's alive steps.
:func:`expected_stopping_loss` trains the stop network without sampling its decisions: on
episodes that took every glimpse, it maximises the return expected under the halting
distribution the stop probabilities define (as PonderNet does), differentiated exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LossOutput",
    "expected_class_reward",
    "expected_stopping_loss",
    "halting_distribution",
    "hybrid_loss",
    "reinforce_loss",
    "stopping_loss",
]


@dataclass
class LossOutput:
    """Total loss and its components (scalar tensors; components kept for logging).

    Attributes:
        total: the loss to minimise.
        action_loss: cross-entropy of the final logits (0 in pure REINFORCE mode).
        reinforce_loss: REINFORCE term ``-mean_n sum_t log pi(a_t) (R_t - b_t)``.
        baseline_loss: mean squared error of the baselines to the returns.
        stop_loss: the stop decisions' share of ``reinforce_loss`` (None without a stop
            policy).
    """

    total: Tensor
    action_loss: Tensor
    reinforce_loss: Tensor
    baseline_loss: Tensor
    stop_loss: Tensor | None = None


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


def stopping_loss(
    location_log_probs: Tensor,
    stop_log_probs: Tensor,
    baselines: Tensor,
    all_logits: Tensor,
    rewards: Tensor,
    alive: Tensor,
    *,
    labels: Tensor | None = None,
    class_log_probs: Tensor | None = None,
    decided: Tensor | None = None,
    stop_baselines: Tensor | None = None,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
) -> LossOutput:
    """The loss of episodes that end where the agent stops (one end step per episode).

    Episode n is alive at steps ``t = 0 .. e_n`` (``alive[:, n]``, a prefix; ``e_n`` is the
    step whose class scores were judged). With ``A`` the alive (t, n) entries, ``R_t`` the
    return (reward-to-go of the alive rewards, or the given (N,) return at every step) and
    the advantage ``(R_t - b_t).detach()``::

        action   = mean_{(t,n) in A} CE(logits_{t,n}, label_n)              (hybrid: labels)
        location = -sum_{t < e_n} log pi(l_t) (R_t - b_t)                   (observed ones)
        stop     = -sum_{t in decided} log pi(s_t) (R_t - b'_t)      (b' = b unless given)
        class    = -log pi(c_n) (R_{e_n} - b_{e_n})                         (pure: sampled c)
        total    = action + reinforce_weight * mean_n (location + stop + class)
                 + baseline_weight * mean_{(t,n) in A} (b_t - R_t)^2

    The location drawn at the end step is never observed, so it is left out; the stop
    decision of a step counts where it was the agent's choice (``decided``).

    Args:
        location_log_probs: (T, N) log-probabilities of the sampled locations.
        stop_log_probs: (T, N) log-probabilities of the stop decisions taken.
        baselines: (T, N) baselines b_t.
        all_logits: (T, N, C) class logits after every glimpse.
        rewards: (N,) episode returns R, or (T, N) per-step rewards (those after an
            episode's end are ignored).
        alive: (T, N) bool, True at steps 0 .. e_n of episode n (every episode has a
            step 0).
        labels: (N,) integer labels: the hybrid loss (cross-entropy at every alive step).
        class_log_probs: (N,) log-probabilities of the classes sampled at the end steps:
            pure REINFORCE (give exactly one of ``labels`` and ``class_log_probs``).
        decided: (T, N) bool, the steps whose stop decision the agent chose (default: the
            alive ones except in the last row, where the horizon ends the episode anyway).
        stop_baselines: (T, N) baselines of the stop terms (default: ``baselines``); any
            value that does not depend on the stop decision leaves the gradient unbiased,
            e.g. what stopping at that step would return (then a stop's advantage is 0 and
            going on is credited with what it gained over stopping). Not trained.
        reinforce_weight: weight of the REINFORCE terms.
        baseline_weight: weight of the baseline MSE.

    Returns:
        The :class:`LossOutput` (``action_loss`` 0 in pure REINFORCE mode; ``stop_loss``
        the stop term's share of ``reinforce_loss``).

    Raises:
        ValueError: for mismatched shapes, an ``alive`` that is not a non-empty prefix of
            every column, or not exactly one of ``labels`` / ``class_log_probs``.
    """
    if (labels is None) == (class_log_probs is None):
        raise ValueError("give exactly one of labels (hybrid) and class_log_probs (REINFORCE)")
    shape = tuple(baselines.shape)
    shapes = [tuple(x.shape) for x in (location_log_probs, stop_log_probs, alive)]
    if len(shape) != 2 or any(s != shape for s in shapes) or all_logits.shape[:2] != shape:
        raise ValueError(
            f"location_log_probs {shapes[0]}, stop_log_probs {shapes[1]}, baselines {shape} "
            f"and alive {shapes[2]} must be (T, N), all_logits (T, N, C): got "
            f"{tuple(all_logits.shape)}"
        )
    alive = alive.bool()
    if not bool(alive[0].all()) or bool((alive[1:] & ~alive[:-1]).any()):
        raise ValueError("alive must be True from step 0 up to each episode's end, then False")
    if decided is None:
        decided = alive.clone()
        decided[-1] = False
    decided = decided.bool() & alive
    observed = torch.zeros_like(alive)  # the location drawn at t is seen iff t + 1 is alive
    observed[:-1] = alive[1:]
    zero = baselines.new_zeros(())
    if rewards.dim() == 2:
        rewards = torch.where(alive, rewards.to(baselines.dtype), zero)
    returns = _returns(rewards.to(baselines.dtype), shape[0])
    advantage = torch.where(alive, returns - baselines, zero).detach()
    location_term = -torch.where(observed, location_log_probs * advantage, zero).sum(0)
    if stop_baselines is not None:
        stop_advantage = torch.where(alive, returns - stop_baselines, zero).detach()
    else:
        stop_advantage = advantage
    stop_term = -torch.where(decided, stop_log_probs * stop_advantage, zero).sum(0)
    n_alive = alive.sum()
    baseline_mse = torch.where(alive, (baselines - returns).square(), zero).sum() / n_alive
    ends = alive.sum(0) - 1
    if labels is not None:
        targets = labels.long().unsqueeze(0).expand(shape)
        ce = F.cross_entropy(all_logits.flatten(0, 1), targets.flatten(), reduction="none")
        action = torch.where(alive, ce.view(shape), zero).sum() / n_alive
        class_term = torch.zeros_like(stop_term)
    else:
        assert class_log_probs is not None
        action = zero
        end_advantage = advantage.gather(0, ends.view(1, -1)).squeeze(0)
        class_term = -class_log_probs * end_advantage
    reinforce = (location_term + stop_term + class_term).mean()
    total = action + reinforce_weight * reinforce + baseline_weight * baseline_mse
    return LossOutput(total, action, reinforce, baseline_mse, stop_term.mean())


def halting_distribution(stop_logits: Tensor) -> Tensor:
    """Where episodes stop when step t stops with probability ``sigmoid(stop_logits[t])``.

    ``p_t = lambda_t prod_{s<t} (1 - lambda_s)`` with ``lambda_t = sigmoid(z_t)`` and
    ``lambda_{T-1} = 1`` (the horizon ends every episode), computed in log space.

    Args:
        stop_logits: (T, N) stop logits.

    Returns:
        (T, N) probabilities of stopping after each step; every column sums to 1.
    """
    go = F.logsigmoid(-stop_logits)
    survived = torch.cat([torch.zeros_like(go[:1]), go[:-1].cumsum(0)])  # log prod_{s<t}
    stop = F.logsigmoid(stop_logits)
    stop = torch.cat([stop[:-1], torch.zeros_like(stop[-1:])])  # the horizon always stops
    return torch.exp(survived + stop)


def expected_stopping_loss(
    location_log_probs: Tensor,
    stop_logits: Tensor,
    baselines: Tensor,
    all_logits: Tensor,
    labels: Tensor,
    payoffs: Tensor,
    *,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
    halting_share: float = 0.0,
) -> LossOutput:
    """The stop network trained on its expected return, on episodes that took all T steps.

    With ``p_t`` the :func:`halting_distribution` of the stop logits and ``q_t`` the payoff
    of stopping after step t (e.g. ``1[argmax_t right] - cost * (t + 1)``, given, detached),
    the expected return of the trajectory is ``J = sum_t p_t q_t``::

        action   = mean_n sum_t w_{t,n} CE(logits_{t,n}, label_n)
                   w_t = (1 - h) / T + h * p_t   (h = halting_share; p detached)
        stop     = -mean_n J_n                                   (exact gradient, no sampling)
        location = mean_n -sum_{t<T-1} log pi(l_t) (J_n - b_t)     (J detached)
        total    = action + reinforce_weight * (location + stop)
                 + baseline_weight * mean_{t,n} (b_t - J_n)^2

    Args:
        location_log_probs: (T, N) log-probabilities of the sampled locations.
        stop_logits: (T, N) stop logits (row T-1 is ignored: the horizon stops).
        baselines: (T, N) baselines b_t.
        all_logits: (T, N, C) class logits after every glimpse.
        labels: (N,) integer labels.
        payoffs: (T, N) return of stopping after each step (no gradient).
        reinforce_weight: weight of the location REINFORCE and the stop terms.
        baseline_weight: weight of the baseline MSE.
        halting_share: share ``h`` in [0, 1] of the classifier's cross-entropy weighted by
            where the episode stops (PonderNet's weighting: the classifier learns most where
            it is asked); the rest is spread evenly over the T steps (0: every step alike).

    Returns:
        The :class:`LossOutput` (``stop_loss``: ``-mean_n J_n``).

    Raises:
        ValueError: for mismatched shapes.
    """
    shape = tuple(baselines.shape)
    shapes = [tuple(x.shape) for x in (location_log_probs, stop_logits, payoffs)]
    if len(shape) != 2 or any(s != shape for s in shapes) or all_logits.shape[:2] != shape:
        raise ValueError(
            f"location_log_probs, stop_logits, payoffs {shapes} and baselines {shape} must be "
            f"(T, N), all_logits (T, N, C): got {tuple(all_logits.shape)}"
        )
    if not 0.0 <= halting_share <= 1.0:
        raise ValueError(f"halting_share must be in [0, 1], got {halting_share}")
    halting = halting_distribution(stop_logits)
    expected = (halting * payoffs.detach()).sum(0)  # (N,) J
    stop_term = -expected.mean()
    location_term, _, baseline_mse = _location_terms(
        location_log_probs, baselines, expected.detach().to(baselines.dtype)
    )
    targets = labels.long().unsqueeze(0).expand(shape)
    if halting_share == 0.0:
        action = F.cross_entropy(all_logits.flatten(0, 1), targets.flatten())
    else:
        ce = F.cross_entropy(all_logits.flatten(0, 1), targets.flatten(), reduction="none")
        weights = (1.0 - halting_share) / shape[0] + halting_share * halting.detach()
        action = (weights * ce.view(shape)).sum(0).mean()
    reinforce = location_term.mean() + stop_term
    total = action + reinforce_weight * reinforce + baseline_weight * baseline_mse
    return LossOutput(total, action, reinforce, baseline_mse, stop_term)
