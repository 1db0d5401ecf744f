"""Integration tests: the examples under ``examples/`` with other RL libraries.

They run in their own virtual environment (Ray pins an older Gymnasium than the main suite
uses), built by ``.ci/run`` from the ``integrations`` extra. Every test runs an example with
a tiny budget and checks something that can fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _mnist_folder() -> None:
    """The tests read MNIST from ``$GLIMPSE_ENV_DATA`` and never download it."""
    folder = os.environ.get("GLIMPSE_ENV_DATA")
    if not folder or not Path(folder).is_dir():
        raise RuntimeError("set GLIMPSE_ENV_DATA to a folder with the MNIST files (.ci/run does)")
