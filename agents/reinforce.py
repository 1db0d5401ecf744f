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

The options, :class:`ReinforceConfig`, and their validation are defined in
:mod:`agents.reinforce_config` and re-exported here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from agents.locations import LOCATION_POLICIES, make_location_policy, with_locations
from agents.losses import LossOutput, expected_class_reward, hybrid_loss, reinforce_loss
from agents.ram import RecurrentAttentionModel
from agents.reinforce_config import (
    _COMPUTE_DTYPES,
    LOCATION_REWARDS,
    STOP_BASELINES,
    STOP_OBJECTIVES,
    ReinforceConfig,
    check_config,
    check_stop,
)
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
        check_config(config)
        stop = (model.config if model is not None else config.model).stop
        check_stop(envs, stop, config)
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
            horizon=self._horizon,
            **self._rollout_settings(hybrid, std),
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
            send_stop=not self._expected(hybrid),
            **self._rollout_settings(hybrid, std),
        )
        self._obs, _ = self.envs.reset()
        return rollout

    def _rollout_settings(self, hybrid: bool, std: float) -> dict[str, Any]:
        """The keyword arguments every rollout of this batch takes (fixed or adaptive)."""
        return {
            "adapter": self._adapter,
            "std": std,
            "generator": self.generator,
            "sample_classes": not hybrid,
            "location_policy": self.location_policy,
            "first_episode": self.iteration * self.envs.num_envs,
            "compute_dtype": self.compute_dtype,
        }

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
