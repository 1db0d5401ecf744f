"""Playing a policy on a vector env: the one loop every evaluation goes through.

:func:`play_episodes` plays one episode in every sub-env; :func:`play_batches` plays batches
of them from a seeded reset. ``glimpse eval`` (:func:`agents.policy.evaluate_policy`), the
benchmark (:func:`glimpse_env.bench.evaluate`), training's validation and
``ReinforceTrainer.evaluate`` (:func:`agents.policy.evaluate_episodes`) and ``glimpse
render`` all use them. NumPy and Gymnasium only: a NumPy policy never imports torch.

A policy here is anything with ``initial_state(num_envs) -> state`` and
``act(obs, state, deterministic) -> (actions (N, 2 + C), state)`` on batched observations
(:class:`agents.policy.Policy`, :class:`glimpse_env.bench.BenchPolicy`). A policy with a
``bind_env(envs)`` method is given the vector env before each batch of episodes (the
oracle location heuristic reads the digits' positions there).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = [
    "Batch",
    "final_info_value",
    "gather_ends",
    "play_batches",
    "play_episodes",
    "seeded_sampling",
]

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
) -> tuple[Any, dict[str, Any], np.ndarray, np.ndarray]:
    """Play one episode in every sub-env from ``obs``.

    Sub-envs may end at different steps (the adaptive envs, where the policy stops): the
    loop goes on until every sub-env has ended once. A sub-env that ended is still stepped
    (a vector env steps them all); what it does afterwards is not counted.

    Args:
        policy: the agent (its state starts fresh).
        envs: the vector env.
        obs: the episodes' first observation (from ``reset`` or the previous call).
        deterministic: the policy's deterministic actions (else sampled).
        on_act: called as ``on_act(t, obs, actions)`` after the policy chose step ``t``'s
            actions (``t = 0`` for the first glimpse); it may return the actions to send.
            With episodes of different lengths it also sees the steps after a sub-env's
            end: use the returned ``lengths`` to leave them out.

    Returns:
        ``(obs, info, returns, lengths)``: the last step's observation (under same-step
        autoreset it already starts the next episodes when they all ended together), the
        info of the episodes' ends (the final step's own ``info`` when they all ended
        together, ``info["final_info"]`` then reporting them under same-step autoreset;
        otherwise every end key gathered from the step where each sub-env ended, with its
        ``_key`` mask), the ``(N,)`` float64 returns and the ``(N,)`` int64 lengths.
    """
    n = envs.num_envs
    disabled = _autoreset_mode(envs) == gym.vector.AutoresetMode.DISABLED
    bind = getattr(policy, "bind_env", None)
    if callable(bind):  # a policy that reads the env it acts on (the oracle locations)
        bind(envs)
    state = policy.initial_state(n)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    ends: dict[str, Any] = {}
    for t in range(10**6):
        actions, state = policy.act(obs, state, deterministic)
        if on_act is not None:
            checked = on_act(t, obs, actions)
            actions = actions if checked is None else checked
        obs, reward, terminated, truncated, info = envs.step(actions)
        running = lengths == 0
        returns += np.where(running, as_numpy(reward), 0.0)
        ended = as_numpy(terminated) | as_numpy(truncated)
        done = ended & running
        if done.all():  # every episode ended at this step
            return obs, info, returns, np.full(n, t + 1, dtype=np.int64)
        if done.any():
            lengths[done] = t + 1
            gather_ends(ends, info, done)
            if (lengths > 0).all():
                return obs, ends, returns, lengths
        if disabled and ended.any():  # nothing resets by itself: keep every sub-env going
            obs, _ = envs.reset(options={"reset_mask": ended})
    raise RuntimeError("episodes did not end within 1,000,000 steps")


def gather_ends(ends: dict[str, Any], info: Mapping[str, Any], done: np.ndarray) -> None:
    """Copy into ``ends`` every info entry the sub-envs ``done`` set at their end (from
    ``info["final_info"]`` under same-step autoreset, else ``info``)."""
    source = info.get("final_info", info) if isinstance(info.get("final_info"), Mapping) else info
    for key, value in source.items():
        if key.startswith("_") or f"_{key}" not in source or isinstance(value, Mapping):
            continue
        values, mask = as_numpy(value), as_numpy(source[f"_{key}"]).astype(bool) & done
        if key not in ends:
            ends[key] = np.zeros_like(values)
            ends[f"_{key}"] = np.zeros(len(done), dtype=bool)
        ends[key][mask] = values[mask]
        ends[f"_{key}"] |= mask


@dataclass
class Batch:
    """One batch of episodes, one per sub-env, as :func:`play_batches` played it.

    Attributes:
        index: the batch's number, from 0.
        start_info: the ``info`` of the episodes' first observation.
        success: (N,) bool, whether each episode's class was right (``is_success``; else a
            return above 0.5).
        returns: (N,) float episode returns.
        lengths: (N,) int64 steps each episode lasted.
        final_info: the ``info`` of the episodes' ends (see :func:`play_episodes`).
    """

    index: int
    start_info: dict[str, Any]
    success: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    final_info: dict[str, Any]

    @property
    def horizon(self) -> int:
        """Steps the longest episode lasted (every episode's, on a fixed-length env)."""
        return int(self.lengths.max())


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
    ended with; otherwise the envs are reset before each batch. When the episodes of a
    batch ended at different steps (adaptive envs), every sub-env goes on with the episode
    after that batch's, as if they had ended together: the native vector env is moved
    there with ``get_state``/``set_state`` (other vector envs raise ``RuntimeError``). Sampled actions are seeded
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
    same_step = _autoreset_mode(envs) == gym.vector.AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=seed)
    with (
        _progress(n_batches, progress, desc) as bar,
        seeded_sampling(policy, seed or 0, enabled=not deterministic),
    ):
        uniform, start = True, None
        for b in range(n_batches):
            if b and not uniform:
                obs, info = _next_episodes(envs, start)
            elif b and not same_step:
                obs, info = envs.reset()
            start, start_info = _episode_state(envs), info
            obs, info, returns, lengths = play_episodes(policy, envs, obs, deterministic, on_act)
            uniform = bool((lengths == lengths[0]).all())
            success = final_info_value(info, "is_success")
            success = returns > 0.5 if success is None else success.astype(bool)
            yield Batch(b, start_info, success, returns, lengths, info)
            bar.update(1)


def _autoreset_mode(envs: gym.vector.VectorEnv) -> gym.vector.AutoresetMode:
    """The vector env's autoreset mode (Gymnasium's default when it declares none)."""
    mode = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    return gym.vector.AutoresetMode(mode)


def _episode_state(envs: gym.vector.VectorEnv) -> dict[str, Any] | None:
    """Where the native vector env's episode streams are at a batch start (None for other
    vector envs)."""
    get_state = getattr(envs.unwrapped, "get_state", None)
    return get_state() if callable(get_state) else None


def _next_episodes(
    envs: gym.vector.VectorEnv, start: dict[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """Start every sub-env's episode after the one it began at ``start``."""
    if start is None:
        raise RuntimeError(
            "the sub-envs ended their episodes at different steps: play_batches can only "
            "start the next batch where it belongs on glimpse_env's native vector env "
            "(gym.make_vec of a glimpse id)"
        )
    base = envs.unwrapped
    obs = base.set_state({**start, "episodes": start["episodes"] + 1})
    index = base.image_indices
    return obs, {"image_index": index, "_image_index": np.ones(len(index), dtype=bool)}


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return contextlib.nullcontext(_NoBar())
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch")
