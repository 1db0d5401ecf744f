"""A run folder belongs to one run: non-empty folders need --resume or --overwrite, a lock
keeps a second process out, and --resume survives a missing or corrupt checkpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from tiny_runs import TINY_RAM

from agents.checkpoints import load_checkpoint
from train.cli import main
from train.run_folder import LOCK_NAME, RunLock, _default_run_dir, claim_run_dir

pytestmark = pytest.mark.usefixtures("glimpse_data")

TINY = TINY_RAM


def _fails(argv: Sequence[str], capsys: pytest.CaptureFixture) -> str:
    """Run the command, expect a one-line error and a non-zero exit; return the line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


class _MakesFolder:
    """Unpickling it creates a folder: what a crafted checkpoint could do."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.target,))


def _dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------- non-empty folders
@pytest.mark.parametrize("agent", ["ram", "baseline"])
def test_a_new_run_into_a_used_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, agent: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"the previous run's checkpoint")
    (run / "metrics.csv").write_text("step,loss\n1,2\n")
    line = _fails(["train", agent, "--run-dir", str(run), "--epochs", "0.001"], capsys)
    assert str(run) in line and "not empty" in line
    assert f"--resume {run}" in line and "--overwrite" in line
    # Nothing was touched.
    assert (run / "checkpoint.pt").read_bytes() == b"the previous run's checkpoint"
    assert (run / "metrics.csv").read_text() == "step,loss\n1,2\n"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "metrics.csv"]


def test_overwrite_deletes_the_previous_runs_files_only(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    (run / "tb").mkdir(parents=True)
    (run / "tb" / "events.out.tfevents.old").write_bytes(b"x")
    for name in ("config.json", "checkpoint.pt", "checkpoint.corrupt.pt", "eval.json"):
        (run / name).write_text("old")
    (run / "notes.txt").write_text("mine")
    # A folder that also holds other files is refused, even with --overwrite.
    line = _fails(["train", "ram", "--run-dir", str(run), *TINY, "--overwrite"], capsys)
    assert "notes.txt" in line and "--overwrite" in line
    assert (run / "checkpoint.pt").read_text() == "old"

    (run / "notes.txt").unlink()
    assert (
        main(["train", "ram", "--run-dir", str(run), *TINY, "--overwrite", "--stop-after", "5"])
        == 0
    )
    assert "--overwrite: deleted the previous run's files" in capsys.readouterr().out
    assert not (run / "checkpoint.corrupt.pt").exists() and not (run / "eval.json").exists()
    assert not (run / "tb" / "events.out.tfevents.old").exists()
    assert json.loads((run / "config.json").read_text())["batch_size"] == 16
    assert load_checkpoint(run / "checkpoint.pt")["trainer"]["iteration"] == 5
    assert not (run / LOCK_NAME).exists()

    line = _fails(["train", "ram", "--resume", str(run), "--overwrite"], capsys)
    assert "--overwrite" in line and "--resume" in line


def test_default_run_folders_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first, second = _default_run_dir("ram", "E-v0"), _default_run_dir("ram", "E-v0")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == second.parent == Path("runs")


# ---------------------------------------------------------------------------- lock
def test_a_second_process_on_a_locked_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Another process holds the folder (as a run in progress does): refused, naming its pid;
    once it is gone (killed: its lock file stays), the lock is taken over with a notice."""
    run = tmp_path / "run"
    assert main(["train", "ram", "--run-dir", str(run), *TINY, "--stop-after", "5"]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from train.run_folder import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for argv in (
            ["train", "ram", "--resume", str(run), "--no-progress"],
            ["train", "ram", "--run-dir", str(run), *TINY, "--overwrite"],
            ["train", "baseline", "--run-dir", str(run), "--epochs", "0.001"],
        ):
            line = _fails(argv, capsys)
            assert f"in use by process {holder.pid}" in line and str(run) in line
    finally:
        holder.kill()
        holder.wait()
    assert (run / LOCK_NAME).is_file()  # killed: the lock is left behind
    assert load_checkpoint(run / "checkpoint.pt")["trainer"]["iteration"] == 5  # untouched
    assert main(["train", "ram", "--resume", str(run), "--no-progress", "--stop-after", "1"]) == 0
    assert f"took over the lock of process {holder.pid}" in capsys.readouterr().out
    assert not (run / LOCK_NAME).exists()


def test_the_lock_is_released_on_errors_and_stale_locks_are_taken_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"), claim_run_dir(run, "ram", "E") as claimed:
        assert claimed == run
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        raise RuntimeError("boom")
    assert not (run / LOCK_NAME).exists()

    dead = _dead_pid()
    (run / LOCK_NAME).write_text(f"{dead} {socket.gethostname()}\n")
    notes: list[str] = []
    with RunLock(run, notes.append):
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    assert notes == [f"note: took over the lock of process {dead} in {run}, which no longer runs"]
    assert sorted(p.name for p in run.iterdir()) == []

    # A lock held by this very process (a second claim from the same program) is refused too.
    with RunLock(run), pytest.raises(Exception, match=f"in use by process {os.getpid()}"):
        RunLock(run).acquire()


def test_the_lock_is_released_when_training_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import train.ram

    def fail(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(train.ram.RAMRun, "train_iteration", fail)  # fails inside the folder
    run = tmp_path / "run"
    _fails(["train", "ram", "--run-dir", str(run), *TINY], capsys)
    assert run.is_dir() and not (run / LOCK_NAME).exists()


def test_settings_the_env_refuses_leave_no_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    line = _fails(["train", "ram", "--run-dir", str(run), *TINY, "--glimpse-size", "100"], capsys)
    assert "glimpse_size" in line and "28" in line
    assert not run.exists()


# ---------------------------------------------------------------------------- resume
def _model(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["model_state"]


def test_resume_without_checkpoint_or_from_a_corrupt_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    straight, early, corrupt = tmp_path / "straight", tmp_path / "early", tmp_path / "corrupt"
    assert main(["train", "ram", "--run-dir", str(straight), *TINY]) == 0
    expected = _model(straight)

    # Killed before its first checkpoint (every 5 iterations): the run starts again.
    assert main(["train", "ram", "--run-dir", str(early), *TINY, "--stop-after", "3"]) == 0
    assert not (early / "checkpoint.pt").exists()
    capsys.readouterr()
    assert main(["train", "ram", "--resume", str(early), "--no-progress"]) == 0
    assert "has no checkpoint yet" in capsys.readouterr().out

    # Killed at iteration 12 (checkpoints at 5 and 10), then the newest one truncated: the
    # run continues from the previous one (iteration 5) and ends as if never stopped.
    assert main(["train", "ram", "--run-dir", str(corrupt), *TINY, "--stop-after", "12"]) == 0
    assert load_checkpoint(corrupt / "checkpoint.prev.pt")["trainer"]["iteration"] == 5
    newest = corrupt / "checkpoint.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    capsys.readouterr()
    assert main(["train", "ram", "--resume", str(corrupt), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "corrupt or truncated" in out and "resuming from the previous checkpoint" in out
    assert (corrupt / "checkpoint.corrupt.pt").is_file()

    for run in (early, corrupt):
        assert load_checkpoint(run / "checkpoint.pt")["trainer"]["iteration"] == 40
        for name, tensor in _model(run).items():
            assert torch.equal(tensor, expected[name]), (run.name, name)
        results = json.loads((run / "eval.json").read_text())["results"]
        assert results == json.loads((straight / "eval.json").read_text())["results"]

    # No usable checkpoint at all: a clear error, no traceback.
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (corrupt / name).write_bytes(b"garbage")
    line = _fails(["train", "ram", "--resume", str(corrupt), "--no-progress"], capsys)
    assert "no usable checkpoint" in line and "--overwrite" in line
    assert not (corrupt / LOCK_NAME).exists()


def test_baseline_resume_falls_back_to_the_previous_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tiny = ["--arch", "fc64", "--batch-size", "16", "--epochs", str(12 * 16 / 50_000)]
    tiny += ["--eval-images", "64", "--test-images", "64", "--checkpoint-every", "5"]
    tiny += ["--threads", "1", "--no-progress"]
    run = tmp_path / "run"
    assert main(["train", "baseline", "--run-dir", str(run), *tiny, "--stop-after", "11"]) == 0
    assert load_checkpoint(run / "checkpoint.prev.pt")["iteration"] == 5
    (run / "checkpoint.pt").write_bytes(b"")
    capsys.readouterr()
    assert main(["train", "baseline", "--resume", str(run), "--no-progress"]) == 0
    assert "resuming from the previous checkpoint" in capsys.readouterr().out
    assert load_checkpoint(run / "checkpoint.pt")["iteration"] == 12


def test_eval_of_a_crafted_checkpoint_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``glimpse eval evil.pt`` (and the same file as a run's checkpoint) is refused unread."""
    target = tmp_path / "made-by-unpickling"
    evil = tmp_path / "evil.pt"
    torch.save({"agent": "ram", "x": _MakesFolder(target)}, evil)
    line = _fails(["eval", str(evil)], capsys)
    assert "evil.pt" in line and not target.exists()

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(evil.read_bytes())
    meta = {"agent": "ram", "env_id": "GlimpseMNIST-v0", "env_kwargs": {}}
    (run / "meta.json").write_text(json.dumps({**meta, "checkpoint": "checkpoint.pt"}))
    _fails(["eval", str(run)], capsys)
    _fails(["render", str(run), "--out", str(tmp_path / "x.gif")], capsys)
    (run / "meta.json").write_text(
        json.dumps({**meta, "agent": "baseline", "checkpoint": "checkpoint.pt"})
    )
    _fails(["eval", str(run)], capsys)
    assert not target.exists()

    (run / "meta.json").write_text(json.dumps({**meta, "checkpoint": str(evil)}))
    assert "outside the run folder" in _fails(["eval", str(run)], capsys)


def test_a_crafted_checkpoint_is_refused_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    assert main(["train", "ram", "--run-dir", str(run), *TINY, "--stop-after", "5"]) == 0
    target = tmp_path / "made-by-unpickling"
    torch.save({"trainer": _MakesFolder(target)}, run / "checkpoint.pt")
    line = _fails(["train", "ram", "--resume", str(run), "--no-progress"], capsys)
    assert "refused to load" in line and not target.exists()


def test_ppo_run_folder_and_resume_from_the_previous_model(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("stable_baselines3")
    small = ["--num-envs", "16", "--n-steps", "14", "--batch-size", "112", "--n-epochs", "1"]
    small += ["--threads", "1", "--no-progress", "--eval-every", "0", "--final-eval-images", "0"]
    small += ["--no-history"]
    run = tmp_path / "ppo"
    first = ["train", "ppo", "--run-dir", str(run), "--total-steps", "448"]
    assert main([*first, "--checkpoint-every", "224", *small]) == 0  # models at 224 and 448
    assert (run / "model.prev.zip").is_file() and (run / "model.zip").is_file()
    assert "not empty" in _fails([*first, *small], capsys)

    (run / "model.zip").write_bytes(b"PK\x03\x04 not a zip")
    capsys.readouterr()
    resume = ["train", "ppo", "--resume", str(run), "--total-steps", "672", *small]
    assert main(resume) == 0
    out = capsys.readouterr().out
    assert "model.zip is corrupt or truncated" in out and "model.prev.zip" in out
    assert json.loads((run / "meta.json").read_text())["num_timesteps"] == 672
    assert (run / "model.corrupt.zip").is_file() and not (run / LOCK_NAME).exists()
