"""The REINFORCE trainer (agents/reinforce.py): it learns a tiny memory task, resumes
exactly, and honours its options."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from adaptive_env import AdaptiveMemoryVectorEnv
from gymnasium.vector import AutoresetMode
from memory_env import BoxMemoryVectorEnv, MemoryVectorEnv, TorchMemoryVectorEnv

from agents.ram import RAMConfig
from agents.reinforce import ReinforceConfig, ReinforceTrainer
from agents.stopping import stop_now_payoffs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

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
    result = trainer.evaluate(MemoryVectorEnv(64, horizon=3), 512, seed=123)
    assert result["accuracy"] >= 0.95
    assert result["error_rate"] == pytest.approx(1 - result["accuracy"])
    assert result["n_episodes"] == 512 and result["horizon"] == 3
    assert result["n_correct"] == round(512 * result["accuracy"])


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
    result = trainer.evaluate(MemoryVectorEnv(64, horizon=3), 512, seed=123)
    assert result["accuracy"] >= 0.95


def test_same_seed_same_trajectory() -> None:
    runs = []
    for seed in (7, 7, 8):
        trainer = _trainer(MemoryVectorEnv(16, horizon=3), seed=seed)
        runs.append([trainer.train_iteration()["loss"] for _ in range(5)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("core", ["rnn", "gru", "lstm"])
def test_every_core_learns_in_both_precisions(core: str, precision: str) -> None:
    model = RAMConfig(
        glimpse_hidden=32, location_hidden=32, glimpse_out=64, core_hidden=64, core=core
    )
    trainer = _trainer(model=model, precision=precision)
    metrics = _train_until(trainer, 40)
    assert math.isfinite(metrics["loss"])
    assert trainer.evaluate(MemoryVectorEnv(64, horizon=3), 128, seed=0)["accuracy"] >= 0.9


def test_bfloat16_runs_the_products_in_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    """``precision="bfloat16"`` is real: the glimpse network's products see bfloat16."""
    dtypes: list[torch.dtype] = []
    trainer = _trainer(precision="bfloat16")
    layer = trainer.model.glimpse_network.fc_what
    layer.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    trainer.train_iteration()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


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
    assert trainer.evaluate(test_envs, 64)["accuracy"] >= 0.95


def test_evaluate_counts_episodes() -> None:
    trainer = _trainer(MemoryVectorEnv(4, horizon=3))
    result = trainer.evaluate(MemoryVectorEnv(4, horizon=3), 10, seed=0)
    assert result["n_episodes"] == 10 and result["mode"] == "deterministic"
    assert 0.0 <= result["accuracy"] <= 1.0
    stochastic = trainer.evaluate(MemoryVectorEnv(4, horizon=3), 10, False, seed=0)
    assert stochastic["mode"] == "sample"
    assert trainer.model.training  # evaluate restores the mode


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
    assert trainer.evaluate(MemoryVectorEnv(64, horizon=3), 256, seed=1)["accuracy"] > 0.95

    # The draws are a function of the seed, episode and step: same seed, same locations.
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
    # Another run seed, another fixed draw; not the network's locations.
    other = _random_trainer(MemoryVectorEnv(16, horizon=3), seed=1)
    envs = _RecordingMemoryEnv(8, horizon=3)
    other.evaluate(envs, 40, seed=5)
    assert not np.array_equal(np.concatenate(envs.sent), runs[0][1])
    assert np.abs(runs[0][1].mean()) < 0.2
    with pytest.raises(ValueError, match="location_policy"):
        _trainer(location_policy="fixed")


# ----------------------------------------------------------------------------------------
# Location heuristics (location_policy="center" | "raster")
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["center", "raster"])
def test_heuristic_location_policy_trains_only_the_classifier(name: str) -> None:
    envs = _RecordingMemoryEnv(32, horizon=3)
    trainer = _trainer(envs, location_policy=name, weight_decay=1e-2)
    location_net = {k: v.clone() for k, v in trainer.model.location_network.state_dict().items()}
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = _train_until(trainer, 60)

    # The env sees the heuristic's points (horizon 3: steps 0, 1, 2), never the network's.
    points = [[0.0, 0.0]] * 3 if name == "center" else [[-0.5, -0.5], [0.0, -0.5], [0.5, -0.5]]
    expected = np.repeat(np.asarray(points, np.float32), 32, axis=0)
    for t, sent in enumerate(envs.sent):
        assert np.array_equal(sent, expected[(t % 3) * 32 : (t % 3 + 1) * 32]), t
    # The location network is never updated (not even by weight decay); the rest trains.
    for key, value in trainer.model.location_network.state_dict().items():
        assert torch.equal(value, location_net[key]), key
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert {k for k in before if not k.startswith("location_network")} == set(changed)
    assert metrics["reinforce_loss"] == 0.0
    # The classifier still learns the memory task, evaluated with the same locations.
    evaluation = _RecordingMemoryEnv(64, horizon=3)
    assert trainer.evaluate(evaluation, 256, seed=1)["accuracy"] > 0.95
    assert np.array_equal(np.concatenate(evaluation.sent[:3])[::64], np.asarray(points))


