"""How ``glimpse compare`` (:mod:`train.compare`) trains and evaluates one (agent, reward,
seed) run on GlimpseMNIST-v0 for a budget of env steps, timing the evaluations apart.

Every run goes through the run harness (:func:`train.harness.train`), so its folder is an
ordinary run folder (``glimpse eval`` reads it):

* RAM: :class:`train.ram.RAMRun` with the settings of :data:`RAM_SETTINGS`, evaluated on the
  test subset (not the val split of ``glimpse train ram``) at step 0, every ``eval_every``
  env steps and at the end, as the SB3 agents are.
* PPO / RecurrentPPO: :func:`train.ppo.train_ppo` with the presets of
  :mod:`agents.sb3_presets`, its periodic evaluations on the same test subset.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_ID = "GlimpseMNIST-v0"
N_GLIMPSES = 7
RESULT_FILE = "compare_result.json"

#: RAM settings: those of :data:`RAM_COMMAND` (the paper's model sizes and RNN core).
RAM_SETTINGS: dict[str, Any] = {
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "std_start": 0.15,
    "std_end": 0.1,
    "hybrid": True,
    "start": "random",
    "model": "RAMConfig() defaults (paper sizes, RNN core)",
}
#: The ``glimpse train ram`` command that trains RAM as the comparison does (up to the
#: length of the run and the evaluations).
RAM_COMMAND = (
    "glimpse train ram --preset mnist-7 --batch-size 128 --lr 0.001 --std 0.15 --std-end 0.1"
)


@dataclasses.dataclass
class Settings:
    """What every run of one comparison shares."""

    env_steps: int
    eval_every: int
    eval_images: int
    final_eval_images: int | None
    device: str
    threads: int | None
    data_dir: str | None
    class_head: str = "categorical"
    used_actions_only: bool | None = None

    def key(self) -> dict[str, Any]:
        """The fields a reused run must match."""
        return {
            "class_head": self.class_head,
            "used_actions_only": self.used_actions_only,
            "env_steps_budget": self.env_steps,
            "eval_every": self.eval_every,
            "eval_images": self.eval_images,
            "final_eval_images": self.final_eval_images,
            "device": self.device,
        }


# ---------------------------------------------------------------------- timing
class _EvalClock:
    """Accumulates the seconds spent in :func:`agents.policy.evaluate_policy`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0


@contextlib.contextmanager
def _timed_evaluations() -> Iterator[_EvalClock]:
    """Time every ``agents.policy.evaluate_policy`` call made inside the block.

    ``train.ppo`` imports the function at call time, so patching the module attribute
    covers its periodic and final evaluations; the RAM run calls it the same way
    (:func:`_evaluate`).
    """
    import agents.policy as policy_module

    clock = _EvalClock()
    original = policy_module.evaluate_policy

    def timed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock.seconds += time.perf_counter() - start
            clock.calls += 1

    policy_module.evaluate_policy = timed  # type: ignore[assignment]
    try:
        yield clock
    finally:
        policy_module.evaluate_policy = original  # type: ignore[assignment]


def _evaluate(policy: Any, n_images: int | None) -> dict[str, Any]:
    """Deterministic test-split evaluation (through the module, so it is timed)."""
    import agents.policy as policy_module

    num_envs = 500 if n_images is None else min(500, n_images)
    return policy_module.evaluate_policy(
        policy, split="test", n_images=n_images, mode="deterministic", num_envs=num_envs
    )


# ---------------------------------------------------------------------- RAM
def _ram_run_class() -> type:
    """:class:`train.ram.RAMRun` as the comparison drives it (imported when needed)."""
    from train.harness import Cadence, FinalEval, error_text
    from train.ram import RAMRun

    class CompareRAMRun(RAMRun):
        """RAM with metric steps in env steps, the test subset as its validation (at step 0,
        every ``eval_every`` env steps and at the end) and a deterministic final evaluation
        on ``final_eval_images`` test images."""

        step_name = "env steps"
        validation_metric = "eval_accuracy"
        validate_first = True
        shown = ("train_accuracy_ema", "eval_accuracy")

        def __init__(self, cfg: Any, device: Any, settings: Settings) -> None:
            super().__init__(cfg, device)
            self.settings = settings
            self.step_size = cfg.batch_size * N_GLIMPSES  # env steps of one iteration
            every_50 = 50 * self.step_size  # a metrics row every 50 iterations
            end = self.total_iterations * self.step_size  # one checkpoint, at the end
            self.cadence = Cadence(every_50, settings.eval_every, end, unit=self.step_size)

        def validate(self) -> float:
            return float(_evaluate(self.policy(), self.settings.eval_images)["accuracy"])

        def evaluate(self) -> FinalEval:
            result = _evaluate(self.policy(), self.settings.final_eval_images)
            steps = self.iteration * self.step_size
            return FinalEval({**result, "num_timesteps": steps}, f"test {error_text(result)}")

    return CompareRAMRun


