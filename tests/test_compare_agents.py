"""``benchmarks/compare_agents.py`` end to end with a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_compare_agents_tiny_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = import_benchmark("compare_agents", monkeypatch)
    out_dir, runs_dir = tmp_path / "results", tmp_path / "runs"
    argv = [
        "--env-steps", "3000",
        "--eval-points", "2",
        "--eval-images", "100",
        "--final-eval-images", "200",
        "--threads", "1",
        "--out-dir", str(out_dir),
        "--runs-dir", str(runs_dir),
    ]  # fmt: skip
    assert script.main(argv) == 0

    for name in ("compare_agents.json", "compare_agents.png", "compare_agents.md"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0
    report = json.loads((out_dir / "compare_agents.json").read_text())
    assert report["env_steps_budget"] == 3000
    assert report["curve_evaluation"]["images"] == 100
    assert report["curve_evaluation"]["split"] == "test"
    assert set(report["results"]) == {"ram", "ppo", "recurrent_ppo"}
    for agent, by_reward in report["results"].items():
        run = by_reward["sparse"]["0"]
        assert {
            "env_steps",
            "final_test_error",
            "wall_clock_s",
            "parameters",
            "curve",
        } <= set(run), agent
        assert run["env_steps"] >= 3000
        assert run["final_test_images"] == 200
        assert 0.0 <= run["final_test_error"] <= 1.0
        assert run["parameters"] > 10_000
        assert run["wall_clock_s"] > 0
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
    table = (out_dir / "compare_agents.md").read_text()
    assert "| agent | reward | env steps | final test error |" in table
    assert "| agent | reward |" in capsys.readouterr().out

    # A second invocation reuses the finished runs instead of training again.
    assert script.main([*argv, "--reuse", "--agents", "ram"]) == 0
    again = json.loads((out_dir / "compare_agents.json").read_text())
    assert again["results"]["ram"] == report["results"]["ram"]
