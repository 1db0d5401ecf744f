"""The one run harness of ``glimpse train``: everything a run does besides training.

A trainer (``train/ram.py``, ``train/baseline.py``, ``train/ppo.py``) supplies only what is
its own, as a :class:`Trainer`: building itself (envs, model), one iteration, the state of
its checkpoint, validation and the final evaluation. :func:`train` does the rest, the same
way for all of them:

* **Run folder** (:mod:`train.run_folder`): claimed and locked while it trains. It holds
  ``config.json`` (the resolved config; what ``--resume`` reads back), ``meta.json`` (a
  :class:`RunMeta`: what ``glimpse eval`` / ``render`` read), the checkpoint (written
  atomically, the one before kept as ``*.prev.*``), ``metrics.csv`` and ``tb/``
  (TensorBoard) and ``eval.json``.
* **Resume** (``--resume RUN_DIR``): the saved config, where only run-control flags may
  change (:func:`config_from_args`); the newest usable checkpoint; metric rows logged after
  it are dropped, so an interrupted run ends as an uninterrupted one.
* **Time cap** (``--max-minutes``): the iteration that reaches it is the last one; it is
  validated and checkpointed, the final evaluation runs, and ``eval.json`` says
  ``"stopped_early": true``.
* **Cadence** (:class:`Cadence`): a metrics row every ``log_every`` (and at every
  validation), validation every ``eval_every``, a checkpoint every ``checkpoint_every``
  and at the end; a progress bar, or a log line per row with ``--no-progress``.
* **Final evaluation**: ``eval.json``, the trainer's results with the run's facts (among
  them ``started_at_iteration``, where this invocation began: > 0 after a resume, and
  ``last_validation``).
* **Progress reports** (:func:`reporting`): every validation is also passed to the callbacks
  installed in this process, e.g. ``glimpse sweep``'s report to Ray Tune (ASHA early
  stopping). Nothing here imports Ray.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.common import (
    MetricLogger,
    RunOptions,
    add_config_flags,
    flag_name,
    flag_text,
    flag_values,
    resolve_device,
    show_value,
)
from train.errors import UsageError
from train.run_folder import claim_run_dir, load_resume_checkpoint, read_saved_config

#: Version of the layout of ``meta.json`` (files without ``schema_version`` are version 0:
#: the data folder then sat inside ``env_kwargs``).
META_SCHEMA_VERSION = 1


# ------------------------------------------------------------------------------ meta.json
@dataclass
class RunMeta:
    """``meta.json``: what a run folder holds, for ``glimpse eval`` / ``render`` and
    :func:`agents.policy.load_policy`. Written (atomically) when the run starts and after
    every checkpoint."""

    agent: str
    """Kind of agent: ``ram``, ``baseline``, ``ppo`` or ``recurrent_ppo`` (picks the loader)."""
    env_id: str
    """Id of the env it was trained on."""
    env_kwargs: dict[str, Any]
    """The env's settings it was trained with (:meth:`train.common.EnvOptions.env_kwargs`)."""
    checkpoint: str
    """File name of the run's checkpoint, inside the run folder."""
    parameters: int
    """Trainable parameters of the model."""
    data_dir: str | None = None
    """MNIST folder of the training (absolute; None: the default one)."""
    details: dict[str, Any] = field(default_factory=dict)
    """The agent's own entries (e.g. a baseline's ``arch``), written beside the others."""
    schema_version: int = META_SCHEMA_VERSION
    """Version of this layout."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``meta.json`` (``details`` at the top level).

        Raises:
            ValueError: if a detail has the name of a field.
        """
        entries = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        details = entries.pop("details")
        if clash := set(details) & set(entries):
            raise ValueError(f"meta.json details may not replace {sorted(clash)}")
        return {**entries, **details}


def error_text(result: Mapping[str, Any]) -> str:
    """``error 1.23% (123/10000 wrong)`` for an evaluation result (and ``, 3.42 glimpses
    per image`` for an adaptive env's)."""
    wrong = result["n_images"] - result["n_correct"]
    text = f"error {100 * result['error_rate']:.2f}% ({wrong}/{result['n_images']} wrong)"
    if result.get("mean_glimpses") is not None:
        text += f", {result['mean_glimpses']:.2f} glimpses per image"
    return text


