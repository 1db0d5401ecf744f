"""RL Baselines3 Zoo: the hyperparameter files of ``examples/rl_zoo/`` cover every id, and
``rl_zoo3.train`` / ``enjoy`` / ``-optimize`` run with them (subprocesses, tiny budgets)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from rl_zoo3.utils import ALGOS, get_wrapper_class
from stable_baselines3.common.torch_layers import CombinedExtractor

import glimpse_env

CONF = Path(__file__).resolve().parents[1] / "examples" / "rl_zoo"
#: Zoo algo name -> shipped file (the Zoo names RecurrentPPO "ppo_lstm").
FILES = {algo: CONF / f"{algo}.yml" for algo in ("ppo", "ppo_lstm", "a2c", "sac", "tqc")}
ENV_ID = "GlimpseMNIST-v0"
N_GLIMPSES = 7
# One rollout of the shipped PPO settings (16 envs x 56 steps = 128 episodes).
ON_POLICY_STEPS = 896
# RecurrentPPO on 4 envs: one rollout of 4 x 56 steps (32 episodes).
LSTM_ARGS = "-n 224 --hyperparams n_envs:4".split()
# Off-policy: 4 envs x 16 steps (8 episodes), updates from step 32 on, small buffer and batch.
OFF_POLICY_ARGS = "-n 64 --hyperparams buffer_size:1000 learning_starts:32 batch_size:64".split()


def zoo(module: str, *args: str, cwd: Path) -> str:
    """Run ``python -m rl_zoo3.<module> ARGS`` on one torch thread; its output (rc 0 checked)."""
    cmd = [sys.executable, "-m", f"rl_zoo3.{module}", "--gym-packages", "glimpse_env"]
    cmd += ["--num-threads", "1", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


def train(algo: str, folder: Path, *args: str) -> Path:
    """Train ``algo`` on ``ENV_ID`` with the shipped file; the run's folder (model, config)."""
    zoo("train", "--algo", algo, "--env", ENV_ID, "--conf-file", str(FILES[algo]),
        "-f", str(folder), "--seed", "0", "--eval-freq", "-1", "--verbose", "0", *args,
        cwd=folder)  # fmt: skip
    run = folder / algo / f"{ENV_ID}_1"
    # The Zoo saves the model, the hyperparameters it used and one Monitor file per env.
    assert (run / ENV_ID / "config.yml").is_file()
    model = run / f"{ENV_ID}.zip"
    assert model.is_file()
    return run


def episode_lengths(run: Path) -> list[int]:
    """Lengths of every episode the Monitor files of a training run recorded."""
    lengths = []
    for monitor in sorted(run.glob("*.monitor.csv")):
        rows = monitor.read_text().splitlines()[1:]  # a JSON comment line, then a CSV
        lengths += [int(row["l"]) for row in csv.DictReader(rows)]
    return lengths


