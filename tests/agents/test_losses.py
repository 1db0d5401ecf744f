"""The losses (agents/losses.py) against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from agents.losses import expected_class_reward, hybrid_loss, reinforce_loss

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
