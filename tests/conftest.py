"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the four original MNIST ``.gz`` files.

    Taken from ``$GLIMPSE_ENV_DATA`` if set, else ``<repo>/../shared/data/mnist``.
    Fails (not skips) when the folder is missing: CI always provides it.
    """
    folder = Path(
        os.environ.get("GLIMPSE_ENV_DATA") or REPO_ROOT.parent / "shared" / "data" / "mnist"
    )
    if not folder.is_dir():
        pytest.fail(
            f"MNIST test data folder {folder} not found: set GLIMPSE_ENV_DATA to a folder "
            "holding the four MNIST .gz files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)."
        )
    return folder
