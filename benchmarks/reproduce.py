"""Reproduce Tables 1-2 of Mnih et al. (2014), row by row, into one Markdown report.

Every row of the paper's tables is a row here: the RAM rows (``glimpse train ram --preset
...``), the "RAM, 8 random glimpses" ablation (``--location-policy random``) and the
supervised baselines (``glimpse train baseline --arch fc64|fc256|conv``). Each row runs
alone, as the real training command in a subprocess; its ``eval.json`` and checkpoint are
then read back and one JSON per row is written (atomically) to ``--out-dir``, from which
``README.md`` beside them (the tables) is regenerated. Rows without a JSON show "not run".

Usage (1 torch thread by default, as for every CPU benchmark of this project)::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/reproduce.py --list
    python benchmarks/reproduce.py --row t1-mnist-7                # one row
    python benchmarks/reproduce.py --table 2 --max-minutes 60       # a table, 1 h per row
    python benchmarks/reproduce.py --row t2-cluttered60-8 --dry-run # print the command only
    python benchmarks/reproduce.py --from-run t1-mnist-7 runs/mnist7-b  # record a run made by hand
    python benchmarks/reproduce.py --report                         # regenerate README.md only

Options: ``--threads N`` (torch threads of the training, default 1), ``--max-minutes M``
(wall-clock cap per row, passed to the training command: the run then stops cleanly and
the row says "capped"), ``--epochs E`` (override every row's epochs), ``--extra "ARGS"``
(appended to every training command, e.g. ``--extra="--test-images 1000"``), ``--runs-dir``
(run folders, default ``runs/reproduce/<row>``), ``--out-dir`` (row JSONs, GIFs and the
report, default ``benchmarks/results/reproduce``), ``--no-render`` (no glimpse animation).

What a row records: the paper's test error, this project's test error (deterministic:
mean locations, one rollout per image, the whole test split unless the command says
otherwise; for the random-glimpse rows a fixed seeded random draw), the sampled-rollout
error (RAM), the glimpse count, the parameter count (computed from the trained model
loaded from its checkpoint), the training wall-clock, the iterations and epochs reached,
whether the wall-clock cap stopped it, and the exact command. RAM rows also get a glimpse
animation (``gifs/<row>.gif`` and a PNG grid) of the trained agent on six test digits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere: import the project
    sys.path.insert(0, str(REPO))

DEFAULT_OUT_DIR = Path("benchmarks/results/reproduce")
DEFAULT_RUNS_DIR = Path("runs/reproduce")

#: The benchmarks of the paper: key -> (table, description, env id).
TASKS: dict[str, tuple[int, str, str]] = {
    "mnist": (1, "28x28 MNIST", "GlimpseMNIST-v0"),
    "translated": (1, "60x60 translated MNIST", "GlimpseTranslatedMNIST-v0"),
    "cluttered60": (2, "60x60 cluttered MNIST (4 pieces)", "GlimpseClutteredMNIST-v0"),
    "cluttered100": (2, "100x100 cluttered MNIST (8 pieces)", "GlimpseClutteredMNIST100-v0"),
}

#: Table titles (the paper groups 28x28 with translated, and the two cluttered sizes).
TABLE_TITLES: dict[int, str] = {
    1: "Table 1: 28x28 MNIST and 60x60 translated MNIST",
    2: "Table 2: 60x60 and 100x100 cluttered MNIST",
}

#: The paper's test errors (%), NIPS 2014 version (Tables 1-2 of Mnih et al.):
#: task -> model -> error. Models: ``fc64``, ``fc256``, ``conv`` (baselines), an int (RAM
#: with that many glimpses), ``random8`` (RAM, 8 random glimpses).
PAPER: dict[str, dict[str | int, float]] = {
    "mnist": {"fc256": 1.69, "conv": 1.21, 2: 3.79, 3: 1.51, 4: 1.54, 5: 1.34, 6: 1.12, 7: 1.07},
    "translated": {"fc64": 6.42, "fc256": 2.63, "conv": 1.62, 4: 1.54, 6: 1.22, 8: 1.2},
    "cluttered60": {
        "fc64": 28.58,
        "fc256": 11.96,
        "conv": 8.09,
        4: 4.96,
        6: 4.08,
        8: 4.04,
        "random8": 14.4,
    },
    "cluttered100": {"conv": 14.35, 4: 9.41, 6: 8.31, 8: 8.11, "random8": 28.4},
}

#: Baseline names in the tables.
BASELINE_NAMES: dict[str, str] = {
    "fc64": "FC, 2 layers of 64",
    "fc256": "FC, 2 layers of 256",
    "conv": "Conv, 2 layers",
}

#: RAM rows of each task (the glimpse counts of the paper, and this project's presets),
#: and whether the task has a random-glimpse row.
RAM_GLIMPSES: dict[str, tuple[int, ...]] = {
    "mnist": (2, 3, 4, 5, 6, 7),
    "translated": (4, 6, 8),
    "cluttered60": (4, 6, 8),
    "cluttered100": (4, 6, 8),
}
RANDOM_ROWS: tuple[str, ...] = ("translated", "cluttered60", "cluttered100")

#: Epochs of each kind of row (this project's recipes: README; the RAM rows other than
#: the 7-glimpse one ran 80 epochs on 28x28; 150 is ``glimpse train ram``'s default).
RAM_EPOCHS: float = 150.0
RAM_EPOCHS_MNIST_SHORT: float = 80.0
BASELINE_EPOCHS: float = 20.0


@dataclass(frozen=True)
class Row:
    """One row of the paper's tables and the training command that reproduces it.

    Attributes:
        id: row id, ``t<table>-<task>-<model>`` (e.g. ``t1-mnist-7``).
        table: the paper's table (1 or 2).
        task: key of :data:`TASKS`.
        model: ``fc64`` / ``fc256`` / ``conv``, the glimpse count as a string, or
            ``random8``.
        paper: the paper's test error in %, None when the paper has no such row.
        args: arguments after ``glimpse train`` (without run folder, threads and cap).
    """

    id: str
    table: int
    task: str
    model: str
    paper: float | None
    args: tuple[str, ...]

    @property
    def kind(self) -> str:
        """``"ram"`` or ``"baseline"``."""
        return self.args[0]

    @property
    def env_id(self) -> str:
        """The environment id of the row's task."""
        return TASKS[self.task][2]

    @property
    def glimpses(self) -> int | None:
        """Glimpses per image (None for a baseline, which sees the whole canvas)."""
        if self.kind == "baseline":
            return None
        return 8 if self.model == "random8" else int(self.model)

    @property
    def location_policy(self) -> str | None:
        """``"learned"`` or ``"random"`` for RAM rows, None for baselines."""
        if self.kind == "baseline":
            return None
        return "random" if self.model == "random8" else "learned"

    @property
    def label(self) -> str:
        """The model as the tables name it."""
        if self.kind == "baseline":
            return BASELINE_NAMES[self.model]
        if self.model == "random8":
            return "RAM, 8 random glimpses"
        return f"RAM, {self.model} glimpses"

    def train_args(
        self,
        run_dir: str | os.PathLike[str],
        threads: int | None = 1,
        max_minutes: float | None = None,
        epochs: float | None = None,
        extra: Sequence[str] = (),
        cap_supported: bool = True,
    ) -> list[str]:
        """Arguments of ``glimpse`` (from ``train`` on) that run this row.

        Args:
            run_dir: the run folder.
            threads: torch threads (None: torch's default).
            max_minutes: wall-clock cap (None: none).
            epochs: override the row's epochs.
            extra: further arguments, appended last (they win over earlier ones).
            cap_supported: whether the training command knows ``--max-minutes``.

        Returns:
            The argument list.
        """
        args = ["train", *self.args]
        if epochs is not None:  # the row's own --epochs value replaced
            args[args.index("--epochs") + 1] = f"{epochs:g}"
        if threads is not None:
            args += ["--threads", str(threads)]
        if max_minutes is not None and cap_supported:
            args += ["--max-minutes", f"{max_minutes:g}"]
        args += ["--run-dir", str(run_dir), *extra]
        return args