def wrapped_env(run: Path) -> gym.Env:
    """``ENV_ID`` wrapped as in training (the ``env_wrapper`` of the saved config)."""
    config = yaml.load((run / ENV_ID / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    wrapper = get_wrapper_class(dict(config))
    env = gym.make(ENV_ID)
    return wrapper(env) if wrapper else env


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO model trained with the shipped ``ppo.yml`` (shared by the train and enjoy tests)."""
    return train("ppo", tmp_path_factory.mktemp("zoo"), "-n", str(ON_POLICY_STEPS))


@pytest.mark.parametrize("algo", sorted(FILES))
def test_conf_file_covers_every_id(algo: str) -> None:
    hyperparams = yaml.safe_load(FILES[algo].read_text())
    assert set(hyperparams) == set(glimpse_env.ENV_IDS)
    for env_id, params in hyperparams.items():
        assert params["n_timesteps"] > 0 and params["n_envs"] >= 1
        env = gym.make(env_id)
        n_glimpses = env.unwrapped.n_glimpses
        wrapper = get_wrapper_class(params)
        if algo == "ppo_lstm":
            assert wrapper is None  # the LSTM is the memory
        else:
            # The memoryless algorithms see the whole episode so far: n_glimpses stacked.
            env = wrapper(env)
            assert env.observation_space["glimpse"].shape[0] == n_glimpses
            assert env.observation_space["location"].shape == (n_glimpses, 2)
        # The policy takes the Dict observation: build it on the (wrapped) env's spaces.
        policy_cls = ALGOS[algo].policy_aliases[params["policy"]]
        policy_kwargs = eval(params["policy_kwargs"], {"nn": torch.nn})  # as the Zoo does
        policy = policy_cls(
            env.observation_space, env.action_space, lambda _: 3e-4, **policy_kwargs
        )
        extractor = getattr(policy, "features_extractor", None) or policy.actor.features_extractor
        assert isinstance(extractor, CombinedExtractor)
        obs, _ = env.reset(seed=0)
        action, _ = policy.predict(obs)
        assert action.shape == (12,)
        if algo in ("ppo", "ppo_lstm", "a2c"):
            # Rollouts end on episode boundaries.
            assert params["n_steps"] % n_glimpses == 0
        env.close()


def test_train_ppo_saves_a_model_that_acts(ppo_run: Path) -> None:
    # 16 envs x 56 steps: 128 whole episodes of n_glimpses steps each.
    assert episode_lengths(ppo_run) == [N_GLIMPSES] * (ON_POLICY_STEPS // N_GLIMPSES)
    model = ALGOS["ppo"].load(ppo_run / f"{ENV_ID}.zip", device="cpu")
    env = wrapped_env(ppo_run)
    obs, _ = env.reset(seed=0)
    assert model.observation_space == env.observation_space
    for _ in range(N_GLIMPSES):
        action, _ = model.predict(obs, deterministic=True)
        assert action.shape == (12,)
        obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    assert reward in (0.0, 1.0) and "is_success" in info


def test_train_recurrent_ppo_saves_a_model_that_acts(tmp_path: Path) -> None:
    run = train("ppo_lstm", tmp_path, *LSTM_ARGS)
    assert episode_lengths(run) == [N_GLIMPSES] * (224 // N_GLIMPSES)
    model = ALGOS["ppo_lstm"].load(run / f"{ENV_ID}.zip", device="cpu")
    env = wrapped_env(run)  # no wrapper: the plain Dict observation
    obs, _ = env.reset(seed=0)
    state, start = None, np.ones((1,), dtype=bool)
    for _ in range(N_GLIMPSES):
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        start[:] = False
        assert action.shape == (12,)
        assert state[0].shape == (1, 1, 256)  # (layers, envs, lstm_hidden_size)
        obs, _, terminated, _, _ = env.step(action)
    assert terminated


def test_train_tqc_saves_a_model_that_acts(tmp_path: Path) -> None:
    run = train("tqc", tmp_path, *OFF_POLICY_ARGS)
    assert episode_lengths(run) == [N_GLIMPSES] * 8
    model = ALGOS["tqc"].load(run / f"{ENV_ID}.zip", device="cpu", buffer_size=1)
    assert model.policy.critic.quantiles_total == 2 * 25
    env = wrapped_env(run)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (12,)


def test_enjoy_replays_the_ppo_model(ppo_run: Path) -> None:
    # rl_zoo3.enjoy imports `requests` (Hugging Face hub support); --no-render because the env
    # renders "rgb_array" only. 3 test episodes of 7 steps each.
    out = zoo("enjoy", "--algo", "ppo", "--env", ENV_ID, "-f", str(ppo_run.parents[1]),
              "--no-render", "-n", str(3 * N_GLIMPSES), "--env-kwargs", "split:'test'",
              cwd=ppo_run)  # fmt: skip
    rewards = [
        float(line.split()[-1]) for line in out.splitlines() if line.startswith("Episode Reward")
    ]
    assert len(rewards) == 3 and set(rewards) <= {0.0, 1.0}
    assert "Mean episode length: 7.00 +/- 0.00" in out


def test_optimize_runs_two_trials(tmp_path: Path) -> None:
    # A2C: its sampled n_steps (<= 2048) bounds a trial; n_envs:1 keeps the trials tiny.
    out = zoo("train", "--algo", "a2c", "--env", ENV_ID, "--conf-file", str(FILES["a2c"]),
              "-f", str(tmp_path), "--seed", "0", "-optimize", "--n-trials", "2", "--n-jobs", "1",
              "-n", "224", "--n-evaluations", "1", "--eval-episodes", "2", "--no-optim-plots",
              "--hyperparams", "n_envs:1", cwd=tmp_path)  # fmt: skip
    assert "Number of finished trials:  2" in out
    (report,) = (tmp_path / "a2c").glob(f"report_{ENV_ID}_2-trials-224-*.csv")
    trials = list(csv.DictReader(report.read_text().splitlines()))
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    # Each trial's value is a mean evaluation reward, i.e. an accuracy.
    assert all(0.0 <= float(t["value"]) <= 1.0 for t in trials)
