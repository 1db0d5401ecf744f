"""``glimpse compare``: RAM-REINFORCE vs PPO vs RecurrentPPO on GlimpseMNIST-v0 for the same
number of env steps.

One env step is one glimpse: a 7-glimpse episode is 7 env steps, so RAM's batch of 128
episodes is 896 env steps. Every agent trains for ``--env-steps`` (rounded up to a whole
RAM batch / PPO rollout):

* ``ram``: the Recurrent Attention Model with the hybrid loss, as ``glimpse train ram
  --preset mnist-7 --batch-size 128 --lr 0.001 --std 0.15 --std-end 0.1`` trains it (paper
  sizes, Adam with a cosine anneal, location std 0.15 annealed to 0.1), but evaluated on
  the test subset during training (``glimpse train ram`` validates on the val split); see
  :mod:`train.compare_runs`. Sparse reward only (the hybrid loss trains the classifier by
  cross-entropy anyway).
* ``ppo``: SB3 PPO with the glimpse history as memory, ``recurrent_ppo``: sb3-contrib
  RecurrentPPO (LSTM); both through :func:`train.ppo.train_ppo` with the GlimpseMNIST-v0
  presets of :mod:`agents.sb3_presets`, with the sparse and/or dense reward, and the class
  policy ``--class-head`` (default: categorical, as RAM; ``gaussian``: SB3's Gaussian).

Learning curves: every agent is evaluated at env step 0, then about every
``env_steps / eval_points`` env steps (after the first batch / rollout that reaches the
next multiple) and at the end, on the SAME fixed subset: the first ``--eval-images`` images
of the test split, deterministic, one rollout per image
(:func:`agents.policy.evaluate_policy`). At the end each agent gets a deterministic
evaluation on the whole test split (``--final-eval-images`` for quick tests).

Writes into ``--out-dir``: ``compare_agents.json`` (every run, plus means over seeds),
``compare_agents.png`` (test-subset accuracy vs env steps, one line per agent and reward,
mean over seeds with a min/max band) and ``compare_agents.md`` (the summary table, also
printed); see :mod:`train.compare_report`. The run folders (metrics, checkpoints) go to
``--runs-dir``; with ``--reuse`` a run whose folder already holds a finished result with
the same settings is not trained again. ``wall_clock_s`` is the training time of a run with
every evaluation subtracted; ``eval_wall_clock_s`` and ``total_wall_clock_s`` are reported
beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from train.compare_report import Results, check_plotting, markdown_table, plot, summarize
from train.compare_runs import ENV_ID, N_GLIMPSES, RAM_COMMAND, RAM_SETTINGS, Settings, run_one
from train.errors import GlimpseError
from train.validation import device_name, positive_int, seed_int

AGENTS: tuple[str, ...] = ("ram", "ppo", "recurrent_ppo")
REWARDS: tuple[str, ...] = ("sparse", "dense")
DEFAULT_OUT_DIR = Path("benchmarks/results/compare_agents")
DEFAULT_RUNS_DIR = Path("runs/compare")

#: The Python package each SB3 agent needs.
_SB3_PACKAGES: dict[str, str] = {"ppo": "stable_baselines3", "recurrent_ppo": "sb3_contrib"}


# ---------------------------------------------------------------------- command line
def register(subparsers: Any) -> None:
    """Add ``glimpse compare`` to the ``glimpse`` command's subparsers."""
    from agents.sb3_presets import CLASS_HEADS

    parser = subparsers.add_parser(
        "compare",
        help="RAM vs PPO vs RecurrentPPO on GlimpseMNIST-v0 for the same env steps",
        description=(
            "Train RAM-REINFORCE, PPO (glimpse history) and RecurrentPPO (LSTM) on "
            f"{ENV_ID} for the same number of env steps (glimpses), evaluate each on the "
            "same test subset during training, and write the table, the learning curves "
            "(compare_agents.md, .png) and every run (compare_agents.json) to --out-dir."
        ),
    )
    parser.add_argument(
        "--env-steps",
        type=positive_int,
        default=1_000_000,
        help="training budget of every agent in env steps (glimpses) (default: %(default)s)",
    )
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0], help="default: 0")
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
        type=positive_int,
        default=10,
        help="evaluations during training besides step 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-images",
        type=positive_int,
        default=1000,
        help="curve evaluations on the first N test images (default: %(default)s)",
    )
    parser.add_argument(
        "--final-eval-images",
        type=positive_int,
        default=None,
        help="final evaluation on the first N test images (default: the whole test split)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads (default: %(default)s)"
    )
    parser.add_argument(
        "--device", type=device_name, default="cpu", help="torch device (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="MNIST folder (default: $GLIMPSE_ENV_DATA or the cache)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"where the JSON, PNG and MD go (default: {DEFAULT_OUT_DIR})",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=DEFAULT_RUNS_DIR,
        help=f"run folders (default: {DEFAULT_RUNS_DIR})",
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
    parser.set_defaults(func=run)


def _check_environment(args: argparse.Namespace) -> None:
    """Refuse to start hours of training that would fail at the end: the test-split sizes,
    the SB3 packages the chosen agents need, and matplotlib for the plot.

    Raises:
        UsageError: on more images than the test split has.
        GlimpseError: when a package is missing (with the command that installs it).
    """
    from train.common import check_images

    check_images(args.eval_images, "test", "--eval-images")
    check_images(args.final_eval_images, "test", "--final-eval-images")
    for agent in args.agents:
        package = _SB3_PACKAGES.get(agent)
        if package is not None and importlib.util.find_spec(package) is None:
            raise GlimpseError(
                f"--agents {agent} needs {package}; install it: pip install 'glimpse-env[sb3]' "
                "(or leave the agent out: --agents ram)"
            )
    check_plotting()


def run(args: argparse.Namespace) -> int:
    """``glimpse compare``: train every (seed, reward, agent), then write the reports.

    Returns:
        0.
    """
    import torch

    _check_environment(args)
    threads_before = torch.get_num_threads()
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
    results: Results = {}
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
    if not results:
        raise GlimpseError(
            "nothing was trained: RAM trains with the sparse reward only; add --rewards sparse"
        )
    _write_outputs(args, settings, results)
    return 0


def _write_outputs(args: argparse.Namespace, settings: Settings, results: Results) -> None:
    """Write ``compare_agents.json``, ``.png`` and ``.md`` into ``args.out_dir`` and print
    the table."""
    import torch

    from agents.sb3_presets import get_preset
    from train.machine_info import cpu_info

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
        f"{a}: {hp.n_steps * hp.num_envs:,}"
        for a in args.agents
        if a != "ram"
        for hp in [get_preset(a, ENV_ID)]
    )
    note = (
        f"{ENV_ID}, {N_GLIMPSES} glimpses per episode; one env step = one glimpse. Budget "
        f"{args.env_steps:,} env steps per agent (rounded up to a whole RAM batch of 896 "
        f"steps / SB3 rollout ({', '.join(rollouts) or '-'})). Final test error: "
        f"deterministic, one rollout per image, on {final_what}. Wall-clock: training only "
        f"(evaluations excluded), {args.threads} torch thread(s) on {args.device}. "
        "Parameters: trainable parameters of the RAM model (incl. baseline) / of the SB3 "
        "policy (actor and critic)."
    )
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
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare_agents.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out_dir / "compare_agents.png", f"{ENV_ID}: {curve_what}", log_x=args.log_x)
    table = markdown_table(summary, note)
    (out_dir / "compare_agents.md").write_text(
        f"# Agent comparison on {ENV_ID}\n\nTest-subset curve: {curve_what}.\n\n{table}"
    )
    print()
    print(table)
    print(f"wrote {out_dir / 'compare_agents.json'}, .png and .md")


def _agent_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Hyperparameters of each agent (for the record)."""
    from agents.sb3_presets import get_preset
    from train.ppo import uses_action_use

    out: dict[str, Any] = {}
    for agent in args.agents:
        if agent == "ram":
            out[agent] = {
                **RAM_SETTINGS,
                "preset": RAM_COMMAND,
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
