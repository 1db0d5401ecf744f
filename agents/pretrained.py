"""Trained weights shipped inside the package: ``glimpse eval --pretrained ENV_ID``.

Each shipped model is a run folder ``agents/pretrained/<ENV_ID>/`` holding ``meta.json``,
the checkpoint, its final evaluation (``eval.json``) and ``COMMAND.md``, the command that
produced it.
"""

from __future__ import annotations

from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def available() -> list[str]:
    """Env ids with shipped weights."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "meta.json").is_file())


def pretrained_path(env_id: str) -> Path:
    """Run folder of the shipped model for ``env_id``.

    Raises:
        ValueError: if no weights are shipped for ``env_id`` (the message lists those that are).
    """
    path = PRETRAINED_DIR / env_id
    if not (path / "meta.json").is_file():
        raise ValueError(f"no pretrained weights for {env_id!r}; shipped: {available() or 'none'}")
    return path
