"""``benchmarks/vector_autoreset.py``: what it measures and the JSON it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO_ROOT, import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_measure_reports_the_mode_and_useful_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("vector_autoreset", monkeypatch)
    next_step = script.measure(REPO_ROOT, "GlimpseMNIST-v0", 4, "NextStep")
    assert next_step["mode"] == "NEXT_STEP"
    # 7-glimpse episodes: one step in 8 only resets.
    assert next_step["transitions_per_s"] == pytest.approx(next_step["steps_per_s"] * 7 / 8)
    assert script.measure(REPO_ROOT, "GlimpseMNIST-v0", 4, "default")["mode"] == "NEXT_STEP"
    disabled = script.measure(REPO_ROOT, "GlimpseMNIST-v0", 4, "Disabled")
    assert disabled["transitions_per_s"] == disabled["steps_per_s"] > 0


def test_main_writes_every_case_and_the_ratio(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("vector_autoreset", monkeypatch)
    monkeypatch.setattr(script, "CASES", (("GlimpseMNIST-v0", 2),))
    fake = {"NextStep": 7.0, "SameStep": 8.0, "Disabled": 8.0, "default": 4.0}
    monkeypatch.setattr(
        script,
        "measure",
        lambda checkout, env_id, n, mode: {
            "mode": mode,
            "steps_per_s": fake[mode],
            "transitions_per_s": fake[mode],
        },
    )
    out = tmp_path / "r.json"
    script.main(["--baseline", str(tmp_path), "--rounds", "1", "--out", str(out)])
    record = json.loads(out.read_text())
    row = record["results"]["GlimpseMNIST-v0 n2"]
    assert row["transitions_ratio_to_baseline"] == {
        "NextStep": 1.75,
        "SameStep": 2.0,
        "Disabled": 2.0,
    }
    assert record["cpu"]["model"]
