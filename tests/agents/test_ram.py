"""Tests of the RAM modules (agents/ram.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.ram import (
    ActionNetwork,
    BaselineNetwork,
    CoreNetwork,
    GlimpseNetwork,
    LocationNetwork,
    RAMConfig,
    RecurrentAttentionModel,
    StopNetwork,
    count_parameters,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 5


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_glimpse_network_shapes() -> None:
    net = GlimpseNetwork(glimpse_dim=3 * 8 * 8)
    g = net(torch.rand(N, 3, 8, 8), torch.rand(N, 2) * 2 - 1)
    assert g.shape == (N, 256)
    assert (g >= 0).all()
    assert net.fc_glimpse.out_features == 128 and net.fc_location.out_features == 128


@pytest.mark.parametrize("core", ["rnn", "lstm", "gru"])
def test_core_network_shapes(core: str) -> None:
    net = CoreNetwork(256, 256, core)
    state = net.initial_state(N)
    h, new_state = net(torch.rand(N, 256), state)
    assert h.shape == (N, 256)
    if core == "lstm":
        assert isinstance(new_state, tuple) and all(s.shape == (N, 256) for s in new_state)
    else:
        assert new_state is h
    if core == "rnn":
        assert (h >= 0).all()  # ReLU RNN


def test_core_network_rejects_unknown_cell() -> None:
    with pytest.raises(ValueError, match="core"):
        CoreNetwork(4, 4, "transformer")


def test_rnn_core_is_the_papers_relu_rnn() -> None:
    net = CoreNetwork(6, 4, "rnn")
    g, h_prev = torch.rand(N, 6), torch.rand(N, 4)
    cell = net.rnn
    expected = F.relu(
        F.linear(h_prev, cell.weight_hh_l0, cell.bias_hh_l0)
        + F.linear(g, cell.weight_ih_l0, cell.bias_ih_l0)
    )
    torch.testing.assert_close(net(g, h_prev)[0], expected)


def test_location_network_shapes_and_log_prob() -> None:
    torch.manual_seed(0)
    net = LocationNetwork(256, 2, std=0.3)
    h = torch.randn(N, 256) * 5
    location, log_prob, mean = net(h)
    assert location.shape == (N, 2) and log_prob.shape == (N,) and mean.shape == (N, 2)
    assert not location.requires_grad  # fed back detached
    assert location.abs().max() <= 1.0 and mean.abs().max() < 1.0
    # log-prob of an unclamped sample equals torch.distributions' value
    sample = LocationNetwork.sample(mean, 0.3, generator=torch.Generator().manual_seed(1))
    expected = torch.distributions.Normal(mean, 0.3).log_prob(sample).sum(-1)
    torch.testing.assert_close(LocationNetwork.log_prob(sample, mean, 0.3), expected)
    # deterministic: the mean itself
    location, _, mean = net(h, deterministic=True)
    torch.testing.assert_close(location, mean.detach())


def test_location_network_reads_detached_state() -> None:
    h = torch.randn(N, 256, requires_grad=True)
    _, log_prob, _ = LocationNetwork(256, 2)(h)
    log_prob.sum().backward()
    assert h.grad is None
    h2 = torch.randn(N, 256, requires_grad=True)
    _, log_prob, _ = LocationNetwork(256, 2, detach_input=False)(h2)
    log_prob.sum().backward()
    assert h2.grad is not None and h2.grad.abs().sum() > 0


def test_location_network_hidden_layer() -> None:
    """``mlp_hidden=M``: mean ``tanh(fc(ReLU(hidden(h))))``, computed by hand; REINFORCE
    reaches both layers and not ``h``; a negative size is refused."""
    torch.manual_seed(0)
    net = LocationNetwork(16, 2, std=0.2, mlp_hidden=8)
    assert net.hidden is not None and net.hidden.weight.shape == (8, 16)
    assert net.fc.weight.shape == (2, 8)
    h = torch.randn(N, 16, requires_grad=True)
    _, log_prob, mean = net(h)
    expected = torch.tanh(
        torch.relu(h.detach() @ net.hidden.weight.T + net.hidden.bias) @ net.fc.weight.T
        + net.fc.bias
    )
    torch.testing.assert_close(mean, expected)
    log_prob.sum().backward()
    assert h.grad is None
    assert net.hidden.weight.grad is not None and net.hidden.weight.grad.abs().sum() > 0
    assert net.fc.weight.grad is not None and net.fc.weight.grad.abs().sum() > 0
    assert LocationNetwork(16, 2).hidden is None  # the paper's linear mean by default
    with pytest.raises(ValueError, match="mlp_hidden"):
        LocationNetwork(16, 2, mlp_hidden=-1)


def test_action_and_baseline_shapes() -> None:
    h = torch.randn(N, 256, requires_grad=True)
    assert ActionNetwork(256, 7)(h).shape == (N, 7)
    b = BaselineNetwork(256)(h)
    assert b.shape == (N,)
    b.sum().backward()
    assert h.grad is None  # the baseline reads a detached h_t


def test_model_step_shapes() -> None:
    model = RecurrentAttentionModel(glimpse_dim=64, n_classes=10)
    state = model.initial_state(N)
    out = model.step(torch.rand(N, 1, 8, 8), torch.zeros(N, 2), state, std=0.2)
    assert out.location.shape == (N, 2)
    assert out.location_log_prob.shape == (N,)
    assert out.location_mean.shape == (N, 2)
    assert out.logits.shape == (N, 10)
    assert out.baseline.shape == (N,)
    assert isinstance(out.state, torch.Tensor) and out.state.shape == (N, 256)
    assert not out.location.requires_grad


def test_model_lstm_state() -> None:
    model = RecurrentAttentionModel(4, 3, RAMConfig(core="lstm", core_hidden=32))
    state = model.initial_state(N)
    out = model.step(torch.rand(N, 4), torch.zeros(N, 2), state)
    assert isinstance(out.state, tuple) and out.state[0].shape == (N, 32)
    out = model.step(torch.rand(N, 4), out.location, out.state)
    assert out.logits.shape == (N, 3)


def test_from_spaces_dict() -> None:
    obs_space = gym.spaces.Dict(
        glimpse=gym.spaces.Box(0, 1, (3, 12, 12), np.float32),
        location=gym.spaces.Box(-1, 1, (2,), np.float32),
    )
    action_space = gym.spaces.Box(-1, 1, (2 + 10,), np.float32)
    model = RecurrentAttentionModel.from_spaces(obs_space, action_space)
    assert model.glimpse_dim == 3 * 12 * 12
    assert model.n_classes == 10
    assert model.glimpse_network.fc_glimpse.in_features == 432
    assert model.action_network.fc.out_features == 10


def test_from_spaces_box_and_extra_keys() -> None:
    box = gym.spaces.Box(0, 1, (2, 5, 5), np.float32)
    action_space = gym.spaces.Box(-1, 1, (2 + 3,), np.float32)
    assert RecurrentAttentionModel.from_spaces(box, action_space).glimpse_dim == 50
    extra = gym.spaces.Dict(
        glimpse=box, step=gym.spaces.Box(0, 1, (1,), np.float32)
    )  # no location key
    model = RecurrentAttentionModel.from_spaces(extra, action_space)
    assert model.glimpse_dim == 51 and model.n_classes == 3


def test_from_spaces_rejects_bad_spaces() -> None:
    obs = gym.spaces.Box(0, 1, (4,), np.float32)
    with pytest.raises(ValueError):
        RecurrentAttentionModel.from_spaces(obs, gym.spaces.Box(-1, 1, (2,), np.float32))
    with pytest.raises(ValueError):
        RecurrentAttentionModel.from_spaces(obs, gym.spaces.Discrete(3))
    bad_location = gym.spaces.Dict(glimpse=obs, location=gym.spaces.Box(-1, 1, (3,)))
    with pytest.raises(ValueError, match="location"):
        RecurrentAttentionModel.from_spaces(bad_location, gym.spaces.Box(-1, 1, (5,)))


def test_parameter_count_matches_the_paper_sized_model() -> None:
    # 8x8 one-scale glimpse, 10 classes: the seed blog's RAM count (28x28 MNIST).
    model = RecurrentAttentionModel(64, 10)
    assert count_parameters(model) == 209_677
    # 12x12, 3 scales: 60x60 cluttered model (the seed blog reports 256,781).
    assert count_parameters(RecurrentAttentionModel(3 * 144, 10)) == 209_677 + (432 - 64) * 128
    model.action_network.fc.weight.requires_grad_(False)
    assert count_parameters(model) == 209_677 - 2560
    assert count_parameters(model, trainable_only=False) == 209_677


CORES = ["rnn", "gru", "lstm"]


def _episode(
    model: RecurrentAttentionModel, n: int = 6, t_steps: int = 4, seed: int = 4
) -> tuple[torch.Tensor, ...]:
    """Fixed inputs of a T-step episode: glimpses, locations, labels, returns."""
    data = torch.Generator().manual_seed(seed)
    dtype = model.action_network.fc.weight.dtype
    glimpses = torch.rand(t_steps, n, 16, generator=data, dtype=dtype)
    locations = torch.rand(t_steps, n, 2, generator=data, dtype=dtype) * 2 - 1
    labels = torch.randint(0, 3, (n,), generator=data)
    returns = torch.rand(n, generator=data, dtype=dtype)
    return glimpses, locations, labels, returns


def _loss(log_probs: torch.Tensor, baselines: torch.Tensor, logits: torch.Tensor, labels, returns):
    """A mix of every term the trainer's losses use (CE, class log-prob, REINFORCE, MSE)."""
    return (
        F.cross_entropy(logits, labels)
        + 0.5 * torch.log_softmax(logits, -1)[:, 2].mean()
        - (log_probs[:-1] * (returns - baselines[:-1]).detach()).sum(0).mean()
        + (baselines - returns).square().mean()
    )


