"""Tests for :mod:`glimpse_env.actions`: the ``[x, y, scores...]`` action layout helper."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from glimpse_env.actions import (
    LOCATION_DIM,
    class_count,
    class_scores,
    pack_action,
    unpack_action,
)
from glimpse_env.envs import GlimpseEnv

C = 10


@pytest.mark.parametrize("lead", [(), (5,), (3, 4)], ids=["single", "batched", "3-d"])
def test_numpy_round_trip(lead: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    location = rng.uniform(-1, 1, (*lead, LOCATION_DIM)).astype(np.float32)
    scores = rng.normal(size=(*lead, C)).astype(np.float32)
    action = pack_action(location, scores)
    assert isinstance(action, np.ndarray)
    assert action.shape == (*lead, LOCATION_DIM + C) and action.dtype == np.float32
    np.testing.assert_array_equal(action[..., 0], location[..., 0])  # x first, then y
    np.testing.assert_array_equal(action[..., 2], scores[..., 0])
    back_location, back_scores = unpack_action(action)
    np.testing.assert_array_equal(back_location, location)
    np.testing.assert_array_equal(back_scores, scores)
    # Views, not copies: unpacking costs nothing and writes go through.
    assert np.shares_memory(back_location, action) and np.shares_memory(back_scores, action)


def test_pack_keeps_the_common_dtype() -> None:
    action = pack_action(np.zeros(2, np.float32), np.zeros(C, np.float64))
    assert action.dtype == np.float64
    assert pack_action([0.5, -0.5], [1.0, 2.0]).tolist() == [0.5, -0.5, 1.0, 2.0]


@pytest.mark.parametrize("lead", [(), (4,)], ids=["single", "batched"])
def test_torch_round_trip_keeps_the_graph(lead: tuple[int, ...]) -> None:
    location = torch.rand(*lead, LOCATION_DIM, requires_grad=True)
    scores = torch.randn(*lead, C, dtype=torch.float32)
    action = pack_action(location, scores)
    assert isinstance(action, torch.Tensor) and action.shape == (*lead, LOCATION_DIM + C)
    back_location, back_scores = unpack_action(action)
    assert torch.equal(back_location, location) and torch.equal(back_scores, scores)
    back_location.sum().backward()  # gradients flow through pack and unpack
    assert location.grad is not None and torch.equal(location.grad, torch.ones_like(location))


def test_the_env_reads_the_layout_the_helper_writes() -> None:
    space = GlimpseEnv.spaces()[1]
    assert class_count(space) == C and space.shape == (LOCATION_DIM + C,)
    action = pack_action(np.array([0.25, -0.5], np.float32), class_scores(3, C))
    assert space.contains(action)
    location, scores = unpack_action(action)
    assert location.tolist() == [0.25, -0.5] and int(scores.argmax()) == 3


def test_pack_errors() -> None:
    with pytest.raises(TypeError, match="all be NumPy arrays or all torch"):
        pack_action(torch.zeros(2), np.zeros(C))
    with pytest.raises(ValueError, match="location must have shape"):
        pack_action(np.zeros(3), np.zeros(C))
    with pytest.raises(ValueError, match="location must have shape"):
        pack_action(np.float32(0.0), np.zeros(C))
    with pytest.raises(ValueError, match="scores must have shape"):
        pack_action(np.zeros((4, 2)), np.zeros((5, C)))  # leading axes differ
    with pytest.raises(ValueError, match="scores must have shape"):
        pack_action(np.zeros(2), np.zeros(0))


@pytest.mark.parametrize("shape", [(), (2,), (4, 2), (4, 1)])
def test_unpack_needs_a_location_and_a_score(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="action must have shape"):
        unpack_action(np.zeros(shape))


def test_class_count_errors() -> None:
    assert class_count(gym.spaces.Box(-1, 1, (3,))) == 1
    for space in (
        gym.spaces.Discrete(12),
        gym.spaces.Box(-1, 1, (2, 6)),
        gym.spaces.Box(-1, 1, (2,)),
    ):
        with pytest.raises(ValueError, match="action space"):
            class_count(space)


def test_class_scores_numpy() -> None:
    scores = class_scores(np.array([0, 3, 9]), C)
    assert scores.shape == (3, C) and scores.dtype == np.float32
    expected = -np.ones((3, C), np.float32)
    expected[[0, 1, 2], [0, 3, 9]] = 1.0
    np.testing.assert_array_equal(scores, expected)
    assert class_scores(2, 4).tolist() == [-1.0, -1.0, 1.0, -1.0]
    assert class_scores(np.array([1]), 3, dtype=np.float64).dtype == np.float64
    assert class_scores(np.zeros((2, 3), np.int64), 4).shape == (2, 3, 4)


def test_class_scores_torch() -> None:
    chosen = torch.tensor([4, 0])
    scores = class_scores(chosen, C)
    assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float32
    np.testing.assert_array_equal(scores.numpy(), class_scores(chosen.numpy(), C))
    assert class_scores(chosen, C, torch.float64).dtype == torch.float64


def test_class_scores_errors() -> None:
    with pytest.raises(ValueError, match=r"0 \.\. 9"):
        class_scores(np.array([10]), C)
    with pytest.raises(ValueError, match=r"0 \.\. 9"):
        class_scores(np.array([-1]), C)
    with pytest.raises(ValueError, match="integers"):
        class_scores(np.array([1.0]), C)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="n_classes"):
            class_scores(np.array([0]), bad)


def test_numpy_use_imports_no_torch() -> None:
    code = (
        "import sys, numpy as np; from glimpse_env.actions import pack_action, unpack_action, "
        "class_scores; unpack_action(pack_action(np.zeros(2), class_scores(1, 10))); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
