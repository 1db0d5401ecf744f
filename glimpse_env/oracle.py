"""The oracle location: the centre of the digit's true 28x28 box, an upper bound for "where".

The env knows where it put the digit: the vector env's ``envs.unwrapped.layout["digit_pos"]``
(top-left ``(row, col)`` of each current episode's digit) on the translated and cluttered
variants; on plain 28x28 MNIST the digit fills the canvas and has no position (its centre is
the canvas centre, ``(0, 0)``). :func:`digit_centres` turns a layout into glimpse locations
with the sensor's mapping (``col = (x + 1) * W / 2``, so ``x = 2 col / W - 1``);
:func:`oracle_locations` reads them from a vector env now.

:class:`OracleLocationWrapper` is a vector action wrapper that overwrites the location part
of every action with them: any agent then looks at the digit (and the observation reports
that location). The RAM trainer's ``--location-policy oracle``
(:class:`agents.locations.OracleLocations`) sends the same locations itself, so that the
benchmark's "where" statistics see them in the policy's actions.

NumPy and Gymnasium only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from glimpse_env.actions import LOCATION_DIM
from glimpse_env.envs import DIGIT_SIZE

__all__ = ["OracleLocationWrapper", "digit_centres", "oracle_locations"]


def digit_centres(layout: Mapping[str, Any], n: int, canvas_size: int) -> np.ndarray:
    """Glimpse locations ``(x, y)`` at the centres of the digits' 28x28 boxes.

    Args:
        layout: the episodes' layout; ``digit_pos`` int ``(N, 2)`` top-left ``(row, col)``
            (absent on plain MNIST: the digit is the whole canvas).
        n: the number of episodes N.
        canvas_size: side W of the square canvas in pixels.

    Returns:
        float32 ``(N, 2)`` locations in [-1, 1]: ``x = 2 (col0 + 14) / W - 1``, ``y`` likewise
        from the row.

    Raises:
        ValueError: if ``digit_pos`` is not ``(n, 2)``.
    """
    if "digit_pos" not in layout:
        centre = np.full((n, 2), canvas_size / 2.0)
    else:
        top_left = np.asarray(layout["digit_pos"], dtype=np.float64)
        if top_left.shape != (n, 2):
            raise ValueError(f"layout['digit_pos'] must be ({n}, 2), got {top_left.shape}")
        centre = top_left + DIGIT_SIZE / 2.0  # (row, col)
    return (2.0 * centre[:, ::-1] / canvas_size - 1.0).astype(np.float32)


def oracle_locations(envs: gym.vector.VectorEnv) -> np.ndarray:
    """The oracle locations of the current episodes of a glimpse vector env.

    Args:
        envs: a vector env made by ``gym.make_vec`` of a glimpse id (possibly wrapped).

    Returns:
        float32 ``(num_envs, 2)`` locations in [-1, 1] (:func:`digit_centres`).

    Raises:
        TypeError: for a vector env that reports no layout (not a glimpse env).
    """
    base = envs.unwrapped
    layout, task = getattr(base, "layout", None), getattr(base, "task", None)
    if layout is None or task is None:
        raise TypeError(
            f"oracle locations need the digit's position, which {type(base).__name__} does not "
            "report; use the native vector env of a glimpse id (gym.make_vec(ID, ...))"
        )
    return digit_centres(layout, envs.num_envs, task.canvas_size)


class OracleLocationWrapper(gym.vector.VectorActionWrapper):
    """Every action's next-glimpse location becomes the centre of the current digit.

    The class scores (and the stop score of the adaptive envs) pass unchanged; actions that
    are torch tensors stay on their device. The location of a sub-env's last step, which
    no glimpse follows, is overwritten too (harmlessly).
    """

    def actions(self, actions: Any) -> Any:
        """``actions`` with columns ``0..1`` set to :func:`oracle_locations` (a copy)."""
        locations = oracle_locations(self.env)
        if hasattr(actions, "detach"):  # a torch tensor: no torch import here
            out = actions.clone()
            out[:, :LOCATION_DIM] = out.new_tensor(locations)
            return out
        out = np.array(actions, dtype=np.float32, copy=True)
        out[:, :LOCATION_DIM] = locations
        return out
