"""SB3 training throughput on the native vector env vs SB3's ``DummyVecEnv``.

For each configuration, the same PPO / RecurrentPPO model (same hyperparameters, same
seed, :func:`train.ppo.build_model`) is trained for ``--steps`` env steps twice:

* ``native``: :class:`glimpse_env.sb3.GlimpseVecEnv` (one batched call steps every sub-env),
* ``dummy``: ``DummyVecEnv([gym.make(env_id)] * num_envs)`` (a Python loop over single envs),

both under ``VecMonitor`` (and :class:`agents.sb3_policy.GlimpseHistory` for PPO with
history). Reported: env steps per second of ``model.learn`` and its split into rollout
collection and PPO updates, plus the raw ``VecEnv.step`` throughput with random actions.

Usage (1 torch thread by default, as for every CPU benchmark of this project)::

    GLIMPSE_ENV_DATA=... python benchmarks/sb3_throughput.py [--steps 50000] \
        [--configs ppo_history,recurrent_ppo,ppo_plain_1epoch] [--out PATH]

Writes ``benchmarks/results/sb3_throughput.json`` by default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import glimpse_env  # registers the ids
from agents.sb3_presets import get_preset
from train.machine_info import cpu_info

RESULTS = Path(__file__).resolve().parent / "results" / "sb3_throughput.json"

#: name -> (agent, hyperparameter overrides of the GlimpseMNIST-v0 preset, description)
CONFIGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ppo_history": ("ppo", {}, "PPO preset: glimpse history (mean), 4 epochs, batch 256"),
    "recurrent_ppo": ("recurrent_ppo", {}, "RecurrentPPO preset: LSTM 256, 4 epochs"),
    "ppo_plain_1epoch": (
        "ppo",
        {"history": False, "n_epochs": 1, "batch_size": 0},
        "PPO without history, 1 epoch, one minibatch per rollout (rollout-bound)",
    ),
}
BACKENDS = ("native", "dummy")


def make_env(backend: str, agent: str, env_id: str, num_envs: int, history: bool) -> Any:
    """The training VecEnv of one backend, wrapped as ``train.ppo`` wraps it."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from agents.sb3_policy import GlimpseHistory
    from glimpse_env.sb3 import GlimpseVecEnv

    if backend == "native":
        venv: Any = GlimpseVecEnv(env_id, num_envs=num_envs)
    else:
        fns: list[Callable[[], gym.Env]] = [lambda: gym.make(env_id)] * num_envs
        venv = DummyVecEnv(fns)
    venv = VecMonitor(venv)
    if agent == "ppo" and history:
        venv = GlimpseHistory(venv)
    return venv


def env_only(backend: str, env_id: str, num_envs: int, history: bool, steps: int) -> float:
    """``VecEnv.step`` steps per second with random actions (no model)."""
    env = make_env(backend, "ppo", env_id, num_envs, history)
    env.seed(0)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (num_envs, 12)).astype(np.float32)
    n_calls = max(1, steps // num_envs)
    start = time.perf_counter()
    for _ in range(n_calls):
        env.step(actions)
    seconds = time.perf_counter() - start
    env.close()
    return n_calls * num_envs / seconds


def train_once(name: str, backend: str, env_id: str, steps: int, num_envs: int) -> dict[str, Any]:
    """Train configuration ``name`` for ``steps`` env steps on ``backend``; time it."""
    from stable_baselines3.common.logger import Logger

    from train.ppo import PPOTrainConfig, build_model

    agent, overrides, _ = CONFIGS[name]
    hp = dataclasses.replace(get_preset(agent, env_id), num_envs=num_envs, **overrides)
    if hp.batch_size == 0:  # one minibatch = the whole rollout
        hp = dataclasses.replace(hp, batch_size=hp.n_steps * hp.num_envs)
    config = PPOTrainConfig(recurrent=agent == "recurrent_ppo", env=env_id, hyperparams=hp, seed=0)
    env = make_env(backend, agent, env_id, hp.num_envs, hp.history)
    model = build_model(config, env, "cpu")
    model.set_logger(Logger(folder=None, output_formats=[]))
    spent = {"collect": 0.0, "train": 0.0}

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - start

        return wrapper

    model.collect_rollouts = timed("collect", model.collect_rollouts)
    model.train = timed("train", model.train)
    start = time.perf_counter()
    model.learn(total_timesteps=steps, log_interval=None)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    env.close()
    return {
        "config": name,
        "backend": backend,
        "env_steps": int(model.num_timesteps),
        "seconds": round(seconds, 3),
        "steps_per_s": round(model.num_timesteps / seconds, 1),
        "collect_s": round(spent["collect"], 3),
        "train_s": round(spent["train"], 3),
        "collect_steps_per_s": round(model.num_timesteps / spent["collect"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseMNIST-v0")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per training run")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--num-envs",
        default=None,
        help="comma-separated sub-env counts, each benchmarked (default: the PPO preset's)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n for n in args.configs.split(",") if n]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {sorted(CONFIGS)}")

    if args.num_envs:
        env_counts = [int(n) for n in args.num_envs.split(",")]
    else:
        env_counts = [get_preset("ppo", args.env).num_envs]
    env_rates = {
        f"{backend}{'+history' if history else ''}@{n}": round(
            env_only(backend, args.env, n, history, 20_000), 1
        )
        for n in env_counts
        for backend in BACKENDS
        for history in (False, True)
    }
    print("env only (steps/s):", env_rates, flush=True)
    runs = []
    speedup = {}
    for n in env_counts:
        for name in names:
            rate = {}
            for backend in BACKENDS:
                result = {"num_envs": n, **train_once(name, backend, args.env, args.steps, n)}
                print(json.dumps(result), flush=True)
                runs.append(result)
                rate[backend] = result["steps_per_s"]
            speedup[f"{name}@{n}"] = round(rate["native"] / rate["dummy"], 2)
    print("speedup native / dummy:", speedup, flush=True)

    import stable_baselines3

    out = {
        "env_id": args.env,
        "num_envs": env_counts,
        "steps_per_run": args.steps,
        "torch_threads": args.threads,
        "configs": {
            n: {"agent": CONFIGS[n][0], "overrides": CONFIGS[n][1], "description": CONFIGS[n][2]}
            for n in names
        },
        "env_only_steps_per_s": env_rates,
        "training": runs,
        "speedup_native_over_dummy": speedup,
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_info(),
            "load_average_at_end": list(os.getloadavg()),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
            "glimpse_env": glimpse_env.__version__,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
