"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def import_benchmark(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/<name>.py`` imported as the module ``name``, registered in
    ``sys.modules`` while ``monkeypatch`` lasts (its dataclasses need that), with
    ``benchmarks/`` on ``sys.path`` as when the script runs (for its sibling imports)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="module")
def glimpse_data(mnist_dir: Path) -> Iterator[Path]:
    """Point ``$GLIMPSE_ENV_DATA`` at the test MNIST folder for one test module.

    Not autouse: env test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("glimpse_data")`` so that ``gym.make(id)``,
    ``gym.make_vec(id)`` and subprocesses find the data without ``data_dir``. Module-scoped
    and undone afterwards, so it cannot leak into ``test_datasets.py`` (which unsets the
    variable for its own tests anyway).
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLIMPSE_ENV_DATA", str(mnist_dir))
        yield mnist_dir


@pytest.fixture
def numpy_sensor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the NumPy reference code of the sensor and canvases, not the compiled loops."""
    from glimpse_env import _kernels

    monkeypatch.setattr(_kernels, "ENABLED", False)


@pytest.fixture(params=["numpy", "compiled"])
def sensor_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once on the NumPy reference code and once on the compiled loops
    (:mod:`glimpse_env._kernels`; numba is in the ``dev`` extra, so CI always has it)."""
    from glimpse_env import _kernels

    if request.param == "compiled":
        pytest.importorskip("numba", reason="the compiled loops need numba (extra 'fast')")
    monkeypatch.setattr(_kernels, "ENABLED", request.param == "compiled")
    return str(request.param)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for the module (``pytestmark = usefixtures(...)``).

    Tiny models are as fast on one thread, and immune to a busy second core: with 2 OpenMP
    threads and another process saturating one of the 2 cores, every op waits for the
    descheduled thread (the trainer tests went from ~10 s to minutes).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
