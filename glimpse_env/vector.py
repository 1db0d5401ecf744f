"""Native batched vector env: all sub-envs stepped by one call of the batched sensor.

``gym.make_vec(id, num_envs=N)`` returns a :class:`GlimpseVectorEnv`. It runs the same
batched episode logic as the single env (:class:`glimpse_env.envs.GlimpseEnv`), on arrays
of ``N`` episodes, with no Python loop over sub-envs in ``step`` or ``reset``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from glimpse_env.envs import EpisodeBatch, GlimpseEnv, clip_locations, validate_actions
from glimpse_env.sensor import SummedAreaTable, _gather_glimpses, _lazy_table

_T = TypeVar("_T")

BACKENDS = ("numpy", "torch")
AUTORESET_MODES = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)
#: Fewest canvas pixels (sub-envs x canvas area) a thread is given (see ``num_threads``).
MIN_SHARD_PIXELS = 2**20


class GlimpseVectorEnv(VectorEnv):
    """``num_envs`` glimpse episodes stepped together; see :class:`GlimpseEnv` for the task.

    Observations, actions, rewards and the episode timing are those of the single env, with
    a leading batch axis: ``observation["glimpse"]`` is float32 ``(N, k, g, g)``,
    ``observation["location"]`` float32 ``(N, 2)``, actions float ``(N, 2 + 10)``.

    ## Seeding

    ``reset(seed=s)`` gives sub-env ``i`` exactly the episodes (digits, canvases, start
    locations, hence observations and rewards for the same actions) that
    ``gym.make(id).reset(seed=s + i)`` and the resets after it give. With ``sequential=True``
    sub-env ``i`` shows digits ``i, i + N, i + 2N, ...``, so one batch of episodes covers
    digits ``bN .. bN + N - 1`` of the split in order.

    ## Autoreset

    ``autoreset_mode`` is declared in ``metadata["autoreset_mode"]`` and follows Gymnasium
    1.x exactly (tested against ``SyncVectorEnv``):

    * ``SAME_STEP`` (default; what SB3 and fixed-horizon trainers want): the step that ends
      an episode already returns the first observation of the next one;
      ``info["final_obs"]`` (object array of per-env dicts) and ``info["final_info"]``
      (with ``label``, ``prediction``, ``is_success``) hold the end of the old one.
    * ``NEXT_STEP``: the step that ends an episode returns its last observation and
      ``label``/``prediction``/``is_success`` in ``info``; the next step resets those
      sub-envs (their actions are ignored, reward 0).

    Infos are batched the Gymnasium way: an array per key plus a boolean ``_key`` mask.
    ``reset`` and every reset inside ``step`` report ``image_index``.

    ## Backends

    ``backend="numpy"`` (default) returns NumPy arrays. ``backend="torch"`` keeps the
    dataset, canvases and glimpses on ``device`` (e.g. ``"cuda"``) and returns torch tensors
    there (rewards float32, terminations bool; info arrays are tensors too); actions must
    be floating-point torch tensors on that device. Only the random draws of new episodes
    (a few numbers each) are made on the host. Both backends give the same observations for
    the same seed (to float tolerance).

    ## Arguments

    ``env_cls`` (the variant; :func:`gymnasium.make_vec` fills it in), ``num_envs``,
    ``max_episode_steps`` (truncate after that many steps, as Gymnasium's ``TimeLimit``:
    at ``n_glimpses`` both flags are set; truncated episodes report no result),
    ``backend``, ``device``, ``autoreset_mode``, ``num_threads``, and every keyword
    argument of the single env (``split``, ``n_glimpses``, ``glimpse_size``, ``n_scales``,
    ``start``, ``reward``, ``sequential``, ``data_dir``, ``render_mode``). Unknown ones
    raise ``TypeError``.

    ## Threads

    ``num_threads=1`` (default) does everything in the calling thread. ``num_threads=T``
    (NumPy backend) splits the ``N`` sub-envs into up to ``T`` contiguous shards and draws,
    tables and glimpses each shard in its own thread (NumPy releases the GIL in the array
    work). A shard gets at least ``MIN_SHARD_PIXELS`` (2**20) canvas pixels, since handing
    a small shard to another thread costs more than it saves: threads only start for large
    batches of large canvases (cluttered 100x100 from ``N = 210``, 60x60 from ``N = 583``,
    28x28 from ``N = 2,675`` for two threads); :attr:`num_threads` says how many run. Use it
    on a machine with ``T`` idle cores. The results are identical, bit for bit, to
    ``num_threads=1``.

    ## Version History

    * v0: Initial version.
    """

    def __init__(
        self,
        env_cls: type[GlimpseEnv],
        num_envs: int,
        max_episode_steps: int | None = None,
        backend: str = "numpy",
        device: str | torch.device | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        num_threads: int = 1,
        **env_kwargs: Any,
    ) -> None:
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "numpy" and device not in (None, "cpu"):
            raise ValueError(f'device={device!r} needs backend="torch"')
        if (
            isinstance(num_threads, bool)
            or not isinstance(num_threads, (int, np.integer))
            or num_threads < 1
        ):
            raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
        if backend == "torch" and num_threads != 1:
            raise ValueError(
                'num_threads applies to backend="numpy" (torch runs its own threads), '
                f"got num_threads={num_threads}"
            )
        mode = AutoresetMode(autoreset_mode)
        if mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode must be one of {AUTORESET_MODES}, got {mode}")
        #: The single env whose batched methods this vector env runs (never stepped itself).
        self.task = env_cls(**env_kwargs)
        self.num_envs = int(num_envs)
        self.backend = backend
        self.device = torch.device(device or "cpu") if backend == "torch" else None
        if self.device is not None:
            self.task.to_backend(self.device)
        self.autoreset_mode = mode
        self.metadata = {**env_cls.metadata, "autoreset_mode": mode}
        self.render_mode = self.task.render_mode
        self.max_episode_steps = max_episode_steps
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool) or int(max_episode_steps) < 1
        ):
            raise ValueError(
                f"max_episode_steps must be a positive integer, got {max_episode_steps!r}"
            )

        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._action_shape = (self.num_envs, *self.single_action_space.shape)

        n = self.num_envs
        self._keys = np.zeros(n, dtype=np.uint64)
        self._episodes = np.zeros(n, dtype=np.int64)
        self._offsets = np.arange(n, dtype=np.int64)
        # Every episode lasts the same number of steps and all sub-envs reset together, so
        # one step counter serves them all.
        self._t = 0
        self._batch: EpisodeBatch | None = None
        self._locations: Any = None
        self._needs_reset = False
        self._path: list[Any] = []  # locations (N, 2) per step, for rendering
        #: Contiguous sub-env shards, one per thread, and the tables of each shard.
        bounds = np.linspace(0, n, self._shard_count(int(num_threads)) + 1).astype(int)
        self._shards = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._shard_tables: list[SummedAreaTable] = []
        self._pool = (
            ThreadPoolExecutor(len(self._shards) - 1, thread_name_prefix="glimpse-env")
            if len(self._shards) > 1
            else None
        )

    def _shard_count(self, num_threads: int) -> int:
        """Shards for at most ``num_threads`` threads: none smaller than
        :data:`MIN_SHARD_PIXELS` canvas pixels (smaller ones lose more to the hand-over
        between threads than they gain)."""
        pixels = self.num_envs * self.task.canvas_size**2
        return max(1, min(num_threads, pixels // MIN_SHARD_PIXELS))

    @property
    def num_threads(self) -> int:
        """Threads that step the sub-envs (one shard of sub-envs each; at most the
        ``num_threads`` asked for)."""
        return len(self._shards)

    # ------------------------------------------------------------------ helpers
    @property
    def canvases(self) -> np.ndarray:
        """uint8 ``(N, H, W)`` canvases of the current episodes, on the host (for pictures)."""
        if self._batch is None:
            raise ResetNeeded("No episodes yet: call reset() first.")
        return _host(self._batch.canvases)

    @property
    def layout(self) -> dict[str, np.ndarray]:
        """How the current episodes' canvases were composed, on the host: the task's layout
        arrays (e.g. ``digit_pos``, int64 ``(N, 2)``, top-left ``(row, col)`` of the digit
        on translated and cluttered canvases; empty for plain MNIST). With the same-step
        autoreset the episodes change at the step that ends them."""
        if self._batch is None:
            raise ResetNeeded("No episodes yet: call reset() first.")
        return {name: _host(value) for name, value in self._batch.layout.items()}

    @property
    def env_cls(self) -> type[GlimpseEnv]:
        """The single-env class this vector env batches."""
        return type(self.task)

    def _map_shards(self, work: Callable[[int], _T]) -> list[_T]:
        """``work(i)`` for every shard ``i``, each in its own thread (shard 0 in this one)."""
        if self._pool is None:
            return [work(0)]
        futures = [self._pool.submit(work, i) for i in range(1, len(self._shards))]
        first = work(0)
        return [first, *(future.result() for future in futures)]

    def _draw(self, i: int) -> EpisodeBatch:
        shard = self._shards[i]
        keys, episodes, offsets = self._keys[shard], self._episodes[shard], self._offsets[shard]
        return self.task.draw_episodes(keys, episodes, offsets, self.num_envs)

    def _new_episodes(self) -> dict[str, Any]:
        """Start the next episode of every sub-env; returns the reset info."""
        parts = self._map_shards(self._draw)
        batch = parts[0] if len(parts) == 1 else _concatenate(parts)
        self._shard_tables = [part.tables for part in parts]
        self._batch, self._locations, self._t = batch, batch.starts, 0
        self._needs_reset = False
        if self.render_mode:
            self._path = [batch.starts]
        index = batch.image_indices
        present = np.ones(self.num_envs, dtype=bool)
        if self.backend == "torch":
            return {
                "image_index": torch.as_tensor(index, device=self.device),
                "_image_index": torch.as_tensor(present, device=self.device),
            }
        return {"image_index": index, "_image_index": present}

    def _observe(self, locations: Any) -> dict[str, Any]:
        """Batched observation at ``locations (N, 2)``, shard by shard."""
        if self._pool is None:
            return self.task.observe(self._batch.tables, locations)
        task = self.task
        g, k = task.glimpse_size, task.n_scales
        glimpses = np.empty((self.num_envs, k, g, g), dtype=np.float32)

        def work(i: int) -> None:
            shard = self._shards[i]
            _gather_glimpses(self._shard_tables[i], locations[shard], g, k, out=glimpses[shard])

        self._map_shards(work)
        return {"glimpse": glimpses, "location": locations}

    def _validate(self, actions: Any) -> Any:
        if self.backend == "numpy":
            if isinstance(actions, torch.Tensor):
                raise TypeError("backend='numpy' takes NumPy actions, got a torch tensor")
            return validate_actions(actions, self._action_shape)
        if not isinstance(actions, torch.Tensor):
            raise TypeError(
                f"backend='torch' takes actions as a torch tensor on {self.device}, "
                f"got {type(actions).__name__}"
            )
        if actions.device != self.device:
            raise ValueError(f"actions must be on device {self.device}, got {actions.device}")
        if not actions.is_floating_point():
            raise TypeError(f"actions must be a floating-point tensor, got {actions.dtype}")
        if tuple(actions.shape) != self._action_shape:
            raise ValueError(
                f"actions must have shape {self._action_shape} (num_envs, location x, y, "
                f"then one score per class), got {tuple(actions.shape)}"
            )
        if not bool(torch.isfinite(actions).all()):
            raise ValueError("actions must be finite, got NaN or infinity")
        return actions

    def _flags(self, value: bool) -> Any:
        if self.backend == "torch":
            return torch.full((self.num_envs,), value, dtype=torch.bool, device=self.device)
        return (np.ones if value else np.zeros)(self.num_envs, dtype=bool)  # faster than full

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset every sub-env.

        Args:
            seed: ``s`` seeds sub-env ``i`` with ``s + i``; a list gives one seed per sub-env;
                ``None`` continues with each sub-env's next episode (the first time: seeds
                drawn from entropy).
            options: not supported (all sub-envs always reset together); must be ``None``.

        Returns:
            Batched first observations and ``{"image_index": (N,), "_image_index": (N,)}``.
        """
        if options:
            raise ValueError(
                f"GlimpseVectorEnv.reset takes no options (all sub-envs reset together), got {options}"
            )
        super().reset(seed=seed if isinstance(seed, int) else None)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != self.num_envs:
                raise ValueError(f"need one seed per sub-env ({self.num_envs}), got {len(seed)}")
            self._keys = np.concatenate([self.task.new_keys(int(s), 1) for s in seed])
            self._episodes[:] = 0
        elif seed is not None:
            self._keys = self.task.new_keys(seed, self.num_envs)
            self._episodes[:] = 0
        elif self._batch is None:
            self._keys = self.np_random.integers(0, 2**63, self.num_envs, dtype=np.uint64)
            self._episodes[:] = 0
        else:
            self._episodes += 1
        info = self._new_episodes()
        return self._observe(self._locations), info

    def get_state(self) -> dict[str, Any]:
        """The episode stream's position, for exact resumption of a training run.

        Only valid at an episode boundary (after ``reset`` or an autoreset step).
        """
        if self._batch is None or self._t != 0 or self._needs_reset:
            raise RuntimeError("get_state() is only defined at the start of episodes")
        return {
            "keys": self._keys.copy(),
            "episodes": self._episodes.copy(),
            "np_random": self.np_random.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Restore :meth:`get_state` output and return the current episodes' observations.

        The episodes are drawn again from the same keys and episode numbers, so the
        observations equal those the env had returned when the state was taken.
        """
        self._keys = np.asarray(state["keys"], dtype=np.uint64).copy()
        self._episodes = np.asarray(state["episodes"], dtype=np.int64).copy()
        self.np_random.bit_generator.state = state["np_random"]
        self._new_episodes()
        return self._observe(self._locations)

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        """Step every sub-env with ``actions (N, 2 + C)``; see the class docstring."""
        if self._batch is None:
            raise ResetNeeded("Cannot call step() before reset(): call envs.reset() first.")
        actions = self._validate(actions)
        if self._needs_reset:  # NEXT_STEP: this step only resets (actions ignored)
            self._episodes += 1
            info = self._new_episodes()
            obs = self._observe(self._locations)
            no = self._flags(False)
            return obs, self._zero_rewards(), no, self._flags(False), info
        obs, rewards, terminated, truncated, predictions = self._advance(actions)
        if not (terminated or truncated):
            return obs, rewards, self._flags(False), self._flags(False), {}
        final_info = self._final_info(predictions, terminated)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = True
            return obs, rewards, self._flags(terminated), self._flags(truncated), final_info
        final_obs = np.empty(self.num_envs, dtype=object)
        final_obs[:] = [
            {"glimpse": g, "location": loc}
            for g, loc in zip(list(obs["glimpse"]), list(obs["location"]))
        ]
        self._episodes += 1
        info = self._new_episodes()
        obs = self._observe(self._locations)
        done = np.ones(self.num_envs, dtype=bool)
        info.update(
            final_obs=final_obs, _final_obs=done, final_info=final_info, _final_info=done.copy()
        )
        return obs, rewards, self._flags(terminated), self._flags(truncated), info

    def _advance(self, actions: Any) -> tuple[dict[str, Any], Any, bool, bool, Any]:
        """Move every sensor to its action's location; returns obs, rewards, flags, predictions."""
        locations = clip_locations(actions)
        self._locations = locations
        self._t += 1
        terminated = self._t >= self.task.n_glimpses
        truncated = self.max_episode_steps is not None and self._t >= self.max_episode_steps
        rewards, predictions = self.task.rewards(actions[:, 2:], self._batch.labels, terminated)
        obs = self._observe(locations)
        if self.render_mode:
            self._path.append(locations)
        return obs, rewards, terminated, truncated, predictions

    def _zero_rewards(self) -> Any:
        if self.backend == "torch":
            return torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        return np.zeros(self.num_envs)

    def _final_info(self, predictions: Any, terminated: bool) -> dict[str, Any]:
        """``label``/``prediction``/``is_success`` of episodes that just terminated (all of
        them); empty when they were truncated before their last glimpse, as for a single env
        under ``TimeLimit``."""
        if not terminated:
            return {}
        labels = self._batch.labels
        mask = self._flags(True)
        success = predictions == labels
        return {
            "label": labels,
            "_label": mask,
            "prediction": predictions,
            "_prediction": mask.clone() if self.backend == "torch" else mask.copy(),
            "is_success": success,
            "_is_success": mask.clone() if self.backend == "torch" else mask.copy(),
        }

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per sub-env (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn('render() called without render_mode; use render_mode="rgb_array".')
            return None
        if self._batch is None:
            raise ResetNeeded("Cannot call render() before reset().")
        from glimpse_env.rendering import render_frame

        canvases = _host(self._batch.canvases)
        paths = np.stack([_host(p) for p in self._path], axis=1)  # (N, t + 1, 2)
        g, k = self.task.glimpse_size, self.task.n_scales
        return tuple(render_frame(canvases[i], paths[i], g, k) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self.task.close()


def _concatenate(parts: list[EpisodeBatch]) -> EpisodeBatch:
    """One batch of the shards' episodes, in order (NumPy; the tables are the shards')."""
    canvases = np.concatenate([part.canvases for part in parts])
    return EpisodeBatch(
        canvases=canvases,
        tables=_lazy_table(canvases),
        labels=np.concatenate([part.labels for part in parts]),
        image_indices=np.concatenate([part.image_indices for part in parts]),
        starts=np.concatenate([part.starts for part in parts]),
        layout={
            name: np.concatenate([part.layout[name] for part in parts]) for name in parts[0].layout
        },
    )


def _host(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


__all__ = ["AUTORESET_MODES", "BACKENDS", "MIN_SHARD_PIXELS", "GlimpseVectorEnv"]
