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

On the adaptive envs (``stop="action"``, ``policy_kwargs={"stop_action": True}``) a third
part decides when to stop, as the RAM agent's stop head: ``stop ~ Bernoulli(sigmoid(s))``
(one more output of the policy head), emitted as the stop score ``+1`` (stop) or ``-1``;
its log-probability and entropy are added where the location is read (the stop score is
read at every step but the last possible one); the deterministic action stops where
``s > 0``.

Only the parts the env reads (``used_actions_only``, the default). A glimpse env reads the
location of every action but the last (the glimpse after the last step is never taken), and
under the sparse reward it judges the class scores of the last action only. The other parts
cannot change the reward, yet their log-probabilities would enter the policy gradient as
noise (with the sparse reward, 6 of the 7 class terms of a GlimpseMNIST episode). When the
observation carries ``action_use`` (:class:`agents.sb3_policy.ActionUse`, columns: location
read, class read), the distribution is the policy that samples only what is read: an unread
location is the mean, an unread class the likeliest one (both deterministic, log-probability
0), so ``log pi(a) = use_l * log N(l) + use_c * log softmax(logits)[c]`` and the entropy
likewise. The RAM agent leaves out the same terms.

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
from torch.distributions import Bernoulli, Categorical, Normal

from agents.sb3_presets import CLASS_HEADS
from glimpse_env.actions import (
    LOCATION_DIM,
    class_count,
    class_scores,
    pack_action,
    stop_scores,
    unpack_action,
)
from glimpse_env.wrappers import ACTION_USE_KEY

__all__ = [
    "LOCATION_DIM",
    "GlimpseMultiInputLstmPolicy",
    "GlimpseMultiInputPolicy",
    "LocationClassDistribution",
]


class LocationClassDistribution(DiagGaussianDistribution):
    """Gaussian location and categorical class, as one ``(..., 2 + C)`` action (see module).

    It extends SB3's :class:`DiagGaussianDistribution` so that the policies build and
    call it as they do the Gaussian: the action net outputs ``2 + C`` numbers (location
    mean, class logits) and ``log_std`` has the 2 location entries.

    Args:
        n_classes: ``C``.
        stop: the action ends with a stop score (adaptive envs): one more output, a
            Bernoulli stop decision.
    """

    def __init__(self, n_classes: int, stop: bool = False) -> None:
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        super().__init__(LOCATION_DIM + n_classes + int(stop))
        self.n_classes = n_classes
        self.stop = bool(stop)
        self.classes: Categorical | None = None
        self.stops: Bernoulli | None = None
        #: float ``(B, 2)``: (location read, class read) per action; None: both always.
        self.action_use: Tensor | None = None

    def proba_distribution_net(
        self, latent_dim: int, log_std_init: float = 0.0
    ) -> tuple[nn.Module, nn.Parameter]:
        """``Linear(latent_dim, 2 + C)`` (location mean, class logits) and the location's
        ``log_std`` ``(2,)``, initialised to ``log_std_init``."""
        net = nn.Linear(latent_dim, self.action_dim)
        log_std = nn.Parameter(torch.full((LOCATION_DIM,), float(log_std_init)))
        return net, log_std

    def proba_distribution(  # type: ignore[override]
        self, mean_actions: Tensor, log_std: Tensor, action_use: Tensor | None = None
    ) -> LocationClassDistribution:
        """Set the parameters: ``mean_actions (B, 2 + C)``, ``log_std (2,)`` and the
        optional ``action_use (B, 2)`` (see the module docstring; None: every part read)."""
        mean, logits = unpack_action(mean_actions, self.stop)
        self.distribution = Normal(mean, torch.ones_like(mean) * log_std.exp())
        self.classes = Categorical(logits=logits)
        self.stops = Bernoulli(logits=stop_scores(mean_actions)) if self.stop else None
        if action_use is not None and tuple(action_use.shape) != (*mean.shape[:-1], 2):
            raise ValueError(
                f"action_use must have shape {(*mean.shape[:-1], 2)}, got {tuple(action_use.shape)}"
            )
        self.action_use = action_use
        return self

    def _weighted(self, location: Tensor, classes: Tensor) -> Tensor:
        """``location + classes``, each term counted only where its part is read (the stop
        term, already in ``location``, where the location is)."""
        if self.action_use is None:
            return location + classes
        use = self.action_use.to(location.dtype)
        return location * use[..., 0] + classes * use[..., 1]

    def _stop_sample(self, location: Tensor, deterministic: bool) -> Tensor | None:
        """``(B,)`` stop scores (+1 stop, -1 go), or None without the stop action."""
        if self.stops is None:
            return None
        stop = self.stops.logits > 0 if deterministic else self.stops.sample() > 0.5
        if not deterministic and self.action_use is not None:
            stop = torch.where(self.action_use[..., 0] > 0.5, stop, self.stops.logits > 0)
        return stop.to(location.dtype) * 2.0 - 1.0

    def _classes(self) -> Categorical:
        if self.classes is None:
            raise RuntimeError("call proba_distribution() first")
        return self.classes

    def log_prob(self, actions: Tensor) -> Tensor:
        """``(B,)`` log-probability of ``actions (B, 2 + C)`` (class = argmax of the scores)."""
        location, scores = unpack_action(actions, self.stop)
        location_logp = self.distribution.log_prob(location).sum(-1)
        if self.stops is not None:
            location_logp = location_logp + self.stops.log_prob((stop_scores(actions) > 0).float())
        chosen = scores.argmax(-1)
        return self._weighted(location_logp, self._classes().log_prob(chosen))

    def entropy(self) -> Tensor:
        """``(B,)`` entropy of the location Gaussian plus that of the class distribution
        (each only where its part is read)."""
        location = self.distribution.entropy().sum(-1)
        if self.stops is not None:
            location = location + self.stops.entropy()
        return self._weighted(location, self._classes().entropy())

    def sample(self) -> Tensor:
        """``(B, 2 + C)`` action: a location sample and the scores of a sampled class (the
        mean location and the likeliest class where that part is not read)."""
        location = self.distribution.rsample()
        chosen = self._classes().sample()
        if self.action_use is not None:
            read = self.action_use > 0.5  # (B, 2): location read, class read
            location = torch.where(read[..., :1], location, self.distribution.mean)
            chosen = torch.where(read[..., 1], chosen, self._classes().logits.argmax(-1))
        scores = class_scores(chosen, self.n_classes, location.dtype)
        return pack_action(location, scores, self._stop_sample(location, deterministic=False))

    def mode(self) -> Tensor:
        """``(B, 2 + C)`` action: the mean location and the scores of the likeliest class."""
        location = self.distribution.mean
        chosen = self._classes().logits.argmax(-1)
        scores = class_scores(chosen, self.n_classes, location.dtype)
        return pack_action(location, scores, self._stop_sample(location, deterministic=True))


