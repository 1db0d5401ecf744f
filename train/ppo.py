"""``glimpse train ppo``: stable-baselines3 PPO / RecurrentPPO on a glimpse env.

Usage::

    glimpse train ppo --env GlimpseMNIST-v0 [--recurrent] [--reward sparse|dense]
        [--device auto|cpu|cuda] [--total-steps N] [--num-envs N] [--run-dir DIR]
        [--resume RUN_DIR] [any hyperparameter flag, e.g. --learning-rate 1e-3]

The env is the native batched :class:`glimpse_env.sb3.GlimpseVecEnv` (one call steps every
sub-env) under SB3's ``VecMonitor``; plain PPO also gets the glimpse history
(:class:`agents.sb3_policy.GlimpseHistory`) as its memory, RecurrentPPO an LSTM. Both read
glimpses through the RAM glimpse network. Hyperparameters come from the preset of the
algorithm and env (:mod:`agents.sb3_presets`); every one is also a flag.

The run folder holds:

* ``model.zip``: the last checkpoint (written atomically every ``--checkpoint-every``
  steps and at the end; the one before kept as ``model.prev.zip``); ``--resume RUN_DIR``
  continues from it (or from ``model.prev.zip`` when it is unreadable) with
  ``num_timesteps`` restored, up to ``--total-steps`` (which may be raised on resume).
  The folder belongs to one run (:mod:`train.run_folder`): a non-empty one needs
  ``--resume`` or ``--overwrite``, and it is locked while training. SB3 zips unpickle
  parts of their content when loaded: load only those of your own runs.
* ``meta.json``: ``{"agent": "ppo" | "recurrent_ppo", "env_id", "env_kwargs",
  "checkpoint": "model.zip", ...}``, read by ``glimpse eval RUN_DIR``.
* ``config.json``: the resolved configuration (what ``--resume`` reads back).
* ``metrics.csv`` (+ ``tb/`` for TensorBoard): one row per PPO update, at the env step
  count after it: rolling training success rate and return (last 1000 episodes), the
  SB3 training losses of that update, and every ``--eval-every`` steps ``eval_accuracy``,
  the deterministic accuracy on the first ``--eval-images`` (default 1000) images of the
  test split (one rollout each).
* ``eval.json``: the final deterministic evaluation (one rollout per image) on the test
  split through :func:`agents.policy.evaluate_policy`.

From Python: ``train_ppo(PPOTrainConfig(...)) -> run_dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.sb3_presets import CLASS_HEADS, SB3Hyperparams, get_preset, json_ready

__all__ = ["METRIC_COLUMNS", "PPOTrainConfig", "register", "run", "train_ppo"]

#: Columns of ``metrics.csv`` besides ``step`` (empty where a value is not available).
METRIC_COLUMNS: tuple[str, ...] = (
    "elapsed_s",
    "fps",
    "success_rate",
    "ep_rew_mean",
    "eval_accuracy",
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
_TRAIN_KEYS = {c: f"train/{c}" for c in METRIC_COLUMNS[5:]}
_MODEL_FILE = "model.zip"
_STATS_WINDOW = 1000


@dataclass
class PPOTrainConfig:
    """One SB3 training run: what to train, on what, and where to write it.

    Attributes:
        agent: ``"ppo"`` or ``"recurrent_ppo"``.
        env_id: a registered glimpse env id.
        reward: ``"sparse"`` or ``"dense"`` (see :class:`glimpse_env.envs.GlimpseEnv`).
        env_kwargs: other env keyword arguments (e.g. ``n_glimpses``).
        hyperparams: the algorithm's hyperparameters; ``None`` = the preset of
            (``agent``, ``env_id``).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        seed: seed of the env and the model.
        run_dir: run folder; ``None`` = ``runs/<agent>-<env>-<time>``.
        resume: a run folder to continue (its ``config.json`` is used; only
            ``hyperparams.total_steps`` and the run-control fields below may change).
        progress: show a progress bar (else a log line every eval / 30 s).
        data_dir: MNIST folder (default ``$GLIMPSE_ENV_DATA`` or the cache).
        checkpoint_every: env steps between checkpoints (also written at the end).
        eval_every: env steps between evaluations logged to ``metrics.csv``; 0 = never.
        eval_images: the first ``eval_images`` images of ``eval_split`` are evaluated.
        eval_split: split of the periodic and final evaluations.
        final_eval_images: images of the final evaluation (``eval.json``); ``None`` = the
            whole split, 0 = skip it.
        torch_threads: ``torch.set_num_threads`` value; ``None`` leaves torch's default.
        time_budget_s: stop training after this many seconds of this process's training
            loop (periodic evaluations included; the unfinished rollout is dropped), then
            checkpoint and evaluate as usual; ``None`` = no limit.
    """

    agent: str = "ppo"
    env_id: str = "GlimpseMNIST-v0"
    reward: str = "sparse"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: SB3Hyperparams | None = None
    device: str = "auto"
    seed: int = 0
    run_dir: str | None = None
    resume: str | None = None
    progress: bool = True
    data_dir: str | None = None
    checkpoint_every: int = 100_000
    eval_every: int = 50_000
    eval_images: int = 1000
    eval_split: str = "test"
    final_eval_images: int | None = None
    torch_threads: int | None = None
    time_budget_s: float | None = None

    def resolved_hyperparams(self) -> SB3Hyperparams:
        """The hyperparameters, from the preset when not given."""
        return self.hyperparams or get_preset(self.agent, self.env_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (what ``config.json`` holds)."""
        out = dataclasses.asdict(self)
        out["hyperparams"] = self.resolved_hyperparams().to_dict()
        return json_ready(out)


