"""``glimpse bench leaderboard``: the GlimpseBench reference entries of every env.

``glimpse bench leaderboard --out DIR [--env ID|all] [--n-images N] [--data-dir DIR]
[--num-envs N]`` benchmarks, per env (GlimpseBench-v1, deterministic, reset seed 0):

* **chance** (:class:`ChancePolicy`): uniformly random glimpse places and a uniformly random
  class, drawn from a generator seeded by ``(seed, batch, step)``, so its actions are a pure
  function of the bench seed and two runs agree exactly (expected accuracy 1 / 10);
* **the shipped RAM model** of the env (``pretrained:ENV_ID``), loaded and measured exactly
  as ``glimpse bench --policy pretrained:ENV_ID`` does;

and adds the **paper's numbers** (:data:`PAPER`: Mnih et al. 2014, Tables 1 and 2) as rows
of their own, marked "paper, not measured here".

Entries that need training are measured elsewhere and read here: ``--entries RESULT ...``
takes ``glimpse bench`` outputs (``result.json`` or its folder) of trained runs, grouped by
``(label, env)``, one result per training seed (:func:`trained_entries`): their mean
accuracy, the IQM and mean with stratified-bootstrap 95% intervals from rliable (the code
of ``glimpse bench compare``), the number of seeds, and the training budget and command
read from the runs' ``config.json`` (RAM, PPO, RecurrentPPO and the full-image baselines,
the last marked not glimpse-limited; :mod:`train.leaderboard_entries`). The entries still
missing are listed as "not yet measured" with the commands that will produce them
(:func:`pending_entries`); no figure is made up for them.

It writes, after each env (atomically, as ``glimpse bench`` does): ``DIR/leaderboard.json``
(schema version, protocol version, package version, machine, command, per env its entries
with the bench :class:`glimpse_env.bench.Result` dicts) and ``DIR/leaderboard.md`` (one
table per env; :mod:`train.leaderboard_md` renders it). The project's own leaderboard is
``docs/leaderboard.md`` and ``docs/leaderboard.json`` (``--out docs``; the command that
regenerates it is in the file).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import UsageError
from train.leaderboard_entries import PENDING, pending_entries, trained_entries
from train.leaderboard_md import (
    BENCH_DOC,
    PAPER_MARK,
    TRAINED,
    bench_doc_link,
    markdown_leaderboard,
)

__all__ = [
    "BENCH_DOC",
    "PAPER",
    "PAPER_MARK",
    "PENDING",
    "TRAINED",
    "ChancePolicy",
    "PaperRow",
    "bench_doc_link",
    "markdown_leaderboard",
    "paper_entries",
    "pending_entries",
    "trained_entries",
]

#: Version of the layout of ``leaderboard.json``.
SCHEMA_VERSION = 1
JSON_FILE = "leaderboard.json"
MARKDOWN_FILE = "leaderboard.md"
#: The bench's reset seed, and the seed of the chance policy's draws.
SEED = 0
PAPER_SOURCE = (
    'V. Mnih, N. Heess, A. Graves, K. Kavukcuoglu, "Recurrent Models of Visual Attention", '
    "NIPS 2014 (arXiv:1406.6247), Tables 1 and 2 of the NIPS version"
)


# --------------------------------------------------------------------------- paper
@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's results.

    Attributes:
        model: the row as the paper names it.
        error_percent: the test error the paper reports, in percent.
        table: the paper's table and sub-table (e.g. ``"Table 1, 28x28 MNIST"``).
        glimpses: the number of glimpses of a RAM row (None for a full-image baseline).
    """

    model: str
    error_percent: float
    table: str
    glimpses: int | None = None


def _paper_rows() -> dict[str, tuple[PaperRow, ...]]:
    """:data:`PAPER` from the one table of the paper's numbers,
    :data:`train.reproduce_rows.PAPER` (which ``glimpse reproduce`` uses too)."""
    from glimpse_env.registration import spaces_of
    from train import reproduce_rows

    rows: dict[str, tuple[PaperRow, ...]] = {}
    for task, (table, title, env_id) in reproduce_rows.TASKS.items():
        source = f"Table {table}, {title}"
        scales, size, _ = spaces_of(env_id, {})[0]["glimpse"].shape
        retina = f"{size}x{size}, {scales} scale{'s' if scales > 1 else ''}"
        rows[env_id] = tuple(
            PaperRow(reproduce_rows.BASELINE_NAMES[model], error, source)
            if model in reproduce_rows.BASELINE_NAMES
            else PaperRow("RAM, 8 random glimpses", error, source, 8)
            if model == "random8"
            else PaperRow(f"RAM, {model} glimpses, {retina}", error, source, int(model))
            for model, error in reproduce_rows.PAPER[task].items()
        )
    return rows


