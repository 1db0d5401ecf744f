"""``glimpse sweep`` on a local Ray: a 2-trial sweep of a tiny RAM, its rerun (resumed, no
retraining) and a bad config (one error line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "train"))
from tiny_runs import TINY_RAM  # noqa: E402

from train.cli import main  # noqa: E402


def _tiny_fixed() -> dict[str, object]:
    """TINY_RAM as ``fixed`` flags of a sweep config (20 iterations instead of 40)."""
    fixed: dict[str, object] = {}
    args = list(TINY_RAM)
    while args:
        flag = args.pop(0)[2:].replace("-", "_")
        if flag == "no_progress":
            continue
        fixed[flag] = args.pop(0)
    fixed["epochs"] = str(20 * 16 / 50_000)
    fixed.pop("threads")  # the sweep sets it from --cpus-per-trial
    return fixed


def _iterations(run_dir: Path) -> int:
    return int(json.loads((run_dir / "eval.json").read_text())["iterations"])


def test_two_seed_sweep_runs_and_resumes(tmp_path: Path) -> None:
    from agents.policy import load_policy

    config = tmp_path / "sweep.json"
    config.write_text(
        json.dumps({"command": "ram", "fixed": _tiny_fixed(), "grid": {"seed": [0, 1]}})
    )
    out = tmp_path / "out"
    # Seed 0 was killed after 10 of its 20 iterations (checkpointed at 10): the sweep resumes it.
    partial = out / "ram-000_seed0"
    argv = ["train", "ram", *TINY_RAM, "--epochs", str(20 * 16 / 50_000), "--seed", "0"]
    assert main([*argv, "--run-dir", str(partial), "--stop-after", "10"]) == 0
    assert not (partial / "eval.json").exists()
    assert main(["sweep", str(config), "--out", str(out), "--cpus-per-trial", "1"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert [t["flags"]["seed"] for t in summary["trials"]] == [0, 1]
    mtimes = {}
    for trial in summary["trials"]:
        run_dir = Path(trial["run_dir"])
        assert run_dir.parent == out.resolve()
        assert trial["error"] is None
    assert [t["metrics"]["start"] for t in summary["trials"]] == ["resume", "new"]
    for trial in summary["trials"]:
        run_dir = Path(trial["run_dir"])
        assert 0.0 <= trial["metrics"]["test_error_rate"] <= 1.0
        assert _iterations(run_dir) == 20
        assert load_policy(run_dir) is not None
        mtimes[run_dir] = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    # The two seeds trained different models.
    errs = [t["metrics"]["test_error_rate"] for t in summary["trials"]]
    ckpts = [(Path(t["run_dir"]) / "checkpoint.pt").read_bytes() for t in summary["trials"]]
    assert ckpts[0] != ckpts[1], errs

    # Rerun: every trial is finished, read back, not retrained.
    assert main(["sweep", str(config), "--out", str(out)]) == 0
    again = json.loads((out / "sweep.json").read_text())
    for trial in again["trials"]:
        run_dir = Path(trial["run_dir"])
        assert trial["metrics"]["start"] == "done"
        assert _iterations(run_dir) == 20
        assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == mtimes[run_dir]


def test_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"command": "dqn", "grid": {"seed": [0]}}))
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(config), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'command' is 'dqn'" in err
    assert not (tmp_path / "out").exists()
