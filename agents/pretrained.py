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


def export_pretrained(run_dir: str | Path, command: str, dest: Path | None = None) -> Path:
    """Copy a finished RAM run into the package as shipped weights (model only, no optimiser).

    Args:
        run_dir: a ``glimpse train ram`` run folder with ``checkpoint.pt`` and ``eval.json``.
        command: the exact command that produced the run (written to ``COMMAND.md``).
        dest: target folder (default ``agents/pretrained/<env_id>``).

    Returns:
        The folder written.
    """
    import json

    from agents.checkpoints import atomic_write_bytes, load_checkpoint, save_checkpoint, write_json

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    evaluation = json.loads((run_dir / "eval.json").read_text())
    state = load_checkpoint(run_dir / "checkpoint.pt")
    env_kwargs = {k: v for k, v in meta["env_kwargs"].items() if k != "data_dir"}
    dest = dest or PRETRAINED_DIR / meta["env_id"]
    slim = {k: state[k] for k in ("model_state", "model_config", "glimpse_dim", "n_classes")}
    save_checkpoint(
        dest / "model.pt",
        {**slim, "agent": "ram", "env_id": meta["env_id"], "env_kwargs": env_kwargs},
    )
    write_json(
        dest / "meta.json",
        {
            **{k: v for k, v in meta.items() if k != "data_dir"},  # no local paths shipped
            "env_kwargs": env_kwargs,
            "checkpoint": "model.pt",
        },
    )
    write_json(dest / "eval.json", evaluation)
    atomic_write_bytes(
        dest / "COMMAND.md",
        (
            f"# {meta['env_id']}: shipped RAM weights\n\n"
            "Produced by (on a 2-core CPU, see eval.json for wall-clock and settings):\n\n"
            f"```bash\n{command}\n```\n\n"
            f"Test error (deterministic, one rollout per image): "
            f"{100 * evaluation['test_error_rate']:.2f}%; "
            f"one sampled rollout: {100 * evaluation['test_error_rate_sampled']:.2f}%.\n"
            f"Check: `glimpse eval --pretrained {meta['env_id']}`\n"
        ).encode(),
    )
    return dest


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m agents.pretrained RUN_DIR 'COMMAND THAT PRODUCED IT'")
    print(export_pretrained(sys.argv[1], sys.argv[2]))
