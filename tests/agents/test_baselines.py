"""The paper's FC / Conv baselines: sizes, the canvases they are tested on, CLI end to end."""

from __future__ import annotations

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


def test_fc64_learns_mnist_quickly(tmp_path: Path) -> None:
    """fc64 on 28x28 MNIST: 0.4 epoch (312 steps of 64) is far above chance (10%)."""
    run = tmp_path / "learn"
    args = ["--arch", "fc64", "--epochs", "0.4", "--batch-size", "64", "--eval-images", "500"]
    args += ["--test-images", "100", "--threads", "1", "--no-progress", "--log-every", "1000"]
    assert main(["train", "baseline", "--run-dir", str(run), *args]) == 0
    val = evaluate_baseline(load_baseline(run).model, "GlimpseMNIST-v0", "val", n_images=500)
    assert val["accuracy"] > 0.8
