"""The RAM agent as a :class:`agents.policy.Policy`, and its checkpoint loader."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoints import load_checkpoint
from agents.policy import Policy, register_loader
from agents.ram import RAMConfig, RecurrentAttentionModel
from agents.reinforce import RandomLocationPolicy, _ObservationAdapter
from glimpse_env.registration import spaces_of


class RAMPolicy:
    """Acts with a :class:`RecurrentAttentionModel` on batched glimpse observations.

    ``deterministic``: the next location is the Gaussian's mean and the class the argmax of
    the logits; otherwise the location is sampled with ``std`` (the class stays the argmax,
    as the paper evaluates), from the policy's own generator once :meth:`seed_sampling`
    was called (else from torch's global one). Actions are
    ``[x, y, +1 for the class, -1 for the others]``.
    """

    def __init__(
        self,
        model: RecurrentAttentionModel,
        env_id: str,
        env_kwargs: dict[str, Any],
        std: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.std = std
        self.device = torch.device(device)
        # The spaces only (building an env would load MNIST before --data-dir is known).
        observation_space, action_space = spaces_of(env_id, env_kwargs)
        self._adapter = _ObservationAdapter(observation_space, self.device)
        self.n_classes = int(action_space.shape[0]) - 2
        self.generator: torch.Generator | None = None

    def seed_sampling(self, seed: int) -> None:
        """Draw sampled locations from a ``torch.Generator`` seeded with ``seed`` from now on."""
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def initial_state(self, num_envs: int) -> Any:
        return None  # the model's zero state

    @torch.no_grad()
    def act(self, obs: dict[str, Any], state: Any, deterministic: bool) -> tuple[Any, Any]:
        glimpse, location, env_device = self._adapter(obs)
        out = self.model.step(
            glimpse,
            location,
            state,
            deterministic=deterministic,
            std=self.std,
            generator=None if deterministic else self.generator,
        )
        scores = torch.full_like(out.logits, -1.0)
        scores.scatter_(1, out.logits.argmax(1, keepdim=True), 1.0)
        action = torch.cat([out.location, scores], dim=1)
        if env_device is not None:
            return action.to(env_device), out.state
        return action.cpu().numpy().astype(np.float32), out.state


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

    Runs of the random-glimpse ablation (``meta["location_policy"] == "random"``) load
    with their seeded uniform locations, as they were trained and evaluated.
    """
    payload = load_checkpoint(path, map_location=device)
    model = build_model(payload)
    policy = RAMPolicy(model, meta["env_id"], meta.get("env_kwargs", {}), device=device)
    if meta.get("location_policy") == "random":
        return RandomLocationPolicy(policy, seed=int(meta.get("location_seed", 0)))
    return policy


register_loader("ram", load_ram_policy)