def _grads(model: RecurrentAttentionModel, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {
        name: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
        for name, p in model.named_parameters()
    }


def _step_by_step(model: RecurrentAttentionModel, episode: tuple[torch.Tensor, ...]):
    """Autograd through T :meth:`step` calls: loss, grads and the samples drawn."""
    glimpses, locations, labels, returns = episode
    gen = torch.Generator().manual_seed(3)
    state, outs = None, []
    for t in range(glimpses.shape[0]):
        out = model.step(glimpses[t], locations[t], state, std=0.2, generator=gen)
        state = out.state
        outs.append(out)
    log_probs = torch.stack([o.location_log_prob for o in outs])
    baselines = torch.stack([o.baseline for o in outs])
    loss = _loss(log_probs, baselines, outs[-1].logits, labels, returns)
    return loss.detach(), _grads(model, loss), torch.stack([o.sample for o in outs])


def _replayed(model: RecurrentAttentionModel, episode, samples: torch.Tensor):
    glimpses, locations, labels, returns = episode
    out = model.replay(glimpses, locations, samples, std=0.2)
    loss = _loss(out.location_log_probs, out.baselines, out.logits, labels, returns)
    return loss.detach(), _grads(model, loss)


@pytest.mark.parametrize("location_mlp_hidden", [0, 8])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("core", CORES)
def test_replay_matches_step_by_step_autograd(
    core: str, detach: bool, location_mlp_hidden: int
) -> None:
    """One batched replay gives the step-by-step unroll's loss and gradients (float64)."""
    torch.manual_seed(0)
    config = RAMConfig(
        core=core,
        core_hidden=32,
        glimpse_out=24,
        detach_location_input=detach,
        location_mlp_hidden=location_mlp_hidden,
    )
    model = RecurrentAttentionModel(16, 3, config).double()
    episode = _episode(model)
    loss_a, grads_a, samples = _step_by_step(model, episode)
    loss_r, grads_r = _replayed(model, episode, samples)
    torch.testing.assert_close(loss_r, loss_a, rtol=1e-12, atol=1e-12)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_r[name], grad, rtol=1e-9, atol=1e-12, msg=name)
    assert all(float(g.abs().sum()) > 0 for g in grads_a.values())


