"""``glimpse train ram`` / ``eval`` / ``render`` / ``demo`` end to end, and exact resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_runs import TINY_RAM

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

TINY = TINY_RAM


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
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["trainer"]["iteration"] == 15
    assert main(["train", "ram", "--resume", str(killed), "--no-progress"]) == 0

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
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


def test_eval_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["eval"])  # neither a checkpoint nor --pretrained
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tmp_path / "missing")])
    assert info.value.code == 1 and "not found" in capsys.readouterr().err


def test_max_minutes_stops_cleanly_and_resumes_exactly(tmp_path: Path) -> None:
    """``--max-minutes 0``: one iteration, then checkpoint, validation and test evaluation."""
    capped, straight = tmp_path / "capped", tmp_path / "straight"
    random = ["--location-policy", "random"]
    assert (
        main(["train", "ram", "--run-dir", str(capped), *TINY, *random, "--max-minutes", "0"]) == 0
    )
    summary = json.loads((capped / "eval.json").read_text())
    assert summary["stopped_early"] is True and summary["max_minutes"] == 0.0
    assert summary["iterations"] == 1 and summary["iterations_planned"] == 40
    assert summary["images_seen"] == 16 and summary["epochs"] == pytest.approx(16 / 50_000)
    assert 0.0 <= summary["test_error_rate"] <= 1.0
    state = torch.load(capped / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 1
    last = _rows(capped)[-1]
    assert last["step"] == "16" and last["val_accuracy"] != ""

    # A new cap on --resume: the run goes on to the end, exactly as if never stopped.
    assert (
        main(["train", "ram", "--resume", str(capped), "--no-progress", "--max-minutes", "60"]) == 0
    )
    assert main(["train", "ram", "--run-dir", str(straight), *TINY, *random]) == 0
    done = json.loads((capped / "eval.json").read_text())
    assert done["stopped_early"] is False and done["iterations"] == done["iterations_planned"] == 40
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["model_state"]
    b = torch.load(capped / "checkpoint.pt", weights_only=True)["model_state"]
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_random_location_policy_run(tmp_path: Path) -> None:
    """``--location-policy random``: location network untouched; evaluation reproducible."""
    from agents.locations import FixedLocationPolicy, RandomLocations
    from agents.policy import evaluate_policy
    from train.ram import load_run_policy

    run = tmp_path / "random"
    argv = ["train", "ram", "--run-dir", str(run), *TINY, "--location-policy", "random"]
    assert main([*argv, "--max-minutes", "0"]) == 0
    first = torch.load(run / "checkpoint.pt", weights_only=True)["model_state"]
    assert main([*argv, "--overwrite"]) == 0  # the same folder, a new run to the end: 40 its
    final = torch.load(run / "checkpoint.pt", weights_only=True)["model_state"]
    assert json.loads((run / "meta.json").read_text())["location_policy"] == "random"
    for name, tensor in final.items():
        same = torch.equal(tensor, first[name])
        assert same == name.startswith("location_network"), name

    # eval.json's numbers come back from the run folder, whatever the batch size.
    summary = json.loads((run / "eval.json").read_text())
    for mode in ("deterministic", "sample"):
        for num_envs in (50, 100):
            policy = load_run_policy(run)
            assert isinstance(policy, FixedLocationPolicy)
            assert isinstance(policy.locations, RandomLocations)
            result = evaluate_policy(policy, n_images=100, mode=mode, num_envs=num_envs)
            assert result["error_rate"] == summary["results"][mode]["error_rate"], (mode, num_envs)


def test_center_location_policy_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--location-policy center``: trains and saves with the location network untouched;
    ``glimpse eval RUN`` and ``glimpse bench --policy RUN`` look at the centre."""
    from agents.locations import CenterLocations, FixedLocationPolicy
    from train.ram import load_run_policy

    run = tmp_path / "center"
    argv = ["train", "ram", "--run-dir", str(run), *TINY, "--location-policy", "center"]
    assert main([*argv, "--max-minutes", "0"]) == 0
    first = torch.load(run / "checkpoint.pt", weights_only=True)["model_state"]
    assert main([*argv, "--overwrite"]) == 0
    final = torch.load(run / "checkpoint.pt", weights_only=True)["model_state"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["location_policy"] == "center"
    for name, tensor in final.items():
        assert torch.equal(tensor, first[name]) == name.startswith("location_network"), name
    policy = load_run_policy(run)
    assert isinstance(policy, FixedLocationPolicy)
    assert isinstance(policy.locations, CenterLocations)
    summary = json.loads((run / "eval.json").read_text())
    # Fixed locations: the sampled mode sends the same glimpses as the deterministic one.
    assert summary["results"]["sample"]["error_rate"] == summary["test_error_rate"]

    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--n-images", "100", "--num-envs", "50"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["error_rate"] == pytest.approx(summary["test_error_rate"])

    out = tmp_path / "bench"
    bench = ["bench", "--policy", str(run), "--n-images", "100", "--num-envs", "50"]
    assert main([*bench, "--out", str(out)]) == 0
    entry = json.loads((out / "result.json").read_text())["results"]["GlimpseMNIST-v0"]
    assert entry["accuracy"] == pytest.approx(1 - summary["test_error_rate"])
    assert entry["n_parameters"] == meta["parameters"]  # counted through the wrapper
    # The first chosen glimpse at the image's centre, which is the MNIST digit box's centre.
    assert entry["first_glimpse_distance_px"] == pytest.approx(0.0, abs=1e-9)


def test_random_glimpse_presets() -> None:
    from train.cli import build_parser
    from train.harness import config_from_args
    from train.ram import PRESETS, RAMTrainConfig

    envs = {
        "translated": "GlimpseTranslatedMNIST-v0",
        "cluttered60": "GlimpseClutteredMNIST-v0",
        "cluttered100": "GlimpseClutteredMNIST100-v0",
    }
    for name, env in envs.items():
        preset = PRESETS[f"{name}-random8"]
        assert preset == {"env": env, "n_glimpses": 8, "location_policy": "random"}
        assert PRESETS[f"{name}-8"]["env"] == env
    parser = build_parser()
    args = parser.parse_args(["train", "ram", "--preset", "cluttered100-random8"])
    cfg = config_from_args(args, RAMTrainConfig, PRESETS[args.preset])
    assert cfg.location_policy == "random" and cfg.n_glimpses == 8
    assert cfg.env == "GlimpseClutteredMNIST100-v0" and cfg.max_minutes is None
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "ram", "--location-policy", "fixed"])


