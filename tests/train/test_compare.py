"""``glimpse compare`` (train/compare*.py): end to end with a tiny budget, the summary and
its errors (one line on stderr, exit status 2 or 1)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from test_cli_errors import fails

from train.cli import build_parser, main
from train.compare_report import markdown_table, mean_curve, summarize
from train.compare_runs import RAM_COMMAND, Settings, ram_config

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_compare_tiny_budget(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_dir, runs_dir = tmp_path / "results", tmp_path / "runs"
    argv = [
        "compare",
        "--env-steps", "3000",
        "--eval-points", "2",
        "--eval-images", "100",
        "--final-eval-images", "200",
        "--threads", "1",
        "--out-dir", str(out_dir),
        "--runs-dir", str(runs_dir),
    ]  # fmt: skip
    assert main(argv) == 0

    for name in ("compare_agents.json", "compare_agents.png", "compare_agents.md"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0
    report = json.loads((out_dir / "compare_agents.json").read_text())
    assert report["env_steps_budget"] == 3000
    assert report["curve_evaluation"]["images"] == 100
    assert report["curve_evaluation"]["split"] == "test"
    assert report["curve_evaluation"]["eval_every_env_steps"] == 1500
    assert set(report["results"]) == {"ram", "ppo", "recurrent_ppo"}
    assert set(report["machine"]["cpu"]) >= {"model", "flags", "logical_cpus"}
    for agent, by_reward in report["results"].items():
        run = by_reward["sparse"]["0"]
        assert run["env_steps"] >= 3000
        assert run["final_test_images"] == 200
        assert 0.0 <= run["final_test_error"] <= 1.0
        assert run["parameters"] > 10_000
        assert run["wall_clock_s"] > 0
        # Every evaluation was timed apart (the periodic ones and the final one).
        assert run["eval_wall_clock_s"] > 0, agent
        assert run["total_wall_clock_s"] == pytest.approx(
            run["wall_clock_s"] + run["eval_wall_clock_s"], abs=0.02
        )
        steps = [s for s, _ in run["curve"]]
        assert steps[0] == 0 and steps[-1] == run["env_steps"], agent
        assert steps == sorted(steps) and len(steps) >= 2
        assert all(0.0 <= a <= 1.0 for _, a in run["curve"])
        assert Path(run["run_dir"]).is_relative_to(runs_dir)
    assert len(report["summary"]) == 3
    # The SB3 agents pick classes as RAM does (the default --class-head categorical).
    from agents.policy import load_policy
    from agents.sb3_distributions import LocationClassDistribution

    for agent in ("ppo", "recurrent_ppo"):
        assert report["settings"][agent]["class_head"] == "categorical"
        assert report["settings"][agent]["used_actions_only"] is True
        run_dir = Path(report["results"][agent]["sparse"]["0"]["run_dir"])
        model = load_policy(run_dir, device="cpu").policy.model
        assert isinstance(model.policy.action_dist, LocationClassDistribution)
    ram_run = load_policy(report["results"]["ram"]["sparse"]["0"]["run_dir"])  # a real run
    assert ram_run.meta["agent"] == "ram" and ram_run.policy.env_kwargs["n_glimpses"] == 7
    assert report["settings"]["ram"]["preset"] == RAM_COMMAND
    table = (out_dir / "compare_agents.md").read_text()
    assert "| agent | reward | env steps | final test error |" in table
    assert "| agent | reward |" in capsys.readouterr().out

    # A second invocation reuses the finished runs instead of training again.
    assert main([*argv, "--reuse", "--agents", "ram"]) == 0
    again = json.loads((out_dir / "compare_agents.json").read_text())
    assert again["results"]["ram"] == report["results"]["ram"]
    assert "reusing" in capsys.readouterr().out


def test_ram_trains_as_its_recorded_command(tmp_path: Path) -> None:
    """The RAM config of a comparison is the one ``RAM_COMMAND`` (recorded in the report)
    gives, up to the run's length and run control, and its length is whole batches."""
    from train.common import flag_values
    from train.ram import PRESETS, RAMTrainConfig

    settings = Settings(3000, 1500, 100, None, "cpu", 1, None)
    config = ram_config(settings, seed=3, run_dir=tmp_path)
    args = build_parser().parse_args(shlex.split(RAM_COMMAND)[1:])
    given = PRESETS[args.preset] | flag_values(args, RAMTrainConfig)
    default = RAMTrainConfig()
    run_control = {"epochs", "seed", "device", "run_dir", "data_dir", "threads", "progress"}
    for f in dataclasses.fields(RAMTrainConfig):
        if f.name not in run_control:
            assert getattr(config, f.name) == given.get(f.name, getattr(default, f.name)), f.name
    assert config.seed == 3 and config.threads == 1 and config.run_dir == str(tmp_path)
    assert round(config.epochs * 50_000 / config.batch_size) == 4  # ceil(3000 / 896) batches