def absolute_data_dir(data_dir: str | None) -> str | None:
    """``data_dir`` as an absolute path (what :attr:`RunMeta.data_dir` records)."""
    return None if data_dir is None else str(Path(data_dir).resolve())


# --------------------------------------------------------------------------- the trainer
@dataclass
class Progress:
    """What the harness keeps in every checkpoint besides the trainer's own state."""

    elapsed: float = 0.0
    """Training wall-clock so far, all invocations together (what the time cap counts)."""
    running_accuracy: float | None = None
    """Moving average (0.98) of the training accuracy (``train_accuracy_ema``)."""
    last_validation: dict[str, Any] | None = None
    """The latest validation: ``{"metric", "value", "iteration"}`` (None: none yet)."""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Progress:
        """The progress saved in a checkpoint payload (``elapsed``, ``running_accuracy``,
        ``last_validation``; a missing entry gets its default)."""
        last = payload.get("last_validation")
        return cls(
            float(payload.get("elapsed", 0.0)),
            payload.get("running_accuracy"),
            dict(last) if isinstance(last, Mapping) else None,
        )


# ------------------------------------------------------------------- progress reports
@dataclass(frozen=True)
class ProgressReport:
    """One validation of a run, as :func:`reporting` callbacks receive it.

    Attributes:
        run_dir: the run folder.
        iteration: iterations done (0: the untrained model of ``validate_first`` trainers).
        total_iterations: iterations of the whole run.
        step: metric steps done (images, env steps): ``iteration * step_size``.
        metric: the validation column (``val_accuracy``; PPO ``eval_accuracy``).
        value: its value.
    """

    run_dir: Path
    iteration: int
    total_iterations: int
    step: int
    metric: str
    value: float


#: A callback of :func:`reporting`.
ProgressCallback = Callable[[ProgressReport], None]

_CALLBACKS: list[ProgressCallback] = []


@contextlib.contextmanager
def reporting(callback: ProgressCallback) -> Iterator[None]:
    """Within the block, every validation of a run trained in this process (any ``glimpse
    train`` command, also through :func:`train.cli.main`) is passed to ``callback`` right
    after it is logged. An exception the callback raises ends the run there (the
    checkpoint written before it is kept), as an interrupted run.

    Args:
        callback: called with a :class:`ProgressReport`.
    """
    _CALLBACKS.append(callback)
    try:
        yield
    finally:
        _CALLBACKS.remove(callback)


def _report(report: ProgressReport) -> None:
    for callback in list(_CALLBACKS):
        callback(report)


@dataclass(frozen=True)
class Cadence:
    """When the harness logs, validates and checkpoints: every ``*_every`` units, where an
    iteration is ``unit`` units (1: the settings count iterations; PPO: env steps)."""

    log_every: int
    eval_every: int
    """0: never validate."""
    checkpoint_every: int
    unit: int = 1

    def due(self, every: int, iteration: int) -> bool:
        """Whether ``iteration`` reaches a (new) multiple of ``every`` units."""
        return every > 0 and iteration * self.unit // every > (iteration - 1) * self.unit // every


@dataclass
class FinalEval:
    """A trainer's final evaluation: its entries of ``eval.json`` and the line to print."""

    summary: dict[str, Any]
    line: str


class Trainer(abc.ABC):
    """What a trainer supplies to :func:`train`; its constructor builds envs and model.

    Attributes:
        total_iterations: iterations of the whole run.
        step_size: metric steps per iteration (images, env steps): ``metrics.csv``'s x axis.
        cadence: when to log, validate and checkpoint.
        checkpoint_name: file name of the checkpoint in the run folder.
        step_name: what a metric step is, for the log line.
        validation_metric: the column :meth:`validate` fills.
        validate_first: validate the untrained model too (a row at step 0).
        shown: the metrics the progress bar / log line show.
        notice: a line to print before training (e.g. about the split), or None.
    """

    total_iterations: int
    step_size: int
    cadence: Cadence
    checkpoint_name: str = "checkpoint.pt"
    step_name: str = "images"
    validation_metric: str = "val_accuracy"
    validate_first: bool = False
    shown: tuple[str, ...] = ("train_accuracy_ema", "val_accuracy")
    notice: str | None = None

    @property
    @abc.abstractmethod
    def iteration(self) -> int:
        """Iterations done so far."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What is trained, for the first line of the run."""

    @abc.abstractmethod
    def meta(self) -> RunMeta:
        """The run's ``meta.json`` now."""

    @abc.abstractmethod
    def train_iteration(self) -> dict[str, Any]:
        """One iteration; returns its metrics (an ``accuracy`` feeds ``train_accuracy_ema``)."""

    @abc.abstractmethod
    def validate(self) -> float:
        """Accuracy of the current model on the validation images."""

    @abc.abstractmethod
    def save(self, path: Path, progress: Progress) -> None:
        """Write the checkpoint (atomically, keeping the one before) with ``progress``."""

    @abc.abstractmethod
    def load(self, path: Path) -> Progress:
        """Continue from the checkpoint ``path``; returns the progress saved with it.

        Raises:
            agents.checkpoints.CheckpointError: for an unusable file, before any change.
        """

    @abc.abstractmethod
    def evaluate(self) -> FinalEval | None:
        """The final evaluation (None: none, nothing is written)."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the envs."""


