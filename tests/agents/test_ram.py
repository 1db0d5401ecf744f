"""Tests of the RAM modules (agents/ram.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator

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
    RolloutTape,
    _with_bias,
    biased_width,
    count_parameters,
)

N = 5


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread is as fast, and immune to a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    cell = net.cell
    expected = F.relu(
        F.linear(h_prev, cell.weight_hh, cell.bias_hh) + F.linear(g, cell.weight_ih, cell.bias_ih)
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


def test_location_hidden_layer_disables_the_tape() -> None:
    """The tape's hand-written backward knows the linear mean only: with a hidden layer the
    model says so and refuses a tape (the trainer then uses autograd)."""
    model = RecurrentAttentionModel(4, 2, RAMConfig(core_hidden=8, location_mlp_hidden=4))
    assert not model.supports_tape
    assert count_parameters(model.location_network) == 8 * 4 + 4 + 4 * 2 + 2
    with pytest.raises(ValueError, match="linear location mean"):
        model.step(torch.rand(2, 4), torch.zeros(2, 2), None, tape=RolloutTape())


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


def _unroll(
    model: RecurrentAttentionModel,
    use_tape: bool,
    preallocate: bool = False,
    compute_dtype: torch.dtype | None = None,
    n: int = 6,
    tape: RolloutTape | None = None,
    seed: int = 4,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Unroll T=4 steps on fixed inputs (drawn from ``seed``), return a mixed loss and the
    parameter grads; ``tape``: record on it (reset) instead of a new tape."""
    gen = torch.Generator().manual_seed(3)
    data = torch.Generator().manual_seed(seed)
    t_steps, dtype = 4, model.action_network.fc.weight.dtype
    glimpses = torch.rand(t_steps, n, 16, generator=data, dtype=dtype)
    locations = torch.rand(t_steps, n, 2, generator=data, dtype=dtype) * 2 - 1
    labels = torch.randint(0, 3, (n,), generator=data)
    returns = torch.rand(n, generator=data, dtype=dtype)
    # a random initial state with preallocation, the zero state (None) without
    state = (
        torch.rand(n, model.config.core_hidden, generator=data, dtype=dtype)
        if preallocate
        else None
    )
    horizon = t_steps if preallocate else None
    if not use_tape:
        tape = None
    elif tape is None:
        tape = RolloutTape(horizon, compute_dtype)
    else:
        tape.reset(horizon, compute_dtype)
    outs = []
    for t in range(t_steps):
        out = model.step(glimpses[t], locations[t], state, std=0.2, generator=gen, tape=tape)
        state = out.state
        outs.append(out)
    if tape is not None:
        replay = model.replay(tape)
        log_probs, baselines, logits = replay.location_log_probs, replay.baselines, replay.logits
    else:
        log_probs = torch.stack([o.location_log_prob for o in outs])
        baselines = torch.stack([o.baseline for o in outs])
        logits = outs[-1].logits
    loss = (
        F.cross_entropy(logits, labels)
        + 0.5 * torch.log_softmax(logits, -1)[:, 2].mean()
        - (log_probs[:-1] * (returns - baselines[:-1]).detach()).sum(0).mean()
        + (baselines - returns).square().mean()
    )
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads = {
        name: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
        for name, p in model.named_parameters()
    }
    return loss.detach(), grads


@pytest.mark.parametrize("preallocate", [True, False])
@pytest.mark.parametrize("detach", [True, False])
def test_tape_replay_matches_autograd(detach: bool, preallocate: bool) -> None:
    """The batched hand-written BPTT gives autograd's gradients (float64, exact)."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(
        16, 3, RAMConfig(core_hidden=32, glimpse_out=24, detach_location_input=detach)
    ).double()
    loss_a, grads_a = _unroll(model, use_tape=False, preallocate=preallocate)
    loss_t, grads_t = _unroll(model, use_tape=True, preallocate=preallocate)
    torch.testing.assert_close(loss_t, loss_a, rtol=1e-12, atol=1e-12)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_t[name], grad, rtol=1e-9, atol=1e-12, msg=name)
    assert all(float(g.abs().sum()) > 0 for g in grads_a.values())


@pytest.mark.parametrize("preallocate", [True, False])
def test_bfloat16_tape_approximates_float32_gradients(preallocate: bool) -> None:
    """Mixed precision: float32 gradients within bfloat16 rounding of the float32 ones."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=32, glimpse_out=24))
    loss_a, grads_a = _unroll(model, use_tape=False, preallocate=preallocate, n=64)
    loss_b, grads_b = _unroll(
        model, use_tape=True, preallocate=preallocate, compute_dtype=torch.bfloat16, n=64
    )
    torch.testing.assert_close(loss_b, loss_a, rtol=2e-2, atol=2e-2)
    for name, grad in grads_a.items():
        assert grads_b[name].dtype == torch.float32, name
        error = float((grads_b[name] - grad).norm() / grad.norm())
        assert error < 0.05, (name, error)


