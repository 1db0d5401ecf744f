"""The losses (agents/losses.py) against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from agents.losses import (
    expected_class_reward,
    expected_stopping_loss,
    halting_distribution,
    hybrid_loss,
    reinforce_loss,
    stopping_loss,
)
from agents.ram import StopNetwork

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
# Episodes that end where the agent stops: T = 3, N = 2, C = 2. Episode 0 stops after
# glimpse 2 (step 1), episode 1 runs to the horizon (step 2). Entries after an end are
# garbage (NaN) and must not matter.
# ----------------------------------------------------------------------------------------
NAN = float("nan")
ALIVE = torch.tensor([[True, True], [True, True], [False, True]])
STOP_LOG_PROBS = torch.tensor([[-0.2, -0.3], [-0.7, -0.4], [NAN, -0.6]])
STOP_BASELINES = torch.tensor([[0.2, 0.5], [0.4, 0.1], [NAN, 0.3]])
STOP_RETURNS = torch.tensor([0.9, -0.3])  # right after 2 glimpses; wrong after 3
STOP_LABELS = torch.tensor([0, 1])
ALL_LOGITS = torch.tensor(
    [[[2.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[NAN, NAN], [0.0, 2.0]]]
)
# Advantages R - b_t: episode 0: 0.7, 0.5; episode 1: -0.8, -0.4, -0.6.
# Locations seen (drawn before an alive step): episode 0 step 0; episode 1 steps 0, 1.
#   episode 0: -(-1.0)(0.7) = 0.7; episode 1: -[(-2.0)(-0.8) + (-1.5)(-0.4)] = -2.2
# Stop decisions chosen (alive, not the horizon's last row): steps 0, 1 of both.
#   episode 0: -[(-0.2)(0.7) + (-0.7)(0.5)] = 0.49; episode 1: -[(-0.3)(-0.8) + (-0.4)(-0.4)]
#   = -0.40
STOP_TERM = (0.49 - 0.40) / 2  # 0.045
STOP_REINFORCE = (0.7 + 0.49 + (-2.2 - 0.40)) / 2  # -0.705
# Baseline MSE over the 5 alive entries: (0.49 + 0.25 + 0.64 + 0.16 + 0.36) / 5
STOP_MSE = 1.9 / 5  # 0.38
# Cross-entropy at every alive step: log(1 + e^-2), log(1 + e^-1) (episode 0);
# log 2, log(1 + e^-1), log(1 + e^-2) (episode 1); mean over the 5.
STOP_CE = 0.314705316


def _stopping(**kwargs: object) -> object:
    args = {"labels": STOP_LABELS, **kwargs}
    return stopping_loss(
        LOG_PROBS, STOP_LOG_PROBS, STOP_BASELINES, ALL_LOGITS, STOP_RETURNS, ALIVE, **args
    )


def test_stopping_loss_by_hand() -> None:
    out = _stopping()
    assert out.action_loss.item() == pytest.approx(STOP_CE, abs=1e-6)
    assert out.reinforce_loss.item() == pytest.approx(STOP_REINFORCE, abs=1e-6)
    assert out.stop_loss.item() == pytest.approx(STOP_TERM, abs=1e-6)
    assert out.baseline_loss.item() == pytest.approx(STOP_MSE, abs=1e-6)
    assert out.total.item() == pytest.approx(STOP_CE + STOP_REINFORCE + STOP_MSE, abs=1e-6)
    weighted = _stopping(reinforce_weight=2.0, baseline_weight=0.5)
    expected = STOP_CE + 2.0 * STOP_REINFORCE + 0.5 * STOP_MSE
    assert weighted.total.item() == pytest.approx(expected, abs=1e-6)


def test_stopping_loss_pure_reinforce_by_hand() -> None:
    """The class sampled at each episode's end step, with that step's advantage:
    episode 0 (step 1): -(-0.1)(0.5) = 0.05; episode 1 (step 2): -(-2.0)(-0.6) = -1.2."""
    out = _stopping(labels=None, class_log_probs=CLASS_LOG_PROBS)
    reinforce = (0.7 + 0.49 + 0.05 + (-2.2 - 0.40 - 1.2)) / 2  # -1.28
    assert out.action_loss.item() == 0.0
    assert out.reinforce_loss.item() == pytest.approx(reinforce, abs=1e-6)
    assert out.total.item() == pytest.approx(reinforce + STOP_MSE, abs=1e-6)


def test_stopping_loss_masks() -> None:
    """Per-step rewards (the return at each end step, garbage after it) give the same
    loss; ``decided`` selects the stop terms; the horizon's own stop is left out."""
    per_step = torch.tensor([[0.0, 0.0], [0.9, 0.0], [7.0, -0.3]])
    torch.testing.assert_close(
        _stopping().total,
        stopping_loss(
            LOG_PROBS,
            STOP_LOG_PROBS,
            STOP_BASELINES,
            ALL_LOGITS,
            per_step,
            ALIVE,
            labels=STOP_LABELS,
        ).total,
    )
    # Only episode 0's step 1 decided: stop term -(-0.7)(0.5) / 2 = 0.175.
    decided = torch.zeros(3, 2, dtype=torch.bool)
    decided[1, 0] = True
    assert _stopping(decided=decided).stop_loss.item() == pytest.approx(0.175, abs=1e-6)
    # The last row's stop decision (the horizon ended the episode) does not count.
    changed = STOP_LOG_PROBS.clone()
    changed[2, 1] = -50.0
    same = stopping_loss(
        LOG_PROBS, changed, STOP_BASELINES, ALL_LOGITS, STOP_RETURNS, ALIVE, labels=STOP_LABELS
    )
    assert same.total.item() == _stopping().total.item()


