"""GlimpseBench's harness (:mod:`glimpse_env.bench`) with NumPy policies: the adapters, the
statistics against hand computations, determinism and every bad-policy error."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from glimpse_env.bench import (
    PROTOCOL,
    TIMING_KEYS,
    BenchPolicyError,
    Result,
    Rollout,
    batched,
    evaluate,
    recorded_env_kwargs,
    summarise,
    wilson_interval,
)
from glimpse_env.datasets import load_mnist

pytestmark = pytest.mark.usefixtures("glimpse_data")

MNIST, TRANSLATED = "GlimpseMNIST-v0", "GlimpseTranslatedMNIST-v0"
N_CLASSES = 10


def _action(x: float, y: float, cls: int) -> np.ndarray:
    return np.array([x, y, *np.eye(N_CLASSES)[cls]], dtype=np.float32)


def says_three(obs: dict[str, np.ndarray]) -> np.ndarray:
    """A bare one-observation policy: look at the centre, say 3."""
    assert obs["glimpse"].ndim == 3 and obs["location"].shape == (2,)
    return _action(0.0, 0.0, 3)


@batched
def says_three_batched(obs: dict[str, np.ndarray]) -> np.ndarray:
    return np.tile(_action(0.0, 0.0, 3), (len(obs["location"]), 1))


class StepCounter:
    """Stateful: at step t (0-based) predicts class t, from a per-episode counter."""

    n_parameters = 123

    def initial_state(self, num_envs: int) -> np.ndarray:
        return np.zeros(num_envs, dtype=np.int64)

    def act(
        self, obs: dict[str, np.ndarray], state: np.ndarray, deterministic: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        actions = np.zeros((len(state), 2 + N_CLASSES), dtype=np.float32)
        actions[np.arange(len(state)), 2 + state % N_CLASSES] = 1.0
        return actions, state + 1


def _untimed(result: Result) -> dict[str, Any]:
    data = result.to_dict()
    for key in TIMING_KEYS:
        data.pop(key)
        for rollout in data["rollouts"]:
            rollout.pop(key)
    return data


def test_benchmarking_a_numpy_policy_imports_no_torch() -> None:
    """In a fresh process (the test runner imported torch already)."""
    code = (
        "import sys\nimport numpy as np\nimport glimpse_env.bench as b\n"
        "r = b.evaluate(lambda o: np.array([0, 0, *np.eye(10)[1]], np.float32), "
        "'GlimpseClutteredMNIST-v0', n_images=20)\n"
        "assert r.n_images == 20\n"
        "heavy = sorted(m for m in ('torch', 'stable_baselines3', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(heavy) or 'numpy-only')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "numpy-only"


def test_bare_batched_and_protocol_policies_agree_with_the_labels() -> None:
    labels = load_mnist("test").labels[:30]
    bare = evaluate(says_three, MNIST, n_images=30, num_envs=7)
    assert bare.protocol == PROTOCOL and bare.n_images == 30 and bare.n_glimpses == 7
    assert bare.accuracy == pytest.approx(np.mean(labels == 3))
    assert bare.anytime_accuracy == pytest.approx([np.mean(labels == 3)] * 7)
    assert bare.rollouts[0].n_correct == int(np.sum(labels == 3))
    other = evaluate(says_three_batched, MNIST, n_images=30, num_envs=7)
    assert _untimed(other) | {"policy": ""} == _untimed(bare) | {"policy": ""}
    assert bare.policy.endswith("says_three") and other.policy.endswith("says_three_batched")


def test_stateful_policy_anytime_accuracy_is_each_steps_argmax() -> None:
    """The state is fresh for every batch of episodes (30 images, batches of 8, the last
    one partly beyond the images asked for), and step t's accuracy is P(label == t)."""
    labels = load_mnist("test").labels[:30]
    result = evaluate(StepCounter(), MNIST, n_images=30, num_envs=8)
    expected = [float(np.mean(labels == t)) for t in range(7)]
    assert result.anytime_accuracy == pytest.approx(expected)
    assert result.anytime_mean == pytest.approx(np.mean(expected))
    assert result.accuracy == pytest.approx(expected[-1])  # the env judges the last step
    assert result.n_parameters == 123
    assert result.error_rate == pytest.approx(1 - expected[-1])


def test_wilson_interval_against_hand_computation() -> None:
    # 5 of 10: (p + z^2/2n) / (1 + z^2/n) +- z/(1 + z^2/n) sqrt(p(1-p)/n + z^2/4n^2)
    z = 1.959963984540054
    centre = (0.5 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * np.sqrt(0.025 + z * z / 400)
    assert wilson_interval(5, 10) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, z * z / (10 + z * z)))
    assert wilson_interval(9911, 10000) == pytest.approx((0.98906, 0.99276), abs=1e-5)


