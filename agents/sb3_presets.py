"""Hyperparameter presets for the stable-baselines3 agents, one per algorithm and env.

Every field of :class:`SB3Hyperparams` is also a flag of ``glimpse train ppo`` (``n_steps``
-> ``--n-steps``); a flag given on the command line overrides the preset. Look a preset up
with :func:`get_preset`; an env without a preset of its own gets the algorithm's default.

The presets were chosen for short CPU runs (minutes) on ``GlimpseMNIST-v0`` from a
handful of 150-second runs with the dense reward (batch 256 and learning rate 1e-3 beat
SB3's usual 3e-4 with large batches; the ``"mean"`` history beat ``"concat"`` both per env
step and, being 2-3x cheaper, per second). They are a reasonable starting point, not the
result of a hyperparameter search.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AGENTS", "CLASS_HEADS", "PRESETS", "SB3Hyperparams", "get_preset"]

#: Algorithm names, as stored in ``meta.json["agent"]``.
AGENTS: tuple[str, ...] = ("ppo", "recurrent_ppo")
#: Values of :attr:`SB3Hyperparams.class_head` (see :mod:`agents.sb3_distributions`).
CLASS_HEADS: tuple[str, ...] = ("categorical", "gaussian")


@dataclass
class SB3Hyperparams:
    """Everything that configures one SB3 training run apart from the env and the run folder.

    The SB3 names are kept where they exist (``n_steps``, ``gae_lambda``, ...); see the
    ``PPO`` / ``RecurrentPPO`` documentation for their exact meaning. A field's ``metadata``
    holds the bounds of its value (``ge``, ``gt``, ``le``, ``lt``), which ``glimpse train
    ppo`` checks as it parses the flag.
    """

    total_steps: int = field(default=1_000_000, metadata={"ge": 1})
    """Env steps (summed over sub-envs) to train for."""

    num_envs: int = field(default=64, metadata={"ge": 1})
    """Episodes stepped together by the native vector env."""

    n_steps: int = field(default=56, metadata={"ge": 1})
    """Steps per sub-env per rollout (rollout size = ``n_steps * num_envs``)."""

    batch_size: int = field(default=256, metadata={"ge": 1})
    """Minibatch size (for RecurrentPPO: steps per minibatch, cut into sequences)."""

    n_epochs: int = field(default=4, metadata={"ge": 1})
    """Passes over each rollout."""

    learning_rate: float = field(default=1e-3, metadata={"gt": 0.0})
    """Adam learning rate (start value when ``lr_schedule`` is ``"linear"``)."""

    lr_schedule: str = "constant"
    """``"constant"`` or ``"linear"`` (annealed to 0 at ``total_steps``)."""

    gamma: float = field(default=1.0, metadata={"ge": 0.0, "le": 1.0})
    """Discount; episodes have a fixed length (the number of glimpses), so 1 is natural."""

    gae_lambda: float = field(default=0.95, metadata={"ge": 0.0, "le": 1.0})
    """GAE lambda."""

    clip_range: float = field(default=0.2, metadata={"gt": 0.0})
    """PPO clipping parameter."""

    ent_coef: float = field(default=0.0, metadata={"ge": 0.0})
    """Entropy bonus coefficient."""

    vf_coef: float = field(default=0.5, metadata={"ge": 0.0})
    """Value loss coefficient."""

    max_grad_norm: float = field(default=0.5, metadata={"gt": 0.0})
    """Gradient norm clipping."""

    target_kl: float = field(default=0.0, metadata={"ge": 0.0})
    """Stop an update early above this KL divergence; 0 = never."""

    class_head: str = "categorical"
    """How the policy picks the class: ``"categorical"`` (a softmax over the classes, emitted
    as scores +1 / -1, as the RAM agent does; :mod:`agents.sb3_distributions`) or
    ``"gaussian"`` (SB3's default for a Box: a Gaussian over the 10 scores, argmax read by
    the env)."""

    used_actions_only: bool | None = None
    """Count in ``log pi`` (and the entropy) only the action parts the env reads: the
    location at every step but the last, the class at the last step (sparse reward) or at
    every step (dense); the unread parts are emitted deterministically (mean location,
    likeliest class). Adds the ``action_use`` observation (:class:`agents.sb3_policy.ActionUse`).
    Default (None): on with the categorical class head; not available with the Gaussian."""

    log_std_init: float = -1.0
    """Initial log standard deviation of the location Gaussian (with ``class_head="gaussian"``
    also of the 10 class scores); -1 gives std 0.37 (locations live in [-1, 1])."""

    net_arch_pi: tuple[int, ...] = (256,)
    """Hidden layers of the policy head on top of the features (LSTM output for RecurrentPPO)."""

    net_arch_vf: tuple[int, ...] = (256,)
    """Hidden layers of the value head."""

    history: bool = True
    """PPO only: observe the glimpse history of the episode (:class:`GlimpseHistory`);
    without it plain PPO sees only the current glimpse and has no memory at all."""

    history_combine: str = "mean"
    """PPO with history: ``"mean"`` (masked mean of the per-slot glimpse-network features,
    plus the mask) or ``"concat"`` (all slot features in order, plus the mask); see
    :class:`agents.sb3_policy.GlimpseHistoryFeatures`."""

    lstm_hidden_size: int = field(default=256, metadata={"ge": 1})
    """RecurrentPPO only: LSTM units (the RAM core has 256)."""

    n_lstm_layers: int = field(default=1, metadata={"ge": 1})
    """RecurrentPPO only: stacked LSTM layers."""

    shared_lstm: bool = False
    """RecurrentPPO only: one LSTM for actor and critic (else a separate critic LSTM)."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Other keyword arguments passed to the SB3 constructor as they are (Python API only)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SB3Hyperparams:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TypeError(f"unknown hyperparameters: {unknown}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**fixed)


def json_ready(value: Any) -> Any:
    """Tuples to lists, recursively (what JSON would give back)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


_PPO = SB3Hyperparams()
_RECURRENT_PPO = SB3Hyperparams(
    # Sequences are cut per sub-env: 56 steps = 8 whole episodes of 7 glimpses.
    n_steps=56,
    batch_size=448,
    net_arch_pi=(),
    net_arch_vf=(),
    history=False,
)

#: ``(agent, env_id)`` -> preset; ``(agent, None)`` is the default for other envs.
PRESETS: dict[tuple[str, str | None], SB3Hyperparams] = {
    ("ppo", None): _PPO,
    ("ppo", "GlimpseMNIST-v0"): dataclasses.replace(_PPO),
    ("recurrent_ppo", None): _RECURRENT_PPO,
    ("recurrent_ppo", "GlimpseMNIST-v0"): dataclasses.replace(_RECURRENT_PPO),
}


def get_preset(agent: str, env_id: str) -> SB3Hyperparams:
    """A fresh copy of the preset for ``agent`` on ``env_id``.

    Args:
        agent: ``"ppo"`` or ``"recurrent_ppo"``.
        env_id: a registered glimpse env id.

    Raises:
        ValueError: for an unknown agent.
    """
    if agent not in AGENTS:
        raise ValueError(f"agent must be one of {AGENTS}, got {agent!r}")
    preset = PRESETS.get((agent, env_id), PRESETS[(agent, None)])
    return dataclasses.replace(preset, extra=dict(preset.extra))
