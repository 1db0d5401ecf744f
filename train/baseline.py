"""``glimpse train baseline``: the paper's supervised FC / Conv baselines on whole canvases.

The loop reads top to bottom: build the canvas source (the env, unwrapped) and the model,
(maybe) resume, then per iteration draw a fresh batch of training canvases and take one
optimiser step on the cross-entropy; log, validate and checkpoint every so often; finally
evaluate on the test split and write ``eval.json``.

Training canvases come from the env's own episode stream (``draw_episodes`` with the env's
seeded keys, as the vector env draws them for a glimpse agent): iteration ``t`` draws
episode ``t`` of sub-envs ``seed + i``, so every batch is new (digits drawn at random, and
on translated/cluttered variants a new position and clutter) and a function of ``t`` alone.
Validation and test use the fixed ``val`` / ``test`` canvases a glimpse agent is tested on
(:func:`agents.baselines.evaluate_baseline`).

Run folder: ``config.json``, ``meta.json`` (what ``glimpse eval`` reads), ``checkpoint.pt``
(written atomically, the one before kept as ``checkpoint.prev.pt``; ``--resume RUN_DIR``
continues from it to the same result as an uninterrupted run), ``metrics.csv`` and ``tb/``
(TensorBoard), ``eval.json``. The folder belongs to one run (:mod:`train.run_folder`): a
non-empty one needs ``--resume`` or ``--overwrite``, and it is locked while training.

``--max-minutes M`` caps the training wall-clock: the run then ends cleanly after the
iteration in progress (checkpoint, validation, final test evaluation) and ``eval.json``
says ``"stopped_early": true`` with the iterations and epochs reached.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glimpse_env.registration import ENV_IDS
from train.common import TRAINING_SPLITS, RunOptions, training_split_notice, validation_held_out
from train.validation import MAX_SEED


@dataclass
class BaselineTrainConfig(RunOptions):
    """Everything ``glimpse train baseline`` can be told (each field is a ``--flag``; the run
    options shared with the other commands are in :class:`train.common.RunOptions`)."""

    arch: str = "fc256"
    """``fc64``, ``fc256`` (2 hidden ReLU layers) or ``conv`` (8 @ 10x10 stride 5, FC 256)."""
    env: str = "GlimpseMNIST-v0"
    """Environment id (its canvases are the input)."""
    split: str = "train"
    """Training split: ``train`` (the first 50,000 digits; the last 10,000, ``val``, are
    held out for validation) or ``train_full`` (all 60,000: validation then measures digits
    the run trains on)."""
    batch_size: int = field(default=128, metadata={"ge": 1})
    """Canvases per optimiser step."""
    epochs: float = field(default=20.0, metadata={"gt": 0.0})
    """Length of the run in passes over the training split (sets the iteration count)."""
    optimizer: str = "adam"
    """``adam`` or ``sgd`` (momentum 0.9)."""
    lr: float = field(default=1e-3, metadata={"gt": 0.0})
    """Initial learning rate."""
    lr_schedule: str = "cosine"
    """``constant``, ``linear`` or ``cosine`` anneal to 0 over the run."""
    weight_decay: float = field(default=0.0, metadata={"ge": 0.0})
    """L2 weight decay."""
    eval_every: int | None = field(default=None, metadata={"ge": 1})
    """Validate every this many iterations (None: once per epoch)."""
    eval_images: int = field(
        default=10000, metadata={"ge": 1, "le": 10_000, "why": "the val split has 10,000 images"}
    )
    """Validation images per validation."""
    log_every: int = field(default=100, metadata={"ge": 1})
    """Write a metrics row every this many iterations."""
    checkpoint_every: int = field(default=1000, metadata={"ge": 1})
    """Write the checkpoint every this many iterations."""
    seed: int = field(default=0, metadata={"ge": 0, "le": MAX_SEED})
    """Seed of the model's initialisation and of the training canvases."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    run_dir: str | None = None
    """Run folder (default: runs/baseline-<env>-<time>)."""

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the canvas env (without the split)."""
        kwargs: dict[str, Any] = {**self.extra_env_kwargs}
        if self.data_dir is not None:
            kwargs["data_dir"] = self.data_dir
        return kwargs


#: Flags restricted to a set of values.
_CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ("fc64", "fc256", "conv"),
    "env": ENV_IDS,
    "split": TRAINING_SPLITS,
    "optimizer": ("adam", "sgd"),
    "lr_schedule": ("constant", "linear", "cosine"),
}


def lr_factor(schedule: str, iteration: int, total: int) -> float:
    """Learning-rate multiplier after ``iteration`` of ``total`` optimiser steps."""
    progress = min(1.0, iteration / total)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"lr_schedule must be one of {_CHOICES['lr_schedule']}, got {schedule!r}")


def train_baseline(
    cfg: BaselineTrainConfig, resume: str | None = None, overwrite: bool = False
) -> Path:
    """Train (or resume) a supervised baseline.

    Args:
        cfg: the run's configuration.
        resume: a run folder to continue from its newest usable checkpoint (then ``cfg``
            must be the one saved in its ``config.json``).
        overwrite: replace a previous run in ``cfg.run_dir`` (see
            :func:`train.run_folder.claim_run_dir`; else a non-empty folder is refused).

    Returns:
        The run folder.
    """
    from train.run_folder import claim_run_dir

    with claim_run_dir(
        resume or cfg.run_dir, "baseline", cfg.env, resume=resume is not None, overwrite=overwrite
    ) as run_dir:
        return _train_baseline(cfg, resume, run_dir)


def _train_baseline(cfg: BaselineTrainConfig, resume: str | None, run_dir: Path) -> Path:
    """:func:`train_baseline` in the claimed (and locked) ``run_dir``."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from agents.baselines import (
        build_baseline,
        canvases_to_tensor,
        count_parameters,
        evaluate_baseline,
        make_canvas_env,
        model_payload,
    )
    from agents.checkpoints import load_checkpoint, save_checkpoint, write_json
    from train.common import MetricLogger, resolve_device
    from train.run_folder import load_resume_checkpoint

    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ValueError(
                f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, "
                f"got {getattr(cfg, name)!r}"
            )
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    checkpoint_file = run_dir / "checkpoint.pt"

    # The canvas source: the env's episode stream, one fresh batch of canvases per iteration.
    env = make_canvas_env(cfg.env, cfg.split, cfg.env_kwargs())
    image_size = env.canvas_size
    n_train = len(env.data)
    total = max(1, round(cfg.epochs * n_train / cfg.batch_size))
    eval_every = cfg.eval_every or max(1, round(n_train / cfg.batch_size))
    keys = env.new_keys(cfg.seed, cfg.batch_size)
    no_offsets = np.zeros(cfg.batch_size, dtype=np.int64)

    # Model and optimiser.
    torch.manual_seed(cfg.seed)
    model = build_baseline(cfg.arch, image_size).to(device)
    if cfg.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(cfg.lr_schedule, it, total)
    )
    meta = {
        "agent": "baseline",
        "arch": cfg.arch,
        "env_id": cfg.env,
        "env_kwargs": cfg.env_kwargs(),
        "checkpoint": checkpoint_file.name,
        "parameters": count_parameters(model),
        "image_size": image_size,
        "iterations": total,
    }

    # Resume: model and optimiser state; the canvas stream is a function of the iteration
    # (from the previous checkpoint if the newest is unreadable; from the start if none).
    start, elapsed, running_acc, state = 0, 0.0, None, None
    if resume is not None:
        state = load_resume_checkpoint(
            checkpoint_file, lambda path: load_checkpoint(path, map_location=device)
        )
    if state is not None:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["iteration"])
        elapsed = float(state.get("elapsed", 0.0))
        running_acc = state.get("running_accuracy")
    else:
        if resume is None:
            write_json(run_dir / "config.json", asdict(cfg))
        write_json(run_dir / "meta.json", meta)
    logger = MetricLogger(run_dir, resume_step=start * cfg.batch_size if resume else None)

    def save(iteration: int, running_acc: float | None) -> None:
        save_checkpoint(
            checkpoint_file,
            {
                **meta,
                **model_payload(model, cfg.arch, image_size),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "iteration": iteration,
                "elapsed": elapsed + time.perf_counter() - t0,
                "running_accuracy": running_acc,
            },
            keep_previous=True,
        )

    def validate() -> float:
        result = evaluate_baseline(
            model, cfg.env, "val", cfg.eval_images, meta["env_kwargs"], device=device
        )
        return float(result["accuracy"])

    print(
        f"baseline {cfg.arch} ({meta['parameters']:,} parameters) on {cfg.env} "
        f"({image_size}x{image_size}): {total:,} iterations of {cfg.batch_size} canvases "
        f"({cfg.epochs:g} epochs), device {device}; run folder {run_dir}"
    )
    if notice := training_split_notice(cfg.split):
        print(notice)
    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, unit="it", dynamic_ncols=True)
    val_acc = None
    stop = total if cfg.stop_after is None else min(total, start + cfg.stop_after)
    cap_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    stopped_early, done = False, start
    model.train()
    for iteration in range(start + 1, stop + 1):
        # One fresh batch: episode (iteration - 1) of each of the batch's key streams.
        episodes = np.full(cfg.batch_size, iteration - 1, dtype=np.int64)
        batch = env.draw_episodes(keys, episodes, no_offsets, cfg.batch_size)
        images = canvases_to_tensor(batch.canvases, device)
        labels = torch.as_tensor(np.asarray(batch.labels), device=device)

        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

        acc = float((logits.argmax(dim=1) == labels).float().mean())
        running_acc = acc if running_acc is None else 0.98 * running_acc + 0.02 * acc
        done = iteration
        bar.update(1)
        # Wall-clock cap: this iteration is the last one (validated and checkpointed).
        capped = (
            cap_s is not None and iteration < total and elapsed + time.perf_counter() - t0 >= cap_s
        )
        metrics: dict[str, Any] = {
            "loss": loss.item(),
            "accuracy": acc,
            "lr": scheduler.get_last_lr()[0],
        }
        if iteration % eval_every == 0 or iteration == total or capped:
            val_acc = validate()
            metrics["val_accuracy"] = val_acc
        if iteration % cfg.log_every == 0 or "val_accuracy" in metrics:
            seconds = elapsed + time.perf_counter() - t0
            seen = iteration * cfg.batch_size
            logger.log(seen, {**metrics, "train_accuracy_ema": running_acc, "wall_s": seconds})
            val = "-" if val_acc is None else f"{val_acc:.4f}"
            bar.set_postfix({"acc": f"{running_acc:.3f}", "val": val})
            if not cfg.progress:
                print(
                    f"it {iteration}/{total} images {seen} loss {metrics['loss']:.4f} "
                    f"acc {running_acc:.4f} val {val}",
                    flush=True,
                )
        if iteration % cfg.checkpoint_every == 0 or iteration == total or capped:
            save(iteration, running_acc)
        if capped:
            stopped_early = True
            break
    bar.close()
    logger.close()
    env.close()
    if stopped_early:
        print(
            f"stopped at iteration {done:,} of {total:,} after {cfg.max_minutes:g} min "
            f"(--max-minutes); checkpoint written, evaluating"
        )
    elif stop < total:
        print(f"stopped at iteration {stop} (--stop-after); resume with --resume {run_dir}")
        return run_dir

    # Final evaluation: the fixed test canvases, one pass each.
    wall = elapsed + time.perf_counter() - t0
    result = evaluate_baseline(
        model, cfg.env, "test", cfg.test_images, meta["env_kwargs"], device=device
    )
    summary = {
        "agent": "baseline",
        "arch": cfg.arch,
        "env_id": cfg.env,
        "test_error_rate": result["error_rate"],
        "val_error_rate": None if val_acc is None else 1.0 - val_acc,
        "results": {"deterministic": result},
        "parameters": meta["parameters"],
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
        f"test error {100 * summary['test_error_rate']:.2f}% "
        f"({result['n_images'] - result['n_correct']}/{result['n_images']} wrong); "
        f"{wall / 60:.1f} min; wrote {run_dir / 'eval.json'}"
    )
    return run_dir


# ------------------------------------------------------------------------ command line
def register(subparsers: Any) -> None:
    """Add ``baseline`` to the ``glimpse train`` subcommands."""
    from train.common import add_config_flags
    from train.train_cmd import add_common_run_args

    parser = subparsers.add_parser(
        "baseline",
        help="the paper's supervised FC / Conv baselines on whole canvases",
        description=__doc__.split("\n\n")[0],
    )
    add_common_run_args(parser)
    skip = {"seed", "device", "data_dir", "run_dir", "progress", "extra_env_kwargs"}
    add_config_flags(parser, BaselineTrainConfig, skip, _CHOICES)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``glimpse train baseline`` (a new run, or ``--resume RUN_DIR``)."""
    from train.common import config_from_args

    cfg = config_from_args(args, BaselineTrainConfig)  # on --resume: the saved config
    train_baseline(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
