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
from cli_runs import run_cli, untimed

from glimpse_env.bench import PROTOCOL
from glimpse_env.registration import ENV_IDS
from train.cli import main
from train.errors import UsageError
from train.leaderboard import PAPER, PAPER_MARK, ChancePolicy, paper_entries

pytestmark = pytest.mark.usefixtures("glimpse_data")

ENV = "GlimpseMNIST-v0"
N = 200


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
    assert untimed(shipped["result"]) == untimed(board["bench"])
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
    assert untimed(first) == untimed(second)


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
    code, _, err = run_cli(capsys, "bench", "leaderboard", "--out", str(file))
    assert code != 0 and err.count("\n") == 1 and "is a file" in err
    code, _, err = run_cli(
        capsys, "bench", "leaderboard", "--n-images", "20000", "--out", str(tmp_path / "o")
    )
    assert code != 0 and err.count("\n") == 1 and "--n-images 20000" in err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- trained entries
def _trained_run(
    tmp_path: Path, where: str, seed: int, accuracy: float, epochs: float = 5,
    n_images: int = 10000, mode: str = "deterministic",
) -> Path:  # fmt: skip
    """A fake trained run folder (config.json, meta.json) and its bench result folder."""
    run = tmp_path / f"{where}-s{seed}"
    run.mkdir()
    config = {"env": ENV, "location_policy": where, "epochs": epochs, "batch_size": 64}
    (run / "config.json").write_text(json.dumps({**config, "seed": seed, "threads": 1}))
    (run / "meta.json").write_text(json.dumps({"agent": "ram", "iterations": 3907}))
    result = {
        "mode": mode,
        "n_images": n_images,
        "accuracy": accuracy,
        "accuracy_interval": [accuracy - 0.01, accuracy + 0.01],
        "anytime_accuracy": [0.5, accuracy],
        "anytime_mean": (0.5 + accuracy) / 2,
        "on_digit_share": 1.0,
        "first_glimpse_distance_px": 0.0,
        "n_parameters": 1000,
        "episodes_per_second": 1000.0,
    }
    label = f"RAM classifier, {where} locations"
    report = {"protocol": PROTOCOL, "label": label, "policy": str(run), "results": {ENV: result}}
    bench = tmp_path / f"bench-{where}-s{seed}"
    bench.mkdir()
    (bench / "result.json").write_text(json.dumps(report))
    return bench


def test_trained_entries_by_hand(tmp_path: Path) -> None:
    from train.leaderboard import TRAINED, trained_entries

    center = [0.80, 0.70, 0.90, 0.85, 0.75]  # seeds 4, 3, 2, 1, 0 (given out of order)
    paths = [_trained_run(tmp_path, "center", 4 - i, a) for i, a in enumerate(center)]
    paths.append(_trained_run(tmp_path, "raster", 0, 0.5) / "result.json")
    paths.append(_trained_run(tmp_path, "raster", 1, 0.6))
    entries = trained_entries(paths, reps=200)
    assert list(entries) == [ENV]
    first, second = entries[ENV]
    assert first["entry"] == "RAM classifier, center locations" and first["kind"] == TRAINED
    assert first["training_seeds"] == [0, 1, 2, 3, 4]
    assert first["accuracies"] == [0.75, 0.85, 0.90, 0.70, 0.80]
    assert first["seeds"] == 5 and first["mean"] == pytest.approx(0.80)
    # IQM of 5 seeds: the middle 3 (0.75, 0.80, 0.85) after trimming a quarter at each end.
    assert first["iqm"] == pytest.approx(0.80)
    low, high = first["iqm_interval"]
    assert 0.70 <= low <= first["iqm"] <= high <= 0.90
    assert first["anytime_mean"] == pytest.approx((0.5 + 0.8) / 2)
    assert first["training"]["epochs"] == 5 and first["training"]["location_policy"] == "center"
    assert "--location-policy center --epochs 5" in first["training"]["command"]
    assert second["seeds"] == 2 and second["mean"] == pytest.approx(0.55)
    assert trained_entries(paths, reps=200) == entries  # the bootstrap is seeded

    (tmp_path / "x").mkdir()
    other = _trained_run(tmp_path / "x", "center", 9, 0.8, epochs=3)
    with pytest.raises(UsageError, match="differ in training"):
        trained_entries([*paths, other], reps=50)


def test_leaderboard_shows_trained_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(_trained_run(tmp_path, "center", s, 0.8 + s / 100, n_images=20)) for s in range(3)]
    out = tmp_path / "board"
    argv = ["bench", "leaderboard", "--env", ENV, "--n-images", "20", "--out", str(out)]
    code, _, err = run_cli(capsys, *argv, "--entries", *paths, "--reps", "100")
    assert code == 0, err
    report = json.loads((out / "leaderboard.json").read_text())
    assert "--entries" in report["command"] and "--reps 100" in report["command"]
    (trained,) = _entries(report, "measured, training seeds")
    assert trained["mean"] == pytest.approx(0.81) and trained["seeds"] == 3
    pending = [e["entry"] for e in _entries(report, "not yet measured")]
    assert not any("center" in e for e in pending)
    assert any("raster" in e for e in pending) and any("oracle" in e for e in pending)
    markdown = (out / "leaderboard.md").read_text()
    row = "| RAM classifier, center locations | measured, 3 training seeds, 5 epochs | mean 81.00;"
    assert row in markdown
    assert "not the paper's" in markdown
    assert "glimpse train ram --env GlimpseMNIST-v0 --location-policy center --epochs 5" in markdown


