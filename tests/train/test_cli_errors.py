"""Bad invocations of ``glimpse``: one line on stderr naming the problem, a non-zero exit
status (2 for a bad command line, 1 for anything else), never a traceback.

Most run in-process through :func:`train.cli.main`; a few through ``python -m train.cli``.
Nothing here trains beyond one tiny run (for ``--resume``).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_runs import TINY_RAM

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = ["--pretrained", "GlimpseMNIST-v0"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

TINY = TINY_RAM


def fails(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, str]:
    """Run ``glimpse argv``; assert it exits non-zero with exactly one non-empty line on
    stderr and no traceback; return ``(exit status, that line)``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    code = info.value.code
    assert isinstance(code, int) and code != 0, code
    assert lines[0].startswith("glimpse"), lines[0]
    return code, lines[0]


# --------------------------------------------------------------- numbers and choices
#: (argv, words the line must contain). Each is refused before any work, with status 2.
USAGE_ERRORS: list[tuple[list[str], list[str]]] = [
    # glimpse eval
    (["eval", *PRETRAINED, "--n-images", "20000"], ["--n-images", "10,000"]),
    (["eval", *PRETRAINED, "--split", "val", "--n-images", "10001"], ["val", "10,000"]),
    (["eval", *PRETRAINED, "--n-images", "0"], ["--n-images", ">= 1"]),
    (["eval", *PRETRAINED, "--n-images", "-5"], ["--n-images", ">= 1"]),
    (["eval", *PRETRAINED, "--n-images", "ten"], ["--n-images", "integer"]),
    (["eval", *PRETRAINED, "--num-envs", "0"], ["--num-envs"]),
    (["eval", *PRETRAINED, "--split", "validation"], ["--split", "invalid choice"]),
    (["eval", *PRETRAINED, "--mode", "greedy"], ["--mode"]),
    (["eval", *PRETRAINED, "--env", "NoSuchEnv-v0"], ["--env"]),
    (["eval", *PRETRAINED, "--device", "nonsense"], ["--device", "nonsense"]),
    (["eval", "--pretrained", "NoSuchEnv-v0"], ["NoSuchEnv-v0", "GlimpseMNIST-v0"]),
    (["eval"], ["CHECKPOINT", "--pretrained"]),
    (["eval", "some-run", *PRETRAINED], ["CHECKPOINT", "both"]),
    (["eval", *PRETRAINED, "--no-such-flag"], ["--no-such-flag"]),
    (["evaluate"], ["evaluate"]),
    # glimpse train ram
    (["train", "ram", "--test-images", "0"], ["--test-images"]),
    (["train", "ram", "--test-images", "20000"], ["--test-images", "10,000"]),
    (["train", "ram", "--eval-images", "10001"], ["--eval-images", "val"]),
    (["train", "ram", "--epochs", "0"], ["--epochs", "> 0"]),
    (["train", "ram", "--epochs", "-1"], ["--epochs"]),
    (["train", "ram", "--epochs", "nan"], ["--epochs", "finite"]),
    (["train", "ram", "--epochs", "inf"], ["--epochs", "finite"]),
    (["train", "ram", "--lr-schedule", "foo"], ["--lr-schedule", "cosine"]),
    (["train", "ram", "--optimizer", "adagrad"], ["--optimizer"]),
    (["train", "ram", "--core", "transformer"], ["--core"]),
    (["train", "ram", "--start", "corner"], ["--start"]),
    (["train", "ram", "--env", "NoSuchEnv-v0"], ["--env"]),
    (["train", "ram", "--max-grad-norm", "-1"], ["--max-grad-norm"]),
    (["train", "ram", "--max-grad-norm", "0"], ["--max-grad-norm"]),
    (["train", "ram", "--glimpse-hidden", "0"], ["--glimpse-hidden"]),
    (["train", "ram", "--core-hidden", "-3"], ["--core-hidden"]),
    (["train", "ram", "--location-mlp-hidden", "-1"], ["--location-mlp-hidden"]),
    (["train", "ram", "--eval-every", "0"], ["--eval-every"]),
    (["train", "ram", "--log-every", "0"], ["--log-every"]),
    (["train", "ram", "--checkpoint-every", "0"], ["--checkpoint-every"]),
    (["train", "ram", "--std", "0"], ["--std", "> 0"]),
    (["train", "ram", "--std-end", "0"], ["--std-end"]),
    (["train", "ram", "--lr", "0"], ["--lr"]),
    (["train", "ram", "--weight-decay", "-0.1"], ["--weight-decay"]),
    (["train", "ram", "--batch-size", "0"], ["--batch-size"]),
    (["train", "ram", "--batch-size", "1.5"], ["--batch-size", "integer"]),
    (["train", "ram", "--n-glimpses", "0"], ["--n-glimpses"]),
    (["train", "ram", "--threads", "0"], ["--threads"]),
    (["train", "ram", "--stop-after", "0"], ["--stop-after"]),
    (["train", "ram", "--max-minutes", "-1"], ["--max-minutes"]),
    (["train", "ram", "--seed", "-1"], ["--seed"]),
    (["train", "ram", "--seed", str(2**64)], ["--seed"]),
    (["train", "ram", "--preset", "mnist-99"], ["--preset"]),
    (["train", "ram", "--split", "test"], ["--split"]),
    (["train", "ram", "--device", "tpu"], ["--device"]),
    (["train", "ram", "--location-reward", "expected", "--no-hybrid"], ["--no-hybrid"]),
    (["train"], ["AGENT"]),
    # glimpse train baseline
    (["train", "baseline", "--arch", "vgg"], ["--arch"]),
    (["train", "baseline", "--epochs", "0"], ["--epochs"]),
    (["train", "baseline", "--eval-every", "0"], ["--eval-every"]),
    (["train", "baseline", "--log-every", "0"], ["--log-every"]),
    (["train", "baseline", "--test-images", "0"], ["--test-images"]),
    # glimpse train ppo
    (["train", "ppo", "--n-steps", "0"], ["--n-steps"]),
    (["train", "ppo", "--gamma", "1.5"], ["--gamma", "<= 1"]),
    (["train", "ppo", "--learning-rate", "0"], ["--learning-rate"]),
    (["train", "ppo", "--net-arch-pi", "64,x"], ["--net-arch-pi"]),
    (["train", "ppo", "--net-arch-vf", "0"], ["--net-arch-vf"]),
    (["train", "ppo", "--eval-every", "-1"], ["--eval-every"]),
    (["train", "ppo", "--checkpoint-every", "0"], ["--checkpoint-every"]),
    (["train", "ppo", "--eval-images", "20000"], ["--eval-images", "10,000"]),
    (["train", "ppo", "--final-eval-images", "20000"], ["--final-eval-images"]),
    (["train", "ppo", "--time-budget", "60"], ["--time-budget", "--max-minutes"]),
    (["train", "ppo", "--max-minutes", "-1"], ["--max-minutes"]),
    (["train", "ppo", "--lr-schedule", "cosine"], ["--lr-schedule"]),
    # glimpse render
    (["render", *PRETRAINED, "--columns", "0"], ["--columns"]),
    (["render", *PRETRAINED, "--fps", "0"], ["--fps"]),
    (["render", *PRETRAINED, "--fps", "-2"], ["--fps"]),
    (["render", *PRETRAINED, "--n", "0"], ["--n"]),
    (["render", *PRETRAINED, "--n", "10001"], ["--n", "10,000"]),
    (["render", *PRETRAINED, "--out", "x.png"], ["--out", ".gif"]),
    (["render", *PRETRAINED, "--split", "nope"], ["--split"]),
    # glimpse demo
    (["demo", "--out", "demo.png"], ["--out", ".gif"]),
    (["demo", "--seed", "-1"], ["--seed"]),
    (["demo", "--env", "NoSuchEnv-v0"], ["--env"]),
    (["demo", "--split", "nope"], ["--split"]),
]


