"""Rollouts (agents/rollout.py) and the gradient routing of their replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adaptive_env import AdaptiveMemoryVectorEnv
from gymnasium.vector import AutoresetMode
from memory_env import MemoryVectorEnv

from agents.losses import hybrid_loss, reinforce_loss
from agents.ram import RAMConfig, RecurrentAttentionModel, ReplayOutput
from agents.rollout import Rollout, collect_adaptive_rollout, collect_rollout

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    sample_class: bool, detach: bool = True
) -> tuple[RecurrentAttentionModel, Rollout, ReplayOutput]:
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
        sample_classes=sample_class,
        std=0.2,
        generator=torch.Generator().manual_seed(0),
    )
    assert rollout.glimpses.shape == (3, 2, 4) and rollout.samples.shape == (3, 2, 2)
    assert rollout.labels is not None and rollout.success is not None
    out = model.replay(rollout.glimpses, rollout.locations, rollout.samples, rollout.std)
    assert out.location_log_probs.shape == (3, 2) and out.logits.shape == (2, 2)
    return model, rollout, out


def test_hybrid_gradient_routing() -> None:
    """Paper: CE trains action/core/glimpse; REINFORCE only the location net; MSE the baseline.

    With the location network reading a detached h_t, the REINFORCE term of the hybrid
    loss (location log-probs only) reaches nothing but the location network.
    """
    model, r, o = _two_episode_rollout(sample_class=False)
    loss = hybrid_loss(o.location_log_probs, o.baselines, o.logits, r.returns, r.labels)
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


def test_pure_reinforce_gradient_routing() -> None:
    """Pure REINFORCE: the sampled class's log-prob trains action/core/glimpse."""
    model, r, o = _two_episode_rollout(sample_class=True)
    class_log_probs = torch.log_softmax(o.logits, -1).gather(1, r.classes[:, None])[:, 0]
    loss = reinforce_loss(o.location_log_probs, o.baselines, r.returns, class_log_probs)
    rl = _grad_norms(model, loss.reinforce_loss)
    for name in ("location", "action", "core", "glimpse"):
        assert rl[name] > 0, name
    assert rl["baseline"] == 0
    mse = _grad_norms(model, loss.baseline_loss)
    assert mse["baseline"] > 0 and sum(v for k, v in mse.items() if k != "baseline") == 0


def test_undetached_location_input_routes_reinforce_into_core() -> None:
    model, r, o = _two_episode_rollout(sample_class=False, detach=False)
    loss = hybrid_loss(o.location_log_probs, o.baselines, o.logits, r.returns, r.labels)
    rl = _grad_norms(model, loss.reinforce_loss)
    assert rl["location"] > 0 and rl["core"] > 0 and rl["glimpse"] > 0
    assert rl["action"] == 0 and rl["baseline"] == 0


def test_rollout_records_what_the_env_saw() -> None:
    """The recorded glimpses and locations are the observations; the sent locations are
    the clamped samples; rewards, labels and success come from the env."""

    class Recording(MemoryVectorEnv):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.obs: list[dict[str, np.ndarray]] = []
            self.actions: list[np.ndarray] = []

        def step(self, actions: np.ndarray):  # type: ignore[no-untyped-def]
            self.actions.append(np.array(actions))
            out = super().step(actions)
            self.obs.append({k: np.array(v) for k, v in out[0].items()})
            return out

    envs = Recording(4, horizon=3, glimpse_shape=(1, 2, 2))
    model = RecurrentAttentionModel.from_spaces(
        envs.single_observation_space, envs.single_action_space
    )
    obs, _ = envs.reset(seed=0)
    first = {k: np.array(v) for k, v in obs.items()}
    rollout, _ = collect_rollout(model, envs, obs, std=0.3, generator=torch.Generator())
    seen = [first, *envs.obs[:-1]]
    for t in range(3):
        np.testing.assert_array_equal(
            rollout.glimpses[t].numpy(), seen[t]["glimpse"].reshape(4, -1)
        )
        np.testing.assert_array_equal(rollout.locations[t].numpy(), seen[t]["location"])
        sent = envs.actions[t][:, :2]
        np.testing.assert_allclose(sent, rollout.samples[t].clamp(-1, 1).numpy(), atol=1e-6)
        scores = envs.actions[t][:, 2:]
        assert set(np.unique(scores)) <= {-1.0, 1.0} and np.all((scores == 1).sum(1) == 1)
    assert rollout.horizon == 3 and rollout.rewards.shape == (3, 4)
    assert torch.equal(rollout.classes, torch.from_numpy(envs.actions[-1][:, 2:].argmax(1)))
    assert rollout.success is not None and rollout.labels is not None
    assert torch.equal(rollout.success, rollout.classes == rollout.labels)
    assert torch.equal(rollout.returns, rollout.success.float())


# ----------------------------------------------------------------------------------------
# Adaptive rollouts: episodes that end where the model stops
# ----------------------------------------------------------------------------------------


