"""``glimpse sweep``'s config parsing (ASHA included), grid expansion, trial command lines,
the trial's reports (through a stand-in for ``ray.tune``) and the one-line error without Ray
(no Ray needed; the sweep itself is tested in tests_integration/)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from train.cli import main
from train.errors import UsageError
from train.sweep import (
    RAY_MISSING,
    AshaConfig,
    _error_line,
    _stopped_before,
    _trainable,
    expand,
    flags_to_argv,
    load_config,
    parse_config,
    run_trial,
    trial_argv,
)


def test_grid_expands_to_every_combination_with_stable_names() -> None:
    config = parse_config(
        {"command": "ram", "fixed": {"epochs": 1}, "grid": {"seed": [0, 1], "lr": [0.1, 0.01]}}
    )
    trials = expand(config)
    assert [(t.flags["seed"], t.flags["lr"]) for t in trials] == [
        (0, 0.1), (0, 0.01), (1, 0.1), (1, 0.01)
    ]  # fmt: skip
    assert all(t.flags["epochs"] == 1 for t in trials)
    assert trials[0].name == "ram-000_seed0_lr0.1"
    assert len({t.name for t in trials}) == 4
    assert [t.name for t in expand(config)] == [t.name for t in trials]


def test_samples_pick_seeded_random_points() -> None:
    config = parse_config({"command": "ppo", "grid": {"lr": [1, 2, 3, 4, 5]}, "samples": 6})
    first, second = expand(config), expand(config)
    assert len(first) == 6
    assert [t.flags for t in first] == [t.flags for t in second]
    assert all(t.flags["lr"] in (1, 2, 3, 4, 5) for t in first)
    assert len({t.name for t in first}) == 6


def test_no_grid_is_one_trial_and_metric_mode() -> None:
    config = parse_config({"command": "baseline", "metric": "val_accuracy"})
    assert [t.name for t in expand(config)] == ["baseline-000"]
    assert config.mode == "max"
    assert parse_config({"command": "ram"}).mode == "min"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([1], "must be a JSON object"),
        ({"command": "dqn"}, "'command' is 'dqn'"),
        ({"command": "ram", "bogus": 1}, "unknown sweep config keys ['bogus']"),
        ({"command": "ram", "grid": {"seed": []}}, "non-empty list"),
        ({"command": "ram", "grid": {"seed": 3}}, "non-empty list"),
        ({"command": "ram", "fixed": {"seed": 0}, "grid": {"seed": [1]}}, "both fixed and"),
        ({"command": "ram", "fixed": {"run_dir": "x"}}, "sets ['run_dir'] itself"),
        ({"command": "ram", "samples": 0}, "'samples' is 0"),
        ({"command": "ram", "asha": 3}, "'asha' must be an object"),
        ({"command": "ram", "asha": {"metric": "x"}}, "unknown sweep config asha keys ['metric']"),
        ({"command": "ram", "asha": {"grace_period": 0}}, "'grace_period' is 0"),
        ({"command": "ram", "asha": {"grace_period": 1.5}}, "'grace_period' is 1.5"),
        ({"command": "ram", "asha": {"reduction_factor": 1}}, "'reduction_factor' is 1"),
        ({"command": "ram", "asha": {"grace_period": 9, "max_t": 8}}, "below 'grace_period'"),
    ],
)
def test_bad_configs_are_refused(data: object, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_config(data)
    assert needle in str(info.value)


def test_asha_config_and_the_metric_it_compares() -> None:
    config = parse_config({"command": "ram", "asha": {"grace_period": 50, "max_t": 400}})
    assert config.asha == AshaConfig(grace_period=50, reduction_factor=2.0, max_t=400)
    assert config.validation_metric == "val_accuracy"
    assert parse_config({"command": "ram", "asha": {}}).asha == AshaConfig()
    assert parse_config({"command": "ppo"}).validation_metric == "eval_accuracy"
    assert parse_config({"command": "ram"}).asha is None


class _FakeTune:
    """Stands in for ``ray.tune``: records reports; the ``stop_at``-th one raises SystemExit,
    as Tune's synchronous reporting does when a scheduler stops the trial."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.reports: list[dict[str, object]] = []
        self.stop_at = stop_at

    def report(self, metrics: dict[str, object]) -> None:
        self.reports.append(dict(metrics))
        if len(self.reports) == self.stop_at:
            raise SystemExit(0)


def _fake_ray(monkeypatch: pytest.MonkeyPatch, tune: _FakeTune) -> None:
    ray = types.ModuleType("ray")
    ray.tune = tune  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.tune", tune)  # type: ignore[arg-type]


#: A tiny fc64 baseline trial: 12 iterations of 16 canvases, validated every 4.
TINY_BASELINE = {
    "arch": "fc64", "env": "GlimpseMNIST-v0", "batch_size": 16, "epochs": 12 * 16 / 50_000,
    "eval_every": 4, "eval_images": 32, "test_images": 50, "checkpoint_every": 4,
    "threads": 1, "progress": False,
}  # fmt: skip


