"""The Markdown report of ``glimpse reproduce``: the paper's tables with this project's numbers.

The row records (one JSON per row, written by :func:`train.reproduce.record_row`) live in
one folder; :func:`write_report` regenerates ``README.md`` beside them, and
:func:`list_rows` is the plain-text listing of ``glimpse reproduce --list``. Rows without a
record show "not run" and the command that would run them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from train.reproduce_rows import ROWS, TABLE_TITLES, Row

#: Where ``glimpse reproduce`` writes the row records and the report, and the run folders.
DEFAULT_OUT_DIR = Path("benchmarks/results/reproduce")
DEFAULT_RUNS_DIR = Path("runs/reproduce")

#: Model sizes a RAM row's label names when a run changed them: config key, and its name.
_SIZE_NAMES = (
    ("glimpse_hidden", "h_g"),
    ("location_hidden", "h_l"),
    ("glimpse_out", "g"),
    ("core_hidden", "h"),
)


def model_label(row: Row, config: dict[str, Any]) -> str:
    """The row's model, naming what a run did differently from the rows' defaults.

    Named: a core network other than the paper's ReLU RNN (e.g. ``"RAM, 8 glimpses, GRU
    core"``), layer sizes other than the paper's (``"h_g 256, h 384"``), a hidden layer in
    the location network, and training on all 60,000 training digits (``split="train_full"``)
    rather than 50,000.

    Args:
        row: the row.
        config: the run's saved training config (``config.json``).

    Returns:
        The label of the ``model`` column.
    """
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


def recorded_model(row: Row, record: dict[str, Any] | None) -> str:
    """The model a row's record names (records made before ``model`` was recorded, and rows
    not run, show the row's label)."""
    return row.label if record is None else record.get("model", row.label)


def load_records(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The row records present in ``out_dir``, by row id (files of unknown rows ignored)."""
    records = {}
    for row in ROWS:
        path = out_dir / f"{row.id}.json"
        if path.is_file():
            records[row.id] = json.loads(path.read_text())
    return records


def number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``"-"`` for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def minutes(seconds: float | None) -> str:
    """``seconds`` as ``"12.3 min"``, ``"-"`` for None."""
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def display_command(row: Row) -> str:
    """The default command of a row (shown for rows not run yet)."""
    return shlex.join(["glimpse", *row.train_args(DEFAULT_RUNS_DIR / row.id)])


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
        model = recorded_model(row, rec)
        head = f"| {row.id} | {row.task_name} | {model} | {glimpses} | {number(row.paper)}"
        if rec is None:
            lines.append(f"{head} | not run | | | | | `{display_command(row)}` |")
            continue
        error = number(rec["test_error"])
        if rec["test_images"] != 10_000:
            error += f" ({rec['test_images']:,} images)"
        epochs = f"{rec['epochs']:.3g}"
        if rec["capped"]:
            epochs += f" of {rec['epochs_planned']:g} (capped at {rec['max_minutes']:g} min)"
        lines.append(
            f"{head} | **{error}** | {number(rec['test_error_sampled'])} | "
            f"{rec['parameters']:,} | {epochs} | {minutes(rec['train_wall_s'])} | "
            f"`{rec['command']}` |"
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
        "Generated by `glimpse reproduce` from the row JSONs in this folder "
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
            model = recorded_model(row, records[row.id])
            parts += [f"**{row.id}** ({row.task_name}, {model})", "", f"![{row.id}]({gif})", ""]
    return "\n".join(parts).rstrip() + "\n"


def write_report(out_dir: Path) -> Path:
    """Regenerate ``out_dir/README.md`` from the row records there (atomically).

    Returns:
        The file written.
    """
    from agents.checkpoints import atomic_write_bytes

    text = render_report(load_records(out_dir))
    return Path(atomic_write_bytes(out_dir / "README.md", text.encode()))


def list_rows(out_dir: Path) -> str:
    """A plain-text listing of every row: its paper number, the result recorded in
    ``out_dir`` (if any) and the default command (what ``--row`` runs).

    A recorded result comes from the command named in the row's record, which may differ
    from the default command (e.g. a longer or wider run); the note under the listing says so.
    """
    records = load_records(out_dir)
    lines = [f"{'row':24} {'paper':>6}  {'recorded result':17} default command (--row runs it)"]
    for row in ROWS:
        rec = records.get(row.id)
        status = "not run" if rec is None else f"{rec['test_error']:.2f}%"
        if rec is not None and rec["capped"]:
            status += " (capped)"
        lines.append(f"{row.id:24} {number(row.paper):>6}  {status:17} {display_command(row)}")
    lines += [
        "",
        "paper: test error (%) in Mnih et al. (2014). recorded result: test error of the record "
        f"{out_dir}/<row>.json, made by the command that record names (listed in "
        f"{out_dir}/README.md), which can differ from the default command.",
    ]
    return "\n".join(lines)