def test_link_to_the_protocol_from_where_the_leaderboard_is_written(tmp_path: Path) -> None:
    from train.leaderboard import BENCH_DOC, bench_doc_link, markdown_leaderboard

    docs = BENCH_DOC.parent
    assert BENCH_DOC.is_file()
    assert bench_doc_link(docs) == "bench.md"  # docs/leaderboard.md, the project's own
    assert bench_doc_link(docs / "leaderboard") == "../bench.md"
    assert (tmp_path / bench_doc_link(tmp_path)).resolve() == BENCH_DOC
    report = {"n_images": None, "machine": {}, "protocol": PROTOCOL, "seed": 0,
              "command": "glimpse bench leaderboard --out docs", "package_version": "0",
              "paper_source": "the paper", "envs": {}}  # fmt: skip
    assert "(see [bench.md](bench.md))" in markdown_leaderboard(report)
    assert "(see [bench.md](x/bench.md))" in markdown_leaderboard(report, "x/bench.md")


# --------------------------------------------------------------------------- kinds of runs
def _fake_bench(tmp_path: Path, name: str, run: dict[str, Any], meta: dict[str, Any],
                label: str, accuracy: float, full_image: bool = False) -> Path:  # fmt: skip
    """A fake run folder of any trainer and its bench result folder."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(run))
    (folder / "meta.json").write_text(json.dumps(meta))
    result = {
        "n_images": 10000,
        "accuracy": accuracy,
        "full_image": full_image,
        "anytime_mean": None if full_image else accuracy,
        "on_digit_share": None if full_image else 1.0,
        "n_parameters": 10,
    }
    report = {"protocol": PROTOCOL, "label": label, "policy": str(folder), "results": {ENV: result}}
    bench = tmp_path / "bench" / name
    bench.mkdir(parents=True)
    (bench / "result.json").write_text(json.dumps(report))
    return bench


PPO_RUN = {"seed": 0, "threads": 1, "recurrent": False, "hyperparams": {"total_steps": 1750000}}
BASELINE_RUN = {"seed": 0, "threads": 1, "arch": "fc64", "epochs": 5, "batch_size": 64}


def test_training_of_each_trainer() -> None:
    from train.leaderboard_entries import PENDING, training_of

    ppo = training_of({**PPO_RUN, "agent": "ppo", "num_timesteps": 1752064}, ENV)
    assert ppo is not None and ppo["key"] == "ppo" and ppo["agent"] == "ppo"
    assert ppo["budget"] == "1,750,000 env steps (1,752,064 taken: whole rollouts)"
    assert ppo["command"] == (
        "glimpse train ppo --env GlimpseMNIST-v0 --total-steps 1750000 --threads 1 --seed S"
    )
    # The evaluation flags draw from the env while PPO trains: the command repeats them.
    evaluated = {**PPO_RUN, "agent": "ppo", "eval_every": 250000, "eval_split": "val"}
    assert "--total-steps 1750000 --eval-every 250000 --eval-split val --threads 1" in (
        training_of(evaluated, ENV) or {}
    ).get("command", "")
    # RecurrentPPO runs write "agent": "recurrent_ppo" in meta.json and "recurrent" in config.
    recurrent = training_of({**PPO_RUN, "agent": "recurrent_ppo", "recurrent": True}, ENV)
    assert recurrent is not None and recurrent["key"] == "recurrent-ppo"
    assert " --recurrent --total-steps 1750000 " in recurrent["command"]
    base = training_of({**BASELINE_RUN, "agent": "baseline", "iterations": 3907}, ENV)
    assert base is not None and base["key"] == "baseline:fc64"
    assert base["budget"] == "5 epochs of batches of 64 (3,907 iterations), whole canvases"
    assert "not glimpse-limited" in base["short"]
    assert base["command"].startswith("glimpse train baseline --env GlimpseMNIST-v0 --arch fc64 ")
    ram = training_of({"epochs": 5, "batch_size": 64, "location_policy": "raster"}, ENV)
    assert ram is not None and ram["key"] == "location:raster" and ram["short"] == "5 epochs"
    assert training_of({"agent": "mine"}, ENV) is None
    # Every pending entry can be measured by a run of a known trainer: its key is reachable.
    keys = {p.key for p in PENDING}
    assert {"ppo", "recurrent-ppo", "baseline:fc64", "baseline:conv", "location:oracle"} <= keys
    # Each pending command is valid shell: its label comes through as one argument.
    import shlex

    for pending in PENDING:
        words = shlex.split(pending.command.format(env=ENV))
        assert words[words.index("--label") + 1] in (
            pending.entry,
            "RAM, the shipped model's budget",
        )


def test_ppo_and_full_image_entries(tmp_path: Path) -> None:
    from train.leaderboard_entries import pending_entries, trained_entries
    from train.leaderboard_md import markdown_leaderboard

    for seed, accuracy in enumerate((0.6, 0.7)):
        run = {**PPO_RUN, "seed": seed}
        _fake_bench(tmp_path, f"ppo-s{seed}", run, {"agent": "ppo"}, "PPO", accuracy)
        run = {**BASELINE_RUN, "seed": seed}
        meta = {"agent": "baseline"}
        _fake_bench(tmp_path, f"fc64-s{seed}", run, meta, "fc64", 0.9 + seed / 100, True)
    # A folder without a result.json of its own: every result.json below it.
    entries = trained_entries([tmp_path / "bench"], reps=100)[ENV]
    assert [e["entry"] for e in entries] == ["PPO", "fc64"]  # RAM, PPO, ..., baselines
    ppo, fc64 = entries
    assert ppo["mean"] == pytest.approx(0.65) and ppo["anytime_mean"] == pytest.approx(0.65)
    assert not ppo["full_image"] and fc64["full_image"]
    assert fc64["anytime_mean"] is None and fc64["on_digit_share"] is None
    pending = pending_entries(ENV, [e["training"]["key"] for e in entries])
    names = [p["entry"] for p in pending]
    assert "PPO (glimpse history)" not in names and "full-image fc64 baseline" not in names
    assert "RecurrentPPO (LSTM)" in names and "full-image conv baseline" in names
    report = {"n_images": None, "machine": {}, "protocol": PROTOCOL, "seed": 0,
              "command": "c", "package_version": "0", "paper_source": "p",
              "envs": {ENV: {"entries": [*entries, *pending]},
                       "Other-v0": {"entries": pending_entries("Other-v0")}}}  # fmt: skip
    markdown = markdown_leaderboard(report)
    assert "| fc64 | measured, 2 training seeds, 5 epochs; full image, not glimpse-limited |" in (
        markdown
    )
    row = next(line for line in markdown.splitlines() if line.startswith("| fc64 |"))
    assert row.endswith("| 9.50 | - | - | 10 |")
    # An entry measured on the first env but not the second still shows its command.
    assert "- PPO (glimpse history) (needs training); not yet measured on Other-v0:" in markdown
    assert "glimpse train ppo --env Other-v0 --total-steps 1750000" in markdown


def test_entries_folder_without_results_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "board"
    for path in (tmp_path / "empty", tmp_path / "missing"):
        argv = ["bench", "leaderboard", "--env", ENV, "--out", str(out), "--entries", str(path)]
        code, _, err = run_cli(capsys, *argv)
        assert code != 0 and err.count("\n") == 1 and str(path) in err


def test_entries_measured_otherwise_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from train.leaderboard import trained_entries

    out = tmp_path / "board"
    argv = ["bench", "leaderboard", "--env", ENV, "--n-images", "20", "--out", str(out)]
    (tmp_path / "a").mkdir()
    other_images = _trained_run(tmp_path / "a", "center", 0, 0.8, n_images=500)
    code, _, err = run_cli(capsys, *argv, "--entries", str(other_images))
    assert code != 0 and err.count("\n") == 1
    assert "on 500 images (deterministic), this leaderboard on 20" in err
    (tmp_path / "b").mkdir()
    sampled = _trained_run(tmp_path / "b", "center", 0, 0.8, n_images=20, mode="sample")
    code, _, err = run_cli(capsys, *argv, "--entries", str(sampled))
    assert code != 0 and "(sample)" in err and "--mode deterministic" in err
    assert not out.exists()
    # Seeds of one entry benchmarked on different images are never pooled.
    (tmp_path / "c").mkdir()
    mixed = [
        _trained_run(tmp_path / "c", "raster", 0, 0.8, n_images=20),
        _trained_run(tmp_path / "c", "raster", 1, 0.8, n_images=30),
    ]
    with pytest.raises(UsageError, match="differ in n_images 20 and 30"):
        trained_entries(mixed, reps=50)


def test_one_seed_and_other_budgets(tmp_path: Path) -> None:
    from train.leaderboard_entries import pending_entries, trained_entries
    from train.leaderboard_md import markdown_leaderboard

    short = _trained_run(tmp_path, "center", 0, 0.8, epochs=0.5)
    entries = trained_entries([short], reps=50)[ENV]
    (entry,) = entries
    assert not entry["training"]["standard"]
    # A run of another budget measures no pending entry: the 5-epoch slot stays listed.
    pending = pending_entries(ENV, [entry["training"]["key"]])
    assert "RAM classifier, center locations" in [p["entry"] for p in pending]
    report = {"n_images": None, "machine": {}, "protocol": PROTOCOL, "seed": 0,
              "command": "c", "package_version": "0", "paper_source": "p",
              "envs": {ENV: {"entries": entries}}}  # fmt: skip
    markdown = markdown_leaderboard(report)
    assert "| measured, 1 training seed, 0.5 epochs | 80.00 (one seed: no interval over" in (
        markdown
    )
    assert "**The budgets differ**" in markdown and "equal budgets" not in markdown
