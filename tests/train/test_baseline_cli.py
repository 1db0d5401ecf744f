"""``glimpse train baseline``: train, evaluate, resume exactly after a kill, and ``--max-minutes``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from agents.baselines import evaluate_baseline, load_baseline
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

#: A tiny fc64 run: 40 iterations of 16 canvases.
TINY = [
    "--arch", "fc64",
    "--env", "GlimpseMNIST-v0",
    "--batch-size", "16",
    "--epochs", str(40 * 16 / 50_000),
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


def test_train_eval_and_exact_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(["train", "baseline", "--run-dir", str(straight), *TINY]) == 0
    assert main(["train", "baseline", "--run-dir", str(killed), *TINY, "--stop-after", "17"]) == 0
    assert not (killed / "eval.json").exists()
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["iteration"] == 15
    assert main(["train", "baseline", "--resume", str(killed), "--no-progress"]) == 0

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 40
    for name, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][name]), name
    assert _rows(straight) == _rows(killed)
    assert {"config.json", "meta.json", "checkpoint.pt", "metrics.csv", "eval.json"} <= {
        p.name for p in straight.iterdir()
    }
    meta = json.loads((straight / "meta.json").read_text())
    assert meta["agent"] == "baseline" and meta["arch"] == "fc64"
    assert meta["env_id"] == "GlimpseMNIST-v0" and meta["checkpoint"] == "checkpoint.pt"
    # fc64 on 28x28: 784*64 + 64 + 64*64 + 64 + 64*10 + 10 (as in tests/agents/test_baselines.py)
    assert meta["parameters"] == 55_050 and "env_kwargs" in meta
    saved = json.loads((straight / "eval.json").read_text())
    assert saved["results"] == json.loads((killed / "eval.json").read_text())["results"]

    # glimpse eval dispatches to the baseline path; same output keys as for glimpse agents.
    capsys.readouterr()
    assert main(["eval", str(straight), "--json", "--n-images", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"error_rate", "accuracy", "n_images", "n_correct", "env_id", "split", "mode"} <= set(
        result
    )
    assert result["n_images"] == 200 and result["split"] == "test"
    assert result["mode"] == "deterministic" and result["env_id"] == "GlimpseMNIST-v0"
    assert result["agent"] == "baseline"
    loaded = load_baseline(straight)
    direct = evaluate_baseline(loaded.model, "GlimpseMNIST-v0", "test", n_images=200)
    assert result["n_correct"] == direct["n_correct"]
    first100 = evaluate_baseline(loaded.model, "GlimpseMNIST-v0", "test", n_images=100)
    assert saved["results"]["deterministic"]["n_correct"] == first100["n_correct"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["eval", str(straight), "--mode", "sample", "--n-images", "10"])
    assert info.value.code == 2 and "sampled" in capsys.readouterr().err


def test_max_minutes_stops_cleanly_and_resumes_exactly(tmp_path: Path) -> None:
    """``--max-minutes 0``: one iteration, then checkpoint, validation and test evaluation."""
    capped, straight = tmp_path / "capped", tmp_path / "straight"
    assert main(["train", "baseline", "--run-dir", str(capped), *TINY, "--max-minutes", "0"]) == 0
    summary = json.loads((capped / "eval.json").read_text())
    assert summary["stopped_early"] is True and summary["max_minutes"] == 0.0
    assert summary["iterations"] == 1 and summary["iterations_planned"] == 40
    assert summary["images_seen"] == 16 and summary["epochs"] == pytest.approx(16 / 50_000)
    assert 0.0 <= summary["test_error_rate"] <= 1.0 and summary["val_error_rate"] is not None
    assert torch.load(capped / "checkpoint.pt", weights_only=True)["iteration"] == 1
    last = _rows(capped)[-1]
    assert last["step"] == "16" and last["val_accuracy"] != ""

    # A new cap on --resume: the run goes on to the end, exactly as if never stopped.
    resume = ["train", "baseline", "--resume", str(capped), "--no-progress"]
    assert main([*resume, "--max-minutes", "60"]) == 0
    assert main(["train", "baseline", "--run-dir", str(straight), *TINY]) == 0
    done = json.loads((capped / "eval.json").read_text())
    assert done["stopped_early"] is False and done["max_minutes"] == 60.0
    assert (
        done["iterations"] == done["iterations_planned"] == 40
        and done["epochs"] == 40 * 16 / 50_000
    )
    plain = json.loads((straight / "eval.json").read_text())
    assert plain["stopped_early"] is False and plain["max_minutes"] is None
    assert done["results"] == plain["results"]
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["model_state"]
    b = torch.load(capped / "checkpoint.pt", weights_only=True)["model_state"]
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_max_minutes_flag_and_default() -> None:
    """``--max-minutes`` is a flag of ``glimpse train baseline``; no cap by default."""
    from train.baseline import BaselineTrainConfig
    from train.cli import build_parser
    from train.harness import config_from_args

    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["train", "baseline"]), BaselineTrainConfig)
    assert cfg.max_minutes is None
    args = parser.parse_args(["train", "baseline", "--max-minutes", "2.5"])
    assert config_from_args(args, BaselineTrainConfig).max_minutes == 2.5


def test_train_full_says_validation_is_not_held_out(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The same split rule as ``glimpse train ram``: a notice, and ``validation_held_out``."""
    full = tmp_path / "full"
    argv = ["train", "baseline", "--run-dir", str(full), "--split", "train_full", *TINY]
    assert main([*argv, "--max-minutes", "0"]) == 0
    assert "contains the validation digits" in capsys.readouterr().out
    assert json.loads((full / "eval.json").read_text())["validation_held_out"] is False