def test_result_interval_is_wilson_over_images() -> None:
    result = evaluate(says_three, MNIST, n_images=40, num_envs=40)
    n_correct = result.rollouts[0].n_correct
    assert result.accuracy_interval == pytest.approx(wilson_interval(n_correct, 40))
    assert result.interval_method == "wilson-95-over-images"


def _digit_pos(n: int) -> np.ndarray:
    envs = gym.make_vec(TRANSLATED, num_envs=n, split="test", sequential=True)
    envs.reset(seed=0)
    pos = envs.unwrapped.layout["digit_pos"].astype(float)  # (row, col) top-left
    envs.close()
    return pos


@pytest.mark.parametrize("radius", [0.0, 10.0])
def test_where_it_looks_for_a_policy_staring_at_the_top_left_corner(radius: float) -> None:
    """Location (-1, -1) is pixel (0, 0): its distance to the digit's 28x28 box at
    (row, col) is hypot(row, col), to the digit's centre hypot(row + 14, col + 14)."""
    n = 50
    pos = _digit_pos(n)
    stare = lambda obs: _action(-1.0, -1.0, 0)  # noqa: E731
    result = evaluate(stare, TRANSLATED, n_images=n, num_envs=n, radius_px=radius)
    on_box = np.hypot(pos[:, 0], pos[:, 1]) <= radius
    assert result.on_digit_share == pytest.approx(on_box.mean())
    assert result.rollouts[0].on_digit_by_glimpse[1:] == pytest.approx([on_box.mean()] * 7)
    assert result.first_glimpse_distance_px == pytest.approx(np.hypot(*(pos + 14).T).mean())
    assert result.radius_px == radius


def test_where_it_looks_on_plain_mnist_is_the_whole_canvas() -> None:
    result = evaluate(says_three, MNIST, n_images=10)
    assert result.on_digit_share == 1.0
    assert result.first_glimpse_distance_px == pytest.approx(0.0)  # (0, 0) is pixel (14, 14)
    # Locations beyond [-1, 1] are clipped, as the env clips them: still on the canvas.
    far = evaluate(lambda obs: _action(5.0, -5.0, 3), MNIST, n_images=10)
    assert far.on_digit_share == 1.0
    assert far.first_glimpse_distance_px == pytest.approx(np.hypot(14, 14))


class SeededRandom:
    """Samples its class from a NumPy generator seeded through ``seed_sampling``."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(12345)

    def seed_sampling(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def initial_state(self, num_envs: int) -> None:
        return None

    def act(self, obs: dict[str, np.ndarray], state: None, deterministic: bool) -> tuple:
        n = len(obs["location"])
        classes = np.zeros(n, int) if deterministic else self.rng.integers(0, N_CLASSES, n)
        actions = np.zeros((n, 2 + N_CLASSES), dtype=np.float32)
        actions[np.arange(n), 2 + classes] = 1.0
        return actions, None


def test_two_runs_are_identical_but_for_timings() -> None:
    first = evaluate(StepCounter(), TRANSLATED, n_images=25, num_envs=10)
    second = evaluate(StepCounter(), TRANSLATED, n_images=25, num_envs=10)
    assert _untimed(first) == _untimed(second)
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()
    assert Result.from_dict(first.to_dict()) == first


def test_results_written_before_full_image_read_as_glimpse_limited() -> None:
    result = evaluate(says_three, MNIST, n_images=20, num_envs=20)
    assert result.full_image is False and result.to_dict()["full_image"] is False
    old = result.to_dict()
    del old["full_image"]  # a result.json of before the field
    assert Result.from_dict(old) == result


def _full_image_rollout(seed: int, n_correct: int, n: int) -> Rollout:
    """What a full-image classifier's rollout holds (``agents.baselines`` makes them)."""
    return Rollout(
        seed=seed, accuracy=n_correct / n, n_correct=n_correct,
        accuracy_interval=wilson_interval(n_correct, n), anytime_accuracy=[],
        anytime_mean=None, on_digit_share=None, on_digit_by_glimpse=[],
        first_glimpse_distance_px=None, wall_seconds=0.5, episodes_per_second=2 * n,
    )  # fmt: skip


def test_summarise_full_image_rollouts_has_no_glimpse_measures() -> None:
    rollouts = [_full_image_rollout(seed, 30, 40) for seed in (0, 1)]
    fields = {
        "protocol": PROTOCOL, "policy": "p", "env_id": MNIST, "mode": "deterministic",
        "split": "test", "n_images": 40, "n_glimpses": 0, "n_classes": 10, "env_kwargs": {},
        "radius_px": 0.0, "interval_method": "wilson-95-over-images", "n_parameters": 7,
    }  # fmt: skip
    result = summarise(rollouts, **fields, full_image=True)
    assert result.full_image and result.accuracy == 0.75 and result.error_rate == 0.25
    assert result.accuracy_interval == pytest.approx(wilson_interval(30, 40))
    assert result.anytime_accuracy == [] and result.anytime_mean is None
    assert result.on_digit_share is None and result.first_glimpse_distance_px is None
    assert result.mean_glimpses is None and result.glimpses_by_class is None
    assert result.wall_seconds == 1.0 and result.episodes_per_second == 80.0  # 2 x 40 in 1 s
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Result.from_dict(data) == result


