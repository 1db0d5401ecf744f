"""What every trained agent offers for evaluation and rendering, and how to load one.

Each kind of glimpse agent (RAM, SB3 PPO, RecurrentPPO) provides a :class:`Policy` adapter
and registers a loader under its ``"agent"`` name with :func:`register_loader`, in a module
listed in :data:`_LOADER_MODULES`. ``glimpse eval``, ``glimpse render`` and ``glimpse bench``
then load any of them from a run folder through :func:`load_policy`. Supervised baselines
see whole canvases, not glimpses, and have no loader: ``glimpse eval`` special-cases them
(:func:`agents.baselines.evaluate_baseline`) and ``glimpse bench`` refuses them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.play import play_batches

EVAL_MODES = ("deterministic", "sample")


class Policy(Protocol):
    """A trained agent acting on batched observations of a :class:`GlimpseVectorEnv`.

    ``act`` is called once per step on the whole batch; ``state`` carries any memory
    (recurrent state, glimpse history) between steps of the same episodes.
    """

    #: The env id and keyword arguments the agent was trained on.
    env_id: str
    env_kwargs: dict[str, Any]

    def initial_state(self, num_envs: int) -> Any:
        """Memory at the start of ``num_envs`` fresh episodes."""
        ...

    def act(
        self, obs: dict[str, np.ndarray], state: Any, deterministic: bool
    ) -> tuple[np.ndarray, Any]:
        """Actions float32 ``(N, 2 + C)`` for batched ``obs`` and the next state.

        ``deterministic``: mean locations and argmax class; else sampled from the policy.
        """
        ...


@dataclass
class LoadedPolicy:
    """A policy together with where it came from."""

    policy: Policy
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[Path, dict[str, Any], str], Policy]
_LOADERS: dict[str, Loader] = {}


def register_loader(agent: str, loader: Loader) -> None:
    """Register ``loader(path, meta, device) -> Policy`` for checkpoints of kind ``agent``."""
    _LOADERS[agent] = loader


#: Modules that register loaders, with the optional package each needs (None: always).
_LOADER_MODULES: tuple[tuple[str, str | None], ...] = (
    ("agents.ram_policy", None),
    ("agents.sb3_policy", "stable_baselines3"),
)


def _ensure_loaders() -> None:
    """Import the agent modules that register loaders (optional ones only if installed)."""
    import importlib
    import importlib.util

    for module, needs in _LOADER_MODULES:
        if needs is None or importlib.util.find_spec(needs) is not None:
            importlib.import_module(module)


def read_meta(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """Find a checkpoint's metadata.

    ``path`` may be a run folder (its ``checkpoint.pt`` or ``meta.json``), a ``.pt``
    checkpoint, or a file with a sidecar ``<name>.json`` / ``meta.json`` next to it.

    Returns:
        ``(checkpoint file, metadata with at least "agent", "env_id", "env_kwargs")``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found")
    if path.is_dir():
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(
                f"{path} is a folder without meta.json: not a glimpse run folder"
            )
        meta = _read_json(meta_file)
        return checkpoint_in_run_dir(path, meta, meta_file), meta
    for sidecar in (path.with_suffix(".json"), path.parent / "meta.json"):
        if sidecar.is_file() and sidecar != path:
            meta = _read_json(sidecar)
            if "agent" in meta:
                return path, meta
    if path.suffix == ".pt":
        from agents.checkpoints import load_checkpoint

        payload = load_checkpoint(path)
        return path, {k: payload[k] for k in ("agent", "env_id", "env_kwargs") if k in payload}
    raise ValueError(f"cannot tell what kind of agent {path} holds (no meta.json next to it)")


def _read_json(path: Path) -> dict[str, Any]:
    """A metadata file's JSON object (a clear ``ValueError`` when it is not one)."""
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}): the run folder is damaged; restore the file "
            "or retrain"
        ) from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path} holds a JSON {type(meta).__name__}, not an object")
    return meta


def checkpoint_in_run_dir(run_dir: Path, meta: dict[str, Any], meta_file: Path) -> Path:
    """The checkpoint a run folder's ``meta.json`` names, confined to that folder.

    Raises:
        ValueError: if ``"checkpoint"`` is missing, not a plain file name or relative path
            inside ``run_dir`` (absolute paths, ``..`` and links leading out are refused).
    """
    name = meta.get("checkpoint")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{meta_file} has no 'checkpoint' entry (the file name of the run's "
            "checkpoint, e.g. 'checkpoint.pt'): add it, or give the checkpoint file itself"
        )
    relative = Path(name)
    root = run_dir.resolve()
    inside = not relative.is_absolute() and not relative.drive and ".." not in relative.parts
    if inside:
        try:
            (root / relative).resolve().relative_to(root)
        except ValueError:
            inside = False
    if not inside:
        raise ValueError(
            f"{meta_file} names the checkpoint {name!r}, which is outside the run folder "
            f"{run_dir}: refused (a run folder's checkpoint must be a file inside it)"
        )
    return run_dir / relative


