"""Running the ``glimpse`` command in-process, shared by the CLI tests of the benchmark."""

from __future__ import annotations

from typing import Any

import pytest

from glimpse_env.bench import TIMING_KEYS
from train.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``glimpse ARGV`` in-process: ``(exit code, stdout, stderr)`` of this call only."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def untimed(value: Any) -> Any:
    """A bench report (or any part of it) without its timings (:data:`TIMING_KEYS`)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value
