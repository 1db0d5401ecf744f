"""The glimpse envs as TorchRL environments: one env, the native batched env, a rollout.

Shows:

* ``GymEnv("GlimpseMNIST-v0")``: one episode at a time, checked with
  ``torchrl.envs.utils.check_env_specs``;
* the native batched env, ``GymWrapper(gym.make_vec(id, num_envs=N, autoreset_mode=DISABLED))``:
  ``N`` episodes stepped by one call, batch size ``[N]``. TorchRL wants the autoreset
  ``DISABLED``: it resets the sub-envs itself, through ``reset(options={"reset_mask": ...})``.
  TorchRL's own ``GymEnv(id, num_envs=N)`` also passes ``check_env_specs`` (tested), but it
  does not use ``gym.make_vec``: it starts ``N`` worker processes (a Gymnasium
  ``AsyncVectorEnv`` of single envs, one process each) with Gymnasium's default
  ``NEXT_STEP`` autoreset, which TorchRL 0.14 handles poorly for any env (the last
  observation of an episode is lost and an extra reset step follows it); prefer the
  native env;
* reading ``is_success`` from the env's ``info`` into the tensordict;
* a rollout with a tiny (untrained) ``TensorDictModule`` policy: every episode is done
  (``terminated``) exactly at step ``n_glimpses``;
* steps per second of random-action rollouts, one env against the batched one.

The torch backend of the vector env (``backend="torch"``) is not used: ``GymWrapper`` hands
the env NumPy actions, and that backend takes torch tensors.

Run::

    export GLIMPSE_ENV_DATA=/path/to/mnist   # folder with the MNIST files
    python examples/torchrl_env.py --num-envs 64 --bench-steps 2000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Categorical, Composite
from torchrl.envs import EnvBase, GymEnv, GymWrapper, default_info_dict_reader
from torchrl.envs.utils import check_env_specs

import glimpse_env  # noqa: F401  (registers the ids)


class SuccessReader(default_info_dict_reader):
    """Copies ``info["is_success"]`` into the tensordict (False on steps without it).

    TorchRL's default reader expects array values (it reads ``.dtype``); the single env
    reports plain Python bools and ints, so the values are made arrays first.
    """

    def __init__(self, batch_size: torch.Size) -> None:
        spec = Categorical(2, shape=batch_size, dtype=torch.bool)
        super().__init__(["is_success"], spec=Composite(is_success=spec, shape=batch_size))

    def __call__(self, info_dict: dict[str, Any], tensordict: TensorDictBase) -> TensorDictBase:
        arrays = {key: np.asarray(info_dict[key]) for key in self.keys if key in info_dict}
        return super().__call__(arrays, tensordict)


def make_env(env_id: str, num_envs: int | None = None, **env_kwargs: Any) -> EnvBase:
    """A TorchRL env: one episode (``num_envs=None``) or ``num_envs`` stepped together.

    Args:
        env_id: a registered glimpse id.
        num_envs: ``None`` for ``GymEnv(env_id)``; else the native vector env
            (``gym.make_vec``) with the autoreset disabled, batch size ``[num_envs]``.
        env_kwargs: env arguments (``n_glimpses``, ``split``, ...).
    """
    if num_envs is None:
        env = GymEnv(env_id, **env_kwargs)
    else:
        envs = gym.make_vec(
            env_id,
            num_envs=num_envs,
            autoreset_mode=gym.vector.AutoresetMode.DISABLED,
            **env_kwargs,
        )
        env = GymWrapper(envs)
    return env.set_info_dict_reader(SuccessReader(env.batch_size))


class TinyPolicy(nn.Module):
    """Untrained linear policy: (glimpse, location) -> action in [-1, 1]^12."""

    def __init__(self, glimpse_numel: int, n_actions: int) -> None:
        super().__init__()
        self.linear = nn.Linear(glimpse_numel + 2, n_actions)

    def forward(self, glimpse: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        features = torch.cat([glimpse.flatten(-3), location], dim=-1)
        return torch.tanh(self.linear(features))


def make_policy(env: EnvBase) -> TensorDictModule:
    """A :class:`TinyPolicy` reading ``glimpse`` and ``location``, writing ``action``."""
    glimpse_numel = int(np.prod(env.observation_spec["glimpse"].shape[-3:]))
    n_actions = int(env.action_spec.shape[-1])
    return TensorDictModule(
        TinyPolicy(glimpse_numel, n_actions), in_keys=["glimpse", "location"], out_keys=["action"]
    )


def steps_per_second(env: EnvBase, steps: int) -> float:
    """Env transitions per second of a random-action rollout of ``steps`` calls."""
    env.rollout(8, break_when_any_done=False)  # warm up
    start = time.perf_counter()
    data = env.rollout(steps, break_when_any_done=False)
    elapsed = time.perf_counter() - start
    return data.numel() / elapsed


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="GlimpseMNIST-v0")
    parser.add_argument("--num-envs", type=int, default=8, help="batch of the native env")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per rollout")
    parser.add_argument("--n-glimpses", type=int, default=None, help="default: the id's own")
    parser.add_argument(
        "--bench-steps", type=int, default=0, help="rollout calls to time (0: no timing)"
    )
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {}
    if args.n_glimpses is not None:
        kwargs = {"n_glimpses": args.n_glimpses}
    torch.manual_seed(0)

    single = make_env(args.env_id, **kwargs)
    batched = make_env(args.env_id, num_envs=args.num_envs, **kwargs)
    n_glimpses = int(single.unwrapped.n_glimpses)  # GymEnv forwards unknown attributes
    results: dict[str, Any] = {"n_glimpses": n_glimpses}
    for name, env in (("single", single), ("batched", batched)):
        check_env_specs(env)
        policy = make_policy(env)
        data = env.rollout(args.episodes * n_glimpses, policy, break_when_any_done=False)
        done = data["next", "done"].squeeze(-1)
        print(f"{name}: batch size {tuple(env.batch_size)}, rollout {tuple(data.shape)}")
        for key in ("done", "terminated", "truncated"):
            flags = data["next", key].squeeze(-1)
            steps = sorted(set((flags.nonzero()[:, -1] + 1).tolist()))
            print(f"  {key} after steps {steps} (n_glimpses={n_glimpses})")
        success = data["next", "is_success"][done].float().mean().item()
        print(f"  is_success at episode ends: {success:.2f} (untrained policy; chance 0.10)")
        results[name] = data

    if args.bench_steps:
        single_sps = steps_per_second(single, args.bench_steps)
        batched_sps = steps_per_second(batched, args.bench_steps)
        print(
            f"random rollout, {args.env_id}: GymEnv {single_sps:,.0f} steps/s; native "
            f"make_vec num_envs={args.num_envs}: {batched_sps:,.0f} steps/s "
            f"({batched_sps / single_sps:.0f}x)"
        )
        results.update(single_sps=single_sps, batched_sps=batched_sps)
    single.close()
    batched.close()
    return results


if __name__ == "__main__":
    main()
