"""RAM training throughput; writes ``benchmarks/results/train_throughput.json``.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/train_throughput.py [--threads 2] \
        [--precision float32|bfloat16]

Training images per second of the RAM agent on GlimpseMNIST-v0 (7 glimpses of 8x8, paper
sizes, batch 128): forward, backward and Adam step, env stepping included (the native
vector env), as ``images_per_second``, for float32 and for bfloat16 mixed precision
(``--precision`` picks the one reported as ``images_per_second``). Best of a few timed
windows. Also records the milliseconds per iteration spent in ``envs.step`` (in the best
window), to see the env's share (``GLIMPSE_ENV_NUMBA=0`` measures the NumPy env code),
the machine's speed on a fixed matrix product before and after (``machine_reference_*``,
GFLOP/s), which tells a slow day from slow code, and the CPU (``cpu``: the host CPU of the
machine is not always the same one).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from machine_info import cpu_info

from agents.reinforce import ReinforceConfig, ReinforceTrainer
from glimpse_env import _kernels

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
PRECISIONS = ("float32", "bfloat16")


class _TimedSteps(gym.vector.VectorWrapper):
    """Adds up the seconds spent in ``step`` of the wrapped vector env."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.seconds = 0.0

    def step(self, actions: Any) -> Any:
        start = time.perf_counter()
        out = self.env.step(actions)
        self.seconds += time.perf_counter() - start
        return out


def measure(precision: str, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Images/s and env milliseconds per iteration of each timed window, for one precision."""
    envs = _TimedSteps(
        gym.make_vec(
            "GlimpseMNIST-v0",
            num_envs=args.batch_size,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
    )
    config = ReinforceConfig(total_iterations=10**6, lr=1e-3, precision=precision)
    trainer = ReinforceTrainer(envs, config)
    for _ in range(20):  # warm-up
        trainer.train_iteration()
    rates, env_ms = [], []
    for _ in range(args.windows):
        envs.seconds = 0.0
        start = time.perf_counter()
        for _ in range(args.iterations):
            trainer.train_iteration()
        rates.append(args.iterations * args.batch_size / (time.perf_counter() - start))
        env_ms.append(1000.0 * envs.seconds / args.iterations)
    envs.close()
    return rates, env_ms


def machine_reference(repeats: int = 50) -> dict[str, float]:
    """The machine's speed on a fixed product, to compare runs made on different days.

    The training step's largest product shape, ``(896 x 256) @ (256 x 256)`` (7 steps of
    128 images against a 256 x 256 weight), in float32 and bfloat16 on the current torch
    threads: best and median of ``repeats``, in GFLOP/s. A day when these are low is a
    slow machine, not slow code.

    Args:
        repeats: timed products per dtype.

    Returns:
        GFLOP/s under the keys ``float32_gflops`` (best), ``float32_gflops_median``,
        ``bfloat16_gflops`` and ``bfloat16_gflops_median``.
    """
    flops = 2 * 896 * 256 * 256
    result = {}
    for dtype in (torch.float32, torch.bfloat16):
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(896, 256, generator=generator).to(dtype)
        b = torch.randn(256, 256, generator=generator).to(dtype)
        out = torch.empty(896, 256, dtype=dtype)
        seconds = []
        for _ in range(repeats + 5):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            seconds.append(time.perf_counter() - start)
        seconds = sorted(seconds[5:])  # the first 5 warm up
        name = str(dtype).removeprefix("torch.")
        result[f"{name}_gflops"] = flops / seconds[0] / 1e9
        result[f"{name}_gflops_median"] = flops / seconds[len(seconds) // 2] / 1e9
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--iterations", type=int, default=200, help="per timed window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="the precision whose figure is reported as images_per_second (both are measured)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    reference_before = machine_reference()
    measured = {precision: measure(precision, args) for precision in PRECISIONS}
    reference_after = machine_reference()
    windows = {p: rates for p, (rates, _) in measured.items()}
    best = {p: max(range(len(rates)), key=rates.__getitem__) for p, rates in windows.items()}
    result = {
        "images_per_second": max(windows[args.precision]),
        "precision": args.precision,
        "images_per_second_by_precision": {p: max(r) for p, r in windows.items()},
        "windows_images_per_second": windows,
        "env_step_ms_per_iteration_by_precision": {p: measured[p][1][best[p]] for p in PRECISIONS},
        "compiled_env_loops": _kernels.ENABLED,
        "batch_size": args.batch_size,
        "glimpses": 7,
        "env_id": "GlimpseMNIST-v0",
        "torch_threads": args.threads,
        "load_average": os.getloadavg(),
        "machine_reference_before": reference_before,
        "machine_reference_after": reference_after,
        "cpu": cpu_info(),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
