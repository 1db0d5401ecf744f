"""``glimpse sweep`` on a local Ray: a 2-trial sweep of a tiny RAM, its rerun (resumed, no
retraining); ASHA stopping the trial that falls behind; a trial whose worker process is
killed mid-run, retried by Tune from its checkpoint; and a bad config (one error line)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
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


def _baseline_fixed(iterations: int, batch: int = 32, **more: object) -> dict[str, object]:
    """Flags of a tiny fc64 baseline trial of ``iterations`` iterations."""
    return {
        "arch": "fc64", "env": "GlimpseMNIST-v0", "batch_size": batch,
        "epochs": iterations * batch / 50_000, "eval_images": 200, "test_images": 100,
        "log_every": 5, **more,
    }  # fmt: skip


def test_asha_stops_the_trial_that_falls_behind(tmp_path: Path) -> None:
    # One trial at a time, in grid order: lr 0.01 learns and sets every rung; lr 1e-9 stays at
    # its initial accuracy, below the first rung's cutoff (iteration 10), and is stopped there.
    fixed = _baseline_fixed(40, eval_every=10, checkpoint_every=10, seed=0)
    config = tmp_path / "sweep.json"
    asha = {"grace_period": 10, "reduction_factor": 2}
    config.write_text(json.dumps(
        {"command": "baseline", "fixed": fixed, "grid": {"lr": [0.01, 1e-9]}, "asha": asha}
    ))  # fmt: skip
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--out", str(out), "--max-concurrent", "1"]
    assert main(argv) == 0
    summary = json.loads((out / "sweep.json").read_text())
    good, bad = summary["trials"]
    assert (good["status"], bad["status"]) == ("finished", "stopped")
    assert summary["best"] == good["name"]
    assert summary["asha"]["metric"] == "val_accuracy"
    assert good["metrics"]["iteration"] == 40 and good["metrics"]["start"] == "new"
    assert good["metrics"]["val_accuracy"] > 0.5
    assert bad["metrics"]["iteration"] == 10
    assert bad["metrics"]["val_accuracy"] < good["metrics"]["val_accuracy"]
    bad_dir = Path(bad["run_dir"])
    assert not (bad_dir / "eval.json").exists() and (bad_dir / "checkpoint.pt").is_file()
    with (bad_dir / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)][-1] == 10 * 32  # trained no further
    stamp = (bad_dir / "checkpoint.pt").stat().st_mtime_ns

    # Rerun: the finished trial is read back, the stopped one stays stopped, untouched.
    assert main(argv) == 0
    again = json.loads((out / "sweep.json").read_text())
    assert [t["status"] for t in again["trials"]] == ["finished", "stopped"]
    assert again["trials"][0]["metrics"]["start"] == "done"
    assert (bad_dir / "checkpoint.pt").stat().st_mtime_ns == stamp


def _logged_iterations(run_dir: Path, batch: int) -> int:
    try:
        with (run_dir / "metrics.csv").open() as f:
            steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("step")]
    except (OSError, ValueError):
        return 0
    return max(steps, default=0) // batch


def test_a_killed_trial_is_retried_and_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    batch = 16
    fixed = _baseline_fixed(1500, batch, eval_every=1500, checkpoint_every=5)
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"command": "baseline", "fixed": fixed, "grid": {"seed": [0]}}))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "train.cli", "sweep", str(config), "--out", str(out),
               "--max-failures", "2"]  # fmt: skip
    sweep = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_dir = out / "baseline-000_seed0"
    try:
        # Wait until the trial has trained past its first checkpoints, then kill its process
        # (the Ray worker that runs it: the pid in the run folder's lock file).
        deadline = time.monotonic() + 120
        while _logged_iterations(run_dir, batch) < 20:
            assert sweep.poll() is None, sweep.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the trial did not start"
            time.sleep(0.02)
        pid = int((run_dir / ".lock").read_text().split()[0])
        assert pid != sweep.pid
        os.kill(pid, signal.SIGKILL)
        killed_at = _logged_iterations(run_dir, batch)
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, output.decode()[-3000:]
    assert killed_at < 1500
    summary = json.loads((out / "sweep.json").read_text())
    (trial,) = summary["trials"]
    assert trial["status"] == "finished" and trial["error"] is None
    assert trial["metrics"]["start"] == "resume"  # Tune's retry found the checkpoint
    result = json.loads((run_dir / "eval.json").read_text())
    # It went on from its last checkpoint (every 5 iterations, at most where it was killed),
    # not from scratch, and finished the run.
    started = result["started_at_iteration"]
    assert 0 < started <= killed_at and started % 5 == 0, (started, killed_at)
    assert result["iterations"] == 1500


def test_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"command": "dqn", "grid": {"seed": [0]}}))
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(config), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'command' is 'dqn'" in err
    assert not (tmp_path / "out").exists()