def test_loss_options_reach_the_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--location-reward``, ``--reinforce-weight``, ``--no-detach-location-input`` and
    ``--location-mlp-hidden`` are recorded in config.json and configure the trainer and the
    model."""
    import agents.reinforce

    built = []
    real = agents.reinforce.ReinforceTrainer

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(agents.reinforce, "ReinforceTrainer", Spy)
    run = tmp_path / "options"
    flags = ["--location-reward", "expected", "--reinforce-weight", "0.5"]
    flags += ["--location-mlp-hidden", "8"]
    argv = ["train", "ram", "--run-dir", str(run), *TINY, *flags, "--no-detach-location-input"]
    assert main([*argv, "--max-minutes", "0"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["location_reward"] == "expected" and config["reinforce_weight"] == 0.5
    assert config["detach_location_input"] is False and config["location_mlp_hidden"] == 8
    trainer = built[-1].config
    assert trainer.location_reward == "expected" and trainer.reinforce_weight == 0.5
    assert built[-1].model.location_network.detach_input is False
    assert built[-1].model.location_network.hidden.out_features == 8
    with pytest.raises(SystemExit):
        main(["train", "ram", "--location-reward", "dense"])


def test_training_split_choices_and_held_out_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Training on ``val`` or ``test`` is refused; ``train_full`` says validation is not held out."""
    for split in ("val", "test"):
        with pytest.raises(SystemExit):
            main(["train", "ram", "--split", split, *TINY])
        assert "invalid choice" in capsys.readouterr().err
    full = tmp_path / "full"
    argv = ["train", "ram", "--run-dir", str(full), "--split", "train_full", *TINY]
    assert main([*argv, "--max-minutes", "0"]) == 0
    assert "contains the validation digits" in capsys.readouterr().out
    assert json.loads((full / "eval.json").read_text())["validation_held_out"] is False
    held = tmp_path / "held"
    assert main(["train", "ram", "--run-dir", str(held), *TINY, "--max-minutes", "0"]) == 0
    assert json.loads((held / "eval.json").read_text())["validation_held_out"] is True


def test_env_settings_reach_the_model_and_come_back_for_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--glimpse-size`` / ``--n-scales`` / ``--n-glimpses`` / ``--start``: the model reads
    those glimpses, meta.json records them, ``glimpse eval`` and ``render`` use them."""
    run = tmp_path / "run"
    env = ["--glimpse-size", "6", "--n-scales", "2", "--n-glimpses", "4", "--start", "center"]
    argv = ["train", "ram", "--run-dir", str(run), *TINY, *env]
    assert main([*argv, "--max-minutes", "0", "--data-dir", str(mnist_folder())]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["env_kwargs"] == {
        "glimpse_size": 6,
        "n_scales": 2,
        "n_glimpses": 4,
        "start": "center",
        "reward": "sparse",
    }
    assert meta["data_dir"] == str(mnist_folder().resolve()) and meta["schema_version"] == 1
    assert torch.load(run / "checkpoint.pt", weights_only=True)["glimpse_dim"] == 2 * 6 * 6
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--n-images", "50", "--num-envs", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 50
    gif = tmp_path / "r.gif"
    assert main(["render", str(run), "--out", str(gif), "--n", "2"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 4


def mnist_folder() -> Path:
    import os

    return Path(os.environ["GLIMPSE_ENV_DATA"])
