"""``glimpse train baseline``: the paper's supervised FC / Conv baselines on whole canvases.

Reads top to bottom: the config (every field a ``--flag``), then :class:`BaselineRun`, what
the run harness (:mod:`train.harness`) drives: build the canvas source (the env, unwrapped)
and the model; one iteration draws a fresh batch of training canvases and takes one
optimiser step on the cross-entropy; the checkpoint holds the model and optimiser state;
validation and the final test evaluation classify the fixed ``val`` / ``test`` canvases a
glimpse agent is tested on (:func:`agents.baselines.evaluate_baseline`). The run folder,
resume, ``--max-minutes``, logging and ``eval.json`` are the harness's.

Training canvases come from the env's own episode stream (``draw_episodes`` with the env's
seeded keys, as the vector env draws them for a glimpse agent): iteration ``t`` draws
episode ``t`` of sub-envs ``seed + i``, so every batch is new (digits drawn at random, and
on translated/cluttered variants a new position and clutter) and a function of ``t`` alone;
``--resume`` therefore continues exactly from the model and optimiser state.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from glimpse_env.registration import ENV_IDS
from train.common import (
    CHANGEABLE,
    TRAINING_SPLITS,
    RunOptions,
    epochs_summary,
    training_split_notice,
)
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

#: Values of ``--lr-schedule``.
LR_SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")


@dataclass
class BaselineTrainConfig(RunOptions):
    """Everything ``glimpse train baseline`` can be told (each field is a ``--flag``; the run
    control shared with the other commands is in :class:`train.common.RunOptions`).

    A baseline sees whole canvases, so the env's glimpse settings do not apply to it.
    """

    command: ClassVar[str] = "baseline"
    agents: ClassVar[tuple[str, ...]] = ("baseline",)

    arch: str = field(default="fc256", metadata={"choices": ("fc64", "fc256", "conv")})
    """``fc64``, ``fc256`` (2 hidden ReLU layers) or ``conv`` (8 @ 10x10 stride 5, FC 256)."""
    env: str = field(default="GlimpseMNIST-v0", metadata={"choices": ENV_IDS})
    """Environment id (its canvases are the input)."""
    split: str = field(default="train", metadata={"choices": TRAINING_SPLITS})
    """Training split: ``train`` (the first 50,000 digits; the last 10,000, ``val``, are
    held out for validation) or ``train_full`` (all 60,000: validation then measures digits
    the run trains on)."""
    batch_size: int = field(default=128, metadata={"ge": 1})
    """Canvases per optimiser step."""
    epochs: float = field(default=20.0, metadata={"gt": 0.0})
    """Length of the run in passes over the training split (sets the iteration count)."""
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    """``adam`` or ``sgd`` (momentum 0.9)."""
    lr: float = field(default=1e-3, metadata={"gt": 0.0})
    """Initial learning rate."""
    lr_schedule: str = field(default="cosine", metadata={"choices": LR_SCHEDULES})
    """``constant``, ``linear`` or ``cosine`` anneal to 0 over the run."""
    weight_decay: float = field(default=0.0, metadata={"ge": 0.0})
    """L2 weight decay."""
    eval_every: int | None = field(default=None, metadata={"ge": 1})
    """Validate every this many iterations (None: once per epoch)."""
    eval_images: int = field(
        default=10000, metadata={"ge": 1, "le": 10_000, "why": "the val split has 10,000 images"}
    )
    """Validation images per validation."""
    test_images: int | None = field(
        default=None,
        metadata={"ge": 1, "le": 10_000, "why": "the test split has 10,000 images", **CHANGEABLE},
    )
    """Test images of the final evaluation (None: the whole test split)."""
    log_every: int = field(default=100, metadata={"ge": 1})
    """Write a metrics row every this many iterations."""
    checkpoint_every: int = field(default=1000, metadata={"ge": 1})
    """Write the checkpoint every this many iterations."""


def lr_factor(schedule: str, iteration: int, total: int) -> float:
    """Learning-rate multiplier after ``iteration`` of ``total`` optimiser steps."""
    progress = min(1.0, iteration / total)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")


class BaselineRun(Trainer):
    """A supervised baseline run as the harness drives it."""

    shown = ("loss", "train_accuracy_ema", "val_accuracy")

    def __init__(self, cfg: BaselineTrainConfig, device: Any) -> None:
        import numpy as np
        import torch

        from agents.baselines import build_baseline, count_parameters, make_canvas_env

        self.cfg, self.device = cfg, device
        self.env_kwargs = {} if cfg.data_dir is None else {"data_dir": cfg.data_dir}
        # The canvas source: the env's episode stream, one fresh batch per iteration.
        self.env = make_canvas_env(cfg.env, cfg.split, self.env_kwargs)
        self.image_size = self.env.canvas_size
        self.n_train = len(self.env.data)
        self.keys = self.env.new_keys(cfg.seed, cfg.batch_size)
        self.total_iterations = max(1, round(cfg.epochs * self.n_train / cfg.batch_size))
        self.step_size = cfg.batch_size
        per_epoch = max(1, round(self.n_train / cfg.batch_size))
        self.cadence = Cadence(cfg.log_every, cfg.eval_every or per_epoch, cfg.checkpoint_every)
        self.notice = training_split_notice(cfg.split)
        self._iteration = 0
        self.val_accuracy: float | None = None

        # Model and optimiser.
        torch.manual_seed(cfg.seed)
        self.model = build_baseline(cfg.arch, self.image_size).to(device)
        self.parameters = count_parameters(self.model)
        if cfg.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                self.model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
            )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(cfg.lr_schedule, it, self.total_iterations)
        )
        self._no_offsets = np.zeros(cfg.batch_size, dtype=np.int64)

    @property
    def iteration(self) -> int:
        return self._iteration

    def describe(self) -> str:
        cfg, size = self.cfg, self.image_size
        return (
            f"baseline {cfg.arch} ({self.parameters:,} parameters) on {cfg.env} "
            f"({size}x{size}): {counted(self.total_iterations, 'iteration')} of {cfg.batch_size} "
            f"canvases ({cfg.epochs:g} epochs)"
        )

    def meta(self) -> RunMeta:
        return RunMeta(
            agent="baseline",
            env_id=self.cfg.env,
            env_kwargs={},
            checkpoint=self.checkpoint_name,
            parameters=self.parameters,
            data_dir=absolute_data_dir(self.cfg.data_dir),
            details={
                "arch": self.cfg.arch,
                "image_size": self.image_size,
                "iterations": self.total_iterations,
            },
        )

    def train_iteration(self) -> dict[str, Any]:
        import numpy as np
        import torch
        import torch.nn.functional as F

        from agents.baselines import canvases_to_tensor

        # One fresh batch: episode ``iteration`` of each of the batch's key streams.
        episodes = np.full(self.cfg.batch_size, self._iteration, dtype=np.int64)
        batch = self.env.draw_episodes(self.keys, episodes, self._no_offsets, self.cfg.batch_size)
        images = canvases_to_tensor(batch.canvases, self.device)
        labels = torch.as_tensor(np.asarray(batch.labels), device=self.device)

        self.model.train()
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self._iteration += 1
        return {
            "loss": loss.item(),
            "accuracy": float((logits.argmax(dim=1) == labels).float().mean()),
            "lr": self.scheduler.get_last_lr()[0],
        }

    def validate(self) -> float:
        from agents.baselines import evaluate_baseline

        cfg = self.cfg
        result = evaluate_baseline(
            self.model, cfg.env, "val", cfg.eval_images, self.env_kwargs, device=self.device
        )
        self.val_accuracy = float(result["accuracy"])
        return self.val_accuracy

    def save(self, path: Path, progress: Progress) -> None:
        from agents.baselines import model_payload
        from agents.checkpoints import save_checkpoint

        payload = {
            **self.meta().to_json(),
            **model_payload(self.model, self.cfg.arch, self.image_size),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self._iteration,
            **asdict(progress),
        }
        save_checkpoint(path, payload, keep_previous=True)

    def load(self, path: Path) -> Progress:
        from agents.checkpoints import load_checkpoint

        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._iteration = int(state["iteration"])
        return Progress.from_payload(state)

    def evaluate(self) -> FinalEval:
        """The fixed test canvases, one pass each."""
        from agents.baselines import evaluate_baseline

        cfg = self.cfg
        result = evaluate_baseline(
            self.model, cfg.env, "test", cfg.test_images, self.env_kwargs, device=self.device
        )
        summary = {
            "arch": cfg.arch,
            "test_error_rate": result["error_rate"],
            "val_error_rate": None if self.val_accuracy is None else 1.0 - self.val_accuracy,
            "results": {"deterministic": result},
            **epochs_summary(self.iteration, cfg.batch_size, self.n_train, cfg.split),
        }
        return FinalEval(summary, f"test {error_text(result)}")

    def close(self) -> None:
        self.env.close()


def train_baseline(
    cfg: BaselineTrainConfig, resume: str | None = None, overwrite: bool = False
) -> Path:
    """Train (or resume) a supervised baseline; returns the run folder (see
    :func:`train.harness.train`)."""
    from train.harness import train

    return train(cfg, BaselineRun, resume, overwrite)


# ------------------------------------------------------------------------ command line
def register(subparsers: Any) -> None:
    """Add ``baseline`` to the ``glimpse train`` subcommands."""
    from train.harness import add_training_arguments

    parser = subparsers.add_parser(
        "baseline",
        help="the paper's supervised FC / Conv baselines on whole canvases",
        description=__doc__.split("\n\n")[0],
    )
    add_training_arguments(parser, BaselineTrainConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``glimpse train baseline`` (a new run, or ``--resume RUN_DIR``)."""
    from train.harness import config_from_args

    cfg = config_from_args(args, BaselineTrainConfig)  # on --resume: the saved config
    train_baseline(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
