"""The paper's supervised baselines (Tables 1-2, rows "FC" and "Conv"): they see the whole canvas.

Mnih et al. (2014) compare RAM with networks that classify the full image in one pass:

* **FC** (:class:`FCBaseline`): the flattened ``S x S`` canvas, two hidden ReLU layers of
  64 or 256 units, a linear softmax output. With 256 units this has exactly the seed blog's
  counts (269,322 parameters on 28x28, 990,218 on 60x60).
* **Conv** (:class:`ConvBaseline`): "2 layers" in the paper's tables = one convolutional layer
  (8 filters of 10x10, stride 5, no padding, ReLU) and one fully connected ReLU layer of 256
  units, then the linear softmax output. On 60x60 this has exactly the seed blog's 251,442
  parameters, which identifies the architecture; on 28x28 it has 36,402 (the blog's 28x28
  model, 102,194, is not described and matches no plain variant of this).

Parameter counts (from :func:`count_parameters`; all layers have biases):

| arch | 28x28 | 60x60 | 100x100 |
|---|---|---|---|
| ``fc64`` | 55,050 | 235,274 | 644,874 |
| ``fc256`` | 269,322 | 990,218 | 2,628,618 |
| ``conv`` | 36,402 | 251,442 | 742,962 |

Baselines are not glimpse policies: they never move a glimpse, so they do not go through
:class:`agents.policy.Policy`. :func:`evaluate_baseline` instead draws the very canvases a
glimpse agent is tested on (image ``i`` of a ``val``/``test`` split has a fixed canvas, a pure
function of ``(split, i)``: :func:`draw_canvases`) and classifies each once. ``glimpse eval``
dispatches to it when a run's ``meta.json`` says ``"agent": "baseline"``.
:func:`bench_baseline` measures the same classification as a GlimpseBench entry that sees
the whole canvas (``glimpse bench --policy RUN_DIR``): a
:class:`glimpse_env.bench.Result` marked ``full_image`` (not glimpse-limited).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

import glimpse_env  # noqa: F401  (registers the ids)
from agents.policy import evaluation_result
from agents.ram import count_parameters
from glimpse_env.bench import (
    INTERVAL_METHOD,
    PROTOCOL,
    Result,
    Rollout,
    recorded_env_kwargs,
    summarise,
    wilson_interval,
)
from glimpse_env.envs import N_CLASSES, GlimpseEnv

__all__ = [
    "ARCHS",
    "ConvBaseline",
    "FCBaseline",
    "LoadedBaseline",
    "bench_baseline",
    "build_baseline",
    "canvases_to_tensor",
    "check_baseline_fits",
    "count_parameters",
    "draw_canvases",
    "evaluate_baseline",
    "load_baseline",
    "make_canvas_env",
    "model_payload",
]

#: Architectures of ``glimpse train baseline --arch``: the paper's FC 64, FC 256 and Conv rows.
ARCHS: tuple[str, ...] = ("fc64", "fc256", "conv")


class FCBaseline(nn.Module):
    """Fully connected baseline: flattened canvas -> ``n_layers`` x (Linear, ReLU) -> Linear.

    Args:
        image_size: side ``S`` of the square canvas.
        hidden: units of each hidden layer (the paper: 64 or 256).
        n_layers: hidden layers (the paper: 2).
        n_classes: outputs (class scores; softmax is in the loss).
    """

    def __init__(
        self, image_size: int, hidden: int, n_layers: int = 2, n_classes: int = N_CLASSES
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.image_size, self.hidden, self.n_layers = image_size, hidden, n_layers
        layers: list[nn.Module] = []
        width = image_size * image_size
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Class scores.

        Args:
            images: float ``(N, S, S)`` (or ``(N, 1, S, S)``) canvases in [0, 1].

        Returns:
            Logits ``(N, n_classes)``.
        """
        return self.net(images.reshape(images.shape[0], -1))


