"""The one evaluation loop (:mod:`glimpse_env.play`) and the benchmark on episodes of
different lengths (the adaptive envs), against counts made by hand."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from glimpse_env.actions import class_scores, pack_action
from glimpse_env.bench import evaluate
from glimpse_env.datasets import load_mnist
from glimpse_env.play import play_batches, play_episodes

pytestmark = pytest.mark.usefixtures("glimpse_data")

ADAPTIVE = "GlimpseMNISTAdaptive-v0"


class StopAfter:
    """Sub-env ``i`` stops after ``1 + i % 3`` glimpses and names class ``t`` at step ``t``
    (0-based), so an episode of length ``L`` answers ``L - 1``. NumPy only, stateful."""

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)

    def act(self, obs: Any, state: np.ndarray, deterministic: bool) -> tuple[np.ndarray, Any]:
        n = len(state)
        lengths = 1 + np.arange(n) % 3
        stop = np.where(state + 1 >= lengths, 1.0, -1.0).astype(np.float32)
        scores = class_scores(np.full(n, state % 10), 10)
        location = np.full((n, 2), 0.25, np.float32)
        return pack_action(location, scores, stop), state + 1


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_play_episodes_gathers_each_sub_envs_own_end(mode: str) -> None:
    n = 5
    envs = gym.make_vec(ADAPTIVE, num_envs=n, autoreset_mode=mode, glimpse_cost=0.125)
    obs, info = envs.reset(seed=3)
    labels = load_mnist("train").labels[info["image_index"]]
    _, ends, returns, lengths = play_episodes(StopAfter(), envs, obs, True)
    expected = 1 + np.arange(n) % 3
    np.testing.assert_array_equal(lengths, expected)
    np.testing.assert_array_equal(ends["glimpses"], expected)
    np.testing.assert_array_equal(ends["label"], labels)
    np.testing.assert_array_equal(ends["prediction"], expected - 1)
    assert ends["_label"].all() and ends["_glimpses"].all()
    right = (labels == expected - 1).astype(float)
    np.testing.assert_allclose(returns, right - 0.125 * expected)  # nothing after each end


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_play_batches_visits_every_image_once_with_mixed_lengths(mode: str) -> None:
    n, batches = 4, 3
    envs = gym.make_vec(ADAPTIVE, num_envs=n, split="test", sequential=True, autoreset_mode=mode)
    seen = []
    for batch in play_batches(StopAfter(), envs, batches, deterministic=True, seed=0):
        np.testing.assert_array_equal(batch.lengths, 1 + np.arange(n) % 3)
        assert batch.horizon == 3
        seen.append(np.asarray(batch.start_info["image_index"]))
        np.testing.assert_array_equal(
            batch.final_info["label"], load_mnist("test").labels[seen[-1]]
        )
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(n * batches))


def test_play_batches_on_a_vector_env_that_cannot_restart_says_so() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(ADAPTIVE) for _ in range(3)])
    batches = play_batches(StopAfter(), envs, 2, deterministic=True, seed=0)
    next(batches)
    with pytest.raises(RuntimeError, match="ended their episodes at different steps"):
        next(batches)


def test_bench_counts_glimpses_anytime_and_accuracy_by_hand() -> None:
    n_images, n = 30, 6
    result = evaluate(StopAfter(), ADAPTIVE, n_images=n_images, num_envs=n, radius_px=0.0)
    labels = load_mnist("test").labels[:n_images]
    lengths = 1 + (np.arange(n_images) % n) % 3  # image j runs on sub-env j % n
    assert result.accuracy == pytest.approx(np.mean(labels == lengths - 1))
    assert result.mean_glimpses == pytest.approx(lengths.mean())
    assert result.rollouts[0].glimpse_counts == [10, 10, 10, 0, 0, 0, 0]
    by_class = [lengths[labels == c].mean() if (labels == c).any() else 0.0 for c in range(10)]
    np.testing.assert_allclose(result.glimpses_by_class, by_class)
    # At step t an episode answers t, or L - 1 once it has stopped.
    anytime = [np.mean(labels == np.minimum(t, lengths - 1)) for t in range(7)]
    np.testing.assert_allclose(result.anytime_accuracy, anytime)
    assert result.anytime_accuracy[-1] == pytest.approx(result.accuracy)
    # Every chosen glimpse (0.25, 0.25) of a 28x28 digit lies on it; a third never chose one.
    assert result.on_digit_share == pytest.approx(20 / 30)
    assert result.rollouts[0].on_digit_by_glimpse == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_bench_of_a_fixed_length_env_reports_its_glimpses() -> None:
    def always_three(obs: dict[str, np.ndarray]) -> np.ndarray:
        return pack_action(np.zeros(2, np.float32), class_scores(3, 10))

    result = evaluate(always_three, "GlimpseMNIST-v0", n_images=20, num_envs=7)
    assert result.mean_glimpses == 7.0 and result.rollouts[0].glimpse_counts[-1] == 20


def test_bench_names_the_stop_score_when_a_bare_callable_lacks_it() -> None:
    def twelve(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(12, np.float32)

    with pytest.raises(Exception, match=r"shape \(13,\).*then the stop score"):
        evaluate(twelve, ADAPTIVE, n_images=4, num_envs=2)
