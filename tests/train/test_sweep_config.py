"""``glimpse sweep``'s config parsing, grid expansion, trial command lines and the one-line
error without Ray (no Ray needed; the sweep itself is tested in tests_integration/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from train.cli import main
from train.errors import UsageError
from train.sweep import RAY_MISSING, expand, flags_to_argv, load_config, parse_config, trial_argv


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
        ({"command": "ram", "asha": {"grace_period": 1}}, "'asha' is not supported"),
    ],
)
def test_bad_configs_are_refused(data: object, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_config(data)
    assert needle in str(info.value)


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
