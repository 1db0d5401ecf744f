"""stable-baselines3 / sb3-contrib: every algorithm of ``examples/sb3_algorithms.py`` trains
on a single env and on ``GlimpseVecEnv``, sees whole episodes, saves, loads, acts and evaluates."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sb3_algorithms.py"
_spec = importlib.util.spec_from_file_location("sb3_algorithms", EXAMPLE)
sb3_algorithms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sb3_algorithms)

ENV_ID = "GlimpseMNIST-v0"
N_GLIMPSES = 7
NUM_ENVS = 4
EVAL_EPISODES = 10
# Tiny budgets: on-policy runs do one rollout (64 episodes), off-policy ones ~50 updates.
BUDGET = {"ppo": 448, "a2c": 112, "recurrent_ppo": 448, "sac": 56, "td3": 56, "tqc": 56}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    """Small nets on a shared 2-core machine: one thread is much faster than two."""
    torch.set_num_threads(1)


class DoneRecorder(BaseCallback):
    """Records the ``dones`` and episode infos of every vector step the model takes."""

    def __init__(self) -> None:
        super().__init__()
        self.dones: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.truncated: list[bool] = []

    def _on_step(self) -> bool:
        dones = np.asarray(self.locals["dones"], dtype=bool)
        self.dones.append(dones.copy())
        for done, info in zip(dones, self.locals["infos"]):
            if done:
                self.lengths.append(int(info["episode"]["l"]))
                self.truncated.append(bool(info["TimeLimit.truncated"]))
        return True


@pytest.mark.parametrize("num_envs", [1, NUM_ENVS], ids=["single", "GlimpseVecEnv"])
@pytest.mark.parametrize("algo", sorted(sb3_algorithms.ALGOS))
def test_train_save_load_evaluate(algo: str, num_envs: int, tmp_path: Path) -> None:
    budget = BUDGET[algo]
    env = sb3_algorithms.make_env(ENV_ID, num_envs, seed=0)
    assert env.num_envs == num_envs
    model = sb3_algorithms.make_model(algo, env, seed=0, total_timesteps=budget)
    recorder = DoneRecorder()
    model.learn(total_timesteps=budget, callback=recorder)
    assert model.num_timesteps >= budget

    # Every vector step was seen, and every episode lasted exactly n_glimpses steps: the
    # sub-envs start together, so all of them end together every N_GLIMPSES steps.
    steps = len(recorder.dones)
    assert steps * num_envs == model.num_timesteps
    expected = np.zeros((steps, num_envs), dtype=bool)
    expected[N_GLIMPSES - 1 :: N_GLIMPSES] = True
    np.testing.assert_array_equal(np.stack(recorder.dones), expected)
    assert recorder.lengths == [N_GLIMPSES] * int(expected.sum())
    assert not any(recorder.truncated)
    assert [ep["l"] for ep in model.ep_info_buffer] == [N_GLIMPSES] * min(100, expected.sum())
    if algo in sb3_algorithms.OFF_POLICY:
        assert model.replay_buffer.size() * num_envs == model.num_timesteps

    path = tmp_path / "model.zip"
    model.save(path)
    env.close()
    loaded = sb3_algorithms.ALGOS[algo].load(path, device="cpu")
    assert type(loaded) is type(model)

    # One observation -> one action (12,); a batch of N -> (N, 12); inside the action space.
    single = gym.make(ENV_ID, split="test")
    obs, _ = single.reset(seed=1)
    action, _ = loaded.predict(obs, deterministic=True)
    assert action.shape == (12,)
    assert single.action_space.contains(action.astype(np.float32))
    batched = sb3_algorithms.make_env(ENV_ID, NUM_ENVS, seed=1, split="test")
    actions, state = loaded.predict(batched.reset(), deterministic=False)
    assert actions.shape == (NUM_ENVS, 12)
    assert all(single.action_space.contains(a.astype(np.float32)) for a in actions)
    if algo == "recurrent_ppo":
        assert state is not None and state[0].shape[1] == NUM_ENVS  # LSTM (h, c)
    batched.close()

    test_env = sb3_algorithms.make_env(ENV_ID, num_envs, seed=1, split="test")
    accuracy, mean_reward, successes = sb3_algorithms.evaluate(loaded, test_env, EVAL_EPISODES)
    assert len(successes) == EVAL_EPISODES
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == pytest.approx(np.mean(successes))
    assert mean_reward == pytest.approx(accuracy)  # sparse reward: 1 iff right
    test_env.close()


@pytest.mark.parametrize("num_envs", [1, NUM_ENVS])
def test_main_end_to_end(num_envs: int, tmp_path: Path) -> None:
    summary: dict[str, Any] = sb3_algorithms.main(
        [
            "--algo", "a2c",
            "--num-envs", str(num_envs),
            "--total-timesteps", "56",
            "--eval-episodes", "12",
            "--out", str(tmp_path),
            "--torch-threads", "1",
        ]
    )  # fmt: skip
    assert summary["num_timesteps"] >= 56
    assert summary["train_episode_lengths"] == [N_GLIMPSES] * (56 // N_GLIMPSES)
    assert Path(summary["model_path"]).is_file()
    assert Path(summary["model_path"]).parent == tmp_path
    assert summary["test_episodes"] == 12
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_mean_reward"] == pytest.approx(summary["test_accuracy"])
