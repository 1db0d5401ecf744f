"""Location policies (agents/locations.py): counter-based random locations, the center,
raster and oracle heuristics, and the evaluation wrapper (the oracle bound to the env it is
evaluated on, in training and in the benchmark)."""

from __future__ import annotations

import types

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.locations import (
    RASTER_POINTS,
    CenterLocations,
    FixedLocationPolicy,
    LearnedLocations,
    OracleLocations,
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
        make_location_policy("bogus", 0)


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
        with_locations(policy, "bogus")


def _fake_envs(digit_pos: list[list[int]], canvas_size: int = 60) -> types.SimpleNamespace:
    """A stand-in vector env with a hand-made layout (what the oracle reads)."""
    task = types.SimpleNamespace(canvas_size=canvas_size)
    base = types.SimpleNamespace(layout={"digit_pos": np.array(digit_pos)}, task=task)
    return types.SimpleNamespace(unwrapped=base, num_envs=len(digit_pos))


def test_oracle_locations_by_hand() -> None:
    # Boxes at (row, col) (0, 0) and (32, 10) on 60x60: centres (14, 14) and (46, 24).
    envs = _fake_envs([[0, 0], [32, 10]])
    oracle = make_location_policy("oracle", 0, envs=envs)
    assert isinstance(oracle, OracleLocations) and not oracle.learned
    proposal = torch.full((2, 2), 0.9, dtype=torch.float64)
    for step in range(3):  # every glimpse at the digit's centre, whatever the proposal
        out = oracle(proposal, np.array([7, 8]), step)
        assert out.dtype == torch.float64
        expected = torch.tensor([[28 / 60 - 1] * 2, [-0.2, 92 / 60 - 1]], dtype=torch.float64)
        assert torch.allclose(out, expected)
    # The next episodes: centres (30, 30) and (14, 46).
    envs.unwrapped.layout["digit_pos"] = np.array([[16, 16], [0, 32]])
    out = oracle(proposal, np.array([9, 10]), 0)
    assert torch.allclose(out.float(), torch.tensor([[0.0, 0.0], [92 / 60 - 1, 28 / 60 - 1]]))
    with pytest.raises(RuntimeError, match="none is bound"):
        OracleLocations()(proposal, np.array([0, 1]), 0)
    with pytest.raises(RuntimeError, match="not the one being played"):
        oracle(torch.zeros(3, 2), np.arange(3), 0)


@pytest.mark.parametrize("torch_actions", [False, True])
def test_oracle_wrapper_is_bound_to_the_env_it_acts_on(torch_actions: bool) -> None:
    policy = with_locations(_ConstantPolicy(torch_actions), "oracle")
    assert isinstance(policy, FixedLocationPolicy) and policy.sampled is policy.locations
    policy.bind_env(_fake_envs([[0, 32], [16, 16], [32, 0]]))
    for deterministic in (True, False):  # the same locations in both modes
        action, _ = policy.act(None, policy.initial_state(3), deterministic)
        action = np.asarray(action)
        assert np.array_equal(action[:, 2:], np.tile([1.0, -1.0], (3, 1)))  # classes kept
        low, high = 28 / 60 - 1, 92 / 60 - 1  # centres at 14 and 46 px of 60
        assert np.allclose(action[:, :2], [[high, low], [0.0, 0.0], [low, high]])


class _SaysZero:
    """A NumPy policy on 60x60 envs: looks at the corner and says "0" (12 action columns)."""

    env_id = "GlimpseTranslatedMNIST-v0"
    env_kwargs: dict[str, object] = {}  # noqa: RUF012

    def initial_state(self, num_envs: int) -> int:
        return num_envs

    def act(self, obs: object, state: int, deterministic: bool) -> tuple[np.ndarray, int]:
        action = np.full((state, 12), -1.0, np.float32)
        action[:, 2] = 1.0
        return action, state


@pytest.mark.usefixtures("glimpse_data")
def test_benchmark_binds_the_oracle_every_chosen_glimpse_on_the_digit() -> None:
    from glimpse_env.bench import evaluate

    plain = evaluate(_SaysZero(), "GlimpseTranslatedMNIST-v0", n_images=60, num_envs=25)
    oracle = with_locations(_SaysZero(), "oracle")
    result = evaluate(oracle, "GlimpseTranslatedMNIST-v0", n_images=60, num_envs=25)
    assert plain.on_digit_share < 1.0
    assert result.on_digit_share == 1.0
    assert result.rollouts[0].on_digit_by_glimpse[1:] == [1.0] * 7
    assert result.first_glimpse_distance_px == pytest.approx(0.0, abs=1e-4)
    assert result.accuracy == plain.accuracy  # the classes are the wrapped policy's


@pytest.mark.usefixtures("glimpse_data")
def test_training_rollout_sends_the_oracle_locations() -> None:
    from agents.ram import RAMConfig, RecurrentAttentionModel
    from agents.rollout import collect_rollout
    from glimpse_env.oracle import oracle_locations

    envs = gym.make_vec("GlimpseClutteredMNIST-v0", num_envs=4, split="train",
                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)  # fmt: skip
    small = RAMConfig(glimpse_hidden=8, location_hidden=8, glimpse_out=16, core_hidden=16)
    model = RecurrentAttentionModel.from_spaces(
        envs.single_observation_space, envs.single_action_space, small
    )
    obs, _ = envs.reset(seed=3)
    expected = torch.as_tensor(oracle_locations(envs))
    oracle = make_location_policy("oracle", 0, envs=envs)
    rollout, _ = collect_rollout(model, envs, obs, location_policy=oracle)
    assert rollout.locations.shape == (8, 4, 2)
    assert torch.equal(rollout.locations[0], torch.as_tensor(obs["location"]))  # the env's start
    for t in range(1, 8):  # every chosen glimpse, at the digit's centre
        assert torch.equal(rollout.locations[t], expected)
    envs.close()