@pytest.mark.parametrize("core", CORES)
def test_bfloat16_replay_approximates_float32_gradients(core: str) -> None:
    """Mixed precision (autocast): float32 gradients within bfloat16 rounding."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(16, 3, RAMConfig(core=core, core_hidden=32, glimpse_out=24))
    episode = _episode(model, n=64)
    loss_a, grads_a, samples = _step_by_step(model, episode)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.replay(episode[0], episode[1], samples, std=0.2)
    assert out.all_logits.dtype == out.location_log_probs.dtype == torch.float32
    loss_b, grads_b = (lambda x: (x.detach(), _grads(model, x)))(
        _loss(out.location_log_probs, out.baselines, out.logits, episode[2], episode[3])
    )
    torch.testing.assert_close(loss_b, loss_a, rtol=2e-2, atol=2e-2)
    for name, grad in grads_a.items():
        assert grads_b[name].dtype == torch.float32, name
        error = float((grads_b[name] - grad).norm() / grad.norm())
        assert error < 0.05, (name, error)


def test_replay_shapes() -> None:
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=32, glimpse_out=24))
    glimpses, locations = torch.rand(4, N, 16), torch.rand(4, N, 2)
    out = model.replay(glimpses, locations, torch.zeros(4, N, 2), std=0.1)
    assert out.location_log_probs.shape == out.baselines.shape == (4, N)
    assert out.location_means.shape == (4, N, 2)
    assert out.all_logits.shape == (4, N, 3) and out.logits.shape == (N, 3)


@pytest.mark.parametrize("core", CORES)
def test_cell_checkpoints_load(core: str) -> None:
    """A state dict saved when the core was an ``nn.*Cell`` (the shipped models) loads."""
    model = RecurrentAttentionModel(16, 3, RAMConfig(core=core, core_hidden=8))
    state = model.state_dict()
    old = {
        k.replace("core_network.rnn.", "core_network.cell.").removesuffix("_l0"): v
        for k, v in state.items()
    }
    assert "core_network.cell.weight_ih" in old
    other = RecurrentAttentionModel(16, 3, RAMConfig(core=core, core_hidden=8))
    other.load_state_dict(old)
    for key, value in other.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("core", ["rnn", "lstm", "gru"])
def test_none_state_is_the_zero_initial_state(core: str) -> None:
    model = RecurrentAttentionModel(4, 3, RAMConfig(core=core, core_hidden=8))
    glimpse, location = torch.rand(N, 4), torch.rand(N, 2)
    a = model.step(glimpse, location, None, deterministic=True)
    b = model.step(glimpse, location, model.initial_state(N), deterministic=True)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.location, b.location)


@pytest.mark.parametrize("location_mlp_hidden", [0, 8])
def test_step_gradient_routing(location_mlp_hidden: int) -> None:
    """CE on the logits never reaches the location or baseline networks."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(16, 3, RAMConfig(location_mlp_hidden=location_mlp_hidden))
    state = model.initial_state(N)
    location = torch.zeros(N, 2)
    for _ in range(3):
        out = model.step(torch.rand(N, 16), location, state)
        state, location = out.state, out.location
    F.cross_entropy(out.logits, torch.zeros(N, dtype=torch.long)).backward()
    assert _grad_norm(model.location_network) == 0.0
    assert _grad_norm(model.baseline_network) == 0.0
    for module in (model.action_network, model.core_network, model.glimpse_network):
        assert _grad_norm(module) > 0.0
    assert not math.isnan(_grad_norm(model))


