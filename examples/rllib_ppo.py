"""PPO from RLlib (new API stack) on a glimpse env, through its native batched vector env.

What it shows:

* The Dict observation (``glimpse`` + ``location``) reaches RLlib's default networks through
  the ``FlattenObservations`` env-to-module connector (without it RLlib stops with
  "No default encoder config for obs space=Dict(...)").
* One glimpse says little about the digit, so the default model gets memory:
  ``DefaultModelConfig(use_lstm=True, max_seq_len=n_glimpses)``, one LSTM sequence per episode.
* ``gym_env_vectorize_mode="vector_entry_point"`` makes each env runner build the project's
  batched ``GlimpseVectorEnv`` (``gym.make_vec``) with ``num_envs_per_env_runner`` sub-envs.
  RLlib expects Gymnasium's next-step autoreset, the default of ``gym.make_vec`` here.
* After training: save a checkpoint, restore the RLModule alone from it and measure its
  accuracy on ``split="test"`` episodes, acting deterministically (the Gaussian's mean).

The reward is sparse (1 at the last glimpse if the argmax of the 10 class scores is the label),
so ``episode_return_mean`` is the training accuracy of the exploring policy. RLlib's default
head for the Box action is a Gaussian over all 12 components, the class being the argmax of
10 noisy scores: it learns slowly (about chance, 10.7% test accuracy, after 161,280 env steps
and 3 minutes on 2 CPU cores; the SB3 comparison in docs/results.md shows the same head at 300,000
steps and a categorical class head that does better).

Run (MNIST files in ``$GLIMPSE_ENV_DATA``; env runners started by ``ray.init()`` on this
machine inherit the variable)::

    export GLIMPSE_ENV_DATA=/path/to/mnist
    python examples/rllib_ppo.py --iterations 50 --num-envs 16 --out /tmp/rllib_ppo

More env runners (processes): ``--num-env-runners 2``. On a Ray cluster the remote workers
do not see your shell's variables; pass them, e.g.
``ray.init(runtime_env={"env_vars": {"GLIMPSE_ENV_DATA": "/data/mnist"}})``, with the files
present at that path on every node (or ``env_config={"data_dir": ...}``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch
import tree
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module import RLModule
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

import glimpse_env  # noqa: F401  (registers the GlimpseMNIST-v0, ... ids)


def make_config(
    env_id: str,
    env_config: dict[str, Any],
    n_glimpses: int,
    num_envs: int = 16,
    episodes_per_env: int = 32,
    num_env_runners: int = 0,
    seed: int = 0,
) -> PPOConfig:
    """PPO with an LSTM over flattened glimpse observations.

    Args:
        env_id: a registered glimpse env id.
        env_config: keyword arguments for ``gym.make_vec(env_id, ...)`` (e.g. ``n_glimpses``).
        n_glimpses: steps per episode of that env (sets the batch and LSTM sequence length).
        num_envs: sub-envs of each env runner's vector env.
        episodes_per_env: episodes each sub-env plays per training iteration.
        num_env_runners: 0 samples in the driver process; more start Ray actors.
        seed: seed of the env runners and the networks.

    Returns:
        The algorithm config; ``config.build_algo()`` makes the algorithm.
    """
    batch = n_glimpses * episodes_per_env * num_envs * max(num_env_runners, 1)
    return (
        PPOConfig()
        # "glimpse_env:<id>" makes Gymnasium import glimpse_env (which registers the ids)
        # in every process that builds the env, remote env runners included.
        .environment(f"glimpse_env:{env_id}", env_config=env_config)
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs,
            gym_env_vectorize_mode="vector_entry_point",
            env_to_module_connector=lambda env, spaces=None, device=None: FlattenObservations(),
        )
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=min(256, batch),
            num_epochs=4,
            lr=1e-3,
            gamma=1.0,
            vf_loss_coeff=0.5,
            grad_clip=0.5,
            use_kl_loss=False,
        )
        .rl_module(
            # Per step: an MLP "glimpse network" on the flattened observation, then the LSTM
            # core; the policy (12 Gaussian means and log-stds) and value heads read its output.
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                use_lstm=True,
                lstm_cell_size=128,
                max_seq_len=n_glimpses,
                vf_share_layers=True,
            )
        )
        .debugging(seed=seed)
    )


def evaluate(
    module: RLModule,
    env_id: str,
    env_config: dict[str, Any],
    episodes: int = 1000,
    num_envs: int = 100,
    seed: int = 0,
) -> float:
    """Accuracy of ``module`` on ``split="test"`` episodes (deterministic actions).

    Runs the module the way RLlib's env runner does: flattened observations, one time step
    per call, the LSTM state carried from step to step.

    Args:
        module: an RLModule trained by :func:`make_config`'s PPO (e.g. restored).
        env_id: the env it was trained on.
        env_config: the env's keyword arguments in training.
        episodes: test episodes to play (rounded up to a multiple of ``num_envs``).
        num_envs: episodes played side by side.
        seed: seed of the test episodes.

    Returns:
        The fraction of episodes whose final class scores pick the right digit.
    """
    num_envs = min(num_envs, episodes)
    env = gym.make_vec(env_id, num_envs=num_envs, **{**env_config, "split": "test"})
    space = env.single_action_space
    struct = get_base_struct_from_space(env.single_observation_space)
    correct, played = 0, 0
    while played < episodes:
        obs, _ = env.reset(seed=seed + played)
        state = tree.map_structure(
            lambda s: s.unsqueeze(0).repeat(num_envs, *[1] * s.dim()),
            module.get_initial_state(),
        )
        done = np.zeros(num_envs, dtype=bool)
        while not done.all():
            flat = flatten_inputs_to_1d_tensor(obs, struct, batch_axis=True)
            batch = {Columns.OBS: torch.from_numpy(flat)[:, None], Columns.STATE_IN: state}
            with torch.no_grad():
                out = module.forward_inference(batch)
            dist = module.get_inference_action_dist_cls().from_logits(
                out[Columns.ACTION_DIST_INPUTS][:, 0]
            )
            action = dist.to_deterministic().sample().numpy()
            state = out[Columns.STATE_OUT]
            obs, _, terminated, truncated, info = env.step(np.clip(action, space.low, space.high))
            done |= terminated | truncated
        correct += int(np.sum(info["is_success"] & info["_is_success"]))
        played += num_envs
    env.close()
    return correct / played


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, checkpoint, restore the RLModule and evaluate it on test episodes.

    Returns:
        ``episode_len_mean``, ``episode_return_mean``, ``env_steps`` (lifetime sampled),
        ``test_accuracy``, the ``checkpoint`` path and ``results`` (``algo.train()``'s
        result of every iteration).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="GlimpseMNIST-v0")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--num-envs", type=int, default=16, help="sub-envs per env runner")
    parser.add_argument("--episodes-per-env", type=int, default=32, help="per iteration")
    parser.add_argument("--num-env-runners", type=int, default=0)
    parser.add_argument("--n-glimpses", type=int, default=None, help="default: the env's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-episodes", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("rllib_ppo_checkpoint"))
    args = parser.parse_args(argv)

    env_config: dict[str, Any] = {}
    if args.n_glimpses is not None:
        env_config["n_glimpses"] = args.n_glimpses
    n_glimpses = gym.make(args.env_id, **env_config).unwrapped.n_glimpses  # steps per episode

    # Small networks: one torch thread is fastest and leaves the other cores to the env
    # runners (Ray already gives each remote worker one thread).
    torch.set_num_threads(1)
    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    config = make_config(
        args.env_id,
        env_config,
        n_glimpses,
        num_envs=args.num_envs,
        episodes_per_env=args.episodes_per_env,
        num_env_runners=args.num_env_runners,
        seed=args.seed,
    )
    algo = config.build_algo()
    results = []
    for iteration in range(1, args.iterations + 1):
        result = algo.train()
        results.append(result)
        runners = result["env_runners"]
        print(
            f"iter {iteration:3d}  env steps {result['num_env_steps_sampled_lifetime']:8.0f}  "
            f"episode_len_mean {runners['episode_len_mean']:.2f}  "
            f"episode_return_mean {runners['episode_return_mean']:.3f}"
        )
    checkpoint = algo.save_to_path(args.out.resolve())
    algo.stop()

    # The trained network alone, as one would load it for deployment.
    module = RLModule.from_checkpoint(
        Path(checkpoint)
        / COMPONENT_LEARNER_GROUP
        / COMPONENT_LEARNER
        / COMPONENT_RL_MODULE
        / DEFAULT_MODULE_ID
    )
    accuracy = evaluate(module, args.env_id, env_config, args.test_episodes, seed=args.seed)
    print(f"checkpoint: {checkpoint}")
    print(
        f"episode_len_mean {runners['episode_len_mean']:.2f}  "
        f"episode_return_mean (train accuracy) {runners['episode_return_mean']:.3f}  "
        f"test accuracy of the restored module {accuracy:.3f} (chance 0.1)"
    )
    return {
        "episode_len_mean": float(runners["episode_len_mean"]),
        "episode_return_mean": float(runners["episode_return_mean"]),
        "env_steps": int(result["num_env_steps_sampled_lifetime"]),
        "test_accuracy": accuracy,
        "checkpoint": Path(checkpoint),
        "results": results,
    }


if __name__ == "__main__":
    main()
