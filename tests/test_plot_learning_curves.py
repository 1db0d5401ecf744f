"""``benchmarks/plot_learning_curves.py`` on a PPO run folder (metrics.csv, eval.json)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tensorboard")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "plot_learning_curves.py"


def _load_script(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("plot_learning_curves", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_ppo_run_curves_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _load_script(monkeypatch)
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