# ----------------------------------------------------------------------------------------
# The stop network (adaptive envs)
# ----------------------------------------------------------------------------------------


def test_stop_off_is_the_model_without_the_option() -> None:
    """``stop=False``: no stop network, the same parameters and state-dict keys; with
    ``stop=True`` the other networks start from the same weights (the stop network is
    built last)."""
    torch.manual_seed(0)
    plain = RecurrentAttentionModel(64, 10)
    torch.manual_seed(0)
    stopping = RecurrentAttentionModel(64, 10, RAMConfig(stop=True))
    assert plain.stop_network is None
    assert count_parameters(plain) == 209_677
    assert count_parameters(stopping) == 209_677 + 256 + 1
    extra = set(stopping.state_dict()) - set(plain.state_dict())
    assert extra == {"stop_network.fc.weight", "stop_network.fc.bias"}
    for key, value in plain.state_dict().items():
        assert torch.equal(value, stopping.state_dict()[key]), key
    out = plain.step(torch.rand(N, 64), torch.zeros(N, 2), None)
    assert out.stop is None and out.stop_logit is None and out.stop_log_prob is None


def test_stop_network_starts_at_its_bias_and_reads_a_detached_state() -> None:
    net = StopNetwork(16, bias_init=-2.0)
    assert torch.equal(net.fc.weight, torch.zeros(1, 16)) and net.fc.bias.item() == -2.0
    h = torch.randn(N, 16, requires_grad=True)
    logit = net(h)
    assert logit.shape == (N,) and torch.equal(logit, torch.full((N,), -2.0))
    logit.sum().backward()
    assert h.grad is None and net.fc.weight.grad is not None
    h2 = torch.randn(3, N, 16, requires_grad=True)
    out = StopNetwork(16, detach_input=False, mlp_hidden=8)(h2)
    assert out.shape == (3, N)
    out.sum().backward()  # zero last-layer weights: no gradient reaches h yet, but a path does
    assert h2.grad is not None
    with pytest.raises(ValueError, match="mlp_hidden"):
        StopNetwork(16, mlp_hidden=-1)