class _ActionUseMixin:
    """Builds :class:`LocationClassDistribution` and hands it the observation's
    ``action_use`` (when the observation space has it).

    SB3 builds a distribution from the latent alone (``_get_action_dist_from_latent``);
    the three entry points that see the observation (``forward``, ``get_distribution``,
    ``evaluate_actions``) keep its ``action_use`` for the duration of the call.
    """

    _action_use: Tensor | None = None

    def __init__(self, *args: Any, stop_action: bool = False, **kwargs: Any) -> None:
        #: The env's actions end with a stop score (``policy_kwargs={"stop_action": True}``).
        self.stop_action = bool(stop_action)
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "stop_action": self.stop_action}  # type: ignore[misc]

    def _build(self, lr_schedule: Schedule) -> None:
        n_classes = class_count(self.action_space, self.stop_action)
        self.action_dist = LocationClassDistribution(n_classes, self.stop_action)
        super()._build(lr_schedule)  # type: ignore[misc]

    def _with_use(self, method: str, obs: Any, *args: Any, **kwargs: Any) -> Any:
        self._action_use = obs.get(ACTION_USE_KEY) if isinstance(obs, dict) else None
        try:
            return getattr(super(), method)(obs, *args, **kwargs)
        finally:
            self._action_use = None

    def forward(self, obs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._with_use("forward", obs, *args, **kwargs)

    def get_distribution(self, obs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._with_use("get_distribution", obs, *args, **kwargs)

    def evaluate_actions(self, obs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._with_use("evaluate_actions", obs, *args, **kwargs)

    def _get_action_dist_from_latent(self, latent_pi: Tensor) -> Any:
        mean_actions = self.action_net(latent_pi)  # type: ignore[attr-defined]
        use = self._action_use
        if use is not None:
            use = use.reshape(*mean_actions.shape[:-1], 2)
        return self.action_dist.proba_distribution(mean_actions, self.log_std, use)  # type: ignore[attr-defined]


class GlimpseMultiInputPolicy(_ActionUseMixin, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy`` with :class:`LocationClassDistribution` (for PPO)."""


class GlimpseMultiInputLstmPolicy(_ActionUseMixin, RecurrentMultiInputActorCriticPolicy):
    """sb3-contrib's ``MultiInputLstmPolicy`` with :class:`LocationClassDistribution`
    (for RecurrentPPO)."""


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
