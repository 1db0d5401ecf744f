"""``glimpse eval`` / ``render`` of a trained policy: the env it is evaluated on must give the
glimpses it was trained on, and loading it reads no data before ``--data-dir`` is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")


def _error_line(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("command", [["eval", "--n-images", "10"], ["render", "--n", "2"]])
def test_a_policy_on_an_env_with_other_glimpses_is_refused(
    command: list[str], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """It failed deep inside with "unexpected RuntimeError: mat1 and mat2 shapes..."."""
    argv = [*command, "--pretrained", "GlimpseMNIST-v0", "--env", "GlimpseClutteredMNIST-v0"]
    if command[0] == "render":
        argv += ["--out", str(tmp_path / "r.gif")]
    line = _error_line(argv, capsys)
    assert "trained on GlimpseMNIST-v0" in line and "(1, 8, 8)" in line and "(3, 12, 12)" in line


def test_data_dir_is_used_when_the_environment_variable_is_wrong(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """Loading the weights built an env from $GLIMPSE_ENV_DATA before --data-dir applied,
    and the bad folder was reported as a corrupt checkpoint."""
    monkeypatch.setenv("GLIMPSE_ENV_DATA", "/nonexistent/mnist")
    argv = ["eval", "--pretrained", "GlimpseMNIST-v0", "--n-images", "50"]
    assert main([*argv, "--data-dir", str(mnist_dir)]) == 0
    assert "error" in capsys.readouterr().out
    line = _error_line(argv, capsys)
    assert "/nonexistent/mnist" in line and "checkpoint" not in line
