"""Playing a policy on a vector env: the one loop every evaluation goes through.

:func:`play_episodes` plays one episode in every sub-env; :func:`play_batches` plays batches
of them from a seeded reset. ``glimpse eval`` (:func:`agents.policy.evaluate_policy`), the
benchmark (:func:`glimpse_env.bench.evaluate`), training's validation and
``ReinforceTrainer.evaluate`` (:func:`agents.policy.evaluate_episodes`) and ``glimpse
render`` all use them. NumPy and Gymnasium only: a NumPy policy never imports torch.

A policy here is anything with ``initial_state(num_envs) -> state`` and
``act(obs, state, deterministic) -> (actions (N, 2 + C), state)`` on batched observations
(:class:`agents.policy.Policy`, :class:`glimpse_env.bench.BenchPolicy`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["Batch", "final_info_value", "play_batches", "play_episodes", "seeded_sampling"]

#: ``on_act(t, obs, actions) -> actions to send (or None: send these)``, called before each step.
OnAct = Callable[[int, Any, Any], Any]


def as_numpy(x: Any) -> np.ndarray:
    """An array-like (NumPy, or a torch tensor on any device) as a NumPy array."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def final_info_value(info: Mapping[str, Any], key: str) -> np.ndarray | None:
    """``info[key]`` of a terminal step where every sub-env has it, else None.

    Looks in ``info`` and, under ``SAME_STEP`` autoreset, in ``info["final_info"]``.
    """
    for source in (info, info.get("final_info")):
        if isinstance(source, Mapping) and key in source:
            mask = source.get(f"_{key}")
            if mask is not None and not bool(np.all(as_numpy(mask))):
                continue  # not set here (e.g. the same-step autoreset reports final_info)
            return as_numpy(source[key])
    return None


@contextlib.contextmanager
def seeded_sampling(policy: Any, seed: int, enabled: bool = True) -> Iterator[None]:
    """Within the block, the policy's sampled actions are a function of ``seed``.

    A policy with a ``seed_sampling(seed)`` method (e.g. :class:`agents.ram_policy.RAMPolicy`)
    is told the seed; if torch is imported (SB3 policies sample from torch's global
    generator), torch's global RNG is seeded with ``seed`` for the block and restored after
    it. Torch is never imported here.

    Args:
        policy: the policy about to act with ``deterministic=False``.
        seed: the evaluation seed.
        enabled: False: do nothing (deterministic evaluation draws nothing).
    """
    if not enabled:
        yield
        return
    torch = sys.modules.get("torch")
    with contextlib.ExitStack() as stack:
        if torch is not None:
            devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
            stack.enter_context(torch.random.fork_rng(devices=devices))
            torch.manual_seed(seed)
        seed_policy = getattr(policy, "seed_sampling", None)
        if callable(seed_policy):
            seed_policy(seed)
        yield


def play_episodes(
    policy: Any,
    envs: gym.vector.VectorEnv,
    obs: Any,
    deterministic: bool,
    on_act: OnAct | None = None,
) -> tuple[Any, dict[str, Any], np.ndarray, int]:
    """Play one episode in every sub-env from ``obs`` (they all end at the same step).

    Args:
        policy: the agent (its state starts fresh).
        envs: the vector env.
        obs: the episodes' first observation (from ``reset`` or the previous call).
        deterministic: the policy's deterministic actions (else sampled).
        on_act: called as ``on_act(t, obs, actions)`` after the policy chose step ``t``'s
            actions (``t = 0`` for the first glimpse); it may return the actions to send.

    Returns:
        ``(obs, info, returns, steps)`` of the final step: under same-step autoreset ``obs``
        already starts the next episodes and ``info["final_info"]`` reports the ended ones;
        ``returns`` (N,) float64 episode returns; ``steps`` the episodes' length.

    Raises:
        RuntimeError: if some sub-envs ended and others did not.
    """
    state = policy.initial_state(envs.num_envs)
    returns = np.zeros(envs.num_envs)
    for t in range(10**6):
        actions, state = policy.act(obs, state, deterministic)
        if on_act is not None:
            checked = on_act(t, obs, actions)
            actions = actions if checked is None else checked
        obs, reward, terminated, truncated, info = envs.step(actions)
        returns += as_numpy(reward)
        done = as_numpy(terminated) | as_numpy(truncated)
        if done.all():
            return obs, info, returns, t + 1
        if done.any():
            raise RuntimeError(
                f"at step {t + 1}, {int(done.sum())} of {done.size} sub-envs ended and the "
                "others did not: evaluation needs episodes of one fixed length"
            )
    raise RuntimeError("episodes did not end within 1,000,000 steps")


@dataclass
class Batch:
    """One batch of episodes, one per sub-env, as :func:`play_batches` played it.

    Attributes:
        index: the batch's number, from 0.
        start_info: the ``info`` of the episodes' first observation.
        success: (N,) bool, whether each episode's class was right (``is_success``; else a
            return above 0.5).
        returns: (N,) float episode returns.
        horizon: steps the episodes lasted.
        final_info: the ``info`` of the final step.
    """

    index: int
    start_info: dict[str, Any]
    success: np.ndarray
    returns: np.ndarray
    horizon: int
    final_info: dict[str, Any]


def play_batches(
    policy: Any,
    envs: gym.vector.VectorEnv,
    n_batches: int,
    *,
    deterministic: bool,
    seed: int | None,
    progress: bool = False,
    desc: str = "eval",
    on_act: OnAct | None = None,
) -> Iterator[Batch]:
    """The evaluation loop: ``n_batches`` batches of episodes from ``envs.reset(seed=seed)``.

    Under ``SAME_STEP`` autoreset each batch starts from the observation the previous one
    ended with; otherwise the envs are reset before each batch. Sampled actions are seeded
    by ``seed`` (:func:`seeded_sampling`). The progress bar is closed (its line ended) also
    when the policy raises, so an error message starts on a line of its own.

    Args:
        policy: the agent.
        envs: the vector env.
        n_batches: batches to play.
        deterministic: the policy's deterministic actions (else sampled).
        seed: reset seed (and sampling seed; 0 when None).
        progress: show a progress bar (tqdm).
        desc: the bar's label.
        on_act: passed to :func:`play_episodes`.

    Yields:
        One :class:`Batch` per batch.
    """
    mode = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    same_step = mode in (
        gym.vector.AutoresetMode.SAME_STEP,
        gym.vector.AutoresetMode.SAME_STEP.value,
    )
    obs, info = envs.reset(seed=seed)
    with (
        _progress(n_batches, progress, desc) as bar,
        seeded_sampling(policy, seed or 0, enabled=not deterministic),
    ):
        for b in range(n_batches):
            if b and not same_step:
                obs, info = envs.reset()
            start_info = info
            obs, info, returns, steps = play_episodes(policy, envs, obs, deterministic, on_act)
            success = final_info_value(info, "is_success")
            success = returns > 0.5 if success is None else success.astype(bool)
            yield Batch(b, start_info, success, returns, steps, info)
            bar.update(1)


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return contextlib.nullcontext(_NoBar())
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch")
