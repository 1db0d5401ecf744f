"""``benchmarks/bench_speed.py``: its figures (trials/hour, concurrency, the bench target), the
sweep config and the one-after-another commands, the JSON (both parts, merged) and the one line
without Ray. The commands it times are stood in for: nothing runs ``glimpse`` or Ray here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import import_benchmark

from train.sweep import expand, parse_config, trial_argv

ENVS = {  # rollout seconds per env
    "GlimpseMNIST-v0": 10.0,
    "GlimpseTranslatedMNIST-v0": 20.0,
    "GlimpseClutteredMNIST-v0": 30.0,
    "GlimpseClutteredMNIST100-v0": 25.0,
}


def _report(envs: dict[str, float]) -> dict:
    return {
        "results": {
            env: {"n_images": 10000, "wall_seconds": w, "episodes_per_second": 10000 / w,
                  "accuracy": 0.99, "anytime_accuracy": [0.5, 0.99]}
            for env, w in envs.items()
        }
    }  # fmt: skip


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return import_benchmark("bench_speed", monkeypatch)


def test_trials_per_hour_and_sweep_figures_by_hand(script: ModuleType) -> None:
    assert script.trials_per_hour(4, 42.0) == pytest.approx(342.857142857)
    assert script.trials_per_hour(4, 50.0) == 288.0
    # Two at a time: (0, 10) twice, then (10, 20) twice; at t=10 two end as two start.
    spans = [(0.0, 10.0), (0.0, 10.0), (10.0, 20.0), (10.0, 20.0)]
    figures = script.sweep_figures(42.0, 50.0, spans)
    assert figures["trials"] == 4
    assert figures["sweep_trials_per_hour"] == pytest.approx(342.857142857)
    assert figures["sequential_trials_per_hour"] == 288.0
    assert figures["speedup"] == pytest.approx(50.0 / 42.0)
    assert figures["mean_trials_training_at_once"] == 2.0  # 40 s of training over 20 s
    assert figures["peak_trials_training_at_once"] == 2
    assert figures["target_met"] is True
    # One after another inside the sweep, and a sweep slower than sequential runs.
    figures = script.sweep_figures(60.0, 50.0, [(0.0, 5.0), (5.0, 10.0)])
    assert figures["mean_trials_training_at_once"] == 1.0
    assert figures["peak_trials_training_at_once"] == 1
    assert figures["speedup"] == pytest.approx(50.0 / 60.0)
    assert figures["target_met"] is False
    nested = script.sweep_figures(1.0, 1.0, [(0.0, 10.0), (2.0, 4.0), (3.0, 5.0)])
    assert nested["peak_trials_training_at_once"] == 3
    assert nested["mean_trials_training_at_once"] == pytest.approx(14.0 / 10.0)


def test_bench_figures_judge_the_two_minute_target(script: ModuleType) -> None:
    figures = script.bench_figures(_report(ENVS), 100.0, full=True)
    assert figures["rollout_seconds"] == 85.0
    assert figures["other_seconds"] == 15.0
    assert figures["target_seconds"] == 120.0 and figures["target_met"] is True
    assert figures["envs"]["GlimpseMNIST-v0"] == {
        "n_images": 10000, "wall_seconds": 10.0, "episodes_per_second": 1000.0, "accuracy": 0.99
    }  # fmt: skip
    assert script.bench_figures(_report(ENVS), 130.0, full=True)["target_met"] is False
    three = dict(list(ENVS.items())[:3])
    assert script.bench_figures(_report(three), 70.0, full=True)["target_met"] is False
    assert script.bench_figures(_report(ENVS), 100.0, full=False)["target_met"] is None


def test_sweep_config_and_sequential_commands_are_the_sweeps_trials(
    script: ModuleType, tmp_path: Path
) -> None:
    example = json.loads(script.EXAMPLE_SWEEP.read_text())
    config = script.sweep_config(example, 0.5, 4)
    assert config["fixed"] == {**example["fixed"], "epochs": 0.5}
    assert config["grid"] == {"seed": [0, 1, 2, 3]}
    assert example["fixed"]["epochs"] != 0.5  # the example itself is left alone
    commands = script.sequential_commands(config, tmp_path, "/bin/glimpse")
    trials = expand(parse_config(config))
    assert len(commands) == 4
    for seed, (command, trial) in enumerate(zip(commands, trials, strict=True)):
        argv, start = trial_argv("ram", {"threads": 1, **trial.flags}, tmp_path / trial.name)
        assert start == "new" and command == ["/bin/glimpse", *argv]
        assert command[1:3] == ["train", "ram"]
        flags = dict(zip(command[3::2], command[4::2], strict=False))
        assert flags["--threads"] == "1" and flags["--seed"] == str(seed)
        assert flags["--epochs"] == "0.5" and flags["--run-dir"] == str(tmp_path / trial.name)
    two = script.sweep_config({**example, "fixed": {**example["fixed"], "threads": 2}}, 0.5, 1)
    command = script.sequential_commands(two, tmp_path, "glimpse")[0]
    assert command[command.index("--threads") + 1] == "2"  # as the sweep: the config's own


def test_without_ray_one_line_before_anything_runs(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(script, "find_spec", lambda name: None)
    monkeypatch.setattr(script, "run_command", lambda command: pytest.fail("ran something"))
    for part in ("sweep", "all"):
        with pytest.raises(SystemExit) as exc:
            script.main(["--part", part, "--out", str(tmp_path / "b.json")])
        message = str(exc.value.code)
        assert "\n" not in message and "ray extra" in message and "--part sweep" in message
    assert not (tmp_path / "b.json").exists()
    monkeypatch.setattr(script, "find_spec", lambda name: object())
    script.require_ray()


def test_run_command_times_and_gives_the_error_line(script: ModuleType) -> None:
    assert script.run_command([sys.executable, "-c", "pass"]) > 0.0
    code = "import sys; print('working'); sys.exit('glimpse: error: no data; set it')"
    with pytest.raises(SystemExit, match=r"^python\S* -c failed: glimpse: error: no data; set it$"):
        script.run_command([sys.executable, "-c", code])


def _write_eval(run_dir: Path, wall: float, end: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "eval.json").write_text(json.dumps({"train_wall_s": wall}))
    os.utime(run_dir / "eval.json", (end, end))


def test_main_writes_both_parts_into_one_json(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str]) -> float:
        commands.append(command)
        if command[1] == "bench":
            out = Path(command[command.index("--out") + 1])
            (out / "result.json").write_text(json.dumps(_report(ENVS)))
            return 100.0
        if command[1] == "sweep":
            out = Path(command[command.index("--out") + 1])
            config = parse_config(json.loads(Path(command[2]).read_text()))
            for i, trial in enumerate(expand(config)):  # two at a time, 10 s each
                _write_eval(out / trial.name, 10.0, 1010.0 + 10.0 * (i // 2))
            return 42.0
        _write_eval(Path(command[command.index("--run-dir") + 1]), 9.0, 5000.0)
        return 12.5

    monkeypatch.setattr(script, "run_command", fake_run)
    monkeypatch.setattr(script, "find_spec", lambda name: object())
    out = tmp_path / "results" / "bench_speed.json"
    script.main(["--part", "bench", "--glimpse", "/g/glimpse", "--out", str(out)])
    assert commands[0][:6] == ["/g/glimpse", "bench", "--policy", "pretrained", "--env", "all"]
    first = json.loads(out.read_text())
    script.main(
        ["--part", "sweep", "--glimpse", "/g/glimpse", "--epochs", "0.25", "--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert result["schema_version"] == 1 and set(result["parts"]) == {"bench", "sweep"}
    assert result["parts"]["bench"] == first["parts"]["bench"]  # kept from the first run
    bench, sweep = result["parts"]["bench"], result["parts"]["sweep"]
    for part in (bench, sweep):
        assert part["command"].startswith("python benchmarks/bench_speed.py --part ")
        assert part["python"] == sys.executable and part["package_version"]
        assert "model" in part["machine"] and len(part["load_average_before"]) == 3
    assert bench["command_seconds"] == 100.0 and bench["target_met"] is True
    assert bench["glimpse_command"] == "glimpse bench --policy pretrained --env all --out DIR"
    assert commands[1][1:3] == ["sweep", commands[1][2]] and commands[1][-2:] == [
        "--cpus-per-trial", "1"
    ]  # fmt: skip
    assert [c[1:3] for c in commands[2:]] == [["train", "ram"]] * 4
    assert sweep["config"]["fixed"]["epochs"] == 0.25
    assert sweep["sweep_seconds"] == 42.0 and sweep["sequential_seconds"] == 50.0
    assert sweep["sequential_trials_per_hour"] == 288.0
    assert sweep["mean_trials_training_at_once"] == 2.0
    assert sweep["peak_trials_training_at_once"] == 2
    assert sweep["sweep_train_wall_s"] == [10.0] * 4
    assert sweep["sequential_train_wall_s"] == [9.0] * 4
    assert sweep["target_met"] is True and len(sweep["load_average_before_sequential"]) == 3
