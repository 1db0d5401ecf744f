"""The RAM policy's actions with a stop network, and the warm start of a new model from a
trained one (agents/ram_policy.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adaptive_env import AdaptiveMemoryVectorEnv

from agents.ram import RAMConfig, RecurrentAttentionModel
from agents.ram_policy import RAMPolicy, build_model, model_payload, warm_start
from glimpse_env.actions import stop_scores, unpack_action

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = RAMConfig(glimpse_hidden=8, location_hidden=8, glimpse_out=16, core_hidden=16)


def _policy(bias: float) -> tuple[RAMPolicy, AdaptiveMemoryVectorEnv]:
    envs = AdaptiveMemoryVectorEnv(6, 4)
    config = RAMConfig(**{**SMALL.__dict__, "stop": True, "stop_bias_init": bias})
    model = RecurrentAttentionModel.from_spaces(
        envs.single_observation_space, envs.single_action_space, config
    )
    return RAMPolicy(model, observation_space=envs.single_observation_space), envs


def test_policy_appends_the_stop_score() -> None:
    """Deterministic: +1 (stop) iff the stop logit is above 0; the class scores name the
    argmax; the action fits the adaptive env."""
    for bias, expected in ((1.0, 1.0), (-1.0, -1.0), (0.0, -1.0)):  # logit 0 does not stop
        policy, envs = _policy(bias)
        obs, _ = envs.reset(seed=0)
        action, _ = policy.act(obs, policy.initial_state(6), deterministic=True)
        assert action.shape == (6, 2 + 2 + 1) and action.dtype == np.float32
        assert np.all(stop_scores(action) == expected)
        _, scores = unpack_action(action, stop=True)
        assert np.all((scores == 1).sum(1) == 1) and set(np.unique(scores)) <= {-1.0, 1.0}
        envs.step(action)  # accepted
    # Sampled: stop with probability sigmoid(logit) (here sigmoid(0) = 1/2).
    policy, envs = _policy(0.0)
    policy.seed_sampling(0)
    obs, _ = envs.reset(seed=0)
    stops = [
        stop_scores(policy.act(obs, policy.initial_state(6), deterministic=False)[0])
        for _ in range(200)
    ]
    assert np.mean(np.concatenate(stops) > 0) == pytest.approx(0.5, abs=0.06)


def test_policy_without_a_stop_network_sends_no_stop_score() -> None:
    model = RecurrentAttentionModel(3, 2, SMALL)
    envs = AdaptiveMemoryVectorEnv(2)
    policy = RAMPolicy(model, observation_space=envs.single_observation_space)
    action, _ = policy.act(envs.reset(seed=0)[0], policy.initial_state(2), True)
    assert action.shape == (2, 4)


def test_checkpoint_payload_round_trip_with_a_stop_network() -> None:
    config = RAMConfig(**{**SMALL.__dict__, "stop": True, "stop_mlp_hidden": 4})
    model = RecurrentAttentionModel(3, 2, config)
    rebuilt = build_model(model_payload(model, config))
    assert rebuilt.stop_network is not None and rebuilt.stop_network.hidden is not None
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    old = model_payload(RecurrentAttentionModel(3, 2, SMALL), SMALL)
    del old["model_config"]["stop"]  # written before the option existed
    assert build_model(old).stop_network is None


def test_warm_start_loads_every_trained_tensor_and_leaves_the_stop_network_fresh() -> None:
    torch.manual_seed(0)
    trained = RecurrentAttentionModel(3, 2, SMALL)
    torch.manual_seed(1)
    config = RAMConfig(**{**SMALL.__dict__, "stop": True})
    model = RecurrentAttentionModel(3, 2, config)
    stop_before = {k: v.clone() for k, v in model.stop_network.state_dict().items()}
    fresh = warm_start(model, trained.state_dict())
    assert fresh == ["stop_network.fc.weight", "stop_network.fc.bias"]
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    for key, value in model.stop_network.state_dict().items():
        assert torch.equal(value, stop_before[key]), key
    # The shipped models' older nn.*Cell parameter names load too.
    old_names = {
        k.replace("core_network.rnn.", "core_network.cell.").removesuffix("_l0"): v
        for k, v in trained.state_dict().items()
    }
    other = RecurrentAttentionModel(3, 2, config)
    assert warm_start(other, old_names) == fresh
    assert torch.equal(other.core_network.rnn.weight_hh_l0, trained.core_network.rnn.weight_hh_l0)


def test_warm_start_refuses_another_architecture() -> None:
    trained = RecurrentAttentionModel(3, 2, SMALL)
    bigger = RecurrentAttentionModel(3, 2, RAMConfig(**{**SMALL.__dict__, "core_hidden": 32}))
    with pytest.raises(ValueError, match=r"shape .* --core-hidden"):
        warm_start(bigger, trained.state_dict())
    with_hidden = RAMConfig(**{**SMALL.__dict__, "location_mlp_hidden": 4})
    with pytest.raises(ValueError, match="location_network"):
        warm_start(RecurrentAttentionModel(3, 2, with_hidden), trained.state_dict())
    with pytest.raises(ValueError, match="this model lacks"):
        warm_start(RecurrentAttentionModel(3, 2, SMALL), RecurrentAttentionModel(
            3, 2, with_hidden
        ).state_dict())  # fmt: skip