#: The paper's test errors per env (source: :data:`PAPER_SOURCE`): every row of the table of
#: the env's benchmark, the full-image baselines (FC, convolutional, not glimpse-limited) and
#: RAM with each number of glimpses. The paper gives no intervals, anytime figures, glimpse
#: positions or parameters.
PAPER: dict[str, tuple[PaperRow, ...]] = _paper_rows()


def paper_entries(env_id: str) -> list[dict[str, Any]]:
    """The paper's rows for ``env_id`` as leaderboard entries (``kind`` ``"paper"``)."""
    return [
        {
            "entry": f"paper: {row.model}",
            "kind": "paper",
            "note": PAPER_MARK,
            "source": f"{row.table}, row '{row.model}'",
            "glimpses": row.glimpses,
            "error_percent": row.error_percent,
            "accuracy": round(1.0 - row.error_percent / 100.0, 6),
        }
        for row in PAPER.get(env_id, ())
    ]


# --------------------------------------------------------------------------- chance
class ChancePolicy:
    """Chance: uniformly random glimpse places, a uniformly random class.

    The actions of step ``t`` of the ``b``-th batch of episodes (the ``b``-th call of
    :meth:`initial_state`) are drawn from ``np.random.default_rng((seed, b, t))``: a pure
    function of ``(seed, b, t)`` and the batch size, the same in every run. The
    ``deterministic`` flag changes nothing (chance has no mean action).

    Attributes:
        n_classes: the classes to choose among.
        seed: the seed of every draw.
        n_parameters: 0.
    """

    name = "chance"
    n_parameters = 0

    def __init__(self, n_classes: int = 10, seed: int = SEED) -> None:
        self.n_classes, self.seed = n_classes, seed
        self._batches = 0

    def initial_state(self, num_envs: int) -> tuple[int, int]:
        """``(batch number, step)`` of ``num_envs`` fresh episodes."""
        self._batches += 1
        return self._batches - 1, 0

    def act(
        self, obs: dict[str, np.ndarray], state: tuple[int, int], deterministic: bool
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """Actions ``(N, 2 + n_classes)`` float32: ``x, y`` uniform in [-1, 1], then the
        one-hot scores of a uniformly random class; the next state."""
        batch, t = state
        n = len(obs["location"])
        rng = np.random.default_rng((self.seed, batch, t))
        locations = rng.uniform(-1.0, 1.0, size=(n, 2))
        classes = rng.integers(0, self.n_classes, size=n)
        scores = np.eye(self.n_classes)[classes]
        return np.concatenate([locations, scores], axis=1).astype(np.float32), (batch, t + 1)


# --------------------------------------------------------------------------- command
def register(subparsers: Any) -> None:
    """Add ``leaderboard`` to the subcommands of ``glimpse bench``."""
    from glimpse_env.registration import ENV_IDS
    from train.bench import _positive

    parser = subparsers.add_parser(
        "leaderboard",
        help="the reference entries of every env: chance, the shipped RAM, the paper",
        description=(
            "Benchmark chance and the shipped RAM model on every env (GlimpseBench-v1) and "
            "add the paper's numbers; writes DIR/leaderboard.json and DIR/leaderboard.md."
        ),
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    parser.add_argument(
        "--env",
        choices=(*ENV_IDS, "all"),
        default="all",
        metavar="ID|all",
        help="env id, or all: every registered id (default: all)",
    )
    parser.add_argument("--n-images", type=_positive, default=None, help="first N test images")
    parser.add_argument("--num-envs", type=_positive, default=500, help="episodes stepped together")
    parser.add_argument("--data-dir", default=None, help="MNIST folder")
    parser.add_argument(
        "--entries",
        nargs="+",
        default=[],
        metavar="RESULT",
        help="glimpse bench results of trained entries (result.json files, or folders: "
        "every result.json in or below them), one per training seed, grouped by label: mean, "
        "IQM with its bootstrap interval (rliable)",
    )
    parser.add_argument(
        "--reps", type=_positive, default=10000, help="bootstrap replications (rliable)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Benchmark every reference entry of the chosen envs and write the leaderboard."""
    from glimpse_env.registration import ENV_IDS
    from train.common import check_images

    check_images(args.n_images, "test", "--n-images")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder")
    env_ids = list(ENV_IDS) if args.env == "all" else [args.env]
    trained = trained_entries(args.entries, args.reps) if args.entries else {}
    _check_protocol(trained, args.n_images)
    report = _new_report(args)
    for env_id in env_ids:
        own = trained.get(env_id, [])
        measured = [e["training"]["key"] for e in own if e["training"]]
        report["envs"][env_id] = {
            "entries": [
                *_measured_entries(env_id, args),
                *own,
                *paper_entries(env_id),
                *pending_entries(env_id, measured),
            ]
        }
        _write(out, report)
        print(f"{env_id}: {_summary(report['envs'][env_id])}", flush=True)
    return 0


def _check_protocol(trained: dict[str, list[dict[str, Any]]], n_images: int | None) -> None:
    """Refuse trained entries measured otherwise than the board: on other images or with
    sampled actions.

    Raises:
        UsageError: naming the entry and how to measure it for this board.
    """
    from train.common import SPLIT_SIZES

    wanted = SPLIT_SIZES["test"] if n_images is None else n_images
    for env_id, entries in trained.items():
        for e in entries:
            if e["n_images"] != wanted or e["mode"] != "deterministic":
                raise UsageError(
                    f"--entries: {e['entry']!r} on {env_id} was benchmarked on "
                    f"{e['n_images']:,} images ({e['mode']}), this leaderboard on "
                    f"{wanted:,} (deterministic); rerun glimpse bench on its runs with "
                    f"--n-images {wanted} --mode deterministic, or leave it out"
                )


def _new_report(args: argparse.Namespace) -> dict[str, Any]:
    from glimpse_env.bench import PROTOCOL
    from train.bench import _package_version
    from train.machine_info import cpu_info

    parts = ["glimpse", "bench", "leaderboard", "--env", args.env]
    if args.n_images is not None:
        parts += ["--n-images", str(args.n_images)]
    if args.entries:
        parts += ["--entries", *map(str, args.entries)]
        if args.reps != 10000:
            parts += ["--reps", str(args.reps)]
    return {
        "schema_version": SCHEMA_VERSION,
        "protocol": PROTOCOL,
        "package_version": _package_version(),
        "machine": cpu_info(),
        "command": shlex.join([*parts, "--out", str(args.out)]),
        "mode": "deterministic",
        "seed": SEED,
        "n_images": args.n_images,
        "paper_source": PAPER_SOURCE,
        "envs": {},
    }


def _measured_entries(env_id: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Chance and the shipped RAM model on ``env_id``, measured."""
    from agents.pretrained import available
    from glimpse_env.bench import BenchPolicyError, evaluate
    from train.bench import count_parameters, load_spec
    from train.errors import GlimpseError

    data = {"data_dir": args.data_dir} if args.data_dir else {}
    candidates: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("chance", "chance", ChancePolicy(), data)
    ]
    spec = f"pretrained:{env_id}"
    if env_id in available():
        policy, kwargs, _ = load_spec(spec, env_id, args.data_dir, "cpu")
        candidates.append(("RAM, shipped weights", spec, policy, kwargs))
    entries = []
    for entry_name, name, policy, kwargs in candidates:
        try:
            result = evaluate(
                policy,
                env_id,
                n_images=args.n_images,
                num_envs=args.num_envs,
                seeds=(SEED,),
                env_kwargs=kwargs,
                name=name,
                progress=sys.stderr.isatty(),
            ).to_dict()
        except BenchPolicyError as exc:
            raise GlimpseError(f"{env_id}: {exc}") from exc
        if result["n_parameters"] is None:
            result["n_parameters"] = count_parameters(policy)
        entries.append({"entry": entry_name, "kind": "measured", "spec": name, "result": result})
    return entries


def _summary(env: dict[str, Any]) -> str:
    parts = [
        f"{e['entry']} {100 * e['result']['accuracy']:.2f}% ({e['result']['wall_seconds']:.1f} s)"
        for e in env["entries"]
        if e["kind"] == "measured"
    ]
    return ", ".join(parts)


# --------------------------------------------------------------------------- files
def _write(out: Path, report: dict[str, Any]) -> None:
    from train.bench import _atomic_write

    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    _atomic_write(out / JSON_FILE, lambda tmp: Path(tmp).write_text(text))
    markdown = markdown_leaderboard(report, bench_doc_link(out))
    _atomic_write(out / MARKDOWN_FILE, lambda tmp: Path(tmp).write_text(markdown))
