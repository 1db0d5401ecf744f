"""Tests of the REINFORCE losses and trainer (agents/reinforce.py) on a tiny memory task."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from memory_env import BoxMemoryVectorEnv, MemoryVectorEnv, TorchMemoryVectorEnv

from agents.ram import RAMConfig, RecurrentAttentionModel
from agents.reinforce import (
    RandomLocationPolicy,
    ReinforceConfig,
    ReinforceTrainer,
    collect_rollout,
    evaluate,
    expected_class_reward,
    hybrid_loss,
    random_locations,
    reinforce_loss,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread is as fast, and immune to a busy second core.

    (With 2 OpenMP threads and another process saturating one of the 2 cores, every op
    waits for the descheduled thread: the trainer tests went from ~10 s to minutes.)
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------
# A hand-made batch: T = 3 steps, N = 2 episodes, C = 2 classes.
# ----------------------------------------------------------------------------------------
LOG_PROBS = torch.tensor([[-1.0, -2.0], [-0.5, -1.5], [-3.0, -4.0]])  # (T, N)
BASELINES = torch.tensor([[0.2, 0.5], [0.4, 0.1], [0.6, 0.3]])  # (T, N)
LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # (N, C)
REWARDS = torch.tensor([1.0, 0.0])  # (N,) episode 0 right, episode 1 wrong
LABELS = torch.tensor([0, 0])
CLASS_LOG_PROBS = torch.tensor([-0.1, -2.0])  # (N,) log pi of the sampled classes

# Cross-entropy: -log softmax([2, 0])[0] = log(1 + e^-2); -log softmax([0, 1])[0] = log(1 + e).
CE = (math.log(1 + math.exp(-2)) + math.log(1 + math.e)) / 2  # 0.720095
# REINFORCE on the locations of steps 1 and 2 (step 3's location is never observed):
#   episode 0: -[(-1.0)(1 - 0.2) + (-0.5)(1 - 0.4)] = 0.8 + 0.3 = 1.1
#   episode 1: -[(-2.0)(0 - 0.5) + (-1.5)(0 - 0.1)] = -(1.0 + 0.15) = -1.15
LOCATION_TERMS = (1.1, -1.15)
# Baseline MSE over all 6 entries:
#   (0.8^2 + 0.6^2 + 0.4^2 + 0.5^2 + 0.1^2 + 0.3^2) / 6 = (0.64 + 0.36 + 0.16 + 0.25 + 0.01 + 0.09) / 6
MSE = 1.51 / 6  # 0.251667


def test_hybrid_loss_by_hand() -> None:
    out = hybrid_loss(LOG_PROBS, BASELINES, LOGITS, REWARDS, LABELS)
    reinforce = sum(LOCATION_TERMS) / 2  # -0.025
    assert out.action_loss.item() == pytest.approx(CE, abs=1e-6)
    assert out.reinforce_loss.item() == pytest.approx(reinforce, abs=1e-6)
    assert out.baseline_loss.item() == pytest.approx(MSE, abs=1e-6)
    assert out.total.item() == pytest.approx(0.946762, abs=1e-5)
    assert out.total.item() == pytest.approx(CE + reinforce + MSE, abs=1e-6)


def test_expected_class_reward_by_hand() -> None:
    # softmax([2, 0])[0] = e^2 / (e^2 + 1); softmax([0, 1])[0] = 1 / (1 + e).
    p = expected_class_reward(LOGITS.requires_grad_(), LABELS)
    assert p.tolist() == pytest.approx([0.880797, 0.268941], abs=1e-6)
    assert not p.requires_grad and p.dtype == torch.float32
    assert expected_class_reward(LOGITS, torch.tensor([1, 1])).tolist() == pytest.approx(
        [0.119203, 0.731059], abs=1e-6
    )
    # As the location return of the hybrid loss (R_0 = 0.880797, R_1 = 0.268941):
    #   episode 0: -[(-1.0)(0.880797 - 0.2) + (-0.5)(0.880797 - 0.4)] = 0.921196
    #   episode 1: -[(-2.0)(0.268941 - 0.5) + (-1.5)(0.268941 - 0.1)] = -0.208705
    out = hybrid_loss(LOG_PROBS, BASELINES, LOGITS.detach(), p, LABELS)
    assert out.reinforce_loss.item() == pytest.approx((0.921196 - 0.208705) / 2, abs=1e-5)
    # (0.680797^2 + 0.480797^2 + 0.280797^2 + 0.231059^2 + 0.168941^2 + 0.031059^2) / 6
    assert out.baseline_loss.item() == pytest.approx(0.142732, abs=1e-5)
    assert out.action_loss.item() == pytest.approx(CE, abs=1e-6)


def test_reinforce_loss_by_hand() -> None:
    out = reinforce_loss(LOG_PROBS, BASELINES, REWARDS, CLASS_LOG_PROBS)
    # Sampled class, judged at step 3 with baseline b_3:
    #   episode 0: -(-0.1)(1 - 0.6) = 0.04; episode 1: -(-2.0)(0 - 0.3) = -0.6
    reinforce = ((1.1 + 0.04) + (-1.15 - 0.6)) / 2  # -0.305
    assert out.action_loss.item() == 0.0
    assert out.reinforce_loss.item() == pytest.approx(reinforce, abs=1e-6)
    assert out.baseline_loss.item() == pytest.approx(MSE, abs=1e-6)
    assert out.total.item() == pytest.approx(reinforce + MSE, abs=1e-6)


def test_loss_weights_and_last_location_excluded() -> None:
    changed = LOG_PROBS.clone()
    changed[-1] = 123.0  # the final location is never looked at: no effect
    a = hybrid_loss(LOG_PROBS, BASELINES, LOGITS, REWARDS, LABELS)
    b = hybrid_loss(changed, BASELINES, LOGITS, REWARDS, LABELS)
    assert a.total.item() == b.total.item()
    w = hybrid_loss(
        LOG_PROBS, BASELINES, LOGITS, REWARDS, LABELS, reinforce_weight=2.0, baseline_weight=0.5
    )
    expected = CE + 2.0 * sum(LOCATION_TERMS) / 2 + 0.5 * MSE
    assert w.total.item() == pytest.approx(expected, abs=1e-6)


def test_per_step_rewards_use_reward_to_go() -> None:
    per_step = torch.zeros(3, 2)
    per_step[-1] = REWARDS  # reward only at the end: same as the (N,) returns
    a = hybrid_loss(LOG_PROBS, BASELINES, LOGITS, per_step, LABELS)
    b = hybrid_loss(LOG_PROBS, BASELINES, LOGITS, REWARDS, LABELS)
    torch.testing.assert_close(a.total, b.total)
    with pytest.raises(ValueError):
        hybrid_loss(LOG_PROBS, BASELINES, LOGITS, torch.zeros(4, 2), LABELS)


# ----------------------------------------------------------------------------------------
# Gradient routing on a real 2-episode rollout
# ----------------------------------------------------------------------------------------


def _grad_norms(model: RecurrentAttentionModel, loss: torch.Tensor) -> dict[str, float]:
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    norms = {}
    for name in ("glimpse", "core", "location", "action", "baseline"):
        module = getattr(model, f"{name}_network")
        norms[name] = sum(
            float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None
        )
    return norms


def _two_episode_rollout(
    use_tape: bool, sample_class: bool, detach: bool = True
) -> tuple[RecurrentAttentionModel, object]:
    torch.manual_seed(0)
    envs = MemoryVectorEnv(2, horizon=3, glimpse_shape=(1, 2, 2))
    model = RecurrentAttentionModel.from_spaces(
        envs.single_observation_space,
        envs.single_action_space,
        RAMConfig(detach_location_input=detach),
    )
    obs, _ = envs.reset(seed=1)
    rollout, _ = collect_rollout(
        model,
        envs,
        obs,
        sample_class=sample_class,
        std=0.2,
        generator=torch.Generator().manual_seed(0),
        use_tape=use_tape,
    )
    assert rollout.location_log_probs.shape == (3, 2) and rollout.logits.shape == (2, 2)
    assert rollout.labels is not None and rollout.success is not None
    return model, rollout


@pytest.mark.parametrize("use_tape", [True, False])
def test_hybrid_gradient_routing(use_tape: bool) -> None:
    """Paper: CE trains action/core/glimpse; REINFORCE only the location net; MSE the baseline.

    With the location network reading a detached h_t, the REINFORCE term of the hybrid
    loss (location log-probs only) reaches nothing but the location network.
    """
    model, r = _two_episode_rollout(use_tape, sample_class=False)
    loss = hybrid_loss(r.location_log_probs, r.baselines, r.logits, r.returns, r.labels)
    ce = _grad_norms(model, loss.action_loss)
    assert ce["action"] > 0 and ce["core"] > 0 and ce["glimpse"] > 0
    assert ce["location"] == 0 and ce["baseline"] == 0
    rl = _grad_norms(model, loss.reinforce_loss)
    assert rl["location"] > 0
    assert rl["action"] == 0 and rl["core"] == 0 and rl["glimpse"] == 0 and rl["baseline"] == 0
    mse = _grad_norms(model, loss.baseline_loss)
    assert mse["baseline"] > 0
    assert mse["location"] == 0 and mse["action"] == 0 and mse["core"] == 0
    assert mse["glimpse"] == 0
    total = _grad_norms(model, loss.total)
    assert all(v > 0 for v in total.values())


@pytest.mark.parametrize("use_tape", [True, False])
def test_pure_reinforce_gradient_routing(use_tape: bool) -> None:
    """Pure REINFORCE: the sampled class's log-prob trains action/core/glimpse."""
    model, r = _two_episode_rollout(use_tape, sample_class=True)
    loss = reinforce_loss(r.location_log_probs, r.baselines, r.returns, r.class_log_probs)
    rl = _grad_norms(model, loss.reinforce_loss)
    for name in ("location", "action", "core", "glimpse"):
        assert rl[name] > 0, name
    assert rl["baseline"] == 0
    mse = _grad_norms(model, loss.baseline_loss)
    assert mse["baseline"] > 0 and sum(v for k, v in mse.items() if k != "baseline") == 0


