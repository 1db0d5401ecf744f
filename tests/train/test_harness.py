"""The run harness with a trainer of plain numbers: cadence, exact resume, the time cap,
``eval.json``, the typed ``meta.json`` and the one reader of a run's env settings."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agents.checkpoints import CheckpointError, atomic_write_bytes
from agents.policy import env_kwargs_from_meta
from train.common import RunOptions
from train.errors import GlimpseError, UsageError
from train.harness import (
    Cadence,
    FinalEval,
    Progress,
    ProgressReport,
    RunMeta,
    Trainer,
    add_training_arguments,
    config_from_args,
    reporting,
    train,
)


@dataclass
class CountConfig(RunOptions):
    """A run of :class:`CountTrainer`."""

    command: ClassVar[str] = "count"
    agents: ClassVar[tuple[str, ...]] = ("count",)

    env: str = "GlimpseMNIST-v0"
    """Env id (only named)."""
    iterations: int = field(default=12, metadata={"ge": 1})
    """Iterations of the run."""
    rate: float = field(default=0.5, metadata={"gt": 0.0})
    """Growth per iteration."""
    log_every: int = 2
    """Metrics row every this many iterations."""
    eval_every: int = 4
    """Validation every this many iterations (0: never)."""
    checkpoint_every: int = 5
    """Checkpoint every this many iterations."""


class CountTrainer(Trainer):
    """Its state is a running sum; metrics, validation and test are functions of it."""

    def __init__(self, cfg: CountConfig, device: Any) -> None:
        self.cfg = cfg
        self.total_iterations = cfg.iterations
        self.step_size = 3
        self.cadence = Cadence(cfg.log_every, cfg.eval_every, cfg.checkpoint_every)
        self.state = {"iteration": 0, "sum": 0.0}

    @property
    def iteration(self) -> int:
        return int(self.state["iteration"])

    def describe(self) -> str:
        return f"count to {self.total_iterations}"

    def meta(self) -> RunMeta:
        return RunMeta("count", self.cfg.env, {"n_glimpses": 3}, self.checkpoint_name, 1)

    def train_iteration(self) -> dict[str, Any]:
        self.state["iteration"] += 1
        self.state["sum"] += self.cfg.rate * self.state["iteration"]
        return {"loss": self.state["sum"], "accuracy": self.state["iteration"] % 3 / 3}

    def validate(self) -> float:
        return self.state["sum"] / 1000

    def save(self, path: Path, progress: Progress) -> None:
        data = json.dumps({**self.state, **asdict(progress)}).encode()
        atomic_write_bytes(path, data, keep_previous=True)

    def load(self, path: Path) -> Progress:
        try:
            saved = json.loads(path.read_text())
        except ValueError as exc:
            raise CheckpointError(f"{path} is corrupt", path, "corrupt") from exc
        self.state = {"iteration": saved["iteration"], "sum": saved["sum"]}
        return Progress.from_payload(saved)

    def evaluate(self) -> FinalEval:
        return FinalEval({"test_error_rate": 1 - self.state["sum"] / 1000}, "counted")


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


def _run(folder: Path, resume: bool = False, **config: Any) -> Path:
    cfg = CountConfig(run_dir=str(folder), progress=False, **config)
    return train(cfg, CountTrainer, str(folder) if resume else None)


def test_cadence_counts_iterations_or_units() -> None:
    every_other = Cadence(log_every=2, eval_every=0, checkpoint_every=5)
    assert [i for i in range(1, 11) if every_other.due(2, i)] == [2, 4, 6, 8, 10]
    assert not any(every_other.due(0, i) for i in range(1, 11))  # 0: never
    steps = Cadence(log_every=1, eval_every=448, checkpoint_every=1000, unit=224)  # PPO
    assert [i for i in range(1, 11) if steps.due(448, i)] == [2, 4, 6, 8, 10]
    assert [i for i in range(1, 11) if steps.due(1000, i)] == [5, 9]  # crosses 1000, 2000
    assert all(steps.due(1, i) for i in range(1, 11))


def test_a_resumed_run_ends_as_an_uninterrupted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(straight)
    out = capsys.readouterr().out
    assert "count to 12, device cpu; run folder" in out and "it 4/12 images 12" in out
    _run(killed, stop_after=7)  # checkpoint at 5, rows up to 6 logged
    assert not (killed / "eval.json").exists()
    assert json.loads((killed / "checkpoint.pt").read_text())["iteration"] == 5
    assert "--stop-after" in capsys.readouterr().out
    _run(killed, resume=True)
    assert _rows(straight) == _rows(killed)
    steps = [int(r["step"]) for r in _rows(straight)]
    assert steps == [6, 12, 18, 24, 30, 36]  # every 2 iterations of 3 steps
    validated = [int(r["step"]) for r in _rows(straight) if r["val_accuracy"]]
    assert validated == [12, 24, 36]  # every 4 iterations (the last one included)
    a, b = (json.loads((r / "eval.json").read_text()) for r in (straight, killed))
    assert a["test_error_rate"] == b["test_error_rate"] == 1 - 0.5 * 78 / 1000
    assert a["iterations"] == a["iterations_planned"] == 12 and a["stopped_early"] is False
    assert a["agent"] == "count" and a["parameters"] == 1 and a["config"]["iterations"] == 12
    meta = json.loads((straight / "meta.json").read_text())
    assert meta["schema_version"] == 1 and meta["env_kwargs"] == {"n_glimpses": 3}
    assert json.loads((straight / "config.json").read_text())["rate"] == 0.5


def test_the_time_cap_ends_cleanly_and_a_resume_finishes(tmp_path: Path) -> None:
    run = tmp_path / "capped"
    _run(run, max_minutes=0.0)
    summary = json.loads((run / "eval.json").read_text())
    assert summary["stopped_early"] is True and summary["iterations"] == 1
    assert summary["max_minutes"] == 0.0
    assert json.loads((run / "checkpoint.pt").read_text())["iteration"] == 1
    assert _rows(run)[-1]["val_accuracy"] != ""  # the last iteration is validated
    cfg = CountConfig(run_dir=str(run), progress=False, max_minutes=60.0)
    train(cfg, CountTrainer, str(run))
    done = json.loads((run / "eval.json").read_text())
    assert done["stopped_early"] is False and done["iterations"] == 12
    assert json.loads((run / "config.json").read_text())["max_minutes"] == 60.0


def test_validate_first_logs_the_untrained_model(tmp_path: Path) -> None:
    class First(CountTrainer):
        validate_first = True

    cfg = CountConfig(run_dir=str(tmp_path / "r"), progress=False, iterations=2)
    train(cfg, First, None)
    rows = _rows(tmp_path / "r")
    assert rows[0]["step"] == "0" and rows[0]["val_accuracy"] == "0.0"


def test_every_validation_is_reported_to_the_installed_callbacks(tmp_path: Path) -> None:
    seen: list[ProgressReport] = []
    with reporting(seen.append):
        _run(tmp_path / "r")
    _run(tmp_path / "quiet")  # outside the block: nobody is told
    # Validations at 4, 8 and 12 (every 4 and the last); sum after i iterations: 0.25 i (i + 1).
    assert [(r.iteration, r.step, r.value) for r in seen] == [
        (4, 12, 0.005), (8, 24, 0.018), (12, 36, 0.039)
    ]  # fmt: skip
    assert all(r.metric == "val_accuracy" and r.total_iterations == 12 for r in seen)
    assert {Path(r.run_dir).resolve() for r in seen} == {(tmp_path / "r").resolve()}
    summary = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert summary["started_at_iteration"] == 0
    assert summary["last_validation"] == {"metric": "val_accuracy", "value": 0.039, "iteration": 12}


def test_a_callback_that_raises_ends_the_run_after_the_checkpoint(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_at_8(report: ProgressReport) -> None:
        if report.iteration == 8:
            raise Stop

    run = tmp_path / "r"
    with reporting(stop_at_8), pytest.raises(Stop):
        _run(run, checkpoint_every=8)
    saved = json.loads((run / "checkpoint.pt").read_text())
    assert saved["iteration"] == 8 and saved["last_validation"]["iteration"] == 8
    assert not (run / "eval.json").exists() and not (run / ".lock").exists()
    seen: list[int] = []
    with reporting(lambda r: seen.append(r.iteration)):
        _run(run, resume=True, checkpoint_every=8)
    assert seen == [12]
    summary = json.loads((run / "eval.json").read_text())
    assert summary["started_at_iteration"] == 8 and summary["iterations"] == 12
    # A resume that starts at the end still knows the last validation (from the checkpoint).
    (run / "eval.json").unlink()
    _run(run, resume=True, checkpoint_every=8)
    again = json.loads((run / "eval.json").read_text())
    assert again["started_at_iteration"] == 12
    assert again["last_validation"] == {"metric": "val_accuracy", "value": 0.039, "iteration": 12}


def test_validate_first_is_reported_at_iteration_0(tmp_path: Path) -> None:
    class First(CountTrainer):
        validate_first = True

    seen: list[tuple[int, float]] = []
    cfg = CountConfig(run_dir=str(tmp_path / "r"), progress=False, iterations=4)
    with reporting(lambda r: seen.append((r.iteration, r.value))):
        train(cfg, First, None)
    assert seen == [(0, 0.0), (4, 0.005)]


def test_run_meta_is_flat_and_versioned() -> None:
    meta = RunMeta("ram", "E-v0", {"start": "random"}, "checkpoint.pt", 7, details={"arch": "x"})
    assert meta.to_json() == {
        "agent": "ram",
        "env_id": "E-v0",
        "env_kwargs": {"start": "random"},
        "checkpoint": "checkpoint.pt",
        "parameters": 7,
        "data_dir": None,
        "schema_version": 1,
        "arch": "x",
    }
    with pytest.raises(ValueError, match="agent"):
        RunMeta("ram", "E-v0", {}, "c.pt", 7, details={"agent": "ppo"}).to_json()


def test_env_kwargs_from_meta(tmp_path: Path) -> None:
    settings = {"n_glimpses": 8, "glimpse_size": 6, "start": "center", "reward": "dense"}
    meta = {"env_kwargs": {**settings, "split": "train", "sequential": True}, "data_dir": None}
    assert env_kwargs_from_meta(meta) == settings  # per-use keys dropped
    assert env_kwargs_from_meta(meta, "/given") == {**settings, "data_dir": "/given"}
    here = str(tmp_path)
    assert env_kwargs_from_meta({**meta, "data_dir": here})["data_dir"] == here
    gone = {**meta, "data_dir": str(tmp_path / "gone")}  # a folder of another machine
    assert "data_dir" not in env_kwargs_from_meta(gone)
    old = {"env_kwargs": {"n_glimpses": 7, "data_dir": here}}  # schema 0: inside env_kwargs
    assert env_kwargs_from_meta(old) == {"n_glimpses": 7, "data_dir": here}
    assert env_kwargs_from_meta(old, "/given")["data_dir"] == "/given"
    assert env_kwargs_from_meta({}) == {}


def _args(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    add_training_arguments(parser, CountConfig)
    return parser.parse_args(argv)


def test_config_from_args_new_and_resumed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = config_from_args(_args(["--rate", "2", "--no-progress"]), CountConfig, {"iterations": 3})
    assert (cfg.rate, cfg.iterations, cfg.progress) == (2.0, 3, False)
    with pytest.raises(UsageError, match="--rate"):  # what the config refuses: a usage error
        config_from_args(_args([]), CountConfig, {"rate": -1.0})
    with pytest.raises(SystemExit):
        _args(["--rate", "0"])  # bounds are checked as the flag is parsed

    run = tmp_path / "run"
    run.mkdir()
    saved = CountConfig(rate=2.0, max_minutes=1.0, stop_after=3)
    (run / "config.json").write_text(json.dumps(saved.to_dict()))
    argv = ["--resume", str(run), "--threads", "2", "--rate", "2", "--stop-after", "9"]
    resumed = config_from_args(_args(argv), CountConfig)
    assert resumed.threads == 2 and resumed.max_minutes == 1.0  # changed / kept
    assert resumed.stop_after == 9 and resumed.progress is True  # this invocation's
    assert f"resuming {run} with --threads 2 (was none)" in capsys.readouterr().out
    assert config_from_args(_args(["--resume", str(run)]), CountConfig).stop_after is None
    with pytest.raises(UsageError) as info:
        config_from_args(_args(["--resume", str(run), "--rate", "3"]), CountConfig)
    assert "--rate 3 (saved: 2)" in str(info.value) and "--max-minutes" in str(info.value)
    (run / "config.json").write_text(json.dumps({**saved.to_dict(), "extra_env_kwargs": {}}))
    assert config_from_args(_args(["--resume", str(run)]), CountConfig).rate == 2.0  # retired
    (run / "meta.json").write_text(json.dumps({"agent": "recurrent_ppo"}))
    with pytest.raises(GlimpseError, match="glimpse train ppo --resume"):
        config_from_args(_args(["--resume", str(run)]), CountConfig)
