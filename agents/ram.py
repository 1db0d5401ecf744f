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

:class:`RecurrentAttentionModel` composes them and advances one glimpse at a time with
:meth:`RecurrentAttentionModel.step`. The model never sees an image: it receives the
glimpse (whatever the environment's retina produced) and the location the glimpse was
taken at, which keeps it independent of the environment's image size.

Gradient routing (the pitfalls that broke public reproductions):

* The location network reads a *detached* ``h_t`` (by default), and the sampled location
  is detached before it is fed back, so the location network is trained by REINFORCE
  only and REINFORCE does not reach the core / glimpse networks through it.
* The baseline network reads a detached ``h_t``: it learns only from its squared error.

Training speed: with a :class:`RolloutTape`, :meth:`RecurrentAttentionModel.step` runs
without autograd and :meth:`RecurrentAttentionModel.replay` backpropagates through time
with one matrix product per layer over all T steps (hand-written, checked against
autograd in the tests), instead of T small autograd steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from typing import Any, Literal, TypeAlias

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    "RolloutTape",
    "StepOutput",
    "class_count",
    "count_parameters",
    "glimpse_size",
]

#: Observation key holding the location (in ``[-1, 1]^2``) a glimpse was taken at.
LOCATION_KEY = "location"

#: Recurrent state of the core network: ``h`` (N, H) for the ReLU RNN and the GRU, the
#: pair ``(h, c)`` (each (N, H)) for the LSTM.
CoreState: TypeAlias = Tensor | tuple[Tensor, Tensor]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class RAMConfig:
    """Sizes and options of a :class:`RecurrentAttentionModel` (defaults: the paper)."""

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
    (used when :meth:`RecurrentAttentionModel.step` gets no ``std``). Public
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
    paper's ``tanh(Linear(h_t))``. Not available with :class:`RolloutTape` (the model then
    trains through autograd)."""


@dataclass
class StepOutput:
    """What :meth:`RecurrentAttentionModel.step` returns for one glimpse.

    Attributes:
        location: (N, L) next glimpse location, sampled (or the mean when
            deterministic), clamped to ``[-1, 1]`` and detached.
        location_log_prob: (N,) log-density of the *unclamped* sample under the Gaussian
            policy, summed over the L coordinates; differentiable w.r.t. the location
            network only (and the core / glimpse networks when
            ``detach_location_input=False``). None for a step recorded on a
            :class:`RolloutTape` (:meth:`RecurrentAttentionModel.replay` gives them).
        location_mean: (N, L) mean of the Gaussian policy, ``tanh(Linear(h_t))``.
        logits: (N, C) class logits from the action network.
        baseline: (N,) baseline ``b_t`` (differentiable w.r.t. the baseline network only).
        state: new core state (see :data:`CoreState`).
    """

    location: Tensor
    location_log_prob: Tensor | None
    location_mean: Tensor
    logits: Tensor
    baseline: Tensor
    state: CoreState


class RolloutTape:
    """Activations recorded by no-grad :meth:`RecurrentAttentionModel.step` calls.

    A tape lets training skip autograd during the rollout: every step runs without
    gradient and stores its activations; :meth:`RecurrentAttentionModel.replay` then
    returns differentiable outputs whose backward pass runs over all T steps at once
    (batched matrix products, a hand-written backpropagation through time) instead of
    step by step. Only the paper's ReLU RNN core with its linear location mean supports it
    (:attr:`RecurrentAttentionModel.supports_tape`). The gradients are those autograd
    computes through :meth:`RecurrentAttentionModel.step` (tested).

    Recorded activations (each (T, N, .) once stacked; see :meth:`stacked`):
    ``glimpses`` ([rho_t, l_t], the glimpse network's input: flattened glimpse and the
    location it was taken at), ``what_where`` ([h_g, h_l]), ``core_input``
    ([g_t, h_{t-1}]), ``hidden`` (h_t),
    ``hidden_heads`` (h_t in the heads' dtype, only when it differs from the compute
    dtype), ``heads`` ([location mean, baseline, logits], the three heads' outputs) and
    ``samples`` (unclamped location samples). The concatenations let each layer pair (and
    the three heads) run as one matrix product, forward and backward.

    With ``compute_dtype=torch.bfloat16`` the glimpse and core networks (the matrix
    products that dominate the cost) run and are recorded in bfloat16 from bfloat16 copies
    of the float32 weights, and their backward pass too (as under ``torch.autocast``, the
    location l_t enters the glimpse network in bfloat16); the heads (location mean and
    sample, log-probabilities, logits, baseline) and every parameter gradient stay float32
    (the glimpse and core layers' weight and bias gradients come out of bfloat16
    products, so they carry bfloat16 rounding). On CPUs with native bfloat16 arithmetic
    (AVX512-BF16, AMX) this about halves the time of those products; the values differ
    from float32 by bfloat16 rounding (about 3 significant digits).

    One tape can record many rollouts: :meth:`reset` starts the next one and, once the
    previous replay has been backpropagated, reuses its storage (the buffers, their ones
    columns, the per-step views and the widened weights), which saves most of the
    per-step bookkeeping. :class:`~agents.reinforce.ReinforceTrainer` keeps one tape.

    Attributes:
        horizon: number of steps T if known: activations are then written straight into
            preallocated (T, N, .) buffers (no stacking copies); None: kept in lists.
        compute_dtype: dtype of the glimpse/core activations (None: the parameters').
        std: location std used at every step (set by the first step).
        logits: (N, C) class logits of the latest step.
        steps: number of recorded steps.
        frames: per-step views into the storage, kept by the model between rollouts
            (see :meth:`RecurrentAttentionModel.step`).
        step_weights: the rollout's weights as its steps use them (set by the model at
            the first step).
        layout: what the storage was made for (set by the model; a different layout at
            the first step of a rollout drops the storage).
    """

    def __init__(
        self, horizon: int | None = None, compute_dtype: torch.dtype | None = None
    ) -> None:
        """Create an empty tape.

        Args:
            horizon: number of steps T, when known in advance.
            compute_dtype: dtype of the glimpse and core networks' activations and
                products (None: the parameters' dtype; ``torch.bfloat16``: mixed precision).
        """
        self.horizon = horizon
        self.compute_dtype = compute_dtype
        self.std = 0.0
        self.logits: Tensor | None = None
        self.steps = 0
        self.frames: list[Any] = []
        self.layout: tuple[Any, ...] | None = None
        self.step_weights: tuple[Tensor, ...] = ()
        self._weights: dict[str, Tensor] = {}
        self._spare_weights: dict[str, Tensor] = {}
        self._lists: dict[str, list[Tensor]] = {}
        self._buffers: dict[str, Tensor] = {}
        self._in_use = False  # replayed, and that replay not backpropagated yet

    def reset(
        self, horizon: int | None = None, compute_dtype: torch.dtype | None = None
    ) -> RolloutTape:
        """Start recording a new rollout on this tape.

        The storage of the previous rollout is reused when it can be: same horizon and
        compute dtype, and its replay (if any) already backpropagated (the backward pass
        reads it). Otherwise it is dropped (left to the previous replay's graph) and new
        storage is allocated as the steps come. On reused storage the next rollout
        overwrites the tensors the previous steps returned (views of it), and
        backpropagating the previous replay again would read the new rollout.

        Args:
            horizon: number of steps T, when known in advance.
            compute_dtype: as in the constructor.

        Returns:
            This tape, empty.
        """
        if self._in_use or horizon != self.horizon or compute_dtype != self.compute_dtype:
            self.drop_storage()
        else:
            self._spare_weights = self._weights
        self.horizon, self.compute_dtype = horizon, compute_dtype
        self._weights, self._lists = {}, {}
        if horizon is None:  # list storage is never reused
            self.frames, self.layout = [], None
        self.std, self.logits, self.steps, self._in_use = 0.0, None, 0, False
        return self

    def hold(self) -> None:
        """Mark the storage as read by a pending replay (:meth:`reset` will not reuse it)."""
        self._in_use = True

    def release(self) -> None:
        """Mark the replay's backward pass as done (:meth:`reset` may reuse the storage)."""
        self._in_use = False

    def drop_storage(self) -> None:
        """Forget the reusable storage (the next steps allocate anew)."""
        self.frames, self.layout, self._buffers, self._spare_weights = [], None, {}, {}

    def __len__(self) -> int:
        """Number of recorded steps."""
        return self.steps

    def slot(
        self, name: str, shape: tuple[int, ...], like: Tensor, ones_column: bool = False
    ) -> Tensor:
        """Uninitialised storage for activation ``name`` of the current step.

        Args:
            name: activation name.
            shape: its per-step shape, e.g. (N, F).
            like: a tensor with the wanted dtype and device.
            ones_column: widen the last dimension to :func:`biased_width` ``(F)``: column
                F holds ones and the rest zeros, so that a product with ``[W | b | 0]``
                adds the bias, and the weight gradient ``d_out^T @ [x | 1 | 0]`` holds
                the bias gradient in its column F.

        Returns:
            A tensor of ``shape`` (widened with ``ones_column``) to write the activation
            into (its first F columns).

        Raises:
            ValueError: past the tape's horizon.
        """
        features = shape[-1]
        if ones_column:
            shape = (*shape[:-1], biased_width(features))
        if self.horizon is None:
            out = like.new_empty(shape)
            if ones_column:
                _fill_ones_column(out, features)
            self._lists.setdefault(name, []).append(out)
            return out
        if self.steps >= self.horizon:
            raise ValueError(f"the tape holds {self.horizon} steps")
        buffer = self._buffers.get(name)
        if buffer is None:
            buffer = self._buffers[name] = like.new_empty((self.horizon, *shape))
            if ones_column:
                _fill_ones_column(buffer, features)
        return buffer[self.steps]

    def weight(self, key: str, build: Callable[[Tensor | None], Tensor]) -> Tensor:
        """A tensor derived from the parameters, built once per rollout.

        Args:
            key: name of the result (the same key returns the cached tensor).
            build: makes it from the parameters (a concatenation of weights, a sum of
                biases), in the dtype it is used in; called only the first time ``key`` is
                asked for in a rollout, with the previous rollout's tensor for ``key`` to
                write into when the storage is reused (else None).

        Returns:
            A detached tensor (the parameters do not change during a rollout).
        """
        cached = self._weights.get(key)
        if cached is None:
            cached = self._weights[key] = build(self._spare_weights.pop(key, None)).detach()
        return cached

    def has(self, name: str) -> bool:
        """Whether activation ``name`` was recorded."""
        return name in self._lists or name in self._buffers

    def stacked(self, name: str) -> Tensor:
        """(T, N, .) activation ``name`` over the recorded steps.

        Args:
            name: activation name.

        Returns:
            The stacked tensor.
        """
        if self.horizon is None:
            return torch.stack(self._lists[name])
        return self._buffers[name][: self.steps]


def biased_width(features: int) -> int:
    """Width of an activation of F features with a ones column: F + 1, rounded up to a
    multiple of 32 elements (aligned rows for the matrix products)."""
    return -(-(features + 1) // 32) * 32


def _fill_ones_column(x: Tensor, features: int) -> None:
    """Zero the padding of a widened activation ``x (..., biased_width(F))`` and write
    ones in its column F."""
    x[..., features:] = 0.0
    x[..., features] = 1.0


def _with_bias(
    weights: Sequence[Tensor],
    bias: Tensor,
    dtype: torch.dtype | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``[W_1 | ... | W_k | b | 0]`` (out, biased_width(in)), in ``dtype`` (default: the
    weights'): Linears summed over side-by-side inputs as one product with an input widened
    by :meth:`RolloutTape.slot` ``(ones_column=True)``. ``out``: an earlier result of the
    same shape and dtype to overwrite (its zero padding is kept)."""
    in_features = sum(weight.shape[1] for weight in weights)
    shape = (bias.shape[0], biased_width(in_features))
    fresh = out is None or out.shape != shape or out.dtype != (dtype or bias.dtype)
    widened = bias.new_empty(shape, dtype=dtype) if fresh else out
    assert widened is not None
    start = 0
    for weight in weights:
        widened[:, start : start + weight.shape[1]] = weight
        start += weight.shape[1]
    widened[:, start] = bias
    if fresh:
        widened[:, start + 1 :] = 0.0
    return widened


@dataclass
class _TapeFrame:
    """Views into a :class:`RolloutTape`'s storage for one step (built once, reused)."""

    x: Tensor  # (N, biased_width(D + L)): [rho_t | l_t | 1 | 0]
    glimpse: Tensor  # its rho_t columns
    location: Tensor  # its l_t columns
    what_where: Tensor  # (N, biased_width(H_g + H_l)): [h_g | h_l | 1 | 0]
    what_where_out: Tensor  # its [h_g | h_l] columns
    core_input: Tensor  # (N, biased_width(G + H)): [g_t | h_{t-1} | 1 | 0]
    g_out: Tensor  # its g_t columns
    previous_hidden: Tensor  # its h_{t-1} columns
    hidden: Tensor  # (N, H) h_t, compute dtype
    hidden_heads: Tensor  # (N, H) h_t in the heads' dtype (``hidden`` itself if the same)
    heads: Tensor  # (N, L + 1 + C): [mean | baseline | logits]
    mean: Tensor
    baseline: Tensor
    logits: Tensor
    sample: Tensor  # (N, L) unclamped location sample


@dataclass
class ReplayOutput:
    """Differentiable outputs of a :class:`RolloutTape` (see :meth:`RecurrentAttentionModel.replay`).

    Attributes:
        location_log_probs: (T, N) log pi(l_t) of the recorded samples.
        location_means: (T, N, L) location means.
        baselines: (T, N) baselines.
        logits: (N, C) class logits of the final step (the judged one).
    """

    location_log_probs: Tensor
    location_means: Tensor
    baselines: Tensor
    logits: Tensor


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
    """Core network ``f_h``: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))`` (or LSTM / GRU)."""

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
        self.core = core
        self.hidden_size = hidden_size
        # nn.RNNCell(relu) is exactly ReLU(W_ih g + b_ih + W_hh h + b_hh), in one fused op.
        if core == "rnn":
            self.cell: nn.Module = nn.RNNCell(input_size, hidden_size, nonlinearity="relu")
        elif core == "lstm":
            self.cell = nn.LSTMCell(input_size, hidden_size)
        elif core == "gru":
            self.cell = nn.GRUCell(input_size, hidden_size)
        else:
            raise ValueError(f"core must be 'rnn', 'lstm' or 'gru', got {core!r}")

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
        if self.core == "lstm":
            h, c = self.cell(g, state)
            return h, (h, c)
        h = self.cell(g, state)
        return h, h


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
        x = h.detach() if self.detach_input else h
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        mean = torch.tanh(self.fc(x))
        sample = self.sample(mean, std, deterministic=deterministic, generator=generator)
        return sample.clamp(-1.0, 1.0), self.log_prob(sample, mean, std), mean

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


def class_count(action_space: gym.Space, location_dim: int = 2) -> int:
    """Number of class scores C of a ``Box((location_dim + C,))`` action space.

    Raises:
        ValueError: if the action space is not a 1-D Box with at least one class.
    """
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"action space must be a 1-D Box (L + C,), got {action_space}")
    n_classes = int(action_space.shape[0]) - location_dim
    if n_classes < 1:
        raise ValueError(
            f"action space {action_space} leaves no class scores after "
            f"{location_dim} location entries"
        )
    return n_classes


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
                class scores.
            config: sizes and options.

        Returns:
            The model.

        Raises:
            ValueError: if the action space is not a 1-D Box with at least one class.
        """
        config = config or RAMConfig()
        n_classes = class_count(action_space, config.location_dim)
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
        tape: RolloutTape | None = None,
    ) -> StepOutput:
        """Take in glimpse t, update the core, emit location t+1, logits and baseline.

        Args:
            glimpse: (N, *) glimpse features (flattened to (N, D)).
            location: (N, L) location glimpse t was taken at.
            state: core state after glimpse t-1; None: the zero initial state (same as
                :meth:`initial_state`, without the matrix product by zeros).
            deterministic: use the mean location instead of sampling.
            std: location policy std (default ``config.location_std``).
            generator: random generator for the location sample.
            tape: record the activations on this tape and compute nothing
                differentiable (see :class:`RolloutTape`; RNN core only). The step's
                outputs are then plain tensors; call :meth:`replay` after the last step.

        Returns:
            The :class:`StepOutput`.
        """
        if tape is not None:
            return self._tape_step(glimpse, location, state, deterministic, std, generator, tape)
        g = self.glimpse_network(glimpse, location)
        h, new_state = self.core_network(g, state)
        next_location, log_prob, mean = self.location_network(
            h, std=std, deterministic=deterministic, generator=generator
        )
        return StepOutput(
            location=next_location,
            location_log_prob=log_prob,
            location_mean=mean,
            logits=self.action_network(h),
            baseline=self.baseline_network(h),
            state=new_state,
        )

    @property
    def supports_tape(self) -> bool:
        """Whether :class:`RolloutTape` recording is available (the ReLU RNN core with the
        paper's linear location mean)."""
        return self.config.core == "rnn" and self.location_network.hidden is None

    def _tape_parameters(self) -> list[Tensor]:
        gn, loc = self.glimpse_network, self.location_network
        cell = self.core_network.cell
        assert isinstance(cell, nn.RNNCell)
        return [
            gn.fc_glimpse.weight,
            gn.fc_glimpse.bias,
            gn.fc_location.weight,
            gn.fc_location.bias,
            gn.fc_what.weight,
            gn.fc_what.bias,
            gn.fc_where.weight,
            gn.fc_where.bias,
            cell.weight_ih,
            cell.bias_ih,
            cell.weight_hh,
            cell.bias_hh,
            loc.fc.weight,
            loc.fc.bias,
            self.action_network.fc.weight,
            self.action_network.fc.bias,
            self.baseline_network.fc.weight,
            self.baseline_network.fc.bias,
        ]

    def _tape_weight(self, tape: RolloutTape, key: Literal["glimpse", "g", "core"]) -> Tensor:
        """``[W | b | 0]`` (see :func:`_with_bias`) of the glimpse network's first layers
        ("glimpse": ``[[W_glimpse, 0], [0, W_location]]``, giving ``[h_g, h_l]``), of
        ``[W_what, W_where]`` ("g") or of ``[W_ih, W_hh]`` ("core"), with their (summed)
        biases, in the tape's compute dtype, built once per rollout (the rollout's
        products and their backward share it)."""
        return tape.weight(key, lambda out: self._biased_weight(key, tape.compute_dtype, out))

    @torch.no_grad()
    def _biased_weight(
        self,
        key: Literal["glimpse", "g", "core"],
        dtype: torch.dtype | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """What :meth:`_tape_weight` caches, built from the parameters (into ``out``, an
        earlier result, when given)."""
        gn, cell = self.glimpse_network, self.core_network.cell
        assert isinstance(cell, nn.RNNCell)
        if key == "glimpse":
            weight = torch.block_diag(gn.fc_glimpse.weight, gn.fc_location.weight)
            bias = torch.cat([gn.fc_glimpse.bias, gn.fc_location.bias])
            return _with_bias([weight], bias, dtype, out)
        if key == "g":
            weights = [gn.fc_what.weight, gn.fc_where.weight]
            return _with_bias(weights, gn.fc_what.bias + gn.fc_where.bias, dtype, out)
        weights = [cell.weight_ih, cell.weight_hh]
        return _with_bias(weights, cell.bias_ih + cell.bias_hh, dtype, out)

    def _start_tape(self, tape: RolloutTape, n: int, std: float) -> None:
        """First step of a rollout on ``tape``: check, fix the std and the layout, and
        build the rollout's weights (``tape.step_weights``: the transposed products'
        weights and the heads' bias)."""
        if not self.supports_tape:
            raise ValueError(
                "RolloutTape needs the 'rnn' core and the linear location mean, got core "
                f"{self.config.core!r}, location_mlp_hidden {self.config.location_mlp_hidden}"
            )
        tape.std = std
        head = self.location_network.fc.weight  # the heads' dtype (the parameters')
        layout = (
            n,
            self.glimpse_dim,
            self.n_classes,
            astuple(self.config),
            head.dtype,
            head.device,
        )
        if tape.layout != layout:
            tape.drop_storage()
            tape.layout = layout
        heads = (self.location_network.fc, self.baseline_network.fc, self.action_network.fc)
        w_heads = tape.weight("w_heads", lambda o: torch.cat([fc.weight for fc in heads], out=o))
        b_heads = tape.weight("b_heads", lambda o: torch.cat([fc.bias for fc in heads], out=o))
        tape.step_weights = (
            self._tape_weight(tape, "glimpse").t(),
            self._tape_weight(tape, "g").t(),
            self._tape_weight(tape, "core").t(),
            w_heads.t(),
            b_heads,
        )

    def _tape_frame(self, tape: RolloutTape, n: int) -> _TapeFrame:
        """Allocate the current step's activations on ``tape`` and their views."""
        gn, cell = self.glimpse_network, self.core_network.cell
        assert isinstance(cell, nn.RNNCell)
        low = tape.step_weights[0]  # in the compute dtype
        b_heads = tape.step_weights[4]  # in the heads' dtype, L + 1 + C entries
        d, n_loc = self.glimpse_dim, self.config.location_dim
        n_what, n_g, n_h = gn.fc_glimpse.out_features, gn.fc_what.out_features, cell.hidden_size
        n_hw = n_what + gn.fc_location.out_features
        x = tape.slot("glimpses", (n, d + n_loc), low, ones_column=True)
        what_where = tape.slot("what_where", (n, n_hw), low, ones_column=True)
        core_input = tape.slot("core_input", (n, n_g + n_h), low, ones_column=True)
        hidden = tape.slot("hidden", (n, n_h), low)
        hidden_heads = (
            hidden if low.dtype == b_heads.dtype else tape.slot("hidden_heads", (n, n_h), b_heads)
        )
        heads = tape.slot("heads", (n, b_heads.shape[0]), b_heads)
        return _TapeFrame(
            x=x,
            glimpse=x[:, :d],
            location=x[:, d : d + n_loc],
            what_where=what_where,
            what_where_out=what_where[:, :n_hw],
            core_input=core_input,
            g_out=core_input[:, :n_g],
            previous_hidden=core_input[:, n_g : n_g + n_h],
            hidden=hidden,
            hidden_heads=hidden_heads,
            heads=heads,
            mean=heads[:, :n_loc],
            baseline=heads[:, n_loc],
            logits=heads[:, n_loc + 1 :],
            sample=tape.slot("samples", (n, n_loc), b_heads),
        )

    @torch.no_grad()
    def _tape_step(
        self,
        glimpse: Tensor,
        location: Tensor,
        state: CoreState | None,
        deterministic: bool,
        std: float | None,
        generator: torch.Generator | None,
        tape: RolloutTape,
    ) -> StepOutput:
        """:meth:`step` without autograd, recording activations on ``tape``.

        The modules' forward, written into the tape's storage through the step's
        :class:`_TapeFrame` (reused from the tape's previous rollout when it can be). Each
        Linear, and each pair of Linears that is summed or side by side, is one product
        over inputs widened with a ones column (the bias) and concatenated (the pair).
        """
        std = self.location_network.std if std is None else float(std)
        n, t = glimpse.shape[0], tape.steps
        if t == 0:
            self._start_tape(tape, n, std)
        elif std != tape.std:
            raise ValueError("the location std must stay the same over a tape")
        if t < len(tape.frames):
            frame = tape.frames[t]
        else:
            frame = self._tape_frame(tape, n)
            tape.frames.append(frame)
        w_glimpse, w_g, w_core, w_heads, b_heads = tape.step_weights
        frame.glimpse.copy_(glimpse.reshape(n, -1))
        frame.location.copy_(location)
        torch.mm(frame.x, w_glimpse, out=frame.what_where_out).relu_()
        torch.mm(frame.what_where, w_g, out=frame.g_out).relu_()
        if state is None:  # h_0 = 0
            frame.previous_hidden.zero_()
        else:
            assert isinstance(state, Tensor)
            frame.previous_hidden.copy_(state)
        h = torch.mm(frame.core_input, w_core, out=frame.hidden).relu_()
        if frame.hidden_heads is not frame.hidden:  # the heads read h_t in their dtype
            frame.hidden_heads.copy_(h)
        # The three heads read the same h_t: one product into [mean | baseline | logits].
        torch.addmm(b_heads, frame.hidden_heads, w_heads, out=frame.heads)
        mean = frame.mean.tanh_()
        sample = LocationNetwork.sample(
            mean, std, deterministic=deterministic, generator=generator, out=frame.sample
        )
        tape.logits = frame.logits
        tape.steps += 1
        return StepOutput(
            location=sample.clamp(-1.0, 1.0),
            location_log_prob=None,
            location_mean=mean,
            logits=frame.logits,
            baseline=frame.baseline,
            state=h,
        )

    def replay(self, tape: RolloutTape) -> ReplayOutput:
        """Differentiable outputs of a recorded rollout.

        The forward values are the recorded ones (nothing is recomputed); the backward
        pass (hand-written backpropagation through time, batched over the T steps) gives
        the same parameter gradients as autograd through :meth:`step`.

        Args:
            tape: a tape filled by :meth:`step` calls with ``tape=tape``.

        Returns:
            The :class:`ReplayOutput`.
        """
        if len(tape) == 0 or tape.logits is None:
            raise ValueError("empty tape")
        n_loc = self.config.location_dim
        heads = tape.stacked("heads")  # (T, N, L + 1 + C)
        hidden = tape.stacked("hidden")
        acts = _StackedTape(
            glimpses=tape.stacked("glimpses"),
            what_where=tape.stacked("what_where"),
            core_input=tape.stacked("core_input"),
            hidden=hidden,
            hidden_heads=tape.stacked("hidden_heads") if tape.has("hidden_heads") else hidden,
            means=heads[..., :n_loc],
            w_g=self._tape_weight(tape, "g"),
            w_core=self._tape_weight(tape, "core"),
            detach_location_input=self.location_network.detach_input,
            tape=tape,
        )
        tape.hold()
        means, baselines, logits = _TapeReplay.apply(
            acts,
            heads[..., n_loc],
            tape.logits,
            *self._tape_parameters(),
        )
        samples = tape.stacked("samples")
        return ReplayOutput(
            location_log_probs=LocationNetwork.log_prob(samples, means, tape.std),
            location_means=means,
            baselines=baselines,
            logits=logits,
        )


@dataclass
class _StackedTape:
    """Stacked (T, N, .) activations of a :class:`RolloutTape`."""

    glimpses: Tensor
    what_where: Tensor
    core_input: Tensor
    hidden: Tensor
    hidden_heads: Tensor
    means: Tensor
    w_g: Tensor
    w_core: Tensor
    detach_location_input: bool
    tape: RolloutTape  # released when the backward pass has read it


def _relu_backward(grad: Tensor, output: Tensor, out: Tensor | None = None) -> Tensor:
    """``grad * (output > 0)`` for ``output = ReLU(x)``, in one kernel (as autograd does).

    Args:
        grad: gradient with respect to the ReLU's output.
        output: the ReLU's output.
        out: optional tensor to write the result into.

    Returns:
        The gradient with respect to the ReLU's input.
    """
    if out is None:
        return torch.ops.aten.threshold_backward(grad, output, 0.0)
    return torch.ops.aten.threshold_backward.grad_input(grad, output, 0.0, grad_input=out)


def _flat(x: Tensor) -> Tensor:
    """(T, N, F) -> (T * N, F)."""
    return x.reshape(-1, x.shape[-1])


class _TapeReplay(torch.autograd.Function):
    """Recorded outputs in, batched backpropagation through time out."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, acts: _StackedTape, baselines: Tensor, logits: Tensor, *params: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.acts = acts
        ctx.save_for_backward(*params)
        ctx.set_materialize_grads(False)
        return acts.means.clone(), baselines.clone(), logits.clone()

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, d_means: Tensor | None, d_baselines: Tensor | None, d_logits: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        a: _StackedTape = ctx.acts
        a.tape.release()
        params = ctx.saved_tensors
        w_loc, w_act = params[12], params[14]  # heads: float32 (the parameters' dtype)
        hidden = a.hidden  # (T, N, H), in the compute dtype
        low, head = hidden.dtype, w_loc.dtype
        h_flat = _flat(a.hidden_heads)  # (T * N, H), in the heads' dtype

        def linear_grads(d_out: Tensor | None, inputs: Tensor) -> list[Tensor | None]:
            """[dW, db] of a Linear from d_out (T * N, out) and its inputs (T * N, in)."""
            if d_out is None:  # no gradient reaches it (as autograd: None)
                return [None, None]
            return [(d_out.t() @ inputs).to(head), d_out.sum(0, dtype=head)]

        # Heads: location mean tanh(W_loc h + b_loc) at every step, final logits
        # W_act h_T + b_act, baselines (which read a detached h_t: no gradient into h).
        d_loc = None if d_means is None else _flat(d_means * (1.0 - a.means.square()))
        # dLoss/dh_t from the heads: every step through the location network (only when
        # it reads an undetached h_t), the final step through the action network.
        d_hidden = None
        if d_loc is not None and not a.detach_location_input:
            d_hidden = (d_loc @ w_loc).to(low).view_as(hidden)
        d_h_final = None if d_hidden is None else d_hidden[-1]
        if d_logits is not None:
            from_action = (d_logits @ w_act).to(low)  # (N, H)
            d_h_final = from_action if d_h_final is None else d_h_final + from_action
        d_base = None if d_baselines is None else d_baselines.reshape(-1, 1)
        heads = [
            *linear_grads(d_loc, h_flat),
            *linear_grads(d_logits, h_flat[-hidden.shape[1] :]),
            *linear_grads(d_base, h_flat),
        ]
        if d_h_final is None:  # nothing reaches the core or the glimpse network
            return (None, None, None, *([None] * 12), *heads)

        # Backpropagation through time of h_t = ReLU(W_ih g_t + W_hh h_{t-1} + b_ih + b_hh):
        # the only sequential part; everything else is one matrix product over T * N.
        # The recorded inputs are widened with a ones column (RolloutTape.slot), so each
        # weight gradient [dW | db | 0] = d_out^T @ [x | 1 | 0] holds the bias gradient.
        n_what, n_input = params[0].shape
        n_hw = n_what + params[2].shape[0]
        n_h, n_g = params[8].shape
        w_core = a.w_core  # [W_ih | W_hh | b | 0] in the compute dtype (the rollout's)
        w_hh = w_core[:, n_g : n_g + n_h]
        d_pre = torch.empty_like(hidden)
        d_h = d_h_final
        for t in range(hidden.shape[0] - 1, -1, -1):
            _relu_backward(d_h, hidden[t], out=d_pre[t])
            if t > 0:
                d_h = (
                    torch.mm(d_pre[t], w_hh)
                    if d_hidden is None
                    else torch.addmm(d_hidden[t - 1], d_pre[t], w_hh)
                )
        d_pre_flat = _flat(d_pre)
        core_in = _flat(a.core_input)  # [g_t | h_{t-1} | 1 | 0]; h_0 is zeros if None
        grad_core = d_pre_flat.t() @ core_in
        # Glimpse network: g = ReLU(W_what h_g + W_where h_l + b_what + b_where).
        d_g = _relu_backward(d_pre_flat @ w_core[:, :n_g], core_in[:, :n_g])
        what_where = _flat(a.what_where)  # [h_g | h_l | 1 | 0]
        grad_g = d_g.t() @ what_where
        d_what_where = _relu_backward(d_g @ a.w_g[:, :n_hw], what_where[:, :n_hw])
        grad_glimpse = d_what_where.t() @ _flat(a.glimpses)  # [rho_t | l_t | 1 | 0]
        n_x = n_input + params[2].shape[1]  # the ones column

        def piece(
            grad: Tensor, start: int, stop: int | None = None, rows: slice = slice(None)
        ) -> Tensor:
            """Columns [start, stop) (one column if stop is None) of ``rows``, as a new
            float32 tensor."""
            part = grad[rows, start] if stop is None else grad[rows, start:stop]
            return part.to(head, copy=True)

        # grad_glimpse is block-diagonal like its weight: rows of h_g read rho_t, rows of
        # h_l read l_t, and both the ones column.
        what, where = slice(0, n_what), slice(n_what, None)
        body = [
            piece(grad_glimpse, 0, n_input, what),
            piece(grad_glimpse, n_x, rows=what),
            piece(grad_glimpse, n_input, n_x, where),
            piece(grad_glimpse, n_x, rows=where),
            piece(grad_g, 0, n_what),
            piece(grad_g, n_hw),
            piece(grad_g, n_what, n_hw),
            piece(grad_g, n_hw),
            piece(grad_core, 0, n_g),
            piece(grad_core, n_g + n_h),
            piece(grad_core, n_g, n_g + n_h),
            piece(grad_core, n_g + n_h),
        ]
        grads = [*body, *heads]
        needs = ctx.needs_input_grad[3:]
        return (None, None, None, *(g if need else None for g, need in zip(grads, needs)))


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of a module.

    Args:
        module: the module.
        trainable_only: count only parameters with ``requires_grad``.

    Returns:
        The count.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
