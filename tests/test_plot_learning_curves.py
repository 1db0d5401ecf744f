"""``benchmarks/plot_learning_curves.py`` on a PPO run folder (metrics.csv, eval.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import import_benchmark

pytest.importorskip("matplotlib")
pytest.importorskip("tensorboard")


def test_ppo_run_curves_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("plot_learning_curves", monkeypatch)
    run = tmp_path / "rppo"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"agent": "recurrent_ppo", "env_id": "X-v0"}))
    (run / "eval.json").write_text(json.dumps({"error_rate": 0.25}))
    (run / "metrics.csv").write_text(
        "step,success_rate,eval_accuracy\n0,,0.1\n1000,0.3,\n2000,0.5,0.6\n"
    )
    assert script.sb3_curves(run) == ([0, 2000], [0.1, 0.6], [1000, 2000], [0.3, 0.5])
    out = tmp_path / "curve.png"
    monkeypatch.setattr(sys, "argv", ["plot", str(run), "--out", str(out), "--title", "t"])
    script.main()
    assert out.stat().st_size > 0


def test_validation_held_out_reads_the_training_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = import_benchmark("plot_learning_curves", monkeypatch)
    assert script.validation_held_out(tmp_path)  # no config.json: the default split
    (tmp_path / "config.json").write_text(json.dumps({"split": "train"}))
    assert script.validation_held_out(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"split": "train_full"}))
    assert not script.validation_held_out(tmp_path)