def test_stopping_loss_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _stopping(labels=None)
    with pytest.raises(ValueError, match="exactly one"):
        _stopping(class_log_probs=CLASS_LOG_PROBS)
    holes = torch.tensor([[True, True], [False, True], [True, True]])
    with pytest.raises(ValueError, match="alive"):
        stopping_loss(
            LOG_PROBS, STOP_LOG_PROBS, STOP_BASELINES, ALL_LOGITS, STOP_RETURNS, holes,
            labels=STOP_LABELS,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        stopping_loss(
            LOG_PROBS[:2], STOP_LOG_PROBS, STOP_BASELINES, ALL_LOGITS, STOP_RETURNS, ALIVE,
            labels=STOP_LABELS,
        )  # fmt: skip


def test_stop_head_gradient_by_hand() -> None:
    """d/dtheta of -log Bernoulli(s_t | sigmoid(w . h_t + b)) (R - b_t), float64.

    One episode, two decided steps: h_0 = (1, 2), went on (s = 0), advantage 1.0 - 0.4 =
    0.6; h_1 = (2, 0.5), stopped (s = 1), advantage 1.0 - 0.7 = 0.3. With w = (0.5, -1),
    b = 0.25: z_0 = -1.25, z_1 = 0.75, and

        dL/dw = -sum_t (s_t - sigmoid(z_t)) adv_t h_t
              = 0.6 sigmoid(-1.25) (1, 2) - 0.3 (1 - sigmoid(0.75)) (2, 0.5)
              = (-0.0588727, 0.2191170)
        dL/db = 0.6 sigmoid(-1.25) - 0.3 (1 - sigmoid(0.75)) = 0.0373737
        L     = -[0.6 log(1 - sigmoid(-1.25)) + 0.3 log sigmoid(0.75)] = 0.2672188
    """
    net = StopNetwork(2).double()
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[0.5, -1.0]]))
        net.fc.bias.fill_(0.25)
    h = torch.tensor([[[1.0, 2.0]], [[2.0, 0.5]]], dtype=torch.float64)  # (T=2, N=1, H=2)
    stops = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    logits = net(h)
    alive = torch.ones(2, 1, dtype=torch.bool)
    out = stopping_loss(
        torch.zeros(2, 1, dtype=torch.float64),
        StopNetwork.log_prob(stops, logits),
        torch.tensor([[0.4], [0.7]], dtype=torch.float64),
        torch.zeros(2, 1, 3, dtype=torch.float64),
        torch.tensor([1.0], dtype=torch.float64),
        alive,
        labels=torch.tensor([0]),
        decided=alive,
    )
    assert out.stop_loss.item() == pytest.approx(0.2672188, abs=1e-7)
    out.total.backward()
    assert net.fc.weight.grad.tolist()[0] == pytest.approx([-0.0588727, 0.2191170], abs=1e-7)
    assert net.fc.bias.grad.item() == pytest.approx(0.0373737, abs=1e-7)


