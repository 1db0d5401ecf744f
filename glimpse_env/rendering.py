"""Pictures of glimpse episodes: RGB frames, animated GIFs and PNG grids.

A frame shows the canvas (upscaled) with the square of every glimpse scale at the current
location and the path of locations so far, and beside it what the sensor returned there
(each scale upscaled to the same height), taken with :func:`glimpse_env.extract_glimpses`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from glimpse_env.sensor import extract_glimpses, glimpse_top_left

#: Colour of each scale's box, finest first.
SCALE_COLOURS = ((255, 64, 64), (255, 200, 0), (64, 200, 255), (160, 255, 120))
PATH_COLOUR = (0, 255, 0)
PANEL_SIZE = 240


def render_frame(
    canvas: np.ndarray,
    path: np.ndarray,
    glimpse_size: int,
    n_scales: int,
    *,
    label: int | None = None,
    prediction: int | None = None,
    caption: str | None = None,
) -> np.ndarray:
    """Draw one frame of an episode.

    Args:
        canvas: uint8 ``(H, W)`` image.
        path: float ``(t, 2)`` locations so far; the last one is the current glimpse.
        glimpse_size: side ``g`` of the finest scale in pixels.
        n_scales: number of scales.
        label: true class to print, if given.
        prediction: predicted class to print, if given.
        caption: text for the bottom-left corner (e.g. ``"glimpse 3/7"``).

    Returns:
        uint8 ``(PANEL_SIZE, 2 * PANEL_SIZE, 3)`` RGB image: the canvas with boxes and path on
        the left, the glimpse's scales on the right.
    """
    h, w = canvas.shape
    zoom = PANEL_SIZE / max(h, w)
    left = Image.fromarray(np.asarray(canvas, dtype=np.uint8)).convert("RGB")
    left = left.resize((round(w * zoom), round(h * zoom)), Image.NEAREST)
    draw = ImageDraw.Draw(left)
    path = np.asarray(path, dtype=np.float32).reshape(-1, 2)
    centres = [((x + 1) * w / 2 * zoom, (y + 1) * h / 2 * zoom) for x, y in path]
    if len(centres) > 1:
        draw.line(centres, fill=PATH_COLOUR, width=2)
    for cx, cy in centres:
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=PATH_COLOUR)
    corners = glimpse_top_left(path[-1:], (h, w), glimpse_size, n_scales)[0]  # (k, 2)
    for s, (x0, y0) in enumerate(corners):
        size = glimpse_size * 2**s
        box = (x0 * zoom, y0 * zoom, (x0 + size) * zoom - 1, (y0 + size) * zoom - 1)
        draw.rectangle(box, outline=SCALE_COLOURS[s % len(SCALE_COLOURS)], width=2)
    if label is not None or prediction is not None:
        draw.text((4, 4), f"label {label}  pred {prediction}", fill=(255, 255, 255))
    if caption:
        draw.text((4, PANEL_SIZE - 14), caption, fill=(255, 255, 255))

    glimpses = extract_glimpses(canvas[None], path[-1:], glimpse_size, n_scales)[0]
    right = Image.new("RGB", (PANEL_SIZE, PANEL_SIZE))
    cell = PANEL_SIZE // n_scales
    for s in range(n_scales):
        tile = Image.fromarray((glimpses[s] * 255).astype(np.uint8)).convert("RGB")
        tile = tile.resize((cell - 4, cell - 4), Image.NEAREST)
        right.paste(tile, (2 + s * cell if n_scales > 1 else 2, 2))
        ImageDraw.Draw(right).rectangle(
            (s * cell, 0, s * cell + cell - 1, cell - 1),
            outline=SCALE_COLOURS[s % len(SCALE_COLOURS)],
        )
    frame = Image.new("RGB", (2 * PANEL_SIZE, PANEL_SIZE))
    frame.paste(left, (0, 0))
    frame.paste(right, (PANEL_SIZE, 0))
    return np.asarray(frame)


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 2.0) -> Path:
    """Write RGB frames as a looping animated GIF (atomically: temp file, then rename).

    Args:
        frames: uint8 ``(H, W, 3)`` images, all the same size.
        path: where to write.
        fps: frames per second.

    Returns:
        The path written.
    """
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    os.replace(tmp, path)
    return path


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB image as PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def grid(frames: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized RGB frames into a grid, row-major."""
    h, w, c = frames[0].shape
    rows = -(-len(frames) // columns)
    out = np.zeros((rows * h, columns * w, c), dtype=np.uint8)
    for i, f in enumerate(frames):
        r, col = divmod(i, columns)
        out[r * h : (r + 1) * h, col * w : (col + 1) * w] = f
    return out


Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


def record_episode(
    env: Any, policy: Policy | None = None, seed: int | None = None
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Run one episode of a ``render_mode="rgb_array"`` env and collect its frames.

    Args:
        env: a single glimpse env (``gym.make(id, render_mode="rgb_array")``).
        policy: maps an observation to an action; random actions when ``None``.
        seed: passed to ``reset``.

    Returns:
        ``(frames, final_info)``: one frame after ``reset`` and one after every step.
    """
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    while True:
        action = env.action_space.sample() if policy is None else policy(obs)
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(env.render())
        if terminated or truncated:
            return frames, info
