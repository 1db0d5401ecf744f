"""The paper's FC / Conv baselines: sizes, the canvases they are tested on, CLI end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.baselines import (
    ARCHS,
    ConvBaseline,
    FCBaseline,
    build_baseline,
    count_parameters,
    draw_canvases,
    evaluate_baseline,
    load_baseline,
    make_canvas_env,
)
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

#: Parameter counts (weights + biases) per arch and canvas side.
COUNTS = {
    ("fc64", 28): 55_050,
    ("fc64", 60): 235_274,
    ("fc64", 100): 644_874,
    ("fc256", 28): 269_322,  # the seed blog's FC count on 28x28
    ("fc256", 60): 990_218,  # ... and on 60x60
    ("fc256", 100): 2_628_618,
    ("conv", 28): 36_402,
    ("conv", 60): 251_442,  # the seed blog's Conv count on 60x60
    ("conv", 100): 742_962,
}

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


def _fc_count(size: int, hidden: int) -> int:
    return size * size * hidden + hidden + hidden * hidden + hidden + hidden * 10 + 10


def _conv_count(size: int) -> int:
    out = (size - 10) // 5 + 1
    return 8 * 100 + 8 + 8 * out * out * 256 + 256 + 256 * 10 + 10


@pytest.mark.parametrize("size", [28, 60, 100])
@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_parameter_counts(arch: str, size: int) -> None:
    model = build_baseline(arch, size)
    expected = _conv_count(size) if arch == "conv" else _fc_count(size, int(arch[2:]))
    assert count_parameters(model) == COUNTS[arch, size] == expected
    images = torch.rand(3, size, size)
    assert model(images).shape == (3, 10)
    assert torch.allclose(model(images[:, None]), model(images))  # (N, 1, S, S) works too
    assert isinstance(model, ConvBaseline if arch == "conv" else FCBaseline)


def test_architecture_details() -> None:
    fc = FCBaseline(28, 64)
    linears = [m for m in fc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 64), (64, 64), (64, 10)]
    conv = ConvBaseline(60)
    assert conv.out_size == 11
    layer = conv.conv[0]
    assert (layer.out_channels, layer.kernel_size, layer.stride) == (8, (10, 10), (5, 5))
    with pytest.raises(ValueError, match="arch"):
        build_baseline("fc128", 28)


def test_evaluated_canvases_are_the_envs_fixed_test_canvases() -> None:
    env_id = "GlimpseClutteredMNIST-v0"
    source = make_canvas_env(env_id, "test")
    canvases, labels = draw_canvases(source, 0, 12)
    assert canvases.shape == (12, 60, 60) and canvases.dtype == np.uint8

    # What a glimpse agent is tested on: the vector env in sequential order ...
    envs = gym.make_vec(env_id, num_envs=12, split="test", sequential=True)
    _, info = envs.reset(seed=0)
    assert np.array_equal(info["image_index"], np.arange(12))
    assert np.array_equal(envs.unwrapped.canvases, canvases)
    envs.close()
    # ... and, in random order with any seed, the same canvas for the same image.
    envs = gym.make_vec(env_id, num_envs=8, split="test")
    _, info = envs.reset(seed=123)
    for j, index in enumerate(info["image_index"]):
        canvas, label = draw_canvases(source, int(index), int(index) + 1)
        assert np.array_equal(envs.unwrapped.canvases[j], canvas[0])
        assert label[0] == source.data.labels[index]
    envs.close()
    assert np.array_equal(labels, source.data.labels[:12])
    assert not source.sequential  # draw_canvases leaves the env as it found it

    # evaluate_baseline classifies exactly those canvases, once each.
    torch.manual_seed(0)
    model = build_baseline("conv", 60)
    result = evaluate_baseline(model, env_id, "test", n_images=12, batch_size=5)
    with torch.no_grad():
        predictions = model(torch.from_numpy(canvases).float() / 255).argmax(dim=1).numpy()
    assert result["n_correct"] == int(np.sum(predictions == labels))
    assert result["n_images"] == 12 and result["mode"] == "deterministic"
    assert result["error_rate"] == pytest.approx(1 - result["accuracy"])


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_train_eval_and_exact_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(["train", "baseline", "--run-dir", str(straight), *TINY]) == 0
    assert main(["train", "baseline", "--run-dir", str(killed), *TINY, "--stop-after", "17"]) == 0
    assert not (killed / "eval.json").exists()
    assert torch.load(killed / "checkpoint.pt", weights_only=False)["iteration"] == 15
    assert main(["train", "baseline", "--resume", str(killed), "--no-progress"]) == 0

    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(killed / "checkpoint.pt", weights_only=False)
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
    assert meta["parameters"] == COUNTS["fc64", 28] and "env_kwargs" in meta
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
    with pytest.raises(SystemExit, match="sampled"):
        main(["eval", str(straight), "--mode", "sample", "--n-images", "10"])


def test_fc64_learns_mnist_quickly(tmp_path: Path) -> None:
    """fc64 on 28x28 MNIST: 0.4 epoch (312 steps of 64) is far above chance (10%)."""
    run = tmp_path / "learn"
    args = ["--arch", "fc64", "--epochs", "0.4", "--batch-size", "64", "--eval-images", "500"]
    args += ["--test-images", "100", "--threads", "1", "--no-progress", "--log-every", "1000"]
    assert main(["train", "baseline", "--run-dir", str(run), *args]) == 0
    val = evaluate_baseline(load_baseline(run).model, "GlimpseMNIST-v0", "val", n_images=500)
    assert val["accuracy"] > 0.8