@pytest.mark.parametrize("use_tape", [True, False])
def test_undetached_location_input_routes_reinforce_into_core(use_tape: bool) -> None:
    model, r = _two_episode_rollout(use_tape, sample_class=False, detach=False)
    loss = hybrid_loss(r.location_log_probs, r.baselines, r.logits, r.returns, r.labels)
    rl = _grad_norms(model, loss.reinforce_loss)
    assert rl["location"] > 0 and rl["core"] > 0 and rl["glimpse"] > 0
    assert rl["action"] == 0 and rl["baseline"] == 0


# ----------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------


def _trainer(envs: object = None, **overrides: object) -> ReinforceTrainer:
    config = ReinforceConfig(
        model=RAMConfig(glimpse_hidden=32, location_hidden=32, glimpse_out=64, core_hidden=64),
        total_iterations=300,
        lr=3e-3,
        lr_schedule="constant",
        std_start=0.2,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return ReinforceTrainer(envs or MemoryVectorEnv(32, horizon=3), config)


@pytest.mark.parametrize("location_mlp_hidden", [0, 16])
def test_location_network_parameters_change(location_mlp_hidden: int) -> None:
    model = RAMConfig(
        glimpse_hidden=32,
        location_hidden=32,
        glimpse_out=64,
        core_hidden=64,
        location_mlp_hidden=location_mlp_hidden,
    )
    trainer = _trainer(model=model)
    # a hidden layer in the location network trains through autograd, not the tape
    assert trainer.model.supports_tape == (location_mlp_hidden == 0)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(3):
        metrics = trainer.train_iteration()
    assert metrics["hybrid"] == 1.0 and metrics["iteration"] == 3.0
    for key, value in trainer.model.state_dict().items():
        assert not torch.equal(value, before[key]), f"{key} did not change"


def _train_until(trainer: ReinforceTrainer, iterations: int) -> dict[str, float]:
    for _ in range(iterations):
        metrics = trainer.train_iteration()
    return metrics


def test_learns_memory_task_hybrid() -> None:
    trainer = _trainer()
    metrics = _train_until(trainer, 60)  # reaches 99% within 10-20 iterations
    assert metrics["hybrid"] == 1.0
    result = evaluate(trainer.model, MemoryVectorEnv(64, horizon=3), 512, seed=123)
    assert result["accuracy"] >= 0.95
    assert result["error_rate"] == pytest.approx(1 - result["accuracy"])
    assert result["n_episodes"] == 512 and result["horizon"] == 3


def test_learns_memory_task_pure_reinforce() -> None:
    trainer = _trainer(hybrid=False)
    metrics = _train_until(trainer, 120)  # reaches 99% within 10-30 iterations
    assert metrics["hybrid"] == 0.0 and metrics["action_loss"] == 0.0
    result = trainer.evaluate(MemoryVectorEnv(64, horizon=3), 512, seed=123)
    assert result["accuracy"] >= 0.95


def test_falls_back_to_pure_reinforce_without_labels() -> None:
    trainer = _trainer(MemoryVectorEnv(32, horizon=3, with_labels=False))
    with pytest.warns(UserWarning, match="label"):
        metrics = trainer.train_iteration()
    assert metrics["hybrid"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trainer.train_iteration()["hybrid"] == 0.0


def test_expected_location_reward_is_the_true_class_probability(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agents.reinforce as reinforce

    seen: dict[str, torch.Tensor] = {}
    real = reinforce.hybrid_loss

    def spy(log_probs, baselines, logits, rewards, labels, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(logits=logits.detach(), rewards=rewards, labels=labels)
        return real(log_probs, baselines, logits, rewards, labels, **kwargs)

    monkeypatch.setattr(reinforce, "hybrid_loss", spy)
    _trainer(location_reward="env").train_iteration()
    assert set(seen["rewards"].unique().tolist()) <= {0.0, 1.0}  # the env's 0/1 reward
    trainer = _trainer(location_reward="expected")
    metrics = trainer.train_iteration()
    probs = torch.softmax(seen["logits"], -1)[torch.arange(32), seen["labels"].long()]
    torch.testing.assert_close(seen["rewards"], probs)
    assert metrics["hybrid"] == 1.0
    assert set(seen["rewards"].unique().tolist()) - {0.0, 1.0}  # not a 0/1 reward


def test_location_reward_options_are_checked() -> None:
    with pytest.raises(ValueError, match="location_reward must be one of"):
        _trainer(location_reward="dense")
    with pytest.raises(ValueError, match="hybrid"):
        _trainer(location_reward="expected", hybrid=False)


def test_learns_memory_task_with_expected_location_reward() -> None:
    trainer = _trainer(location_reward="expected")
    _train_until(trainer, 60)
    result = evaluate(trainer.model, MemoryVectorEnv(64, horizon=3), 512, seed=123)
    assert result["accuracy"] >= 0.95


def test_same_seed_same_trajectory() -> None:
    runs = []
    for seed in (7, 7, 8):
        trainer = _trainer(MemoryVectorEnv(16, horizon=3), seed=seed)
        runs.append([trainer.train_iteration()["loss"] for _ in range(5)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_tape_and_autograd_training_agree() -> None:
    losses = []
    for fast in (True, False):
        trainer = _trainer(MemoryVectorEnv(16, horizon=3), fast_backward=fast)
        losses.append([trainer.train_iteration()["loss"] for _ in range(5)])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-5)


def test_state_dict_resume_is_exact() -> None:
    trainer = _trainer(MemoryVectorEnv(16, horizon=3), lr_schedule="linear", std_end=0.05)
    _train_until(trainer, 4)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    trajectories = []
    for seed in (0, 99):  # the resumed run does not depend on the new trainer's seed
        buffer.seek(0)
        resumed = _trainer(MemoryVectorEnv(16, horizon=3), lr_schedule="linear", std_end=0.05)
        resumed.config.seed = seed
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        assert resumed.iteration == 4
        assert resumed.current_lr() == trainer.current_lr()
        assert resumed.current_std() == trainer.current_std()
        for key, value in trainer.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[key], value)
        trajectories.append([resumed.train_iteration() for _ in range(3)])
    assert trajectories[0] == trajectories[1]


def test_schedules() -> None:
    trainer = _trainer(total_iterations=100, lr=1.0, lr_schedule="linear", std_end=0.1)
    trainer.iteration = 50
    assert trainer.current_lr() == pytest.approx(0.5)
    assert trainer.current_std() == pytest.approx(0.15)
    trainer.iteration = 100
    assert trainer.current_lr() == 0.0 and trainer.current_std() == pytest.approx(0.1)
    trainer.iteration = 200  # past the end: stays at 0
    assert trainer.current_lr() == 0.0
    cosine = _trainer(total_iterations=100, lr=1.0, lr_schedule="cosine")
    cosine.iteration = 25
    assert cosine.current_lr() == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    metrics = cosine.train_iteration()
    assert metrics["lr"] == pytest.approx(cosine.optimizer.param_groups[0]["lr"])
    assert metrics["std"] == 0.2


def test_sgd_momentum_option() -> None:
    trainer = _trainer(optimizer="sgd", lr=0.1, momentum=0.9)
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.9
    trainer.train_iteration()
    with pytest.raises(ValueError):
        _trainer(optimizer="rmsprop")


def test_fixed_horizon_is_enforced() -> None:
    trainer = _trainer(MemoryVectorEnv(8, horizon=3, ragged=True))
    with pytest.raises(RuntimeError, match="fixed horizon"):
        trainer.train_iteration()
    envs = MemoryVectorEnv(8, horizon=3)
    trainer = _trainer(envs)
    trainer.train_iteration()
    envs._ends[:] = 4  # the horizon changes after the first batch
    with pytest.raises(RuntimeError, match="fixed horizon"):
        trainer.train_iteration()


def test_next_step_autoreset_env() -> None:
    envs = MemoryVectorEnv(32, horizon=3, autoreset_mode=AutoresetMode.NEXT_STEP)
    trainer = _trainer(envs)
    _train_until(trainer, 60)
    result = trainer.evaluate(n_episodes=96)  # on the training envs
    assert result["accuracy"] >= 0.95
    trainer.train_iteration()  # training goes on after evaluating on its own envs


def test_torch_backend_env() -> None:
    trainer = _trainer(TorchMemoryVectorEnv(16, horizon=3))
    metrics = _train_until(trainer, 60)
    assert metrics["horizon"] == 3.0
    assert trainer.evaluate(n_episodes=64)["accuracy"] >= 0.95


def test_box_observation_without_location() -> None:
    envs = BoxMemoryVectorEnv(32, horizon=3, glimpse_shape=(2, 2))
    trainer = _trainer(envs)
    assert trainer.model.glimpse_dim == 4
    _train_until(trainer, 60)
    test_envs = BoxMemoryVectorEnv(32, horizon=3, glimpse_shape=(2, 2))
    assert evaluate(trainer.model, test_envs, 64)["accuracy"] >= 0.95


def test_evaluate_counts_episodes() -> None:
    trainer = _trainer(MemoryVectorEnv(4, horizon=3))
    result = evaluate(trainer.model, MemoryVectorEnv(4, horizon=3), 10, seed=0)
    assert result["n_episodes"] == 10
    assert 0.0 <= result["accuracy"] <= 1.0 and result["deterministic"] == 1.0
    stochastic = evaluate(trainer.model, MemoryVectorEnv(4, horizon=3), 10, False, seed=0)
    assert stochastic["deterministic"] == 0.0
    assert trainer.model.training  # evaluate restores the mode


def test_gru_core_trains_with_autograd() -> None:
    config = ReinforceConfig(model=RAMConfig(core="gru", core_hidden=32), lr=3e-3)
    trainer = ReinforceTrainer(MemoryVectorEnv(16, horizon=3), config)
    assert not trainer.model.supports_tape
    metrics = trainer.train_iteration()
    assert math.isfinite(metrics["loss"])


# ----------------------------------------------------------------------------------------
# Random-glimpse ablation (location_policy="random")
# ----------------------------------------------------------------------------------------


class _RecordingMemoryEnv(MemoryVectorEnv):
    """:class:`MemoryVectorEnv` that records the locations of every action it is sent."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent: list[np.ndarray] = []

    def step(self, actions: np.ndarray):  # type: ignore[no-untyped-def]
        self.sent.append(np.array(actions)[:, :2])
        return super().step(actions)


def _random_trainer(envs: MemoryVectorEnv, seed: int = 0) -> ReinforceTrainer:
    trainer = _trainer(envs, location_policy="random", weight_decay=1e-2, seed=seed)
    with torch.no_grad():  # the location network would say ~(0.46, 0.46) +- std
        trainer.model.location_network.fc.weight.zero_()
        trainer.model.location_network.fc.bias.fill_(0.5)
    return trainer


def test_random_location_policy_trains_on_uniform_locations() -> None:
    envs = _RecordingMemoryEnv(32, horizon=3)
    trainer = _random_trainer(envs)
    location_net = {k: v.clone() for k, v in trainer.model.location_network.state_dict().items()}
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = _train_until(trainer, 60)

    # Locations: uniform in [-1, 1]^2, not the location network's ~0.46.
    sent = np.concatenate(envs.sent)  # (60 * 3 * 32, 2)
    assert sent.shape == (60 * 3 * 32, 2)
    assert sent.min() >= -1.0 and sent.max() <= 1.0
    assert np.abs(sent.mean(0)).max() < 0.05
    assert np.abs(sent.var(0) - 1 / 3).max() < 0.03
    for coord in sent.T:
        counts = np.histogram(coord, bins=10, range=(-1, 1))[0] / len(coord)
        assert counts.min() > 0.07 and counts.max() < 0.13
    near_network = np.all(np.abs(sent - 0.46) < 0.2, axis=1)  # ~47% if it were used
    assert near_network.mean() < 0.08  # uniform: 0.04

    # The location network is never updated (not even by weight decay); the rest trains.
    for key, value in trainer.model.location_network.state_dict().items():
        assert torch.equal(value, location_net[key]), key
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert {k for k in before if not k.startswith("location_network")} == set(changed)
    assert metrics["reinforce_loss"] == 0.0 and metrics["hybrid"] == 1.0
    # The class is in the first glimpse: the classifier learns it whatever the locations.
    assert evaluate(trainer.model, MemoryVectorEnv(64, horizon=3), 256, seed=1)["accuracy"] > 0.95

    # The draws come from the trainer's seeded generator: same seed, same locations.
    again = _RecordingMemoryEnv(32, horizon=3)
    _train_until(_random_trainer(again), 2)
    assert np.array_equal(np.concatenate(again.sent), sent[: 2 * 3 * 32])
    other = _RecordingMemoryEnv(32, horizon=3)
    _train_until(_random_trainer(other, seed=1), 2)
    assert not np.array_equal(np.concatenate(other.sent), sent[: 2 * 3 * 32])


def test_random_location_policy_deterministic_evaluation_is_reproducible() -> None:
    trainer = _random_trainer(MemoryVectorEnv(16, horizon=3))
    _train_until(trainer, 3)
    generator_state = trainer.generator.get_state()
    runs = []
    for _ in range(2):
        envs = _RecordingMemoryEnv(8, horizon=3)
        result = trainer.evaluate(envs, 40, seed=5)
        runs.append((result, np.concatenate(envs.sent)))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])
    # The trainer's own generator is not consumed by a deterministic evaluation.
    assert torch.equal(trainer.generator.get_state(), generator_state)
    # Same fixed draw through evaluate(); a fresh draw with another seed; not the network's.
    envs = _RecordingMemoryEnv(8, horizon=3)
    evaluate(trainer.model, envs, 40, seed=5, location_policy="random")
    assert np.array_equal(np.concatenate(envs.sent), runs[0][1])
    envs = _RecordingMemoryEnv(8, horizon=3)
    evaluate(trainer.model, envs, 40, seed=6, location_policy="random")
    assert not np.array_equal(np.concatenate(envs.sent), runs[0][1])
    assert np.abs(runs[0][1].mean()) < 0.2
    with pytest.raises(ValueError, match="location_policy"):
        _trainer(location_policy="fixed")


def test_random_locations_are_a_pure_function_of_episode_and_step() -> None:
    a = random_locations(3, np.arange(10), step=2)
    assert a.shape == (10, 2) and a.dtype == np.float32
    assert np.array_equal(
        a, np.concatenate([random_locations(3, range(4), 2), random_locations(3, range(4, 10), 2)])
    )
    for other in (
        random_locations(4, np.arange(10), 2),
        random_locations(3, np.arange(10), 3),
        random_locations(3, np.arange(10), 2, stream=1),
    ):
        assert not np.array_equal(a, other)
    many = random_locations(0, np.arange(20_000), 0)
    assert many.min() >= -1.0 and many.max() < 1.0
    assert np.abs(many.mean()) < 0.02 and abs(many.var() - 1 / 3) < 0.01


class _ConstantPolicy:
    """A policy that always looks at (0.5, 0.5) and names class 0."""

    env_id = "none"
    env_kwargs: dict[str, object] = {}  # noqa: RUF012

    def __init__(self, torch_actions: bool = False) -> None:
        self.torch_actions = torch_actions

    def initial_state(self, num_envs: int) -> int:
        return num_envs

    def act(self, obs: object, state: int, deterministic: bool) -> tuple[object, int]:
        action = np.full((state, 4), -1.0, np.float32)
        action[:, :2] = 0.5
        action[:, 2] = 1.0
        return (torch.from_numpy(action) if self.torch_actions else action), state


@pytest.mark.parametrize("torch_actions", [False, True])
def test_random_location_policy_wrapper(torch_actions: bool) -> None:
    whole = RandomLocationPolicy(_ConstantPolicy(torch_actions), seed=7)
    split = RandomLocationPolicy(_ConstantPolicy(torch_actions), seed=7)
    state = whole.initial_state(10)
    parts = [split.initial_state(4), split.initial_state(6)]
    for step in range(3):
        action, state = whole.act(None, state, True)
        action = np.asarray(action)
        assert np.array_equal(action[:, 2:], np.tile([1.0, -1.0], (10, 1)))  # classes kept
        assert np.array_equal(action[:, :2], random_locations(7, np.arange(10), step))
        halves = []
        for i, part in enumerate(parts):
            out, parts[i] = split.act(None, part, True)
            halves.append(np.asarray(out))
        assert np.array_equal(np.concatenate(halves), action)  # batching does not matter
    sampled, _ = whole.act(None, whole.initial_state(2), False)
    assert np.array_equal(np.asarray(sampled)[:, :2], random_locations(7, [10, 11], 0, stream=1))
