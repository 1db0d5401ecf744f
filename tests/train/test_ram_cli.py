"""``glimpse train ram`` / ``eval`` / ``render`` / ``demo`` end to end, and exact resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

#: A tiny RAM (same code paths as the paper's sizes) trained for 40 iterations of 16.
TINY = [
    "--batch-size", "16",
    "--epochs", str(40 * 16 / 50_000),
    "--glimpse-hidden", "16",
    "--location-hidden", "16",
    "--glimpse-out", "32",
    "--core-hidden", "32",
    "--eval-every", "20",
    "--eval-images", "64",
    "--test-images", "100",
    "--checkpoint-every", "5",
    "--log-every", "5",
    "--threads", "1",
    "--no-progress",
]  # fmt: skip


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_train_eval_render_and_exact_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(["train", "ram", "--run-dir", str(straight), *TINY]) == 0
    # "Killed" at iteration 17: the last checkpoint is from iteration 15, and metrics.csv
    # already has rows past it, which the resume must drop.
    assert main(["train", "ram", "--run-dir", str(killed), *TINY, "--stop-after", "17"]) == 0
    assert not (killed / "eval.json").exists()
    assert torch.load(killed / "checkpoint.pt", weights_only=False)["trainer"]["iteration"] == 15
    assert main(["train", "ram", "--resume", str(killed), "--no-progress"]) == 0

    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert a["trainer"]["iteration"] == b["trainer"]["iteration"] == 40
    for name, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][name]), name
    assert _rows(straight) == _rows(killed)
    ea = json.loads((straight / "eval.json").read_text())
    eb = json.loads((killed / "eval.json").read_text())
    assert ea["results"] == eb["results"]
    assert {"config.json", "meta.json", "checkpoint.pt", "metrics.csv", "eval.json"} <= {
        p.name for p in straight.iterdir()
    }
    assert (straight / "tb").is_dir()

    # glimpse eval --json reproduces eval.json's deterministic result.
    capsys.readouterr()
    assert main(["eval", str(straight), "--json", "--n-images", "100", "--num-envs", "50"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"error_rate", "accuracy", "n_images", "env_id", "split", "mode"} <= set(result)
    assert result["n_images"] == 100 and result["split"] == "test"
    assert result["mode"] == "deterministic" and result["env_id"] == "GlimpseMNIST-v0"
    assert result["error_rate"] == pytest.approx(ea["results"]["deterministic"]["error_rate"])
    assert result["error_rate"] == pytest.approx(1 - result["accuracy"])

    # Exported (slim, model-only) weights evaluate the same.
    from agents.pretrained import export_pretrained

    shipped = export_pretrained(straight, "glimpse train ram ...", dest=tmp_path / "shipped")
    assert {"model.pt", "meta.json", "eval.json", "COMMAND.md"} <= {
        p.name for p in shipped.iterdir()
    }
    assert main(["eval", str(shipped), "--json", "--n-images", "100", "--num-envs", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["error_rate"] == result["error_rate"]

    # glimpse render: an animated GIF with one frame per glimpse and a PNG grid.
    gif = tmp_path / "glimpses.gif"
    assert main(["render", str(straight), "--out", str(gif), "--n", "4"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 7
    assert gif.with_suffix(".png").is_file()


def test_demo_writes_gif(tmp_path: Path) -> None:
    out = tmp_path / "demo.gif"
    assert main(["demo", "--env", "GlimpseClutteredMNIST-v0", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.n_frames == 9  # reset + 8 steps


def test_eval_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["eval"])  # neither a checkpoint nor --pretrained
    with pytest.raises(FileNotFoundError, match="not found"):
        main(["eval", str(tmp_path / "missing")])
