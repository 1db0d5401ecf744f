"""The layout of a glimpse action, in one place: ``[x, y, score_0, ..., score_{C-1}]``.

Every glimpse env takes actions of ``LOCATION_DIM + C`` numbers: the location of the next
glimpse (``x``, ``y`` in [-1, 1]), then one score per class (the env reads their argmax
at the last step, and the dense reward reads them all)::

    from glimpse_env.actions import class_scores, pack_action, unpack_action

    action = pack_action(location, class_scores(predicted, n_classes=10))  # (N, 12)
    location, scores = unpack_action(action)  # (N, 2), (N, 10): views, no copy

An env made with ``stop="action"`` (the adaptive ids, e.g. ``GlimpseMNISTAdaptive-v0``)
takes one more number at the end, the stop score (the episode ends where it is above 0)::

    action = pack_action(location, scores, stop=stop)  # (N, 13)
    location, scores = unpack_action(action, stop=True)  # (N, 2), (N, 10)
    stop = stop_scores(action)  # (N,)

The functions take NumPy arrays, or torch tensors (any device) when given them; they never
import torch themselves. Actions may be batched ``(N, 2 + C)`` or single ``(2 + C,)``
(any leading axes work: the layout is along the last axis).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from glimpse_env import _xp

__all__ = [
    "LOCATION_DIM",
    "STOP_DIM",
    "class_count",
    "class_scores",
    "pack_action",
    "stop_scores",
    "unpack_action",
]

Array = _xp.Array

#: Leading action components that are the next glimpse's location ``(x, y)``.
LOCATION_DIM = 2
#: Trailing action components of a ``stop="action"`` env: the stop score.
STOP_DIM = 1


def pack_action(location: Array, scores: Array, stop: Array | None = None) -> Array:
    """One action from a location, class scores and (for ``stop="action"`` envs) a stop
    score: their concatenation on the last axis.

    Args:
        location: ``(..., 2)`` locations.
        scores: ``(..., C)`` class scores, the same leading axes as ``location``.
        stop: ``(...)`` stop scores (the episode ends where one is above 0), the same leading
            axes; ``None`` for envs without the stop action.

    Returns:
        ``(..., 2 + C)`` actions (``(..., 2 + C + 1)`` with ``stop``), a new array (a torch
        tensor when the inputs are, else a NumPy array; the dtype is the inputs' common type).

    Raises:
        TypeError: if some inputs are torch tensors and others are not.
        ValueError: if ``location`` does not end with 2 entries, ``scores`` is empty or the
            leading axes differ.
    """
    inputs = (location, scores) if stop is None else (location, scores, stop)
    if len({_xp.is_torch(x) for x in inputs}) > 1:
        names = ", ".join(type(x).__name__ for x in inputs)
        raise TypeError(
            f"location, scores and stop must all be NumPy arrays or all torch tensors, got {names}"
        )
    if not _xp.is_torch(location):
        location, scores = np.asarray(location), np.asarray(scores)
        stop = None if stop is None else np.asarray(stop)
    lead = tuple(location.shape[:-1])
    if location.ndim < 1 or location.shape[-1] != LOCATION_DIM:
        raise ValueError(
            f"location must have shape (..., {LOCATION_DIM}), got {tuple(location.shape)}"
        )
    if scores.ndim < 1 or scores.shape[-1] < 1 or tuple(scores.shape[:-1]) != lead:
        raise ValueError(
            f"scores must have shape {(*lead, 'C')} with C >= 1 (the location's leading "
            f"axes), got {tuple(scores.shape)}"
        )
    parts = [location, scores]
    if stop is not None:
        if tuple(stop.shape) != lead:
            raise ValueError(
                f"stop must have shape {lead} (the location's leading axes), got {tuple(stop.shape)}"
            )
        parts.append(stop[..., None])
    if _xp.is_torch(location):
        import torch

        return torch.cat(parts, dim=-1)
    return np.concatenate(parts, axis=-1)


def unpack_action(action: Array, stop: bool = False) -> tuple[Array, Array]:
    """The location and class-score parts of an action (views, not copies).

    Args:
        action: ``(..., 2 + C)`` action(s), or ``(..., 2 + C + 1)`` with ``stop``, NumPy or
            torch.
        stop: the action ends with a stop score (``stop="action"`` envs), which is left out
            of the scores (read it with :func:`stop_scores`).

    Returns:
        ``(location (..., 2), scores (..., C))``, views into ``action``.

    Raises:
        ValueError: if ``action`` has no axis or too few entries on its last.
    """
    shape, extra = tuple(action.shape), STOP_DIM if stop else 0
    if len(shape) < 1 or shape[-1] <= LOCATION_DIM + extra:
        layout = "then one score per class" + (", then the stop score" if stop else "")
        raise ValueError(
            f"action must have shape (..., {LOCATION_DIM} + C{' + 1' if stop else ''}) with "
            f"C >= 1 (location x, y, {layout}), got {shape}"
        )
    end = shape[-1] - extra
    return action[..., :LOCATION_DIM], action[..., LOCATION_DIM:end]


def stop_scores(action: Array) -> Array:
    """The stop scores ``(...)`` of ``stop="action"`` actions ``(..., 2 + C + 1)`` (a view):
    the last component; the episode ends where it is above 0.

    Raises:
        ValueError: if ``action`` has no axis or fewer than ``2 + 1 + 1`` entries on its last.
    """
    shape = tuple(action.shape)
    if len(shape) < 1 or shape[-1] < LOCATION_DIM + 1 + STOP_DIM:
        raise ValueError(
            f"action must have shape (..., {LOCATION_DIM} + C + 1) (location x, y, class "
            f"scores, then the stop score), got {shape}"
        )
    return action[..., -1]


def class_count(action_space: spaces.Space, stop: bool = False) -> int:
    """Number of class scores ``C`` of a ``Box((2 + C,))`` action space (``Box((2 + C + 1,))``
    with ``stop``: the last entry is the stop score).

    Raises:
        ValueError: if ``action_space`` is not a 1-D Box with at least one class score.
    """
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(
            f"action space must be a 1-D Box ({LOCATION_DIM} + C,) (location x, y, then one "
            f"score per class), got {action_space}"
        )
    n_classes = int(action_space.shape[0]) - LOCATION_DIM - (STOP_DIM if stop else 0)
    if n_classes < 1:
        raise ValueError(
            f"action space {action_space} leaves no class scores after the "
            f"{LOCATION_DIM} location entries"
        )
    return n_classes


def class_scores(classes: Any, n_classes: int, dtype: Any = None) -> Array:
    """Scores that name ``classes``: +1 for the chosen class, -1 for every other.

    Args:
        classes: int class indices, any shape ``S`` (NumPy, a Python int, or a torch tensor).
        n_classes: ``C``.
        dtype: dtype of the result (a NumPy dtype, or a torch dtype for tensor input);
            default float32.

    Returns:
        ``S + (C,)`` scores, on the backend (and device) of ``classes``.

    Raises:
        ValueError: if ``n_classes < 1``, or NumPy ``classes`` are not integers in
            ``0 .. C - 1`` (torch's ``one_hot`` checks tensors itself).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if _xp.is_torch(classes):
        import torch

        # one_hot checks the range itself (no extra device sync here).
        one_hot = torch.nn.functional.one_hot(classes.long(), int(n_classes))
        return one_hot.to(dtype or torch.float32) * 2.0 - 1.0
    classes = np.asarray(classes)
    if classes.dtype.kind not in "iu":
        raise ValueError(f"classes must be integers, got dtype {classes.dtype}")
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"classes must be in 0 .. {n_classes - 1}, got {classes}")
    scores = np.full((*classes.shape, int(n_classes)), -1.0, dtype=dtype or np.float32)
    np.put_along_axis(scores, classes[..., None], 1.0, axis=-1)
    return scores
