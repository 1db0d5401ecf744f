"""Native batched vector env: all sub-envs stepped by one call of the batched sensor.

``gym.make_vec(id, num_envs=N)`` returns a :class:`GlimpseVectorEnv`. It runs the same
batched episode logic as the single env (:class:`glimpse_env.envs.GlimpseEnv`), on arrays
of ``N`` episodes, with no Python loop over sub-envs in ``step`` or ``reset``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from glimpse_env import _xp
from glimpse_env.actions import unpack_action
from glimpse_env.envs import (
    ClutteredMNIST100Env,
    ClutteredMNISTEnv,
    EpisodeBatch,
    GlimpseEnv,
    GlimpseMNISTEnv,
    TranslatedMNISTEnv,
    action_layout,
    clip_locations,
    validate_actions,
    validate_seed,
)
from glimpse_env.sensor import SummedAreaTable, _gather_glimpses, _lazy_table

if TYPE_CHECKING:
    import torch

_T = TypeVar("_T")

BACKENDS = ("numpy", "torch")
#: Every autoreset mode of Gymnasium 1.x; the first is the default (Gymnasium's own).
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)
#: Info keys of every ``reset`` and ``step`` (each with its ``_key`` mask), and the result
#: keys, which are set only where an episode's class was judged.
INFO_KEYS = ("image_index", "label", "prediction", "is_success")
RESULT_KEYS = INFO_KEYS[1:]
#: The extra result key of ``stop="action"`` envs: the glimpses each ended episode took.
STOP_RESULT_KEYS = (*RESULT_KEYS, "glimpses")
#: Fewest canvas pixels (sub-envs x canvas area) a thread is given (see ``num_threads``).
MIN_SHARD_PIXELS = 2**20


class GlimpseVectorEnv(VectorEnv):
    """``num_envs`` glimpse episodes stepped together; see :class:`GlimpseEnv` for the task.

    Observations, actions, rewards and the episode timing are those of the single env, with
    a leading batch axis: ``observation["glimpse"]`` is float32 ``(N, k, g, g)``,
    ``observation["location"]`` float32 ``(N, 2)``, actions float ``(N, 2 + 10)`` (``(N, 13)``
    with ``stop="action"``).
    ``gym.make_vec(id, num_envs=N)`` returns the variant's subclass (e.g.
    :class:`GlimpseMNISTVectorEnv`); any other Gymnasium vector env of the single env
    (``SyncVectorEnv``, ``AsyncVectorEnv``) gives the same transitions, only slower.

    ## Seeding

    ``reset(seed=s)`` gives sub-env ``i`` exactly the episodes (digits, canvases, start
    locations, hence observations and rewards for the same actions) that
    ``gym.make(id).reset(seed=s + i)`` and the resets after it give. With ``sequential=True``
    sub-env ``i`` shows digits ``i, i + N, i + 2N, ...``, so one batch of episodes covers
    digits ``bN .. bN + N - 1`` of the split in order.

    ## Autoreset

    ``autoreset_mode`` is declared in ``metadata["autoreset_mode"]`` and follows Gymnasium
    1.x exactly (each mode is tested transition by transition against ``SyncVectorEnv``):

    * ``NEXT_STEP`` (default, Gymnasium's): the step that ends an episode returns its last
      observation and ``label``/``prediction``/``is_success`` in ``info``; the next step
      resets those sub-envs (their actions are ignored, reward 0, both flags False).
    * ``SAME_STEP`` (what SB3's ``VecEnv`` and fixed-horizon trainers want): the step that
      ends an episode already returns the first observation of the next one;
      ``info["final_obs"]`` (object array of per-env dicts) and ``info["final_info"]``
      (with ``label``, ``prediction``, ``is_success``) hold the end of the old one.
    * ``DISABLED``: nothing resets by itself; after an episode ends, call ``reset()`` (or
      ``reset(options={"reset_mask": mask})``) before the next ``step``.

    With ``stop="never"`` every episode lasts ``n_glimpses`` steps, so the sub-envs run in
    lock-step and end together. With ``stop="action"`` (the adaptive ids) each sub-env's
    episode ends when its own stop score says so: the sub-envs end at different steps, and
    each mode above applies to the sub-envs that ended (``NEXT_STEP`` resets them on their
    next step while the others go on; ``SAME_STEP`` resets them in the step that ended them;
    ``DISABLED`` raises ``ResetNeeded`` on a step before
    ``reset(options={"reset_mask": ended})`` has reset them). A partial ``reset_mask``
    resets only the sub-envs it selects, in every mode.

    ## Info

    Batched the Gymnasium way: an array per key plus a boolean ``_key`` mask saying which
    sub-envs set it. Every ``reset`` and ``step`` returns the same keys, so libraries that
    fix their info layout at reset (TorchRL) can read every step:

    | key | dtype | set (mask True) where |
    |---|---|---|
    | ``image_index`` | int64 | always: the index of the current episode's digit in its split |
    | ``label``, ``prediction`` | int64 | an episode ended at its last glimpse (true class, argmax of the scores) |
    | ``is_success`` | bool | as ``label``: whether the prediction was right |
    | ``glimpses`` | int64 | only with ``stop="action"``, as ``label``: glimpses the episode took |

    Unset entries hold 0 / False. These are the single env's info keys (it returns
    ``image_index`` at every step, the rest at the last). With ``SAME_STEP`` the step that
    ends the episodes also has ``final_obs`` (object array of their last observations) and
    ``final_info`` (their ``image_index`` and result), as Gymnasium's own vector envs do. An
    episode truncated by ``max_episode_steps`` before its last glimpse has no result.

    ## Backends

    ``backend="numpy"`` (default) returns NumPy arrays and never imports torch.
    ``backend="torch"`` keeps the dataset, canvases and glimpses on ``device`` (e.g.
    ``"cuda"``) and returns torch tensors there (rewards float32, terminations bool; info
    arrays are tensors too); actions must be floating-point torch tensors on that device.
    Only the random draws of new episodes (a few numbers each) are made on the host. Both
    backends give the same observations for the same seed (to float tolerance).

    ## Arguments

    ``env_cls`` (the variant; the per-variant subclasses fill it in), ``num_envs``,
    ``max_episode_steps`` (truncate after that many steps, as Gymnasium's ``TimeLimit``:
    at ``n_glimpses`` both flags are set; truncated episodes report no result),
    ``backend``, ``device``, ``autoreset_mode``, ``num_threads``, and every keyword
    argument of the single env (``split``, ``n_glimpses``, ``glimpse_size``, ``n_scales``,
    ``start``, ``reward``, ``sequential``, ``data_dir``, ``render_mode``, ``stop``,
    ``glimpse_cost``, ``max_glimpses``). Unknown ones raise ``TypeError``.

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

    * v0: Initial version. Since glimpse-env 0.2: ``NEXT_STEP`` is the default autoreset
      mode (it was ``SAME_STEP``), ``DISABLED`` is supported, and every call returns the
      same info keys (``image_index`` at every step). Since glimpse-env 0.3: sub-envs end
      at different steps with ``stop="action"``, and a partial ``reset_mask`` is accepted.
    """

    #: The single-env class of the per-variant subclasses (``None`` here: pass ``env_cls``).
    variant: ClassVar[type[GlimpseEnv] | None] = None

    def __init__(
        self,
        env_cls: type[GlimpseEnv] | None = None,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        backend: str = "numpy",
        device: str | torch.device | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        num_threads: int = 1,
        **env_kwargs: Any,
    ) -> None:
        self._pool: ThreadPoolExecutor | None = None  # close() works whatever raises below
        env_cls = env_cls or self.variant
        if env_cls is None:
            raise TypeError("GlimpseVectorEnv needs env_cls (or use a per-variant subclass)")
        _check_count("num_envs", num_envs)
        _check_count("num_threads", num_threads)
        if max_episode_steps is not None:
            _check_count("max_episode_steps", max_episode_steps)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "numpy" and device not in (None, "cpu"):
            raise ValueError(f'device={device!r} needs backend="torch"')
        if backend == "torch" and num_threads != 1:
            raise ValueError(
                'num_threads applies to backend="numpy" (torch runs its own threads), '
                f"got num_threads={num_threads}"
            )
        mode = _autoreset_mode(autoreset_mode)
        #: The single env whose batched methods this vector env runs (never stepped itself).
        self.task = env_cls(**env_kwargs)
        self.num_envs = int(num_envs)
        self.backend = backend
        self.device = _torch_device(device) if backend == "torch" else None
        if self.device is not None:
            self.task.to_backend(self.device)
        self.autoreset_mode = mode
        self.metadata = {**env_cls.metadata, "autoreset_mode": mode}
        self.render_mode = self.task.render_mode
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)

        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._action_shape = (self.num_envs, *self.single_action_space.shape)

        n = self.num_envs
        self._keys = np.zeros(n, dtype=np.uint64)
        self._episodes = np.zeros(n, dtype=np.int64)
        self._offsets = np.arange(n, dtype=np.int64)
        #: Steps (= glimpses after the first) each sub-env's episode has taken.
        self._t = np.zeros(n, dtype=np.int64)
        self._batch: EpisodeBatch | None = None
        self._locations: Any = None
        #: Sub-envs whose episode ended: the next step resets them (NEXT_STEP) or raises.
        self._ended = np.zeros(n, dtype=bool)
        self._paths: list[list[np.ndarray]] = []  # each sub-env's locations, for rendering
        self._result_keys = STOP_RESULT_KEYS if self.task.stop == "action" else RESULT_KEYS
        #: Contiguous sub-env shards, one per thread, and the tables of each shard.
        bounds = np.linspace(0, n, self._shard_count(int(num_threads)) + 1).astype(int)
        self._shards = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._shard_tables: list[SummedAreaTable] = []
        if len(self._shards) > 1:
            self._pool = ThreadPoolExecutor(len(self._shards) - 1, thread_name_prefix="glimpse-env")

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
    def image_indices(self) -> np.ndarray:
        """int64 ``(N,)``: the index in its split of each current episode's digit, on the
        host (what ``info["image_index"]`` reports)."""
        if self._batch is None:
            raise ResetNeeded("No episodes yet: call reset() first.")
        return _host(self._batch.image_indices)

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

    def _new_episodes(self, mask: np.ndarray | None = None) -> None:
        """Start the next episode of every sub-env, or of those ``mask`` selects (host bool
        ``(N,)``; their episode numbers must already be advanced)."""
        if mask is None or mask.all():
            parts = self._map_shards(self._draw)
            batch = parts[0] if len(parts) == 1 else _concatenate(parts)
            self._shard_tables = [part.tables for part in parts]
            self._batch, self._locations = batch, batch.starts
            self._t[:], self._ended[:] = 0, False
            if self.render_mode:
                self._paths = [[start] for start in _host(batch.starts)]
            return
        index = np.flatnonzero(mask)
        new = self.task.draw_episodes(
            self._keys[index], self._episodes[index], self._offsets[index], self.num_envs
        )
        batch = _replace(self._batch, index, new)
        if len(self._shards) > 1:
            self._shard_tables = [_lazy_table(batch.canvases[shard]) for shard in self._shards]
        else:
            self._shard_tables = [batch.tables]
        self._batch = batch
        self._locations = _put(self._locations, index, new.starts)
        self._t[index], self._ended[index] = 0, False
        if self.render_mode:
            for i, start in zip(index, _host(new.starts)):
                self._paths[i] = [start]

    def _info(
        self, result: dict[str, Any] | None = None, where: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The info of one call: every key of :data:`INFO_KEYS` with its mask (see the class
        docstring): ``image_index`` of the current episodes (of the sub-envs ``where``
        selects, default all), and ``result`` (``label``, ``prediction``, ``is_success``
        [, ``glimpses``] of episodes that ended at their last glimpse, set where
        ``result["where"]`` says), or those keys unset when ``result`` is ``None``."""
        values = {"image_index": self._batch.image_indices}
        masks = {"image_index": True if where is None else where}
        for key in self._result_keys:
            values[key] = None if result is None else result[key]
            masks[key] = False if result is None else result["where"]
        return self._masked(values, masks)

    def _masked(self, values: dict[str, Any], masks: dict[str, Any]) -> dict[str, Any]:
        """Info arrays with their ``_key`` masks (a bool for every sub-env, or a host bool
        ``(N,)`` array); unset entries (and a ``None`` value) hold zeros of the key's dtype,
        as ``SyncVectorEnv``'s do."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            mask = masks[key]
            if value is None or mask is False or (not isinstance(mask, bool) and not mask.any()):
                value = np.zeros(self.num_envs, dtype=bool if key == "is_success" else np.int64)
            elif not isinstance(mask, bool) and not mask.all():
                value = np.where(mask, _host(value), 0).astype(_host(value).dtype)  # unset: 0
            flags = self._flags(mask) if isinstance(mask, bool) else self._mask(mask)
            out[key], out[f"_{key}"] = self._array(value), flags
        return out

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
            if _xp.is_torch(actions):
                raise TypeError("backend='numpy' takes NumPy actions, got a torch tensor")
            return validate_actions(actions, self._action_shape, self.task.stop == "action")
        if not _xp.is_torch(actions):
            raise TypeError(
                f"backend='torch' takes actions as a torch tensor on {self.device}, "
                f"got {type(actions).__name__}"
            )
        if actions.device != self.device:
            raise ValueError(f"actions must be on device {self.device}, got {actions.device}")
        if not actions.is_floating_point():
            raise TypeError(f"actions must be a floating-point tensor, got {actions.dtype}")
        if tuple(actions.shape) != self._action_shape:
            layout = action_layout(self.task.stop == "action")
            raise ValueError(
                f"actions must have shape {self._action_shape} (num_envs, {layout}), "
                f"got {tuple(actions.shape)}"
            )
        if not bool(actions.isfinite().all()):
            raise ValueError("actions must be finite, got NaN or infinity")
        return actions.detach()  # rewards and observations never carry the caller's graph

    def _array(self, value: Any) -> Any:
        """A host array as this backend's array (a tensor on ``device`` for torch)."""
        if self.backend == "torch":
            import torch

            return torch.as_tensor(value, device=self.device)
        return value

    def _flags(self, value: bool) -> Any:
        if self.backend == "torch":
            import torch

            return torch.full((self.num_envs,), value, dtype=torch.bool, device=self.device)
        return (np.ones if value else np.zeros)(self.num_envs, dtype=bool)  # faster than full

    def _mask(self, mask: np.ndarray) -> Any:
        """A host bool ``(N,)`` mask as this backend's flags (a new array)."""
        if mask.all() or not mask.any():
            return self._flags(bool(mask.all()))
        return self._array(mask.copy())

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset every sub-env.

        Args:
            seed: ``s`` seeds sub-env ``i`` with ``s + i``; a list gives one seed per sub-env;
                ``None`` continues with each sub-env's next episode (the first time: seeds
                drawn from entropy).
            options: ``None``, or ``{"reset_mask": mask}`` with a bool ``(N,)`` NumPy array:
                only the sub-envs it selects reset (the others keep their episode; their
                observation is returned again and their info entries are unset).

        Returns:
            Batched first observations and the info (see the class docstring).
        """
        mask = self._check_options(options)
        seeds = self._seeds(seed)
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
        if mask is not None and not mask.all():
            return self._reset_some(mask, seeds)
        if seeds is not None:
            self._keys = np.array(seeds, dtype=np.uint64)
            self._episodes[:] = 0
        elif self._batch is None:
            self._keys = self.np_random.integers(0, 2**63, self.num_envs, dtype=np.uint64)
            self._episodes[:] = 0
        else:
            self._episodes += 1
        self._new_episodes()
        return self._observe(self._locations), self._info()

    def _reset_some(
        self, mask: np.ndarray, seeds: list[int] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset the sub-envs ``mask`` selects (a partial ``reset_mask``)."""
        if self._batch is None:
            raise ResetNeeded("The first reset() must reset every sub-env (no reset_mask).")
        if seeds is not None:
            self._keys[mask] = np.array(seeds, dtype=np.uint64)[mask]
            self._episodes[mask] = 0
        else:
            self._episodes[mask] += 1
        self._new_episodes(mask)
        return self._observe(self._locations), self._info(where=mask)

    def _seeds(self, seed: Any) -> list[int] | None:
        """One validated seed per sub-env, or ``None`` for an unseeded reset."""
        if seed is None:
            return None
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != self.num_envs:
                raise ValueError(f"need one seed per sub-env ({self.num_envs}), got {len(seed)}")
            return [validate_seed(s) for s in seed]
        first = validate_seed(seed)
        if first + self.num_envs > 2**64:
            raise ValueError(
                f"seed {first} + sub-env index must stay below 2**64 for {self.num_envs} "
                "sub-envs (sub-env i is seeded seed + i)"
            )
        return [first + i for i in range(self.num_envs)]

    def _check_options(self, options: dict[str, Any] | None) -> np.ndarray | None:
        """The reset mask of ``options`` (None: every sub-env), checked."""
        if not options:
            return None
        unknown = set(options) - {"reset_mask"}
        if unknown:
            raise ValueError(
                f"GlimpseVectorEnv.reset takes only the option 'reset_mask', got {sorted(unknown)}"
            )
        mask = _host(options["reset_mask"])
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                f"got {mask.dtype} {mask.shape}"
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one sub-env")
        return mask

    def get_state(self) -> dict[str, Any]:
        """The episode stream's position, for exact resumption of a training run.

        Only valid at an episode boundary (after ``reset`` or an autoreset step).
        """
        if self._batch is None or self._t.any() or self._ended.any():
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
        """Step every sub-env with ``actions (N, 2 + C [+ 1])``; see the class docstring."""
        if self._batch is None:
            raise ResetNeeded("Cannot call step() before reset(): call envs.reset() first.")
        actions = self._validate(actions)
        resetting = self._ended.copy()
        if resetting.any():
            if self.autoreset_mode == AutoresetMode.DISABLED:
                raise ResetNeeded(
                    f"The episodes of sub-envs {np.flatnonzero(resetting).tolist()} ended and "
                    "autoreset_mode is DISABLED: call envs.reset() (or envs.reset(options="
                    '{"reset_mask": mask}) for those) before step().'
                )
            # NEXT_STEP: this step resets the ended sub-envs (their actions ignored).
            self._episodes[resetting] += 1
            self._new_episodes(resetting)
            if resetting.all():
                obs, info = self._observe(self._locations), self._info()
                return obs, self._zero_rewards(), self._flags(False), self._flags(False), info
        obs, rewards, terminated, truncated, predictions = self._advance(actions, ~resetting)
        ended = terminated | truncated
        if not ended.any():
            return obs, rewards, self._flags(False), self._flags(False), self._info()
        result = self._result(predictions, terminated) if terminated.any() else None
        flags = self._mask(terminated), self._mask(truncated)
        if self.autoreset_mode != AutoresetMode.SAME_STEP:
            self._ended = ended
            return obs, rewards, *flags, self._info(result=result)
        # SAME_STEP: the ended episodes' last observation and info go under final_*, and the
        # new episodes start in this step.
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in np.flatnonzero(ended):
            final_obs[i] = {"glimpse": obs["glimpse"][i], "location": obs["location"][i]}
        final_info = self._info(result, where=ended)
        self._episodes[ended] += 1
        self._new_episodes(ended)
        info = {
            **self._info(),
            "final_obs": final_obs,
            "_final_obs": ended.copy(),
            "final_info": final_info,
            "_final_info": self._mask(ended),
        }
        return self._observe(self._locations), rewards, *flags, info

    def _advance(
        self, actions: Any, active: np.ndarray
    ) -> tuple[dict[str, Any], Any, np.ndarray, np.ndarray, Any]:
        """Move the ``active`` sub-envs' sensors to their actions' locations (the others just
        reset: they stay at their start). Returns obs, rewards, host ``terminated`` and
        ``truncated`` masks, and the predictions."""
        locations = clip_locations(actions)
        everyone = bool(active.all())
        if not everyone:
            rows = np.flatnonzero(~active)
            kept = self._locations[_xp.to_backend(rows, self._locations)]
            locations = _put(locations, rows, kept)
        self._locations = locations
        self._t += active
        terminated = self.task.episode_ends(actions, self._t) & active
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated = (self._t >= self.max_episode_steps) & active
        scores = unpack_action(actions, self.task.stop == "action")[1]
        rewards, predictions = self.task.rewards(scores, self._batch.labels, terminated, self._t)
        if not everyone:
            rewards = rewards * self._array(active)
        obs = self._observe(locations)
        if self.render_mode:
            for i, location in zip(np.flatnonzero(active), _host(locations)[active]):
                self._paths[i].append(location)
        return obs, rewards, terminated, truncated, predictions

    def _zero_rewards(self) -> Any:
        if self.backend == "torch":
            import torch

            return torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        return np.zeros(self.num_envs)

    def _result(self, predictions: Any, where: np.ndarray) -> dict[str, Any]:
        """``label``/``prediction``/``is_success`` (and ``glimpses``) of the episodes that
        just terminated (``where``)."""
        labels = self._batch.labels
        result = {
            "label": labels,
            "prediction": predictions,
            "is_success": predictions == labels,
            "where": where,
        }
        if "glimpses" in self._result_keys:
            result["glimpses"] = self._t.copy()
        return result

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per sub-env (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn('render() called without render_mode; use render_mode="rgb_array".')
            return None
        if self._batch is None:
            raise ResetNeeded("Cannot call render() before reset().")
        from glimpse_env.rendering import render_frame

        canvases = _host(self._batch.canvases)
        g, k = self.task.glimpse_size, self.task.n_scales
        return tuple(
            render_frame(canvases[i], np.stack(self._paths[i]), g, k) for i in range(self.num_envs)
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if hasattr(self, "task"):
            self.task.close()


class GlimpseMNISTVectorEnv(GlimpseVectorEnv):
    """:class:`GlimpseMNISTEnv` batched: ``gym.make_vec("GlimpseMNIST-v0", num_envs=N)``."""

    variant = GlimpseMNISTEnv


class TranslatedMNISTVectorEnv(GlimpseVectorEnv):
    """:class:`TranslatedMNISTEnv` batched: ``gym.make_vec("GlimpseTranslatedMNIST-v0")``."""

    variant = TranslatedMNISTEnv


class ClutteredMNISTVectorEnv(GlimpseVectorEnv):
    """:class:`ClutteredMNISTEnv` batched: ``gym.make_vec("GlimpseClutteredMNIST-v0")``."""

    variant = ClutteredMNISTEnv


class ClutteredMNIST100VectorEnv(GlimpseVectorEnv):
    """:class:`ClutteredMNIST100Env` batched: ``gym.make_vec("GlimpseClutteredMNIST100-v0")``."""

    variant = ClutteredMNIST100Env


def _autoreset_mode(value: Any) -> AutoresetMode:
    """An ``AutoresetMode`` from the enum, its value (``"NextStep"``) or its name
    (``"NEXT_STEP"``)."""
    for mode in AUTORESET_MODES:
        if value is mode or value in (mode.value, mode.name):
            return mode
    accepted = ", ".join(f"{m.name} ({m.value!r})" for m in AUTORESET_MODES)
    raise ValueError(
        f"autoreset_mode must be a gymnasium.vector.AutoresetMode or its name or value: "
        f"{accepted}; got {value!r}"
    )


def _check_count(name: str, value: Any) -> None:
    """``value`` must be a positive integer (not a bool, not a float such as 2.5)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _torch_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine (``None``: the CPU)."""
    import torch

    try:
        dev = torch.device(device or "cpu")
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch finds no CUDA device here; use 'cpu'")
    return dev


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


def _put(array: Any, index: np.ndarray, values: Any) -> Any:
    """A copy of ``array`` (NumPy or torch) with rows ``index`` (host int) set to ``values``."""
    out = array.clone() if _xp.is_torch(array) else array.copy()
    out[_xp.to_backend(index, array)] = values
    return out


def _replace(old: EpisodeBatch, index: np.ndarray, new: EpisodeBatch) -> EpisodeBatch:
    """``old`` with the episodes of rows ``index`` replaced by ``new``'s (new arrays: the
    old batch's canvases, which its tables were built from, are never changed)."""
    canvases = _put(old.canvases, index, new.canvases)
    return EpisodeBatch(
        canvases=canvases,
        tables=_lazy_table(canvases),
        labels=_put(old.labels, index, new.labels),
        image_indices=_put(old.image_indices, index, new.image_indices),
        starts=_put(old.starts, index, new.starts),
        layout={name: _put(value, index, new.layout[name]) for name, value in old.layout.items()},
    )


def _host(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if _xp.is_torch(x) else np.asarray(x)


__all__ = [
    "AUTORESET_MODES",
    "BACKENDS",
    "INFO_KEYS",
    "MIN_SHARD_PIXELS",
    "ClutteredMNIST100VectorEnv",
    "ClutteredMNISTVectorEnv",
    "GlimpseMNISTVectorEnv",
    "GlimpseVectorEnv",
    "TranslatedMNISTVectorEnv",
]
