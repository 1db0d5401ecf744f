"""The plain types of the Recurrent Attention Model (:mod:`agents.ram`).

* :class:`RAMConfig`: the model's sizes and options (defaults: the paper's).
* :class:`StepOutput`: what :meth:`agents.ram.RecurrentAttentionModel.step` returns for one
  glimpse.
* :class:`ReplayOutput`: what :meth:`agents.ram.RecurrentAttentionModel.replay` returns over
  a recorded rollout.
* :data:`CoreState`: the core's recurrent state.
* :data:`LOCATION_KEY`, :func:`glimpse_size`: the observation key of the location, and the
  glimpse input size an observation space gives.
* ``_rename_cell_keys``: the load hook that reads checkpoints of the earlier ``nn.*Cell``
  cores (the shipped models).

Everything here is re-exported by :mod:`agents.ram`; import it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import gymnasium as gym
import numpy as np
from torch import Tensor

__all__ = [
    "LOCATION_KEY",
    "CoreState",
    "RAMConfig",
    "ReplayOutput",
    "StepOutput",
    "glimpse_size",
]

#: Observation key holding the location (in ``[-1, 1]^2``) a glimpse was taken at.
LOCATION_KEY = "location"

#: Recurrent state of the core network: ``h`` (N, H) for the ReLU RNN and the GRU, the
#: pair ``(h, c)`` (each (N, H)) for the LSTM.
CoreState: TypeAlias = Tensor | tuple[Tensor, Tensor]


@dataclass
class RAMConfig:
    """Sizes and options of a :class:`agents.ram.RecurrentAttentionModel` (defaults: the paper)."""

    glimpse_hidden: int = 128
    """Units of ``h_g = ReLU(Linear(rho))``, the "what" pathway of the glimpse network."""

    location_hidden: int = 128
    """Units of ``h_l = ReLU(Linear(l))``, the "where" pathway of the glimpse network."""

    glimpse_out: int = 256
    """Units of the glimpse feature ``g_t = ReLU(Linear(h_g) + Linear(h_l))``."""

    core_hidden: int = 256
    """Units of the core state ``h_t``."""

    core: Literal["rnn", "lstm", "gru"] = "rnn"
    """Core cell: ``"rnn"`` is the paper's ReLU RNN (classification), ``"lstm"`` the one
    it used for the Catch game, ``"gru"`` an extra option."""

    location_std: float = 0.15
    """Default fixed standard deviation of the location policy, in ``[-1, 1]`` units
    (used when :meth:`agents.ram.RecurrentAttentionModel.step` gets no ``std``). Public
    reproductions used 0.05-0.25."""

    detach_location_input: bool = True
    """Feed the location network a detached ``h_t``: REINFORCE on the location log-probs
    then trains the location network only, never the core or glimpse networks. With
    ``False`` the location gradient also flows into the core and glimpse networks (as in
    the paper's pure-REINFORCE derivation, where all parameters follow the policy
    gradient)."""

    location_dim: int = 2
    """Dimension of a location (2 for images)."""

    location_mlp_hidden: int = 0
    """Units of a hidden ReLU layer of the location network, between ``h_t`` and the mean
    (``tanh(Linear(ReLU(Linear(h_t))))``, as some public reproductions have it); 0: the
    paper's ``tanh(Linear(h_t))``."""

    stop: bool = False
    """Add the :class:`~agents.stopping.StopNetwork` (for envs made with ``stop="action"``):
    the model then also decides after every glimpse whether to stop. False: the model, its
    parameters and its checkpoints are exactly those without the option."""

    detach_stop_input: bool = True
    """Feed the stop network a detached ``h_t`` (its REINFORCE term then trains the stop
    network only, as for the location network)."""

    stop_mlp_hidden: int = 0
    """Units of a hidden ReLU layer of the stop network (0: ``Linear(h_t)``)."""

    stop_input: Literal["state", "confidence", "both"] = "state"
    """What the stop network reads: ``"state"`` ``h_t`` (DT-RAM); ``"confidence"`` the
    log-odds of the step's most likely class (detached;
    :meth:`~agents.stopping.StopNetwork.confidence`), which a linear function of the
    non-negative, strongly correlated ReLU state expresses poorly; ``"both"`` the two."""

    stop_bias_init: float = -2.0
    """Initial stop logit: the stop network's last layer starts with zero weights and this
    bias, so every step first stops with probability ``sigmoid(stop_bias_init)`` (-2: 0.12,
    about 5 of 7 glimpses on average: mostly long episodes, some early stops to learn from)."""