# ---------------------------------------------------------------------- command line
def register(subparsers: Any) -> None:
    """Add ``glimpse train ppo`` to the ``glimpse train`` subparsers."""
    from glimpse_env import ENV_IDS
    from train.common import field_docs
    from train.train_cmd import add_common_run_args
    from train.validation import (
        bounds_of,
        int_list,
        non_negative_float,
        non_negative_int,
        number_type,
        positive_int,
    )

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
    # --env and --reward default to None (= GlimpseMNIST-v0, sparse), so that --resume can
    # tell a flag given from none.
    parser.add_argument(
        "--env", default=None, choices=ENV_IDS, help="env id (default: GlimpseMNIST-v0)"
    )
    parser.add_argument(
        "--recurrent", action="store_true", help="RecurrentPPO (sb3-contrib, LSTM policy)"
    )
    parser.add_argument(
        "--reward",
        default=None,
        choices=("sparse", "dense"),
        help="sparse: 1 at the end if right; dense: log p(label) every step (default: sparse)",
    )
    add_common_run_args(parser)
    run_group = parser.add_argument_group("run control")
    run_group.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=100_000,
        metavar="STEPS",
        help="env steps between atomic checkpoints (default: 100000; also at the end)",
    )
    run_group.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=50_000,
        metavar="STEPS",
        help="env steps between evaluations logged to metrics.csv (default: 50000; 0 = never)",
    )
    run_group.add_argument(
        "--eval-images",
        type=positive_int,
        default=1000,
        help="periodic evaluation on the first N images of the eval split (default: 1000)",
    )
    run_group.add_argument(
        "--eval-split",
        default="test",
        choices=("test", "val"),
        help="split of the periodic and final evaluations (default: test)",
    )
    run_group.add_argument(
        "--final-eval-images",
        type=non_negative_int,
        default=None,
        help="images of the final evaluation written to eval.json (default: the whole split; 0: skip)",
    )
    run_group.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)"
    )
    run_group.add_argument(
        "--time-budget",
        type=non_negative_float,
        default=None,
        metavar="SECONDS",
        help="stop training after this wall-clock time (then checkpoint and evaluate)",
    )
    hp_group = parser.add_argument_group(
        "hyperparameters (default: the preset of the algorithm and env; "
        "shown: the GlimpseMNIST-v0 presets)"
    )
    presets = {a: get_preset(a, "GlimpseMNIST-v0") for a in ("ppo", "recurrent_ppo")}
    docs = field_docs(SB3Hyperparams)
    for f in dataclasses.fields(SB3Hyperparams):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        shown = {a: _show(getattr(p, f.name)) for a, p in presets.items()}
        help_text = (
            f"{docs.get(f.name, '')} [ppo: {shown['ppo']}; recurrent: {shown['recurrent_ppo']}]"
        )
        if f.type in ("bool", bool, "bool | None"):
            hp_group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif "tuple" in str(f.type):
            hp_group.add_argument(
                flag, type=int_list, default=None, metavar="N,N,...", help=help_text
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parse = str if kind is str else number_type(kind, **bounds_of(f.metadata))
            hp_group.add_argument(
                flag, type=parse, default=None, choices=_CHOICES.get(f.name), help=help_text
            )
    parser.set_defaults(func=run)


_CHOICES: dict[str, tuple[str, ...]] = {
    "lr_schedule": ("constant", "linear"),
    "history_combine": ("concat", "mean"),
    "class_head": CLASS_HEADS,
}


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(none)"
    return str(value).replace("%", "%%")


def _hyperparam_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(SB3Hyperparams)
        if f.name != "extra" and getattr(args, f.name, None) is not None
    }


