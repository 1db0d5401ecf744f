"""The location-and-class action distribution of the SB3 agents, and its policies."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO

from agents.sb3_distributions import (
    GlimpseMultiInputLstmPolicy,
    GlimpseMultiInputPolicy,
    LocationClassDistribution,
    policy_class,
)
from agents.sb3_policy import GlimpseFeatures
from glimpse_env.sb3 import GlimpseVecEnv

ENV_ID = "GlimpseMNIST-v0"


@pytest.fixture
def _data(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GLIMPSE_ENV_DATA", str(mnist_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dist(mean_actions: torch.Tensor, log_std: torch.Tensor) -> LocationClassDistribution:
    n_classes = mean_actions.shape[-1] - 2
    return LocationClassDistribution(n_classes).proba_distribution(mean_actions, log_std)


def _normal(x: float, mu: float, sigma: float) -> float:
    """log N(x; mu, sigma^2)."""
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def _log_softmax(logits: list[float], k: int) -> float:
    return logits[k] - math.log(sum(math.exp(v) for v in logits))


def _entropies(logits: list[float], sigmas: tuple[float, ...]) -> tuple[float, float]:
    """(Gaussian entropy, categorical entropy)."""
    p = [math.exp(_log_softmax(logits, k)) for k in range(len(logits))]
    gauss = sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in sigmas)
    return gauss, -sum(q * math.log(q) for q in p)


def test_log_prob_and_entropy_by_hand() -> None:
    mean_actions = torch.tensor([[0.1, -0.2, 1.0, 0.0, -1.0], [0.0, 0.5, 0.0, 2.0, 0.0]])
    log_std = torch.tensor([math.log(0.5), math.log(0.25)])
    actions = torch.tensor([[0.3, -0.2, -1.0, -1.0, 1.0], [-0.5, 1.0, -1.0, 1.0, -1.0]])
    dist = _dist(mean_actions, log_std)
    expected = [
        _normal(0.3, 0.1, 0.5) + _normal(-0.2, -0.2, 0.25) + _log_softmax([1.0, 0.0, -1.0], 2),
        _normal(-0.5, 0.0, 0.5) + _normal(1.0, 0.5, 0.25) + _log_softmax([0.0, 2.0, 0.0], 1),
    ]
    torch.testing.assert_close(dist.log_prob(actions), torch.tensor(expected))
    entropies = [sum(_entropies(x, (0.5, 0.25))) for x in ([1.0, 0.0, -1.0], [0.0, 2.0, 0.0])]
    torch.testing.assert_close(dist.entropy(), torch.tensor(entropies))


def test_only_the_read_parts_count_by_hand() -> None:
    """action_use rows: location only, class only, both, neither."""
    mean_actions = torch.tensor([[0.1, -0.2, 1.0, 0.0, -1.0]] * 4)
    log_std = torch.tensor([math.log(0.5), math.log(0.25)])
    use = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    actions = torch.tensor([[0.3, -0.2, -1.0, -1.0, 1.0]] * 4)
    dist = LocationClassDistribution(3).proba_distribution(mean_actions, log_std, use)
    location = _normal(0.3, 0.1, 0.5) + _normal(-0.2, -0.2, 0.25)
    chosen = _log_softmax([1.0, 0.0, -1.0], 2)
    expected = torch.tensor([location, chosen, location + chosen, 0.0])
    torch.testing.assert_close(dist.log_prob(actions), expected)
    gauss, cat = _entropies([1.0, 0.0, -1.0], (0.5, 0.25))
    torch.testing.assert_close(dist.entropy(), torch.tensor([gauss, cat, gauss + cat, 0.0]))
    with pytest.raises(ValueError, match="action_use"):
        LocationClassDistribution(3).proba_distribution(mean_actions, log_std, use[:, :1])


def test_unread_parts_are_emitted_deterministically() -> None:
    torch.manual_seed(0)
    mean_actions = torch.tensor([0.2, -0.4, 0.0, 0.0, 0.1]).expand(2000, 5)
    use = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(1000, 1)
    dist = LocationClassDistribution(3).proba_distribution(mean_actions, torch.zeros(2), use)
    actions = dist.sample()
    location_only, class_only = actions[0::2], actions[1::2]
    # Location read, class not: sampled locations, always the likeliest class (2).
    assert location_only[:, :2].std(0).min() > 0.5
    assert torch.equal(location_only[:, 2:].argmax(-1), torch.full((1000,), 2))
    # Class read, location not: the mean location, sampled classes.
    assert torch.equal(class_only[:, :2], torch.tensor([0.2, -0.4]).expand(1000, 2))
    assert set(class_only[:, 2:].argmax(-1).tolist()) == {0, 1, 2}


def test_samples_are_one_class_scores_drawn_from_the_softmax() -> None:
    torch.manual_seed(0)
    logits = torch.tensor([0.5, -1.0, 1.5, 0.0])
    mean_actions = torch.cat([torch.tensor([0.2, -0.4]), logits]).expand(20_000, 6)
    dist = _dist(mean_actions, torch.tensor([math.log(0.1)] * 2))
    actions = dist.sample()
    assert actions.shape == (20_000, 6)
    scores = actions[:, 2:]
    assert set(scores.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal((scores == 1.0).sum(-1), torch.ones(20_000, dtype=torch.long))
    frequencies = torch.bincount(scores.argmax(-1), minlength=4).float() / 20_000
    torch.testing.assert_close(frequencies, torch.softmax(logits, 0), atol=0.015, rtol=0)
    location = actions[:, :2]
    torch.testing.assert_close(location.mean(0), torch.tensor([0.2, -0.4]), atol=0.01, rtol=0)
    torch.testing.assert_close(location.std(0), torch.tensor([0.1, 0.1]), atol=0.01, rtol=0)
    assert torch.isfinite(dist.log_prob(actions)).all()


def test_mode_is_the_mean_location_and_the_likeliest_class() -> None:
    mean_actions = torch.tensor([[0.3, -0.7, 0.0, 3.0, 1.0]])
    mode = _dist(mean_actions, torch.zeros(2)).mode()
    torch.testing.assert_close(mode, torch.tensor([[0.3, -0.7, -1.0, 1.0, -1.0]]))


def test_log_prob_gradient_reaches_the_logits_and_the_location_only() -> None:
    mean_actions = torch.zeros(3, 5, requires_grad=True)
    log_std = torch.zeros(2, requires_grad=True)
    actions = torch.tensor([[0.5, 0.0, 1.0, -1.0, -1.0]] * 3)
    _dist(mean_actions, log_std).log_prob(actions).sum().backward()
    assert mean_actions.grad is not None and log_std.grad is not None
    # d/dlogit_k log softmax_c = [k == c] - 1/3 at uniform logits, for each of 3 rows.
    torch.testing.assert_close(mean_actions.grad[0, 2:], torch.tensor([2 / 3, -1 / 3, -1 / 3]))
    torch.testing.assert_close(mean_actions.grad[0, :2], torch.tensor([0.5, 0.0]))


def test_policy_class_and_bad_action_spaces() -> None:
    assert policy_class("ppo", "categorical") is GlimpseMultiInputPolicy
    assert policy_class("recurrent_ppo", "categorical") is GlimpseMultiInputLstmPolicy
    assert policy_class("ppo", "gaussian") == "MultiInputPolicy"
    assert policy_class("recurrent_ppo", "gaussian") == "MultiInputLstmPolicy"
    with pytest.raises(ValueError, match="class_head"):
        policy_class("ppo", "softmax")
    obs = spaces.Dict({"x": spaces.Box(0, 1, (3,))})
    for bad in (spaces.Box(-1, 1, (2,)), spaces.Discrete(3)):
        with pytest.raises(ValueError, match="action space"):
            GlimpseMultiInputPolicy(obs, bad, lambda _: 1e-3)
    with pytest.raises(ValueError, match="n_classes"):
        LocationClassDistribution(0)


@pytest.mark.usefixtures("_data")
@pytest.mark.parametrize("recurrent", [False, True])
def test_ppo_trains_with_the_categorical_class_head(recurrent: bool) -> None:
    envs = GlimpseVecEnv(ENV_ID, num_envs=8, seed=0)
    algo, policy = (RecurrentPPO, GlimpseMultiInputLstmPolicy) if recurrent else (PPO, None)
    model = algo(
        policy or GlimpseMultiInputPolicy,
        envs,
        n_steps=14,
        batch_size=56,
        n_epochs=2,
        seed=0,
        device="cpu",
        policy_kwargs={"features_extractor_class": GlimpseFeatures},
    )
    assert isinstance(model.policy.action_dist, LocationClassDistribution)
    assert tuple(model.policy.log_std.shape) == (2,)
    logits_before = model.policy.action_net.weight[2:].detach().clone()
    model.learn(total_timesteps=224)
    assert not torch.equal(model.policy.action_net.weight[2:], logits_before)
    obs = envs.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (8, 12)
    np.testing.assert_array_equal(np.sort(np.unique(actions[:, 2:])), [-1.0, 1.0])
    np.testing.assert_array_equal((actions[:, 2:] == 1.0).sum(1), np.ones(8))
    envs.close()


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_stop_head_log_prob_entropy_and_mode_by_hand() -> None:
    """With the stop action: one more output ``s``, stop ~ Bernoulli(sigmoid(s)), counted
    where the location is read."""
    mean_actions = torch.tensor([[0.1, -0.2, 1.0, 0.0, -1.0, 0.8]] * 3)
    log_std = torch.tensor([math.log(0.5), math.log(0.25)])
    use = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    stop, go = [0.3, -0.2, -1.0, -1.0, 1.0, 1.0], [0.3, -0.2, -1.0, -1.0, 1.0, -1.0]
    actions = torch.tensor([stop, go, go])
    dist = LocationClassDistribution(3, stop=True).proba_distribution(mean_actions, log_std, use)
    location = _normal(0.3, 0.1, 0.5) + _normal(-0.2, -0.2, 0.25)
    chosen = _log_softmax([1.0, 0.0, -1.0], 2)
    p = 1.0 / (1.0 + math.exp(-0.8))
    expected = [location + _log_sigmoid(0.8) + chosen, chosen, location + _log_sigmoid(-0.8)]
    torch.testing.assert_close(dist.log_prob(actions), torch.tensor(expected))
    gauss, cat = _entropies([1.0, 0.0, -1.0], (0.5, 0.25))
    bernoulli = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    torch.testing.assert_close(
        dist.entropy(), torch.tensor([gauss + bernoulli + cat, cat, gauss + bernoulli])
    )
    mode = dist.mode()
    assert mode.shape == (3, 6) and (mode[:, -1] == 1.0).all()  # s = 0.8 > 0: stop
    samples = (
        LocationClassDistribution(3, stop=True)
        .proba_distribution(mean_actions[:1].expand(4000, 6), log_std)
        .sample()
    )
    assert set(samples[:, -1].tolist()) == {-1.0, 1.0}
    assert abs(float((samples[:, -1] > 0).float().mean()) - p) < 0.03


@pytest.mark.usefixtures("_data")
def test_ppo_with_the_stop_head_saves_and_loads(tmp_path: Path) -> None:
    envs = GlimpseVecEnv("GlimpseMNISTAdaptive-v0", num_envs=4, seed=0, glimpse_cost=0.01)
    model = PPO(
        GlimpseMultiInputPolicy,
        envs,
        n_steps=8,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"features_extractor_class": GlimpseFeatures, "stop_action": True},
    )
    assert model.policy.action_dist.stop and model.policy.action_net.out_features == 13
    model.learn(total_timesteps=64)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy.stop_action and loaded.policy.action_dist.stop
    obs = envs.reset()
    a, _ = model.predict(obs, deterministic=True)
    b, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a[:, -1])) <= {-1.0, 1.0}
