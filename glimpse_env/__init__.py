"""glimpse-env: image classification through a moving multi-scale glimpse, as Gymnasium envs.

Importing the package registers the environments of Mnih et al. (2014) with Gymnasium::

    import gymnasium as gym
    import glimpse_env  # noqa: F401  (registers the ids)

    env = gym.make("GlimpseMNIST-v0")
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=256)  # native batched vector env

| id | canvas | clutter | glimpse | scales | glimpses |
|---|---|---|---|---|---|
| GlimpseMNIST-v0 | 28x28 centred digit | none | 8x8 | 1 | 7 |
| GlimpseTranslatedMNIST-v0 | 60x60 | none | 12x12 | 3 | 8 |
| GlimpseClutteredMNIST-v0 | 60x60 | 4 pieces of 8x8 | 12x12 | 3 | 8 |
| GlimpseClutteredMNIST100-v0 | 100x100 | 8 pieces of 8x8 | 12x12 | 4 | 8 |

Each has an adaptive twin (``GlimpseMNISTAdaptive-v0``, ...: :data:`ADAPTIVE_IDS`) where the
agent ends the episode with a stop score, after at most that many glimpses.

Actions are ``[x, y, score_0 .. score_9]`` (``[..., stop]`` on the adaptive ids) (:mod:`glimpse_env.actions` packs and unpacks
them); :mod:`glimpse_env.wrappers` gives memoryless agents the episode's glimpses
(:class:`GlimpseHistory`) and the action parts the env reads (:class:`ActionUse`).
"""

from __future__ import annotations

from glimpse_env.actions import (
    LOCATION_DIM,
    class_count,
    class_scores,
    pack_action,
    stop_scores,
    unpack_action,
)
from glimpse_env.datasets import load_mnist
from glimpse_env.envs import (
    ClutteredMNIST100Env,
    ClutteredMNISTEnv,
    GlimpseEnv,
    GlimpseMNISTEnv,
    TranslatedMNISTEnv,
)
from glimpse_env.registration import ADAPTIVE_IDS, ALL_IDS, ENV_IDS, register_envs
from glimpse_env.sensor import SummedAreaTable, extract_glimpses, summed_area_table
from glimpse_env.wrappers import ActionUse, GlimpseHistory, VectorActionUse, VectorGlimpseHistory

__version__ = "0.3.0"

register_envs()

__all__ = [
    "ADAPTIVE_IDS",
    "ALL_IDS",
    "ENV_IDS",
    "LOCATION_DIM",
    "ActionUse",
    "ClutteredMNIST100Env",
    "ClutteredMNISTEnv",
    "GlimpseEnv",
    "GlimpseHistory",
    "GlimpseMNISTEnv",
    "SummedAreaTable",
    "TranslatedMNISTEnv",
    "VectorActionUse",
    "VectorGlimpseHistory",
    "__version__",
    "class_count",
    "class_scores",
    "extract_glimpses",
    "load_mnist",
    "pack_action",
    "stop_scores",
    "summed_area_table",
    "unpack_action",
]
