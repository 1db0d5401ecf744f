"""PPO from Tianshou 2.0 on a glimpse env, then test accuracy on split="test".

What it shows:

* Tianshou's ``Net`` takes a flat vector, not the env's ``Dict`` observation (it fails with
  ``TypeError: Entry for location in Batch(...) has no len()``), so each env is wrapped in
  ``gymnasium.wrappers.FlattenObservation``.
* Memory: a plain MLP sees one observation. ``gymnasium.wrappers.FrameStackObservation``
  (before flattening) hands it all the glimpses of the episode so far, the newest last and
  zeros in the slots not seen yet; ``n_glimpses`` frames cover a whole episode.
* Tianshou steps its own vector env (``DummyVectorEnv``) over single envs; it cannot use
  the project's native batched vector env (``gym.make_vec``), which is a Gymnasium
  ``VectorEnv`` while Tianshou's collectors need a ``tianshou.env.BaseVectorEnv``.
* The procedural API: ``ProbabilisticActorPolicy`` + ``PPO`` + ``Collector`` +
  ``algorithm.run_training(OnPolicyTrainerParams(...))``.
* The policy is one diagonal Gaussian over all 12 action components (2 location, 10
  class scores), squashed by ``tanh`` into the action space (``tanh`` keeps the order of
  the scores, so the argmax the env reads is that of the network's scores). A Gaussian
  is a poor way to pick a class (expect accuracy near chance for budgets of a few CPU
  minutes); ``examples/cleanrl_ppo.py`` uses a categorical head. Tianshou's ``Batch``
  slices only Categorical, Normal and Independent distributions, so a mixed
  Gaussian + categorical policy needs more than a custom ``dist_fn``.
* Each collection step gathers whole episodes, every epoch ends with a validation step
  (``split="val"``, mean return = accuracy), and the trained policy is evaluated on
  ``split="test"`` (the first ``--eval-episodes`` test digits, deterministic actions).

Run (reads MNIST from ``$GLIMPSE_ENV_DATA`` if set)::

    python examples/tianshou_ppo.py --total-timesteps 200000

The budget is rounded up to whole collection steps (``--episodes-per-collect`` episodes).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import FlattenObservation, FrameStackObservation
from tianshou.algorithm import PPO
from tianshou.algorithm.modelfree.reinforce import ProbabilisticActorPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.data.stats import InfoStats
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OnPolicyTrainerParams
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousActorProbabilistic, ContinuousCritic
from torch.distributions import Distribution, Independent, Normal

import glimpse_env  # noqa: F401  (registers the Glimpse* ids)


def make_env(env_id: str, n_glimpses: int | None = None, **env_kwargs: Any) -> gym.Env:
    """One glimpse env whose observation is the flat stack of the episode's glimpses.

    Args:
        env_id: a registered glimpse env id, e.g. ``"GlimpseMNIST-v0"``.
        n_glimpses: glimpses per episode; ``None``: the env's default.
        **env_kwargs: passed to ``gym.make`` (``split``, ``sequential``, ``reward``...).

    Returns:
        The env with a ``Box`` observation of ``n_glimpses * (k*g*g + 2)`` floats.
    """
    if n_glimpses is not None:
        env_kwargs["n_glimpses"] = n_glimpses
    env = gym.make(env_id, **env_kwargs)
    env = FrameStackObservation(env, stack_size=env.unwrapped.n_glimpses, padding_type="zero")
    return FlattenObservation(env)


def dist_fn(loc_scale: tuple[torch.Tensor, torch.Tensor]) -> Distribution:
    """A diagonal Gaussian over the action components from the actor's ``(mean, std)``."""
    loc, scale = loc_scale
    return Independent(Normal(loc, scale), 1)