def ram_config(settings: Settings, seed: int, run_dir: Path) -> Any:
    """The :class:`train.ram.RAMTrainConfig` of a RAM run: :data:`RAM_SETTINGS` for
    ``settings.env_steps`` env steps, rounded up to whole batches."""
    from train.common import SPLIT_SIZES
    from train.ram import RAMTrainConfig

    batch = int(RAM_SETTINGS["batch_size"])
    iterations = max(1, math.ceil(settings.env_steps / (batch * N_GLIMPSES)))
    return RAMTrainConfig(
        env=ENV_ID,
        n_glimpses=N_GLIMPSES,
        start=RAM_SETTINGS["start"],
        batch_size=batch,
        epochs=iterations * batch / SPLIT_SIZES["train"],  # exactly ``iterations``
        optimizer=RAM_SETTINGS["optimizer"],
        lr=RAM_SETTINGS["lr"],
        lr_schedule=RAM_SETTINGS["lr_schedule"],
        std=RAM_SETTINGS["std_start"],
        std_end=RAM_SETTINGS["std_end"],
        hybrid=RAM_SETTINGS["hybrid"],
        seed=seed,
        device=settings.device,
        run_dir=str(run_dir),
        data_dir=settings.data_dir,
        threads=settings.threads,
        progress=False,
    )


def train_ram_run(settings: Settings, seed: int, run_dir: Path) -> None:
    """Train RAM (:func:`ram_config`) in ``run_dir`` (replaced if it holds a previous run)."""
    from train.harness import train

    run_class = _ram_run_class()
    train(
        ram_config(settings, seed, run_dir),
        lambda cfg, device: run_class(cfg, device, settings),
        overwrite=True,
    )


# ---------------------------------------------------------------------- SB3
def train_sb3_run(agent: str, reward: str, settings: Settings, seed: int, run_dir: Path) -> None:
    """Train PPO / RecurrentPPO (the preset of :mod:`agents.sb3_presets`) for
    ``settings.env_steps`` env steps, rounded up to whole rollouts, through
    :func:`train.ppo.train_ppo` in ``run_dir`` (replaced if it holds a previous run)."""
    from agents.sb3_presets import get_preset
    from train.ppo import PPOTrainConfig, train_ppo

    hyperparams = dataclasses.replace(
        get_preset(agent, ENV_ID),
        total_steps=settings.env_steps,
        class_head=settings.class_head,
        used_actions_only=settings.used_actions_only,
    )
    config = PPOTrainConfig(
        env=ENV_ID,
        recurrent=agent == "recurrent_ppo",
        n_glimpses=N_GLIMPSES,
        reward=reward,
        hyperparams=hyperparams,
        device=settings.device,
        seed=seed,
        run_dir=str(run_dir),
        progress=False,
        data_dir=settings.data_dir,
        checkpoint_every=max(settings.env_steps, 1),
        eval_every=settings.eval_every,
        eval_images=settings.eval_images,
        eval_split="test",
        final_eval_images=settings.final_eval_images,
        threads=settings.threads,
    )
    train_ppo(config, overwrite=True)


def read_run(run_dir: Path) -> dict[str, Any]:
    """The result of a finished run folder (see :func:`run_one`), without the timing fields:
    the curve from ``metrics.csv``, the final evaluation from ``eval.json``."""
    with (run_dir / "metrics.csv").open() as f:
        curve = [
            (int(float(row["step"])), float(row["eval_accuracy"]))
            for row in csv.DictReader(f)
            if row.get("eval_accuracy")
        ]
    final = json.loads((run_dir / "eval.json").read_text())
    return {
        "env_steps": int(final["num_timesteps"]),
        "final_test_error": float(final["error_rate"]),
        "final_test_images": int(final["n_images"]),
        "parameters": int(final["parameters"]),
        "curve": curve,
    }


# ---------------------------------------------------------------------- one run
def run_one(
    agent: str, reward: str, seed: int, settings: Settings, runs_dir: Path, reuse: bool
) -> dict[str, Any]:
    """Train and evaluate one (agent, reward, seed); returns its result.

    The result holds ``env_steps``, ``final_test_error``, ``final_test_images``,
    ``wall_clock_s`` (training, evaluations excluded), ``eval_wall_clock_s``,
    ``total_wall_clock_s``, ``parameters``, ``curve`` ([env_steps, test-subset accuracy]
    pairs) and ``run_dir``.
    """
    run_dir = runs_dir / f"{agent}-{reward}-seed{seed}"
    result_file = run_dir / RESULT_FILE
    if reuse and result_file.is_file():
        saved = json.loads(result_file.read_text())
        if saved.get("settings") == settings.key():
            print(f"reusing {result_file}", flush=True)
            return saved["result"]
    result_file.unlink(missing_ok=True)  # a file no run writes: the harness would not replace
    # the previous run's folder
    print(f"== {agent} / {reward} / seed {seed}: run folder {run_dir}", flush=True)
    with _timed_evaluations() as clock:
        start = time.perf_counter()
        if agent == "ram":
            train_ram_run(settings, seed, run_dir)
        else:
            train_sb3_run(agent, reward, settings, seed, run_dir)
        total = time.perf_counter() - start
    result = read_run(run_dir)
    result.update(
        wall_clock_s=round(total - clock.seconds, 2),
        eval_wall_clock_s=round(clock.seconds, 2),
        total_wall_clock_s=round(total, 2),
        curve=[[int(s), float(a)] for s, a in result["curve"]],
        run_dir=str(run_dir),
    )
    result_file.write_text(json.dumps({"settings": settings.key(), "result": result}, indent=2))
    print(
        f"   {agent} / {reward} / seed {seed}: {result['env_steps']} env steps, test error "
        f"{100 * result['final_test_error']:.2f}%, {result['wall_clock_s']:.0f} s training",
        flush=True,
    )
    return result