def _build_rows() -> tuple[Row, ...]:
    rows: list[Row] = []
    for task, (table, _, env_id) in TASKS.items():
        paper = PAPER[task]
        for arch in ("fc64", "fc256", "conv"):
            if arch in paper:
                args = ("baseline", "--arch", arch, "--env", env_id, "--epochs", "20")
                rows.append(Row(f"t{table}-{task}-{arch}", table, task, arch, paper[arch], args))
        for t in RAM_GLIMPSES[task]:
            short = task == "mnist" and t != 7
            epochs = RAM_EPOCHS_MNIST_SHORT if short else RAM_EPOCHS
            args = ("ram", "--preset", f"{task}-{t}", "--epochs", f"{epochs:g}")
            rows.append(Row(f"t{table}-{task}-{t}", table, task, str(t), paper.get(t), args))
        if task in RANDOM_ROWS:
            args = ("ram", "--preset", f"{task}-random8", "--epochs", f"{RAM_EPOCHS:g}")
            row_id = f"t{table}-{task}-random8"
            rows.append(Row(row_id, table, task, "random8", paper.get("random8"), args))
    return tuple(rows)


#: Every row, in table order.
ROWS: tuple[Row, ...] = _build_rows()
ROWS_BY_ID: dict[str, Row] = {row.id: row for row in ROWS}


