"""The registered environment ids: one row per benchmark of the paper."""

from __future__ import annotations

import functools

import gymnasium as gym

from glimpse_env.envs import (
    ClutteredMNIST100Env,
    ClutteredMNISTEnv,
    GlimpseEnv,
    GlimpseMNISTEnv,
    TranslatedMNISTEnv,
)

#: id -> env class; the class carries the variant's defaults (canvas, glimpses, scales).
VARIANTS: dict[str, type[GlimpseEnv]] = {
    "GlimpseMNIST-v0": GlimpseMNISTEnv,
    "GlimpseTranslatedMNIST-v0": TranslatedMNISTEnv,
    "GlimpseClutteredMNIST-v0": ClutteredMNISTEnv,
    "GlimpseClutteredMNIST100-v0": ClutteredMNIST100Env,
}
ENV_IDS: tuple[str, ...] = tuple(VARIANTS)


def register_envs() -> None:
    """Register every variant with Gymnasium (idempotent)."""
    from glimpse_env.vector import GlimpseVectorEnv

    for env_id, env_cls in VARIANTS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=f"{env_cls.__module__}:{env_cls.__name__}",
            vector_entry_point=functools.partial(GlimpseVectorEnv, env_cls),
        )
