"""Stable-Baselines3 adapter: the native vector env behind SB3's ``VecEnv`` API.

SB3 cannot take a Gymnasium ``VectorEnv``; it wants its own ``VecEnv`` (reset returns the
observation only, same-step autoreset, per-env info dicts with ``terminal_observation`` and
``TimeLimit.truncated``). :class:`GlimpseVecEnv` provides that on top of
:class:`glimpse_env.vector.GlimpseVectorEnv`, so SB3 steps all sub-envs in one batched call::

    from stable_baselines3 import PPO
    from glimpse_env.sb3 import GlimpseVecEnv

    model = PPO("MultiInputPolicy", GlimpseVecEnv("GlimpseMNIST-v0", num_envs=64))

Needs the ``sb3`` extra (``pip install glimpse-env[sb3]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "glimpse_env.sb3 needs stable-baselines3: pip install 'glimpse-env[sb3]'"
    ) from exc

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.vector import GlimpseVectorEnv

#: Result keys of an ended episode's info, and their Python types (``glimpses``: adaptive ids).
RESULT_KEYS: dict[str, type] = {
    "label": int,
    "prediction": int,
    "is_success": bool,
    "glimpses": int,
}


class GlimpseVecEnv(VecEnv):
    """SB3 ``VecEnv`` over a native :class:`GlimpseVectorEnv` (NumPy backend).

    Args:
        env: a registered id (``"GlimpseMNIST-v0"``; the adapter asks ``gym.make_vec`` for
            the ``SAME_STEP`` autoreset SB3 needs) or an existing ``GlimpseVectorEnv`` created
            with ``autoreset_mode=SAME_STEP`` and ``backend="numpy"``.
        num_envs: number of sub-envs when ``env`` is an id.
        seed: seed of the first reset (sub-env ``i`` gets ``seed + i``); ``None`` for entropy.
        **env_kwargs: keyword arguments of the env (``split``, ``reward``, ...) when ``env``
            is an id.

    Transitions are those of SB3's ``DummyVecEnv`` over single envs seeded ``seed + i``:
    at an episode end ``dones[i]`` is True, ``infos[i]`` holds ``terminal_observation``,
    ``TimeLimit.truncated``, ``label``, ``prediction`` and ``is_success`` (which SB3 logs as
    the success rate; ``glimpses`` too on the adaptive ids, whose sub-envs end at different
    steps), and the returned observation is already the next episode's first.
    """

    def __init__(
        self,
        env: str | GlimpseVectorEnv,
        num_envs: int = 1,
        seed: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        if isinstance(env, str):
            if "autoreset_mode" in env_kwargs:
                raise TypeError("GlimpseVecEnv sets autoreset_mode itself (SB3 needs SAME_STEP)")
            env = gym.make_vec(
                env, num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs
            )
        elif env_kwargs:
            raise TypeError("env_kwargs are only accepted together with an env id")
        if not isinstance(env, GlimpseVectorEnv):
            raise TypeError(
                f"env must be an env id or a GlimpseVectorEnv, got {type(env).__name__}"
            )
        if env.autoreset_mode != AutoresetMode.SAME_STEP or env.backend != "numpy":
            raise ValueError(
                "GlimpseVecEnv needs a GlimpseVectorEnv with autoreset_mode=SAME_STEP and "
                f"backend='numpy', got {env.autoreset_mode} and {env.backend!r}"
            )
        self.venv = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.render_mode = env.render_mode
        self._seed = seed
        self._actions: np.ndarray | None = None
        self._started = False

    # ------------------------------------------------------------------ SB3 VecEnv API
    def reset(self) -> dict[str, np.ndarray]:
        """Reset every sub-env; uses the seed given by :meth:`seed` (or the constructor)."""
        seed, self._seed = self._seed, None
        obs, info = self.venv.reset(seed=seed)
        self._started = True
        index = info["image_index"]
        self.reset_infos = [{"image_index": int(i)} for i in index]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        if not self._started:
            self.reset()
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        n = self.num_envs
        if not dones.any():
            # As DummyVecEnv: every step's info says whether it was a time-limit truncation.
            infos = [
                {"image_index": int(i), "TimeLimit.truncated": False} for i in info["image_index"]
            ]
            return obs, rewards.astype(np.float32), dones, infos
        final, final_obs = info["final_info"], info["final_obs"]
        infos = []
        for i in range(n):
            if not dones[i]:  # sub-envs end at different steps on the adaptive ids
                index = int(info["image_index"][i])
                infos.append({"image_index": index, "TimeLimit.truncated": False})
                continue
            entry = {
                "image_index": int(final["image_index"][i]),
                "terminal_observation": final_obs[i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
            }
            if terminated[i]:  # a truncated episode has no result (as with DummyVecEnv)
                for key in RESULT_KEYS:
                    if key in final:
                        entry[key] = RESULT_KEYS[key](final[key][i])
            infos.append(entry)
            # The new episode's reset info goes where DummyVecEnv puts it, not into the
            # info of the episode that just ended.
            self.reset_infos[i] = {"image_index": int(info["image_index"][i])}
        return obs, rewards.astype(np.float32), dones, infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next reset: sub-env ``i`` gets ``seed + i``."""
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    # Attributes and methods: every sub-env shares the one task object.
    def _indices(self, indices: int | Iterable[int] | None) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: int | Iterable[int] | None = None) -> list[Any]:
        value = getattr(self.venv.task, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(
        self, attr_name: str, value: Any, indices: int | Iterable[int] | None = None
    ) -> None:
        if self._indices(indices) != list(range(self.num_envs)):
            raise ValueError(
                "set_attr on a subset of sub-envs is not supported: they share one task"
            )
        setattr(self.venv.task, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: int | Iterable[int] | None = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        method = getattr(self.venv.task, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: int | Iterable[int] | None = None
    ) -> list[bool]:
        """No sub-env is wrapped (the native vector env has no per-env wrappers)."""
        return [False for _ in self._indices(indices)]
