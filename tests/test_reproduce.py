"""``benchmarks/reproduce.py``: the row table, the Markdown report and one tiny real row."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import import_benchmark

pytestmark = pytest.mark.usefixtures("glimpse_data")


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The script imported as a module (registered while the tests run: dataclasses need it)."""
    with pytest.MonkeyPatch.context() as mp:
        yield import_benchmark("reproduce", mp)


#: The paper's numbers (RAM.md, NIPS 2014 tables), typed once more to check the script's.
EXPECTED_PAPER = {
    "t1-mnist-fc256": 1.69,
    "t1-mnist-conv": 1.21,
    "t1-mnist-2": 3.79,
    "t1-mnist-3": 1.51,
    "t1-mnist-4": 1.54,
    "t1-mnist-5": 1.34,
    "t1-mnist-6": 1.12,
    "t1-mnist-7": 1.07,
    "t1-translated-fc64": 6.42,
    "t1-translated-fc256": 2.63,
    "t1-translated-conv": 1.62,
    "t1-translated-4": 1.54,
    "t1-translated-6": 1.22,
    "t1-translated-8": 1.2,
    "t1-translated-random8": None,
    "t2-cluttered60-fc64": 28.58,
    "t2-cluttered60-fc256": 11.96,
    "t2-cluttered60-conv": 8.09,
    "t2-cluttered60-4": 4.96,
    "t2-cluttered60-6": 4.08,
    "t2-cluttered60-8": 4.04,
    "t2-cluttered60-random8": 14.4,
    "t2-cluttered100-conv": 14.35,
    "t2-cluttered100-4": 9.41,
    "t2-cluttered100-6": 8.31,
    "t2-cluttered100-8": 8.11,
    "t2-cluttered100-random8": 28.4,
}


def test_rows_match_the_paper_and_the_presets(script: ModuleType) -> None:
    from train.cli import build_parser
    from train.ram import PRESETS

    assert [row.id for row in script.ROWS] == list(EXPECTED_PAPER)
    parser = build_parser()
    for row in script.ROWS:
        assert row.paper == EXPECTED_PAPER[row.id], row.id
        assert row.id.startswith(f"t{row.table}-{row.task}-")
        capped = row.kind == "ram" or script._baseline_cap_supported()
        args = parser.parse_args(
            row.train_args("runs/x", threads=1, max_minutes=5.0, cap_supported=capped)
        )
        assert getattr(args, "max_minutes", None) == (5.0 if capped else None)
        assert args.run_dir == "runs/x" and args.threads == 1
        if row.kind == "ram":
            preset = PRESETS[args.preset]
            assert preset["env"] == row.env_id and preset["n_glimpses"] == row.glimpses
            policy = preset.get("location_policy", "learned")
            assert policy == row.location_policy == ("random" if "random" in row.id else "learned")
        else:
            assert args.env == row.env_id and args.arch == row.model and row.glimpses is None
    assert {r.table for r in script.ROWS if r.task in ("mnist", "translated")} == {1}
    assert {r.table for r in script.ROWS if r.task.startswith("cluttered")} == {2}
    assert script.select_rows(["t1-mnist-7"], [2])[0].id == "t1-mnist-7"
    assert len(script.select_rows([], [1, 2])) == len(script.ROWS)
    with pytest.raises(SystemExit):
        script.select_rows(["t9-nothing"], [])


def _fake_record(row: Any, **overrides: Any) -> dict[str, Any]:
    record = {
        "row": row.id,
        "table": row.table,
        "test_error": 1.234,
        "test_error_sampled": 1.5 if row.kind == "ram" else None,
        "test_images": 10_000,
        "parameters": 209_677,
        "train_wall_s": 125.0,
        "epochs": 150.0,
        "epochs_planned": 150.0,
        "capped": False,
        "max_minutes": None,
        "command": "glimpse train ram --preset mnist-7",
        "gif": None,
    }
    return {**record, **overrides}


