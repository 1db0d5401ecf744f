"""A supervised baseline as a GlimpseBench entry (:func:`agents.baselines.bench_baseline`):
the same images right as :func:`agents.baselines.evaluate_baseline`, marked full image, the
Wilson interval against a hand computation, and the canvas-size check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.baselines import (
    bench_baseline,
    build_baseline,
    check_baseline_fits,
    evaluate_baseline,
)
from glimpse_env.bench import PROTOCOL, Result

pytestmark = pytest.mark.usefixtures("glimpse_data")

MNIST, TRANSLATED = "GlimpseMNIST-v0", "GlimpseTranslatedMNIST-v0"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained fc64 on 28x28 (its seeded weights: about chance, never all right)."""
    torch.manual_seed(0)
    return build_baseline("fc64", 28)


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """The Wilson bounds as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n in p."""
    z, p_hat = 1.959963984540054, k / n
    roots = np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat])
    return float(min(roots)), float(max(roots))


def test_bench_baseline_counts_what_evaluate_baseline_counts(model: torch.nn.Module) -> None:
    expected = evaluate_baseline(model, MNIST, "test", n_images=150, batch_size=64)
    result = bench_baseline(model, MNIST, n_images=150, seeds=(0, 3), batch_size=64, name="fc")
    assert isinstance(result, Result)
    assert [r.n_correct for r in result.rollouts] == [expected["n_correct"]] * 2
    assert [r.seed for r in result.rollouts] == [0, 3]  # the canvases do not depend on it
    assert result.accuracy == expected["accuracy"] and result.n_images == 150
    k = expected["n_correct"]
    assert 0 < k < 150
    assert result.accuracy_interval == pytest.approx(_wilson_by_hand(k, 150), abs=1e-12)
    assert result.interval_method == "wilson-95-over-images"
    assert result.full_image is True and result.n_glimpses == 0
    assert (result.protocol, result.policy, result.env_id) == (PROTOCOL, "fc", MNIST)
    assert (result.mode, result.split, result.n_classes) == ("deterministic", "test", 10)
    assert result.anytime_accuracy == [] and result.anytime_mean is None
    assert result.on_digit_share is None and result.first_glimpse_distance_px is None
    assert result.mean_glimpses is None and result.glimpses_by_class is None
    assert result.n_parameters == 55_050  # 784*64 + 64 + 64*64 + 64 + 64*10 + 10
    assert result.wall_seconds == pytest.approx(sum(r.wall_seconds for r in result.rollouts))
    assert result.episodes_per_second > 0
    assert Result.from_dict(result.to_dict()) == result
    assert model.training is True  # its mode restored after the eval-mode pass


def test_env_kwargs_are_recorded_as_for_a_glimpse_policy(
    model: torch.nn.Module, mnist_dir: object
) -> None:
    kwargs = {"data_dir": str(mnist_dir), "n_glimpses": 3, "split": "train"}
    result = bench_baseline(model, MNIST, n_images=10, env_kwargs=kwargs, radius_px=2.0)
    assert result.env_kwargs == {"n_glimpses": 3} and result.radius_px == 2.0
    assert result.policy == "FCBaseline"  # no name given: the model's class


def test_canvas_size_must_fit(model: torch.nn.Module) -> None:
    check_baseline_fits(model, MNIST, MNIST)
    check_baseline_fits(model, MNIST, "GlimpseMNISTAdaptive-v0")  # the same 28x28 canvases
    with pytest.raises(ValueError, match=r"trained on GlimpseMNIST-v0 with 28x28 canvases, "
                       r"but GlimpseTranslatedMNIST-v0 has 60x60 canvases"):  # fmt: skip
        check_baseline_fits(model, MNIST, TRANSLATED)
    with pytest.raises(ValueError, match=r"takes 28x28 canvases, but .* has 60x60"):
        bench_baseline(model, TRANSLATED, n_images=5)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"n_images": 0}, "n_images must be an integer in 1..10000"),
        ({"n_images": 10_001}, "n_images must be an integer in 1..10000"),
        ({"seeds": ()}, "at least one seed"),
    ],
)
def test_bad_arguments(model: torch.nn.Module, kwargs: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        bench_baseline(model, MNIST, **kwargs)
