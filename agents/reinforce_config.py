"""The options of the REINFORCE trainer (:class:`agents.reinforce.ReinforceTrainer`).

* :class:`ReinforceConfig`: every option, with its default and what it does.
* :data:`LOCATION_REWARDS`, :data:`STOP_BASELINES`, :data:`STOP_OBJECTIVES`: the values of
  its string options (the location policies are :data:`agents.locations.LOCATION_POLICIES`).
* :func:`check_config`, :func:`check_stop`: its validation, which the trainer runs first.

Everything here is re-exported by :mod:`agents.reinforce`; import it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from gymnasium.vector import VectorEnv

from agents.locations import LOCATION_POLICIES
from agents.ram import RAMConfig
from agents.rollout import env_setting

__all__ = [
    "LOCATION_REWARDS",
    "STOP_BASELINES",
    "STOP_OBJECTIVES",
    "ReinforceConfig",
    "check_config",
    "check_stop",
]


@dataclass
class ReinforceConfig:
    """Options of :class:`~agents.reinforce.ReinforceTrainer`."""

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

    location_policy: Literal["learned", "random", "center", "raster"] = "learned"
    """``"learned"``: the location network picks the glimpses (RAM). ``"random"``: the
    random-glimpse ablation: locations uniform in ``[-1, 1]^2``, a pure function of
    ``(seed, episode, step)`` (:class:`agents.locations.RandomLocations`). ``"center"``:
    every glimpse at ``(0, 0)``; ``"raster"``: a fixed scan
    (:data:`agents.locations.RASTER_POINTS`). With all but ``"learned"`` the location network
    gets no gradient (never updated), everything else trains as usual; evaluation uses the
    same locations (a fixed seeded draw for random: :func:`agents.locations.with_locations`)."""

    reinforce_weight: float = 1.0
    """Weight of the REINFORCE term."""

    baseline_weight: float = 1.0
    """Weight of the baseline's squared error."""

    max_grad_norm: float | None = None
    """Clip the global gradient norm (None: no clipping)."""

    precision: Literal["float32", "bfloat16"] = "float32"
    """Training precision: ``"bfloat16"`` runs the rollout and the replay under
    ``torch.autocast(dtype=torch.bfloat16)`` (matrix products in bfloat16 from float32
    master weights; log-probabilities, losses, gradients, the optimiser and evaluation stay
    float32), for every core. About halves the cost of the products on CPUs with native
    bfloat16 (AVX512-BF16, AMX) and on GPUs; slower where bfloat16 is emulated."""

    stop_objective: Literal["reinforce", "expected"] = "reinforce"
    """Adaptive envs: how the stop network learns. ``"reinforce"`` (DT-RAM): the episodes
    end where the sampled stop decisions say, and REINFORCE trains those decisions.
    ``"expected"``: every training episode takes all ``max_glimpses`` glimpses (the stop
    score sent is "go on"), and the stop network maximises the return expected under the
    halting distribution its probabilities define along the trajectory, ``sum_t P(stop
    after t) * payoff_t`` with ``payoff_t`` the ``stop_now`` value below, differentiated
    exactly (as PonderNet): no sampled decisions, no variance, and no collapse to "never
    stop" when early stops are costly (:func:`agents.losses.expected_stopping_loss`). Needs
    the labels (hybrid loss; REINFORCE otherwise). Acting is the same either way."""

    stop_baseline: Literal["learned", "stop_now"] = "learned"
    """Adaptive envs: baseline of the stop decisions' REINFORCE term. ``"learned"``: the
    baseline network's ``b_t`` (as for the locations). ``"stop_now"``: what stopping at that
    step would have returned, ``1[argmax of step t's scores == label]`` (with
    ``location_reward="expected"``: the true class's probability at step t) minus the cost
    of the t glimpses. It does not depend on the decision, so the gradient stays unbiased;
    a stop then gets advantage 0 and going on is credited with what it gained over stopping
    there, a signal tied to each state's confidence. Needs the labels (hybrid loss; the
    learned baseline otherwise)."""

    halting_share: float = 0.0
    """Adaptive envs, expected objective: share of the classifier's cross-entropy weighted
    by where the episodes stop (PonderNet's weighting); the rest is spread evenly over the
    steps (0: every step alike)."""

    stop_lr_scale: float = 1.0
    """Learning rate of the stop network relative to ``lr`` (e.g. a fresh stop network on
    a trained model fine-tuned at a small ``lr``)."""

    glimpse_cost_warmup: float = 0.0
    """Adaptive envs: fraction of ``total_iterations`` over which the glimpse cost of the
    returns ramps linearly from 0 to the env's ``glimpse_cost`` (0: the env's cost from the
    start). The env's rewards are corrected by ``(env cost - current cost)`` per glimpse."""

    seed: int = 0
    """Seeds the model initialisation, the sampling generator and the first env reset."""