@pytest.mark.parametrize(
    ("argv", "words"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS]
)
def test_usage_errors(
    argv: list[str],
    words: list[str],
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, but if it were, not into the checkout
    code, line = fails(capsys, argv)
    assert code == 2, line
    for word in words:
        assert word in line, (word, line)
    assert list(tmp_path.iterdir()) == []  # refused before any work


@NO_CUDA
@pytest.mark.parametrize(
    "argv",
    [
        ["eval", *PRETRAINED, "--device", "cuda"],
        ["eval", *PRETRAINED, "--device", "cuda:1"],
        ["train", "ram", "--device", "cuda"],
        ["train", "baseline", "--device", "cuda"],
        ["train", "ppo", "--device", "cuda"],
    ],
)
def test_cuda_without_cuda(
    argv: list[str], capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, line = fails(capsys, argv)
    assert code == 2 and "CUDA" in line and "cpu" in line, line
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ files and checkpoints
def _fake_run(folder: Path, agent: str = "ram", **config: Any) -> Path:
    """A run folder with config.json and meta.json only (no training)."""
    from train.baseline import BaselineTrainConfig
    from train.ram import RAMTrainConfig

    cls = RAMTrainConfig if agent == "ram" else BaselineTrainConfig
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(cls(**config))))
    (folder / "meta.json").write_text(json.dumps({"agent": agent, "checkpoint": "checkpoint.pt"}))
    return folder