def test_stopping_loss_with_a_stop_baseline_by_hand() -> None:
    """The stop terms against their own baseline b' (e.g. what stopping would return):
    advantages R - b': episode 0: 0.9 - 0.3 = 0.6, 0.9 - 0.9 = 0; episode 1: -0.3 + 0.5 =
    0.2, -0.3 + 0.1 = -0.2. Stop terms: episode 0: -[(-0.2)(0.6) + (-0.7)(0)] = 0.12;
    episode 1: -[(-0.3)(0.2) + (-0.4)(-0.2)] = -0.02. The rest is unchanged."""
    stop_baselines = torch.tensor([[0.3, -0.5], [0.9, -0.1], [NAN, 0.0]])
    out = _stopping(stop_baselines=stop_baselines)
    assert out.stop_loss.item() == pytest.approx((0.12 - 0.02) / 2, abs=1e-6)
    reinforce = (0.7 + 0.12 + (-2.2 - 0.02)) / 2
    assert out.reinforce_loss.item() == pytest.approx(reinforce, abs=1e-6)
    assert out.baseline_loss.item() == pytest.approx(STOP_MSE, abs=1e-6)


def test_halting_distribution_by_hand() -> None:
    """lambda = sigmoid(0) = 0.5, sigmoid(ln 3) = 0.75, then the horizon (1): p = 0.5,
    0.5 * 0.75 = 0.375, 0.5 * 0.25 = 0.125."""
    logits = torch.tensor([[0.0, 50.0], [math.log(3.0), -50.0], [-7.0, -50.0]])
    p = halting_distribution(logits)
    assert p[:, 0].tolist() == pytest.approx([0.5, 0.375, 0.125], abs=1e-6)
    assert p[:, 1].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    torch.testing.assert_close(p.sum(0), torch.ones(2))


def test_expected_stopping_loss_and_its_gradient_by_hand() -> None:
    """With p = (0.5, 0.375, 0.125) and payoffs q = (0.2, 0.9, 0.8): J = 0.1 + 0.3375 + 0.1
    = 0.5375. dJ/dz_0 = 0.25 q_0 - 0.1875 q_1 - 0.0625 q_2 = -0.16875; dJ/dz_1 =
    0.09375 (q_1 - q_2) = 0.009375; the horizon's logit has no gradient.
    Location term: -[(-1)(J - 0.3) + (-0.5)(J - 0.5)] = 0.25625 (the last location is
    never seen); baseline MSE (0.2375^2 + 0.0375^2 + 0.0625^2) / 3; CE log 2 everywhere."""
    stop_logits = torch.tensor([[0.0], [math.log(3.0)], [2.0]], requires_grad=True)
    out = expected_stopping_loss(
        torch.tensor([[-1.0], [-0.5], [-3.0]]),
        stop_logits,
        torch.tensor([[0.3], [0.5], [0.6]]),
        torch.zeros(3, 1, 2),
        torch.tensor([1]),
        torch.tensor([[0.2], [0.9], [0.8]]),
    )
    mse = (0.2375**2 + 0.0375**2 + 0.0625**2) / 3
    assert out.stop_loss.item() == pytest.approx(-0.5375, abs=1e-6)
    assert out.action_loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert out.baseline_loss.item() == pytest.approx(mse, abs=1e-6)
    assert out.reinforce_loss.item() == pytest.approx(0.25625 - 0.5375, abs=1e-6)
    assert out.total.item() == pytest.approx(math.log(2) + 0.25625 - 0.5375 + mse, abs=1e-6)
    out.stop_loss.backward()
    assert stop_logits.grad[:, 0].tolist() == pytest.approx([0.16875, -0.009375, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        expected_stopping_loss(
            torch.zeros(2, 1), stop_logits, torch.zeros(3, 1), torch.zeros(3, 1, 2),
            torch.tensor([1]), torch.zeros(3, 1),
        )  # fmt: skip


def test_expected_stopping_loss_weights_the_classifier_by_where_it_stops() -> None:
    """p = (0.5, 0.375, 0.125) as above; step CEs log 2, log(1 + e), log(1 + 1/e); with
    h = 0.5 the weights are 0.5 / 3 + 0.5 p; h = 1: p alone (PonderNet); h = 0: the mean."""
    stop_logits = torch.tensor([[0.0], [math.log(3.0)], [2.0]])
    logits = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    ce = [math.log(2), math.log(1 + math.e), math.log(1 + 1 / math.e)]
    p = [0.5, 0.375, 0.125]
    for h in (0.0, 0.5, 1.0):
        out = expected_stopping_loss(
            torch.zeros(3, 1), stop_logits, torch.zeros(3, 1), logits, torch.tensor([1]),
            torch.zeros(3, 1), halting_share=h,
        )  # fmt: skip
        weights = [(1 - h) / 3 + h * q for q in p]
        expected = sum(w * c for w, c in zip(weights, ce))
        assert out.action_loss.item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="halting_share"):
        expected_stopping_loss(
            torch.zeros(3, 1), stop_logits, torch.zeros(3, 1), logits, torch.tensor([1]),
            torch.zeros(3, 1), halting_share=1.5,
        )  # fmt: skip