#: Values of :attr:`ReinforceConfig.location_reward`.
LOCATION_REWARDS: tuple[str, ...] = ("env", "expected")

#: Values of :attr:`ReinforceConfig.stop_baseline`.
STOP_BASELINES: tuple[str, ...] = ("learned", "stop_now")

#: Values of :attr:`ReinforceConfig.stop_objective`.
STOP_OBJECTIVES: tuple[str, ...] = ("reinforce", "expected")

#: ``ReinforceConfig.precision`` -> the autocast dtype (None: plain float32).
_COMPUTE_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


def check_config(config: ReinforceConfig) -> None:
    """Refuse unknown or inconsistent options (those that do not depend on the env).

    Args:
        config: the options.

    Raises:
        ValueError: for an unknown optimizer, precision, location policy or location
            reward, or ``location_reward="expected"`` without the hybrid loss.
    """
    if config.optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")
    if config.precision not in _COMPUTE_DTYPES:
        raise ValueError(
            f"precision must be one of {sorted(_COMPUTE_DTYPES)}, got {config.precision!r}"
        )
    if config.location_policy not in LOCATION_POLICIES:
        raise ValueError(
            f"location_policy must be one of {LOCATION_POLICIES}, got {config.location_policy!r}"
        )
    if config.location_reward not in LOCATION_REWARDS:
        raise ValueError(
            f"location_reward must be one of {LOCATION_REWARDS}, got {config.location_reward!r}"
        )
    if config.location_reward == "expected" and not config.hybrid:
        raise ValueError(
            "location_reward='expected' needs the label, i.e. the hybrid loss; pure "
            "REINFORCE (hybrid=False) learns from the env's reward alone"
        )


def check_stop(envs: VectorEnv, stop: bool, config: ReinforceConfig) -> None:
    """Refuse a model and an env that disagree on the stop action, and bad stop options.

    Args:
        envs: the training vector environment.
        stop: whether the model has a stop network.
        config: the options.

    Raises:
        ValueError: for a model with a stop network on an env without the stop action (or
            the reverse), an unknown stop baseline or objective, a non-positive
            ``stop_lr_scale``, or a glimpse-cost warm-up without a stop network or outside
            ``[0, 1]``.
    """
    env_stop = env_setting(envs, "stop")
    if env_stop is not None and (env_stop == "action") != stop:
        raise ValueError(
            "the env takes a stop action (stop='action'): train a model with a stop "
            "network (RAMConfig(stop=True))"
            if stop is False
            else "the model has a stop network but the env takes no stop action: make "
            "the env with stop='action' (an ...Adaptive id)"
        )
    if config.stop_baseline not in STOP_BASELINES:
        raise ValueError(
            f"stop_baseline must be one of {STOP_BASELINES}, got {config.stop_baseline!r}"
        )
    if config.stop_objective not in STOP_OBJECTIVES:
        raise ValueError(
            f"stop_objective must be one of {STOP_OBJECTIVES}, got {config.stop_objective!r}"
        )
    if not config.stop_lr_scale > 0:
        raise ValueError(f"stop_lr_scale must be > 0, got {config.stop_lr_scale}")
    if config.glimpse_cost_warmup and not stop:
        raise ValueError("glimpse_cost_warmup applies to adaptive envs (a stop network)")
    if not 0.0 <= config.glimpse_cost_warmup <= 1.0:
        raise ValueError(f"glimpse_cost_warmup must be in [0, 1], got {config.glimpse_cost_warmup}")