class ConvBaseline(nn.Module):
    """Convolutional baseline of the paper: Conv(8 @ 10x10, stride 5) -> ReLU -> FC 256 -> ReLU -> Linear.

    Shapes for an ``S x S`` canvas: ``(N, 1, S, S)`` -> conv -> ``(N, 8, o, o)`` with
    ``o = (S - 10) // 5 + 1`` (4 on 28x28, 11 on 60x60, 19 on 100x100) -> flatten
    ``(N, 8 o^2)`` -> ``(N, 256)`` -> ``(N, n_classes)``.

    Args:
        image_size: side ``S`` of the square canvas (at least ``kernel``).
        filters: convolution filters.
        kernel: filter side in pixels.
        stride: convolution stride.
        hidden: units of the fully connected hidden layer.
        n_classes: outputs (class scores; softmax is in the loss).
    """

    def __init__(
        self,
        image_size: int,
        filters: int = 8,
        kernel: int = 10,
        stride: int = 5,
        hidden: int = 256,
        n_classes: int = N_CLASSES,
    ) -> None:
        super().__init__()
        if image_size < kernel:
            raise ValueError(f"image_size {image_size} is smaller than the kernel {kernel}")
        self.image_size = image_size
        self.out_size = (image_size - kernel) // stride + 1
        self.conv = nn.Sequential(nn.Conv2d(1, filters, kernel, stride=stride), nn.ReLU())
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(filters * self.out_size**2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Class scores.

        Args:
            images: float ``(N, S, S)`` (or ``(N, 1, S, S)``) canvases in [0, 1].

        Returns:
            Logits ``(N, n_classes)``.
        """
        if images.dim() == 3:
            images = images.unsqueeze(1)
        return self.head(self.conv(images))


def build_baseline(arch: str, image_size: int) -> nn.Module:
    """The baseline ``arch`` (one of :data:`ARCHS`) for ``image_size x image_size`` canvases."""
    if arch == "fc64":
        return FCBaseline(image_size, 64)
    if arch == "fc256":
        return FCBaseline(image_size, 256)
    if arch == "conv":
        return ConvBaseline(image_size)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def canvases_to_tensor(canvases: Any, device: str | torch.device = "cpu") -> Tensor:
    """uint8 ``(N, H, W)`` canvases (NumPy or torch) -> float32 ``(N, H, W)`` in [0, 1] on ``device``."""
    tensor = canvases if isinstance(canvases, Tensor) else torch.from_numpy(np.asarray(canvases))
    return tensor.to(device=device, dtype=torch.float32).div_(255.0)


# ---------------------------------------------------------------------------- canvases
def make_canvas_env(
    env_id: str, split: str, env_kwargs: dict[str, Any] | None = None
) -> GlimpseEnv:
    """The unwrapped env of ``env_id`` on ``split``, used only as a source of canvases.

    Glimpse settings in ``env_kwargs`` (``split``, ``sequential``, ``start``, ``reward``,
    ``render_mode``) are dropped: they do not change the canvases.
    """
    kwargs = dict(env_kwargs or {})
    for key in ("split", "sequential", "start", "reward", "render_mode"):
        kwargs.pop(key, None)
    return gym.make(env_id, split=split, **kwargs).unwrapped  # type: ignore[return-value]


def draw_canvases(env: GlimpseEnv, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Canvases and labels of digits ``start .. stop - 1`` of the env's split, in order.

    On ``val``/``test`` these are exactly the canvases a glimpse agent sees for those images
    (the canvas of image ``i`` is a pure function of ``(split, i)``), whatever the env's
    seed; on a training split they are a fixed draw (key 0).

    Args:
        env: a :class:`GlimpseEnv` (e.g. from :func:`make_canvas_env`).
        start: first image index.
        stop: one past the last image index (at most the split's size).

    Returns:
        ``(canvases uint8 (n, S, S), labels int64 (n,))`` with ``n = stop - start``.
    """
    n = stop - start
    if not 0 <= start <= stop <= len(env.data):
        raise ValueError(f"need 0 <= start <= stop <= {len(env.data)}, got {start}, {stop}")
    sequential = env.sequential
    env.sequential = True  # image i of episode i: (offset 0) + episode * (stride 1)
    try:
        batch = env.draw_episodes(
            np.zeros(n, dtype=np.uint64),
            np.arange(start, stop, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            1,
        )
    finally:
        env.sequential = sequential
    return np.asarray(batch.canvases), np.asarray(batch.labels)


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_baseline(
    model: nn.Module,
    env_id: str,
    split: str = "test",
    n_images: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Error rate of a baseline on the first ``n_images`` canvases of a split, one pass each.

    The canvases are those of :func:`draw_canvases`: on ``val``/``test`` the same fixed
    benchmark :func:`agents.policy.evaluate_policy` tests glimpse agents on.

    Args:
        model: a baseline taking float ``(N, S, S)`` canvases, returning logits ``(N, C)``.
        env_id: env whose canvases to classify.
        split: ``"test"``, ``"val"`` or a training split.
        n_images: first ``n_images`` digits of the split; the whole split when ``None``.
        env_kwargs: env keyword arguments (e.g. ``data_dir``); glimpse settings are ignored.
        batch_size: canvases classified together.
        device: where the model runs (default: where its parameters are).
        progress: show a progress bar.

    Returns:
        ``{"error_rate", "accuracy", "n_images", "n_correct", "env_id", "split", "mode"}``
        (``mode`` is always ``"deterministic"``: a baseline has no sampled mode).
    """
    env = make_canvas_env(env_id, split, env_kwargs)
    total = len(env.data) if n_images is None else min(int(n_images), len(env.data))
    try:
        desc = f"eval {env_id} {split}"
        correct = _count_correct(model, env, total, batch_size, device, progress, desc)
    finally:
        env.close()
    return evaluation_result(correct, total, env_id, split, "deterministic")


@torch.no_grad()
def _count_correct(
    model: nn.Module,
    env: GlimpseEnv,
    total: int,
    batch_size: int,
    device: str | torch.device | None,
    progress: bool,
    desc: str,
) -> int:
    """Images of the first ``total`` canvases of ``env``'s split that ``model`` classifies
    right (the argmax of its logits), ``batch_size`` canvases at a time, in eval mode (its
    training mode restored afterwards)."""
    from tqdm.auto import tqdm

    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    n_batches = math.ceil(total / batch_size)
    try:
        for b in tqdm(range(n_batches), disable=not progress, desc=desc):
            first = b * batch_size
            canvases, labels = draw_canvases(env, first, min(total, first + batch_size))
            predictions = model(canvases_to_tensor(canvases, device)).argmax(dim=1).cpu().numpy()
            correct += int(np.sum(predictions == labels))
    finally:
        model.train(was_training)
    return correct


def check_baseline_fits(model: nn.Module, trained_on: str, env_id: str) -> None:
    """Refuse an env whose canvases differ in size from those ``model`` was built for.

    Reads the env's class only (no env is built, no data loaded); an id that is not
    registered here is left to the classification to fail.

    Args:
        model: a baseline (its ``image_size``, the side of the canvases it takes).
        trained_on: the env id it was trained on (named in the error).
        env_id: the env to classify the canvases of.

    Raises:
        ValueError: naming both canvas sizes.
    """
    from glimpse_env.registration import VARIANTS

    size = getattr(model, "image_size", None)
    variant = VARIANTS.get(env_id)
    if size is None or variant is None or variant.env_cls.canvas_size == size:
        return
    given = variant.env_cls.canvas_size
    raise ValueError(
        f"the baseline was trained on {trained_on} with {size}x{size} canvases, but {env_id} "
        f"has {given}x{given} canvases; benchmark it on an env with {size}x{size} canvases"
    )


def bench_baseline(
    model: nn.Module,
    env_id: str,
    *,
    n_images: int | None = None,
    seeds: Sequence[int] = (0,),
    env_kwargs: dict[str, Any] | None = None,
    radius_px: float = 0.0,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    name: str | None = None,
    progress: bool = False,
) -> Result:
    """A baseline as a GlimpseBench entry that sees the whole canvas (not glimpse-limited).

    It classifies each of the first ``n_images`` fixed test canvases of ``env_id`` once, as
    :func:`evaluate_baseline` does (the same loop: the same images, the same number right),
    timed. The :class:`glimpse_env.bench.Result` has ``full_image=True``, ``n_glimpses`` 0,
    no anytime curve, no locations (None), the Wilson interval over images, the model's
    parameters and ``episodes_per_second`` in images per second. Mode ``"deterministic"``
    (a baseline has no sampled mode). The canvases do not depend on the seed: each seed of
    ``seeds`` gets its own (identical but for the timing) rollout, so a baseline's report
    has the same layout as a glimpse policy's.

    Args:
        model: a baseline taking float ``(N, S, S)`` canvases, returning logits ``(N, C)``.
        env_id: env whose test canvases to classify (its canvases must be ``S x S``).
        n_images: the first ``n_images`` test images (default all).
        seeds: the seeds to record a rollout under (at least one).
        env_kwargs: env keyword arguments (e.g. ``data_dir``); glimpse settings are ignored
            by the classification and recorded as for a glimpse policy.
        radius_px: recorded as given (no glimpse is placed).
        batch_size: canvases classified together.
        device: where the model runs (default: where its parameters are).
        name: how the result names the policy (default: the model's class name).
        progress: show a progress bar.

    Raises:
        ValueError: for an env whose canvas size differs from the model's, a bad
            ``n_images`` or no seed.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    env = make_canvas_env(env_id, "test", env_kwargs)
    try:
        size = getattr(model, "image_size", env.canvas_size)
        if env.canvas_size != size:
            raise ValueError(
                f"the baseline takes {size}x{size} canvases, but {env_id} has "
                f"{env.canvas_size}x{env.canvas_size} canvases"
            )
        total = len(env.data) if n_images is None else n_images
        if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= len(env.data):
            raise ValueError(f"n_images must be an integer in 1..{len(env.data)}, got {n_images!r}")
        rollouts = []
        for seed in seeds:
            start = time.perf_counter()
            correct = _count_correct(
                model, env, total, batch_size, device, progress, f"bench {env_id}"
            )
            wall = time.perf_counter() - start
            rollouts.append(_full_image_rollout(int(seed), correct, total, wall))
    finally:
        env.close()
    return summarise(
        rollouts,
        protocol=PROTOCOL,
        policy=name or type(model).__name__,
        env_id=env_id,
        mode="deterministic",
        split="test",
        n_images=total,
        n_glimpses=0,
        n_classes=env.n_classes,
        env_kwargs=recorded_env_kwargs(env_kwargs),
        radius_px=float(radius_px),
        interval_method=INTERVAL_METHOD,
        n_parameters=count_parameters(model),
        full_image=True,
    )


def _full_image_rollout(seed: int, n_correct: int, n_images: int, wall_seconds: float) -> Rollout:
    """The rollout of a full-image classifier: ``n_correct`` of ``n_images`` right (one pass
    each) in ``wall_seconds``, the Wilson interval over images; no glimpses, anytime curve or
    locations (see :class:`glimpse_env.bench.Rollout`)."""
    return Rollout(
        seed=seed,
        accuracy=n_correct / n_images,
        n_correct=n_correct,
        accuracy_interval=wilson_interval(n_correct, n_images),
        anytime_accuracy=[],
        anytime_mean=None,
        on_digit_share=None,
        on_digit_by_glimpse=[],
        first_glimpse_distance_px=None,
        wall_seconds=wall_seconds,
        episodes_per_second=n_images / wall_seconds if wall_seconds > 0 else 0.0,
    )


# ---------------------------------------------------------------------------- checkpoints
def model_payload(model: nn.Module, arch: str, image_size: int) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the model: arch, canvas size, weights."""
    return {"arch": arch, "image_size": image_size, "model_state": model.state_dict()}


@dataclass
class LoadedBaseline:
    """A trained baseline together with where it came from."""

    model: nn.Module
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def env_id(self) -> str:
        """The env id it was trained on."""
        return str(self.meta["env_id"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The env keyword arguments it was trained with."""
        return dict(self.meta.get("env_kwargs", {}))


def load_baseline(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedBaseline:
    """Load a baseline saved by ``glimpse train baseline`` (run folder or checkpoint file).

    Raises:
        ValueError: if the checkpoint is not a baseline.
    """
    from agents.checkpoints import load_checkpoint
    from agents.policy import read_meta

    file, meta = read_meta(path)
    payload = load_checkpoint(file, map_location=device)
    if payload.get("agent", meta.get("agent")) != "baseline":
        raise ValueError(f"{file} holds agent {payload.get('agent')!r}, not a baseline")
    model = build_baseline(payload["arch"], int(payload["image_size"]))
    model.load_state_dict(payload["model_state"])
    model.to(device).eval()
    merged = {k: payload[k] for k in ("agent", "arch", "env_id", "env_kwargs") if k in payload}
    return LoadedBaseline(model, file, {**merged, **meta})
