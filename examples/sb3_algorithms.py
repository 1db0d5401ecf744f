"""Train any stable-baselines3 / sb3-contrib algorithm on a glimpse env, save, load, evaluate.

Shows, for SB3's PPO, A2C, SAC, TD3 and sb3-contrib's TQC and RecurrentPPO, with SB3's own
``MultiInputPolicy`` (``MultiInputLstmPolicy`` for RecurrentPPO) on the env's Dict
observation (``glimpse`` + ``location``):

* the env, either one ``gym.make(env_id)`` wrapped as SB3 does it (``Monitor`` inside a
  ``DummyVecEnv``), or the batched :class:`glimpse_env.sb3.GlimpseVecEnv` that steps all
  ``N`` episodes in one NumPy call (under ``VecMonitor``, which records episode returns and
  lengths);
* small hyperparameters that suit 7-8 step episodes (the rollout holds whole episodes;
  the off-policy replay buffer is small, since every transition stores two float32
  glimpses of ``n_scales * g * g`` values: 20,000 transitions of GlimpseClutteredMNIST100
  take about 90 MB);
* saving the model, loading it back, and evaluating it on ``split="test"``.

The reported accuracy is the fraction of test episodes whose last action named the right
digit: the mean of ``info["is_success"]`` at episode ends. Under the default sparse reward
(1 at the last step if right, else 0) it equals the mean episode reward, also reported.

Only RecurrentPPO has a memory here: the others see one glimpse and its location at a time
and must name the digit from the last glimpse alone (chance is 10%). For memory with plain
PPO see ``agents.sb3_policy.GlimpseHistory``.

Run (``GLIMPSE_ENV_DATA`` names the folder with the MNIST files)::

    python examples/sb3_algorithms.py --algo ppo --num-envs 64 --total-timesteps 500000
    python examples/sb3_algorithms.py --algo recurrent_ppo --num-envs 1 --total-timesteps 50000
    python examples/sb3_algorithms.py --algo sac --env-id GlimpseTranslatedMNIST-v0

``--num-envs 1`` trains on a single ``gym.make`` env; more uses ``GlimpseVecEnv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import TQC, RecurrentPPO
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.sb3 import GlimpseVecEnv

ALGOS: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "sac": SAC,
    "td3": TD3,
    "tqc": TQC,
    "recurrent_ppo": RecurrentPPO,
}
OFF_POLICY = ("sac", "td3", "tqc")


def make_env(env_id: str, num_envs: int, seed: int, **env_kwargs: Any) -> VecEnv:
    """The env as SB3 wants it: a ``VecEnv`` whose sub-envs report episode statistics.

    Args:
        env_id: a registered glimpse env id.
        num_envs: 1 for a single ``gym.make`` env (what SB3 builds from a ``gym.Env``),
            more for the batched ``GlimpseVecEnv``.
        seed: seed of the first reset (sub-env ``i`` gets ``seed + i``).
        **env_kwargs: env keyword arguments (``split``, ``reward``, ...).

    Returns:
        A ``DummyVecEnv`` over one ``Monitor``-wrapped env, or a ``VecMonitor`` over a
        ``GlimpseVecEnv``.
    """
    if num_envs == 1:
        venv: VecEnv = DummyVecEnv([lambda: Monitor(gym.make(env_id, **env_kwargs))])
        venv.seed(seed)
        return venv
    return VecMonitor(GlimpseVecEnv(env_id, num_envs=num_envs, seed=seed, **env_kwargs))


def n_glimpses_of(env: VecEnv) -> int:
    """Steps per episode of the env (every episode lasts exactly ``n_glimpses`` steps)."""
    return int(env.get_attr("n_glimpses")[0])


def make_model(
    algo: str, env: VecEnv, seed: int, total_timesteps: int, verbose: int = 0
) -> BaseAlgorithm:
    """An SB3 model with small hyperparameters suited to short fixed-length episodes.

    Args:
        algo: a key of :data:`ALGOS`.
        env: the training env (from :func:`make_env`).
        seed: seed of the model (and of the env's next reset).
        total_timesteps: the training budget (sets when off-policy learning starts).
        verbose: SB3 verbosity (1 prints the training statistics).

    Returns:
        The untrained model.
    """
    n_envs, steps = env.num_envs, n_glimpses_of(env)
    # Episodes end after `steps` steps, so no discount is needed.
    common: dict[str, Any] = {"gamma": 1.0, "seed": seed, "verbose": verbose, "device": "cpu"}
    policy_kwargs: dict[str, Any] = {"net_arch": [256, 256]}
    if algo in ("ppo", "recurrent_ppo"):
        # Rollouts of whole episodes, at least 64 per rollout, cut into 4 minibatches.
        # SB3's learning rate 3e-4 (1e-3 overshot here: approx_kl 0.1-0.8 per update).
        n_steps = steps * max(1, 64 // n_envs)
        kwargs = {"n_steps": n_steps, "batch_size": n_steps * n_envs // 4, "n_epochs": 4}
        if algo == "recurrent_ppo":
            policy_kwargs["lstm_hidden_size"] = 128
            policy = "MultiInputLstmPolicy"
            return RecurrentPPO(policy, env, **kwargs, **common, policy_kwargs=policy_kwargs)
        return PPO("MultiInputPolicy", env, **kwargs, **common, policy_kwargs=policy_kwargs)
    if algo == "a2c":
        # One whole episode per sub-env and update.
        return A2C("MultiInputPolicy", env, n_steps=steps, **common, policy_kwargs=policy_kwargs)
    if algo in OFF_POLICY:
        kwargs = {
            "buffer_size": 20_000,  # transitions; each stores obs and next obs (Dict, float32)
            "learning_starts": min(1_000, total_timesteps // 10),
            "batch_size": 256,
            "train_freq": 1,  # every vector step ...
            "gradient_steps": -1,  # ... one gradient step per transition collected
        }
        if algo == "td3":
            n_actions = env.action_space.shape[0]
            kwargs["action_noise"] = NormalActionNoise(
                np.zeros(n_actions), 0.1 * np.ones(n_actions)
            )
        return ALGOS[algo]("MultiInputPolicy", env, **kwargs, **common, policy_kwargs=policy_kwargs)
    raise ValueError(f"unknown algo {algo!r}; choose from {sorted(ALGOS)}")


def evaluate(model: BaseAlgorithm, env: VecEnv, n_episodes: int) -> tuple[float, float, list[bool]]:
    """Run the model deterministically for ``n_episodes`` episodes of ``env``.

    ``evaluate_policy`` passes the LSTM state and ``episode_start`` to ``model.predict``, so
    it serves RecurrentPPO as well.

    Args:
        model: a trained (or loaded) model.
        env: a ``Monitor``/``VecMonitor``-wrapped env, e.g. from :func:`make_env`.
        n_episodes: episodes to run (spread evenly over the sub-envs).

    Returns:
        ``(accuracy, mean_reward, successes)``: the fraction of episodes whose last action
        named the right digit, the mean episode reward, and one flag per episode.
    """
    successes: list[bool] = []

    def record(local: dict[str, Any], _: dict[str, Any]) -> None:
        # Called per sub-env and step; an episode counts where the monitor reports it.
        if local["done"] and "episode" in local["info"]:
            successes.append(bool(local["info"]["is_success"]))

    rewards, _ = evaluate_policy(
        model, env, n_eval_episodes=n_episodes, callback=record, return_episode_rewards=True
    )
    return float(np.mean(successes)), float(np.mean(rewards)), successes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, save, load and evaluate; returns a summary (also printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=sorted(ALGOS), default="ppo")
    parser.add_argument("--env-id", default="GlimpseMNIST-v0")
    parser.add_argument("--num-envs", type=int, default=16, help="1 = single gym.make env")
    parser.add_argument("--total-timesteps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path("runs/sb3"), help="folder for the model")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch CPU threads (small nets: 1)"
    )
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    env = make_env(args.env_id, args.num_envs, args.seed)  # split="train" by default
    model = make_model(args.algo, env, args.seed, args.total_timesteps, args.verbose)
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps)
    train_seconds = time.perf_counter() - start
    episode_lengths = [int(ep["l"]) for ep in model.ep_info_buffer]  # the last 100 episodes

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.algo}_{args.env_id}.zip"
    model.save(path)
    env.close()

    loaded = ALGOS[args.algo].load(path, device="cpu")
    test_env = make_env(args.env_id, args.num_envs, args.seed + 1, split="test")
    accuracy, mean_reward, successes = evaluate(loaded, test_env, args.eval_episodes)
    test_env.close()

    summary = {
        "algo": args.algo,
        "env_id": args.env_id,
        "num_envs": args.num_envs,
        "num_timesteps": model.num_timesteps,
        "train_seconds": round(train_seconds, 1),
        "train_episode_lengths": episode_lengths,
        "model_path": str(path),
        "test_episodes": len(successes),
        "test_accuracy": accuracy,
        "test_mean_reward": mean_reward,
    }
    print(
        f"{args.algo} on {args.env_id} ({args.num_envs} env(s)): {model.num_timesteps} steps "
        f"in {train_seconds:.0f} s; test accuracy {accuracy:.3f} over {len(successes)} "
        f"episodes (chance 0.1), mean test reward {mean_reward:.3f}; model: {path}"
    )
    return summary


if __name__ == "__main__":
    main()
