"""Native vector env steps/s in each autoreset mode, and against another checkout's default.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/vector_autoreset.py \\
        [--baseline /path/to/older/checkout] [--rounds 5] [--out FILE]

Every figure is one fresh process (so all see the same machine), stepping
``gym.make_vec(id, num_envs=N)`` with random actions for 1 s windows (best of 3); the
variants alternate within each round, and the best round is kept. ``steps_per_s`` counts
every ``step`` call's sub-envs; ``transitions_per_s`` only the steps that advance an
episode (under ``NEXT_STEP`` one step in ``T + 1`` only resets). With ``--baseline`` the
default mode of that checkout (the code before NEXT_STEP became the default used
SAME_STEP) is measured beside this one's. Writes ``benchmarks/results/vector_autoreset.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from train.machine_info import cpu_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "vector_autoreset.json"
CASES = (("GlimpseMNIST-v0", 64), ("GlimpseMNIST-v0", 256), ("GlimpseClutteredMNIST100-v0", 64))

_MEASURE = r"""
import json, sys, time
import gymnasium as gym, numpy as np
import glimpse_env
env_id, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kwargs = {} if mode == "default" else {"autoreset_mode": gym.vector.AutoresetMode(mode)}
envs = gym.make_vec(env_id, num_envs=n, **kwargs)
mode = gym.vector.AutoresetMode(envs.metadata.get("autoreset_mode", "SameStep"))
T = envs.unwrapped.task.n_glimpses
rng = np.random.default_rng(0)
actions = [rng.uniform(-1, 1, (n, 12)).astype(np.float32) for _ in range(64)]
envs.reset(seed=0)
best, i = 0.0, 0
for _ in range(3):
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 1.0:
        _, _, terminated, truncated, _ = envs.step(actions[i % 64])
        i, calls = i + 1, calls + 1
        if mode == gym.vector.AutoresetMode.DISABLED and terminated.any():
            envs.reset()
    best = max(best, calls * n / (time.perf_counter() - start))
useful = T / (T + 1) if mode == gym.vector.AutoresetMode.NEXT_STEP else 1.0
print(json.dumps({"mode": mode.name, "steps_per_s": best, "transitions_per_s": best * useful}))
"""


def measure(checkout: Path, env_id: str, n: int, mode: str) -> dict[str, Any]:
    """One fresh process of ``checkout``'s code; its result."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, env_id, str(n), mode],
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    variants = [("NextStep", ROOT, "NextStep"), ("SameStep", ROOT, "SameStep")]
    variants.append(("Disabled", ROOT, "Disabled"))
    if args.baseline is not None:
        variants.append(("baseline_default", args.baseline, "default"))
    results: dict[str, Any] = {}
    for env_id, n in CASES:
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for label, checkout, mode in variants:
                out = measure(checkout, env_id, n, mode)
                if out["steps_per_s"] > best.get(label, {}).get("steps_per_s", 0.0):
                    best[label] = out
        row = {
            label: {k: v if k == "mode" else round(v) for k, v in r.items()}
            for label, r in best.items()
        }
        if args.baseline is not None:
            base = best["baseline_default"]["transitions_per_s"]
            row["transitions_ratio_to_baseline"] = {
                label: round(best[label]["transitions_per_s"] / base, 3)
                for label in ("NextStep", "SameStep", "Disabled")
            }
        results[f"{env_id} n{n}"] = row
        print(env_id, n, json.dumps(row), flush=True)
    record = {
        "command": "python benchmarks/vector_autoreset.py " + " ".join(argv or sys.argv[1:]),
        "cpu": cpu_info(),
        "load_average_at_end": list(os.getloadavg()),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
