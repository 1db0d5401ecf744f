"""Environment and sensor throughput; writes ``benchmarks/results/env_throughput.json``.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/env_throughput.py [--quick]

Measures, with random actions (drawn up front from the action space) and resets included:

* single-env steps/s through ``gym.make`` (default wrappers included) for every id;
* ``extract_glimpses`` glimpses/s at N=256, from raw images (summed-area table built in the
  call) and from a prebuilt :class:`SummedAreaTable` (what the envs do once per episode);
* native vector env env-steps/s (num_envs x batched steps/s) for N = 1, 64, 256, 1024, in
  one thread, and with ``num_threads=2`` (keys ``native_n{N}_threads2``) where the batch
  is large enough for a second thread (:data:`glimpse_env.vector.MIN_SHARD_PIXELS`);
  ``SyncVectorEnv`` over single envs at N=64; the SB3 adapter at N=64;
* peak memory of one single-env process beyond the interpreter, torch and the dataset.

Each figure is the best of a few repeats (less noise from other processes). The JSON
records whether the compiled loops of :mod:`glimpse_env._kernels` ran (numba installed);
``GLIMPSE_ENV_NUMBA=0 python benchmarks/env_throughput.py --out OTHER.json`` measures the
NumPy code alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import glimpse_env
from glimpse_env import _kernels
from glimpse_env.sensor import extract_glimpses, summed_area_table
from train.machine_info import cpu_info

RESULTS = Path(__file__).resolve().parent / "results" / "env_throughput.json"
VECTOR_IDS = ("GlimpseMNIST-v0", "GlimpseClutteredMNIST100-v0")


def best_rate(run: Callable[[], int], seconds: float, repeats: int = 3) -> float:
    """Best items/s over ``repeats`` timed windows of about ``seconds`` each."""
    rates = []
    for _ in range(repeats):
        start, items = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            items += run()
        rates.append(items / (time.perf_counter() - start))
    return max(rates)


def single_env_rate(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (4096, *env.action_space.shape)).astype(np.float32)
    state = {"i": 0}

    def run() -> int:
        for _ in range(1000):
            state["i"] = (state["i"] + 1) % len(actions)
            _, _, terminated, truncated, _ = env.step(actions[state["i"]])
            if terminated or truncated:
                env.reset()
        return 1000

    return best_rate(run, seconds)


def vector_rate(envs: Any, seconds: float, batch_actions: Callable[[int], Any]) -> float:
    n = envs.num_envs
    envs.reset(seed=0)
    pool = [batch_actions(i) for i in range(16)]
    state = {"i": 0}

    def run() -> int:
        for _ in range(20):
            state["i"] = (state["i"] + 1) % len(pool)
            envs.step(pool[state["i"]])
        return 20 * n

    return best_rate(run, seconds)


def sb3_rate(env_id: str, n: int, seconds: float) -> float:
    from glimpse_env.sb3 import GlimpseVecEnv

    venv = GlimpseVecEnv(env_id, num_envs=n, seed=0)
    venv.reset()
    rng = np.random.default_rng(0)
    pool = [rng.uniform(-1, 1, (n, 12)).astype(np.float32) for _ in range(16)]
    state = {"i": 0}

    def run() -> int:
        for _ in range(20):
            state["i"] = (state["i"] + 1) % len(pool)
            venv.step(pool[state["i"]])
        return 20 * n

    return best_rate(run, seconds)


def sensor_rates(seconds: float) -> dict[str, float]:
    rng = np.random.default_rng(0)
    out = {}
    for name, (size, g, k) in {
        "28x28_8x8_1scale": (28, 8, 1),
        "100x100_12x12_4scales": (100, 12, 4),
    }.items():
        images = rng.integers(0, 256, (256, size, size), dtype=np.uint8)
        locations = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
        table = summed_area_table(images)
        out[f"{name}_from_table"] = best_rate(
            lambda table=table, locations=locations, g=g, k=k: extract_glimpses(
                table, locations, g, k
            ).shape[0],
            seconds,
        )
        out[f"{name}_from_images"] = best_rate(
            lambda images=images, locations=locations, g=g, k=k: extract_glimpses(
                images, locations, g, k
            ).shape[0],
            seconds,
        )
    return out


_MEMORY_SNIPPET = """
import os, resource, gymnasium as gym, numpy as np, torch, glimpse_env
from glimpse_env.datasets import load_mnist

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