def test_recorded_env_kwargs_leave_out_protocol_keys_and_the_data_folder() -> None:
    kwargs = {"n_glimpses": np.int64(3), "data_dir": "/d", "split": "train", "num_envs": 4}
    assert recorded_env_kwargs(kwargs) == {"n_glimpses": 3}
    assert type(recorded_env_kwargs(kwargs)["n_glimpses"]) is int
    assert recorded_env_kwargs(None) == {}


def test_sample_mode_gives_seeded_rollouts_and_their_mean() -> None:
    kwargs: dict[str, Any] = {"mode": "sample", "seeds": (0, 1, 2), "n_images": 60}
    first = evaluate(SeededRandom(), MNIST, **kwargs)
    second = evaluate(SeededRandom(), MNIST, **kwargs)
    assert _untimed(first) == _untimed(second)
    per_seed = [r.accuracy for r in first.rollouts]
    assert [r.seed for r in first.rollouts] == [0, 1, 2]
    assert len(set(per_seed)) > 1  # the seeds draw different classes
    assert first.accuracy == pytest.approx(np.mean(per_seed))
    assert first.accuracy_interval == pytest.approx(wilson_interval(first.accuracy * 60, 60))
    deterministic = evaluate(SeededRandom(), MNIST, n_images=60)
    labels = load_mnist("test").labels[:60]
    assert deterministic.accuracy == pytest.approx(np.mean(labels == 0))


class Broken(StepCounter):
    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.name = f"broken-{fault}"

    def initial_state(self, num_envs: int) -> Any:
        if self.fault == "initial_state":
            raise RuntimeError("no memory")
        return super().initial_state(num_envs)

    def act(self, obs: dict[str, np.ndarray], state: Any, deterministic: bool) -> Any:
        actions, state = super().act(obs, state, deterministic)
        if self.fault == "shape":
            return actions[:, :-1], state
        if self.fault == "nan":
            actions[0, 5] = np.nan
        if self.fault == "dtype":
            return actions.astype(np.int64), state
        if self.fault == "raises":
            raise KeyError("glimpse")
        if self.fault == "not-a-pair":
            return actions
        return actions, state


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("shape", r"returned actions of shape \(5, 11\); expected .* of shape \(5, 12\)"),
        ("nan", "returned actions with 1 NaN or infinite entries; expected a finite"),
        ("dtype", "returned actions of dtype int64 .*; expected a finite floating-point"),
        ("raises", r"raised KeyError in act: 'glimpse'; expected act\(obs, state, "),
        ("initial_state", r"raised RuntimeError in initial_state: no memory; expected initial_"),
        ("not-a-pair", r"act returned a ndarray; expected a pair \(actions of shape \(5, 12\)"),
    ],
)
def test_every_bad_protocol_policy_error_names_it_and_what_was_expected(
    fault: str, says: str
) -> None:
    with pytest.raises(BenchPolicyError, match=f"^policy broken-{fault}:? .*{says}"):
        evaluate(Broken(fault), MNIST, n_images=5)


@pytest.mark.parametrize(
    ("act", "says"),
    [
        (lambda obs: np.zeros(11, np.float32), r"an action for one observation of shape \(11,\)"),
        (lambda obs: [0, 0, *range(10)], "an action for one observation of dtype int64"),
        (lambda obs: None, "an action for one observation of dtype object"),
        (lambda obs: 1 / 0, r"raised ZeroDivisionError in act: .*act\(obs\) -> action \(2 \+ C,\)"),
    ],
)
def test_bad_bare_callable_errors(act: Any, says: str) -> None:
    with pytest.raises(BenchPolicyError, match=f"^policy my-policy .*{says}"):
        evaluate(act, MNIST, n_images=3, name="my-policy")


def test_bad_batched_callable_and_non_policies() -> None:
    with pytest.raises(BenchPolicyError, match=r"returned actions of shape \(3, 12, 1\)"):
        evaluate(batched(lambda obs: np.zeros((3, 12, 1), np.float32)), MNIST, n_images=3)
    with pytest.raises(BenchPolicyError, match="policy 42 is a int; expected a policy with"):
        evaluate(42, MNIST, n_images=3, name="42")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"mode": "greedy"}, "mode must be one of"),
        ({"seeds": ()}, "at least one seed"),
        ({"seeds": (-1,)}, "non-negative integers"),
        ({"n_images": 0}, r"n_images must be an integer in 1..10000"),
        ({"n_images": 10001}, r"n_images must be an integer in 1..10000"),
        ({"num_envs": 0}, "num_envs must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        evaluate(says_three, MNIST, **kwargs)