# ------------------------------------------------------------------------------ the loop
def train(
    cfg: RunOptions,
    build: Callable[[Any, Any], Trainer],
    resume: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Train (or resume) the run ``cfg`` with the trainer ``build(cfg, device)`` makes.

    Args:
        cfg: the run's configuration (with ``--resume``: the saved one).
        build: the trainer's constructor.
        resume: a run folder to continue from its newest usable checkpoint.
        overwrite: replace a previous run in ``cfg.run_dir`` (else a non-empty folder is
            refused; see :func:`train.run_folder.claim_run_dir`).

    Returns:
        The run folder.
    """
    import torch

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    # Built before the run folder is claimed: settings the env or the model refuse (e.g. a
    # glimpse larger than the canvas) fail without leaving a folder behind.
    trainer = build(cfg, device)
    try:
        with claim_run_dir(
            resume or cfg.run_dir,
            cfg.agent,
            cfg.env,
            resume=resume is not None,
            overwrite=overwrite,
        ) as run_dir:
            return _run(cfg, trainer, run_dir, str(device), resume is not None)
    finally:
        trainer.close()


def _run(cfg: RunOptions, trainer: Trainer, run_dir: Path, device: str, resuming: bool) -> Path:
    """:func:`train` in the claimed run folder, with the trainer built."""
    import torch
    from tqdm.auto import tqdm

    from agents.checkpoints import write_json

    checkpoint = run_dir / trainer.checkpoint_name
    restored = load_resume_checkpoint(checkpoint, trainer.load) if resuming else None
    progress = restored or Progress()
    write_json(run_dir / "config.json", cfg.to_dict())
    write_json(run_dir / "meta.json", trainer.meta().to_json())
    start, total, cadence = trainer.iteration, trainer.total_iterations, trainer.cadence
    # Resumed: the rows logged after the checkpoint go (all of them without a checkpoint).
    resume_step = (start * trainer.step_size if restored else -1) if resuming else None
    logger = MetricLogger(run_dir, resume_step=resume_step)
    print(f"{trainer.describe()}, device {device}; run folder {run_dir}")
    if trainer.notice:
        print(trainer.notice)

    t0, ema = time.perf_counter(), progress.running_accuracy

    def clock() -> float:
        """Training wall-clock of the run so far (all invocations)."""
        return progress.elapsed + time.perf_counter() - t0

    stop = total if cfg.stop_after is None else min(total, start + cfg.stop_after)
    cap_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, unit="it", dynamic_ncols=True)
    show = _Display(trainer, bar, cfg.progress)
    stopped_early = False
    name, last = trainer.validation_metric, progress.last_validation

    def validate(iteration: int) -> float:
        """Validate; remembered for the checkpoint and ``eval.json``."""
        nonlocal last
        value = float(trainer.validate())
        last = {"metric": name, "value": value, "iteration": iteration}
        return value

    def report(iteration: int, value: float) -> None:
        """Pass a validation to the :func:`reporting` callbacks."""
        step = iteration * trainer.step_size
        _report(ProgressReport(run_dir, iteration, total, step, name, value))

    try:  # the bar's line ends and the logs are closed, also on an error
        if start == 0 and trainer.validate_first and cadence.eval_every:
            row = {name: validate(0), "wall_s": clock()}
            logger.log(0, row)
            show(0, row)
            report(0, row[name])
        for iteration in range(start + 1, stop + 1):
            metrics = trainer.train_iteration()
            if "accuracy" in metrics:
                acc = float(metrics["accuracy"])
                ema = acc if ema is None else 0.98 * ema + 0.02 * acc
            bar.update(1)
            # Wall-clock cap: this iteration is the last one (validated and checkpointed).
            capped = cap_s is not None and iteration < total and clock() >= cap_s
            final = iteration == total or capped
            if cadence.eval_every and (cadence.due(cadence.eval_every, iteration) or final):
                metrics[name] = validate(iteration)
            if cadence.due(cadence.log_every, iteration) or name in metrics:
                ema_column = {} if ema is None else {"train_accuracy_ema": ema}
                row = {**metrics, **ema_column, "wall_s": clock()}
                logger.log(iteration * trainer.step_size, row)
                show(iteration, row)
            # Saved before the report: a callback that ends the run keeps this checkpoint.
            if cadence.due(cadence.checkpoint_every, iteration) or final:
                trainer.save(checkpoint, Progress(clock(), ema, last))
                write_json(run_dir / "meta.json", trainer.meta().to_json())
            if name in metrics:
                report(iteration, metrics[name])
            if capped:
                stopped_early = True
                break
    finally:
        bar.close()
        logger.close()
    done = trainer.iteration
    if stopped_early:
        print(
            f"stopped at iteration {done:,} of {total:,} after {cfg.max_minutes:g} min "
            "(--max-minutes); checkpoint written, evaluating"
        )
    elif stop < total:
        print(f"stopped at iteration {stop} (--stop-after); resume with --resume {run_dir}")
        return run_dir

    wall = clock()
    outcome = trainer.evaluate()
    if outcome is None:
        return run_dir
    meta = trainer.meta()
    summary = {
        "agent": meta.agent,
        "env_id": meta.env_id,
        "parameters": meta.parameters,
        **outcome.summary,
        "iterations": done,
        "iterations_planned": total,
        "started_at_iteration": start,
        "last_validation": last,
        "stopped_early": stopped_early,
        "max_minutes": cfg.max_minutes,
        "train_wall_s": wall,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "config": cfg.to_dict(),
    }
    write_json(run_dir / "eval.json", summary)
    print(f"{outcome.line}; {wall / 60:.1f} min; wrote {run_dir / 'eval.json'}")
    return run_dir


#: Short names of metrics on the progress bar and the log line.
_LABELS = {
    "train_accuracy_ema": "acc",
    "val_accuracy": "val",
    "eval_accuracy": "eval",
    "success_rate": "success",
}


class _Display:
    """The progress bar's postfix, or (without a bar) a log line per metrics row."""

    def __init__(self, trainer: Trainer, bar: Any, progress: bool) -> None:
        self.trainer, self.bar, self.progress = trainer, bar, progress
        self.last: dict[str, Any] = {}  # the latest value of each shown metric

    def __call__(self, iteration: int, row: dict[str, Any]) -> None:
        self.last.update({k: row[k] for k in self.trainer.shown if row.get(k) is not None})
        parts = {_LABELS.get(k, k): self.last.get(k) for k in self.trainer.shown}
        text = {
            k: "-" if v is None else f"{v:.{4 if abs(v) < 100 else 0}f}" for k, v in parts.items()
        }
        if self.progress:
            self.bar.set_postfix(text)
            return
        step = iteration * self.trainer.step_size
        values = " ".join(f"{k} {v}" for k, v in text.items())
        total = self.trainer.total_iterations
        print(f"it {iteration}/{total} {self.trainer.step_name} {step} {values}", flush=True)


# ------------------------------------------------------------------ config from the flags
def add_training_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    choices: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """The arguments of a ``glimpse train`` command: ``--resume``, ``--overwrite`` and one
    flag per field of its config dataclass ``cls`` (see :func:`train.common.add_config_flags`)."""
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help=(
            "continue a run from its last checkpoint, with its saved settings (flags that "
            "contradict them are refused; run-control flags such as --max-minutes apply)"
        ),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=(
            "replace the previous run in --run-dir: delete the files a run writes there "
            "(config, checkpoints, metrics, tb/, eval.json); a folder holding other files "
            "is refused"
        ),
    )
    add_config_flags(parser, cls, choices=choices)


