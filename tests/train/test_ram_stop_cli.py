"""``glimpse train ram`` on adaptive envs (learned stopping) end to end: training, exact
resume, eval, render, ``--init-from`` and the flags' errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import TINY_RAM

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

ADAPTIVE = ["--env", "GlimpseMNISTAdaptive-v0", "--glimpse-cost", "0.05", *TINY_RAM]


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_adaptive_run_resumes_exactly_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(["train", "ram", "--run-dir", str(straight), *ADAPTIVE]) == 0
    out = capsys.readouterr().out
    assert "with a stop network (glimpse cost 0.05)" in out and "glimpses per image" in out
    assert main(["train", "ram", "--run-dir", str(killed), *ADAPTIVE, "--stop-after", "17"]) == 0
    assert main(["train", "ram", "--resume", str(killed), "--no-progress"]) == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["model_config"]["stop"] is True and "stop_network.fc.weight" in a["model_state"]
    for name, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][name]), name
    rows = _rows(straight)
    assert rows == _rows(killed)
    glimpses = [float(r["glimpses"]) for r in rows]
    assert all(1.0 <= g <= 7.0 for g in glimpses) and float(rows[0]["glimpse_cost"]) == 0.05

    meta = json.loads((straight / "meta.json").read_text())
    assert meta["env_id"] == "GlimpseMNISTAdaptive-v0"
    assert meta["env_kwargs"]["glimpse_cost"] == 0.05
    summary = json.loads((straight / "eval.json").read_text())
    assert 1.0 <= summary["test_mean_glimpses"] <= 7.0
    assert summary["results"]["deterministic"]["mean_glimpses"] == summary["test_mean_glimpses"]

    capsys.readouterr()
    assert main(["eval", str(straight), "--json", "--n-images", "100", "--num-envs", "50"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["error_rate"] == pytest.approx(summary["test_error_rate"])
    assert result["mean_glimpses"] == pytest.approx(summary["test_mean_glimpses"])

    gif = tmp_path / "stops.gif"
    assert main(["render", str(straight), "--out", str(gif), "--n", "4"]) == 0
    with Image.open(gif) as image:
        assert 1 <= image.n_frames <= 7


def test_stop_flag_on_a_fixed_id(tmp_path: Path) -> None:
    """``--stop action --max-glimpses 3`` makes the fixed id adaptive; the env kwargs in
    meta.json rebuild it for eval. With ``--stop-objective expected`` every training
    episode takes the 3 glimpses; the stop options reach the model."""
    run = tmp_path / "run"
    args = ["--env", "GlimpseMNIST-v0", "--stop", "action", "--max-glimpses", "3"]
    stop = ["--stop-objective", "expected", "--stop-input", "confidence", "--stop-lr-scale", "5"]
    tiny = [*TINY_RAM, "--epochs", str(6 * 16 / 50_000)]
    assert main(["train", "ram", "--run-dir", str(run), *args, *stop, *tiny]) == 0
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    assert saved["model_config"]["stop_input"] == "confidence"
    assert saved["trainer"]["config"]["stop_objective"] == "expected"
    assert saved["trainer"]["config"]["stop_lr_scale"] == 5.0
    assert {float(r["horizon"]) for r in _rows(run)} == {3.0}
    meta = json.loads((run / "meta.json").read_text())
    assert meta["env_kwargs"] == {
        "reward": "sparse", "start": "random", "stop": "action", "max_glimpses": 3
    }  # fmt: skip
    summary = json.loads((run / "eval.json").read_text())
    assert 1.0 <= summary["test_mean_glimpses"] <= 3.0


def test_fixed_runs_keep_their_env_kwargs(tmp_path: Path) -> None:
    """Without the stop flags nothing new reaches the env or meta.json."""
    from train.ram import RAMTrainConfig

    assert RAMTrainConfig().env_kwargs() == {"start": "random", "reward": "sparse"}
    cost = RAMTrainConfig(env="GlimpseMNISTAdaptive-v0", glimpse_cost=0.01, max_glimpses=5)
    assert cost.env_kwargs() == {
        "start": "random", "reward": "sparse", "glimpse_cost": 0.01, "max_glimpses": 5
    }  # fmt: skip


def test_init_from_pretrained_loads_the_weights() -> None:
    """The shipped 7-glimpse model's tensors all load; the new stop network starts at its
    initial logit (zero weights, bias -2)."""
    from agents.checkpoints import load_checkpoint
    from agents.pretrained import pretrained_path
    from train.ram import RAMRun, RAMTrainConfig

    cfg = RAMTrainConfig(
        env="GlimpseMNISTAdaptive-v0", init_from="pretrained:GlimpseMNIST-v0", batch_size=4
    )
    run = RAMRun(cfg, torch.device("cpu"))
    try:
        shipped = load_checkpoint(pretrained_path("GlimpseMNIST-v0") / "model.pt")["model_state"]
        state = run.trainer.model.state_dict()
        for key, value in shipped.items():
            key = key.replace("core_network.cell.", "core_network.rnn.")
            key = key + "_l0" if key.startswith("core_network.rnn.") else key
            assert torch.equal(state[key], value), key
        assert not state["stop_network.fc.weight"].any()
        assert state["stop_network.fc.bias"].item() == -2.0
        assert run.meta().to_json()["init_from"] == "pretrained:GlimpseMNIST-v0"
        assert "from pretrained:GlimpseMNIST-v0" in run.describe()
    finally:
        run.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--init-from", "pretrained:Nope-v0"], "no pretrained weights for 'Nope-v0'"),
        (["--init-from", "{missing}"], "not found"),
        (["--init-from", "pretrained:GlimpseMNIST-v0"], "--core-hidden"),  # tiny sizes
        (["--glimpse-cost-warmup", "0.5", "--env", "GlimpseMNIST-v0"], "takes every glimpse"),
        (["--stop-input", "state", "--env", "GlimpseMNIST-v0"], "use an ...Adaptive id"),
        (["--n-glimpses", "4"], "pass --max-glimpses 4"),
        (["--max-glimpses", "4", "--env", "GlimpseMNIST-v0"], "pass --n-glimpses 4"),
        (["--glimpse-cost", "-1"], "--glimpse-cost"),
        (["--stop", "sometimes"], "--stop"),
    ],
)
def test_stop_flag_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    args = [a.format(missing=tmp_path / "nothing") for a in args]
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "ram", "--run-dir", str(run), *ADAPTIVE, *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code in (1, 2) and message in err and len(err.splitlines()) == 1, err
    assert not run.exists()


class _StopsAtItsIndex:
    """Sub-env i stops after glimpse i + 1 (names class 0, looks at the centre)."""

    env_id = "GlimpseMNISTAdaptive-v0"
    env_kwargs: dict[str, Any] = {}  # noqa: RUF012

    def initial_state(self, num_envs: int) -> int:
        return 0

    def act(self, obs: Any, state: int, deterministic: bool) -> tuple[np.ndarray, int]:
        n = len(obs["location"])
        actions = np.full((n, 13), -1.0, dtype=np.float32)
        actions[:, :2] = 0.0
        actions[:, 2] = 1.0
        actions[np.arange(n) == state, -1] = 1.0
        return actions, state + 1


def test_render_shows_each_episode_until_it_stops() -> None:
    from train.render_cmd import render_policy

    frames = render_policy(_StopsAtItsIndex(), "GlimpseMNISTAdaptive-v0", n=3)
    assert len(frames) == 3 and all(len(row) == 3 for row in frames)
    # Image 0 stopped after glimpse 1: its last frame (label, prediction, "stopped after
    # 1/7") stays; image 2's frames go on.
    assert np.array_equal(frames[0][0], frames[2][0])
    assert np.array_equal(frames[1][1], frames[2][1])
    assert not np.array_equal(frames[1][2], frames[2][2])
