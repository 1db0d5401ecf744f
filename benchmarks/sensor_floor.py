"""Where a native vector env step goes: the compiled work against the whole step.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/sensor_floor.py \
        [--env GlimpseClutteredMNIST100-v0] [--num-envs 64]

Times, each as the best of a few repeats (1 torch thread, NumPy arrays, the compiled
loops of :mod:`glimpse_env._kernels` where numba is installed):

* ``step_us``: one batched ``step`` of ``gym.make_vec(env, num_envs=N)`` with random
  actions, resets included (as ``env_throughput.py``);
* the three parts of an episode that any implementation of the env has to compute, once
  per batch: ``draw_us`` (drawing the N new episodes: digits, clutter, canvases),
  ``table_us`` (their summed-area tables) and ``glimpse_us`` (one glimpse per env);
* per cycle of one episode (``T`` steps): ``cycle_us = T * step_us`` and
  ``cycle_compute_us = draw_us + table_us + T * glimpse_us``.

With the recorded ``SyncVectorEnv`` figure of ``benchmarks/results/env_throughput.json``
it also gives ``max_ratio_over_sync``: the native/Sync ratio the env would reach if
nothing but the compiled work ran (no Python at all). Writes
``benchmarks/results/sensor_floor.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import glimpse_env  # noqa: F401  (registers the ids)
from agents.checkpoints import write_json
from glimpse_env import _kernels
from glimpse_env.sensor import _gather_glimpses, _lazy_table, _uint16_table

RESULTS = Path(__file__).parent / "results"


def best_us(fn: Callable[[], Any], number: int, repeat: int = 3) -> float:
    """Best of ``repeat`` timings of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def measure(env_id: str, num_envs: int, seed: int = 0, calls: int = 2000) -> dict[str, Any]:
    """Time a batched step and its compiled parts for ``num_envs`` envs of ``env_id``.

    Args:
        env_id: a registered id.
        num_envs: N, the batch.
        seed: seed of the env, its actions and the glimpse locations.
        calls: calls per timed repeat of a step or a glimpse (the per-episode parts get
            ``calls // 7``).

    Returns:
        The timings in microseconds (see the module docstring) and the env-steps/s.
    """
    envs = gym.make_vec(
        env_id, num_envs=num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    envs.reset(seed=seed)
    task = envs.unwrapped.task
    steps = task.n_glimpses  # episode length: the env terminates after T glimpses
    envs.action_space.seed(seed)
    actions = itertools.cycle([envs.action_space.sample() for _ in range(64)])

    def step() -> None:
        envs.step(next(actions))

    step_us = best_us(step, calls)
    draw = envs.unwrapped._draw  # the env's own draw of its next N episodes (one shard)
    per_episode = max(1, calls // 7)
    draw_us = best_us(lambda: draw(0), per_episode)
    canvases = draw(0).canvases
    table_us = best_us(lambda: _uint16_table(canvases), per_episode)
    table = _lazy_table(canvases)
    locations = np.random.default_rng(seed).uniform(-1, 1, (num_envs, 2)).astype(np.float32)
    g, k = task.glimpse_size, task.n_scales
    _gather_glimpses(table, locations, g, k)  # builds the table(s) it reads, once
    glimpse_us = best_us(lambda: _gather_glimpses(table, locations, g, k), calls)
    envs.close()
    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "steps_per_episode": steps,
        "compiled_loops": _kernels.ENABLED,
        "step_us": step_us,
        "draw_us": draw_us,
        "table_us": table_us,
        "glimpse_us": glimpse_us,
        "cycle_us": steps * step_us,
        "cycle_compute_us": draw_us + table_us + steps * glimpse_us,
        "env_steps_per_s": num_envs / step_us * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseClutteredMNIST100-v0")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "sensor_floor.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = measure(args.env, args.num_envs)
    recorded = RESULTS / "env_throughput.json"
    if recorded.exists():
        by_env = json.loads(recorded.read_text())["vector_env_steps_per_s"].get(args.env, {})
        sync = by_env.get(f"sync_vector_env_n{args.num_envs}")
        if sync:
            sync_cycle_us = result["steps_per_episode"] * args.num_envs / sync * 1e6
            result["recorded_sync_env_steps_per_s"] = sync
            result["max_ratio_over_sync"] = sync_cycle_us / result["cycle_compute_us"]
    write_json(args.out, result, sort_keys=False)
    for key, value in result.items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