def test_missing_and_foreign_checkpoints(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """Missing files, folders that are not run folders, corrupt, truncated and foreign
    checkpoints and metadata: status 1, one line naming the file."""
    shipped = REPO / "agents" / "pretrained" / "GlimpseMNIST-v0" / "model.pt"
    cases: dict[str, tuple[Path, str]] = {}

    cases["missing"] = (tmp_path / "missing", "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases["folder without meta.json"] = (empty, "meta.json")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    cases["garbage .pt"] = (garbage, "garbage.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(shipped.read_bytes()[: shipped.stat().st_size // 2])
    cases["truncated .pt"] = (truncated, "truncated.pt")
    empty_pt = tmp_path / "empty.pt"
    empty_pt.write_bytes(b"")
    cases["empty .pt"] = (empty_pt, "empty.pt")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    cases["a tensor, not a checkpoint"] = (tensor, "tensor.pt")
    foreign_dict = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign_dict)
    cases["a foreign dict"] = (foreign_dict, "foreign.pt")

    foreign_json = tmp_path / "foreign.json"
    foreign_json.write_text(json.dumps({"hello": "world"}))
    cases["a foreign JSON file"] = (foreign_json, "foreign.json")
    no_key = tmp_path / "no-key"
    no_key.mkdir()
    (no_key / "meta.json").write_text(json.dumps({"agent": "ram", "env_id": "GlimpseMNIST-v0"}))
    cases["meta.json without 'checkpoint'"] = (no_key, "checkpoint")
    bad_json = tmp_path / "bad-json"
    bad_json.mkdir()
    (bad_json / "meta.json").write_text("{not json")
    cases["meta.json not JSON"] = (bad_json, "meta.json")
    list_json = tmp_path / "list-json"
    list_json.mkdir()
    (list_json / "meta.json").write_text("[1, 2]")
    cases["meta.json a list"] = (list_json, "meta.json")
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    (unborn / "meta.json").write_text(
        json.dumps({"agent": "ram", "env_id": "GlimpseMNIST-v0", "checkpoint": "checkpoint.pt"})
    )
    cases["run killed before its first checkpoint"] = (unborn, "checkpoint.pt")
    unknown_agent = tmp_path / "unknown-agent"
    unknown_agent.mkdir()
    (unknown_agent / "checkpoint.pt").write_bytes(b"x")
    (unknown_agent / "meta.json").write_text(
        json.dumps({"agent": "alien", "env_id": "X", "checkpoint": "checkpoint.pt"})
    )
    cases["unknown agent kind"] = (unknown_agent, "alien")

    for name, (path, word) in cases.items():
        for command in (["eval"], ["render", "--out", str(tmp_path / "r.gif")]):
            code, line = fails(capsys, [*command, str(path)])
            assert code == 1, (name, line)
            assert word in line, (name, word, line)
    assert not (tmp_path / "r.gif").exists()


def test_unwritable_outputs(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """An --out that cannot be written is refused before the work (status 2)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for argv in (
        ["render", *PRETRAINED, "--out", str(a_file / "x.gif")],
        ["demo", "--out", str(a_file / "sub" / "x.gif")],
    ):
        code, line = fails(capsys, argv)
        assert code == 2 and "--out" in line and "not a folder" in line, line
    folder = tmp_path / "folder.gif"
    folder.mkdir()
    code, line = fails(capsys, ["demo", "--out", str(folder)])
    assert code == 2 and "folder" in line, line
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, line = fails(capsys, ["demo", "--out", str(locked / "x.gif")])
        assert code == 2 and "not writable" in line, line


def test_disk_full_and_other_os_errors(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File errors met during the work (a full disk, ...) are one line with a fix."""
    import glimpse_env.rendering

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "demo.gif"))

    monkeypatch.setattr(glimpse_env.rendering, "save_gif", full)
    code, line = fails(capsys, ["demo", "--out", str(tmp_path / "demo.gif")])
    assert code == 1 and "demo.gif" in line and "disk is full" in line, line

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/somewhere/demo.gif")

    monkeypatch.setattr(glimpse_env.rendering, "save_gif", denied)
    code, line = fails(capsys, ["demo", "--out", str(tmp_path / "demo.gif")])
    assert code == 1 and "/somewhere/demo.gif" in line and "permission" in line, line


def test_data_faults(capsys: pytest.CaptureFixture, tmp_path: Path, mnist_dir: Path) -> None:
    """Missing or corrupt MNIST: one line (the data module's message, on one line)."""
    code, line = fails(capsys, ["eval", *PRETRAINED, "--data-dir", str(tmp_path / "nope")])
    assert code == 1 and "does not exist" in line and "GLIMPSE_ENV_DATA" in line, line
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in mnist_dir.iterdir():
        shutil.copyfile(f, corrupt / f.name)
    labels = corrupt / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[100] ^= 0xFF
    labels.write_bytes(bytes(data))
    code, line = fails(capsys, ["eval", *PRETRAINED, "--data-dir", str(corrupt)])
    assert code == 1 and "corrupt" in line and "t10k-labels" in line, line
    code, line = fails(
        capsys, ["demo", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "d.gif")]
    )
    assert code == 1 and "does not exist" in line, line


# --------------------------------------------------------------------------- resume
def test_resume_refuses_contradicting_flags(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """``--resume r --epochs 0.05 --lr 0.1 --seed 99`` names each flag and its saved value."""
    run = _fake_run(tmp_path / "r", epochs=0.0128, lr=5e-4, seed=0)
    argv = ["train", "ram", "--resume", str(run), "--epochs", "0.05", "--lr", "0.1"]
    code, line = fails(capsys, [*argv, "--seed", "99"])
    assert code == 2, line
    for text in ("--epochs 0.05 (saved: 0.0128)", "--lr 0.1 (saved: 0.0005)", "--seed 99"):
        assert text in line, (text, line)
    assert "--max-minutes" in line  # what may change
    # Booleans and presets are compared too; a flag equal to the saved value is fine.
    code, line = fails(capsys, ["train", "ram", "--resume", str(run), "--no-hybrid"])
    assert "--no-hybrid (saved: on)" in line, line
    code, line = fails(capsys, ["train", "ram", "--resume", str(run), "--preset", "mnist-7"])
    assert "--n-glimpses 7 (from --preset mnist-7) (saved: none)" in line, line
    code, line = fails(
        capsys, ["train", "ram", "--resume", str(run), "--seed", "0", "--device", "cpu"]
    )
    assert "--device cpu (saved: auto)" in line and "--seed" not in line, line
    # --run-dir naming another folder.
    code, line = fails(
        capsys, ["train", "ram", "--resume", str(run), "--run-dir", str(tmp_path / "other")]
    )
    assert code == 2 and "different folders" in line, line
    # PPO: env, reward, --recurrent, seed and hyperparameters.
    ppo = tmp_path / "ppo"
    ppo.mkdir()
    from train.ppo import PPOTrainConfig

    (ppo / "config.json").write_text(json.dumps(PPOTrainConfig(run_dir=str(ppo)).to_dict()))
    (ppo / "meta.json").write_text(json.dumps({"agent": "ppo", "checkpoint": "model.zip"}))
    argv = ["train", "ppo", "--resume", str(ppo), "--reward", "dense", "--recurrent"]
    code, line = fails(capsys, [*argv, "--seed", "3", "--n-epochs", "9"])
    assert code == 2, line
    for text in ("--reward dense (saved: sparse)", "--recurrent (saved: off)", "--seed 3"):
        assert text in line, (text, line)
    assert "--n-epochs 9 (saved: 4)" in line, line


def test_resume_of_what_is_not_a_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """A missing folder, one without config.json, another agent's run, a foreign config."""
    code, line = fails(capsys, ["train", "ram", "--resume", str(tmp_path / "nope")])
    assert code == 1 and "no such folder" in line, line
    (tmp_path / "empty").mkdir()
    code, line = fails(capsys, ["train", "ram", "--resume", str(tmp_path / "empty")])
    assert code == 1 and "config.json" in line, line
    baseline = _fake_run(tmp_path / "baseline-run", agent="baseline")
    code, line = fails(capsys, ["train", "ram", "--resume", str(baseline)])
    assert code == 1 and f"glimpse train baseline --resume {baseline}" in line, line
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"colour": "blue"}))
    code, line = fails(capsys, ["train", "ram", "--resume", str(foreign)])
    assert code == 1 and "colour" in line, line
    (foreign / "config.json").write_text("{oops")
    code, line = fails(capsys, ["train", "ram", "--resume", str(foreign)])
    assert code == 1 and "not valid JSON" in line, line
    bad = _fake_run(tmp_path / "bad-values")
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "epochs": -3}))
    code, line = fails(capsys, ["train", "ram", "--resume", str(bad)])
    assert code == 1 and "--epochs" in line, line
    code, line = fails(capsys, ["train", "ppo", "--resume", str(tmp_path / "empty")])
    assert code == 1 and "config.json" in line, line