def run(args: argparse.Namespace) -> int:
    """``glimpse train ppo`` entry point."""
    from train.common import check_images

    agent = "recurrent_ppo" if args.recurrent else "ppo"
    overrides = _hyperparam_overrides(args)
    check_images(args.eval_images, args.eval_split, "--eval-images")
    check_images(args.final_eval_images, args.eval_split, "--final-eval-images")
    run_control = {
        "device": args.device or "auto",
        "progress": not args.no_progress,
        "checkpoint_every": args.checkpoint_every,
        "eval_every": args.eval_every,
        "eval_images": args.eval_images,
        "eval_split": args.eval_split,
        "final_eval_images": args.final_eval_images,
        "torch_threads": args.threads,
        "time_budget_s": args.time_budget,
    }
    if args.resume is not None:
        config = _resume_config(Path(args.resume), args, overrides, run_control)
    else:
        env_id = args.env or "GlimpseMNIST-v0"
        hyperparams = dataclasses.replace(get_preset(agent, env_id), **overrides)
        config = PPOTrainConfig(
            agent=agent,
            env_id=env_id,
            reward=args.reward or "sparse",
            hyperparams=hyperparams,
            seed=0 if args.seed is None else args.seed,
            run_dir=args.run_dir,
            data_dir=args.data_dir,
            **run_control,
        )
    run_dir = train_ppo(config, overwrite=args.overwrite)
    print(f"run folder: {run_dir}")
    return 0


