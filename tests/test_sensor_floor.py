"""``benchmarks/sensor_floor.py``: the compiled parts of a native vector env step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_measure_adds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("sensor_floor", monkeypatch)
    result = script.measure("GlimpseClutteredMNIST100-v0", 4, calls=7)
    assert result["num_envs"] == 4 and result["steps_per_episode"] == 8
    for key in ("step_us", "draw_us", "table_us", "glimpse_us"):
        assert result[key] > 0.0
    assert result["cycle_us"] == pytest.approx(8 * result["step_us"])
    parts = result["draw_us"] + result["table_us"] + 8 * result["glimpse_us"]
    assert result["cycle_compute_us"] == pytest.approx(parts)
    assert result["env_steps_per_s"] == pytest.approx(4 / result["step_us"] * 1e6)


def test_main_writes_json_with_the_ratio_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("sensor_floor", monkeypatch)
    recorded = tmp_path / "env_throughput.json"
    sync = {"vector_env_steps_per_s": {"GlimpseMNIST-v0": {"sync_vector_env_n2": 1000.0}}}
    recorded.write_text(json.dumps(sync))
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    fake = {"steps_per_episode": 7, "cycle_compute_us": 70.0}
    monkeypatch.setattr(script, "measure", lambda env_id, num_envs: dict(fake))
    out = tmp_path / "floor.json"
    argv = ["sensor_floor.py", "--env", "GlimpseMNIST-v0", "--num-envs", "2", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    result = json.loads(out.read_text())
    # Sync: 7 steps x 2 envs at 1,000 env-steps/s = 14,000 us per cycle; / 70 us = 200x.
    assert result["max_ratio_over_sync"] == pytest.approx(200.0)
    assert result["recorded_sync_env_steps_per_s"] == 1000.0
