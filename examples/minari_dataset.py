"""Record a Minari dataset of the shipped RAM policy playing GlimpseMNIST-v0, then load it back.

Shows:

* how to act with the shipped (batched, recurrent) RAM policy on ONE observation at a time:
  a batch of one, its recurrent state kept across the steps of an episode and reset at the
  start of the next;
* how to record its episodes with ``minari.DataCollector`` and ``create_dataset``, one
  seed per episode (``reset(seed=seed + i)``), on the fixed test split;
* how to load the dataset back with ``minari.load_dataset`` and check it: episode count,
  steps per episode (= ``n_glimpses``), success rate (the sparse reward is 1 exactly when the
  digit was named right) against the policy's accuracy on the same episodes, measured
  independently on the native vector env.

Minari keeps its datasets under ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``);
``--datasets-path`` sets it. Run (about a minute for 1000 episodes on 2 CPU cores)::

    export GLIMPSE_ENV_DATA=/path/to/mnist   # folder with the MNIST files
    python examples/minari_dataset.py --episodes 1000 --datasets-path /tmp/minari

Load it elsewhere with ``minari.load_dataset("glimpse/mnist-ram-v0")`` (same
``MINARI_DATASETS_PATH``); ``dataset.recover_environment()`` rebuilds the env after
``import glimpse_env``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import minari
import numpy as np

import glimpse_env  # noqa: F401  (registers the ids)
from agents.policy import Policy, load_policy
from agents.pretrained import pretrained_path

ENV_ID = "GlimpseMNIST-v0"
DATASET_ID = "glimpse/mnist-ram-v0"


class OneEnvActor:
    """Acts on one observation at a time with a policy that acts on batches.

    The shipped policies take a batch of observations and a recurrent state; here the
    batch has one row and the state lives between calls. Call :meth:`reset` at the start of
    every episode.
    """

    def __init__(self, policy: Policy, deterministic: bool = True) -> None:
        self.policy = policy
        self.deterministic = deterministic
        self.state: Any = None
        self.reset()

    def reset(self) -> None:
        """Forget the previous episode (the model's initial state for one episode)."""
        self.state = self.policy.initial_state(1)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action float32 ``(12,)`` for one observation (glimpse ``(k, g, g)``, location ``(2,)``)."""
        batch = {key: value[None] for key, value in obs.items()}
        actions, self.state = self.policy.act(batch, self.state, self.deterministic)
        return np.asarray(actions[0], dtype=np.float32)


def env_kwargs_of(policy: Policy, split: str) -> dict[str, Any]:
    """The env arguments the policy was trained with, on ``split``."""
    kwargs = {k: v for k, v in policy.env_kwargs.items() if k not in ("split", "data_dir")}
    return {**kwargs, "split": split}


def record(
    policy: Policy,
    dataset_id: str,
    n_episodes: int,
    seed: int = 0,
    split: str = "test",
) -> minari.MinariDataset:
    """Play ``n_episodes`` (episode ``i`` reset with ``seed + i``) and save them with Minari."""
    made = gym.make(policy.env_id, **env_kwargs_of(policy, split))
    env = minari.DataCollector(made)
    actor = OneEnvActor(policy)
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        actor.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(actor(obs))
            done = terminated or truncated
    dataset = env.create_dataset(
        dataset_id=dataset_id,
        eval_env=made.spec,  # evaluate on the same env (its split, its kwargs)
        algorithm_name="RAM (Mnih et al. 2014), shipped weights, deterministic",
        author="glimpse-env examples",
        author_email="n/a",
        code_permalink="examples/minari_dataset.py",
        description=(
            f"{n_episodes} episodes of the shipped RAM policy on {policy.env_id} "
            f"(split={split!r}); episode i reset with seed {seed} + i. Reward 1 at the "
            "last step when the digit is named right."
        ),
        requirements=["glimpse-env"],
    )
    env.close()
    return dataset


def policy_accuracy(policy: Policy, split: str, seeds: Sequence[int]) -> float:
    """Accuracy of ``policy`` on the episodes that ``gym.make(...).reset(seed=s)`` starts.

    Measured on the native vector env: ``reset(seed=[s0, s1, ...])`` gives sub-env ``i``
    the episode of seed ``s_i``, all played in one batch.
    """
    envs = gym.make_vec(policy.env_id, num_envs=len(seeds), **env_kwargs_of(policy, split))
    obs, _ = envs.reset(seed=[int(s) for s in seeds])
    state = policy.initial_state(envs.num_envs)
    done = np.zeros(envs.num_envs, dtype=bool)
    while not done.all():
        actions, state = policy.act(obs, state, True)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        done = np.asarray(terminated | truncated)
    envs.close()
    return float(np.mean(np.asarray(rewards) > 0.5))  # sparse reward: 1 iff right


def summarize(dataset: minari.MinariDataset) -> dict[str, Any]:
    """Episode count, lengths, success rate and seeds of a loaded dataset."""
    episodes = list(dataset.iterate_episodes())
    metadata = list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))
    return {
        "episodes": dataset.total_episodes,
        "steps": dataset.total_steps,
        "lengths": np.array([len(ep) for ep in episodes]),
        "success_rate": float(np.mean([ep.rewards[-1] > 0.5 for ep in episodes])),
        "seeds": [m.get("seed") for m in metadata],
        "size_mb": float(dataset.storage.metadata.get("dataset_size", 0.0)),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes to record")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--split", default="test", help="MNIST split the episodes come from")
    parser.add_argument("--dataset-id", default=DATASET_ID)
    parser.add_argument(
        "--datasets-path", default=None, help="Minari folder (sets MINARI_DATASETS_PATH)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    args = parser.parse_args(argv)
    if args.datasets_path is not None:
        os.environ["MINARI_DATASETS_PATH"] = os.path.abspath(args.datasets_path)
    if args.overwrite and args.dataset_id in minari.list_local_datasets():
        minari.delete_dataset(args.dataset_id)

    policy = load_policy(pretrained_path(ENV_ID)).policy
    start = time.perf_counter()
    record(policy, args.dataset_id, args.episodes, args.seed, args.split)
    record_s = time.perf_counter() - start

    dataset = minari.load_dataset(args.dataset_id)
    summary = summarize(dataset)
    accuracy = policy_accuracy(policy, args.split, summary["seeds"])
    n_glimpses = gym.make(ENV_ID, **env_kwargs_of(policy, args.split)).unwrapped.n_glimpses
    print(f"dataset {args.dataset_id} at {dataset.storage.data_path} ({summary['size_mb']} MB)")
    print(f"recorded in {record_s:.1f} s")
    print(f"episodes: {summary['episodes']}, steps: {summary['steps']}")
    print(
        f"steps per episode: {sorted(set(summary['lengths'].tolist()))} (n_glimpses={n_glimpses})"
    )
    print(f"success rate in the dataset: {summary['success_rate']:.4f}")
    print(f"policy accuracy on the same episodes (vector env): {accuracy:.4f}")
    return {**summary, "accuracy": accuracy, "n_glimpses": n_glimpses, "record_s": record_s}


if __name__ == "__main__":
    main()