load_mnist("{split}")
base = rss_mb()  # interpreter + torch + gymnasium + the uint8 dataset
env = gym.make("{env_id}", split="{split}")
env.reset(seed=0)
actions = np.random.default_rng(0).uniform(-1, 1, (1000, 12)).astype(np.float32)
peak = 0.0
for i in range(20000):
    _, _, term, trunc, _ = env.step(actions[i % 1000])
    if term or trunc:
        env.reset()
    if i % 1000 == 0:
        peak = max(peak, rss_mb())
print(max(peak, rss_mb()) - base)
"""


def memory_beyond_baseline_mb(env_id: str) -> float:
    """Resident memory (MB) that creating and running one env adds to a fresh process
    which already holds the interpreter, torch, gymnasium and the uint8 dataset (sampled
    every 1000 steps over 20,000 steps)."""
    code = _MEMORY_SNIPPET.format(env_id=env_id, split="train")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return str(numba.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (noisy)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 1.5
    torch.set_num_threads(1)

    results: dict[str, Any] = {
        "machine": {
            "cpu": cpu_info(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "numba": _numba_version(),
            # The machine may be shared: 1/5/15-minute load averages when the run started.
            "load_average_at_start": list(os.getloadavg()),
        },
        "random_actions": True,
        "resets_included": True,
        # make_vec's default (and SyncVectorEnv's): the step after an episode end resets.
        "autoreset_mode": gym.make_vec("GlimpseMNIST-v0", num_envs=1).autoreset_mode.value,
        "compiled_loops": _kernels.ENABLED,
    }
    results["single_env_steps_per_s"] = {
        env_id: single_env_rate(env_id, seconds) for env_id in glimpse_env.ENV_IDS
    }
    print("single env", results["single_env_steps_per_s"], flush=True)
    results["extract_glimpses_per_s_n256"] = sensor_rates(seconds)
    print("sensor", results["extract_glimpses_per_s_n256"], flush=True)

    rng = np.random.default_rng(0)
    vec: dict[str, Any] = {}
    for env_id in VECTOR_IDS:
        row: dict[str, float] = {}
        for n in (1, 64, 256, 1024):
            envs = gym.make_vec(env_id, num_envs=n)
            row[f"native_n{n}"] = vector_rate(
                envs, seconds, lambda i, n=n: rng.uniform(-1, 1, (n, 12)).astype(np.float32)
            )
        for n in (256, 1024):  # both cores (where the batch is large enough to share)
            envs = gym.make_vec(env_id, num_envs=n, num_threads=2)
            if envs.num_threads == 2:
                row[f"native_n{n}_threads2"] = vector_rate(
                    envs, seconds, lambda i, n=n: rng.uniform(-1, 1, (n, 12)).astype(np.float32)
                )
            envs.close()
        sync = gym.make_vec(env_id, num_envs=64, vectorization_mode="sync")
        row["sync_vector_env_n64"] = vector_rate(
            sync, seconds, lambda i: rng.uniform(-1, 1, (64, 12)).astype(np.float32)
        )
        row["sb3_adapter_n64"] = sb3_rate(env_id, 64, seconds)
        row["native_n64_over_sync_n64"] = row["native_n64"] / row["sync_vector_env_n64"]
        vec[env_id] = row
        print(env_id, row, flush=True)
    results["vector_env_steps_per_s"] = vec
    results["memory_mb_beyond_baseline"] = {
        env_id: memory_beyond_baseline_mb(env_id)
        for env_id in ("GlimpseMNIST-v0", "GlimpseClutteredMNIST100-v0")
    }
    print("memory", results["memory_mb_beyond_baseline"], flush=True)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