# ------------------------------------------------------------------------------ recording
def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


#: Model sizes a RAM row's label names when a run changed them: config key, and its name.
_SIZE_NAMES = (
    ("glimpse_hidden", "h_g"),
    ("location_hidden", "h_l"),
    ("glimpse_out", "g"),
    ("core_hidden", "h"),
)


def model_label(row: Row, config: dict[str, Any]) -> str:
    """The row's model, naming what the run did differently from the rows' defaults: a core
    network other than the paper's ReLU RNN (e.g. ``"RAM, 8 glimpses, GRU core"``), layer
    sizes other than the paper's (``"h_g 256, h 384"``), a hidden layer in the location
    network, and training on all 60,000 training digits (``split="train_full"``) rather
    than 50,000."""
    from agents.ram import RAMConfig

    label = row.label
    if row.kind == "ram":
        core = config.get("core", "rnn")
        if core != "rnn":
            label += f", {core.upper()} core"
        paper = RAMConfig()
        sizes = [
            f"{name} {config[key]}"
            for key, name in _SIZE_NAMES
            if config.get(key, getattr(paper, key)) != getattr(paper, key)
        ]
        if sizes:
            label += ", " + ", ".join(sizes)
        if config.get("location_mlp_hidden", 0):
            label += f", location MLP {config['location_mlp_hidden']}"
    if config.get("split", "train") == "train_full":
        label += ", 60k training digits"
    return label


def _recorded_model(row: Row, record: dict[str, Any] | None) -> str:
    """The model a row's record names (row records made before ``model_label`` existed,
    and rows not run, show the row's label)."""
    return row.label if record is None else record.get("model", row.label)


