"""The weights shipped inside the package load and do what their eval.json says."""

from __future__ import annotations

import json

import pytest

from agents.pretrained import PRETRAINED_DIR, available, pretrained_path
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_glimpse_mnist_weights_are_shipped() -> None:
    assert "GlimpseMNIST-v0" in available()
    folder = pretrained_path("GlimpseMNIST-v0")
    assert folder.parent == PRETRAINED_DIR
    assert (folder / "COMMAND.md").read_text().count("glimpse train ram") == 1


@pytest.mark.parametrize("env_id", available())
def test_pretrained_eval_matches_recorded_result(
    env_id: str, capsys: pytest.CaptureFixture
) -> None:
    folder = pretrained_path(env_id)
    assert (folder / "COMMAND.md").read_text().count("glimpse train ram") == 1
    recorded = json.loads((folder / "eval.json").read_text())["test_error_rate"]
    # The first 1000 test images (fast); the full split is what eval.json records.
    assert main(["eval", "--pretrained", env_id, "--json", "--n-images", "1000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_images"] == 1000 and result["agent"] == "ram"
    assert result["env_id"] == env_id
    # a 1000-image subset of a 10,000-image error rate: within about 4 standard errors
    assert (
        abs(result["error_rate"] - recorded) < 4 * (recorded * (1 - recorded) / 1000) ** 0.5 + 0.005
    )


def test_unknown_pretrained_id_lists_what_is_shipped() -> None:
    with pytest.raises(ValueError, match="GlimpseMNIST-v0"):
        pretrained_path("NoSuchEnv-v0")
