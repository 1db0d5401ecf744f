"""The rows of Tables 1-2 of Mnih et al. (2014) as data, each with the command that trains it.

Every row of the paper's tables is a :class:`Row`: the RAM rows (``glimpse train ram --preset
...``), the "RAM, 8 random glimpses" ablation (``--preset <task>-random8``, a random location
policy) and the supervised baselines (``glimpse train baseline --arch fc64|fc256|conv``).
``glimpse reproduce`` (:mod:`train.reproduce`) runs and records them; this module holds only
the table: the paper's numbers, the row ids and the training arguments.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from train.errors import UsageError

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
    def task_name(self) -> str:
        """The task as the tables describe it (e.g. ``"28x28 MNIST"``)."""
        return TASKS[self.task][1]

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
    ) -> list[str]:
        """Arguments of ``glimpse`` (from ``train`` on) that run this row.

        Args:
            run_dir: the run folder.
            threads: torch threads (None: torch's default).
            max_minutes: wall-clock cap (None: none).
            epochs: override the row's epochs.
            extra: further arguments, appended last (they win over earlier ones).

        Returns:
            The argument list.
        """
        args = ["train", *self.args]
        if epochs is not None:  # the row's own --epochs value replaced
            args[args.index("--epochs") + 1] = f"{epochs:g}"
        if threads is not None:
            args += ["--threads", str(threads)]
        if max_minutes is not None:
            args += ["--max-minutes", f"{max_minutes:g}"]
        args += ["--run-dir", str(run_dir), *extra]
        return args


def _build_rows() -> tuple[Row, ...]:
    rows: list[Row] = []
    for task, (table, _, env_id) in TASKS.items():
        paper = PAPER[task]
        for arch in ("fc64", "fc256", "conv"):
            if arch in paper:
                epochs = f"{BASELINE_EPOCHS:g}"
                args = ("baseline", "--arch", arch, "--env", env_id, "--epochs", epochs)
                rows.append(Row(f"t{table}-{task}-{arch}", table, task, arch, paper[arch], args))
        for t in RAM_GLIMPSES[task]:
            short = task == "mnist" and t != 7
            epochs = f"{RAM_EPOCHS_MNIST_SHORT if short else RAM_EPOCHS:g}"
            args = ("ram", "--preset", f"{task}-{t}", "--epochs", epochs)
            rows.append(Row(f"t{table}-{task}-{t}", table, task, str(t), paper.get(t), args))
        if task in RANDOM_ROWS:
            args = ("ram", "--preset", f"{task}-random8", "--epochs", f"{RAM_EPOCHS:g}")
            row_id = f"t{table}-{task}-random8"
            rows.append(Row(row_id, table, task, "random8", paper.get("random8"), args))
    return tuple(rows)


#: Every row, in table order.
ROWS: tuple[Row, ...] = _build_rows()
ROWS_BY_ID: dict[str, Row] = {row.id: row for row in ROWS}


def get_row(row_id: str) -> Row:
    """The row with this id.

    Raises:
        UsageError: on an unknown id (the message suggests the closest one).
    """
    if row_id in ROWS_BY_ID:
        return ROWS_BY_ID[row_id]
    close = difflib.get_close_matches(row_id, ROWS_BY_ID, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(f"unknown row {row_id!r}; {hint}'glimpse reproduce --list' lists the rows")


def select_rows(row_ids: Sequence[str], tables: Sequence[int]) -> list[Row]:
    """The rows named by ``--row`` and ``--table``, in table order, without duplicates.

    Raises:
        UsageError: on an unknown row id.
    """
    wanted = {get_row(row_id).id for row_id in row_ids}
    return [row for row in ROWS if row.id in wanted or row.table in tables]