@pytest.mark.parametrize("compute_dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("preallocate", [True, False])
def test_reused_tape_gives_a_fresh_tapes_values(
    preallocate: bool, compute_dtype: torch.dtype | None
) -> None:
    """A tape that recorded (and backpropagated) another rollout gives bit-identical
    losses and gradients, and reuses its buffers when their size is known."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=32, glimpse_out=24))
    kwargs = {"use_tape": True, "preallocate": preallocate, "compute_dtype": compute_dtype}
    loss_fresh, grads_fresh = _unroll(model, **kwargs)
    tape = RolloutTape()
    _unroll(model, **kwargs, tape=tape, seed=9)  # another rollout first
    buffers = {name: b.data_ptr() for name, b in tape._buffers.items()}
    loss, grads = _unroll(model, **kwargs, tape=tape)
    assert torch.equal(loss, loss_fresh)
    for name, grad in grads_fresh.items():
        assert torch.equal(grads[name], grad), name
    assert {name: b.data_ptr() for name, b in tape._buffers.items()} == buffers
    assert bool(buffers) == preallocate


def test_tape_reset_leaves_a_pending_replay_its_storage() -> None:
    """Reset before the previous replay's backward: new storage, the old replay intact."""
    torch.manual_seed(0)
    model = RecurrentAttentionModel(4, 3, RAMConfig(core_hidden=8, glimpse_out=8))
    tape, data = RolloutTape(2), torch.Generator().manual_seed(0)
    glimpses = torch.rand(2, 2, N, 4, generator=data)

    def record(rollout: int) -> torch.Tensor:
        tape.reset(2)
        state = None
        for t in range(2):
            out = model.step(glimpses[rollout, t], torch.zeros(N, 2), state, tape=tape)
            state = out.state
        replay = model.replay(tape)
        return replay.logits.sum() + replay.location_means.sum() + replay.baselines.sum()

    expected = torch.autograd.grad(record(0), model.parameters())
    first = record(0)  # replayed, not backpropagated yet
    buffer = tape._buffers["hidden"]
    record(1)  # a different rollout on the same tape
    assert tape._buffers["hidden"] is not buffer
    for got, want in zip(torch.autograd.grad(first, model.parameters()), expected):
        assert torch.equal(got, want)


def test_tape_drops_storage_for_another_batch_size() -> None:
    model = RecurrentAttentionModel(4, 3, RAMConfig(core_hidden=8, glimpse_out=8))
    tape = RolloutTape(1)
    for n in (N, N + 1):
        tape.reset(1)
        out = model.step(torch.rand(n, 4), torch.zeros(n, 2), None, tape=tape)
        assert out.logits.shape == (n, 3) and tape.stacked("hidden").shape == (1, n, 8)
        model.replay(tape).logits.sum().backward()


@pytest.mark.parametrize("horizon", [3, None])
def test_tape_ones_column_slot(horizon: int | None) -> None:
    """A widened slot: F columns to write, then a one, then zeros up to a 32-multiple."""
    assert [biased_width(f) for f in (1, 31, 32, 64, 512)] == [32, 32, 64, 96, 544]
    tape = RolloutTape(horizon)
    slot = tape.slot("x", (4, 40), torch.zeros(1), ones_column=True)
    assert slot.shape == (4, 64)
    torch.testing.assert_close(slot[:, 40], torch.ones(4))
    torch.testing.assert_close(slot[:, 41:], torch.zeros(4, 23))
    slot[:, :40] = 2.0
    weights, bias = [torch.rand(3, 30), torch.rand(3, 10)], torch.rand(3)
    torch.testing.assert_close(
        slot @ _with_bias(weights, bias).t(),
        slot[:, :30] @ weights[0].t() + slot[:, 30:40] @ weights[1].t() + bias,
    )
    assert _with_bias(weights, bias, torch.bfloat16).dtype == torch.bfloat16


def test_tape_glimpse_weight_gives_what_and_where_in_one_product() -> None:
    """[rho | l | 1 | 0] @ widened.T == [fc_glimpse(rho), fc_location(l)]."""
    model = RecurrentAttentionModel(4, 2)
    gn = model.glimpse_network
    widened = model._biased_weight("glimpse")
    assert widened.shape == (gn.fc_glimpse.out_features + 128, biased_width(4 + 2))
    rho, loc = torch.rand(5, 4), torch.rand(5, 2)
    x = torch.cat([rho, loc, torch.ones(5, 1), torch.zeros(5, widened.shape[1] - 7)], 1)
    with torch.no_grad():
        expected = torch.cat([gn.fc_glimpse(rho), gn.fc_location(loc)], 1)
    torch.testing.assert_close(x @ widened.t(), expected)


def test_bfloat16_tape_records_bfloat16_activations() -> None:
    model = RecurrentAttentionModel(16, 3, RAMConfig(core_hidden=32, glimpse_out=24))
    tape = RolloutTape(2, torch.bfloat16)
    state = None
    with torch.no_grad():
        for _ in range(2):
            out = model.step(torch.rand(5, 16), torch.zeros(5, 2), state, tape=tape)
            state = out.state
    assert tape.stacked("hidden").dtype == torch.bfloat16
    assert tape.stacked("heads").dtype == tape.stacked("hidden_heads").dtype == torch.float32
    assert out.logits.dtype == out.location.dtype == torch.float32
    assert model.glimpse_network.fc_glimpse.weight.dtype == torch.float32


@pytest.mark.parametrize("core", ["rnn", "lstm", "gru"])
def test_none_state_is_the_zero_initial_state(core: str) -> None:
    model = RecurrentAttentionModel(4, 3, RAMConfig(core=core, core_hidden=8))
    glimpse, location = torch.rand(N, 4), torch.rand(N, 2)
    a = model.step(glimpse, location, None, deterministic=True)
    b = model.step(glimpse, location, model.initial_state(N), deterministic=True)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.location, b.location)
    if model.supports_tape:
        c = model.step(glimpse, location, None, deterministic=True, tape=RolloutTape())
        torch.testing.assert_close(c.logits, b.logits)
        torch.testing.assert_close(c.baseline, b.baseline)


def test_tape_requires_rnn_core() -> None:
    model = RecurrentAttentionModel(4, 2, RAMConfig(core="gru", core_hidden=8))
    assert not model.supports_tape
    with pytest.raises(ValueError, match="rnn"):
        model.step(torch.rand(2, 4), torch.zeros(2, 2), model.initial_state(2), tape=RolloutTape())


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