#: ``env_kwargs`` that belong to one use of an env, never to a trained agent.
_PER_USE_ENV_KWARGS: tuple[str, ...] = ("split", "sequential", "autoreset_mode", "render_mode")


def env_kwargs_from_meta(meta: Mapping[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """The env keyword arguments of a trained agent, from its ``meta.json``: the env's
    settings it was trained with, and the data folder.

    The one reader of ``env_kwargs`` saved by a run (``glimpse eval``, ``render``, reproduce):
    keys that belong to one use of an env (``split``, ``sequential``, ...) are dropped.

    Args:
        meta: the run's ``meta.json`` (any schema version).
        data_dir: MNIST folder given now; None: the run's own if that folder exists here
            (else the default: ``$GLIMPSE_ENV_DATA`` or the user cache).

    Returns:
        Keyword arguments for ``gym.make`` / ``gym.make_vec`` (without the split).
    """
    kwargs = dict(meta.get("env_kwargs") or {})
    saved = kwargs.pop("data_dir", None) or meta.get("data_dir")  # version 0: in env_kwargs
    for key in _PER_USE_ENV_KWARGS:
        kwargs.pop(key, None)
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    elif saved and Path(saved).is_dir():
        kwargs["data_dir"] = str(saved)
    return kwargs


def load_policy(path: str | os.PathLike, device: str = "cpu") -> LoadedPolicy:
    """Load any trained agent saved by ``glimpse train``.

    Raises:
        ValueError: if the checkpoint's agent kind has no loader (e.g. the ``sb3`` extra is
            missing).
    """
    file, meta = read_meta(path)
    _ensure_loaders()
    agent = meta.get("agent")
    if agent not in _LOADERS:
        raise ValueError(
            f"no loader for agent kind {agent!r} (known: {sorted(_LOADERS)}); "
            "for SB3 models install the extra: pip install 'glimpse-env[sb3]'"
        )
    loader_meta = {**meta, "env_kwargs": env_kwargs_from_meta(meta)}
    return LoadedPolicy(_LOADERS[agent](file, loader_meta, device), file, meta)


def check_policy_fits(policy: Policy, env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Refuse an env whose glimpses or action layout (the stop action of the adaptive envs)
    differ from those ``policy`` was trained on.

    Reads the spaces only (no env is built, no data loaded).

    Raises:
        ValueError: naming both glimpse shapes (a model fed the wrong shape would fail deep
            inside with a matrix-size error, or worse, run on the wrong input).
    """
    from glimpse_env.registration import VARIANTS, spaces_of

    if policy.env_id not in VARIANTS or env_id not in VARIANTS:
        return
    trained_obs, trained_actions = spaces_of(policy.env_id, policy.env_kwargs)
    given_obs, given_actions = spaces_of(env_id, dict(env_kwargs))
    trained, given = trained_obs["glimpse"].shape, given_obs["glimpse"].shape
    if given != trained:
        raise ValueError(
            f"the policy was trained on {policy.env_id} with glimpses of shape (scales, g, g) "
            f"= {trained}, but {env_id} gives {given}; evaluate it on {policy.env_id} or on an "
            "env with the same glimpse_size and n_scales"
        )
    if given_actions.shape != trained_actions.shape:
        stops = policy_stops(policy.env_id, policy.env_kwargs)
        raise ValueError(
            f"the policy was trained on {policy.env_id}, "
            + ("with" if stops else "without")
            + f" the stop action ({trained_actions.shape[0]} action entries), but {env_id} "
            f"takes {given_actions.shape[0]}; evaluate it on {policy.env_id}"
        )


def evaluate_policy(
    policy: Policy,
    env_id: str | None = None,
    split: str = "test",
    n_images: int | None = None,
    mode: str = "deterministic",
    num_envs: int = 500,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Test error from exactly one rollout per image of a split.

    The benchmark's measurement (:func:`glimpse_env.bench.evaluate`, the one evaluation
    loop): the split's digits are visited in order (``sequential=True``), image ``i`` once,
    with its fixed canvas and start location (a pure function of ``(split, i)``). Nothing is
    averaged over repeated rollouts.

    Args:
        policy: the agent.
        env_id: defaults to the id the policy was trained on.
        split: ``"test"`` or ``"val"`` (or a training split).
        n_images: first ``n_images`` digits of the split; the whole split when ``None``.
        mode: ``"deterministic"`` (mean locations, argmax class) or ``"sample"``.
        num_envs: episodes stepped together.
        env_kwargs: env keyword arguments; default those the policy was trained with.
        progress: show a progress bar.
        seed: the evaluation seed: of the envs' reset and, in ``"sample"`` mode, of the
            sampled actions (:func:`glimpse_env.play.seeded_sampling`), so that an evaluation
            gives the same result every time.

    Returns:
        ``{"error_rate", "accuracy", "n_images", "n_correct", "env_id", "split", "mode"}``,
        and on an adaptive env (``stop="action"``) ``"mean_glimpses"`` and
        ``"glimpses_by_class"``.

    Raises:
        ValueError: for a bad mode, an env whose glimpses the policy was not trained on, or
            (:class:`glimpse_env.bench.BenchPolicyError`) a policy that breaks the protocol.
    """
    from glimpse_env import bench

    if mode not in EVAL_MODES:
        raise ValueError(f"mode must be one of {EVAL_MODES}, got {mode!r}")
    env_id = env_id or policy.env_id
    kwargs = {**(policy.env_kwargs if env_kwargs is None else env_kwargs)}
    check_policy_fits(policy, env_id, kwargs)
    result = bench.evaluate(
        policy,
        env_id,
        mode=mode,
        n_images=n_images,
        num_envs=num_envs,
        seeds=(seed,),
        env_kwargs=kwargs,
        progress=progress,
        split=split,
    )
    out = evaluation_result(result.rollouts[0].n_correct, result.n_images, env_id, split, mode)
    if policy_stops(env_id, kwargs):
        out["mean_glimpses"] = result.mean_glimpses
        out["glimpses_by_class"] = result.glimpses_by_class
    return out


def policy_stops(env_id: str, env_kwargs: dict[str, Any] | None = None) -> bool:
    """Whether ``gym.make(env_id, **env_kwargs)`` ends episodes on the agent's stop score."""
    from glimpse_env.registration import VARIANTS

    variant = VARIANTS.get(env_id)
    stop = {**(variant.kwargs if variant else {}), **(env_kwargs or {})}.get("stop", "never")
    return stop == "action"


def evaluate_episodes(
    policy: Policy,
    envs: gym.vector.VectorEnv,
    n_episodes: int,
    *,
    deterministic: bool = True,
    seed: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy over the first ``n_episodes`` episodes of any fixed-horizon vector env.

    The same loop as :func:`evaluate_policy` (:func:`glimpse_env.play.play_batches`, one
    rollout per episode, nothing averaged), on an env the caller built (e.g. a test env
    that is not a glimpse env): ``ceil(n_episodes / num_envs)`` batches from
    ``envs.reset(seed=seed)``.

    Args:
        policy: the agent.
        envs: the vector env (every sub-env ends at the same step).
        n_episodes: episodes to score.
        deterministic: mean locations and argmax class (else sampled, seeded by ``seed``).
        seed: reset seed (and sampling seed; 0 when None).
        progress: show a progress bar.

    Returns:
        ``{"accuracy", "error_rate", "mean_return", "n_episodes", "n_correct", "horizon",
        "mode"}``.
    """
    successes, returns, horizon = [], [], 0
    batches = play_batches(
        policy,
        envs,
        math.ceil(n_episodes / envs.num_envs),
        deterministic=deterministic,
        seed=seed,
        progress=progress,
    )
    for batch in batches:
        successes.append(batch.success)
        returns.append(batch.returns)
        horizon = batch.horizon
    ok = np.concatenate(successes)[:n_episodes]
    accuracy = float(ok.mean()) if n_episodes else 0.0
    return {
        "accuracy": accuracy,
        "error_rate": 1.0 - accuracy,
        "mean_return": float(np.concatenate(returns)[:n_episodes].mean()),
        "n_episodes": int(n_episodes),
        "n_correct": int(ok.sum()),
        "horizon": horizon,
        "mode": "deterministic" if deterministic else "sample",
    }


def evaluation_result(
    n_correct: int, n_images: int, env_id: str, split: str, mode: str
) -> dict[str, Any]:
    """The result dict every evaluation returns (``glimpse eval --json`` prints it)."""
    accuracy = n_correct / n_images if n_images else 0.0
    return {
        "error_rate": 1.0 - accuracy,
        "accuracy": accuracy,
        "n_images": n_images,
        "n_correct": n_correct,
        "env_id": env_id,
        "split": split,
        "mode": mode,
    }
