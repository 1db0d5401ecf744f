"""Minari: record the shipped RAM policy, load the dataset back, replay it exactly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import minari
import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minari_dataset.py"
_spec = importlib.util.spec_from_file_location("minari_dataset", EXAMPLE)
minari_dataset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(minari_dataset)

N_EPISODES = 20


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The example run once: 20 test-split episodes in a temporary Minari folder."""
    folder = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(folder))
        out = minari_dataset.main(
            ["--episodes", str(N_EPISODES), "--seed", "100", "--datasets-path", str(folder)]
        )
    return out, folder


@pytest.fixture
def dataset(recorded: tuple[dict, Path], monkeypatch: pytest.MonkeyPatch) -> minari.MinariDataset:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(recorded[1]))
    return minari.load_dataset(minari_dataset.DATASET_ID)


def test_dataset_under_the_given_folder(recorded: tuple[dict, Path]) -> None:
    out, folder = recorded
    assert (folder / minari_dataset.DATASET_ID / "data").is_dir()
    assert out["size_mb"] > 0


def test_episodes_and_lengths(recorded: tuple[dict, Path], dataset: minari.MinariDataset) -> None:
    out = recorded[0]
    n = out["n_glimpses"]
    assert n == 7
    assert dataset.total_episodes == N_EPISODES
    assert dataset.total_steps == N_EPISODES * n
    assert out["seeds"] == list(range(100, 100 + N_EPISODES))
    for episode in dataset.iterate_episodes():
        assert len(episode) == n
        assert episode.terminations.tolist() == [False] * (n - 1) + [True]
        # Ends by itself; the registered TimeLimit (= n_glimpses) may flag the last step too.
        assert not episode.truncations[:-1].any()
        assert set(np.unique(episode.rewards)) <= {0.0, 1.0}
        assert not episode.rewards[:-1].any()  # sparse reward


def test_success_rate_is_the_policy_accuracy(recorded: tuple[dict, Path]) -> None:
    out = recorded[0]
    assert out["success_rate"] == out["accuracy"]
    assert out["success_rate"] >= 0.8  # the shipped model: ~99% on the test split


def test_observations_match_the_spaces(dataset: minari.MinariDataset) -> None:
    env = dataset.recover_environment()
    glimpse_space = env.observation_space["glimpse"]
    location_space = env.observation_space["location"]
    assert dataset.observation_space == env.observation_space
    assert dataset.action_space == env.action_space
    for episode in dataset.iterate_episodes():
        obs, n = episode.observations, len(episode)
        assert obs["glimpse"].shape == (n + 1, *glimpse_space.shape)  # reset + n steps
        assert obs["glimpse"].dtype == glimpse_space.dtype
        assert obs["location"].shape == (n + 1, *location_space.shape)
        assert obs["location"].dtype == location_space.dtype
        assert episode.actions.shape == (n, *env.action_space.shape)
        assert episode.actions.dtype == env.action_space.dtype
        for t in range(n + 1):
            assert env.observation_space.contains({k: v[t] for k, v in obs.items()})
    env.close()


def test_replay_gives_the_same_rewards(dataset: minari.MinariDataset) -> None:
    """A fresh env (rebuilt from the dataset's spec), reset with each episode's seed and
    stepped with its recorded actions, gives the recorded observations and rewards."""
    env = dataset.recover_environment()
    assert env.spec.kwargs["split"] == "test"
    assert dataset.recover_environment(eval_env=True).spec.kwargs["split"] == "test"
    metadata = dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    for episode, meta in zip(dataset.iterate_episodes(), metadata, strict=True):
        obs, _ = env.reset(seed=meta["seed"])
        np.testing.assert_array_equal(obs["glimpse"], episode.observations["glimpse"][0])
        rewards = []
        for t, action in enumerate(episode.actions):
            obs, reward, terminated, _, _ = env.step(action)
            rewards.append(reward)
            np.testing.assert_array_equal(obs["glimpse"], episode.observations["glimpse"][t + 1])
            np.testing.assert_array_equal(obs["location"], episode.observations["location"][t + 1])
            assert terminated == episode.terminations[t]
        np.testing.assert_array_equal(np.array(rewards), episode.rewards)
    env.close()