def _read_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json``, or the ``config`` its ``eval.json`` carries (shipped weights
    such as ``agents/pretrained/<env>`` keep only the latter)."""
    path = run_dir / "config.json"
    if path.is_file():
        return _read_json(path)
    return dict(_read_json(run_dir / "eval.json")["config"])


def count_model_parameters(run_dir: Path) -> int:
    """Parameters of the trained model in a run folder, counted from its checkpoint.

    Args:
        run_dir: a ``glimpse train ram`` or ``glimpse train baseline`` run folder.

    Returns:
        The number of trainable parameters.
    """
    from agents.checkpoints import load_checkpoint
    from agents.ram import count_parameters

    meta = _read_json(run_dir / "meta.json")
    if meta.get("agent") == "baseline":
        from agents.baselines import load_baseline

        return count_parameters(load_baseline(run_dir).model)
    from agents.ram_policy import build_model

    return count_parameters(build_model(load_checkpoint(run_dir / meta["checkpoint"])))


def command_from_config(run_dir: Path) -> str:
    """An equivalent ``glimpse train`` command rebuilt from a run's ``config.json``.

    Every field that differs from the config's default becomes a flag (for runs recorded
    with ``--from-run``, whose exact command is not known).

    Args:
        run_dir: the run folder.

    Returns:
        The command line.
    """
    from train.baseline import BaselineTrainConfig
    from train.common import config_fields
    from train.ram import RAMTrainConfig

    meta = _read_json(run_dir / "meta.json")
    config = _read_config(run_dir)
    agent = "baseline" if meta.get("agent") == "baseline" else "ram"
    cls: type = BaselineTrainConfig if agent == "baseline" else RAMTrainConfig
    skip = {"run_dir", "progress", "data_dir", "extra_env_kwargs", "stop_after"}
    args = ["glimpse", "train", agent]
    for f in config_fields(cls):  # in --help order
        if f.name in skip or f.name not in config:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        value = config[f.name]
        if value == default or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    args += ["--run-dir", str(run_dir)]
    return shlex.join(args)


def _row_glimpses(meta: dict[str, Any], config: dict[str, Any]) -> int | None:
    """Glimpses per image of a RAM run (None for a baseline)."""
    if meta.get("agent") == "baseline":
        return None
    from glimpse_env.registration import VARIANTS

    n = config.get("n_glimpses")
    return int(n) if n is not None else VARIANTS[meta["env_id"]].env_cls.default_n_glimpses


def check_run_matches(row: Row, run_dir: Path) -> None:
    """Raise if the run folder did not train what the row is about.

    Raises:
        FileNotFoundError: if the run has no ``eval.json`` (not finished).
        ValueError: on a different env, agent, architecture, glimpse count or policy.
    """
    if not (run_dir / "eval.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no eval.json: the run has not finished")
    meta = _read_json(run_dir / "meta.json")
    config = _read_config(run_dir)
    found = {
        "env": meta.get("env_id"),
        "kind": "baseline" if meta.get("agent") == "baseline" else meta.get("agent"),
        "arch": config.get("arch") if meta.get("agent") == "baseline" else None,
        "glimpses": _row_glimpses(meta, config),
        "location_policy": (
            None if meta.get("agent") == "baseline" else config.get("location_policy", "learned")
        ),
    }
    wanted = {
        "env": row.env_id,
        "kind": row.kind,
        "arch": row.model if row.kind == "baseline" else None,
        "glimpses": row.glimpses,
        "location_policy": row.location_policy,
    }
    wrong = {k: (found[k], v) for k, v in wanted.items() if found[k] != v}
    if wrong:
        details = ", ".join(f"{k}: run has {a!r}, row wants {b!r}" for k, (a, b) in wrong.items())
        raise ValueError(f"{run_dir} does not match row {row.id} ({details})")


def render_row(run_dir: Path, out: Path, n: int = 6) -> Path:
    """Glimpse animation of a trained RAM run on the first ``n`` test digits.

    Random-glimpse runs are rendered with their seeded random locations.

    Args:
        run_dir: the run folder.
        out: the GIF to write (a PNG grid of the last frames is written beside it).
        n: number of test digits.

    Returns:
        The GIF written.
    """
    from glimpse_env.rendering import grid, save_gif, save_png
    from train.ram import load_run_policy
    from train.render_cmd import render_policy

    policy = load_run_policy(run_dir)
    frames = render_policy(policy, policy.env_id, n=n, env_kwargs=policy.env_kwargs)
    tiles = [grid(step, 3) for step in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(tiles[-1], out.with_suffix(".png"))
    return Path(save_gif(tiles, out, fps=1.5))


def record_row(
    row: Row,
    run_dir: Path,
    out_dir: Path,
    command: str | None = None,
    total_wall_s: float | None = None,
    render: bool = True,
) -> dict[str, Any]:
    """Read a finished run and write the row's JSON (atomically) into ``out_dir``.

    Args:
        row: the row.
        run_dir: its run folder (with ``eval.json``).
        out_dir: where the row JSONs (and GIFs) go.
        command: the command that made the run (None: rebuilt from ``config.json``).
        total_wall_s: wall-clock of the whole command (training and evaluation), if known.
        render: write the glimpse animation of RAM rows.

    Returns:
        The row's record.
    """
    from agents.checkpoints import write_json

    check_run_matches(row, run_dir)
    evaluation = _read_json(run_dir / "eval.json")
    config = _read_config(run_dir)
    deterministic = evaluation["results"]["deterministic"]
    sampled = evaluation.get("test_error_rate_sampled")
    planned_epochs = float(config["epochs"])
    iterations = int(evaluation["iterations"])
    planned = int(evaluation.get("iterations_planned", iterations))
    epochs = float(evaluation.get("epochs", planned_epochs * iterations / max(planned, 1)))
    gif = None
    if render and row.kind == "ram":
        gif_path = render_row(run_dir, out_dir / "gifs" / f"{row.id}.gif")
        gif = gif_path.relative_to(out_dir).as_posix()
    record = {
        "row": row.id,
        "table": row.table,
        "task": TASKS[row.task][1],
        "model": model_label(row, config),
        "kind": row.kind,
        "env_id": row.env_id,
        "glimpses": row.glimpses,
        "location_policy": row.location_policy,
        "paper_test_error": row.paper,
        "test_error": 100.0 * float(evaluation["test_error_rate"]),
        "test_error_sampled": None if sampled is None else 100.0 * float(sampled),
        "test_images": int(deterministic["n_images"]),
        "parameters": count_model_parameters(run_dir),
        "train_wall_s": float(evaluation["train_wall_s"]),
        "total_wall_s": total_wall_s,
        "iterations": iterations,
        "iterations_planned": planned,
        "epochs": epochs,
        "epochs_planned": planned_epochs,
        "capped": bool(evaluation.get("stopped_early", False)),
        "max_minutes": evaluation.get("max_minutes", config.get("max_minutes")),
        "command": command or command_from_config(run_dir),
        "run_dir": str(run_dir),
        "gif": gif,
        "device": evaluation.get("device"),
        "torch_threads": evaluation.get("torch_threads"),
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(out_dir / f"{row.id}.json", record)
    return record


# ------------------------------------------------------------------------------- report
def load_records(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The row JSONs present in ``out_dir``, by row id (files of unknown rows ignored)."""
    records = {}
    for row in ROWS:
        path = out_dir / f"{row.id}.json"
        if path.is_file():
            records[row.id] = _read_json(path)
    return records


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _display_command(row: Row) -> str:
    """The default command of a row not run yet."""
    args = row.train_args(DEFAULT_RUNS_DIR / row.id)
    return shlex.join(["glimpse", *args])


