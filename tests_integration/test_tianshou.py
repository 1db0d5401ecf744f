"""examples/tianshou_ppo.py: Tianshou 2.0 PPO runs its budget on whole episodes and acts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tianshou_ppo.py"
ENV_ID = "GlimpseMNIST-v0"
N_GLIMPSES = 7
NUM_ENVS = 4
EPISODES_PER_COLLECT = 32
TOTAL_TIMESTEPS = 2 * EPISODES_PER_COLLECT * N_GLIMPSES  # two collection steps
EVAL_EPISODES = 20


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tianshou_ppo", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tianshou_ppo = _load_example()


@pytest.fixture(scope="module")
def run() -> dict:
    """A two-collection-step training run, one validation step, 20 test episodes."""
    argv = ["--env-id", ENV_ID, "--total-timesteps", str(TOTAL_TIMESTEPS), "--epochs", "1"]
    argv += ["--num-envs", str(NUM_ENVS), "--episodes-per-collect", str(EPISODES_PER_COLLECT)]
    argv += ["--hidden-sizes", "16", "--batch-size", "64", "--update-epochs", "1"]
    argv += ["--val-episodes", "4", "--eval-episodes", str(EVAL_EPISODES)]
    return tianshou_ppo.main(argv)


def test_trains_the_asked_env_steps_in_whole_episodes(run: dict) -> None:
    info = run["result"].info
    assert info.train_step == TOTAL_TIMESTEPS
    assert info.train_episode * N_GLIMPSES == TOTAL_TIMESTEPS
    assert info.update_step == 2


def test_episode_lengths_are_n_glimpses(run: dict) -> None:
    training = run["result"].training_collector.collect(n_episode=NUM_ENVS)
    assert training.lens.tolist() == [N_GLIMPSES] * NUM_ENVS
    test = run["test_stats"]
    assert test.n_collected_episodes == EVAL_EPISODES
    assert test.lens.tolist() == [N_GLIMPSES] * EVAL_EPISODES
    assert set(test.returns.tolist()) <= {0.0, 1.0}  # sparse: 1 if the class is right
    assert run["accuracy"] == pytest.approx(float(np.mean(test.returns)))


def test_trained_policy_acts_on_a_test_env(run: dict) -> None:
    policy = run["result"].algorithm.policy
    env = tianshou_ppo.make_env(ENV_ID, split="test")
    obs, _ = env.reset(seed=0)
    for _ in range(N_GLIMPSES):
        action = policy.compute_action(obs)
        assert action.shape == env.action_space.shape
        assert env.action_space.contains(action.astype(np.float32))
        obs, reward, terminated, _, info = env.step(action)
    assert terminated
    assert reward in (0.0, 1.0) and isinstance(info["is_success"], (bool, np.bool_))
