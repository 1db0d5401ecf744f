"""``benchmarks/glimpse_targeting.py``: glimpse-to-digit statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from conftest import import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_stats_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("glimpse_targeting", monkeypatch)
    # 60x60 canvas. Image 0: glimpse 1 at the centre (pixel (30, 30)), glimpse 2 at
    # (-0.5, 0.5) = column 15, row 45, exactly on its digit centre (row 45, col 15).
    # Image 1: both glimpses at the centre, digit centre (row 30, col 40): 10 px away.
    locations = np.array([[[0.0, 0.0], [-0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    centres = np.array([[45.0, 15.0], [30.0, 40.0]])
    stats = script.targeting_stats(locations, centres, np.array([True, False]), 60, 8.0)
    assert stats["n_images"] == 2 and stats["accuracy"] == 0.5
    assert stats["hit_fraction"] == 0.5  # only image 0 has a glimpse t >= 2 within 8 px
    assert stats["accuracy_hit"] == 1.0 and stats["accuracy_miss"] == 0.0
    first, second = stats["per_glimpse"]
    assert first["median_distance_px"] == pytest.approx((math.hypot(15, 15) + 10) / 2)
    assert second["median_distance_px"] == pytest.approx(5.0)
    assert first["within_radius"] == 0.0 and second["within_radius"] == 0.5
    assert first["corr_x"] is None and first["corr_y"] is None  # constant locations
    assert second["corr_x"] == pytest.approx(1.0)  # columns (15, 30) vs (15, 40)
    assert second["corr_y"] == pytest.approx(1.0)  # rows (45, 30) vs (45, 30)


class _CentrePolicy:
    """Always glimpses at the canvas centre and answers class 0."""

    env_id = "GlimpseTranslatedMNIST-v0"
    env_kwargs: ClassVar[dict[str, Any]] = {"n_glimpses": 3}

    def initial_state(self, num_envs: int) -> None:
        return None

    def act(self, obs: dict[str, Any], state: None, deterministic: bool) -> tuple[Any, None]:
        n = len(obs["location"])
        actions = np.full((n, 12), -1.0, dtype=np.float32)
        actions[:, :2] = 0.0
        actions[:, 2] = 1.0
        return actions, None


def test_end_to_end_against_the_env_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = import_benchmark("glimpse_targeting", monkeypatch)
    policy = _CentrePolicy()
    result = script.targeting(policy, split="val", n_images=50, radius=5.0, num_envs=20)
    assert result["env_id"] == "GlimpseTranslatedMNIST-v0" and result["n_images"] == 50
    assert len(result["per_glimpse"]) == 3

    # The same episodes, read independently: val images 0..49 in order.
    envs = gym.make_vec("GlimpseTranslatedMNIST-v0", num_envs=50, split="val", sequential=True)
    obs, _ = envs.reset(seed=0)
    centre = envs.unwrapped.layout["digit_pos"] + 14.0
    start = (np.asarray(obs["location"]) + 1.0) * 30.0  # (column, row)
    labels = envs.unwrapped._batch.labels
    envs.close()
    d_start = np.hypot(start[:, 0] - centre[:, 1], start[:, 1] - centre[:, 0])
    d_centre = np.hypot(30.0 - centre[:, 1], 30.0 - centre[:, 0])
    rows = result["per_glimpse"]
    assert rows[0]["median_distance_px"] == pytest.approx(np.median(d_start))
    for row in rows[1:]:
        assert row["median_distance_px"] == pytest.approx(np.median(d_centre))
        assert row["within_radius"] == pytest.approx(np.mean(d_centre <= 5.0))
        assert row["corr_x"] is None  # the location never moves
    assert result["accuracy"] == pytest.approx(np.mean(labels == 0))


def test_main_writes_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = import_benchmark("glimpse_targeting", monkeypatch)

    class _Loaded:
        policy = _CentrePolicy()

    monkeypatch.setattr(script, "load_policy", lambda path: _Loaded())
    out = tmp_path / "t.json"
    result = script.main(["some-run", "--split", "val", "--n-images", "10", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))


def test_env_without_digit_positions_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    script = import_benchmark("glimpse_targeting", monkeypatch)
    policy = _CentrePolicy()
    policy.env_id = "GlimpseMNIST-v0"
    with pytest.raises(ValueError, match="digit_pos"):
        script.targeting(policy, split="val", n_images=10)
    with pytest.raises(ValueError, match="mode"):
        script.targeting(_CentrePolicy(), mode="best")