def test_stop_log_prob_and_sampling() -> None:
    """log Bernoulli(stop | sigmoid(logit)) equals torch.distributions'; deterministic
    decisions stop iff logit > 0 (0 does not stop); samples follow sigmoid(logit)."""
    logit = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0], dtype=torch.float64)
    for stop in (torch.zeros(5), torch.ones(5)):
        expected = torch.distributions.Bernoulli(logits=logit).log_prob(stop.double())
        torch.testing.assert_close(StopNetwork.log_prob(stop, logit), expected)
    # By hand: log sigmoid(0.5) = -0.474077, log sigmoid(-0.5) = -0.974077.
    assert StopNetwork.log_prob(torch.ones(1), torch.tensor([0.5])).item() == pytest.approx(
        -0.474077, abs=1e-6
    )
    assert StopNetwork.log_prob(torch.zeros(1), torch.tensor([0.5])).item() == pytest.approx(
        -0.974077, abs=1e-6
    )
    assert StopNetwork.sample(logit, deterministic=True).tolist() == [0, 0, 0, 1, 1]
    many = torch.full((20_000,), 0.5)
    rate = StopNetwork.sample(many, generator=torch.Generator().manual_seed(0)).mean().item()
    assert rate == pytest.approx(1 / (1 + math.exp(-0.5)), abs=0.01)


def test_step_and_replay_with_a_stop_network() -> None:
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=32, glimpse_out=24, stop=True))
    out = model.step(torch.rand(N, 16), torch.zeros(N, 2), None, std=0.2)
    assert out.stop_logit.shape == out.stop.shape == out.stop_log_prob.shape == (N,)
    assert set(out.stop.tolist()) <= {0.0, 1.0} and not out.stop.requires_grad
    det = model.step(torch.rand(N, 16), torch.zeros(N, 2), None, deterministic=True)
    assert torch.equal(det.stop, (det.stop_logit > 0).float())
    unscored = model.step(torch.rand(N, 16), torch.zeros(N, 2), None, scored=False)
    assert unscored.stop is not None and unscored.stop_log_prob is None
    replay = model.replay(torch.rand(4, N, 16), torch.rand(4, N, 2), torch.zeros(4, N, 2), 0.1)
    assert replay.stop_logits.shape == (4, N) and replay.stop_log_probs is None
    stops = torch.ones(4, N)
    replay = model.replay(
        torch.rand(4, N, 16), torch.rand(4, N, 2), torch.zeros(4, N, 2), 0.1, stops
    )
    torch.testing.assert_close(
        replay.stop_log_probs, torch.nn.functional.logsigmoid(replay.stop_logits)
    )


