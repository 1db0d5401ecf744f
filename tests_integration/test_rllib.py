"""RLlib (new API stack): ``examples/rllib_ppo.py`` with a tiny budget.

Checks what RLlib saw of the native vector env (episode lengths and sampled env steps: a
wrong autoreset mode gives episodes of the wrong length) and that the saved checkpoint gives
back an RLModule that plays test episodes.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import ray
from ray.rllib.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
)
from ray.rllib.core.rl_module import RLModule

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rllib_ppo.py"
NUM_ENVS = 4
EPISODES_PER_ENV = 2
ITERATIONS = 2


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example module, with a local Ray instance for its algorithm."""
    spec = importlib.util.spec_from_file_location("rllib_ppo", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rllib_ppo"] = module
    spec.loader.exec_module(module)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield module
    ray.shutdown()
    sys.modules.pop("rllib_ppo", None)


def _run(example: ModuleType, out: Path, *extra: str) -> dict[str, Any]:
    return example.main(
        [
            "--iterations",
            str(ITERATIONS),
            "--num-envs",
            str(NUM_ENVS),
            "--episodes-per-env",
            str(EPISODES_PER_ENV),
            "--test-episodes",
            "8",
            "--out",
            str(out),
            *extra,
        ]
    )


def _check_sampling(summary: dict[str, Any], n_glimpses: int) -> None:
    """Every iteration sampled whole episodes of exactly ``n_glimpses`` steps."""
    episodes = NUM_ENVS * EPISODES_PER_ENV
    steps = n_glimpses * episodes
    assert len(summary["results"]) == ITERATIONS
    for i, result in enumerate(summary["results"], start=1):
        runners = result["env_runners"]
        assert runners["episode_len_mean"] == n_glimpses
        assert runners["episode_len_min"] == runners["episode_len_max"] == n_glimpses
        assert runners["num_episodes"] == episodes
        assert runners["num_env_steps_sampled"] == steps
        assert result["num_env_steps_sampled_lifetime"] == i * steps
        assert result["learners"]["__all_modules__"]["num_env_steps_trained"] > 0
    assert summary["episode_len_mean"] == n_glimpses
    assert summary["env_steps"] == ITERATIONS * steps
    assert 0.0 <= summary["episode_return_mean"] <= 1.0


def test_ppo_glimpse_mnist(example: ModuleType, tmp_path: Path) -> None:
    """GlimpseMNIST-v0: 7-step episodes; the checkpoint's RLModule acts on test episodes."""
    summary = _run(example, tmp_path / "ckpt")
    _check_sampling(summary, n_glimpses=7)

    module = RLModule.from_checkpoint(
        summary["checkpoint"]
        / COMPONENT_LEARNER_GROUP
        / COMPONENT_LEARNER
        / COMPONENT_RL_MODULE
        / DEFAULT_MODULE_ID
    )
    assert module.get_initial_state(), "the restored module lost its LSTM"
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # Deterministic actions on the same test episodes: the same accuracy again.
    again = example.evaluate(module, "GlimpseMNIST-v0", {}, episodes=8, seed=0)
    assert again == summary["test_accuracy"]
    # The whole trained network came back (the learner reports its size).
    learner = summary["results"][0]["learners"][DEFAULT_MODULE_ID]
    trained = learner["num_trainable_parameters"]
    restored = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert restored == trained
    assert all(np.isfinite(p.detach().numpy()).all() for p in module.parameters())


def test_ppo_remote_env_runner_and_n_glimpses(example: ModuleType, tmp_path: Path) -> None:
    """``n_glimpses=3`` through env_config, sampled by a remote env runner (another process,
    which must find the env id and the MNIST files): RLlib sees 3-step episodes."""
    summary = _run(example, tmp_path / "ckpt", "--n-glimpses", "3", "--num-env-runners", "1")
    _check_sampling(summary, n_glimpses=3)