@dataclass
class StepOutput:
    """What :meth:`agents.ram.RecurrentAttentionModel.step` returns for one glimpse.

    Attributes:
        location: (N, L) next glimpse location, sampled (or the mean when
            deterministic), clamped to ``[-1, 1]`` and detached.
        location_log_prob: (N,) log-density of the *unclamped* sample under the Gaussian
            policy, summed over the L coordinates; differentiable w.r.t. the location
            network only (and the core / glimpse networks when
            ``detach_location_input=False``). None when not ``scored``.
        sample: (N, L) the unclamped sample (the mean when deterministic), detached:
            what :meth:`agents.ram.RecurrentAttentionModel.replay` scores.
        location_mean: (N, L) mean of the Gaussian policy, ``tanh(Linear(h_t))``.
        logits: (N, C) class logits from the action network.
        baseline: (N,) baseline ``b_t`` (differentiable w.r.t. the baseline network only);
            None when not ``scored``.
        state: new core state (see :data:`CoreState`).
        stop_logit: (N,) logit of the stop probability (None without a stop network).
        stop: (N,) float 1.0 (stop after this glimpse) or 0.0 (go on), detached: sampled,
            or ``stop_logit > 0`` when deterministic (None without a stop network).
        stop_log_prob: (N,) log-probability of ``stop`` (None without a stop network or
            when not ``scored``).
    """

    location: Tensor
    location_log_prob: Tensor | None
    sample: Tensor
    location_mean: Tensor
    logits: Tensor
    baseline: Tensor | None
    state: CoreState
    stop_logit: Tensor | None = None
    stop: Tensor | None = None
    stop_log_prob: Tensor | None = None


@dataclass
class ReplayOutput:
    """Differentiable outputs of :meth:`agents.ram.RecurrentAttentionModel.replay` over a rollout.

    Attributes:
        location_log_probs: (T, N) log pi(l_t) of the recorded location samples.
        location_means: (T, N, L) location means.
        baselines: (T, N) baselines ``b_t``.
        all_logits: (T, N, C) class logits after every glimpse.
        stop_logits: (T, N) stop logits after every glimpse (None without a stop network).
        stop_log_probs: (T, N) log-probabilities of the recorded stop decisions (None
            without a stop network or recorded decisions).
    """

    location_log_probs: Tensor
    location_means: Tensor
    baselines: Tensor
    all_logits: Tensor
    stop_logits: Tensor | None = None
    stop_log_probs: Tensor | None = None

    @property
    def logits(self) -> Tensor:
        """(N, C) class logits of the final step (the judged one)."""
        return self.all_logits[-1]


def glimpse_size(observation_space: gym.Space) -> int:
    """Number of glimpse features: every observation entry except ``location``, flattened.

    Args:
        observation_space: a single (unbatched) ``Box`` or ``Dict`` of ``Box`` spaces.

    Returns:
        The flattened size D.

    Raises:
        TypeError: for other space types.
    """
    if isinstance(observation_space, gym.spaces.Dict):
        return sum(
            glimpse_size(space)
            for key, space in observation_space.spaces.items()
            if key != LOCATION_KEY
        )
    if isinstance(observation_space, gym.spaces.Box):
        return int(np.prod(observation_space.shape))
    raise TypeError(
        f"observations must be a Box or a Dict of Box spaces, got {type(observation_space)}"
    )


#: Parameter names of the ``nn.*Cell`` cores of earlier checkpoints -> the modules' names.
_CELL_KEYS = {
    f"cell.{kind}_{part}": f"rnn.{kind}_{part}_l0"
    for kind in ("weight", "bias")
    for part in ("ih", "hh")
}


def _rename_cell_keys(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load a checkpoint saved when the core was an ``nn.RNNCell`` / ``GRUCell`` /
    ``LSTMCell`` (the shipped models): same tensors, other names."""
    for old, new in _CELL_KEYS.items():
        if prefix + old in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
