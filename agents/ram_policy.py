"""The RAM agent as a :class:`agents.policy.Policy`, its checkpoint loader, and the warm
start of a new model from a trained one (:func:`warm_start`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.checkpoints import load_checkpoint
from agents.locations import with_locations
from agents.policy import Policy, register_loader
from agents.ram import RAMConfig, RecurrentAttentionModel, _rename_cell_keys
from agents.rollout import ObservationAdapter
from glimpse_env.actions import class_scores, pack_action
from glimpse_env.registration import spaces_of


class RAMPolicy:
    """Acts with a :class:`RecurrentAttentionModel` on batched glimpse observations.

    ``deterministic``: the next location is the Gaussian's mean and the class the argmax of
    the logits; otherwise the location is sampled with ``std`` (the class stays the argmax,
    as the paper evaluates), from the policy's own generator once :meth:`seed_sampling`
    was called (else from torch's global one). Actions are
    ``[x, y, +1 for the class, -1 for the others]`` (:mod:`glimpse_env.actions`); a model
    with a stop network appends the stop score for ``stop="action"`` envs: +1 to stop, -1
    to go on (deterministic: stop iff the stop probability is above 0.5; else sampled).
    """

    def __init__(
        self,
        model: RecurrentAttentionModel,
        env_id: str = "",
        env_kwargs: dict[str, Any] | None = None,
        std: float | None = None,
        device: str | torch.device = "cpu",
        *,
        observation_space: gym.Space | None = None,
    ) -> None:
        """Wrap a model (its weights are shared, not copied).

        Args:
            model: the model.
            env_id: the registered id it was trained on ("" for another env).
            env_kwargs: the env's keyword arguments.
            std: location std of sampled actions (default: the model's).
            device: the model's device.
            observation_space: the single env's space (default: the id's, read without
                building an env, which would load MNIST before ``--data-dir`` is known).
        """
        self.model = model.to(device)
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.std = std
        self.device = torch.device(device)
        if observation_space is None:
            observation_space = spaces_of(env_id, self.env_kwargs)[0]
        self._adapter = ObservationAdapter(observation_space, self.device)
        self.generator: torch.Generator | None = None

    def seed_sampling(self, seed: int) -> None:
        """Draw sampled locations from a ``torch.Generator`` seeded with ``seed`` from now on."""
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def initial_state(self, num_envs: int) -> Any:
        """The model's zero core state, and the last location sent (for observations that
        do not report it)."""
        return None, torch.zeros(num_envs, self.model.config.location_dim, device=self.device)

    @torch.no_grad()
    def act(self, obs: dict[str, Any], state: Any, deterministic: bool) -> tuple[Any, Any]:
        """Batched actions ``(N, 2 + C)`` (``(N, 2 + C + 1)`` with a stop network) and the
        next state."""
        self.model.eval()
        core_state, previous = state
        glimpse, location, env_device = self._adapter(obs)
        out = self.model.step(
            glimpse,
            previous if location is None else location,
            core_state,
            deterministic=deterministic,
            std=self.std,
            generator=None if deterministic else self.generator,
            scored=False,
        )
        scores = class_scores(out.logits.argmax(1), self.model.n_classes, out.location.dtype)
        stop = None if out.stop is None else (out.stop * 2.0 - 1.0).to(scores.dtype)
        action = pack_action(out.location, scores, stop=stop)
        state = (out.state, out.location)
        if env_device is not None:
            return action.to(env_device), state
        return action.cpu().numpy().astype(np.float32), state


def model_payload(model: RecurrentAttentionModel, config: RAMConfig) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the model."""
    return {
        "model_state": model.state_dict(),
        "model_config": asdict(config),
        "glimpse_dim": model.glimpse_dim,
        "n_classes": model.n_classes,
    }


def build_model(payload: dict[str, Any]) -> RecurrentAttentionModel:
    """Rebuild a model saved with :func:`model_payload`."""
    config = RAMConfig(**payload["model_config"])
    model = RecurrentAttentionModel(payload["glimpse_dim"], payload["n_classes"], config)
    model.load_state_dict(payload["model_state"])
    return model


def load_ram_policy(path: Path, meta: dict[str, Any], device: str) -> Policy:
    """Loader registered for ``agent == "ram"`` checkpoints.

    Runs trained with a non-learned location policy (``meta["location_policy"]``:
    ``random``, ``center`` or ``raster``) load with those locations
    (:func:`agents.locations.with_locations`, seeded with ``meta["location_seed"]``), as they
    were trained and evaluated.
    """
    payload = load_checkpoint(path, map_location=device)
    model = build_model(payload)
    policy = RAMPolicy(model, meta["env_id"], meta.get("env_kwargs", {}), device=device)
    name = meta.get("location_policy") or "learned"
    return with_locations(policy, name, int(meta.get("location_seed", 0)))


register_loader("ram", load_ram_policy)


def warm_start(model: RecurrentAttentionModel, state: dict[str, Any]) -> list[str]:
    """Load a trained model's weights into ``model`` (e.g. a fixed-length RAM into one with
    a stop network): every tensor of ``state``, while the parameters ``state`` lacks (the
    new stop network) keep their initial values.

    Args:
        model: the model to initialise.
        state: the trained model's ``state_dict`` (a checkpoint's ``model_state``).

    Returns:
        The names of ``model``'s tensors that ``state`` did not set.

    Raises:
        ValueError: naming the first tensor of ``state`` that ``model`` lacks or that has
            another shape (the architectures differ), or a missing tensor outside the stop
            network.
    """
    state = dict(state)
    _rename_cell_keys(state, "core_network.")  # the shipped models' nn.*Cell names
    own = model.state_dict()
    for name, tensor in state.items():
        if name not in own:
            raise ValueError(
                f"the trained model has {name!r}, which this model lacks: its architecture "
                "differs (give the same --core, --location-mlp-hidden ... as the trained run)"
            )
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} in the trained model but "
                f"{tuple(own[name].shape)} here: give the same sizes (--glimpse-hidden, "
                "--core-hidden, ...) and glimpses (--glimpse-size, --n-scales) as the trained run"
            )
    fresh = [name for name in own if name not in state]
    outside = [name for name in fresh if not name.startswith("stop_network.")]
    if outside:
        raise ValueError(
            f"the trained model lacks {outside[0]!r}: its architecture differs from this one"
        )
    model.load_state_dict(state, strict=False)
    return fresh