@pytest.mark.parametrize("core", CORES)
def test_replay_matches_step_by_step_with_a_stop_network(core: str) -> None:
    """The stop decisions drawn step by step, replayed: the same stop log-probabilities
    and the same gradients of a loss that uses them (float64)."""
    torch.manual_seed(0)
    config = RAMConfig(
        core=core,
        core_hidden=32,
        glimpse_out=24,
        stop=True,
        stop_mlp_hidden=8,
        stop_input={"rnn": "state", "gru": "both", "lstm": "confidence"}[core],
    )
    model = RecurrentAttentionModel(16, 3, config).double()
    torch.nn.init.normal_(model.stop_network.fc.weight, std=0.3)  # not the flat start
    glimpses, locations, _, returns = _episode(model)
    gen = torch.Generator().manual_seed(3)
    state, outs = None, []
    for t in range(glimpses.shape[0]):
        out = model.step(glimpses[t], locations[t], state, std=0.2, generator=gen)
        state = out.state
        outs.append(out)
    stops = torch.stack([o.stop for o in outs]).double()
    assert 0 < stops.sum() < stops.numel()  # both decisions drawn
    step_log_probs = torch.stack([o.stop_log_prob for o in outs])
    loss_a = -(step_log_probs * (returns - 0.3)).sum(0).mean()
    grads_a = _grads(model, loss_a)
    samples = torch.stack([o.sample for o in outs])
    replay = model.replay(glimpses, locations, samples, 0.2, stops)
    loss_r = -(replay.stop_log_probs * (returns - 0.3)).sum(0).mean()
    torch.testing.assert_close(loss_r, loss_a.detach(), rtol=1e-12, atol=1e-12)
    grads_r = _grads(model, loss_r)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_r[name], grad, rtol=1e-9, atol=1e-12, msg=name)
    # The stop network reads a detached h_t: only its own parameters get gradient.
    assert all(float(g.abs().sum()) == 0 for n, g in grads_a.items() if not n.startswith("stop_"))
    assert float(grads_a["stop_network.fc.weight"].abs().sum()) > 0


def test_from_spaces_with_the_stop_column() -> None:
    obs = gym.spaces.Dict(
        glimpse=gym.spaces.Box(0, 1, (1, 8, 8), np.float32),
        location=gym.spaces.Box(-1, 1, (2,), np.float32),
    )
    model = RecurrentAttentionModel.from_spaces(
        obs, gym.spaces.Box(-1, 1, (2 + 10 + 1,), np.float32), RAMConfig(stop=True)
    )
    assert model.n_classes == 10 and model.stop_network is not None


def test_stop_network_reading_the_confidence() -> None:
    """The confidence is the log-odds of the top class, log p_max - log(1 - p_max), by hand:
    logits (2, 0, 0): p_max = e^2 / (e^2 + 2), log-odds 2 - log 2 = 1.306853; read detached,
    whatever the class order."""
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]], requires_grad=True)
    assert StopNetwork.confidence(logits).tolist() == pytest.approx([1.306853] * 2, abs=1e-6)
    net = StopNetwork(2, read_confidence=True, bias_init=0.5)
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[0.0, 0.0, 1.0]]))
    out = net(torch.rand(2, 2), logits)
    assert out.tolist() == pytest.approx([1.806853] * 2, abs=1e-6)
    out.sum().backward()
    assert logits.grad is None  # the scores are read detached
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=8, stop=True, stop_input="both"))
    assert model.stop_network.fc.in_features == 8 + 1
    config = RAMConfig(core_hidden=8, stop=True, stop_input="confidence")
    assert RecurrentAttentionModel(16, 3, config).stop_network.fc.in_features == 1
    with pytest.raises(ValueError, match="reads"):
        StopNetwork(8, read_state=False)
    out = model.step(torch.rand(N, 16), torch.zeros(N, 2), None)
    assert out.stop_logit.shape == (N,)
    replay = model.replay(torch.rand(4, N, 16), torch.rand(4, N, 2), torch.zeros(4, N, 2), 0.1)
    assert replay.stop_logits.shape == (4, N)
