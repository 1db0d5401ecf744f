"""``glimpse train ppo``: stable-baselines3 PPO / RecurrentPPO on a glimpse env.

Usage::

    glimpse train ppo --env GlimpseMNIST-v0 [--recurrent] [--reward sparse|dense]
        [--n-glimpses N] [--total-steps N] [--num-envs N] [--run-dir DIR]
        [--resume RUN_DIR] [any hyperparameter flag, e.g. --learning-rate 1e-3]

The env is the native batched :class:`glimpse_env.sb3.GlimpseVecEnv` (one call steps every
sub-env) under SB3's ``VecMonitor``; plain PPO also gets the glimpse history
(:class:`agents.sb3_policy.GlimpseHistory`) as its memory, RecurrentPPO an LSTM. Both read
glimpses through the RAM glimpse network. Hyperparameters come from the preset of the
algorithm and env (:mod:`agents.sb3_presets`); every one is also a flag.

Reads top to bottom: the config, then :class:`PPORun`, what the run harness
(:mod:`train.harness`) drives. One iteration is one iteration of SB3's ``learn()`` loop (a
rollout of ``n_steps * num_envs`` env steps, then the PPO update), so the harness owns the
loop: metrics rows after every update (rolling training success rate and return over the
last 1000 episodes, SB3's training losses), ``eval_accuracy`` every ``--eval-every`` env
steps (the deterministic accuracy on the first ``--eval-images`` images of
``--eval-split``; also before training), checkpoints, ``--max-minutes``, ``eval.json`` (the
final deterministic evaluation through :func:`agents.policy.evaluate_policy`).

The checkpoint is ``model.zip`` (SB3's own format); ``--resume RUN_DIR`` continues from it
with ``num_timesteps`` restored, up to ``--total-steps`` (which may be raised on resume),
on fresh episodes. SB3 zips unpickle parts of their content when loaded: load only those of
your own runs. From Python: ``train_ppo(PPOTrainConfig(...)) -> run_dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from agents.sb3_presets import CLASS_HEADS, SB3Hyperparams, get_preset, json_ready
from glimpse_env.registration import ALL_IDS
from train.common import CHANGEABLE, EnvOptions, RunOptions
from train.harness import (
    Cadence,
    FinalEval,
    Progress,
    RunMeta,
    Trainer,
    absolute_data_dir,
    error_text,
)
from train.validation import counted

#: SB3 logger keys of the training losses, by ``metrics.csv`` column.
_TRAIN_KEYS: dict[str, str] = {
    c: f"train/{c}"
    for c in (
        "loss",
        "policy_gradient_loss",
        "value_loss",
        "entropy_loss",
        "approx_kl",
        "clip_fraction",
        "explained_variance",
        "std",
        "learning_rate",
    )
}

_SPLIT_SIZE = "the test and val splits have 10,000 images"


@dataclass
class PPOTrainConfig(EnvOptions, RunOptions):
    """Everything ``glimpse train ppo`` can be told (each field is a ``--flag``, and so is
    every hyperparameter; the env's settings and the run control shared with the other
    commands are in :class:`train.common.EnvOptions` and :class:`train.common.RunOptions`)."""

    command: ClassVar[str] = "ppo"
    agents: ClassVar[tuple[str, ...]] = ("ppo", "recurrent_ppo")

    env: str = field(default="GlimpseMNIST-v0", metadata={"choices": ALL_IDS})
    """Environment id."""
    recurrent: bool = False
    """RecurrentPPO (sb3-contrib, an LSTM policy) instead of PPO with the glimpse history."""
    hyperparams: SB3Hyperparams | None = field(
        default=None, metadata={"changeable": ("total_steps",)}
    )
    """The algorithm's hyperparameters (None: the preset of the algorithm and env); on
    resume only ``total_steps`` may change."""
    checkpoint_every: int = field(default=100_000, metadata={"ge": 1, **CHANGEABLE})
    """Env steps between checkpoints (also written at the end)."""
    eval_every: int = field(default=50_000, metadata={"ge": 0, **CHANGEABLE})
    """Env steps between evaluations logged to metrics.csv (0: never)."""
    eval_images: int = field(
        default=1000,
        metadata={"ge": 1, "le": 10_000, "why": _SPLIT_SIZE, **CHANGEABLE},
    )
    """Periodic evaluation on the first N images of the eval split."""
    eval_split: str = field(default="test", metadata={"choices": ("test", "val"), **CHANGEABLE})
    """Split of the periodic and final evaluations."""
    final_eval_images: int | None = field(
        default=None,
        metadata={"ge": 0, "le": 10_000, "why": _SPLIT_SIZE, **CHANGEABLE},
    )
    """Images of the final evaluation written to eval.json (None: the whole split; 0: skip)."""

    @property
    def agent(self) -> str:
        """``"ppo"`` or ``"recurrent_ppo"`` (``meta.json["agent"]``)."""
        return "recurrent_ppo" if self.recurrent else "ppo"

    def __post_init__(self) -> None:
        """Check the fields and that the episode-length flag fits the env."""
        super().__post_init__()
        self.check_length(self.env)

    def resolved_hyperparams(self) -> SB3Hyperparams:
        """The hyperparameters, from the preset when not given."""
        return self.hyperparams or get_preset(self.agent, self.env)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able data (``config.json``), with the hyperparameters resolved."""
        hyperparams = dataclasses.asdict(self.resolved_hyperparams())
        return json_ready(dataclasses.asdict(self) | {"hyperparams": hyperparams})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOTrainConfig:
        """The config saved by :meth:`to_dict` (also the layout written before the run
        harness, with ``env_id``, ``env_kwargs``, ``torch_threads``, ``time_budget_s``)."""
        values = _upgrade_first_layout(values) if "env_id" in values else dict(values)
        if values.get("hyperparams") is not None:
            hyperparams = dict(values["hyperparams"])
            # Runs saved before ``used_actions_only`` existed counted every action part.
            hyperparams.setdefault("used_actions_only", False)
            values["hyperparams"] = SB3Hyperparams.from_dict(hyperparams)
        return super().from_dict(values)


