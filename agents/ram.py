"""The Recurrent Attention Model (RAM) of Mnih, Heess, Graves and Kavukcuoglu (2014).

One :class:`torch.nn.Module` per component of the paper ("Recurrent Models of Visual
Attention", NIPS 2014), named as in the paper:

* :class:`GlimpseNetwork`: ``h_g = ReLU(Linear(rho))``, ``h_l = ReLU(Linear(l))``,
  ``g_t = ReLU(Linear(h_g) + Linear(h_l))``.
* :class:`CoreNetwork`: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))`` (or an LSTM / GRU).
* :class:`LocationNetwork`: a 2-D Gaussian policy with mean ``tanh(Linear(h_t))`` and a
  fixed standard deviation (optionally with one hidden ReLU layer before the mean).
* :class:`ActionNetwork`: ``Linear(h_t)`` giving class logits.
* :class:`BaselineNetwork`: ``Linear(h_t)`` giving the REINFORCE baseline ``b_t``.
* :class:`StopNetwork` (only with ``RAMConfig(stop=True)``, for the adaptive envs): a
  Bernoulli stop policy ``s_t ~ Bernoulli(sigmoid(Linear(h_t)))`` (DT-RAM, Li et al. 2017):
  ``s_t = 1`` ends the episode after glimpse t.

:class:`RecurrentAttentionModel` composes them. It acts one glimpse at a time with
:meth:`~RecurrentAttentionModel.step` and trains with
:meth:`~RecurrentAttentionModel.replay`: a rollout is played without autograd (recording
glimpses, locations and location samples), then one batched forward over the whole
episode (glimpse network and heads on T x N rows, the core as ``nn.RNN`` / ``nn.GRU`` /
``nn.LSTM`` over T) gives differentiable outputs, and autograd does the backward. Mixed
precision is ``torch.autocast`` around both. The model never sees an image: it receives the
glimpse (whatever the environment's retina produced) and the location it was taken at,
which keeps it independent of the environment's image size.

Its config (:class:`RAMConfig`), the step and replay outputs, :data:`CoreState`,
:func:`glimpse_size` and the load hook of older checkpoints are defined in
:mod:`agents.ram_types` and re-exported here.

Gradient routing (the pitfalls that broke public reproductions):

* The location network reads a *detached* ``h_t`` (by default), and the sampled location
  is detached before it is fed back, so the location network is trained by REINFORCE
  only and REINFORCE does not reach the core / glimpse networks through it.
* The baseline network reads a detached ``h_t``: it learns only from its squared error.
* The stop network reads a detached ``h_t`` too (by default): its REINFORCE term trains
  the stop network only.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.ram_types import (
    LOCATION_KEY,
    CoreState,
    RAMConfig,
    ReplayOutput,
    StepOutput,
    _rename_cell_keys,
    glimpse_size,
)
from agents.stopping import StopNetwork
from glimpse_env.actions import LOCATION_DIM, class_count

__all__ = [
    "LOCATION_KEY",
    "ActionNetwork",
    "BaselineNetwork",
    "CoreNetwork",
    "CoreState",
    "GlimpseNetwork",
    "LocationNetwork",
    "RAMConfig",
    "RecurrentAttentionModel",
    "ReplayOutput",
    "StepOutput",
    "StopNetwork",
    "class_count",
    "count_parameters",
    "glimpse_size",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class GlimpseNetwork(nn.Module):
    """Glimpse network ``f_g``: combines "what" (the glimpse) and "where" (its location).

    ``h_g = ReLU(Linear(rho))``, ``h_l = ReLU(Linear(l))``,
    ``g_t = ReLU(Linear(h_g) + Linear(h_l))``.
    """

    def __init__(
        self,
        glimpse_dim: int,
        location_dim: int = 2,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        out_features: int = 256,
    ) -> None:
        """Build the glimpse network.

        Args:
            glimpse_dim: number of glimpse features D (all retina pixels, flattened).
            location_dim: dimension L of a location.
            glimpse_hidden: units of ``h_g``.
            location_hidden: units of ``h_l``.
            out_features: units of ``g_t``.
        """
        super().__init__()
        self.glimpse_dim = glimpse_dim
        self.fc_glimpse = nn.Linear(glimpse_dim, glimpse_hidden)
        self.fc_location = nn.Linear(location_dim, location_hidden)
        self.fc_what = nn.Linear(glimpse_hidden, out_features)
        self.fc_where = nn.Linear(location_hidden, out_features)

    def forward(self, glimpse: Tensor, location: Tensor) -> Tensor:
        """Compute ``g_t``.

        Args:
            glimpse: (N, *) retina output rho; flattened to (N, D).
            location: (N, L) location the glimpse was taken at.

        Returns:
            (N, out_features) glimpse feature ``g_t``.
        """
        h_g = F.relu(self.fc_glimpse(glimpse.reshape(glimpse.shape[0], -1)))
        h_l = F.relu(self.fc_location(location))
        return F.relu(self.fc_what(h_g) + self.fc_where(h_l))


class CoreNetwork(nn.Module):
    """Core network ``f_h``: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))`` (or LSTM / GRU).

    One single-layer ``nn.RNN`` (ReLU) / ``nn.GRU`` / ``nn.LSTM``: :meth:`forward` advances
    one step with its weights (the matching cell function), :meth:`sequence` runs the whole
    module over T steps from the zero state.
    """

    def __init__(self, input_size: int = 256, hidden_size: int = 256, core: str = "rnn") -> None:
        """Build the core network.

        Args:
            input_size: size of ``g_t``.
            hidden_size: size H of ``h_t``.
            core: ``"rnn"`` (ReLU RNN, the paper), ``"lstm"`` or ``"gru"``.

        Raises:
            ValueError: for an unknown ``core``.
        """
        super().__init__()
        if core not in _CORES:
            raise ValueError(f"core must be 'rnn', 'lstm' or 'gru', got {core!r}")
        self.core = core
        self.hidden_size = hidden_size
        if core == "rnn":
            self.rnn: nn.RNNBase = nn.RNN(input_size, hidden_size, nonlinearity="relu")
        else:
            self.rnn = _CORES[core](input_size, hidden_size)
        self._register_load_state_dict_pre_hook(_rename_cell_keys)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> CoreState:
        """Zero state.

        Args:
            batch: batch size N.
            device: where to allocate it.

        Returns:
            (N, H) zeros, or a pair of them for the LSTM.
        """
        h = torch.zeros(batch, self.hidden_size, device=device)
        if self.core == "lstm":
            return h, torch.zeros_like(h)
        return h

    def forward(self, g: Tensor, state: CoreState | None) -> tuple[Tensor, CoreState]:
        """Advance one step.

        Args:
            g: (N, input_size) glimpse feature ``g_t``.
            state: previous state (see :data:`CoreState`); None: zeros.

        Returns:
            ``(h_t, new_state)`` with ``h_t`` (N, H).
        """
        if state is None:
            h0 = g.new_zeros(g.shape[0], self.hidden_size)
            state = (h0, h0) if self.core == "lstm" else h0
        rnn = self.rnn
        weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        if self.core == "lstm":
            h, c = torch.lstm_cell(g, state, *weights)
            return h, (h, c)
        assert isinstance(state, Tensor)
        cell = torch.rnn_relu_cell if self.core == "rnn" else torch.gru_cell
        h = cell(g, state.to(g.dtype), *weights)
        return h, h

    def sequence(self, g: Tensor) -> Tensor:
        """Run T steps from the zero state.

        Args:
            g: (T, N, input_size) glimpse features.

        Returns:
            (T, N, H) core states ``h_1 .. h_T``.
        """
        return self.rnn(g)[0]


#: Core cells by name (the ReLU RNN is ``nn.RNN(nonlinearity="relu")``).
_CORES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class LocationNetwork(nn.Module):
    """Location network ``f_l``: Gaussian policy ``l_t ~ N(tanh(Linear(h_t)), std^2 I)``.

    With ``mlp_hidden > 0`` the mean is ``tanh(Linear(ReLU(Linear(h_t))))`` instead. The
    mean is computed from a detached ``h_t`` (unless ``detach_input=False``) and the
    sample is detached, so this network gets gradient only from the REINFORCE term on
    ``location_log_prob``.
    """

    def __init__(
        self,
        hidden_size: int = 256,
        location_dim: int = 2,
        std: float = 0.15,
        detach_input: bool = True,
        mlp_hidden: int = 0,
    ) -> None:
        """Build the location network.

        Args:
            hidden_size: size H of ``h_t``.
            location_dim: dimension L of a location.
            std: default fixed standard deviation of the policy.
            detach_input: read ``h_t.detach()`` instead of ``h_t``.
            mlp_hidden: units M of a hidden ReLU layer (0: none, the paper's linear mean).

        Raises:
            ValueError: if ``mlp_hidden`` is negative.
        """
        super().__init__()
        if mlp_hidden < 0:
            raise ValueError(f"mlp_hidden must be >= 0 (0: no hidden layer), got {mlp_hidden}")
        #: ``Linear(H, M)`` of the hidden layer, or ``None`` (the paper's linear mean).
        self.hidden = nn.Linear(hidden_size, mlp_hidden) if mlp_hidden else None
        self.fc = nn.Linear(mlp_hidden or hidden_size, location_dim)
        self.std = std
        self.detach_input = detach_input

    def forward(
        self,
        h: Tensor,
        *,
        std: float | None = None,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sample the next location.

        Args:
            h: (N, H) core state ``h_t``.
            std: standard deviation (default: the constructor's).
            deterministic: return the mean instead of a sample.
            generator: random generator for the sample.

        Returns:
            ``(location, log_prob, mean)``: (N, L) clamped, detached location; (N,)
            log-density of the unclamped sample (the mean when deterministic); (N, L)
            mean.
        """
        std = self.std if std is None else float(std)
        mean = self.mean(h)
        sample = self.sample(mean, std, deterministic=deterministic, generator=generator)
        return sample.clamp(-1.0, 1.0), self.log_prob(sample, mean, std), mean

    def mean(self, h: Tensor) -> Tensor:
        """Mean of the policy, ``tanh(Linear(h_t))`` (from a detached ``h_t`` by default).

        Args:
            h: (..., H) core states.

        Returns:
            (..., L) means.
        """
        x = h.detach() if self.detach_input else h
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        return torch.tanh(self.fc(x))

    @staticmethod
    def sample(
        mean: Tensor,
        std: float,
        *,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """Draw an (unclamped, detached) location from ``N(mean, std^2 I)``.

        Args:
            mean: (N, L) policy mean.
            std: standard deviation.
            deterministic: return the mean itself.
            generator: random generator (the noise has ``mean``'s dtype).
            out: optional (N, L) tensor to write the sample into.

        Returns:
            (N, L) detached sample (``out`` when given).
        """
        if deterministic:
            return mean.detach() if out is None else out.copy_(mean)
        return torch.normal(mean.detach(), std, generator=generator, out=out)

    @staticmethod
    def log_prob(sample: Tensor, mean: Tensor, std: float) -> Tensor:
        """Log-density of ``sample`` under ``N(mean, std^2 I)``, summed over coordinates.

        Args:
            sample: (..., L) unclamped sample (no gradient).
            mean: (..., L) mean (gradient flows through it).
            std: standard deviation.

        Returns:
            (...) log-probabilities.
        """
        z = (sample - mean) / std
        return -0.5 * z.square().sum(-1) - mean.shape[-1] * (math.log(std) + _LOG_SQRT_2PI)


class ActionNetwork(nn.Module):
    """Action network ``f_a``: ``Linear(h_t)`` giving class logits (softmax policy)."""

    def __init__(self, hidden_size: int = 256, n_classes: int = 10) -> None:
        """Build the action network.

        Args:
            hidden_size: size H of ``h_t``.
            n_classes: number of classes C.
        """
        super().__init__()
        self.fc = nn.Linear(hidden_size, n_classes)

    def forward(self, h: Tensor) -> Tensor:
        """Class logits.

        Args:
            h: (N, H) core state.

        Returns:
            (N, C) logits.
        """
        return self.fc(h)


class BaselineNetwork(nn.Module):
    """Baseline ``b_t = Linear(h_t.detach())``, learned by squared error to the return."""

    def __init__(self, hidden_size: int = 256) -> None:
        """Build the baseline network.

        Args:
            hidden_size: size H of ``h_t``.
        """
        super().__init__()
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, h: Tensor) -> Tensor:
        """Baseline value.

        Args:
            h: (N, H) core state (detached here).

        Returns:
            (N,) baseline ``b_t``.
        """
        return self.fc(h.detach()).squeeze(-1)


class RecurrentAttentionModel(nn.Module):
    """The Recurrent Attention Model: glimpse, core, location, action and baseline networks."""

    def __init__(self, glimpse_dim: int, n_classes: int, config: RAMConfig | None = None) -> None:
        """Build RAM.

        Args:
            glimpse_dim: flattened glimpse size D.
            n_classes: number of classes C.
            config: sizes and options (default: the paper's).
        """
        super().__init__()
        self.config = config = config or RAMConfig()
        self.glimpse_dim = glimpse_dim
        self.n_classes = n_classes
        self.glimpse_network = GlimpseNetwork(
            glimpse_dim,
            config.location_dim,
            config.glimpse_hidden,
            config.location_hidden,
            config.glimpse_out,
        )
        self.core_network = CoreNetwork(config.glimpse_out, config.core_hidden, config.core)
        self.location_network = LocationNetwork(
            config.core_hidden,
            config.location_dim,
            config.location_std,
            config.detach_location_input,
            config.location_mlp_hidden,
        )
        self.action_network = ActionNetwork(config.core_hidden, n_classes)
        self.baseline_network = BaselineNetwork(config.core_hidden)
        # Built last: the other networks' initial weights do not depend on the option.
        self.stop_network = (
            StopNetwork(
                config.core_hidden,
                detach_input=config.detach_stop_input,
                mlp_hidden=config.stop_mlp_hidden,
                bias_init=config.stop_bias_init,
                read_state=config.stop_input != "confidence",
                read_confidence=config.stop_input != "state",
            )
            if config.stop
            else None
        )

    @classmethod
    def from_spaces(
        cls,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: RAMConfig | None = None,
    ) -> RecurrentAttentionModel:
        """Size a model from a single environment's spaces.

        Args:
            observation_space: ``Box`` or ``Dict`` (every key except ``location`` is
                glimpse input, flattened).
            action_space: ``Box`` of shape ``(L + C,)``: L location coordinates, then C
                class scores (then the stop score with ``config.stop``).
            config: sizes and options.

        Returns:
            The model.

        Raises:
            ValueError: if the action space is not a 1-D Box with at least one class.
        """
        config = config or RAMConfig()
        if config.location_dim != LOCATION_DIM:
            raise ValueError(
                f"location_dim must be {LOCATION_DIM} (the glimpse envs' action layout), "
                f"got {config.location_dim}"
            )
        n_classes = class_count(action_space, stop=config.stop)
        if (
            isinstance(observation_space, gym.spaces.Dict)
            and LOCATION_KEY in observation_space.spaces
        ):
            loc_shape = observation_space[LOCATION_KEY].shape
            if loc_shape != (config.location_dim,):
                raise ValueError(
                    f"observation 'location' has shape {loc_shape}, "
                    f"expected ({config.location_dim},)"
                )
        return cls(glimpse_size(observation_space), n_classes, config)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> CoreState:
        """Zero core state for a batch of N episodes.

        Args:
            batch: N.
            device: where to allocate it.

        Returns:
            (N, H) zeros, or an ``(h, c)`` pair for the LSTM core.
        """
        return self.core_network.initial_state(batch, device)

    def step(
        self,
        glimpse: Tensor,
        location: Tensor,
        state: CoreState | None,
        *,
        deterministic: bool = False,
        std: float | None = None,
        generator: torch.Generator | None = None,
        scored: bool = True,
    ) -> StepOutput:
        """Take in glimpse t, update the core, emit location t+1, logits and baseline (and
        the stop decision with a stop network).

        Args:
            glimpse: (N, *) glimpse features (flattened to (N, D)).
            location: (N, L) location glimpse t was taken at.
            state: core state after glimpse t-1; None: the zero initial state.
            deterministic: use the mean location instead of sampling.
            std: location policy std (default ``config.location_std``).
            generator: random generator for the location sample (then the stop draw).
            scored: also compute the location's (and stop's) log-probability and the
                baseline (False: only what acting needs, those None; what a rollout
                without autograd does).

        Returns:
            The :class:`StepOutput`.
        """
        g = self.glimpse_network(glimpse, location)
        h, new_state = self.core_network(g, state)
        std = self.location_network.std if std is None else float(std)
        mean = self.location_network.mean(h)
        sample = LocationNetwork.sample(mean, std, deterministic=deterministic, generator=generator)
        out = StepOutput(
            location=sample.clamp(-1.0, 1.0),
            location_log_prob=LocationNetwork.log_prob(sample, mean, std) if scored else None,
            sample=sample,
            location_mean=mean,
            logits=self.action_network(h),
            baseline=self.baseline_network(h) if scored else None,
            state=new_state,
        )
        if self.stop_network is not None:
            out.stop_logit = self.stop_network(h, out.logits)
            out.stop = StopNetwork.sample(
                out.stop_logit, deterministic=deterministic, generator=generator
            )
            if scored:
                out.stop_log_prob = StopNetwork.log_prob(out.stop, _full(out.stop_logit))
        return out

    def replay(
        self,
        glimpses: Tensor,
        locations: Tensor,
        samples: Tensor,
        std: float,
        stops: Tensor | None = None,
    ) -> ReplayOutput:
        """Differentiable outputs of a recorded rollout, in one batched forward.

        The rollout's steps ran without autograd (:meth:`step` under ``torch.no_grad``);
        this recomputes them over all T steps at once: the glimpse network and the heads
        on T x N rows, the core over T. The values are those of :meth:`step` (up to
        floating-point rounding) and autograd's backward through them gives the gradients
        of a step-by-step unroll (tested).

        Args:
            glimpses: (T, N, *) glimpses (flattened to (T, N, D)).
            locations: (T, N, L) locations the glimpses were taken at.
            samples: (T, N, L) unclamped location samples drawn after each glimpse
                (:attr:`StepOutput.sample`).
            std: the location std the samples were drawn with.
            stops: (T, N) stop decisions taken after each glimpse (:attr:`StepOutput.stop`),
                scored in ``stop_log_probs`` (with a stop network).

        Returns:
            The :class:`ReplayOutput`.
        """
        t, n = glimpses.shape[:2]
        g = self.glimpse_network(glimpses.reshape(t * n, -1), locations.reshape(t * n, -1))
        h = self.core_network.sequence(g.view(t, n, -1))
        means = self.location_network.mean(h)
        out = ReplayOutput(
            location_log_probs=LocationNetwork.log_prob(samples, _full(means), std),
            location_means=means,
            baselines=_full(self.baseline_network(h)),
            all_logits=_full(self.action_network(h)),
        )
        if self.stop_network is not None:
            out.stop_logits = _full(self.stop_network(h, out.all_logits))
            if stops is not None:
                out.stop_log_probs = StopNetwork.log_prob(stops, out.stop_logits)
        return out


def _full(x: Tensor) -> Tensor:
    """``x`` in at least float32 (autocast's bfloat16 outputs -> float32; float64 stays)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of a module.

    Args:
        module: the module.
        trainable_only: count only parameters with ``requires_grad``.

    Returns:
        The count.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
