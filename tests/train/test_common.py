"""Shared command pieces: metric logs that survive kills and resumes, training splits, and
the one way a config dataclass becomes flags."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

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


# ------------------------------------------------------------------ config to flags
def test_every_field_is_a_checked_flag(capsys: pytest.CaptureFixture) -> None:
    """Bounds, choices, booleans and int lists come from the dataclass; fields that are not
    flags (dicts) are left out; inherited fields form groups; ``--help`` shows the
    attribute docstrings."""
    import argparse
    from dataclasses import dataclass, field

    from train.common import EnvOptions, add_config_flags, flag_values

    @dataclass
    class Config(EnvOptions):
        """A config."""

        size: int = field(default=3, metadata={"ge": 1, "le": 9})
        """Size of it."""
        kind: str = field(default="a", metadata={"choices": ("a", "b")})
        """Kind of it."""
        layers: tuple[int, ...] = (4,)
        """Layers."""
        fast: bool = True
        """Go fast."""
        extra: dict[str, int] = field(default_factory=dict)
        """Not a flag."""

    parser = argparse.ArgumentParser(prog="x")
    add_config_flags(parser, Config)
    args = parser.parse_args(["--size", "9", "--layers", "8,8", "--no-fast", "--n-scales", "2"])
    given = flag_values(args, Config)
    assert given == {"size": 9, "layers": (8, 8), "fast": False, "n_scales": 2}
    assert not hasattr(args, "extra")
    assert Config(**given).env_kwargs() == {"start": "random", "reward": "sparse", "n_scales": 2}
    for bad in (["--size", "10"], ["--size", "x"], ["--kind", "c"], ["--layers", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert "<= 9" in capsys.readouterr().err
    text = parser.format_help()
    assert "Size of it. (default: 3; >= 1 and <= 9)" in text
    assert "The env's own settings" in text and "Not a flag" not in text


def test_config_values_are_checked_when_built() -> None:
    """A config read back from config.json (or built in Python) is checked like the flags."""
    from train.common import EnvOptions, RunOptions

    with pytest.raises(ValueError, match="--start must be one of random, center"):
        EnvOptions(start="corner")
    with pytest.raises(ValueError, match="--seed must be an integer >= 0 and <= 4294967295"):
        RunOptions(seed=-1)
    with pytest.raises(TypeError, match="colour"):
        RunOptions.from_dict({"colour": "blue"})
    assert RunOptions.from_dict({"extra_env_kwargs": {}, "seed": 3}).seed == 3  # retired key
