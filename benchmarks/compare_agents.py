"""RAM-REINFORCE vs PPO vs RecurrentPPO on GlimpseMNIST-v0 for the same number of env steps.

Usage (1 torch thread by default, as for every CPU benchmark of this project)::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/compare_agents.py \
        [--env-steps 1000000] [--seeds 0 1 2] [--rewards sparse dense] \
        [--agents ram ppo recurrent_ppo] [--eval-points 10] [--threads 1] \
        [--class-head categorical|gaussian] \
        [--out-dir benchmarks/results/compare_agents] [--runs-dir runs/compare]

One env step is one glimpse: a 7-glimpse episode is 7 env steps, so RAM's batch of 128
episodes is 896 env steps. Every agent trains for ``--env-steps`` (rounded up to a whole
RAM batch / PPO rollout):

* ``ram``: the Recurrent Attention Model with the hybrid loss, the settings of
  ``glimpse train ram --preset mnist-7 --std-end 0.1`` (paper sizes, batch 128, Adam lr 1e-3
  with a cosine anneal, location std 0.15 annealed to 0.1), trained here through
  :class:`agents.reinforce.ReinforceTrainer` so that it can be evaluated on the test subset
  during training (``train/ram.py`` validates on the val split). Sparse reward only (the
  hybrid loss trains the classifier by cross-entropy anyway).
* ``ppo``: SB3 PPO with the glimpse history as memory, ``recurrent_ppo``: sb3-contrib
  RecurrentPPO (LSTM); both through :func:`train.ppo.train_ppo` with the GlimpseMNIST-v0
  presets of :mod:`agents.sb3_presets`, with the sparse and/or dense reward, and the class
  policy ``--class-head`` (default: categorical, as RAM; ``gaussian``: SB3's Gaussian).

Learning curves: during training every agent is evaluated at env step 0, then about every
``env_steps / eval_points`` env steps (after the first batch / rollout that reaches the
next multiple) and at the end, on the SAME fixed subset: the first ``--eval-images``
(default 1000) images of the test split, deterministic, one rollout per image
(:func:`agents.policy.evaluate_policy`). At the end each agent gets a deterministic
evaluation on the whole test split (``--final-eval-images`` for quick tests).

Writes into ``--out-dir``: ``compare_agents.json`` (every run, plus means over seeds),
``compare_agents.png`` (test-subset accuracy vs env steps, one line per agent and reward,
mean over seeds with a min/max band) and ``compare_agents.md`` (the summary table, also
printed). The run folders (metrics, checkpoints) go to ``--runs-dir`` (git-ignored); with
``--reuse`` a run whose folder already holds a finished result with the same settings is
not trained again.

Wall-clock: ``wall_clock_s`` is the training time of a run with every evaluation (the
periodic ones and the final one) subtracted; ``eval_wall_clock_s`` and
``total_wall_clock_s`` are reported beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from machine_info import cpu_info  # noqa: E402

ENV_ID = "GlimpseMNIST-v0"
N_GLIMPSES = 7
AGENTS: tuple[str, ...] = ("ram", "ppo", "recurrent_ppo")
REWARDS: tuple[str, ...] = ("sparse", "dense")
LABELS = {
    "ram": "RAM-REINFORCE (hybrid)",
    "ppo": "PPO (glimpse history)",
    "recurrent_ppo": "RecurrentPPO (LSTM)",
}
DEFAULT_OUT_DIR = REPO / "benchmarks" / "results" / "compare_agents"
DEFAULT_RUNS_DIR = REPO / "runs" / "compare"
RESULT_FILE = "compare_result.json"

#: RAM settings: those of ``glimpse train ram --preset mnist-7 --std-end 0.1``.
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
    covers its periodic and final evaluations; the RAM loop below calls it the same way.
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
def run_ram(settings: Settings, seed: int, run_dir: Path) -> dict[str, Any]:
    """Train RAM (mnist-7 settings) for ``settings.env_steps`` env steps.

    Returns:
        The run's result (see :func:`_result`), without the timing fields.
    """
    import gymnasium as gym

    import glimpse_env  # noqa: F401
    from agents.checkpoints import save_checkpoint, write_json
    from agents.ram import RAMConfig, count_parameters
    from agents.ram_policy import RAMPolicy, model_payload
    from agents.reinforce import ReinforceConfig, ReinforceTrainer
    from train.common import MetricLogger, resolve_device

    device = resolve_device(settings.device)
    batch = int(RAM_SETTINGS["batch_size"])
    steps_per_iteration = batch * N_GLIMPSES
    total = max(1, math.ceil(settings.env_steps / steps_per_iteration))
    env_kwargs: dict[str, Any] = {"start": RAM_SETTINGS["start"], "n_glimpses": N_GLIMPSES}
    if settings.data_dir is not None:
        env_kwargs["data_dir"] = settings.data_dir
    backend = {"backend": "torch", "device": device} if device.type == "cuda" else {}
    envs = gym.make_vec(
        ENV_ID,
        num_envs=batch,
        split="train",
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        **env_kwargs,
        **backend,
    )
    model_cfg = RAMConfig(location_std=RAM_SETTINGS["std_start"])
    trainer = ReinforceTrainer(
        envs,
        ReinforceConfig(
            model=model_cfg,
            total_iterations=total,
            optimizer=RAM_SETTINGS["optimizer"],
            lr=RAM_SETTINGS["lr"],
            lr_schedule=RAM_SETTINGS["lr_schedule"],
            std_start=RAM_SETTINGS["std_start"],
            std_end=RAM_SETTINGS["std_end"],
            hybrid=RAM_SETTINGS["hybrid"],
            seed=seed,
        ),
        device=device,
    )
    parameters = count_parameters(trainer.model)
    meta = {
        "agent": "ram",
        "env_id": ENV_ID,
        "env_kwargs": env_kwargs,
        "checkpoint": "checkpoint.pt",
        "parameters": parameters,
        "iterations": total,
    }
    write_json(run_dir / "meta.json", meta)

    def policy() -> RAMPolicy:
        return RAMPolicy(
            trainer.model, ENV_ID, env_kwargs, std=trainer.current_std(), device=device
        )

    logger = MetricLogger(run_dir, tensorboard=False)
    curve: list[tuple[int, float]] = []
    next_eval = 0

    def evaluate_subset(step: int, metrics: dict[str, Any]) -> None:
        nonlocal next_eval
        accuracy = float(_evaluate(policy(), settings.eval_images)["accuracy"])
        curve.append((step, accuracy))
        metrics["eval_accuracy"] = accuracy
        while next_eval <= step:
            next_eval += settings.eval_every
        print(f"[ram] step {step}: eval_acc={accuracy:.4f}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    row: dict[str, Any] = {}
    evaluate_subset(0, row)
    logger.log(0, row)
    for iteration in range(1, total + 1):
        metrics: dict[str, Any] = trainer.train_iteration()
        step = iteration * steps_per_iteration
        if step >= next_eval or iteration == total:
            evaluate_subset(step, metrics)
        if iteration % 50 == 0 or "eval_accuracy" in metrics:
            logger.log(step, {**metrics, "elapsed_s": round(time.perf_counter() - t0, 3)})
    logger.close()
    save_checkpoint(run_dir / "checkpoint.pt", {**meta, **model_payload(trainer.model, model_cfg)})
    envs.close()

    final = _evaluate(policy(), settings.final_eval_images)
    write_json(run_dir / "eval.json", {**final, "agent": "ram", "iterations": total})
    return {
        "env_steps": total * steps_per_iteration,
        "final_test_error": float(final["error_rate"]),
        "final_test_images": int(final["n_images"]),
        "parameters": parameters,
        "curve": curve,
    }


# ---------------------------------------------------------------------- SB3
def run_sb3(
    agent: str, reward: str, settings: Settings, seed: int, run_dir: Path
) -> dict[str, Any]:
    """Train PPO / RecurrentPPO through :func:`train.ppo.train_ppo`.

    Returns:
        The run's result (see :func:`_result`), without the timing fields.
    """
    from agents.policy import load_policy
    from agents.ram import count_parameters
    from agents.sb3_presets import get_preset
    from train.ppo import PPOTrainConfig, train_ppo

    hyperparams = dataclasses.replace(
        get_preset(agent, ENV_ID),
        total_steps=settings.env_steps,
        class_head=settings.class_head,
        used_actions_only=settings.used_actions_only,
    )
    config = PPOTrainConfig(
        agent=agent,
        env_id=ENV_ID,
        reward=reward,
        env_kwargs={"n_glimpses": N_GLIMPSES},
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
        torch_threads=settings.threads,
    )
    train_ppo(config)
    curve: list[tuple[int, float]] = []
    with (run_dir / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row.get("eval_accuracy"):
                curve.append((int(float(row["step"])), float(row["eval_accuracy"])))
    final = json.loads((run_dir / "eval.json").read_text())
    model = load_policy(run_dir, device="cpu").policy.model  # type: ignore[attr-defined]
    return {
        "env_steps": int(final["num_timesteps"]),
        "final_test_error": float(final["error_rate"]),
        "final_test_images": int(final["n_images"]),
        "parameters": count_parameters(model.policy),
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
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"== {agent} / {reward} / seed {seed}: run folder {run_dir}", flush=True)
    with _timed_evaluations() as clock:
        start = time.perf_counter()
        if agent == "ram":
            result = run_ram(settings, seed, run_dir)
        else:
            result = run_sb3(agent, reward, settings, seed, run_dir)
        total = time.perf_counter() - start
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


# ---------------------------------------------------------------------- reports
def summarize(results: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Per (agent, reward): means and ranges over seeds."""
    rows = []
    for agent, by_reward in results.items():
        for reward, by_seed in by_reward.items():
            runs = list(by_seed.values())
            errors = [r["final_test_error"] for r in runs]
            walls = [r["wall_clock_s"] for r in runs]
            rows.append(
                {
                    "agent": agent,
                    "reward": reward,
                    "seeds": [int(s) for s in by_seed],
                    "env_steps": round(sum(r["env_steps"] for r in runs) / len(runs)),
                    "final_test_error_mean": sum(errors) / len(errors),
                    "final_test_error_min": min(errors),
                    "final_test_error_max": max(errors),
                    "wall_clock_s_mean": sum(walls) / len(walls),
                    "parameters": runs[0]["parameters"],
                }
            )
    return rows