def build_ppo(env: gym.Env, hidden_sizes: Sequence[int], lr: float, gamma: float) -> PPO:
    """Actor, critic, policy and PPO algorithm for ``env`` (a wrapped env from :func:`make_env`).

    Args:
        env: gives the observation and action spaces.
        hidden_sizes: widths of the actor's and the critic's MLPs.
        lr: Adam learning rate.
        gamma: discount factor.

    Returns:
        The PPO algorithm; ``algorithm.policy`` is the trained policy.
    """
    obs_shape = env.observation_space.shape
    actor = ContinuousActorProbabilistic(
        preprocess_net=Net(state_shape=obs_shape, hidden_sizes=hidden_sizes),
        action_shape=env.action_space.shape,
        unbounded=True,  # the policy squashes with tanh (below)
    )
    critic = ContinuousCritic(preprocess_net=Net(state_shape=obs_shape, hidden_sizes=hidden_sizes))
    policy = ProbabilisticActorPolicy(
        actor=actor,
        dist_fn=dist_fn,
        action_space=env.action_space,
        action_scaling=False,  # the action space is already [-1, 1]
        action_bound_method="tanh",  # monotonic: the argmax of the class scores is kept
        deterministic_eval=True,  # the mean action outside training steps
    )
    return PPO(
        policy=policy,
        critic=critic,
        optim=AdamOptimizerFactory(lr=lr),
        gamma=gamma,
        gae_lambda=0.95,
        eps_clip=0.2,
        vf_coef=0.5,
        ent_coef=0.0,
        max_grad_norm=0.5,
        advantage_normalization=True,
    )


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        algorithm: the trained PPO algorithm (``algorithm.policy`` acts).
        info: Tianshou's training summary (``train_step``: env steps, ``train_episode``...).
        training_collector: the collector that gathered the training episodes.
    """

    algorithm: PPO
    info: InfoStats
    training_collector: Collector


def train(args: argparse.Namespace) -> TrainResult:
    """Train PPO on ``args.env_id`` (split ``"train"``) with the budget in ``args``."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002  (Tianshou draws minibatches from it)
    torch.set_num_threads(args.torch_threads)
    training_envs = DummyVectorEnv(
        [
            lambda: make_env(args.env_id, args.n_glimpses, split="train", reward=args.reward)
            for _ in range(args.num_envs)
        ]
    )
    val_envs = DummyVectorEnv(  # sparse reward: the mean return is the accuracy
        [lambda: make_env(args.env_id, args.n_glimpses, split="val") for _ in range(args.num_envs)]
    )
    training_envs.seed(args.seed)
    val_envs.seed(args.seed + 10_000)

    env = make_env(args.env_id, args.n_glimpses)  # for its spaces
    algorithm = build_ppo(env, args.hidden_sizes, args.lr, args.gamma)
    env.close()
    steps_per_collect = args.episodes_per_collect * training_envs.get_env_attr("n_glimpses")[0]
    training_collector = Collector[CollectStats](
        algorithm, training_envs, VectorReplayBuffer(steps_per_collect, args.num_envs)
    )
    val_collector = Collector[CollectStats](algorithm, val_envs)
    info = algorithm.run_training(
        OnPolicyTrainerParams(
            training_collector=training_collector,
            test_collector=val_collector,
            test_step_num_episodes=args.val_episodes,
            max_epochs=args.epochs,
            epoch_num_steps=-(-args.total_timesteps // args.epochs),  # ceil
            collection_step_num_episodes=args.episodes_per_collect,
            collection_step_num_env_steps=None,
            update_step_num_repetitions=args.update_epochs,
            batch_size=args.batch_size,
            show_progress=False,
        )
    )
    return TrainResult(algorithm=algorithm, info=info, training_collector=training_collector)


def evaluate(
    algorithm: PPO, env_id: str, n_episodes: int, n_glimpses: int | None = None
) -> CollectStats:
    """Run the policy (deterministic actions) on the first ``n_episodes`` test digits.

    The reward is sparse (1 if the class named at the end is right), so the mean return is
    the accuracy.

    Returns:
        Tianshou's collect stats (``returns``, ``lens``...).
    """
    # One env with sequential=True shows test digits 0, 1, 2, ... once each.
    test_envs = DummyVectorEnv(
        [lambda: make_env(env_id, n_glimpses, split="test", sequential=True)]
    )
    collector = Collector[CollectStats](algorithm, test_envs)
    collector.reset()
    return collector.collect(n_episode=n_episodes)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags (the budget and a few hyperparameters)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="GlimpseMNIST-v0")
    parser.add_argument("--n-glimpses", type=int, default=None, help="default: the env's")
    parser.add_argument("--reward", default="sparse", help="training reward: sparse or dense")
    parser.add_argument("--total-timesteps", type=int, default=200_000, help="training env steps")
    parser.add_argument("--epochs", type=int, default=5, help="validation step after each")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--episodes-per-collect", type=int, default=64)
    parser.add_argument("--update-epochs", type=int, default=4, help="passes over each batch")
    parser.add_argument("--batch-size", type=int, default=256, help="minibatch size")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--val-episodes", type=int, default=200, help="per validation step")
    parser.add_argument("--eval-episodes", type=int, default=1000, help="test episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1, help="small nets: 1 is fastest")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate on the test split, print and return the results."""
    args = parse_args(argv)
    result = train(args)
    stats = evaluate(result.algorithm, args.env_id, args.eval_episodes, args.n_glimpses)
    accuracy = float(np.mean(stats.returns))
    print(
        f"trained {result.info.train_step} env steps ({result.info.train_episode} episodes) "
        f"in {result.info.timing.total_time:.0f} s; test accuracy {accuracy:.3f} over "
        f"{stats.n_collected_episodes} episodes (chance 0.1)"
    )
    return {"result": result, "test_stats": stats, "accuracy": accuracy}


if __name__ == "__main__":
    main()
