"""Checkpoint files: safe loading (``weights_only``), NumPy state, the previous checkpoint
kept and used when the newest is unreadable, and ``meta.json`` confined to its run folder."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoints import (
    CheckpointError,
    corrupt_path,
    load_checkpoint,
    load_latest,
    previous_path,
    save_checkpoint,
)
from agents.policy import read_meta
from agents.pretrained import PRETRAINED_DIR


class _MakesFolder:
    """An object whose unpickling creates a folder: what a crafted checkpoint could do."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.target,))


def _crafted(path: Path, target: Path, **extra: object) -> Path:
    torch.save(
        {"agent": "ram", "env_id": "GlimpseMNIST-v0", "x": _MakesFolder(target), **extra}, path
    )
    return path


def test_a_crafted_checkpoint_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "created-by-the-checkpoint"
    evil = _crafted(tmp_path / "evil.pt", target)
    with pytest.raises(CheckpointError, match="refused to load") as info:
        load_checkpoint(evil)
    assert info.value.reason == "unsafe" and "mkdir" in str(info.value)
    with pytest.raises(CheckpointError):
        read_meta(evil)  # a .pt without meta.json: its metadata is read from the payload
    assert not target.exists()


def test_numpy_state_round_trips_through_plain_tensors(tmp_path: Path) -> None:
    keys = np.array([0, 2**64 - 1, 12345678901234567890], dtype=np.uint64)
    payload = {
        "env_state": {
            "keys": keys,
            "episodes": np.arange(6, dtype=np.int64).reshape(2, 3),
            "scalar": np.float32(0.5),
            "zero_d": np.array(7, dtype=np.int16),
            "empty": np.zeros((0, 4), dtype=np.float32),
            "np_random": {"state": {"state": 2**127 + 3, "inc": 5}, "bit_generator": "PCG64"},
        },
        "weights": {"w": torch.ones(2, 3)},
        "tuple": (1, 2.5, None, True),
        "int_keys": {0: "a", 1: "b"},
    }
    path = save_checkpoint(tmp_path / "c.pt", payload)
    # Nothing in the file needs an allow-list: plain weights_only loading reads it.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    loaded = load_checkpoint(path)
    state = loaded["env_state"]
    assert state["keys"].dtype == np.uint64 and np.array_equal(state["keys"], keys)
    assert state["episodes"].shape == (2, 3) and state["episodes"].dtype == np.int64
    assert state["scalar"] == 0.5 and isinstance(state["scalar"], float)
    assert state["zero_d"].shape == () and int(state["zero_d"]) == 7
    assert state["empty"].shape == (0, 4) and state["empty"].dtype == np.float32
    assert state["np_random"]["state"]["state"] == 2**127 + 3
    assert torch.equal(loaded["weights"]["w"], torch.ones(2, 3))
    assert loaded["tuple"] == (1, 2.5, None, True) and loaded["int_keys"] == {0: "a", 1: "b"}


def test_saving_other_objects_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"payload\['cfg'\]: a _MakesFolder"):
        save_checkpoint(tmp_path / "c.pt", {"cfg": _MakesFolder(tmp_path / "x")})
    with pytest.raises(TypeError, match=r"payload\['p'\]: a Point"):
        save_checkpoint(tmp_path / "c.pt", {"p": collections.namedtuple("Point", "x y")(1, 2)})
    with pytest.raises(TypeError, match="Python objects"):
        save_checkpoint(tmp_path / "c.pt", {"a": np.array([object()])})
    assert not (tmp_path / "c.pt").exists()


def test_module_state_dicts_are_saved_as_they_are(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = module.state_dict()
    save_checkpoint(tmp_path / "m.pt", {"model_state": state, "keys": np.arange(2)})
    loaded = load_checkpoint(tmp_path / "m.pt")["model_state"]
    assert list(loaded) == list(state) and loaded._metadata == state._metadata
    module.load_state_dict(loaded)


def test_checkpoints_of_the_older_format_with_numpy_arrays_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"keys": np.arange(3, dtype=np.uint64), "x": np.float64(1.5)}, path)
    loaded = load_checkpoint(path)
    assert np.array_equal(loaded["keys"], np.arange(3, dtype=np.uint64)) and loaded["x"] == 1.5


@pytest.mark.parametrize(
    "model", sorted(PRETRAINED_DIR.glob("*/model.pt")), ids=lambda p: p.parent.name
)
def test_shipped_models_load_with_weights_only(model: Path) -> None:
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(model)) == []
    assert "model_state" in load_checkpoint(model)


@pytest.mark.parametrize(
    "content", [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"], ids=str
)
def test_corrupt_files_give_a_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert info.value.reason == "corrupt" and "\n" not in str(info.value)


def test_a_checkpoint_that_is_not_a_dict_is_refused(tmp_path: Path) -> None:
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="not a glimpse checkpoint"):
        load_checkpoint(tmp_path / "t.pt")


def test_the_previous_checkpoint_is_kept_and_used_when_the_newest_is_corrupt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"iteration": 1}, keep_previous=True)
    assert not previous_path(path).exists()  # nothing to keep yet
    save_checkpoint(path, {"iteration": 2}, keep_previous=True)
    assert load_checkpoint(previous_path(path))["iteration"] == 1
    assert load_checkpoint(path)["iteration"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]

    notes: list[str] = []
    assert load_latest(path, load_checkpoint, notes.append)["iteration"] == 2
    assert notes == []

    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert load_latest(path, load_checkpoint, notes.append)["iteration"] == 1
    assert (
        len(notes) == 1 and "corrupt or truncated" in notes[0] and "checkpoint.prev.pt" in notes[0]
    )
    # The unreadable file is moved aside: the next save keeps the good one as previous.
    assert corrupt_path(path).is_file() and not path.exists()
    save_checkpoint(path, {"iteration": 3}, keep_previous=True)
    assert load_checkpoint(previous_path(path))["iteration"] == 1

    path.write_bytes(b"garbage")
    previous_path(path).write_bytes(b"")
    with pytest.raises(CheckpointError, match="no usable checkpoint") as info:
        load_latest(path, load_checkpoint, notes.append)
    assert "checkpoint.pt" in str(info.value) and "checkpoint.prev.pt" in str(info.value)
    assert load_latest(tmp_path / "none.pt", load_checkpoint) is None


def _run_folder(tmp_path: Path, checkpoint: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    meta = {"agent": "ram", "env_id": "GlimpseMNIST-v0", "env_kwargs": {}, "checkpoint": checkpoint}
    (run / "meta.json").write_text(json.dumps(meta))
    return run


@pytest.mark.parametrize("name", ["../outside.pt", "sub/../../outside.pt", "ABSOLUTE", "link.pt"])
def test_meta_json_cannot_point_outside_its_run_folder(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside.pt"
    save_checkpoint(outside, {"agent": "ram"})
    if name == "ABSOLUTE":
        name = str(outside)
    run = _run_folder(tmp_path, name)
    if name == "link.pt":
        (run / "link.pt").symlink_to(outside)
    with pytest.raises(ValueError, match="outside the run folder"):
        read_meta(run)


def test_meta_json_names_a_checkpoint_inside_the_folder(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, "sub/checkpoint.pt")
    assert read_meta(run)[0] == run / "sub" / "checkpoint.pt"
    (run / "meta.json").write_text(json.dumps({"agent": "ram"}))
    with pytest.raises(ValueError, match="no 'checkpoint' entry"):
        read_meta(run)
    (run / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_meta(run)