def markdown_table(table: int, records: dict[str, dict[str, Any]]) -> str:
    """One of the paper's tables as Markdown, with this project's numbers where present.

    Args:
        table: 1 or 2.
        records: row records by id (rows without one show "not run").

    Returns:
        The Markdown (a heading and the table).
    """
    lines = [
        f"## {TABLE_TITLES[table]}",
        "",
        "| row | task | model | glimpses | paper | this project | sampled | parameters "
        "| epochs | wall-clock | command |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in ROWS:
        if row.table != table:
            continue
        rec = records.get(row.id)
        glimpses = "-" if row.glimpses is None else str(row.glimpses)
        model = _recorded_model(row, rec)
        head = f"| {row.id} | {TASKS[row.task][1]} | {model} | {glimpses} | {_num(row.paper)}"
        if rec is None:
            lines.append(f"{head} | not run | | | | | `{_display_command(row)}` |")
            continue
        error = _num(rec["test_error"])
        if rec["test_images"] != 10_000:
            error += f" ({rec['test_images']:,} images)"
        epochs = f"{rec['epochs']:.3g}"
        if rec["capped"]:
            epochs += f" of {rec['epochs_planned']:g} (capped at {rec['max_minutes']:g} min)"
        lines.append(
            f"{head} | **{error}** | {_num(rec['test_error_sampled'])} | {rec['parameters']:,} "
            f"| {epochs} | {_minutes(rec['train_wall_s'])} | `{rec['command']}` |"
        )
    return "\n".join(lines)


def render_report(records: dict[str, dict[str, Any]]) -> str:
    """The whole ``README.md`` of the results folder.

    Args:
        records: row records by id.

    Returns:
        The Markdown text.
    """
    done = sum(1 for row in ROWS if row.id in records)
    parts = [
        "# Reproducing Mnih et al. (2014), Tables 1-2",
        "",
        "Generated by `python benchmarks/reproduce.py` from the row JSONs in this folder "
        f"(do not edit by hand); {done} of {len(ROWS)} rows run.",
        "",
        "Test error in %, on the whole test split (10,000 digits) unless said, one rollout "
        "per image: **this project** with the mean locations, *sampled* with one sampled "
        "rollout (never averaged over rollouts). Random-glimpse rows glimpse at a fixed, "
        'seeded uniform random draw of locations (their "deterministic" evaluation), with '
        "a classifier trained on such glimpses. Parameter counts are computed from the "
        "trained models (RAM: glimpse, core, location, action and baseline networks; the "
        "location network of a random-glimpse row is unused). Wall-clock is training only "
        '(validation included, final test evaluation not). Epochs "capped": the run was '
        "stopped by `--max-minutes` before its planned epochs (learning rate not yet "
        'annealed). The paper has no random-glimpse row for translated MNIST ("-").',
    ]
    for table in sorted(TABLE_TITLES):
        parts += ["", markdown_table(table, records)]
    gifs = [(row, records[row.id]["gif"]) for row in ROWS if records.get(row.id, {}).get("gif")]
    if gifs:
        parts += ["", "## Glimpse animations", ""]
        parts += ["Six test digits per trained RAM row, one frame per glimpse.", ""]
        for row, gif in gifs:
            parts += [
                f"**{row.id}** ({TASKS[row.task][1]}, {_recorded_model(row, records[row.id])})",
                "",
                f"![{row.id}]({gif})",
                "",
            ]
    return "\n".join(parts).rstrip() + "\n"


def write_report(out_dir: Path) -> Path:
    """Regenerate ``out_dir/README.md`` from the row JSONs there (atomically)."""
    from agents.checkpoints import atomic_write_bytes

    text = render_report(load_records(out_dir))
    return atomic_write_bytes(out_dir / "README.md", text.encode())


# ---------------------------------------------------------------------------------- running
def _baseline_cap_supported() -> bool:
    """Whether ``glimpse train baseline`` has ``--max-minutes`` (a ``max_minutes`` field)."""
    from train.baseline import BaselineTrainConfig

    return "max_minutes" in {f.name for f in dataclasses.fields(BaselineTrainConfig)}


def run_row(
    row: Row,
    runs_dir: Path,
    out_dir: Path,
    *,
    threads: int | None = 1,
    max_minutes: float | None = None,
    epochs: float | None = None,
    extra: Sequence[str] = (),
    render: bool = True,
    dry_run: bool = False,
) -> dict[str, Any] | None:
    """Train one row with its real command, then record it.

    Args:
        row: the row.
        runs_dir: parent of the run folder (``runs_dir / row.id``).
        out_dir: where the row JSON goes.
        threads: torch threads of the training.
        max_minutes: wall-clock cap of the training.
        epochs: override the row's epochs.
        extra: further training arguments.
        render: write the glimpse animation (RAM rows).
        dry_run: only print the command.

    Returns:
        The row's record (None for a dry run).

    Raises:
        RuntimeError: if the training command fails.
    """
    cap_supported = row.kind == "ram" or _baseline_cap_supported()
    if max_minutes is not None and not cap_supported:
        print(
            f"warning: {row.id}: `glimpse train baseline` has no --max-minutes; "
            "running without a cap",
            flush=True,
        )
    run_dir = runs_dir / row.id
    args = row.train_args(run_dir, threads, max_minutes, epochs, extra, cap_supported)
    command = shlex.join(["glimpse", *args])
    print(f"[{row.id}] {command}", flush=True)
    if dry_run:
        return None
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "train.cli", *args], env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{row.id}: training command failed (exit {proc.returncode})")
    record = record_row(row, run_dir, out_dir, command, total_wall_s=wall, render=render)
    print(
        f"[{row.id}] test error {record['test_error']:.2f}% (paper {_num(row.paper)}), "
        f"{record['parameters']:,} parameters, {_minutes(record['train_wall_s'])}"
        + (" (capped)" if record["capped"] else ""),
        flush=True,
    )
    return record