def test_resume_applies_run_control_flags_and_says_so(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """``--max-minutes``, ``--test-images``, ``--threads`` may change on resume: applied,
    and printed; the saved flags given again are fine."""
    run = tmp_path / "run"
    argv = ["train", "ram", "--run-dir", str(run), *TINY, "--max-minutes", "0"]
    assert main(argv) == 0
    capsys.readouterr()
    resume = ["train", "ram", "--resume", str(run), "--no-progress", "--batch-size", "16"]
    assert main([*resume, "--max-minutes", "0", "--test-images", "50"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run} with --test-images 50 (was 100)" in out, out
    summary = json.loads((run / "eval.json").read_text())
    assert summary["iterations"] == 2 and summary["results"]["deterministic"]["n_images"] == 50


# --------------------------------------------------------------------- the boundary
def test_interrupt_unexpected_errors_and_debug(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: status 130; an unforeseen error: one line pointing at --debug; --debug and
    GLIMPSE_DEBUG=1 let the exception (and its traceback) through."""
    import train.demo

    out = ["demo", "--out", str(tmp_path / "d.gif")]

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(train.demo, "run", interrupted)
    code, line = fails(capsys, out)
    assert code == 130 and line == "glimpse: interrupted", line

    def broken(args: object) -> int:
        return 1 // 0

    monkeypatch.setattr(train.demo, "run", broken)
    code, line = fails(capsys, out)
    assert code == 1 and "ZeroDivisionError" in line and "--debug" in line, line
    with pytest.raises(ZeroDivisionError):
        main(["--debug", *out])
    monkeypatch.setenv("GLIMPSE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(out)
    monkeypatch.setenv("GLIMPSE_DEBUG", "0")

    def exits(args: object) -> int:
        raise SystemExit("something went wrong\nin two lines")

    monkeypatch.setattr(train.demo, "run", exits)
    code, line = fails(capsys, out)
    assert code == 1 and line == "glimpse: error: something went wrong in two lines", line


def _run_cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "train.cli", *argv],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_as_a_process(tmp_path: Path) -> None:
    """The console entry point: exit status and stderr as seen by a shell."""
    proc = _run_cli("eval", str(tmp_path / "missing"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"glimpse: error: checkpoint {tmp_path / 'missing'} not found; give a run folder of "
        "'glimpse train' (with meta.json) or its checkpoint file"
    ]
    proc = _run_cli("train", "ram", "--epochs", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--epochs" in proc.stderr
    proc = _run_cli("--debug", "eval", str(tmp_path / "missing"))
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    proc = _run_cli("eval", str(tmp_path / "missing"), GLIMPSE_DEBUG="1")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