# ----------------------------------------------------------------------------------------
# Learned stopping (a stop network on an adaptive env)
# ----------------------------------------------------------------------------------------

STOP_MODEL = RAMConfig(
    glimpse_hidden=32, location_hidden=32, glimpse_out=64, core_hidden=64, stop=True
)


def _stop_trainer(envs: object = None, **overrides: object) -> ReinforceTrainer:
    overrides = {"model": STOP_MODEL, **overrides}
    return _trainer(envs or AdaptiveMemoryVectorEnv(32, 4, glimpse_cost=0.1), **overrides)


def test_stop_head_learns_to_stop_early() -> None:
    """The class shows at glimpse 1 and every glimpse costs 0.1: the agent learns to stop
    after the first (mean glimpses from about 3 to 1), and stays right."""
    trainer = _stop_trainer()
    first = trainer.train_iteration()
    assert first["glimpses"] > 2.5 and first["hybrid"] == 1.0
    assert {"glimpses", "stop_loss", "glimpse_cost"} <= set(first)
    metrics = _train_until(trainer, 100)
    assert metrics["glimpses"] <= 1.2 and metrics["accuracy"] >= 0.95
    assert metrics["reward"] >= 0.85  # 1 - 0.1 per glimpse
    result = trainer.evaluate(AdaptiveMemoryVectorEnv(64, 4, glimpse_cost=0.1), 64, seed=1)
    assert result["accuracy"] >= 0.95
    assert result["mean_return"] == pytest.approx(result["accuracy"] - 0.1, abs=0.05)


def test_stop_head_waits_for_the_clue() -> None:
    """The class shows at glimpse 1, 2 or 3: the stop decisions follow the state (the
    clue), not a fixed count."""
    envs = AdaptiveMemoryVectorEnv(64, 4, reveal=3, glimpse_cost=0.05)
    trainer = _stop_trainer(envs, lr=1e-2)
    _train_until(trainer, 150)
    metrics = _train_until(trainer, 20)
    # Stopping at the clue takes 2 glimpses on average; a fixed count could not be right
    # with fewer than 3.
    assert metrics["accuracy"] >= 0.9 and metrics["glimpses"] < 2.6


def test_pure_reinforce_and_bfloat16_with_stopping() -> None:
    envs = AdaptiveMemoryVectorEnv(32, 4, glimpse_cost=0.1, with_labels=False)
    trainer = _stop_trainer(envs)
    with pytest.warns(UserWarning, match="pure REINFORCE"):
        metrics = trainer.train_iteration()
    assert metrics["hybrid"] == 0.0 and metrics["action_loss"] == 0.0
    bf16 = _stop_trainer(precision="bfloat16", location_reward="expected")
    for _ in range(3):
        metrics = bf16.train_iteration()
    assert all(math.isfinite(v) for v in metrics.values())