def markdown_table(summary: list[dict[str, Any]], note: str) -> str:
    """The summary as a Markdown table followed by ``note``."""
    lines = [
        "| agent | reward | env steps | final test error | wall-clock (training) | parameters |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in summary:
        error = f"{100 * row['final_test_error_mean']:.2f}%"
        if len(row["seeds"]) > 1:
            error += (
                f" ({100 * row['final_test_error_min']:.2f}-"
                f"{100 * row['final_test_error_max']:.2f}%, {len(row['seeds'])} seeds)"
            )
        lines.append(
            f"| {LABELS.get(row['agent'], row['agent'])} | {row['reward']} | {row['env_steps']:,} "
            f"| {error} | {_duration(row['wall_clock_s_mean'])} | {row['parameters']:,} |"
        )
    return "\n".join(lines) + "\n\n" + note + "\n"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple[list[float], ...]:
    """(x, mean, min, max) over seeds, point by point (curves cut to the shortest)."""
    n = min(len(c) for c in curves)
    xs, means, lows, highs = [], [], [], []
    for i in range(n):
        values = [c[i][1] for c in curves]
        xs.append(sum(c[i][0] for c in curves) / len(curves))
        means.append(sum(values) / len(values))
        lows.append(min(values))
        highs.append(max(values))
    return xs, means, lows, highs


def plot(
    results: dict[str, dict[str, dict[str, dict[str, Any]]]],
    path: Path,
    title_note: str,
    log_x: bool = False,
) -> None:
    """Test-subset accuracy vs env steps, one line per agent and reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for agent, by_reward in results.items():
        for reward, by_seed in by_reward.items():
            curves = [r["curve"] for r in by_seed.values() if r["curve"]]
            if not curves:
                continue
            xs, means, lows, highs = _mean_curve(curves)
            if log_x:
                keep = [i for i, x in enumerate(xs) if x > 0]
                xs, means, lows, highs = ([v[i] for i in keep] for v in (xs, means, lows, highs))
            errors = [r["final_test_error"] for r in by_seed.values()]
            label = (
                f"{LABELS.get(agent, agent)}, {reward} "
                f"(final test error {100 * sum(errors) / len(errors):.2f}%"
                f"{f', {len(errors)} seeds' if len(errors) > 1 else ''})"
            )
            (line,) = ax.plot(xs, means, marker="o", markersize=3, label=label)
            if len(curves) > 1:
                ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("env steps (glimpses; 7 per episode)")
    ax.set_ylabel("test-subset accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    n_seeds = max(len(by_seed) for by_reward in results.values() for by_seed in by_reward.values())
    seeds_note = f"; mean over {n_seeds} seeds, band: min-max" if n_seeds > 1 else ""
    ax.set_title(
        textwrap.fill(f"{ENV_ID}: {title_note}{seeds_note}", width=95), fontsize=9, loc="left"
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    from agents.sb3_presets import CLASS_HEADS

    parser = argparse.ArgumentParser(
        description="RAM vs PPO vs RecurrentPPO on GlimpseMNIST-v0 for the same env steps."
    )
    parser.add_argument(
        "--env-steps",
        type=int,
        default=1_000_000,
        help="training budget of every agent in env steps (glimpses) (default: %(default)s)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="default: 0")
    parser.add_argument(
        "--rewards",
        nargs="+",
        choices=REWARDS,
        default=["sparse"],
        help="rewards of the SB3 agents (RAM: sparse only) (default: sparse)",
    )
    parser.add_argument(
        "--agents", nargs="+", choices=AGENTS, default=list(AGENTS), help="default: all"
    )
    parser.add_argument(
        "--eval-points",
        type=int,
        default=10,
        help="evaluations during training besides step 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-images",
        type=int,
        default=1000,
        help="curve evaluations on the first N test images (default: %(default)s)",
    )
    parser.add_argument(
        "--final-eval-images",
        type=int,
        default=None,
        help="final evaluation on the first N test images (default: the whole test split)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument(
        "--data-dir", default=None, help="MNIST folder (default: $GLIMPSE_ENV_DATA or the cache)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="where the JSON, PNG and MD go (default: benchmarks/results/compare_agents)",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=DEFAULT_RUNS_DIR,
        help="run folders (default: runs/compare, git-ignored)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse finished runs in --runs-dir that have the same settings",
    )
    parser.add_argument("--log-x", action="store_true", help="logarithmic env-step axis")
    parser.add_argument(
        "--class-head",
        choices=CLASS_HEADS,
        default="categorical",
        help="class policy of the SB3 agents (agents/sb3_distributions.py) (default: %(default)s)",
    )
    parser.add_argument(
        "--used-actions-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SB3 agents: log pi of the action parts the env reads only "
        "(default: with the categorical head; see agents/sb3_presets.py)",
    )
    args = parser.parse_args(argv)
    if args.env_steps <= 0 or args.eval_points <= 0 or args.eval_images <= 0:
        parser.error("--env-steps, --eval-points and --eval-images must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns 0."""
    import torch

    from agents.sb3_presets import get_preset

    args = parse_args(argv)
    threads_before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(
        env_steps=args.env_steps,
        eval_every=max(1, math.ceil(args.env_steps / args.eval_points)),
        eval_images=args.eval_images,
        final_eval_images=args.final_eval_images,
        device=args.device,
        threads=args.threads,
        data_dir=args.data_dir,
        class_head=args.class_head,
        used_actions_only=args.used_actions_only,
    )
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    try:
        for seed in args.seeds:
            for reward in args.rewards:
                for agent in args.agents:
                    if agent == "ram" and reward != "sparse":
                        continue
                    result = run_one(agent, reward, seed, settings, args.runs_dir, args.reuse)
                    results.setdefault(agent, {}).setdefault(reward, {})[str(seed)] = result
    finally:
        torch.set_num_threads(threads_before)

    final_what = (
        "the whole test split (10,000 images)"
        if args.final_eval_images is None
        else f"the first {args.final_eval_images} test images"
    )
    curve_what = (
        f"deterministic accuracy on the first {args.eval_images} images of the test split "
        f"(one rollout each), at step 0, about every {settings.eval_every:,} env steps "
        f"and at the end"
    )
    summary = summarize(results)
    rollouts = sorted(
        {
            f"{a}: {hp.n_steps * hp.num_envs:,}"
            for a in args.agents
            if a != "ram"
            for hp in [get_preset(a, ENV_ID)]
        }
    )
    note = (
        f"{ENV_ID}, {N_GLIMPSES} glimpses per episode; one env step = one glimpse. Budget "
        f"{args.env_steps:,} env steps per agent (rounded up to a whole RAM batch of 896 "
        f"steps / SB3 rollout ({', '.join(rollouts) or '-'})). Final test error: "
        f"deterministic, one rollout per image, on {final_what}. Wall-clock: training only (evaluations excluded), "
        f"{args.threads} torch thread(s) on {args.device}. Parameters: trainable parameters "
        f"of the RAM model (incl. baseline) / of the SB3 policy (actor and critic)."
    )
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "env_id": ENV_ID,
        "n_glimpses": N_GLIMPSES,
        "env_steps_budget": args.env_steps,
        "env_step": "one glimpse (an episode of 7 glimpses = 7 env steps)",
        "seeds": args.seeds,
        "rewards": args.rewards,
        "agents": args.agents,
        "curve_evaluation": {
            "description": curve_what,
            "split": "test",
            "images": args.eval_images,
            "mode": "deterministic",
            "rollouts_per_image": 1,
            "eval_every_env_steps": settings.eval_every,
            "eval_points": args.eval_points,
        },
        "final_evaluation": {
            "description": f"deterministic, one rollout per image, on {final_what}",
            "split": "test",
            "images": args.final_eval_images,
            "mode": "deterministic",
        },
        "wall_clock": (
            "wall_clock_s: training time with every evaluation subtracted; "
            "eval_wall_clock_s: periodic + final evaluations; total_wall_clock_s: both"
        ),
        "parameters": "trainable parameters: RAM model incl. baseline; SB3 policy incl. critic",
        "settings": _agent_settings(args),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": args.threads,
            "device": args.device,
            "cpu": cpu_info(),
            "load_average_end": list(os.getloadavg()),
        },
        "results": results,
        "summary": summary,
    }
    (out_dir / "compare_agents.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out_dir / "compare_agents.png", curve_what, log_x=args.log_x)
    table = markdown_table(summary, note)
    (out_dir / "compare_agents.md").write_text(
        f"# Agent comparison on {ENV_ID}\n\nTest-subset curve: {curve_what}.\n\n{table}"
    )
    print()
    print(table)
    print(f"wrote {out_dir / 'compare_agents.json'}, .png and .md")
    return 0


def _agent_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Hyperparameters of each agent (for the record)."""
    from agents.sb3_presets import get_preset
    from train.ppo import uses_action_use

    out: dict[str, Any] = {}
    for agent in args.agents:
        if agent == "ram":
            out[agent] = {
                **RAM_SETTINGS,
                "preset": "glimpse train ram --preset mnist-7 --std-end 0.1",
            }
        else:
            hp = dataclasses.replace(
                get_preset(agent, ENV_ID),
                class_head=args.class_head,
                used_actions_only=args.used_actions_only,
            )
            out[agent] = {
                **hp.to_dict(),
                "used_actions_only": uses_action_use(hp),
                "total_steps": args.env_steps,
                "preset": f"agents.sb3_presets ({agent}, {ENV_ID})",
            }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