def _upgrade_first_layout(values: dict[str, Any]) -> dict[str, Any]:
    """A ``config.json`` written before the run harness, in today's layout."""
    values = dict(values)
    values["recurrent"] = values.pop("agent", "ppo") == "recurrent_ppo"
    values["env"] = values.pop("env_id")
    values.update(values.pop("env_kwargs", None) or {})
    values["threads"] = values.pop("torch_threads", None)
    budget = values.pop("time_budget_s", None)
    values["max_minutes"] = None if budget is None else budget / 60.0
    values.pop("resume", None)
    return values


def load_config(run_dir: str | Path) -> PPOTrainConfig:
    """Read a run folder's ``config.json`` back as a :class:`PPOTrainConfig`."""
    return PPOTrainConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))


# ---------------------------------------------------------------------- building blocks
def make_vec_env(
    config: PPOTrainConfig, num_envs: int | None = None, seed: int | None = None
) -> Any:
    """The training env: ``GlimpseVecEnv`` -> ``VecMonitor`` (-> ``GlimpseHistory`` for PPO)
    (-> ``ActionUse`` with ``used_actions_only``).

    Args:
        config: the run configuration.
        num_envs: default ``hyperparams.num_envs``.
        seed: seed of the first reset (normally set by the model instead).
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.sb3_policy import ActionUse, GlimpseHistory
    from glimpse_env.sb3 import GlimpseVecEnv

    hp = config.resolved_hyperparams()
    kwargs = {**config.env_kwargs(), "split": "train"}
    if config.data_dir is not None:
        kwargs["data_dir"] = config.data_dir
    venv: Any = GlimpseVecEnv(config.env, num_envs=num_envs or hp.num_envs, seed=seed, **kwargs)
    venv = VecMonitor(venv)
    if not config.recurrent and hp.history:
        venv = GlimpseHistory(venv)
    if uses_action_use(hp):
        venv = ActionUse(venv)
    return venv


def uses_action_use(hp: SB3Hyperparams) -> bool:
    """Whether the policy counts only the action parts the env reads (``used_actions_only``,
    resolved: default on with the categorical class head).

    Raises:
        ValueError: ``used_actions_only=True`` with the Gaussian class head.
    """
    if hp.used_actions_only is None:
        return hp.class_head == "categorical"
    if hp.used_actions_only and hp.class_head != "categorical":
        raise ValueError(
            "used_actions_only needs class_head='categorical' (the Gaussian head counts "
            f"every component), got class_head={hp.class_head!r}"
        )
    return bool(hp.used_actions_only)


def build_model(config: PPOTrainConfig, env: Any, device: str) -> Any:
    """A fresh PPO / RecurrentPPO model for ``config`` on ``env``."""
    from stable_baselines3.common.utils import LinearSchedule

    from agents.policy import policy_stops
    from agents.sb3_distributions import policy_class
    from agents.sb3_policy import GlimpseFeatures, GlimpseHistoryFeatures

    hp = config.resolved_hyperparams()
    policy = policy_class(config.agent, hp.class_head)
    if hp.lr_schedule not in ("constant", "linear"):
        raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {hp.lr_schedule!r}")
    learning_rate: Any = (
        hp.learning_rate
        if hp.lr_schedule == "constant"
        else LinearSchedule(hp.learning_rate, 0.0, 1.0)
    )
    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": list(hp.net_arch_pi), "vf": list(hp.net_arch_vf)},
        "log_std_init": hp.log_std_init,
    }
    if hp.class_head == "categorical" and policy_stops(config.env, config.env_kwargs()):
        policy_kwargs["stop_action"] = True  # a Bernoulli stop head (adaptive envs)
    common = {
        "learning_rate": learning_rate,
        "n_steps": hp.n_steps,
        "batch_size": hp.batch_size,
        "n_epochs": hp.n_epochs,
        "gamma": hp.gamma,
        "gae_lambda": hp.gae_lambda,
        "clip_range": hp.clip_range,
        "ent_coef": hp.ent_coef,
        "vf_coef": hp.vf_coef,
        "max_grad_norm": hp.max_grad_norm,
        "target_kl": hp.target_kl or None,
        "stats_window_size": 1000,
        "seed": config.seed,
        "device": device,
        "verbose": 0,
        **hp.extra,
    }
    if config.recurrent:
        from sb3_contrib import RecurrentPPO

        policy_kwargs.update(
            features_extractor_class=GlimpseFeatures,
            lstm_hidden_size=hp.lstm_hidden_size,
            n_lstm_layers=hp.n_lstm_layers,
            shared_lstm=hp.shared_lstm,
            enable_critic_lstm=not hp.shared_lstm,
        )
        return RecurrentPPO(policy, env, policy_kwargs=policy_kwargs, **common)
    from stable_baselines3 import PPO

    if hp.history:
        policy_kwargs.update(
            features_extractor_class=GlimpseHistoryFeatures,
            features_extractor_kwargs={"combine": hp.history_combine},
        )
    else:
        policy_kwargs["features_extractor_class"] = GlimpseFeatures
    return PPO(policy, env, policy_kwargs=policy_kwargs, **common)


def save_model(model: Any, path: Path) -> None:
    """``model.save`` to ``path`` atomically (temp file in the same folder, ``os.replace``),
    the model it replaces kept as ``model.prev.zip``."""
    from agents.checkpoints import atomic_write_bytes

    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(path, buffer.getvalue(), keep_previous=True)


def _load_model_file(path: Path, agent: str, env: Any, device: str) -> Any:
    """An SB3 checkpoint (``model.zip``) loaded onto ``env``.

    Raises:
        CheckpointError: if the file is unreadable (truncated, corrupt, not an SB3 zip).
    """
    import pickle
    import zipfile

    from agents.checkpoints import CheckpointError
    from agents.sb3_policy import _algorithm

    try:
        return _algorithm(agent).load(str(path), env=env, device=device)
    except (
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        ValueError,  # SB3: "the file ... wasn't a zip-file"
        pickle.UnpicklingError,
        RuntimeError,
    ) as exc:
        detail = " ".join(str(exc).split())[:150]
        raise CheckpointError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {detail})", path, "corrupt"
        ) from exc


def _action_use_meta(env: Any) -> dict[str, Any] | None:
    """``{"horizon", "class_every_step"}`` of the env's :class:`ActionUse` wrapper, if any."""
    from agents.sb3_policy import ActionUse

    while env is not None and not isinstance(env, ActionUse):
        env = getattr(env, "venv", None)
    if env is None:
        return None
    return {"horizon": env.horizon, "class_every_step": env.class_every_step}


