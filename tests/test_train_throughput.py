"""``benchmarks/train_throughput.py``: its rows, ratios, JSON, worker and machine reference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, import_benchmark


def test_machine_reference_reports_best_and_median(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("train_throughput", monkeypatch)
    reference = script.machine_reference(repeats=3)
    assert set(reference) == {
        "float32_gflops",
        "float32_gflops_median",
        "bfloat16_gflops",
        "bfloat16_gflops_median",
    }
    for dtype in ("float32", "bfloat16"):
        assert reference[f"{dtype}_gflops"] >= reference[f"{dtype}_gflops_median"] > 0.0


def _fake_reference(tmp_path: Path, fast_backward: bool) -> Path:
    (tmp_path / "agents").mkdir(parents=True)
    text = "fast_backward: bool = True\n" if fast_backward else "precision = 'float32'\n"
    (tmp_path / "agents" / "reinforce.py").write_text(text)
    return tmp_path


def test_rows_add_the_references_tape_and_autograd_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("train_throughput", monkeypatch)
    args = type("Args", (), {"cores": ["rnn", "gru"], "precisions": ["float32"]})()
    args.reference = None
    assert [(r["code"], r["core"], r["path"]) for r in script.rows(args)] == [
        ("this", "rnn", "replay"),
        ("this", "gru", "replay"),
    ]
    args.reference = _fake_reference(tmp_path, fast_backward=True)
    reference = [(r["core"], r["path"], r["fast_backward"]) for r in script.rows(args)[2:]]
    assert reference == [
        ("rnn", "tape", True),
        ("rnn", "autograd", False),
        ("gru", "autograd", None),
    ]


def test_main_reports_rounds_best_median_and_ratios(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("train_throughput", monkeypatch)
    speeds = {
        "replay": [300.0, 100.0, 200.0],
        "tape": [150.0, 200.0, 250.0],
        "autograd": [100.0] * 3,
    }
    calls: dict[str, int] = {}

    def fake_measure(root: Path, spec: dict) -> dict:
        i = calls[spec["path"]] = calls.get(spec["path"], -1) + 1
        return {"images_per_second": speeds[spec["path"]][i], "env_step_ms": 1.0, "agents": ""}

    monkeypatch.setattr(script, "measure", fake_measure)
    monkeypatch.setattr(script, "machine_reference", lambda: {"float32_gflops": 1.0})
    out = tmp_path / "tt.json"
    reference = _fake_reference(tmp_path / "ref", fast_backward=True)
    argv = ["--cores", "rnn", "--precisions", "float32", "--threads", "1", "--rounds", "3"]
    argv += ["--reference", str(reference), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["train_throughput.py", *argv])
    threads = torch.get_num_threads()
    try:
        script.main()
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    rows = {row["path"]: row for row in result["rows"]}
    assert rows["replay"]["rounds"] == [300.0, 100.0, 200.0]
    assert rows["replay"]["best"] == 300.0 and rows["replay"]["median"] == 200.0
    assert result["ratios"]["rnn/float32/replay_over_tape"] == {"best": 1.2, "median": 1.0}
    assert result["ratios"]["rnn/float32/replay_over_autograd"] == {"best": 3.0, "median": 2.0}
    assert result["cpu"] == script.cpu_info() and result["torch_threads"] == 1


def test_worker_measures_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("train_throughput", monkeypatch)
    spec = {"core": "gru", "precision": "bfloat16", "batch_size": 4, "iterations": 2}
    result = script.worker({**spec, "warmup": 1, "threads": 1, "fast_backward": None})
    assert result["images_per_second"] > 0 and result["env_step_ms"] > 0
    assert Path(result["agents"]) == REPO_ROOT / "agents"
