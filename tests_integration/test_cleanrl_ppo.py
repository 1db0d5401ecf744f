"""examples/cleanrl_ppo.py: NEXT_STEP masking, episode timing, GAE, and that it learns."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cleanrl_ppo.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cleanrl_ppo", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ppo = _load_example()

N_GLIMPSES = 7  # GlimpseMNIST-v0's default
NUM_ENVS, NUM_STEPS, ITERATIONS = 8, 12, 3  # 12 steps: episode ends fall anywhere in a rollout


@pytest.fixture(scope="module")
def tiny_run() -> dict:
    """Three tiny iterations on GlimpseMNIST-v0 and a 16-episode test evaluation."""
    argv = ["--num-envs", str(NUM_ENVS), "--num-steps", str(NUM_STEPS)]
    argv += ["--total-timesteps", str(NUM_ENVS * NUM_STEPS * ITERATIONS)]
    argv += ["--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "32"]
    argv += ["--eval-episodes", "16", "--log-every", "1"]
    return ppo.main(argv)


def test_vector_env_autoresets_next_step() -> None:
    envs = ppo.make_envs(ppo.Args(), num_envs=2)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    envs.close()


def test_runs_the_budget_with_finite_losses(tiny_run: dict) -> None:
    stats = tiny_run["stats"]
    assert stats["env_steps"] == [NUM_ENVS * NUM_STEPS * (i + 1) for i in range(ITERATIONS)]
    assert all(math.isfinite(loss) for loss in stats["loss"])
    assert 0.0 <= tiny_run["accuracy"] <= 1.0


def test_reset_steps_are_left_out_of_the_loss(tiny_run: dict) -> None:
    # Each sub-env's rows run: 7 steps of an episode, then 1 reset step (NEXT_STEP), ...
    # so row r (counted over the whole run) is a reset step when r % 8 == 7.
    stats = tiny_run["stats"]
    for i in range(ITERATIONS):
        rows = range(i * NUM_STEPS, (i + 1) * NUM_STEPS)
        reset_steps = NUM_ENVS * sum(r % (N_GLIMPSES + 1) == N_GLIMPSES for r in rows)
        assert stats["reset_steps"][i] == reset_steps
        assert stats["loss_transitions"][i] == NUM_STEPS * NUM_ENVS - reset_steps
    assert sum(stats["reset_steps"]) > 0  # the budget did cross episode ends


def test_episode_lengths_are_n_glimpses(tiny_run: dict) -> None:
    lengths = tiny_run["stats"]["episode_lengths"]
    rows = ITERATIONS * NUM_STEPS  # an episode ends on rows r % 8 == 6
    assert len(lengths) == NUM_ENVS * ((rows + 1) // (N_GLIMPSES + 1))
    assert set(lengths) == {N_GLIMPSES}


def test_advantages_ignore_the_reset_row() -> None:
    """Rows 0-2: an episode; row 3: the NEXT_STEP reset row; rows 4-5: the next episode."""
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).unsqueeze(1)
    values = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unsqueeze(1)
    ended = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).unsqueeze(1)
    next_value = torch.tensor([0.7])

    def gae(rewards: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor) -> np.ndarray:
        adv = ppo.compute_advantages(rewards, values, terminated, ended, next_value, gamma, lam)
        return adv.squeeze(1).numpy()

    adv = gae(rewards, values, ended)
    # By hand: the terminated episode does not bootstrap; the next one starts afresh at row 4.
    d2 = 1.0 - 0.3
    d1 = gamma * 0.3 - 0.2
    d0 = gamma * 0.2 - 0.1
    d5 = gamma * 0.7 - 0.6
    d4 = gamma * 0.6 - 0.5
    np.testing.assert_allclose(adv[2], d2, rtol=1e-6)
    np.testing.assert_allclose(adv[1], d1 + gamma * lam * d2, rtol=1e-6)
    np.testing.assert_allclose(adv[0], d0 + gamma * lam * (d1 + gamma * lam * d2), rtol=1e-6)
    np.testing.assert_allclose(adv[5], d5, rtol=1e-6)
    np.testing.assert_allclose(adv[4], d4 + gamma * lam * d5, rtol=1e-6)

    # Garbage on the reset row reaches no real row.
    garbage_rewards, garbage_values = rewards.clone(), values.clone()
    garbage_rewards[3], garbage_values[3] = 100.0, -50.0
    adv_garbage = gae(garbage_rewards, garbage_values, ended)
    real = [0, 1, 2, 4, 5]
    np.testing.assert_allclose(adv_garbage[real], adv[real], rtol=1e-6)

    # Truncated instead of terminated: bootstrap from the reset row's observation, which
    # under NEXT_STEP is the ended episode's last observation.
    adv_truncated = gae(rewards, values, torch.zeros_like(ended))
    np.testing.assert_allclose(adv_truncated[2], 1.0 + gamma * 0.4 - 0.3, rtol=1e-6)


def test_masked_mean_ignores_masked_rows() -> None:
    x = torch.tensor([1.0, 2.0, 1000.0, 3.0])
    assert float(ppo.masked_mean(x, torch.tensor([1.0, 1.0, 0.0, 1.0]))) == pytest.approx(2.0)


def test_learns_a_one_glimpse_task() -> None:
    """One 28x28 glimpse at the centre shows the whole digit: a bandit PPO must learn."""
    argv = ["--n-glimpses", "1", "--glimpse-size", "28", "--start", "center"]
    argv += ["--num-envs", "256", "--num-steps", "8", "--total-timesteps", str(256 * 8 * 8)]
    argv += ["--hidden-size", "64", "--eval-episodes", "500", "--log-every", "100"]
    args = ppo.parse_args(argv)
    agent, stats = ppo.train(args)
    assert stats["accuracy"][0] < 0.25  # starts near chance (0.1)
    assert stats["accuracy"][-1] > 0.35
    assert ppo.evaluate(agent, args) > 0.5  # test digits, deterministic actions