def select_rows(row_ids: Sequence[str], tables: Sequence[int]) -> list[Row]:
    """The rows named by ``--row`` and ``--table``, in table order, without duplicates.

    Raises:
        SystemExit: on an unknown row id.
    """
    unknown = [r for r in row_ids if r not in ROWS_BY_ID]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; see --list")
    wanted = set(row_ids)
    return [row for row in ROWS if row.id in wanted or row.table in tables]


def list_rows(out_dir: Path) -> str:
    """A plain-text listing of every row, its paper number, status and command."""
    records = load_records(out_dir)
    lines = []
    for row in ROWS:
        rec = records.get(row.id)
        status = "not run" if rec is None else f"{rec['test_error']:.2f}%"
        if rec is not None and rec["capped"]:
            status += " (capped)"
        lines.append(
            f"{row.id:24} paper {_num(row.paper):>6}  here {status:17} {_display_command(row)}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:3]),
    )
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument(
        "--row", action="append", default=[], metavar="ID", help="run this row (repeatable)"
    )
    parser.add_argument(
        "--table", action="append", type=int, default=[], choices=(1, 2), help="run a table"
    )
    parser.add_argument(
        "--from-run",
        nargs=2,
        action="append",
        default=[],
        metavar=("ROW_ID", "RUN_DIR"),
        help="record a finished run folder as this row (repeatable)",
    )
    parser.add_argument(
        "--command", default=None, help="with one --from-run: the command that made the run"
    )
    parser.add_argument("--report", action="store_true", help="only regenerate README.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock cap per row (training)"
    )
    parser.add_argument("--epochs", type=float, default=None, help="override every row's epochs")
    parser.add_argument(
        "--extra",
        default="",
        help='arguments appended to every training command, e.g. --extra="--lr 1e-3"',
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="row JSONs, report")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="run folders")
    parser.add_argument("--no-render", action="store_true", help="no glimpse animations")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run / record the selected rows, then regenerate the report.

    Returns:
        0 if every selected row succeeded, else 1.
    """
    args = build_parser().parse_args(argv)
    if args.list:
        print(list_rows(args.out_dir))
        return 0
    rows = select_rows(args.row, args.table)
    if not rows and not args.from_run and not args.report:
        build_parser().print_usage()
        print("nothing to do: give --row, --table, --from-run, --report or --list")
        return 2
    if args.command is not None and len(args.from_run) != 1:
        raise SystemExit("--command goes with exactly one --from-run")
    failed = []
    for row_id, run_dir in args.from_run:
        if row_id not in ROWS_BY_ID:
            raise SystemExit(f"unknown row {row_id!r}; see --list")
        try:
            record = record_row(
                ROWS_BY_ID[row_id],
                Path(run_dir),
                args.out_dir,
                args.command,
                render=not args.no_render,
            )
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed.append(row_id)
            continue
        print(f"[{row_id}] recorded {run_dir}: test error {record['test_error']:.2f}%")
    for row in rows:
        try:
            run_row(
                row,
                args.runs_dir,
                args.out_dir,
                threads=args.threads,
                max_minutes=args.max_minutes,
                epochs=args.epochs,
                extra=shlex.split(args.extra),
                render=not args.no_render,
                dry_run=args.dry_run,
            )
        except (RuntimeError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed.append(row.id)
    if not args.dry_run:
        report = write_report(args.out_dir)
        print(f"wrote {report}")
    if failed:
        print(f"failed rows: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