def config_from_args(
    args: argparse.Namespace,
    cls: type,
    base: dict[str, Any] | None = None,
    nested: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """The config of a ``glimpse train`` command: ``cls`` defaults, then ``base`` (e.g. a
    preset), then the flags given.

    With ``--resume RUN_DIR`` the run's saved ``config.json`` is the starting point instead:
    every value of ``base`` and every flag given is compared with it. Fields marked
    :data:`train.common.CHANGEABLE` (run control) take the new value, which is reported;
    :data:`train.common.PER_INVOCATION` ones (``--stop-after``, ``--no-progress``) always
    come from this command line; any other that differs from the saved value is refused.

    Args:
        args: the parsed arguments.
        cls: the config dataclass (a :class:`~train.common.RunOptions`).
        base: values that come before the flags, e.g. from ``--preset``.
        nested: flags given for a nested config field, by field name (e.g. PPO's
            ``hyperparams``), compared with the saved one on resume (the field's
            ``metadata["changeable"]`` names those that may change).

    Raises:
        UsageError: for values the config refuses, or flags that contradict the saved run.
        GlimpseError: if ``--resume`` names no run folder of this command.
    """
    given = flag_values(args, cls)
    if args.resume is not None:
        return _resumed_config(args, cls, given, base or {}, nested or {})
    try:
        return cls(**{**(base or {}), **given})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _resumed_config(
    args: argparse.Namespace,
    cls: type,
    given: dict[str, Any],
    base: dict[str, Any],
    nested: dict[str, dict[str, Any]],
) -> Any:
    """:func:`config_from_args` for ``--resume``."""
    run_dir = Path(args.resume)
    saved = read_saved_config(run_dir, cls)  # checks what the folder holds
    if args.run_dir is not None and Path(args.run_dir).absolute() != run_dir.absolute():
        raise UsageError(
            f"--run-dir {args.run_dir} and --resume {args.resume} name different folders; "
            "give only --resume RUN_DIR to continue a run"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    origin = f" (from --preset {args.preset})" if getattr(args, "preset", None) else ""
    offered = {k: (v, origin) for k, v in base.items()} | {k: (v, "") for k, v in given.items()}
    resume_rule = {name: f.metadata.get("resume") for name, f in fields.items()}
    offered = {
        k: v for k, v in offered.items() if k != "run_dir" and resume_rule[k] != "per_invocation"
    }
    changeable = {k for k, rule in resume_rule.items() if rule == "changeable"}
    changes, applied, conflicts = _compare(saved, offered, changeable)
    for name, values in nested.items():
        inner = getattr(saved, name)
        may = set(fields[name].metadata.get("changeable", ()))
        inner_changes, inner_applied, inner_conflicts = _compare(
            inner, {k: (v, "") for k, v in values.items()}, may
        )
        changeable |= may
        applied += inner_applied
        conflicts += inner_conflicts
        if inner_changes:
            changes[name] = dataclasses.replace(inner, **inner_changes)
    if conflicts:
        allowed = ", ".join(flag_name(n) for n in sorted(changeable))
        raise UsageError(
            f"--resume {args.resume} continues the run with its saved settings, which these "
            f"flags contradict: {', '.join(conflicts)}; drop them to continue the run, or "
            f"start a new run (--run-dir NEW) to use them (on resume only {allowed} may change)"
        )
    if applied:
        print(f"resuming {run_dir} with {', '.join(applied)}")
    this_invocation = {
        name: given.get(name, fields[name].default)
        for name, rule in resume_rule.items()
        if rule == "per_invocation"
    }
    return dataclasses.replace(saved, **changes, **this_invocation)


def _compare(
    saved: Any, offered: dict[str, tuple[Any, str]], changeable: set[str]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """``(changes, applied, conflicts)``: the offered values that differ from ``saved``'s,
    applied where ``changeable``, else refused (each described for the user)."""
    changes: dict[str, Any] = {}
    applied: list[str] = []
    conflicts: list[str] = []
    for name, (value, source) in offered.items():
        old = getattr(saved, name)
        if value == old:
            continue
        if name in changeable:
            changes[name] = value
            applied.append(f"{flag_text(name, value)} (was {show_value(old)})")
        else:
            conflicts.append(f"{flag_text(name, value)}{source} (saved: {show_value(old)})")
    return changes, applied, conflicts
