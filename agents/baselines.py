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
"""

from __future__ import annotations

import math
import os
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
from glimpse_env.envs import N_CLASSES, GlimpseEnv

__all__ = [
    "ARCHS",
    "ConvBaseline",
    "FCBaseline",
    "LoadedBaseline",
    "build_baseline",
    "canvases_to_tensor",
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
    from tqdm.auto import tqdm

    env = make_canvas_env(env_id, split, env_kwargs)
    total = len(env.data) if n_images is None else min(int(n_images), len(env.data))
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    n_batches = math.ceil(total / batch_size)
    for b in tqdm(range(n_batches), disable=not progress, desc=f"eval {env_id} {split}"):
        first = b * batch_size
        canvases, labels = draw_canvases(env, first, min(total, first + batch_size))
        predictions = model(canvases_to_tensor(canvases, device)).argmax(dim=1).cpu().numpy()
        correct += int(np.sum(predictions == labels))
    model.train(was_training)
    env.close()
    return evaluation_result(correct, total, env_id, split, "deterministic")


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