def _resume_config(
    run_dir: Path,
    args: argparse.Namespace,
    overrides: dict[str, Any],
    run_control: dict[str, Any],
) -> PPOTrainConfig:
    """The saved configuration of ``run_dir`` with the allowed changes applied.

    ``--total-steps``, ``--data-dir`` and the run-control flags may change; any other flag
    given (the env, the reward, ``--recurrent``, the seed, a hyperparameter) must match the
    saved value.

    Raises:
        UsageError: naming the contradicting flags and the saved values.
        GlimpseError: if ``run_dir`` is not a run folder of ``glimpse train ppo``.
    """
    from train.common import check_run_agent
    from train.errors import GlimpseError, UsageError

    if not run_dir.is_dir():
        raise GlimpseError(
            f"--resume {run_dir}: no such folder; give the run folder of the run to continue"
        )
    check_run_agent(run_dir, ("ppo", "recurrent_ppo"))
    try:
        config = load_config(run_dir)
    except FileNotFoundError:
        raise GlimpseError(
            f"--resume {run_dir}: it has no config.json, so it is not a run folder of "
            "'glimpse train ppo'; check the folder, or start a new run there with --run-dir"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GlimpseError(
            f"{run_dir / 'config.json'} is not a config of 'glimpse train ppo' ({exc!r}); "
            "resume a run with the command that started it"
        ) from exc
    if args.run_dir is not None and Path(args.run_dir).absolute() != run_dir.absolute():
        raise UsageError(
            f"--run-dir {args.run_dir} and --resume {run_dir} name different folders; "
            "give only --resume RUN_DIR to continue a run"
        )
    saved = config.resolved_hyperparams()
    given = {
        "--env": (args.env, config.env_id),
        "--reward": (args.reward, config.reward),
        "--seed": (args.seed, config.seed),
        "--recurrent": ("recurrent_ppo" if args.recurrent else None, config.agent),
    }
    conflicts = [
        f"{flag} {value} (saved: {old})" if flag != "--recurrent" else f"--recurrent (saved: {old})"
        for flag, (value, old) in given.items()
        if value is not None and value != old
    ]
    conflicts += [
        f"--{k.replace('_', '-')} {_show(v)} (saved: {_show(getattr(saved, k))})"
        for k, v in sorted(overrides.items())
        if k != "total_steps" and v != getattr(saved, k)
    ]
    if conflicts:
        raise UsageError(
            f"--resume {run_dir} continues the run with its saved settings, which these flags "
            f"contradict: {', '.join(conflicts)}; drop them to continue the run, or start a new "
            "run (--run-dir NEW) to use them (on resume only --total-steps, --data-dir and the "
            "run-control flags may change)"
        )
    hyperparams = saved
    if "total_steps" in overrides:
        hyperparams = dataclasses.replace(saved, total_steps=overrides["total_steps"])
    return dataclasses.replace(
        config,
        hyperparams=hyperparams,
        run_dir=str(run_dir),
        resume=str(run_dir),
        data_dir=args.data_dir or config.data_dir,
        **run_control,
    )


def load_config(run_dir: str | Path) -> PPOTrainConfig:
    """Read a run folder's ``config.json`` back as a :class:`PPOTrainConfig`."""
    values = json.loads((Path(run_dir) / "config.json").read_text())
    # Runs saved before ``used_actions_only`` existed counted every action part.
    values["hyperparams"].setdefault("used_actions_only", False)
    values["hyperparams"] = SB3Hyperparams.from_dict(values["hyperparams"])
    known = {f.name for f in dataclasses.fields(PPOTrainConfig)}
    return PPOTrainConfig(**{k: v for k, v in values.items() if k in known})


# ---------------------------------------------------------------------- building blocks
def make_vec_env(
    config: PPOTrainConfig, num_envs: int | None = None, seed: int | None = None
) -> Any:
    """The training env: ``GlimpseVecEnv`` -> ``VecMonitor`` (-> ``GlimpseHistory`` for PPO).

    Args:
        config: the run configuration.
        num_envs: default ``hyperparams.num_envs``.
        seed: seed of the first reset (normally set by the model instead).
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.sb3_policy import ActionUse, GlimpseHistory
    from glimpse_env.sb3 import GlimpseVecEnv

    hp = config.resolved_hyperparams()
    kwargs = {**config.env_kwargs, "reward": config.reward, "split": "train"}
    if config.data_dir is not None:
        kwargs["data_dir"] = config.data_dir
    venv: Any = GlimpseVecEnv(config.env_id, num_envs=num_envs or hp.num_envs, seed=seed, **kwargs)
    venv = VecMonitor(venv)
    if config.agent == "ppo" and hp.history:
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


def _action_use_meta(env: Any) -> dict[str, Any] | None:
    """``{"horizon", "class_every_step"}`` of the env's :class:`ActionUse` wrapper, if any."""
    from agents.sb3_policy import ActionUse

    while env is not None and not isinstance(env, ActionUse):
        env = getattr(env, "venv", None)
    if env is None:
        return None
    return {"horizon": env.horizon, "class_every_step": env.class_every_step}


def build_model(config: PPOTrainConfig, env: Any, device: str) -> Any:
    """A fresh PPO / RecurrentPPO model for ``config`` on ``env``."""
    from stable_baselines3.common.utils import LinearSchedule

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
        "stats_window_size": _STATS_WINDOW,
        "seed": config.seed,
        "device": device,
        "verbose": 0,
        **hp.extra,
    }
    if config.agent == "recurrent_ppo":
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


def _eval_env_kwargs(config: PPOTrainConfig) -> dict[str, Any]:
    kwargs = dict(config.env_kwargs)
    if config.data_dir is not None:
        kwargs["data_dir"] = config.data_dir
    return kwargs


