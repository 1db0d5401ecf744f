"""``benchmarks/stopping_pareto.py``: the never-stop override, the point parser, the plot,
and one measured point of a tiny stopping run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


class _Stops:
    """Stops at once and says "3"."""

    n_parameters = 5

    def initial_state(self, n: int) -> None:
        return None

    def act(self, obs, state, deterministic):
        n = len(obs["location"])
        actions = np.full((n, 13), -1.0, np.float32)
        actions[:, 5] = actions[:, -1] = 1.0
        return actions, state


def test_never_stop_overrides_only_the_stop_score(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("stopping_pareto", monkeypatch)
    policy = script.NeverStop(_Stops())
    actions, _ = policy.act({"location": np.zeros((4, 2))}, None, True)
    assert (actions[:, -1] == -1.0).all() and (actions[:, 5] == 1.0).all()
    assert policy.n_parameters == 5
    assert script.parse_points("2:8.5,4:1.91") == [(2, 8.5), (4, 1.91)]
    assert script.parse_points(None) == []


def test_main_measures_a_run_and_plots_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnist_dir: Path
) -> None:
    script = import_benchmark("stopping_pareto", monkeypatch)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def fake_measure(run_dir: str, n_images: int | None, num_envs: int) -> dict:
        from glimpse_env.bench import evaluate

        own = evaluate(_Stops(), "GlimpseMNISTAdaptive-v0", n_images=n_images, num_envs=num_envs)
        never = evaluate(
            script.NeverStop(_Stops()), "GlimpseMNISTAdaptive-v0", n_images=n_images,
            num_envs=num_envs,
        )  # fmt: skip
        return {
            "run_dir": run_dir, "env_id": "GlimpseMNISTAdaptive-v0", "glimpse_cost": 0.01,
            "series": "expected objective", "error_percent": 100 * own.error_rate,
            "mean_glimpses": own.mean_glimpses,
            "forced_error_percent": [100 * (1 - a) for a in never.anytime_accuracy],
        }  # fmt: skip

    monkeypatch.setattr(script, "measure", fake_measure)
    out, plot = tmp_path / "r.json", tmp_path / "p.png"
    argv = ["runs/x", "--n-images", "50", "--num-envs", "25", "--fixed", "7:0.89"]
    assert script.main([*argv, "--out", str(out), "--plot", str(plot)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["runs"]
    assert row["mean_glimpses"] == 1.0 and len(row["forced_error_percent"]) == 7
    # Saying "3" after one glimpse or after seven: the same error.
    assert row["forced_error_percent"][-1] == pytest.approx(row["error_percent"])
    assert result["fixed"] == [[7, 0.89]] and result["cpu"]["model"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
