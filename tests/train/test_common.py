"""Run-folder helpers: metric logs that survive kills and resumes."""

from __future__ import annotations

import csv
from pathlib import Path

from train.common import MetricLogger


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_new_metric_adds_a_column(tmp_path: Path) -> None:
    log = MetricLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": 1.0})
    log.log(2, {"loss": 0.5, "val_accuracy": 0.9})
    log.close()
    rows = _read(tmp_path / "metrics.csv")
    assert rows == [
        {"step": "1", "loss": "1.0", "val_accuracy": ""},
        {"step": "2", "loss": "0.5", "val_accuracy": "0.9"},
    ]


def test_resume_drops_rows_after_the_checkpoint(tmp_path: Path) -> None:
    log = MetricLogger(tmp_path, tensorboard=False)
    for step in range(1, 6):
        log.log(step, {"loss": float(step)})
    log.close()
    resumed = MetricLogger(tmp_path, resume_step=3, tensorboard=False)
    resumed.log(4, {"loss": 40.0})
    resumed.close()
    assert [r["step"] for r in _read(tmp_path / "metrics.csv")] == ["1", "2", "3", "4"]
    assert _read(tmp_path / "metrics.csv")[-1]["loss"] == "40.0"


def test_fresh_run_replaces_an_old_log(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("step,loss\n9,9\n")
    log = MetricLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": 1.0})
    log.close()
    assert [r["step"] for r in _read(tmp_path / "metrics.csv")] == ["1"]


def test_training_splits_and_held_out_validation() -> None:
    from train.common import TRAINING_SPLITS, training_split_notice, validation_held_out

    assert TRAINING_SPLITS == ("train", "train_full")
    assert validation_held_out("train") and not validation_held_out("train_full")
    assert training_split_notice("train") is None
    assert "contains the validation digits" in (training_split_notice("train_full") or "")