class _ScriptedStop(torch.nn.Module):
    """A stop network whose logits make sub-env i stop at step ``ends[i]`` (0-based)."""

    def __init__(self, ends: list[int]) -> None:
        super().__init__()
        self.ends = torch.tensor(ends)
        self.step = 0

    def forward(self, h: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        stop = self.ends == self.step
        self.step += 1
        return torch.where(stop, 50.0, -50.0)


class _Recording(AdaptiveMemoryVectorEnv):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.obs: list[dict[str, np.ndarray]] = []
        self.actions: list[np.ndarray] = []

    def step(self, actions: np.ndarray):  # type: ignore[no-untyped-def]
        self.actions.append(np.array(actions))
        out = super().step(actions)
        self.obs.append({k: np.array(v) for k, v in out[0].items()})
        return out


def _adaptive_rollout(
    mode: AutoresetMode, ends: list[int] | None = None
) -> tuple[Rollout, _Recording]:
    """Sub-env i stops at step i (the last one at the horizon, step 3)."""
    torch.manual_seed(0)
    ends = ends or [0, 1, 2, 5]
    envs = _Recording(len(ends), 4, reveal=1, glimpse_cost=0.1, autoreset_mode=mode)
    model = RecurrentAttentionModel.from_spaces(
        envs.single_observation_space,
        envs.single_action_space,
        RAMConfig(core_hidden=16, glimpse_out=16, stop=True),
    )
    model.stop_network = _ScriptedStop(ends)
    obs, _ = envs.reset(seed=1)
    envs.first = {k: np.array(v) for k, v in obs.items()}  # type: ignore[attr-defined]
    rollout = collect_adaptive_rollout(
        model, envs, obs, std=0.2, generator=torch.Generator().manual_seed(0)
    )
    return rollout, envs


@pytest.mark.parametrize(
    "mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]
)
def test_adaptive_rollout_keeps_each_episode_to_its_end(mode: AutoresetMode) -> None:
    rollout, envs = _adaptive_rollout(mode)
    assert rollout.horizon == 4 and rollout.glimpses.shape == (4, 4, 3)
    assert rollout.glimpses_taken.tolist() == [1, 2, 3, 4]
    expected_alive = torch.tensor(
        [[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(rollout.alive, expected_alive)
    # The agent chose every stop but the last episode's (the horizon ended it).
    decided = expected_alive.clone()
    decided[3, 3] = False
    assert torch.equal(rollout.decided, decided)
    assert torch.equal(rollout.stops[rollout.alive & ~decided], torch.zeros(1))
    ends = rollout.glimpses_taken - 1
    assert rollout.stops[ends[:3], torch.arange(3)].tolist() == [1.0, 1.0, 1.0]
    # What each sub-env saw up to its end is recorded; after it, zeros.
    seen = [envs.first, *envs.obs]
    for t in range(4):
        for i in range(4):
            if rollout.alive[t, i]:
                np.testing.assert_array_equal(rollout.glimpses[t, i].numpy(), seen[t]["glimpse"][i])
                np.testing.assert_array_equal(
                    rollout.locations[t, i].numpy(), seen[t]["location"][i]
                )
                assert envs.actions[t][i, -1] == (1.0 if t == ends[i] and i < 3 else -1.0)
            else:
                assert not rollout.glimpses[t, i].any() and not rollout.samples[t, i].any()
                assert rollout.rewards[t, i] == 0
    # Results from each end step's info: return 1[right] - 0.1 * glimpses.
    assert rollout.labels is not None and rollout.success is not None
    classes = torch.tensor([envs.actions[e][i, 2:-1].argmax() for i, e in enumerate(ends)])
    assert torch.equal(rollout.classes, classes)
    assert torch.equal(rollout.success, rollout.classes == rollout.labels)
    expected = rollout.success.double() - 0.1 * rollout.glimpses_taken.double()
    torch.testing.assert_close(rollout.returns.double(), expected, atol=1e-6, rtol=0)


def test_adaptive_rollout_is_the_same_under_every_autoreset_mode() -> None:
    a, _ = _adaptive_rollout(AutoresetMode.NEXT_STEP)
    for mode in (AutoresetMode.SAME_STEP, AutoresetMode.DISABLED):
        b, _ = _adaptive_rollout(mode)
        for name in ("glimpses", "locations", "samples", "rewards", "alive", "stops", "decided"):
            assert torch.equal(getattr(a, name), getattr(b, name)), (mode, name)
        assert torch.equal(a.labels, b.labels) and torch.equal(a.success, b.success)


def test_adaptive_rollout_stops_when_all_have_ended_and_needs_a_stop_network() -> None:
    rollout, envs = _adaptive_rollout(AutoresetMode.NEXT_STEP, ends=[0, 1, 0])
    assert rollout.horizon == 2 and len(envs.actions) == 2
    assert rollout.glimpses_taken.tolist() == [1, 2, 1]
    assert bool(rollout.decided[rollout.alive].all())  # every end was the agent's stop
    envs = AdaptiveMemoryVectorEnv(2)
    plain = RecurrentAttentionModel(3, 2)
    with pytest.raises(ValueError, match="stop network"):
        collect_adaptive_rollout(plain, envs, envs.reset(seed=0)[0])