@pytest.mark.usefixtures("glimpse_data")
def test_a_trial_reports_every_validation_then_its_eval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tune = _FakeTune()
    _fake_ray(monkeypatch, tune)
    run_dir = tmp_path / "t"
    trial = {"command": "baseline", "flags": TINY_BASELINE, "run_dir": str(run_dir)}
    _trainable({"trial": trial})
    assert [r["iteration"] for r in tune.reports] == [4, 8, 12, 12]
    assert [r["step"] for r in tune.reports[:3]] == [64, 128, 192]
    final = tune.reports[-1]
    summary = json.loads((run_dir / "eval.json").read_text())
    assert final["test_error_rate"] == summary["test_error_rate"] and final["start"] == "new"
    assert final["val_accuracy"] == tune.reports[2]["val_accuracy"]
    assert summary["last_validation"]["value"] == final["val_accuracy"]
    # Read back: one report, the same numbers.
    tune.reports.clear()
    _trainable({"trial": trial})
    assert len(tune.reports) == 1 and tune.reports[0]["start"] == "done"
    assert tune.reports[0]["val_accuracy"] == final["val_accuracy"]


@pytest.mark.usefixtures("glimpse_data")
def test_a_trial_tune_stops_ends_quietly_at_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tune = _FakeTune(stop_at=2)  # stopped at its second validation (iteration 8)
    _fake_ray(monkeypatch, tune)
    run_dir = tmp_path / "t"
    trial = {"command": "baseline", "flags": TINY_BASELINE, "run_dir": str(run_dir)}
    _trainable({"trial": trial})  # returns: no error, no final report
    assert [r["iteration"] for r in tune.reports] == [4, 8]
    assert not (run_dir / "eval.json").exists() and not (run_dir / ".lock").exists()
    with (run_dir / "metrics.csv").open() as f:
        assert f.read().splitlines()[-1].startswith("128,")  # the last row: iteration 8
    # A rerun of the sweep leaves it stopped (sweep.json remembers), unless its flags changed.
    params = [{"name": "t", "flags": TINY_BASELINE, "run_dir": str(run_dir)}]
    row = {"name": "t", "flags": TINY_BASELINE, "status": "stopped", "metrics": {}}
    (tmp_path / "sweep.json").write_text(json.dumps({"trials": [row]}))
    assert list(_stopped_before(tmp_path, params)) == ["t"]
    other = [{**params[0], "flags": {**TINY_BASELINE, "lr": 0.1}}]
    assert _stopped_before(tmp_path, other) == {}


def test_a_failed_trial_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError) as info:
        run_trial("baseline", {"arch": "fc64", "lr": -1}, tmp_path / "t")
    message = str(info.value)
    why = "glimpse train baseline: error: argument --lr: must be a number > 0, got -1"
    assert message.startswith(f"trial t failed: {why}")
    assert why in capsys.readouterr().err  # still shown where it ran
    # Tune's report of it: the trial's own exception is its last line.
    report = Exception(f"ray::ImplicitFunc.train() (pid=1)\n  File x\nRuntimeError: {message}\n")
    assert _error_line(report) == f"RuntimeError: {message}"
    assert _error_line(None) is None


def test_flags_to_argv() -> None:
    assert flags_to_argv({"batch_size": 16, "hybrid": False, "detach_location_input": True,
                          "std_end": None}) == [
        "--batch-size", "16", "--no-hybrid", "--detach-location-input"
    ]  # fmt: skip


def test_trial_argv_new_resume_restart(tmp_path: Path) -> None:
    run_dir = tmp_path / "t"
    argv, start = trial_argv("ram", {"seed": 1, "threads": 1}, run_dir)
    assert start == "new"
    assert argv[:2] == ["train", "ram"] and argv[argv.index("--run-dir") + 1] == str(run_dir)
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    argv, start = trial_argv("ram", {"seed": 1}, run_dir)
    assert start == "restart" and "--overwrite" in argv
    (run_dir / "meta.json").write_text(json.dumps({"checkpoint": "checkpoint.pt"}))
    (run_dir / "checkpoint.pt").write_bytes(b"x")
    argv, start = trial_argv("ram", {"seed": 1, "threads": 2}, run_dir)
    assert start == "resume"
    assert argv == ["train", "ram", "--resume", str(run_dir), "--no-progress", "--threads", "2"]


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not found"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_config(bad)


def test_missing_ray_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"command": "ram", "grid": {"seed": [0]}}))
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(config), "--out", str(tmp_path / "out")])
    assert info.value.code == 1
    assert capsys.readouterr().err == f"glimpse: error: {RAY_MISSING}\n"
    assert "pip install 'glimpse-env[ray]'" in RAY_MISSING


def test_help_works_without_ray(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "sweep" in capsys.readouterr().out