def _run(error: float, wall: float, curve: list[list[float]]) -> dict[str, Any]:
    return {"env_steps": 896, "final_test_error": error, "wall_clock_s": wall,
            "parameters": 1234, "curve": curve}  # fmt: skip


def test_summary_over_seeds_and_its_table() -> None:
    results = {
        "ram": {
            "sparse": {
                "0": _run(0.2, 10.0, [[0, 0.1], [896, 0.5]]),
                "1": _run(0.4, 20.0, [[0, 0.3], [896, 0.7], [1792, 0.9]]),
            }
        }
    }
    (row,) = summarize(results)
    assert row["seeds"] == [0, 1] and row["env_steps"] == 896
    assert row["final_test_error_mean"] == pytest.approx(0.3)
    assert (row["final_test_error_min"], row["final_test_error_max"]) == (0.2, 0.4)
    assert row["wall_clock_s_mean"] == 15.0
    xs, means, lows, highs = mean_curve([r["curve"] for r in results["ram"]["sparse"].values()])
    assert xs == [0, 896] and means == pytest.approx([0.2, 0.6])  # cut to the shortest
    assert lows == [0.1, 0.5] and highs == [0.3, 0.7]
    table = markdown_table([row], "note")
    assert "| RAM-REINFORCE (hybrid) | sparse | 896 | 30.00% (20.00-40.00%, 2 seeds) " in table
    assert "| 15.0 s | 1,234 |" in table and table.endswith("\n\nnote\n")


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--env-steps", "0"], ["--env-steps", ">= 1"]),
        (["--eval-points", "-1"], ["--eval-points"]),
        (["--eval-images", "20000"], ["--eval-images", "10,000"]),
        (["--final-eval-images", "10001"], ["--final-eval-images", "10,000"]),
        (["--agents", "dqn"], ["--agents", "invalid choice"]),
        (["--rewards", "shaped"], ["--rewards"]),
        (["--class-head", "beta"], ["--class-head"]),
        (["--device", "tpu"], ["--device"]),
        (["--threads", "0"], ["--threads"]),
        (["--seeds", "0", "-1"], ["--seeds", ">= 0"]),
    ],
)
def test_bad_command_lines_are_one_line_with_status_2(
    argv: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, line = fails(capsys, ["compare", *argv, "--runs-dir", str(tmp_path)])
    assert code == 2 and all(word in line for word in words), line
    assert not any(tmp_path.iterdir())  # refused before any work


def test_nothing_to_train_is_one_line_with_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["compare", "--agents", "ram", "--rewards", "dense", "--out-dir", str(tmp_path)]
    code, line = fails(capsys, argv)
    assert code == 1 and "nothing was trained" in line and "--rewards sparse" in line
    assert not any(tmp_path.iterdir())


def test_a_missing_package_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    missing = {"sb3_contrib"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )
    argv = ["compare", "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path)]
    code, line = fails(capsys, argv)
    assert code == 1 and "sb3_contrib" in line and "pip install 'glimpse-env[sb3]'" in line
    missing = {"matplotlib"}
    code, line = fails(capsys, [*argv, "--agents", "ram"])
    assert code == 1 and "matplotlib" in line and "glimpse-env[viz]" in line
    assert not (tmp_path / "runs").exists()
