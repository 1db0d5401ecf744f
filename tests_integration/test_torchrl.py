"""TorchRL: the envs pass ``check_env_specs`` one at a time and batched, and roll out right."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torchrl.envs import GymEnv
from torchrl.envs.utils import check_env_specs

from glimpse_env import ENV_IDS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "torchrl_env.py"
_spec = importlib.util.spec_from_file_location("torchrl_env", EXAMPLE)
torchrl_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(torchrl_env)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("num_envs", [None, 4])
def test_check_env_specs(env_id: str, num_envs: int | None) -> None:
    env = torchrl_env.make_env(env_id, num_envs=num_envs, n_glimpses=2)
    assert env.batch_size == (torch.Size([]) if num_envs is None else torch.Size([num_envs]))
    check_env_specs(env, seed=0)
    env.close()


def test_torchrl_own_batched_gym_env_passes_check_env_specs() -> None:
    """``GymEnv(id, num_envs=N)`` (TorchRL's AsyncVectorEnv of single envs) failed with
    ``KeyError: 'image_index'``: the single env now reports it at every step."""
    env = GymEnv("glimpse_env:GlimpseMNIST-v0", num_envs=2, n_glimpses=2)
    try:
        assert env.batch_size == torch.Size([2])
        check_env_specs(env, seed=0)
        data = env.rollout(4, break_when_any_done=False)
        assert data["next", "image_index"].shape[:2] == (2, 4)
    finally:
        env.close()


def test_rollouts_end_at_n_glimpses() -> None:
    """Default ``n_glimpses`` (7): every episode terminates exactly at step 7, and no
    episode is truncated (the ids register no time limit)."""
    out = torchrl_env.main(["--num-envs", "4", "--episodes", "3"])
    n = out["n_glimpses"]
    assert n == 7
    for name, batch in (("single", ()), ("batched", (4,))):
        data = out[name]
        assert data.shape == (*batch, 3 * n)  # one entry per transition
        assert data.numel() == math.prod(batch) * 3 * n
        assert data["glimpse"].shape == (*batch, 3 * n, 1, 8, 8)
        assert data["action"].shape == (*batch, 3 * n, 12)
        ends = torch.zeros(3 * n, dtype=torch.bool)
        ends[n - 1 :: n] = True
        expected = ends.expand(*batch, 3 * n)
        assert torch.equal(data["next", "done"].squeeze(-1), expected), name
        assert torch.equal(data["next", "terminated"].squeeze(-1), expected), name
        assert not data["next", "truncated"].any(), name
        # Sparse reward: 1 exactly where the episode ended with the right class.
        reward = data["next", "reward"].squeeze(-1)
        success = data["next", "is_success"]
        assert torch.equal(reward > 0.5, success), name
        assert not success[~expected].any(), name


def test_steps_per_second_runs() -> None:
    out = torchrl_env.main(["--num-envs", "16", "--n-glimpses", "2", "--bench-steps", "20"])
    assert out["single_sps"] > 0 and out["batched_sps"] > 0
