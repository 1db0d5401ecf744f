"""``benchmarks/param_trajectory.py``: parameter trajectories of two codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import import_benchmark


def _run(snapshots: dict[int, dict[str, torch.Tensor]]) -> dict:
    return {"snapshots": snapshots, "commit": None, "torch": "x"}


def test_compare_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("param_trajectory", monkeypatch)
    w = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    b = torch.tensor([0.1, 0.2])
    a = _run({1: {"w": w, "b": b}, 2: {"w": w, "b": b}, 5: {"w": w, "b": b}})
    moved_w = w + torch.tensor([[0.0, 1e-7], [3e-6, 0.0]])
    moved_b = b + torch.tensor([2e-5, 0.0])
    other = _run({2: {"w": w.clone(), "b": b.clone()}, 5: {"w": moved_w, "b": moved_b}})
    rows = script.compare(a, other, tol=1e-6)
    assert [r["iteration"] for r in rows] == [2, 5]  # the common snapshots only
    assert rows[0]["max_abs_diff"] == 0.0 and rows[0]["elements_over_tol"] == 0
    assert rows[1]["max_abs_diff"] == pytest.approx(2e-5, rel=1e-3)
    # b's 2e-5 against |b|max 0.2 = 1e-4; w's 3e-6 against 4 = 7.5e-7.
    assert rows[1]["max_rel_diff"] == pytest.approx(1e-4, rel=1e-3)
    assert rows[1]["elements_over_tol"] == 2  # 3e-6 and 2e-5; 1e-7 is under tol
    assert rows[1]["elements"] == 6


def test_compare_rejects_different_models(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("param_trajectory", monkeypatch)
    a = _run({1: {"w": torch.zeros(2, 2)}})
    with pytest.raises(ValueError, match="names or shapes"):
        script.compare(a, _run({1: {"w": torch.zeros(2, 3)}}))
    with pytest.raises(ValueError, match="names or shapes"):
        script.compare(a, _run({1: {"v": torch.zeros(2, 2)}}))
    with pytest.raises(ValueError, match="no saved iteration"):
        script.compare(a, _run({2: {"w": torch.zeros(2, 2)}}))


@pytest.mark.usefixtures("glimpse_data")
def test_the_same_code_twice_gives_the_same_trajectory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = import_benchmark("param_trajectory", monkeypatch)
    threads = torch.get_num_threads()
    try:
        for name in ("a", "b"):
            argv = ["param_trajectory.py", "run", "--iterations", "3", "--out"]
            monkeypatch.setattr(sys, "argv", [*argv, str(tmp_path / f"{name}.pt")])
            script.main()
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "a.pt")
    assert sorted(a["snapshots"]) == [1, 2, 3]  # 1, 2 and the last
    out = tmp_path / "cmp.json"
    argv = ["param_trajectory.py", "compare", str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]
    monkeypatch.setattr(sys, "argv", [*argv, "--json", str(out)])
    script.main()
    rows = json.loads(out.read_text())["rows"]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all(r["max_abs_diff"] == 0.0 for r in rows)
    # and the parameters did move: a trajectory, not a frozen model
    first, last = a["snapshots"][1], a["snapshots"][3]
    moved = [name for name in first if not torch.equal(first[name], last[name])]
    assert any(name.startswith("core_network.") for name in moved), moved