def test_markdown_report_from_fake_rows(script: ModuleType, tmp_path: Path) -> None:
    from agents.checkpoints import write_json

    rows = script.ROWS_BY_ID
    write_json(tmp_path / "t1-mnist-7.json", _fake_record(rows["t1-mnist-7"]))
    capped = _fake_record(
        rows["t2-cluttered60-8"],
        test_error=20.5,
        test_images=1000,
        epochs=3.25,
        capped=True,
        max_minutes=30.0,
        gif="gifs/t2-cluttered60-8.gif",
    )
    write_json(tmp_path / "t2-cluttered60-8.json", capped)
    write_json(tmp_path / "unrelated.json", {"row": "nope"})  # ignored
    path = script.write_report(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "README.md"
    assert "2 of 27 rows run" in text
    table_rows = [line for line in text.splitlines() if re.match(r"\| t[12]-", line)]
    assert len(table_rows) == len(script.ROWS)
    line = next(x for x in table_rows if x.startswith("| t1-mnist-7 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:9] == [
        "t1-mnist-7",
        "28x28 MNIST",
        "RAM, 7 glimpses",
        "7",
        "1.07",
        "**1.23**",
        "1.50",
        "209,677",
        "150",
    ]
    assert cells[9] == "2.1 min" and cells[10] == "`glimpse train ram --preset mnist-7`"
    line = next(x for x in table_rows if x.startswith("| t2-cluttered60-8 |"))
    assert "**20.50 (1,000 images)**" in line and "3.25 of 150 (capped at 30 min)" in line
    line = next(x for x in table_rows if x.startswith("| t2-cluttered60-random8 |"))
    assert "| 14.40 | not run |" in line and "--location-policy" not in line
    assert "--preset cluttered60-random8" in line
    line = next(x for x in table_rows if x.startswith("| t1-translated-random8 |"))
    assert "| 8 | - | not run |" in line
    line = next(x for x in table_rows if x.startswith("| t1-mnist-fc256 |"))
    assert "| - | 1.69 | not run |" in line and "glimpse train baseline --arch fc256" in line
    assert "![t2-cluttered60-8](gifs/t2-cluttered60-8.gif)" in text
    assert text.index("## Table 1") < text.index("t1-mnist-7") < text.index("## Table 2")
    listing = script.list_rows(tmp_path)
    assert "t1-mnist-7" in listing and "1.23%" in listing and "(capped)" in listing


def test_tiny_real_row_end_to_end(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The 2-glimpse row for 3 iterations of a tiny model, 100 test images, capped."""
    out_dir, runs_dir = tmp_path / "results", tmp_path / "runs"
    tiny = (
        "--batch-size 16 --glimpse-hidden 16 --location-hidden 16 --glimpse-out 32 "
        "--core-hidden 32 --eval-images 64 --test-images 100 --no-progress"
    )
    common = ["--out-dir", str(out_dir), "--runs-dir", str(runs_dir), "--threads", "1"]
    argv = ["--row", "t1-mnist-2", "--epochs", "0.001", "--max-minutes", "30", *common]
    assert script.main([*argv, "--extra", tiny]) == 0

    record = json.loads((out_dir / "t1-mnist-2.json").read_text())
    run_dir = runs_dir / "t1-mnist-2"
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert record["test_error"] == pytest.approx(100 * evaluation["test_error_rate"])
    assert record["test_images"] == 100 and record["glimpses"] == 2
    assert record["paper_test_error"] == 3.79 and record["location_policy"] == "learned"
    assert record["parameters"] == evaluation["parameters"] > 0  # counted from the checkpoint
    assert record["iterations"] == record["iterations_planned"] == 3  # 0.001 * 50,000 / 16
    assert record["epochs"] == pytest.approx(48 / 50_000) and record["capped"] is False
    assert record["max_minutes"] == 30.0 and record["train_wall_s"] > 0
    assert record["command"].startswith(
        "glimpse train ram --preset mnist-2 --epochs 0.001 --threads 1 --max-minutes 30 --run-dir "
    )
    assert record["command"].endswith(tiny)
    assert (out_dir / record["gif"]).is_file() and record["gif"] == "gifs/t1-mnist-2.gif"

    text = (out_dir / "README.md").read_text()
    assert "1 of 27 rows run" in text
    line = next(x for x in text.splitlines() if x.startswith("| t1-mnist-2 |"))
    assert f"**{record['test_error']:.2f} (100 images)**" in line
    assert record["command"] in line

    # The same run recorded by hand as another row is refused; as its own row, accepted.
    with pytest.raises(ValueError, match="glimpses"):
        script.record_row(script.ROWS_BY_ID["t1-mnist-7"], run_dir, out_dir, render=False)
    assert script.main(["--from-run", "t1-mnist-2", str(run_dir), "--no-render", *common]) == 0
    again = json.loads((out_dir / "t1-mnist-2.json").read_text())
    assert again["test_error"] == record["test_error"] and again["gif"] is None
    assert again["command"].startswith("glimpse train ram --n-glimpses 2 --batch-size 16 ")
    assert "--epochs 0.001" in again["command"] and "--max-minutes 30" in again["command"]
    assert again["model"] == record["model"] == "RAM, 2 glimpses, h_g 16, h_l 16, g 32, h 32"


def test_model_label_names_the_core_sizes_and_the_training_split(script: ModuleType) -> None:
    row = script.ROWS_BY_ID["t1-translated-8"]
    assert script.model_label(row, {"core": "rnn"}) == "RAM, 8 glimpses"
    assert script.model_label(row, {}) == "RAM, 8 glimpses"
    assert script.model_label(row, {"core": "gru"}) == "RAM, 8 glimpses, GRU core"
    assert script.model_label(row, {"core": "gru", "split": "train_full"}) == (
        "RAM, 8 glimpses, GRU core, 60k training digits"
    )
    assert script.model_label(row, {"split": "train"}) == "RAM, 8 glimpses"
    sized = {"core": "gru", "glimpse_hidden": 256, "glimpse_out": 384, "core_hidden": 384}
    assert script.model_label(row, {**sized, "location_hidden": 128}) == (
        "RAM, 8 glimpses, GRU core, h_g 256, g 384, h 384"
    )
    assert script.model_label(row, {"location_mlp_hidden": 64, "split": "train_full"}) == (
        "RAM, 8 glimpses, location MLP 64, 60k training digits"
    )
    baseline = script.ROWS_BY_ID["t1-mnist-conv"]
    assert script.model_label(baseline, {"core": "gru", "core_hidden": 512}) == baseline.label
    record = {"test_error": 1.5, "test_images": 10_000, "test_error_sampled": None,
              "parameters": 1, "epochs": 1.0, "capped": False, "train_wall_s": 60.0,
              "command": "glimpse train ram ...", "model": "RAM, 8 glimpses, GRU core"}  # fmt: skip
    line = next(
        x
        for x in script.markdown_table(1, {row.id: record}).splitlines()
        if x.startswith(f"| {row.id} |")
    )
    assert "| RAM, 8 glimpses, GRU core |" in line
