"""Location policies (agents/locations.py): counter-based random locations, the center and
raster heuristics, and the evaluation wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.locations import (
    RASTER_POINTS,
    CenterLocations,
    FixedLocationPolicy,
    LearnedLocations,
    RandomLocations,
    RasterLocations,
    make_location_policy,
    random_locations,
    with_locations,
)


def test_random_locations_are_a_pure_function_of_episode_and_step() -> None:
    a = random_locations(3, np.arange(10), step=2)
    assert a.shape == (10, 2) and a.dtype == np.float32
    assert np.array_equal(
        a, np.concatenate([random_locations(3, range(4), 2), random_locations(3, range(4, 10), 2)])
    )
    for other in (
        random_locations(4, np.arange(10), 2),
        random_locations(3, np.arange(10), 3),
        random_locations(3, np.arange(10), 2, stream=1),
    ):
        assert not np.array_equal(a, other)
    many = random_locations(0, np.arange(20_000), 0)
    assert many.min() >= -1.0 and many.max() < 1.0
    assert np.abs(many.mean()) < 0.02 and abs(many.var() - 1 / 3) < 0.01


class _ConstantPolicy:
    """A policy that always looks at (0.5, 0.5) and names class 0."""

    env_id = "none"
    env_kwargs: dict[str, object] = {}  # noqa: RUF012

    def __init__(self, torch_actions: bool = False) -> None:
        self.torch_actions = torch_actions

    def initial_state(self, num_envs: int) -> int:
        return num_envs

    def act(self, obs: object, state: int, deterministic: bool) -> tuple[object, int]:
        action = np.full((state, 4), -1.0, np.float32)
        action[:, :2] = 0.5
        action[:, 2] = 1.0
        return (torch.from_numpy(action) if self.torch_actions else action), state


@pytest.mark.parametrize("torch_actions", [False, True])
def test_random_location_policy_wrapper(torch_actions: bool) -> None:
    whole = with_locations(_ConstantPolicy(torch_actions), "random", seed=7)
    split = with_locations(_ConstantPolicy(torch_actions), "random", seed=7)
    assert isinstance(whole, FixedLocationPolicy)
    state = whole.initial_state(10)
    parts = [split.initial_state(4), split.initial_state(6)]
    for step in range(3):
        action, state = whole.act(None, state, True)
        action = np.asarray(action)
        assert np.array_equal(action[:, 2:], np.tile([1.0, -1.0], (10, 1)))  # classes kept
        assert np.array_equal(action[:, :2], random_locations(7, np.arange(10), step))
        halves = []
        for i, part in enumerate(parts):
            out, parts[i] = split.act(None, part, True)
            halves.append(np.asarray(out))
        assert np.array_equal(np.concatenate(halves), action)  # batching does not matter
    sampled, _ = whole.act(None, whole.initial_state(2), False)
    assert np.array_equal(np.asarray(sampled)[:, :2], random_locations(7, [10, 11], 0, stream=1))


def test_location_policies() -> None:
    proposal = torch.full((3, 2), 0.25)
    episodes = np.array([5, 6, 7])
    assert make_location_policy("learned", 0).learned
    assert LearnedLocations()(proposal, episodes, 1) is proposal
    random = make_location_policy("random", 4)
    assert isinstance(random, RandomLocations) and not random.learned
    out = random(proposal, episodes, 1)
    assert out.dtype == proposal.dtype and out.shape == (3, 2)
    expected = random_locations(4, episodes, 1, stream=2)  # the training stream
    assert np.array_equal(out.numpy(), expected)
    with pytest.raises(ValueError, match="location_policy"):
        make_location_policy("oracle", 0)


#: The raster by hand: the 3x3 grid at +-0.5 without its centre, row-major (y outer).
_RASTER = [
    [-0.5, -0.5],
    [0.0, -0.5],
    [0.5, -0.5],
    [-0.5, 0.0],
    [0.5, 0.0],
    [-0.5, 0.5],
    [0.0, 0.5],
    [0.5, 0.5],
]


def test_center_and_raster_locations_by_hand() -> None:
    proposal = torch.full((3, 2), 0.25, dtype=torch.float64)
    episodes = np.array([0, 9, 4])
    center = make_location_policy("center", 3)
    raster = make_location_policy("raster", 3)
    assert isinstance(center, CenterLocations) and isinstance(raster, RasterLocations)
    assert not center.learned and not raster.learned
    assert np.array_equal(np.asarray(RASTER_POINTS), _RASTER)
    for step in range(10):
        out = center(proposal, episodes, step)
        assert out.dtype == torch.float64 and torch.equal(
            out, torch.zeros(3, 2, dtype=torch.float64)
        )
        out = raster(proposal, episodes, step)
        assert out.dtype == torch.float64 and out.shape == (3, 2)
        assert out.tolist() == [_RASTER[step % 8]] * 3  # every episode, cycling after 8
    assert proposal.eq(0.25).all()  # the proposal is not written to
    custom = RasterLocations([[0.1, 0.2], [0.3, 0.4]])
    assert np.allclose(custom(proposal.float(), episodes, 3).numpy(), [[0.3, 0.4]] * 3)
    with pytest.raises(ValueError, match="points"):
        RasterLocations(np.zeros((0, 2)))


@pytest.mark.parametrize("torch_actions", [False, True])
@pytest.mark.parametrize("name", ["center", "raster"])
def test_wrapper_with_heuristics(name: str, torch_actions: bool) -> None:
    policy = with_locations(_ConstantPolicy(torch_actions), name)
    assert isinstance(policy, FixedLocationPolicy)
    for deterministic in (True, False):  # the same locations in both modes
        policy.reset()
        state = policy.initial_state(3)
        for step in range(9):
            action, state = policy.act(None, state, deterministic)
            action = np.asarray(action)
            assert action.dtype == np.float32
            assert np.array_equal(action[:, 2:], np.tile([1.0, -1.0], (3, 1)))  # classes kept
            expected = [0.0, 0.0] if name == "center" else _RASTER[step % 8]
            assert action[:, :2].tolist() == [expected] * 3


def test_with_locations_learned_is_the_policy() -> None:
    policy = _ConstantPolicy()
    assert with_locations(policy, "learned") is policy
    with pytest.raises(ValueError, match="location_policy"):
        with_locations(policy, "oracle")
