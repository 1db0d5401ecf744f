"""The registered environment ids: one row per benchmark of the paper, and its adaptive
twin, where the agent decides when to stop (``stop="action"``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import gymnasium as gym

from glimpse_env.envs import (
    ClutteredMNIST100Env,
    ClutteredMNISTEnv,
    GlimpseEnv,
    GlimpseMNISTEnv,
    TranslatedMNISTEnv,
)


class Variant(NamedTuple):
    """One registered id: its env class, the paper's test error for its default glimpses,
    and the keyword arguments the id adds (the adaptive ids: ``stop="action"``)."""

    env_cls: type[GlimpseEnv]
    #: Test error (%) of RAM in Mnih et al. (2014), Tables 1 and 2, for this id's defaults
    #: (of the fixed-length twin for an adaptive id: the number to beat with fewer glimpses).
    paper_error: float
    kwargs: Mapping[str, Any] = MappingProxyType({})


_FIXED: dict[str, Variant] = {
    "GlimpseMNIST-v0": Variant(GlimpseMNISTEnv, 1.07),
    "GlimpseTranslatedMNIST-v0": Variant(TranslatedMNISTEnv, 1.2),
    "GlimpseClutteredMNIST-v0": Variant(ClutteredMNISTEnv, 4.04),
    "GlimpseClutteredMNIST100-v0": Variant(ClutteredMNIST100Env, 8.11),
}


def adaptive_id(env_id: str) -> str:
    """The adaptive twin of a fixed-length id: ``GlimpseMNIST-v0`` -> ``GlimpseMNISTAdaptive-v0``."""
    name, version = env_id.rsplit("-", 1)
    return f"{name}Adaptive-{version}"


#: id -> variant; the class carries the variant's defaults (canvas, glimpses, scales), and
#: ``glimpse_env.vector`` has its batched twin of the same name with ``Vector`` before ``Env``.
VARIANTS: dict[str, Variant] = {
    **_FIXED,
    **{
        adaptive_id(env_id): Variant(v.env_cls, v.paper_error, {"stop": "action"})
        for env_id, v in _FIXED.items()
    },
}
#: The paper's four benchmarks: every episode takes the id's glimpses.
ENV_IDS: tuple[str, ...] = tuple(_FIXED)
#: Their adaptive twins (``stop="action"``, at most the same glimpses; see ``GlimpseEnv``).
ADAPTIVE_IDS: tuple[str, ...] = tuple(adaptive_id(env_id) for env_id in ENV_IDS)
#: Every registered id.
ALL_IDS: tuple[str, ...] = (*ENV_IDS, *ADAPTIVE_IDS)


def spaces_of(
    env_id: str, env_kwargs: dict | None = None
) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
    """Observation and action spaces of ``gym.make(env_id, **env_kwargs)``, without loading
    any data (``glimpse_size``, ``n_scales`` and ``stop`` decide them).

    Raises:
        ValueError: for an id that is not one of :data:`ALL_IDS`.
    """
    if env_id not in VARIANTS:
        raise ValueError(f"unknown env id {env_id!r}; the ids are {', '.join(ALL_IDS)}")
    variant = VARIANTS[env_id]
    kwargs = {**variant.kwargs, **(env_kwargs or {})}
    return variant.env_cls.spaces(
        kwargs.get("glimpse_size"), kwargs.get("n_scales"), kwargs.get("stop", "never")
    )


def register_envs() -> None:
    """Register every variant with Gymnasium (idempotent).

    Each spec is plain data (``spec.to_json()`` round-trips): string entry points for
    ``gym.make`` and ``gym.make_vec``, and ``reward_threshold`` = the paper's test accuracy
    for the id (the mean sparse reward is the accuracy). ``max_episode_steps`` stays unset
    on purpose: every episode terminates at ``n_glimpses`` by itself, and a ``TimeLimit`` at
    that step would flag every episode end as truncated as well (Minari would record it,
    TorchRL and RLlib report it), and would cut episodes short for a larger ``n_glimpses``.
    """
    for env_id, (env_cls, paper_error, kwargs) in VARIANTS.items():
        if env_id in gym.registry:
            continue
        vector_name = env_cls.__name__.removesuffix("Env") + "VectorEnv"
        gym.register(
            id=env_id,
            entry_point=f"{env_cls.__module__}:{env_cls.__name__}",
            vector_entry_point=f"glimpse_env.vector:{vector_name}",
            reward_threshold=round(1.0 - paper_error / 100.0, 4),
            kwargs=dict(kwargs),
        )
