"""``glimpse bench leaderboard``: chance is at chance, the shipped model's row is what
``glimpse bench`` measures, the paper's rows are there and marked, two runs agree, and
errors are one line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glimpse_env.bench import PROTOCOL, TIMING_KEYS
from glimpse_env.registration import ENV_IDS
from train.cli import main
from train.leaderboard import PAPER, PAPER_MARK, ChancePolicy, paper_entries

pytestmark = pytest.mark.usefixtures("glimpse_data")

ENV = "GlimpseMNIST-v0"
N = 200


def _glimpse(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, glimpse_data: Path) -> dict[str, Any]:
    """Two leaderboard runs into the same folder (the JSON of each) and the bench's own
    result of the shipped model on the same images."""
    out = tmp_path_factory.mktemp("board")
    argv = ["bench", "leaderboard", "--env", ENV, "--n-images", str(N), "--out", str(out)]
    runs = []
    for _ in range(2):
        assert main(argv) == 0
        runs.append(json.loads((out / "leaderboard.json").read_text()))
    bench_out = tmp_path_factory.mktemp("bench")
    spec = f"pretrained:{ENV}"
    assert main(["bench", "--policy", spec, "--n-images", str(N), "--out", str(bench_out)]) == 0
    bench = json.loads((bench_out / "result.json").read_text())["results"][ENV]
    return {"runs": runs, "bench": bench, "markdown": (out / "leaderboard.md").read_text()}


def _entries(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in report["envs"][ENV]["entries"] if e["kind"] == kind]


def test_report_header(board: dict[str, Any]) -> None:
    report = board["runs"][0]
    assert report["schema_version"] == 1 and report["protocol"] == PROTOCOL
    assert {"package_version", "machine", "command", "paper_source"} <= set(report)
    assert report["machine"]["logical_cpus"] >= 1
    assert report["command"].startswith(f"glimpse bench leaderboard --env {ENV} --n-images {N}")
    assert list(report["envs"]) == [ENV]


def test_chance_is_near_chance(board: dict[str, Any]) -> None:
    (chance,) = [e for e in _entries(board["runs"][0], "measured") if e["entry"] == "chance"]
    result = chance["result"]
    assert result["n_images"] == N and result["n_parameters"] == 0
    bound = 4 * math.sqrt(0.1 * 0.9 / N)  # 4 standard deviations of a binomial(N, 0.1) share
    for accuracy in (result["accuracy"], *result["anytime_accuracy"]):
        assert abs(accuracy - 0.1) <= bound
    low, high = result["accuracy_interval"]
    assert low <= result["accuracy"] <= high


def test_shipped_row_is_what_glimpse_bench_measures(board: dict[str, Any]) -> None:
    (shipped,) = [e for e in _entries(board["runs"][0], "measured") if e["entry"] != "chance"]
    assert shipped["spec"] == f"pretrained:{ENV}"
    assert _untimed(shipped["result"]) == _untimed(board["bench"])
    assert shipped["result"]["n_parameters"] > 100_000


def test_paper_rows_are_present_and_marked(board: dict[str, Any]) -> None:
    paper = _entries(board["runs"][0], "paper")
    assert [e["error_percent"] for e in paper] == [r.error_percent for r in PAPER[ENV]]
    assert all(e["note"] == PAPER_MARK and "result" not in e for e in paper)
    assert "RAM, 7 glimpses, 8x8, 1 scale | paper, not measured here" in board["markdown"]
    assert "| 98.93 | 1.07 |" in board["markdown"]
    pending = _entries(board["runs"][0], "not yet measured")
    assert pending and all("glimpse train" in e["command"] for e in pending)
    assert "not yet measured" in board["markdown"]


def test_two_runs_give_identical_json_but_timings(board: dict[str, Any]) -> None:
    first, second = board["runs"]
    assert _untimed(first) == _untimed(second)


def test_paper_table_covers_every_env() -> None:
    assert set(PAPER) == set(ENV_IDS)
    best = {env: min(r.error_percent for r in rows if r.glimpses) for env, rows in PAPER.items()}
    assert best == {  # the paper's best RAM row per benchmark (NIPS 2014, Tables 1 and 2)
        "GlimpseMNIST-v0": 1.07,
        "GlimpseTranslatedMNIST-v0": 1.2,
        "GlimpseClutteredMNIST-v0": 4.04,
        "GlimpseClutteredMNIST100-v0": 8.11,
    }
    for env in ENV_IDS:
        for entry in paper_entries(env):
            assert entry["kind"] == "paper" and entry["source"].startswith("Table ")
            assert entry["accuracy"] == pytest.approx(1 - entry["error_percent"] / 100)


def test_chance_policy_is_a_pure_function_of_seed_batch_and_step() -> None:
    obs = {"location": np.zeros((50, 2), np.float32)}
    a, b = ChancePolicy(seed=3), ChancePolicy(seed=3)
    first, state = a.act(obs, a.initial_state(50), True)
    assert np.array_equal(first, b.act(obs, b.initial_state(50), False)[0])
    assert first.shape == (50, 12) and first.dtype == np.float32
    assert np.all(np.abs(first[:, :2]) <= 1) and np.all(first[:, 2:].sum(axis=1) == 1)
    assert not np.array_equal(first, a.act(obs, state, True)[0])  # the next step differs
    assert not np.array_equal(first, a.act(obs, a.initial_state(50), True)[0])  # next batch


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    code, _, err = _glimpse(capsys, "bench", "leaderboard", "--out", str(file))
    assert code != 0 and err.count("\n") == 1 and "is a file" in err
    code, _, err = _glimpse(
        capsys, "bench", "leaderboard", "--n-images", "20000", "--out", str(tmp_path / "o")
    )
    assert code != 0 and err.count("\n") == 1 and "--n-images 20000" in err
    assert not (tmp_path / "o").exists()
