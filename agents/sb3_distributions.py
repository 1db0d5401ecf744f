"""A location-and-class action distribution for the SB3 agents, and the policies that use it.

A glimpse env's action is one Box, ``[x, y, score_0 .. score_{C-1}]``, and the env reads the
class as ``argmax(scores)``. SB3's default for a Box is a diagonal Gaussian over all
``2 + C`` components, so PPO would have to learn a class through the argmax of ``C`` noisy
scores: a policy over classes that no classifier (and not the RAM agent) uses, and a hard
one for the sparse reward. :class:`LocationClassDistribution` is the RAM agent's policy
instead:

* location ``l ~ N(mu, diag(sigma^2))`` (``mu`` from the policy head, ``log sigma`` a learned
  parameter of 2 entries, as SB3's Gaussian);
* class ``c ~ Categorical(softmax(logits))`` (``C`` logits from the policy head), emitted as
  the scores ``+1`` for ``c`` and ``-1`` for the others (inside the action space, so nothing
  is clipped; the env's argmax reads back ``c``).

``log pi(a) = log N(l; mu, sigma) + log softmax(logits)[argmax(scores)]``; the entropy is the
sum of both entropies; the deterministic action is ``(mu, one-hot(argmax(logits)))``.

:class:`GlimpseMultiInputPolicy` (PPO) and :class:`GlimpseMultiInputLstmPolicy`
(RecurrentPPO) are SB3's ``MultiInputPolicy`` and sb3-contrib's ``MultiInputLstmPolicy``
with this distribution (``glimpse train ppo --class-head categorical``, the default).
"""

from __future__ import annotations

from typing import Any

import torch
from sb3_contrib.common.recurrent.policies import RecurrentMultiInputActorCriticPolicy
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn
from torch.distributions import Categorical, Normal

from agents.ram import class_count
from agents.sb3_presets import CLASS_HEADS

__all__ = [
    "LOCATION_DIM",
    "GlimpseMultiInputLstmPolicy",
    "GlimpseMultiInputPolicy",
    "LocationClassDistribution",
]

#: Leading action components that are the location ``(x, y)``.
LOCATION_DIM = 2


class LocationClassDistribution(DiagGaussianDistribution):
    """Gaussian location and categorical class, as one ``(..., 2 + C)`` action (see module).

    It extends SB3's :class:`DiagGaussianDistribution` so that the policies build and
    call it as they do the Gaussian: the action net outputs ``2 + C`` numbers (location
    mean, class logits) and ``log_std`` has the 2 location entries.

    Args:
        n_classes: ``C``.
        location_dim: location components at the front of the action.
    """

    def __init__(self, n_classes: int, location_dim: int = LOCATION_DIM) -> None:
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        super().__init__(location_dim + n_classes)
        self.location_dim = location_dim
        self.n_classes = n_classes
        self.classes: Categorical | None = None

    def proba_distribution_net(
        self, latent_dim: int, log_std_init: float = 0.0
    ) -> tuple[nn.Module, nn.Parameter]:
        """``Linear(latent_dim, 2 + C)`` (location mean, class logits) and the location's
        ``log_std`` ``(2,)``, initialised to ``log_std_init``."""
        net = nn.Linear(latent_dim, self.action_dim)
        log_std = nn.Parameter(torch.full((self.location_dim,), float(log_std_init)))
        return net, log_std

    def proba_distribution(  # type: ignore[override]
        self, mean_actions: Tensor, log_std: Tensor
    ) -> LocationClassDistribution:
        """Set the parameters: ``mean_actions (B, 2 + C)``, ``log_std (2,)``."""
        mean = mean_actions[..., : self.location_dim]
        self.distribution = Normal(mean, torch.ones_like(mean) * log_std.exp())
        self.classes = Categorical(logits=mean_actions[..., self.location_dim :])
        return self

    def _classes(self) -> Categorical:
        if self.classes is None:
            raise RuntimeError("call proba_distribution() first")
        return self.classes

    def _scores(self, chosen: Tensor, like: Tensor) -> Tensor:
        """``(B,)`` classes -> ``(B, C)`` scores: +1 for the class, -1 elsewhere."""
        one_hot = nn.functional.one_hot(chosen, self.n_classes).to(like.dtype)
        return one_hot * 2.0 - 1.0

    def log_prob(self, actions: Tensor) -> Tensor:
        """``(B,)`` log-probability of ``actions (B, 2 + C)`` (class = argmax of the scores)."""
        location = self.distribution.log_prob(actions[..., : self.location_dim]).sum(-1)
        chosen = actions[..., self.location_dim :].argmax(-1)
        return location + self._classes().log_prob(chosen)

    def entropy(self) -> Tensor:
        """``(B,)`` entropy of the location Gaussian plus that of the class distribution."""
        return self.distribution.entropy().sum(-1) + self._classes().entropy()

    def sample(self) -> Tensor:
        """``(B, 2 + C)`` action: a location sample and the scores of a sampled class."""
        location = self.distribution.rsample()
        scores = self._scores(self._classes().sample(), location)
        return torch.cat([location, scores], -1)

    def mode(self) -> Tensor:
        """``(B, 2 + C)`` action: the mean location and the scores of the likeliest class."""
        location = self.distribution.mean
        scores = self._scores(self._classes().logits.argmax(-1), location)
        return torch.cat([location, scores], -1)


class GlimpseMultiInputPolicy(MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy`` with :class:`LocationClassDistribution` (for PPO)."""

    def _build(self, lr_schedule: Schedule) -> None:
        self.action_dist = LocationClassDistribution(class_count(self.action_space, LOCATION_DIM))
        super()._build(lr_schedule)


class GlimpseMultiInputLstmPolicy(RecurrentMultiInputActorCriticPolicy):
    """sb3-contrib's ``MultiInputLstmPolicy`` with :class:`LocationClassDistribution`
    (for RecurrentPPO)."""

    def _build(self, lr_schedule: Schedule) -> None:
        self.action_dist = LocationClassDistribution(class_count(self.action_space, LOCATION_DIM))
        super()._build(lr_schedule)


def policy_class(agent: str, class_head: str) -> Any:
    """The policy (class or SB3 alias) for ``agent`` with ``class_head``.

    Args:
        agent: ``"ppo"`` or ``"recurrent_ppo"``.
        class_head: ``"categorical"`` (:class:`LocationClassDistribution`) or ``"gaussian"``
            (SB3's diagonal Gaussian over all ``2 + C`` components).

    Raises:
        ValueError: for an unknown ``class_head``.
    """
    if class_head not in CLASS_HEADS:
        raise ValueError(f"class_head must be one of {CLASS_HEADS}, got {class_head!r}")
    if agent == "recurrent_ppo":
        return (
            GlimpseMultiInputLstmPolicy if class_head == "categorical" else "MultiInputLstmPolicy"
        )
    return GlimpseMultiInputPolicy if class_head == "categorical" else "MultiInputPolicy"
