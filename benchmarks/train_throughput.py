"""RAM training throughput, every core and precision, against a reference checkout.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/train_throughput.py [--threads 2] \
        [--cores rnn gru lstm] [--precisions float32 bfloat16] [--reference DIR] \
        [--rounds 3] [--out benchmarks/results/train_throughput.json]

Training images per second of the RAM agent on GlimpseMNIST-v0 (7 glimpses of 8x8, paper
sizes, batch 128 by default): rollout, forward, backward and Adam step, env stepping
included (the native vector env), ``ReinforceTrainer.train_iteration`` after a warm-up.
Each measurement runs in a fresh subprocess (``--worker``) so that threads and caches do
not leak between them; the measurements of all rows are interleaved over ``--rounds``
rounds, which spreads a busy moment of the machine over every row alike.

``--reference DIR`` also measures the trainer of another checkout of this project (e.g. a
saved copy of the code before a change; its ``agents`` package is imported from ``DIR``)
on the same rows, and reports this code's speed as a ratio of the reference's for each
(core, precision). If the reference trainer has a ``fast_backward`` option (the
hand-written backward of the code before issue 27), the reference RNN core is measured with
it (``"path": "tape"``) and without it (``"path": "autograd"``).

The JSON records every round, the best and median per row, the milliseconds per iteration
spent in ``envs.step``, the machine's speed on a fixed matrix product before and after
(``machine_reference_*``, GFLOP/s: a slow day rather than slow code) and the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from machine_info import cpu_info

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
REPO = Path(__file__).resolve().parents[1]
CORES = ("rnn", "gru", "lstm")
PRECISIONS = ("float32", "bfloat16")


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one row in this process (the ``agents`` package on ``sys.path``).

    Args:
        spec: ``core``, ``precision``, ``batch_size``, ``iterations``, ``warmup``,
            ``threads`` and, for a reference trainer, ``fast_backward`` (or None).

    Returns:
        ``images_per_second``, ``env_step_ms`` per iteration and ``agents`` (the file the
        trainer was imported from).
    """
    import gymnasium as gym

    import agents
    import glimpse_env  # noqa: F401  (registers the ids)
    from agents.ram import RAMConfig
    from agents.reinforce import ReinforceConfig, ReinforceTrainer

    torch.set_num_threads(spec["threads"])
    seconds = [0.0]

    class TimedSteps(gym.vector.VectorWrapper):
        def step(self, actions: Any) -> Any:
            start = time.perf_counter()
            out = self.env.step(actions)
            seconds[0] += time.perf_counter() - start
            return out

    envs = TimedSteps(
        gym.make_vec(
            "GlimpseMNIST-v0",
            num_envs=spec["batch_size"],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
    )
    options: dict[str, Any] = {"precision": spec["precision"]}
    if spec.get("fast_backward") is not None:
        options["fast_backward"] = spec["fast_backward"]
    config = ReinforceConfig(
        model=RAMConfig(core=spec["core"]), total_iterations=10**6, lr=1e-3, **options
    )
    trainer = ReinforceTrainer(envs, config)
    for _ in range(spec["warmup"]):
        trainer.train_iteration()
    seconds[0] = 0.0
    start = time.perf_counter()
    for _ in range(spec["iterations"]):
        trainer.train_iteration()
    elapsed = time.perf_counter() - start
    return {
        "images_per_second": spec["iterations"] * spec["batch_size"] / elapsed,
        "env_step_ms": 1000.0 * seconds[0] / spec["iterations"],
        "agents": str(Path(agents.__file__).parent),
    }


def measure(code_root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`worker` in a subprocess importing the project from ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    out = subprocess.run(
        command, env=env, cwd=code_root, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"worker failed for {spec}:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["agents"]).resolve() != (code_root / "agents").resolve():
        raise SystemExit(f"the worker imported {result['agents']}, not {code_root}/agents")
    return result


def reference_has_fast_backward(root: Path) -> bool:
    """Whether the checkout at ``root`` has the hand-written backward option."""
    return "fast_backward" in (root / "agents" / "reinforce.py").read_text()


def rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (code, core, precision, path) to measure."""
    out = [
        {"code": "this", "core": c, "precision": p, "path": "replay", "fast_backward": None}
        for c in args.cores
        for p in args.precisions
    ]
    if args.reference is not None:
        tape = reference_has_fast_backward(args.reference)
        for core in args.cores:
            for precision in args.precisions:
                paths = [("autograd", None)]
                if tape and core == "rnn":
                    paths = [("tape", True), ("autograd", False)]
                for path, fast in paths:
                    out.append(
                        {
                            "code": "reference",
                            "core": core,
                            "precision": precision,
                            "path": path,
                            "fast_backward": fast,
                        }
                    )
    return out


def machine_reference(repeats: int = 50) -> dict[str, float]:
    """The machine's speed on a fixed product, to compare runs made on different days.

    The training step's largest product shape, ``(896 x 256) @ (256 x 256)`` (7 steps of
    128 images against a 256 x 256 weight), in float32 and bfloat16 on the current torch
    threads: best and median of ``repeats``, in GFLOP/s.

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


def summarise(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """Best and median per row, and this code's speed relative to the reference's."""
    table: dict[str, dict[str, Any]] = {}
    for row in measured:
        key = f"{row['code']}/{row['core']}/{row['precision']}/{row['path']}"
        entry = table.setdefault(key, {k: row[k] for k in ("code", "core", "precision", "path")})
        entry.setdefault("rounds", []).append(round(row["images_per_second"], 1))
        entry.setdefault("env_step_ms", []).append(round(row["env_step_ms"], 3))
    for entry in table.values():
        entry["best"] = max(entry["rounds"])
        entry["median"] = statistics.median(entry["rounds"])
    ratios = {}
    for entry in table.values():
        if entry["code"] != "this":
            continue
        core, precision = entry["core"], entry["precision"]
        for path in ("tape", "autograd"):
            ref = table.get(f"reference/{core}/{precision}/{path}")
            if ref is not None:
                ratios[f"{core}/{precision}/replay_over_{path}"] = {
                    "best": round(entry["best"] / ref["best"], 3),
                    "median": round(entry["median"] / ref["median"], 3),
                }
    return {"rows": list(table.values()), "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--iterations", type=int, default=100, help="timed, per measurement")
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", nargs="+", choices=CORES, default=list(CORES))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--reference", type=Path, help="another checkout to compare with")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    torch.set_num_threads(args.threads)
    common = {k: getattr(args, k) for k in ("batch_size", "iterations", "warmup", "threads")}
    plan = rows(args)
    before = machine_reference()
    measured = []
    for r in range(args.rounds):
        for row in plan:
            root = REPO if row["code"] == "this" else args.reference
            result = measure(root, {**row, **common})
            measured.append({**row, **result, "round": r})
            print(
                f"round {r + 1}/{args.rounds} {row['code']:9s} {row['core']:4s} "
                f"{row['precision']:8s} {row['path']:8s} "
                f"{result['images_per_second']:8.0f} images/s",
                flush=True,
            )
    after = machine_reference()
    result = {
        **summarise(measured),
        "batch_size": args.batch_size,
        "glimpses": 7,
        "env_id": "GlimpseMNIST-v0",
        "torch_threads": args.threads,
        "iterations_per_measurement": args.iterations,
        "reference": None if args.reference is None else str(args.reference),
        "load_average": os.getloadavg(),
        "machine_reference_before": before,
        "machine_reference_after": after,
        "cpu": cpu_info(),
        "torch": torch.__version__,
        "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=1))


if __name__ == "__main__":
    main()
