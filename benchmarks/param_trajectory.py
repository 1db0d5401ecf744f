"""Do two versions of the code train the same function? Compare their parameter trajectories.

Usage::

    # record, once per checkout (PYTHONPATH picks the code under test; this script uses
    # only ReinforceTrainer and ReinforceConfig, present since the first trainer):
    PYTHONPATH=/path/to/old/checkout GLIMPSE_ENV_DATA=/path/to/mnist \\
        python benchmarks/param_trajectory.py run --out old.pt
    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/param_trajectory.py run --out new.pt
    # compare; writes benchmarks/results/param_trajectory.json unless --json says otherwise
    python benchmarks/param_trajectory.py compare old.pt new.pt

``run`` trains the RAM agent on GlimpseMNIST-v0 with the settings of the shipped 7-glimpse
recipe (batch 64, Adam at 5e-4 with a cosine schedule, here over 100,000 iterations,
location std 0.12, float32, seed 0, 1 torch thread) and saves the parameters after iterations 1, 2, 5, 10, 20, 50, ... up to
``--iterations``. ``compare`` reports, per saved iteration, the largest absolute difference
of any parameter, the largest relative to the parameter tensor's largest magnitude, and
how many elements differ by more than ``--tol``.

The same code run twice gives identical snapshots (the trainer is deterministic). Two codes
that compute the same losses and gradients, differing only in floating-point rounding,
stay within a few 1e-6 of each other at first: Adam divides each gradient element by its
own running magnitude, so an element whose gradient is near zero can show its rounding,
while one whose sign differed would move by about twice the learning rate. The runs part
once a discrete choice (a sampled location or class, an argmax, a clipped location) rounds
the other way; after that they are like two seeds. Codes whose gradients differ in
direction differ from the first iterations on (a constant scale of a parameter's gradient
is invisible to Adam, and so to training).
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import glimpse_env  # noqa: F401  (registers the envs)
from agents.ram import RAMConfig
from agents.reinforce import ReinforceConfig, ReinforceTrainer

RESULTS = Path(__file__).resolve().parent / "results" / "param_trajectory.json"
SNAPSHOTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def _commit(module_file: str) -> str | None:
    """The git commit of the checkout holding ``module_file``, if it is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(module_file).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def record(iterations: int, num_envs: int = 64, seed: int = 0) -> dict[str, Any]:
    """Train ``iterations`` iterations and snapshot the parameters.

    Args:
        iterations: number of training iterations (batches of ``num_envs`` episodes).
        num_envs: batch size.
        seed: the trainer's seed.

    Returns:
        ``{"snapshots": {iteration: {name: tensor}}, "commit": str | None, "torch": str}``.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    envs = gym.make_vec(
        "GlimpseMNIST-v0", num_envs=num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    config = ReinforceConfig(
        model=RAMConfig(location_std=0.12),
        total_iterations=100_000,
        lr=5e-4,
        lr_schedule="cosine",
        seed=seed,
    )
    trainer = ReinforceTrainer(envs, config)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    for iteration in range(1, iterations + 1):
        trainer.train_iteration()
        if iteration in SNAPSHOTS or iteration == iterations:
            snapshots[iteration] = {
                name: p.detach().clone() for name, p in trainer.model.named_parameters()
            }
    envs.close()
    return {
        "snapshots": snapshots,
        "commit": _commit(inspect.getfile(ReinforceTrainer)),
        "torch": str(torch.__version__),
    }


def compare(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-6) -> list[dict[str, Any]]:
    """Per common snapshot: how far apart the two runs' parameters are.

    Args:
        a: a :func:`record` result.
        b: another one.
        tol: an element counts as differing when the absolute difference exceeds it.

    Returns:
        One row per iteration saved in both: ``iteration``, ``max_abs_diff``,
        ``max_rel_diff`` (over tensors, relative to the tensor's largest magnitude in
        ``a``), ``elements_over_tol`` and ``elements``.

    Raises:
        ValueError: if the runs share no snapshot or their parameters differ in names or
            shapes.
    """
    rows = []
    for iteration in sorted(set(a["snapshots"]) & set(b["snapshots"])):
        pa, pb = a["snapshots"][iteration], b["snapshots"][iteration]
        if pa.keys() != pb.keys() or any(pa[k].shape != pb[k].shape for k in pa):
            raise ValueError("the two runs' models differ in parameter names or shapes")
        diffs = {k: (pa[k] - pb[k]).abs() for k in pa}
        rows.append(
            {
                "iteration": iteration,
                "max_abs_diff": max(d.max().item() for d in diffs.values()),
                "max_rel_diff": max(
                    (d.max() / pa[k].abs().max().clamp_min(1e-30)).item() for k, d in diffs.items()
                ),
                "elements_over_tol": sum(int((d > tol).sum()) for d in diffs.values()),
                "elements": sum(d.numel() for d in diffs.values()),
            }
        )
    if not rows:
        raise ValueError("the two runs share no saved iteration")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train and save parameter snapshots")
    run.add_argument("--out", type=Path, required=True, help="snapshot file (.pt)")
    run.add_argument("--iterations", type=int, default=1000)
    run.add_argument("--seed", type=int, default=0)
    cmp = commands.add_parser("compare", help="compare two snapshot files")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    cmp.add_argument("--tol", type=float, default=1e-6)
    cmp.add_argument("--json", type=Path, default=RESULTS, help="where to write the rows")
    args = parser.parse_args()
    if args.command == "run":
        result = record(args.iterations, seed=args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result, args.out)
        print(f"saved {len(result['snapshots'])} snapshots to {args.out}")
        return
    a, b = torch.load(args.a, weights_only=True), torch.load(args.b, weights_only=True)
    rows = compare(a, b, args.tol)
    print(f"a: {args.a} (commit {a['commit']}), b: {args.b} (commit {b['commit']})")
    print(f"{'iteration':>9}  {'max |a-b|':>10}  {'max rel':>9}  elements > {args.tol:g}")
    for row in rows:
        print(
            f"{row['iteration']:>9}  {row['max_abs_diff']:>10.2e}  {row['max_rel_diff']:>9.2e}"
            f"  {row['elements_over_tol']} of {row['elements']}"
        )
    result = {
        "a": {"file": str(args.a), "commit": a["commit"], "torch": a["torch"]},
        "b": {"file": str(args.b), "commit": b["commit"], "torch": b["torch"]},
        "tol": args.tol,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
