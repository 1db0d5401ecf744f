"""``benchmarks/train_throughput.py``: the JSON it writes, and its machine reference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import import_benchmark


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


def test_main_reports_the_chosen_precisions_best_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("train_throughput", monkeypatch)
    windows = {
        "float32": ([100.0, 300.0, 200.0], [0.1, 0.2, 0.3]),
        "bfloat16": ([450.0, 400.0, 500.0], [0.4, 0.5, 0.6]),
    }
    monkeypatch.setattr(script, "measure", lambda precision, args: windows[precision])
    reference = {"float32_gflops": 1.0}
    monkeypatch.setattr(script, "machine_reference", lambda: dict(reference))
    out = tmp_path / "tt.json"
    argv = ["train_throughput.py", "--precision", "bfloat16", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    threads = torch.get_num_threads()
    try:
        script.main()
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    assert result["images_per_second"] == 500.0 and result["precision"] == "bfloat16"
    assert result["images_per_second_by_precision"] == {"float32": 300.0, "bfloat16": 500.0}
    # the env's share is the one of each precision's best window
    assert result["env_step_ms_per_iteration_by_precision"] == {"float32": 0.2, "bfloat16": 0.6}
    assert result["machine_reference_before"] == reference
    assert result["machine_reference_after"] == reference
    assert result["batch_size"] == 128 and result["torch_threads"] == 1
    assert result["cpu"] == script.cpu_info()  # which host CPU was measured