def test_stop_network_and_env_must_agree() -> None:
    with pytest.raises(ValueError, match=r"stop network \(RAMConfig\(stop=True\)\)"):
        _trainer(AdaptiveMemoryVectorEnv(4))
    envs = AdaptiveMemoryVectorEnv(4)
    envs.stop = "never"
    with pytest.raises(ValueError, match="stop='action'"):
        _stop_trainer(envs)
    with pytest.raises(ValueError, match="adaptive"):
        _trainer(glimpse_cost_warmup=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _stop_trainer(glimpse_cost_warmup=1.5)


def test_glimpse_cost_warmup() -> None:
    """The cost of the returns ramps from 0 to the env's over the first half of the run;
    the env's own rewards (``reward``) are untouched."""
    trainer = _stop_trainer(total_iterations=100, glimpse_cost_warmup=0.5)
    assert trainer.current_glimpse_cost() == 0.0
    trainer.iteration = 25
    assert trainer.current_glimpse_cost() == pytest.approx(0.05)
    trainer.iteration = 60
    assert trainer.current_glimpse_cost() == pytest.approx(0.1)
    trainer.iteration = 25
    metrics = trainer.train_iteration()
    assert metrics["glimpse_cost"] == pytest.approx(0.05)
    no_warmup = _stop_trainer()
    assert no_warmup.current_glimpse_cost() == 0.1
    # The returns of the loss: 1[right] - 0.05 * glimpses at every alive step.
    trainer.iteration = 25
    rollout = trainer._collect(True, 0.2)
    losses, baselines, _ = trainer._loss(rollout, True)
    returns = rollout.success.float() - 0.05 * rollout.glimpses_taken.float()
    expected = (baselines - returns.expand_as(rollout.alive)[rollout.alive]).square().mean()
    assert losses.baseline_loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_adaptive_state_dict_resume_is_exact() -> None:
    def make() -> ReinforceTrainer:
        return _stop_trainer(AdaptiveMemoryVectorEnv(16, 4, reveal=2, glimpse_cost=0.05))

    trainer = make()
    _train_until(trainer, 4)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    trajectories = []
    for _ in range(2):
        buffer.seek(0)
        resumed = make()
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        trajectories.append([resumed.train_iteration() for _ in range(3)])
    assert trajectories[0] == trajectories[1]


def test_stop_now_baseline() -> None:
    """``stop_baseline="stop_now"``: the stop terms' baseline is what stopping after glimpse
    t returns: 1[argmax right] (or p(label) with the expected reward) - cost * t."""
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [1.0, 0.0]]])  # (T=2, N=2)
    labels = torch.tensor([0, 0])
    torch.testing.assert_close(
        stop_now_payoffs(logits, labels, 0.1, expected=False),
        torch.tensor([[0.9, -0.1], [-0.2, 0.8]]),
    )
    p = torch.softmax(logits, -1)[..., 0]
    expected = p - torch.tensor([[0.1], [0.2]])
    torch.testing.assert_close(stop_now_payoffs(logits, labels, 0.1, expected=True), expected)
    trainer = _stop_trainer(stop_baseline="stop_now")
    metrics = _train_until(trainer, 3)
    assert math.isfinite(metrics["stop_loss"])
    with pytest.raises(ValueError, match="stop_baseline"):
        _stop_trainer(stop_baseline="oracle")


def test_expected_objective_learns_to_stop_without_sampled_stops() -> None:
    """``stop_objective="expected"``: every training episode takes all 4 glimpses, and the
    expected glimpses under the halting distribution fall from about 3 to about 1; the
    deterministic policy then stops after the first glimpse."""
    trainer = _stop_trainer(stop_objective="expected")
    first = trainer.train_iteration()
    assert first["horizon"] == 4.0 and first["glimpses"] > 2.5
    metrics = _train_until(trainer, 60)
    assert metrics["horizon"] == 4.0
    assert metrics["glimpses"] < 1.2 and metrics["accuracy"] >= 0.95
    envs = AdaptiveMemoryVectorEnv(64, 4, glimpse_cost=0.1)
    result = trainer.evaluate(envs, 64, seed=1)
    assert result["accuracy"] >= 0.95 and result["mean_return"] >= 0.85
    with pytest.raises(ValueError, match="stop_objective"):
        _stop_trainer(stop_objective="oracle")


def test_expected_objective_waits_for_the_clue() -> None:
    envs = AdaptiveMemoryVectorEnv(64, 4, reveal=3, glimpse_cost=0.05)
    trainer = _stop_trainer(envs, stop_objective="expected", lr=1e-2, seed=1)
    metrics = _train_until(trainer, 150)
    # Stopping at the clue: 2 glimpses on average, the most return there is (0.9).
    assert metrics["accuracy"] >= 0.95 and metrics["glimpses"] < 2.2


def test_stop_network_learning_rate_scale() -> None:
    trainer = _stop_trainer(stop_lr_scale=30.0, lr=1e-4, lr_schedule="constant")
    groups = trainer.optimizer.param_groups
    assert len(groups) == 2 and groups[1]["lr_scale"] == 30.0
    stop_ids = {id(p) for p in trainer.model.stop_network.parameters()}
    assert {id(p) for p in groups[1]["params"]} == stop_ids
    assert not stop_ids & {id(p) for p in groups[0]["params"]}
    trainer.train_iteration()
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == pytest.approx(3e-3)
    assert len(_stop_trainer().optimizer.param_groups) == 1  # scale 1: one group as before
    with pytest.raises(ValueError, match="stop_lr_scale"):
        _stop_trainer(stop_lr_scale=0.0)