def _meta(
    config: PPOTrainConfig,
    num_timesteps: int,
    elapsed_s: float,
    action_use: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import stable_baselines3

    hp = config.resolved_hyperparams()
    history = None
    if config.agent == "ppo" and hp.history:
        history = {"combine": hp.history_combine}
    return {
        "agent": config.agent,
        "algorithm": "RecurrentPPO" if config.agent == "recurrent_ppo" else "PPO",
        "env_id": config.env_id,
        "env_kwargs": json_ready({**config.env_kwargs, "reward": config.reward}),
        "checkpoint": _MODEL_FILE,
        "data_dir": None if config.data_dir is None else str(Path(config.data_dir).resolve()),
        "history": history,
        "action_use": action_use,
        "num_timesteps": int(num_timesteps),
        "elapsed_s": round(float(elapsed_s), 3),
        "seed": config.seed,
        "stable_baselines3": stable_baselines3.__version__,
    }


# ---------------------------------------------------------------------- callbacks
def _make_callbacks(
    config: PPOTrainConfig,
    run_dir: Path,
    logger: Any,
    elapsed_before: float,
    action_use: dict[str, Any] | None = None,
) -> list[Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    class TqdmCallback(BaseCallback):
        """A tqdm bar over env steps (SB3's own ``progress_bar`` needs ``rich``)."""

        def __init__(self) -> None:
            super().__init__()
            self.bar: Any = None

        def _on_training_start(self) -> None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.model._total_timesteps,
                initial=self.model.num_timesteps,
                unit="step",
                unit_scale=True,
                desc=f"{config.agent} {config.env_id}",
                dynamic_ncols=True,
            )

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    class RunCallback(BaseCallback):
        """Metrics rows after every update, periodic evaluation and atomic checkpoints."""

        def __init__(self, bar: TqdmCallback | None) -> None:
            super().__init__()
            self.bar = bar
            self.t0 = time.perf_counter()
            self.start_steps = 0
            self.last_logged = -1
            self.last_checkpoint = 0
            self.next_eval = 0
            self.last_line = 0.0

        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()
            self.start_steps = self.last_checkpoint = self.model.num_timesteps
            every = config.eval_every
            # A fresh run evaluates at step 0 (the untrained policy); a resumed one at the
            # next multiple of eval_every (its row at the resume step is already logged).
            if every <= 0:
                self.next_eval = -1
            elif self.start_steps == 0:
                self.next_eval = 0
            else:
                self.next_eval = (self.start_steps // every + 1) * every
            self.last_line = self.t0

        def _on_step(self) -> bool:
            budget = config.time_budget_s
            return budget is None or time.perf_counter() - self.t0 < budget

        def _on_rollout_start(self) -> None:
            # Called before each rollout, i.e. right after the previous update.
            self._after_update(final=False)

        def _on_training_end(self) -> None:
            self._after_update(final=True)

        def elapsed(self) -> float:
            return elapsed_before + time.perf_counter() - self.t0

        def _after_update(self, final: bool) -> None:
            step = int(self.model.num_timesteps)
            if step == self.last_logged:
                return
            row = self._row(step)
            due = config.eval_every > 0 and (step >= self.next_eval or final)
            if due:
                row["eval_accuracy"] = self._evaluate()
                while self.next_eval <= step:
                    self.next_eval += config.eval_every
            if step > self.start_steps or due:
                logger.log(step, row)
                self.last_logged = step
                self._report(step, row, due)
            if step - self.last_checkpoint >= config.checkpoint_every or (
                final and step > self.last_checkpoint
            ):
                self.checkpoint(step)

        def _row(self, step: int) -> dict[str, Any]:
            model = self.model
            seconds = max(time.perf_counter() - self.t0, 1e-9)
            row: dict[str, Any] = dict.fromkeys(METRIC_COLUMNS, "")
            row["elapsed_s"] = round(self.elapsed(), 3)
            row["fps"] = round((step - self.start_steps) / seconds, 1)
            if model.ep_success_buffer:
                row["success_rate"] = float(sum(model.ep_success_buffer)) / len(
                    model.ep_success_buffer
                )
            if model.ep_info_buffer:
                returns = [ep["r"] for ep in model.ep_info_buffer]
                row["ep_rew_mean"] = float(sum(returns)) / len(returns)
            if step > self.start_steps:
                values = model.logger.name_to_value
                for column, key in _TRAIN_KEYS.items():
                    if key in values:
                        row[column] = float(values[key])
            return row

        def _evaluate(self) -> float:
            from agents.policy import evaluate_policy
            from agents.sb3_policy import SB3Policy

            policy = SB3Policy(self.model, config.env_id, _eval_env_kwargs(config), action_use)
            result = evaluate_policy(
                policy,
                split=config.eval_split,
                n_images=config.eval_images,
                mode="deterministic",
                num_envs=min(500, config.eval_images),
            )
            return float(result["accuracy"])

        def _report(self, step: int, row: dict[str, Any], evaluated: bool) -> None:
            summary = {
                "success": row["success_rate"],
                "eval_acc": row["eval_accuracy"],
                "fps": row["fps"],
            }
            summary = {k: v for k, v in summary.items() if v != ""}
            if self.bar is not None and self.bar.bar is not None:
                self.bar.bar.set_postfix(
                    {k: f"{v:.3f}" if k != "fps" else f"{v:.0f}" for k, v in summary.items()},
                    refresh=False,
                )
                return
            now = time.perf_counter()
            if evaluated or now - self.last_line >= 30.0:
                self.last_line = now
                parts = " ".join(f"{k}={v:.4g}" for k, v in summary.items())
                print(f"[{config.agent}] step {step}: {parts}", file=sys.stderr, flush=True)

        def checkpoint(self, step: int) -> None:
            from agents.checkpoints import write_json

            save_model(self.model, run_dir / _MODEL_FILE)
            write_json(run_dir / "meta.json", _meta(config, step, self.elapsed(), action_use))
            self.last_checkpoint = step

    bar = TqdmCallback() if config.progress else None
    return [cb for cb in (bar, RunCallback(bar)) if cb is not None]


# ---------------------------------------------------------------------- training
def train_ppo(config: PPOTrainConfig, overwrite: bool = False) -> Path:
    """Train (or resume) an SB3 agent as configured; returns the run folder.

    Writes ``model.zip``, ``meta.json``, ``config.json``, ``metrics.csv`` (+ ``tb/``) and,
    unless ``final_eval_images == 0``, ``eval.json`` (see the module docstring).

    Args:
        config: the run's configuration (``config.resume``: continue that run folder).
        overwrite: replace a previous run in ``config.run_dir`` (see
            :func:`train.run_folder.claim_run_dir`; else a non-empty folder is refused).
    """
    from train.run_folder import claim_run_dir

    if config.agent not in ("ppo", "recurrent_ppo"):
        raise ValueError(f"agent must be 'ppo' or 'recurrent_ppo', got {config.agent!r}")
    resume = config.resume is not None
    with claim_run_dir(
        config.resume if resume else config.run_dir,
        config.agent,
        config.env_id,
        resume=resume,
        overwrite=overwrite,
    ) as run_dir:
        return _train_ppo(config, run_dir)


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


def _train_ppo(config: PPOTrainConfig, run_dir: Path) -> Path:
    """:func:`train_ppo` in the claimed (and locked) ``run_dir``."""
    import torch
    from stable_baselines3.common.logger import Logger

    from agents.checkpoints import write_json
    from agents.policy import evaluate_policy
    from agents.sb3_policy import SB3Policy
    from train.common import MetricLogger, dump_config, resolve_device
    from train.run_folder import load_resume_checkpoint

    if config.torch_threads:
        torch.set_num_threads(int(config.torch_threads))
    device = str(resolve_device(config.device))
    hp = config.resolved_hyperparams()
    if config.resume is not None and not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no config.json: not a ppo run folder")
    config = dataclasses.replace(config, run_dir=str(run_dir), hyperparams=hp)

    env = make_vec_env(config)
    checkpoint = run_dir / _MODEL_FILE
    elapsed_before = 0.0
    model = None
    if config.resume is not None:  # the newest usable model.zip (or model.prev.zip), if any
        model = load_resume_checkpoint(
            checkpoint, lambda path: _load_model_file(path, config.agent, env, device)
        )
    if model is not None:
        meta_file = run_dir / "meta.json"
        if meta_file.is_file():
            elapsed_before = float(json.loads(meta_file.read_text()).get("elapsed_s", 0.0))
        # Fresh episodes after a resume, not a replay of the first run's digits.
        model.set_random_seed(config.seed + int(model.num_timesteps))
        resume_step: int | None = int(model.num_timesteps)
    else:
        model = build_model(config, env, device)
        resume_step = 0 if config.resume is not None else None
    model.set_logger(Logger(folder=None, output_formats=[]))
    dump_config(run_dir / "config.json", config.to_dict())
    action_use = _action_use_meta(env)
    write_json(
        run_dir / "meta.json", _meta(config, model.num_timesteps, elapsed_before, action_use)
    )

    logger = MetricLogger(run_dir, resume_step=resume_step)
    try:
        remaining = hp.total_steps - int(model.num_timesteps)
        if remaining > 0:
            model.learn(
                total_timesteps=remaining,
                callback=_make_callbacks(config, run_dir, logger, elapsed_before, action_use),
                log_interval=None,  # type: ignore[arg-type]  # rows are written by RunCallback
                reset_num_timesteps=False,
            )
    finally:
        logger.close()
        env.close()

    if config.final_eval_images != 0:
        policy = SB3Policy(model, config.env_id, _eval_env_kwargs(config), action_use)
        result = evaluate_policy(
            policy,
            split=config.eval_split,
            n_images=config.final_eval_images,
            mode="deterministic",
            progress=config.progress,
        )
        result.update(
            agent=config.agent, checkpoint=_MODEL_FILE, num_timesteps=int(model.num_timesteps)
        )
        write_json(run_dir / "eval.json", result)
    return run_dir
