"""``glimpse train ram``: the Recurrent Attention Model trained with REINFORCE.

The loop reads top to bottom: build the vector env and the trainer, (maybe) resume, then
per iteration play one batch of episodes and take one optimiser step; log, validate and
checkpoint every so often; finally evaluate on the test split and write ``eval.json``.

Run folder: ``config.json`` (the resolved config), ``meta.json`` (what ``glimpse eval``
reads), ``checkpoint.pt`` (written atomically, the one before kept as
``checkpoint.prev.pt``; ``--resume RUN_DIR`` continues from it to the same result as an
uninterrupted run), ``metrics.csv`` and ``tb/`` (TensorBoard), ``eval.json``. The folder
belongs to one run (:mod:`train.run_folder`): a non-empty one needs ``--resume`` or
``--overwrite``, and it is locked while training.

``--max-minutes M`` caps the training wall-clock: the run then ends cleanly after the
iteration in progress (checkpoint, validation, final test evaluation) and ``eval.json``
says ``"stopped_early": true`` with the iterations and epochs reached.
``--location-policy random`` is the paper's random-glimpse ablation (presets
``*-random8``): uniform random locations, a classifier trained on their glimpses.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glimpse_env.registration import ENV_IDS
from train.common import TRAINING_SPLITS, RunOptions, training_split_notice, validation_held_out
from train.validation import MAX_SEED

#: Presets: the paper's RAM rows (Tables 1-2). Each maps to an env and its settings; the
#: optimisation settings are this project's (see README for what they reach).
PRESETS: dict[str, dict[str, Any]] = {
    **{f"mnist-{t}": {"env": "GlimpseMNIST-v0", "n_glimpses": t} for t in (2, 3, 4, 5, 6, 7)},
    **{f"translated-{t}": {"env": "GlimpseTranslatedMNIST-v0", "n_glimpses": t} for t in (4, 6, 8)},
    **{f"cluttered60-{t}": {"env": "GlimpseClutteredMNIST-v0", "n_glimpses": t} for t in (4, 6, 8)},
    **{
        f"cluttered100-{t}": {"env": "GlimpseClutteredMNIST100-v0", "n_glimpses": t}
        for t in (4, 6, 8)
    },
    # The paper's "RAM, 8 random glimpses" ablation (Table 2; the translated one is extra).
    **{
        f"{name}-random8": {"env": env, "n_glimpses": 8, "location_policy": "random"}
        for name, env in (
            ("translated", "GlimpseTranslatedMNIST-v0"),
            ("cluttered60", "GlimpseClutteredMNIST-v0"),
            ("cluttered100", "GlimpseClutteredMNIST100-v0"),
        )
    },
}

#: Flags restricted to a set of values.
_CHOICES: dict[str, tuple[str, ...]] = {
    "env": ENV_IDS,
    "start": ("random", "center"),
    "optimizer": ("adam", "sgd"),
    "lr_schedule": ("constant", "linear", "cosine"),
    "core": ("rnn", "lstm", "gru"),
    "location_policy": ("learned", "random"),
    "location_reward": ("env", "expected"),
    "precision": ("float32", "bfloat16"),
    "split": TRAINING_SPLITS,
}


@dataclass
class RAMTrainConfig(RunOptions):
    """Everything ``glimpse train ram`` can be told (each field is a ``--flag``; the run
    options shared with the other commands are in :class:`train.common.RunOptions`)."""

    env: str = "GlimpseMNIST-v0"
    """Environment id."""
    n_glimpses: int | None = field(default=None, metadata={"ge": 1})
    """Glimpses per episode (None: the env's default, the paper's setting)."""
    split: str = "train"
    """Training split: ``train`` (the first 50,000 digits; the last 10,000, ``val``, are
    held out for validation) or ``train_full`` (all 60,000, as the paper; validation then
    measures digits the run trains on, so only the test split is held out)."""
    start: str = "random"
    """First glimpse location: ``random`` (paper) or ``center``."""
    batch_size: int = field(default=64, metadata={"ge": 1})
    """Episodes per optimiser step (= sub-envs of the vector env)."""
    epochs: float = field(default=150.0, metadata={"gt": 0.0})
    """Length of the run in passes over the training split (sets the iteration count)."""
    optimizer: str = "adam"
    """``adam`` or ``sgd`` (momentum 0.9, as the paper)."""
    lr: float = field(default=5e-4, metadata={"gt": 0.0})
    """Initial learning rate."""
    lr_schedule: str = "cosine"
    """``constant``, ``linear`` or ``cosine`` anneal to 0 over the run."""
    weight_decay: float = field(default=0.0, metadata={"ge": 0.0})
    """L2 weight decay."""
    std: float = field(default=0.12, metadata={"gt": 0.0})
    """Location policy standard deviation (in [-1, 1] units)."""
    std_end: float | None = field(default=None, metadata={"gt": 0.0})
    """Anneal the std linearly to this value over the run (None: constant)."""
    core: str = "rnn"
    """Core network: ``rnn`` (paper), ``lstm`` or ``gru``."""
    glimpse_hidden: int = field(default=128, metadata={"ge": 1})
    """Units of h_g."""
    location_hidden: int = field(default=128, metadata={"ge": 1})
    """Units of h_l."""
    glimpse_out: int = field(default=256, metadata={"ge": 1})
    """Units of g_t."""
    core_hidden: int = field(default=256, metadata={"ge": 1})
    """Units of the core state h_t."""
    location_mlp_hidden: int = field(default=0, metadata={"ge": 0})
    """Units of a hidden ReLU layer in the location network (mean
    ``tanh(Linear(ReLU(Linear(h_t))))``); 0: the paper's ``tanh(Linear(h_t))``."""
    detach_location_input: bool = True
    """The location network reads a detached ``h_t`` (REINFORCE trains only the location
    network); ``--no-detach-location-input``: the location gradient also reaches the core
    and glimpse networks, as in the paper's policy-gradient derivation."""
    location_reward: str = "env"
    """Return of the location network's REINFORCE term (hybrid loss): ``env`` the env's
    0/1 reward (paper) or ``expected`` the probability the final scores give the true
    class (the 0/1 reward averaged over the class draw: less variance)."""
    reinforce_weight: float = field(default=1.0, metadata={"ge": 0.0})
    """Weight of the REINFORCE term in the loss (with Adam it matters only where that term
    shares parameters with the others, i.e. with ``--no-detach-location-input``)."""
    hybrid: bool = True
    """Hybrid loss (paper: cross-entropy for the classifier); ``--no-hybrid``: pure REINFORCE."""
    location_policy: str = "learned"
    """``learned`` (RAM) or ``random``: the random-glimpse ablation: every location is
    uniform in [-1, 1]^2 (the trainer's seeded generator), only the classifier, core and
    glimpse networks train; evaluation uses a fixed seeded random draw per image and step
    (deterministic and sampled modes are two independent draws)."""
    max_grad_norm: float | None = field(default=None, metadata={"gt": 0.0})
    """Clip the gradient norm (None: no clipping)."""
    precision: str = "float32"
    """``float32`` or ``bfloat16``: mixed precision for the glimpse and core networks'
    training products (float32 weights, gradients and evaluation; faster on CPUs with
    AVX512-BF16/AMX and on GPUs, slower where bfloat16 is emulated)."""
    eval_every: int = field(default=8000, metadata={"ge": 1})
    """Validate every this many iterations."""
    eval_images: int = field(
        default=10000, metadata={"ge": 1, "le": 10_000, "why": "the val split has 10,000 images"}
    )
    """Validation images per validation (deterministic, one rollout each)."""
    log_every: int = field(default=1000, metadata={"ge": 1})
    """Write a metrics row every this many iterations."""
    checkpoint_every: int = field(default=2000, metadata={"ge": 1})
    """Write the checkpoint every this many iterations."""
    seed: int = field(default=0, metadata={"ge": 0, "le": MAX_SEED})
    """Seed of the model, the sampling and the env."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; CUDA uses the env's torch backend."""
    run_dir: str | None = None
    """Run folder (default: runs/ram-<env>-<time>)."""

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the training env (without the split)."""
        kwargs: dict[str, Any] = {"start": self.start, **self.extra_env_kwargs}
        if self.n_glimpses is not None:
            kwargs["n_glimpses"] = self.n_glimpses
        if self.data_dir is not None:
            kwargs["data_dir"] = self.data_dir
        return kwargs


def wrap_location_policy(policy: Any, meta: dict[str, Any]) -> Any:
    """The policy a run is evaluated and rendered with.

    Args:
        policy: the run's policy (e.g. a ``RAMPolicy``).
        meta: the run's ``meta.json``.

    Returns:
        ``policy`` itself, or, for a random-glimpse run (``"location_policy": "random"``),
        an :class:`agents.reinforce.RandomLocationPolicy` around it seeded with the run's
        ``location_seed`` (a policy already wrapped is returned as is).
    """
    from agents.reinforce import RandomLocationPolicy

    if meta.get("location_policy", "learned") != "random" or isinstance(
        policy, RandomLocationPolicy
    ):
        return policy
    return RandomLocationPolicy(policy, seed=int(meta.get("location_seed", 0)))


def load_run_policy(path: str | Path, device: str = "cpu") -> Any:
    """Load a trained RAM run (folder or checkpoint) as the policy its ``eval.json`` used.

    Like :func:`agents.policy.load_policy`, but random-glimpse runs get their seeded random
    locations (:func:`wrap_location_policy`).

    Args:
        path: run folder or checkpoint.
        device: torch device of the model.

    Returns:
        The policy.
    """
    from agents.policy import load_policy

    loaded = load_policy(path, device=device)
    return wrap_location_policy(loaded.policy, loaded.meta)


def train_ram(cfg: RAMTrainConfig, resume: str | None = None, overwrite: bool = False) -> Path:
    """Train (or resume) a RAM agent; returns the run folder.

    Args:
        cfg: the run's configuration.
        resume: a run folder to continue from its newest usable checkpoint (then ``cfg``
            must be the one saved in its ``config.json``).
        overwrite: replace a previous run in ``cfg.run_dir`` (see
            :func:`train.run_folder.claim_run_dir`; else a non-empty folder is refused).
    """
    from train.run_folder import claim_run_dir

    with claim_run_dir(
        resume or cfg.run_dir, "ram", cfg.env, resume=resume is not None, overwrite=overwrite
    ) as run_dir:
        return _train_ram(cfg, resume, run_dir)


def _train_ram(cfg: RAMTrainConfig, resume: str | None, run_dir: Path) -> Path:
    """:func:`train_ram` in the claimed (and locked) ``run_dir``."""
    import gymnasium as gym
    import torch
    from tqdm.auto import tqdm

    import glimpse_env  # noqa: F401
    from agents.checkpoints import load_checkpoint, save_checkpoint, write_json
    from agents.policy import Policy, evaluate_policy
    from agents.ram import RAMConfig, count_parameters
    from agents.ram_policy import RAMPolicy, model_payload
    from agents.reinforce import ReinforceConfig, ReinforceTrainer
    from train.common import MetricLogger, resolve_device
    from train.run_folder import load_resume_checkpoint

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    checkpoint_file = run_dir / "checkpoint.pt"

    # Environments: the training batch (torch backend on CUDA keeps the loop on the GPU).
    backend = {"backend": "torch", "device": device} if device.type == "cuda" else {}
    envs = gym.make_vec(
        cfg.env,
        num_envs=cfg.batch_size,
        split=cfg.split,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        **cfg.env_kwargs(),
        **backend,
    )
    n_train = len(envs.unwrapped.task.data)
    total = max(1, round(cfg.epochs * n_train / cfg.batch_size))
    model_cfg = RAMConfig(
        glimpse_hidden=cfg.glimpse_hidden,
        location_hidden=cfg.location_hidden,
        glimpse_out=cfg.glimpse_out,
        core_hidden=cfg.core_hidden,
        location_mlp_hidden=cfg.location_mlp_hidden,
        core=cfg.core,
        location_std=cfg.std,
        detach_location_input=cfg.detach_location_input,
    )
    trainer = ReinforceTrainer(
        envs,
        ReinforceConfig(
            model=model_cfg,
            total_iterations=total,
            optimizer=cfg.optimizer,
            lr=cfg.lr,
            lr_schedule=cfg.lr_schedule,
            weight_decay=cfg.weight_decay,
            std_start=cfg.std,
            std_end=cfg.std_end,
            hybrid=cfg.hybrid,
            reinforce_weight=cfg.reinforce_weight,
            location_reward=cfg.location_reward,
            location_policy=cfg.location_policy,
            max_grad_norm=cfg.max_grad_norm,
            precision=cfg.precision,
            seed=cfg.seed,
        ),
        device=device,
    )
    meta = {
        "agent": "ram",
        "env_id": cfg.env,
        "env_kwargs": cfg.env_kwargs(),
        "checkpoint": checkpoint_file.name,
        "parameters": count_parameters(trainer.model),
        "iterations": total,
        "location_policy": cfg.location_policy,
        "location_seed": cfg.seed,
    }

    # Resume: trainer state plus the env's episode stream, so the run continues exactly
    # (from the previous checkpoint if the newest is unreadable; from the start if none).
    elapsed, running_acc, state = 0.0, None, None
    if resume is not None:
        state = load_resume_checkpoint(
            checkpoint_file, lambda path: load_checkpoint(path, map_location=device)
        )
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        trainer.set_observation(envs.unwrapped.set_state(state["env_state"]))
        elapsed = float(state.get("elapsed", 0.0))
        running_acc = state.get("running_accuracy")
    else:
        if resume is None:
            write_json(run_dir / "config.json", asdict(cfg))
        write_json(run_dir / "meta.json", meta)
    start = trainer.iteration
    logger = MetricLogger(run_dir, resume_step=start * cfg.batch_size if resume else None)

    def policy() -> Policy:
        std = trainer.current_std()
        ram = RAMPolicy(trainer.model, cfg.env, meta["env_kwargs"], std=std, device=device)
        return wrap_location_policy(ram, meta)

    def save(running_acc: float | None) -> None:
        save_checkpoint(
            checkpoint_file,
            {
                **meta,
                **model_payload(trainer.model, model_cfg),
                "trainer": trainer.state_dict(),
                "env_state": envs.unwrapped.get_state(),
                "elapsed": elapsed + time.perf_counter() - t0,
                "running_accuracy": running_acc,
            },
            keep_previous=True,
        )

    print(
        f"RAM ({meta['parameters']:,} parameters) on {cfg.env}: {total:,} iterations of "
        f"{cfg.batch_size} episodes ({cfg.epochs:g} epochs), device {device}; run folder {run_dir}"
    )
    if notice := training_split_notice(cfg.split):
        print(notice)
    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, unit="it", dynamic_ncols=True)
    val_acc = None
    stop = total if cfg.stop_after is None else min(total, start + cfg.stop_after)
    cap_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    stopped_early = False
    for iteration in range(start + 1, stop + 1):
        metrics = trainer.train_iteration()
        acc = metrics.get("accuracy", metrics["reward"])
        running_acc = acc if running_acc is None else 0.98 * running_acc + 0.02 * acc
        bar.update(1)
        images = iteration * cfg.batch_size
        # Wall-clock cap: this iteration is the last one (validated and checkpointed).
        capped = (
            cap_s is not None and iteration < total and elapsed + time.perf_counter() - t0 >= cap_s
        )
        if iteration % cfg.eval_every == 0 or iteration == total or capped:
            result = evaluate_policy(
                policy(), split="val", n_images=cfg.eval_images, num_envs=min(1000, cfg.eval_images)
            )
            val_acc = result["accuracy"]
            metrics["val_accuracy"] = val_acc
        if iteration % cfg.log_every == 0 or "val_accuracy" in metrics:
            seconds = elapsed + time.perf_counter() - t0
            logger.log(images, {**metrics, "train_accuracy_ema": running_acc, "wall_s": seconds})
            val = "-" if val_acc is None else f"{val_acc:.4f}"
            bar.set_postfix({"acc": f"{running_acc:.3f}", "val": val})
            if not cfg.progress:
                print(
                    f"it {iteration}/{total} images {images} acc {running_acc:.4f} val {val}",
                    flush=True,
                )
        if iteration % cfg.checkpoint_every == 0 or iteration == total or capped:
            save(running_acc)
        if capped:
            stopped_early = True
            break
    bar.close()
    logger.close()
    done = trainer.iteration
    if stopped_early:
        print(
            f"stopped at iteration {done:,} of {total:,} after {cfg.max_minutes:g} min "
            f"(--max-minutes); checkpoint written, evaluating"
        )
    elif stop < total:
        print(f"stopped at iteration {stop} (--stop-after); resume with --resume {run_dir}")
        return run_dir

    # Final evaluation: test split, one rollout per image, deterministic and sampled.
    wall = elapsed + time.perf_counter() - t0
    results = {
        mode: evaluate_policy(
            policy(), split="test", n_images=cfg.test_images, mode=mode, num_envs=1000
        )
        for mode in ("deterministic", "sample")
    }
    summary = {
        "env_id": cfg.env,
        "test_error_rate": results["deterministic"]["error_rate"],
        "test_error_rate_sampled": results["sample"]["error_rate"],
        "results": results,
        "parameters": meta["parameters"],
        "location_policy": cfg.location_policy,
        "iterations": done,
        "iterations_planned": total,
        "epochs": done * cfg.batch_size / n_train,
        "stopped_early": stopped_early,
        "validation_held_out": validation_held_out(cfg.split),
        "max_minutes": cfg.max_minutes,
        "images_seen": done * cfg.batch_size,
        "train_wall_s": wall,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "config": asdict(cfg),
    }
    write_json(run_dir / "eval.json", summary)
    print(
        f"test error {100 * summary['test_error_rate']:.2f}% (deterministic), "
        f"{100 * summary['test_error_rate_sampled']:.2f}% (one sampled rollout); "
        f"{wall / 60:.1f} min; wrote {run_dir / 'eval.json'}"
    )
    return run_dir


# ------------------------------------------------------------------------ command line
def register(subparsers: Any) -> None:
    from train.common import add_config_flags
    from train.train_cmd import add_common_run_args

    parser = subparsers.add_parser(
        "ram",
        help="the Recurrent Attention Model with REINFORCE (hybrid loss)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a row of the paper's tables")
    add_common_run_args(parser)
    skip = {"seed", "device", "data_dir", "run_dir", "progress", "extra_env_kwargs"}
    add_config_flags(parser, RAMTrainConfig, skip, _CHOICES)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from train.common import config_from_args
    from train.errors import UsageError

    preset = {**PRESETS[args.preset]} if getattr(args, "preset", None) else None
    cfg = config_from_args(args, RAMTrainConfig, preset)  # on --resume: the saved config
    if cfg.location_reward == "expected" and not cfg.hybrid:
        raise UsageError(
            "--location-reward expected needs the label, i.e. the hybrid loss: drop "
            "--no-hybrid, or use --location-reward env"
        )
    train_ram(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
