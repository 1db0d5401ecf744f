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


def test_pretrained_eval_matches_recorded_result(capsys: pytest.CaptureFixture) -> None:
    recorded = json.loads((pretrained_path("GlimpseMNIST-v0") / "eval.json").read_text())
    # The first 1000 test images (fast); the full split is what eval.json records.
    assert main(["eval", "--pretrained", "GlimpseMNIST-v0", "--json", "--n-images", "1000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_images"] == 1000 and result["agent"] == "ram"
    assert result["error_rate"] < 0.03
    assert recorded["test_error_rate"] < 0.03


def test_unknown_pretrained_id_lists_what_is_shipped() -> None:
    with pytest.raises(ValueError, match="GlimpseMNIST-v0"):
        pretrained_path("NoSuchEnv-v0")
