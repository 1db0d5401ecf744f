"""``glimpse bench --policy RUN`` of a supervised baseline's run: an entry that sees the whole
canvas (``full_image``, not glimpse-limited), the same images right as ``glimpse eval``,
deterministic, one-line errors, and ``glimpse bench compare`` beside a glimpse policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import run_cli, untimed

from glimpse_env.bench import PROTOCOL, Result, wilson_interval
from train.bench_report import FULL_IMAGE_NOTE
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

MNIST = "GlimpseMNIST-v0"
#: A tiny fc64 on 28x28 MNIST: 10 iterations of 16 canvases.
TINY = [
    "--arch", "fc64",
    "--env", MNIST,
    "--batch-size", "16",
    "--epochs", str(10 * 16 / 50_000),
    "--eval-every", "10",
    "--eval-images", "16",
    "--test-images", "16",
    "--threads", "1",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory: pytest.TempPathFactory, glimpse_data: Path) -> Path:
    run = tmp_path_factory.mktemp("baseline") / "run"
    assert main(["train", "baseline", "--run-dir", str(run), *TINY]) == 0
    return run


def test_a_baseline_is_a_full_image_entry_with_glimpse_evals_accuracy(
    baseline_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--policy", str(baseline_run), "--n-images", "200", "--out", str(out)]
    code, stdout, err = run_cli(capsys, *argv, "--env", MNIST)
    assert code == 0, err
    report = json.loads((out / "result.json").read_text())
    assert report["protocol"] == PROTOCOL and report["mode"] == "deterministic"
    entry = report["results"][MNIST]
    assert entry["full_image"] is True and entry["n_glimpses"] == 0
    assert entry["policy"] == str(baseline_run) and entry["split"] == "test"
    assert entry["anytime_accuracy"] == [] and entry["anytime_mean"] is None
    for key in ("on_digit_share", "first_glimpse_distance_px", "mean_glimpses"):
        assert entry[key] is None, key
    assert entry["glimpses_by_class"] is None
    assert (
        entry["n_parameters"] == json.loads((baseline_run / "meta.json").read_text())["parameters"]
    )
    # The same images right as glimpse eval, the same accuracy.
    code, evaluated, err = run_cli(capsys, "eval", str(baseline_run), "--json", "--n-images", "200")
    assert code == 0, err
    expected = json.loads(evaluated)
    (rollout,) = entry["rollouts"]
    assert rollout["n_correct"] == expected["n_correct"]
    assert entry["accuracy"] == expected["accuracy"] and entry["n_images"] == 200
    # The Wilson interval over the 200 images (hand computation in tests/test_bench.py).
    assert entry["accuracy_interval"] == list(wilson_interval(expected["n_correct"], 200))
    assert Result.from_dict(entry).to_dict() == entry
    accuracy = f"{100 * expected['accuracy']:.2f}"
    assert f"{MNIST}: accuracy {accuracy} [" in stdout
    assert "(95% Wilson over 200 images), full image (not glimpse-limited)," in stdout
    summary = stdout.splitlines()[0]
    assert "images/s)" in summary and "anytime" not in summary
    table = (out / "result.md").read_text()
    row = f"| {baseline_run} (full image) | {MNIST} | deterministic | 200 | {accuracy} ["
    assert row in table and "| - | - | - | - | - |" in table and FULL_IMAGE_NOTE in table
    # No anytime curve: no anytime.png (an empty x axis), and the command says so.
    assert (out / "accuracy_glimpses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "anytime.png").exists()
    assert "anytime.png not written: no result has an anytime curve" in stdout
    # Determinism: the env is the run's own by default; the same JSON but for the timings.
    again = tmp_path / "again"
    code, _, err = run_cli(capsys, *argv[:-1], str(again))
    assert code == 0, err
    second = json.loads((again / "result.json").read_text())
    assert untimed(second)["results"] == untimed(report)["results"]


def test_env_all_skips_the_envs_of_another_canvas_size(
    baseline_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all"
    argv = ["bench", "--policy", str(baseline_run), "--env", "all", "--n-images", "20"]
    code, stdout, err = run_cli(capsys, *argv, "--seeds", "0,1", "--out", str(out))
    assert code == 0, err
    results = json.loads((out / "result.json").read_text())["results"]
    assert list(results) == [MNIST]
    rollouts = results[MNIST]["rollouts"]
    assert [r["seed"] for r in rollouts] == [0, 1]  # the canvases do not depend on the seed
    assert rollouts[0]["n_correct"] == rollouts[1]["n_correct"]
    for env_id, size in [
        ("GlimpseTranslatedMNIST-v0", 60),
        ("GlimpseClutteredMNIST-v0", 60),
        ("GlimpseClutteredMNIST100-v0", 100),
    ]:
        assert f"{env_id}: skipped (" in stdout
        assert f"but {env_id} has {size}x{size} canvases" in stdout


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--mode", "sample"],
            "glimpse: error: a supervised baseline has no sampled mode: use --mode deterministic",
        ),
        (
            ["--env", "GlimpseTranslatedMNIST-v0"],
            "the baseline was trained on GlimpseMNIST-v0 with 28x28 canvases, but "
            "GlimpseTranslatedMNIST-v0 has 60x60 canvases; benchmark it on an env with 28x28",
        ),
    ],
)
def test_error_lines(
    argv: list[str],
    says: str,
    baseline_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "o"
    common = ["bench", "--policy", str(baseline_run), "--n-images", "5", "--out", str(out)]
    code, _, err = run_cli(capsys, *common, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and says in err, err
    assert not (out / "result.json").exists()


def test_compare_a_baseline_with_a_glimpse_policy(
    baseline_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, ram = tmp_path / "base", tmp_path / "ram"
    common = ["--env", MNIST, "--n-images", "50"]
    code, _, err = run_cli(capsys, "bench", "--policy", str(baseline_run), "--label", "FC", *common,
                         "--out", str(base))  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "bench", "--policy", f"pretrained:{MNIST}", "--label", "RAM",
                         *common, "--out", str(ram))  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "bench", "compare", str(base), str(ram / "result.json"))
    assert code == 0, err
    lines = out.splitlines()
    (fc,) = [line for line in lines if line.startswith("| FC (full image) |")]
    (glimpses,) = [line for line in lines if line.startswith("| RAM |")]
    cells = [c.strip() for c in fc.split("|")[1:-1]]
    # glimpses per image, anytime mean, anytime curve, on digit, first glimpse: all "-"
    assert cells[5:10] == ["-"] * 5 and cells[10] == "55050"
    cells = [c.strip() for c in glimpses.split("|")[1:-1]]
    assert cells[5] == "7.00" and "-" not in cells[5:10]
    assert FULL_IMAGE_NOTE in out


def test_a_label_that_says_full_image_gets_no_second_mark(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from train.bench_plots import _full_image_line, glimpse_curve
    from train.bench_report import full_image_name, markdown_table

    assert full_image_name("Conv") == "Conv (full image)"
    assert full_image_name("Conv, Full Image") == "Conv, Full Image"
    entry = {"mode": "deterministic", "n_images": 10, "accuracy": 0.9, "full_image": True,
             "accuracy_interval": [0.6, 0.98], "n_parameters": 5, "episodes_per_second": 9.0}  # fmt: skip
    table = markdown_table([{"label": "Conv, full image", "results": {MNIST: entry}}])
    assert f"| Conv, full image | {MNIST} |" in table and FULL_IMAGE_NOTE in table
    assert "(full image) |" not in table
    fig, ax = plt.subplots()
    curve = glimpse_curve({**entry, "anytime_accuracy": []})
    _full_image_line(ax, curve, "Conv, full image", "C0")
    _full_image_line(ax, curve, "FC", "C1")
    assert ax.get_legend_handles_labels()[1] == [
        "Conv, full image (not glimpse-limited)", "FC: full image (not glimpse-limited)"
    ]  # fmt: skip
    plt.close(fig)


def test_plots_draw_a_full_image_entry_as_a_line_not_a_glimpse_point(tmp_path: Path) -> None:
    from train.bench_plots import GlimpseCurve, glimpse_curve, plot_accuracy_glimpses, plot_anytime

    fixed = {"env_id": MNIST, "env_kwargs": {}, "accuracy": 0.75,
             "anytime_accuracy": [0.25, 0.5, 0.75], "mean_glimpses": 3.0}  # fmt: skip
    full = {"env_id": MNIST, "env_kwargs": {}, "accuracy": 0.9, "anytime_accuracy": [],
            "mean_glimpses": None, "full_image": True}  # fmt: skip
    assert glimpse_curve(full) == GlimpseCurve((), (0.9,), adaptive=False, full_image=True)
    assert glimpse_curve(fixed).full_image is False
    reports = [
        {"label": "RAM", "mode": "deterministic", "results": {MNIST: fixed}},
        {"label": "FC", "mode": "deterministic", "results": {MNIST: full}},
    ]
    plot_accuracy_glimpses(reports, str(tmp_path / "a.png"))
    both = {"label": "mixed", "mode": "deterministic", "results": {MNIST: fixed, "E-v0": full}}
    plot_anytime(both, str(tmp_path / "b.png"))
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
