"""Learned stopping: the RAM agent's stop network, and the loss of an adaptive batch.

* :class:`StopNetwork` is the stop head of :class:`agents.ram.RecurrentAttentionModel`
  (``RAMConfig(stop=True)``): a Bernoulli policy on the core state (DT-RAM, Li et al. 2017),
  optionally on the classifier's confidence.
* :func:`stop_now_payoffs` is what stopping after each glimpse would return.
* :func:`adaptive_loss` assembles the loss of a batch played on an adaptive env
  (``stop="action"``) from :mod:`agents.losses`: :func:`~agents.losses.stopping_loss`
  (REINFORCE on the sampled stop decisions) or :func:`~agents.losses.expected_stopping_loss`
  (the return expected under the halting distribution, on episodes that took every
  glimpse), at the current glimpse cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.losses import (
    LossOutput,
    expected_class_reward,
    expected_stopping_loss,
    halting_distribution,
    stopping_loss,
)

if TYPE_CHECKING:
    from agents.rollout import Rollout

__all__ = ["StopNetwork", "adaptive_loss", "stop_now_payoffs"]


class StopNetwork(nn.Module):
    """Stop network: a Bernoulli policy ``s_t ~ Bernoulli(sigmoid(Linear(x_t)))``.

    After glimpse t the agent stops (``s_t = 1``: its class scores are judged now) or goes
    on. ``x_t`` is the core state ``h_t`` (detached unless ``detach_input=False``; DT-RAM),
    the classifier's confidence, or both. The confidence is the log-odds of the most likely
    class, ``log p_max - log(1 - p_max)`` of the step's class logits (detached): negative
    while the classifier hesitates, large once it is sure, whatever the class. With
    ``mlp_hidden > 0`` one hidden ReLU layer comes first. The last layer starts at zero
    weights and bias ``bias_init``: at first every step stops with probability
    ``sigmoid(bias_init)``.
    """

    def __init__(
        self,
        hidden_size: int = 256,
        *,
        detach_input: bool = True,
        mlp_hidden: int = 0,
        bias_init: float = -2.0,
        read_state: bool = True,
        read_confidence: bool = False,
    ) -> None:
        """Build the stop network.

        Args:
            hidden_size: size H of ``h_t``.
            detach_input: read ``h_t.detach()`` instead of ``h_t``.
            mlp_hidden: units M of a hidden ReLU layer (0: none, a linear logit).
            bias_init: initial logit (the last layer's bias; its weights start at zero).
            read_state: read ``h_t``.
            read_confidence: read the log-odds of the most likely class.

        Raises:
            ValueError: if ``mlp_hidden`` is negative, or it would read nothing.
        """
        super().__init__()
        if mlp_hidden < 0:
            raise ValueError(f"mlp_hidden must be >= 0 (0: no hidden layer), got {mlp_hidden}")
        if not (read_state or read_confidence):
            raise ValueError("a stop network reads h_t, the confidence, or both")
        inputs = (hidden_size if read_state else 0) + (1 if read_confidence else 0)
        #: ``Linear(inputs, M)`` of the hidden layer, or ``None`` (a linear logit).
        self.hidden = nn.Linear(inputs, mlp_hidden) if mlp_hidden else None
        self.fc = nn.Linear(mlp_hidden or inputs, 1)
        nn.init.zeros_(self.fc.weight)
        nn.init.constant_(self.fc.bias, float(bias_init))
        self.detach_input = detach_input
        self.read_state = read_state
        self.read_confidence = read_confidence

    @staticmethod
    def confidence(logits: Tensor) -> Tensor:
        """Log-odds of the most likely class, ``log p_max - log(1 - p_max)`` (detached).

        Args:
            logits: (..., C) class logits, C >= 2.

        Returns:
            (...) float32 log-odds: the top logit less the log-sum-exp of the others.
        """
        ordered = logits.detach().float().sort(-1, descending=True)[0]
        return ordered[..., 0] - torch.logsumexp(ordered[..., 1:], -1)

    def forward(self, h: Tensor, logits: Tensor | None = None) -> Tensor:
        """Stop logits.

        Args:
            h: (..., H) core states.
            logits: (..., C) class logits of the same steps (needed with the confidence).

        Returns:
            (...) logits of the stop probability.
        """
        parts = []
        if self.read_state:
            parts.append(h.detach() if self.detach_input else h)
        if self.read_confidence:
            assert logits is not None, "this stop network reads the class scores"
            parts.append(self.confidence(logits).unsqueeze(-1).to(h.dtype))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, -1)
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        return self.fc(x).squeeze(-1)

    @staticmethod
    def sample(
        logit: Tensor, *, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw stop decisions.

        Args:
            logit: (N,) stop logits.
            deterministic: stop iff ``sigmoid(logit) > 0.5`` (``logit > 0``).
            generator: random generator of the draw (one uniform per row).

        Returns:
            (N,) float32 1.0 (stop) / 0.0 (go on), detached.
        """
        logit = logit.detach().float()
        if deterministic:
            return (logit > 0).float()
        u = torch.rand(logit.shape, generator=generator, device=logit.device)
        return (u < torch.sigmoid(logit)).float()

    @staticmethod
    def log_prob(stop: Tensor, logit: Tensor) -> Tensor:
        """``log Bernoulli(stop | sigmoid(logit))``.

        Args:
            stop: (...) decisions, 1.0 (stop) or 0.0 (go on), no gradient.
            logit: (...) stop logits (gradient flows through them).

        Returns:
            (...) ``stop * log sigmoid(logit) + (1 - stop) * log sigmoid(-logit)``.
        """
        return -F.binary_cross_entropy_with_logits(logit, stop.to(logit.dtype), reduction="none")


def stop_now_payoffs(all_logits: Tensor, labels: Tensor, cost: float, expected: bool) -> Tensor:
    """What stopping after each glimpse would return (detached).

    Args:
        all_logits: (T, N, C) class logits after every glimpse.
        labels: (N,) labels.
        cost: the glimpse cost.
        expected: pay the true class's probability (else 1 if the argmax is right).

    Returns:
        (T, N) ``pay_t - cost * (t + 1)`` for steps ``t = 0 .. T-1`` (t + 1 glimpses).
    """
    logits = all_logits.detach().float()
    targets = labels.view(1, -1).expand(logits.shape[:2])
    if expected:
        pay = torch.softmax(logits, -1).gather(2, targets.unsqueeze(-1)).squeeze(-1)
    else:
        pay = (logits.argmax(-1) == targets).float()
    steps = torch.arange(1, logits.shape[0] + 1, device=logits.device, dtype=pay.dtype)
    return pay - cost * steps[:, None]


def adaptive_loss(
    out: Any,
    rollout: Rollout,
    location_log_probs: Tensor,
    *,
    hybrid: bool,
    expected_objective: bool,
    expected_payoff: bool,
    stop_now_baseline: bool,
    cost: float,
    env_cost: float,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
    halting_share: float = 0.0,
) -> tuple[LossOutput, dict[str, Tensor]]:
    """The loss of a batch played on an adaptive env, and its statistics.

    Args:
        out: the model's :class:`agents.ram.ReplayOutput` of the batch.
        rollout: the adaptive :class:`agents.rollout.Rollout`.
        location_log_probs: (T, N) location log-probabilities (zeros for fixed locations).
        hybrid: labels are known: cross-entropy for the classifier (else the class sampled
            at each episode's end is trained by REINFORCE).
        expected_objective: the episodes took every glimpse, and the stop network learns
            from its expected return (:func:`~agents.losses.expected_stopping_loss`);
            needs ``hybrid``.
        expected_payoff: the return pays the true class's probability at the end (the
            ``location_reward="expected"`` option) instead of the env's 0/1 reward.
        stop_now_baseline: the stop decisions' baseline is :func:`stop_now_payoffs`.
        cost: the glimpse cost of the returns now (the glimpse-cost warm-up's).
        env_cost: the env's glimpse cost (in its rewards; corrected to ``cost``).
        reinforce_weight: weight of the REINFORCE and stop terms.
        baseline_weight: weight of the baseline MSE.
        halting_share: with the expected objective, the share of the classifier's
            cross-entropy weighted by where episodes stop (see
            :func:`~agents.losses.expected_stopping_loss`).

    Returns:
        ``(loss, stats)``: ``stats["glimpses"]`` the mean glimpses per episode (with the
        expected objective: expected under the halting distribution, with ``accuracy``
        and ``reward`` likewise).
    """
    assert rollout.alive is not None and rollout.glimpses_taken is not None
    weights = {"reinforce_weight": reinforce_weight, "baseline_weight": baseline_weight}
    if expected_objective:
        assert rollout.labels is not None and out.stop_logits is not None
        payoffs = stop_now_payoffs(out.all_logits, rollout.labels, cost, expected_payoff)
        loss = expected_stopping_loss(
            location_log_probs,
            out.stop_logits,
            out.baselines,
            out.all_logits,
            rollout.labels,
            payoffs,
            halting_share=halting_share,
            **weights,
        )
        with torch.no_grad():
            halting = halting_distribution(out.stop_logits.float())
            steps = torch.arange(1, halting.shape[0] + 1, device=halting.device)
            right = (out.all_logits.argmax(-1) == rollout.labels.view(1, -1)).float()
            stats = {
                "glimpses": (halting * steps[:, None]).sum(0).mean(),
                "accuracy": (halting * right).sum(0).mean(),
                "reward": (halting * payoffs).sum(0).mean(),
            }
        return loss, stats
    ends = (rollout.glimpses_taken - 1).view(1, -1)
    index = ends.unsqueeze(-1).expand(1, -1, out.all_logits.shape[-1])
    end_logits = out.all_logits.gather(0, index).squeeze(0)
    if hybrid and expected_payoff:
        assert rollout.labels is not None
        expected = expected_class_reward(end_logits, rollout.labels)
        returns = expected - cost * rollout.glimpses_taken.float()
    else:  # the env's rewards, with the current cost instead of the env's (at the end)
        returns = rollout.rewards.clone()
        correction = (env_cost - cost) * rollout.glimpses_taken.float()
        returns[ends[0], torch.arange(returns.shape[1], device=returns.device)] += correction
    classes: dict[str, Any] = {}
    if hybrid:
        assert rollout.labels is not None
        classes["labels"] = rollout.labels
        if stop_now_baseline:
            payoffs = stop_now_payoffs(out.all_logits, rollout.labels, cost, expected_payoff)
            classes["stop_baselines"] = payoffs
    else:
        log_probs = torch.log_softmax(end_logits, -1)
        classes["class_log_probs"] = log_probs.gather(1, rollout.classes[:, None])[:, 0]
    loss = stopping_loss(
        location_log_probs,
        out.stop_log_probs,
        out.baselines,
        out.all_logits,
        returns,
        rollout.alive,
        decided=rollout.decided,
        **weights,
        **classes,
    )
    return loss, {"glimpses": rollout.glimpses_taken.float().mean()}
