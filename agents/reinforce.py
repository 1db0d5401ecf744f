"""Training the Recurrent Attention Model with REINFORCE (and the paper's hybrid loss).

:class:`ReinforceTrainer` reads top to bottom: each :meth:`~ReinforceTrainer.train_iteration`
plays one episode per sub-environment without autograd (:func:`agents.rollout.collect_rollout`),
replays the batch in one differentiable forward
(:meth:`agents.ram.RecurrentAttentionModel.replay`), computes the loss
(:mod:`agents.losses`) and takes one optimiser step. Evaluation goes through the one
evaluation path, :func:`agents.policy.evaluate_episodes`.

The agent talks to environments only through the Gymnasium vector API; the contract is in
:mod:`agents.rollout`. With ``hybrid=True`` and labels in the final ``info`` it trains with
the paper's hybrid loss; without labels it falls back to pure REINFORCE with a sampled class.
Under ``SAME_STEP`` autoreset the observation returned by the terminal step starts the next
batch; for other autoreset modes the trainer resets before each batch.

A model with a stop network (``RAMConfig(stop=True)``) trains on an adaptive env
(``stop="action"``): each batch is played by :func:`agents.rollout.collect_adaptive_rollout`
(episodes of different lengths), the loss is :func:`agents.losses.stopping_loss` (the
classifier at every step of each episode, REINFORCE for the stop decisions and the
locations), and the envs are reset after each batch, so the next one starts from fresh
episodes everywhere. ``glimpse_cost_warmup`` ramps the glimpse cost of the returns from 0
to the env's over the first part of the run (a curriculum: first learn to classify, then
to stop early).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from agents.locations import LOCATION_POLICIES, make_location_policy, with_locations
from agents.losses import LossOutput, expected_class_reward, hybrid_loss, reinforce_loss
from agents.ram import RAMConfig, RecurrentAttentionModel
from agents.rollout import (
    ObservationAdapter,
    Rollout,
    autocast,
    autoreset_same_step,
    collect_adaptive_rollout,
    collect_rollout,
    env_setting,
)
from agents.stopping import adaptive_loss

__all__ = [
    "LOCATION_POLICIES",
    "LOCATION_REWARDS",
    "STOP_BASELINES",
    "STOP_OBJECTIVES",
    "ReinforceConfig",
    "ReinforceTrainer",
]


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

        Raises:
            ValueError: for an unknown optimizer, precision, location policy or location
                reward, ``location_reward="expected"`` without the hybrid loss, a model
                with a stop network on an env without the stop action (or the reverse), or
                a glimpse-cost warm-up without one.
        """
        self.envs = envs
        self.config = config = config or ReinforceConfig()
        self._check_config(config)
        stop = (model.config if model is not None else config.model).stop
        self._check_stop(envs, stop, config)
        self.device = torch.device(device)
        if model is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                model = RecurrentAttentionModel.from_spaces(
                    envs.single_observation_space, envs.single_action_space, config.model
                )
        self.model = model.to(self.device)
        self.optimizer = self._optimizer()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.location_policy = make_location_policy(config.location_policy, config.seed, envs=envs)
        self.compute_dtype = _COMPUTE_DTYPES[config.precision]
        self.iteration = 0
        self._adapter = ObservationAdapter(envs.single_observation_space, self.device)
        self._same_step = autoreset_same_step(envs)
        self._obs: Any = None
        self._reset_seed: int | None = config.seed
        self._horizon: int | None = None
        self._labels_available: bool | None = None
        #: Episodes end where the model stops (a stop network on a ``stop="action"`` env).
        self.adaptive = stop
        self._env_cost = float(env_setting(envs, "glimpse_cost") or 0.0)

    @staticmethod
    def _check_config(config: ReinforceConfig) -> None:
        if config.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")
        if config.precision not in _COMPUTE_DTYPES:
            raise ValueError(
                f"precision must be one of {sorted(_COMPUTE_DTYPES)}, got {config.precision!r}"
            )
        if config.location_policy not in LOCATION_POLICIES:
            raise ValueError(
                f"location_policy must be one of {LOCATION_POLICIES}, "
                f"got {config.location_policy!r}"
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

    @staticmethod
    def _check_stop(envs: VectorEnv, stop: bool, config: ReinforceConfig) -> None:
        """Refuse a model and an env that disagree on the stop action."""
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
            raise ValueError(
                f"glimpse_cost_warmup must be in [0, 1], got {config.glimpse_cost_warmup}"
            )

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params: Any = self.model.parameters()
        stop = self.model.stop_network
        if stop is not None and cfg.stop_lr_scale != 1.0:  # the stop network: its own lr
            own = {id(p) for p in stop.parameters()}
            params = [
                {"params": [p for p in self.model.parameters() if id(p) not in own]},
                {"params": list(stop.parameters()), "lr_scale": cfg.stop_lr_scale},
            ]
        if cfg.optimizer == "adam":
            # The fused kernel (CPU and CUDA) saves ~1 ms per step over the per-tensor loop.
            fused = self.device.type in ("cpu", "cuda")
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )

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

    def current_glimpse_cost(self) -> float:
        """Glimpse cost of the next batch's returns (the env's after the warm-up)."""
        warmup = self.config.glimpse_cost_warmup
        if not warmup:
            return self._env_cost
        return self._env_cost * min(self._progress() / warmup, 1.0)

    # ---- training --------------------------------------------------------------------

    def _next_obs(self) -> Any:
        if self._obs is None or not self._same_step:
            self._obs, _ = self.envs.reset(seed=self._reset_seed)
            self._reset_seed = None
        return self._obs

    def _collect(self, hybrid: bool, std: float) -> Rollout:
        if self.adaptive:
            return self._collect_adaptive(hybrid, std)
        rollout, self._obs = collect_rollout(
            self.model,
            self.envs,
            self._next_obs(),
            adapter=self._adapter,
            std=std,
            generator=self.generator,
            sample_classes=not hybrid,
            location_policy=self.location_policy,
            first_episode=self.iteration * self.envs.num_envs,
            horizon=self._horizon,
            compute_dtype=self.compute_dtype,
        )
        if not self._same_step:
            self._obs = None
        self._horizon = rollout.horizon
        return rollout

    def _collect_adaptive(self, hybrid: bool, std: float) -> Rollout:
        """One batch of adaptive episodes; the envs are then reset to fresh episodes (the
        next batch's start, a state ``get_state`` can save)."""
        if self._obs is None:
            self._obs, _ = self.envs.reset(seed=self._reset_seed)
            self._reset_seed = None
        rollout = collect_adaptive_rollout(
            self.model,
            self.envs,
            self._obs,
            adapter=self._adapter,
            std=std,
            generator=self.generator,
            sample_classes=not hybrid,
            location_policy=self.location_policy,
            first_episode=self.iteration * self.envs.num_envs,
            compute_dtype=self.compute_dtype,
            send_stop=not self._expected(hybrid),
        )
        self._obs, _ = self.envs.reset()
        return rollout

    def _expected(self, hybrid: bool) -> bool:
        """Whether the stop network learns from its expected return this batch."""
        return self.adaptive and hybrid and self.config.stop_objective == "expected"

    def _adaptive_loss(
        self, rollout: Rollout, hybrid: bool, location_log_probs: torch.Tensor, out: Any
    ) -> tuple[LossOutput, dict[str, torch.Tensor]]:
        """:func:`agents.stopping.adaptive_loss` of an adaptive batch at the current cost."""
        cfg = self.config
        return adaptive_loss(
            out,
            rollout,
            location_log_probs,
            hybrid=hybrid,
            expected_objective=self._expected(hybrid),
            expected_payoff=cfg.location_reward == "expected",
            stop_now_baseline=cfg.stop_baseline == "stop_now",
            cost=self.current_glimpse_cost(),
            env_cost=self._env_cost,
            reinforce_weight=cfg.reinforce_weight,
            baseline_weight=cfg.baseline_weight,
            halting_share=cfg.halting_share,
        )

    def _loss(
        self, rollout: Rollout, hybrid: bool
    ) -> tuple[LossOutput, torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's loss, from one differentiable replay of the rollout; the baselines
        (of the alive steps) and the adaptive batch's statistics."""
        cfg = self.config
        with autocast(self.device, self.compute_dtype):
            out = self.model.replay(
                rollout.glimpses, rollout.locations, rollout.samples, rollout.std, rollout.stops
            )
        location_log_probs = out.location_log_probs
        if not self.location_policy.learned:
            # The env saw other locations than the location network's: no REINFORCE term,
            # no gradient into (and no update of) the location network.
            location_log_probs = torch.zeros_like(location_log_probs.detach())
        if self.adaptive:
            loss, stats = self._adaptive_loss(rollout, hybrid, location_log_probs, out)
            return loss, out.baselines[rollout.alive], stats  # the alive steps' baselines
        logits = out.logits
        weights = {"reinforce_weight": cfg.reinforce_weight, "baseline_weight": cfg.baseline_weight}
        if hybrid:
            assert rollout.labels is not None
            returns = (
                expected_class_reward(logits, rollout.labels)
                if cfg.location_reward == "expected"
                else rollout.rewards
            )
            loss = hybrid_loss(
                location_log_probs, out.baselines, logits, returns, rollout.labels, **weights
            )
        else:
            class_log_probs = torch.log_softmax(logits, -1).gather(1, rollout.classes[:, None])
            loss = reinforce_loss(
                location_log_probs, out.baselines, rollout.rewards, class_log_probs[:, 0], **weights
            )
        return loss, out.baselines, {}

    def train_iteration(self) -> dict[str, float]:
        """Collect one batch of episodes and take one optimiser step.

        Returns:
            Metrics: ``loss``, ``action_loss``, ``reinforce_loss``, ``baseline_loss``,
            ``reward`` (mean return), ``accuracy`` (``is_success`` rate, if reported),
            ``baseline`` (mean b_t), ``lr``, ``std``, ``hybrid`` (1.0 / 0.0), ``horizon``,
            ``iteration`` (after the update); adaptive: also ``glimpses`` (mean glimpses
            per episode), ``stop_loss`` (the stop network's term) and ``glimpse_cost`` (the
            cost of the returns); with the expected objective ``glimpses``, ``accuracy``
            and ``reward`` are expectations under the halting distribution.
        """
        cfg = self.config
        self.model.train()
        std, lr, cost = self.current_std(), self.current_lr(), self.current_glimpse_cost()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        hybrid = cfg.hybrid and self._labels_available is not False
        rollout = self._collect(hybrid, std)
        if hybrid and rollout.labels is None:
            warnings.warn(
                "the environment reports no 'label' at episode end: training with pure "
                "REINFORCE (sampled class, the env's reward as every return) instead of "
                "the hybrid loss",
                stacklevel=2,
            )
            self._labels_available = hybrid = False
            rollout = self._collect(hybrid, std)  # re-collect with sampled classes
        elif hybrid:
            self._labels_available = True
        losses, baselines, stats = self._loss(rollout, hybrid)
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
            baselines.detach().mean(),
        ]
        if rollout.success is not None:
            names.append("accuracy")
            values.append(rollout.success.float().mean())
        if self.adaptive:
            assert losses.stop_loss is not None
            names += ["glimpses", "stop_loss"]
            values += [stats["glimpses"], losses.stop_loss.detach()]
            for name in ("accuracy", "reward"):  # the expected objective's expectations
                if name in stats and name in names:
                    values[names.index(name)] = stats[name]
        metrics = dict(zip(names, torch.stack(values).tolist()))  # one host sync
        if self.adaptive:
            metrics["glimpse_cost"] = cost
        metrics.update(
            lr=lr,
            std=std,
            hybrid=float(hybrid),
            horizon=float(rollout.horizon),
            iteration=float(self.iteration),
        )
        return metrics

    def policy(self, std: float | None = None) -> Any:
        """The model as an :class:`agents.policy.Policy` (sharing its weights), with the
        fixed locations of runs with a non-learned ``location_policy``
        (:func:`agents.locations.with_locations`).

        Args:
            std: location std of sampled actions (default: the current std).
        """
        from agents.ram_policy import RAMPolicy

        std = self.current_std() if std is None else std
        policy = RAMPolicy(
            self.model,
            observation_space=self.envs.single_observation_space,
            std=std,
            device=self.device,
        )
        return with_locations(policy, self.config.location_policy, self.config.seed)

    def evaluate(
        self,
        envs: VectorEnv | None = None,
        n_episodes: int = 1000,
        deterministic: bool = True,
        *,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Accuracy of the current model: :func:`agents.policy.evaluate_episodes`.

        Args:
            envs: evaluation vector env (e.g. the test split). None: the training envs
                (they are reset, and so is the next training batch).
            n_episodes: episodes to score (one rollout each).
            deterministic: mean locations (otherwise one stochastic rollout per episode
                at the current std). With a non-learned ``location_policy``: its fixed
                locations (for random, a draw seeded with ``config.seed``).
            seed: reset seed of ``envs`` (and of the sampled actions).

        Returns:
            The metrics of :func:`agents.policy.evaluate_episodes`.
        """
        from agents.policy import evaluate_episodes

        if envs is None or envs is self.envs:
            envs, self._obs = self.envs, None
        was_training = self.model.training
        try:
            return evaluate_episodes(
                self.policy(), envs, n_episodes, deterministic=deterministic, seed=seed
            )
        finally:
            self.model.train(was_training)

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
        ``(seed, iteration)``: resuming from the same checkpoint always reproduces the same
        run, though its episodes differ from the ones the uninterrupted run would have seen
        (unless the caller restores them: :meth:`set_observation`).

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