# ---------------------------------------------------------------------- the trainer
class PPORun(Trainer):
    """A PPO / RecurrentPPO run as the harness drives it: an iteration is a rollout and
    the update after it."""

    checkpoint_name = "model.zip"
    step_name = "steps"
    validation_metric = "eval_accuracy"
    validate_first = True
    shown = ("success_rate", "eval_accuracy", "fps")

    def __init__(self, cfg: PPOTrainConfig, device: Any) -> None:
        from stable_baselines3.common.logger import Logger

        from agents.ram import count_parameters

        self.cfg, self.device = cfg, str(device)
        self.hp = cfg.resolved_hyperparams()
        data = {} if cfg.data_dir is None else {"data_dir": cfg.data_dir}
        self.env_kwargs = {**cfg.env_kwargs(), **data}
        self.env = make_vec_env(cfg)
        self.action_use = _action_use_meta(self.env)
        self.model = build_model(cfg, self.env, self.device)
        self.model.set_logger(Logger(folder=None, output_formats=[]))  # rows: the harness's
        self.parameters = count_parameters(self.model.policy)
        self.step_size = self.hp.n_steps * self.hp.num_envs  # env steps of one rollout
        self.total_iterations = math.ceil(self.hp.total_steps / self.step_size)
        self.cadence = Cadence(1, cfg.eval_every, cfg.checkpoint_every, unit=self.step_size)
        self.elapsed = 0.0  # training wall-clock at the last checkpoint (for meta.json)
        self._callback: Any = None

    @property
    def iteration(self) -> int:
        return int(self.model.num_timesteps) // self.step_size

    def describe(self) -> str:
        name = "RecurrentPPO" if self.cfg.recurrent else "PPO"
        return (
            f"{name} ({self.parameters:,} parameters) on {self.cfg.env}: "
            f"{counted(self.total_iterations, 'update')} of {self.step_size:,} env steps"
        )

    def meta(self) -> RunMeta:
        import stable_baselines3

        cfg, hp = self.cfg, self.hp
        history = {"combine": hp.history_combine} if not cfg.recurrent and hp.history else None
        return RunMeta(
            agent=cfg.agent,
            env_id=cfg.env,
            env_kwargs=cfg.env_kwargs(),
            checkpoint=self.checkpoint_name,
            parameters=self.parameters,
            data_dir=absolute_data_dir(cfg.data_dir),
            details={
                "algorithm": "RecurrentPPO" if cfg.recurrent else "PPO",
                "history": history,
                "action_use": self.action_use,
                "num_timesteps": int(self.model.num_timesteps),
                "elapsed_s": round(self.elapsed, 3),
                "seed": cfg.seed,
                "stable_baselines3": stable_baselines3.__version__,
            },
        )

    def train_iteration(self) -> dict[str, Any]:
        model, total = self.model, self.hp.total_steps
        if self._callback is None:  # SB3's learn() set-up (resets the env of a new model)
            steps = total - model.num_timesteps
            _, self._callback = model._setup_learn(steps, None, reset_num_timesteps=False)
            self._callback.on_training_start(locals(), globals())
        start = time.perf_counter()
        # One pass of SB3's learn() loop: a rollout, then the update at the schedule's point.
        model.collect_rollouts(
            model.env, self._callback, model.rollout_buffer, n_rollout_steps=model.n_steps
        )
        model._update_current_progress_remaining(model.num_timesteps, total)
        model.train()
        row: dict[str, Any] = {"fps": self.step_size / max(time.perf_counter() - start, 1e-9)}
        if model.ep_success_buffer:
            row["success_rate"] = sum(model.ep_success_buffer) / len(model.ep_success_buffer)
        if model.ep_info_buffer:
            returns = [ep["r"] for ep in model.ep_info_buffer]
            row["ep_rew_mean"] = sum(returns) / len(returns)
        logged = model.logger.name_to_value
        row.update({c: float(logged[k]) for c, k in _TRAIN_KEYS.items() if k in logged})
        return row

    def _evaluate(self, n_images: int | None, num_envs: int, progress: bool) -> dict[str, Any]:
        from agents.policy import evaluate_policy
        from agents.sb3_policy import SB3Policy

        policy = SB3Policy(self.model, self.cfg.env, self.env_kwargs, self.action_use)
        return evaluate_policy(
            policy,
            split=self.cfg.eval_split,
            n_images=n_images,
            num_envs=num_envs,
            progress=progress,
        )

    def validate(self) -> float:
        n = self.cfg.eval_images
        return float(self._evaluate(n, num_envs=min(500, n), progress=False)["accuracy"])

    def save(self, path: Path, progress: Progress) -> None:
        save_model(self.model, path)
        self.elapsed = progress.elapsed

    def load(self, path: Path) -> Progress:
        from stable_baselines3.common.logger import Logger

        model = _load_model_file(path, self.cfg.agent, self.env, self.device)
        model.set_logger(Logger(folder=None, output_formats=[]))
        # Fresh episodes after a resume, not a replay of the first run's digits.
        model.set_random_seed(self.cfg.seed + int(model.num_timesteps))
        self.model = model
        try:
            meta = json.loads((path.parent / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
        self.elapsed = float(meta.get("elapsed_s", 0.0))
        return Progress(self.elapsed)

    def evaluate(self) -> FinalEval | None:
        """Deterministic, one rollout per image of the eval split (None with
        ``final_eval_images == 0``)."""
        if self.cfg.final_eval_images == 0:
            return None
        result = self._evaluate(self.cfg.final_eval_images, 500, progress=self.cfg.progress)
        summary = {
            **result,
            "checkpoint": self.checkpoint_name,
            "num_timesteps": int(self.model.num_timesteps),
        }
        return FinalEval(summary, f"{result['split']} {error_text(result)}")

    def close(self) -> None:
        self.env.close()


def train_ppo(cfg: PPOTrainConfig, resume: str | None = None, overwrite: bool = False) -> Path:
    """Train (or resume) an SB3 agent as configured; returns the run folder (see
    :func:`train.harness.train`)."""
    from train.harness import train

    return train(cfg, PPORun, resume, overwrite)


# ---------------------------------------------------------------------- command line
#: Values of the hyperparameters' string flags.
_CHOICES: dict[str, tuple[str, ...]] = {
    "lr_schedule": ("constant", "linear"),
    "history_combine": ("concat", "mean"),
    "class_head": CLASS_HEADS,
}


class _Replaced(argparse.Action):
    """A flag that is gone: using it is a usage error naming its successor."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        parser.error(
            f"{option} was replaced by --max-minutes MINUTES (the same wall-clock cap, in "
            "minutes, for every glimpse train command)"
        )


def register(subparsers: Any) -> None:
    """Add ``glimpse train ppo`` to the ``glimpse train`` subparsers."""
    from train.common import add_config_flags, show_value
    from train.harness import add_training_arguments

    parser = subparsers.add_parser(
        "ppo",
        help="stable-baselines3 PPO (glimpse history) or RecurrentPPO (LSTM)",
        description=(
            "Train SB3 PPO (with the glimpse history as memory) or RecurrentPPO (--recurrent, "
            "an LSTM) on a glimpse env through the native vector env. Hyperparameters come "
            "from the preset of the algorithm and env (agents/sb3_presets.py); every one is "
            "also a flag below."
        ),
    )
    add_training_arguments(parser, PPOTrainConfig)
    parser.add_argument("--time-budget", nargs="?", action=_Replaced, help=argparse.SUPPRESS)
    group = parser.add_argument_group(
        "hyperparameters (default: the preset of the algorithm and env; "
        "shown: the GlimpseMNIST-v0 presets)"
    )
    presets = {a: get_preset(a, "GlimpseMNIST-v0") for a in ("ppo", "recurrent_ppo")}
    shown = {
        f.name: "ppo: {}; recurrent: {}".format(
            *(show_value(getattr(p, f.name)).replace("%", "%%") for p in presets.values())
        )
        for f in dataclasses.fields(SB3Hyperparams)
    }
    add_config_flags(group, SB3Hyperparams, choices=_CHOICES, shown=shown)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``glimpse train ppo`` entry point."""
    from train.common import flag_values
    from train.harness import config_from_args

    overrides = flag_values(args, SB3Hyperparams)
    if args.resume is not None:  # the saved hyperparameters; only --total-steps may change
        cfg = config_from_args(args, PPOTrainConfig, nested={"hyperparams": overrides})
    else:
        cfg = config_from_args(args, PPOTrainConfig)
        hyperparams = dataclasses.replace(get_preset(cfg.agent, cfg.env), **overrides)
        cfg = dataclasses.replace(cfg, hyperparams=hyperparams)
    train_ppo(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
