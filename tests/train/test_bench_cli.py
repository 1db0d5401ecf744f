"""``glimpse bench``: the shipped model agrees with ``glimpse eval``'s evaluation, a user's
own NumPy policy benchmarks through ``module:factory``, files survive errors, and every error
is one line."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cli_runs import run_cli, untimed
from tiny_runs import TINY_RAM

from glimpse_env.bench import PROTOCOL
from glimpse_env.registration import ENV_IDS
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

_USER_MODULE = '''
"""A user's own policy, NumPy only."""
import numpy as np


def make():
    def act(obs):
        if obs["glimpse"].shape[-1] != 8 and FAIL_ON_LARGE:
            return np.zeros(3, dtype=np.float32)
        return np.array([0.0, 0.0, *np.eye(10)[1]], dtype=np.float32)

    return act


def make_broken():
    return lambda obs: np.full(12, np.nan, dtype=np.float32)


def make_raises():
    raise RuntimeError("cannot build")


class Named:
    """A policy object with its own name (the docs' example)."""

    name = "raster-toy"

    def initial_state(self, n):
        return np.zeros(n)

    def act(self, obs, state, deterministic):
        action = np.array([0.0, 0.0, *np.eye(10)[1]], dtype=np.float32)
        return np.tile(action, (len(state), 1)), state


def make_named():
    return Named()


FAIL_ON_LARGE = {fail}
'''


def _user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fail: bool) -> str:
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(_USER_MODULE.format(fail=fail)))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.syspath_prepend(str(folder))  # what PYTHONPATH does for a fresh process
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_pretrained_reproduces_evaluate_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.policy import evaluate_policy, load_policy
    from agents.pretrained import pretrained_path

    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        "bench",
        "--policy",
        "pretrained:GlimpseMNIST-v0",
        "--n-images",
        "500",
        "--out",
        str(out),
    )
    assert code == 0, err
    report = json.loads((out / "result.json").read_text())
    assert report["schema_version"] == 1 and report["protocol"] == PROTOCOL
    assert {"package_version", "machine", "command"} <= set(report)
    assert report["machine"]["logical_cpus"] >= 1
    assert report["command"].startswith("glimpse bench --policy pretrained:GlimpseMNIST-v0")
    entry = report["results"]["GlimpseMNIST-v0"]
    policy = load_policy(pretrained_path("GlimpseMNIST-v0")).policy
    expected = evaluate_policy(policy, n_images=500)
    assert entry["accuracy"] == expected["accuracy"]
    assert entry["rollouts"][0]["n_correct"] == expected["n_correct"]
    assert len(entry["anytime_accuracy"]) == 7
    assert entry["anytime_accuracy"][-1] == entry["accuracy"]
    assert entry["n_parameters"] > 100_000  # counted from the torch model
    assert "GlimpseMNIST-v0: accuracy" in stdout
    table = (out / "result.md").read_text()
    assert "| pretrained:GlimpseMNIST-v0 | GlimpseMNIST-v0 | deterministic | 500 |" in table
    for plot in ("anytime.png", "accuracy_glimpses.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_users_numpy_policy_via_module_factory_on_all_envs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _user_module(tmp_path, monkeypatch, "my_bench_policy", fail=False)
    out = tmp_path / "out"
    argv = ["--policy", f"{name}:make", "--env", "all", "--n-images", "20", "--out", str(out)]
    code, _, err = run_cli(capsys, "bench", *argv)
    assert code == 0, err
    first = json.loads((out / "result.json").read_text())
    assert sorted(first["results"]) == sorted(ENV_IDS)
    for env_id, entry in first["results"].items():
        assert entry["policy"] == f"{name}:make" and entry["env_id"] == env_id
        assert entry["n_images"] == 20 and entry["n_parameters"] is None
    # Determinism: a second run writes the same JSON but for the timings.
    code, _, err = run_cli(capsys, "bench", *argv)
    assert code == 0, err
    second = json.loads((out / "result.json").read_text())
    assert untimed(first) == untimed(second)


def test_bad_policy_is_one_line_and_earlier_envs_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy works on 8x8 glimpses (MNIST) and returns a wrong shape on the others."""
    name = _user_module(tmp_path, monkeypatch, "my_failing_policy", fail=True)
    out = tmp_path / "out"
    argv = ["--policy", f"{name}:make", "--env", "all", "--n-images", "10", "--out", str(out)]
    code, _, err = run_cli(capsys, "bench", *argv)
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"glimpse: error: policy {name}:make returned an action for one observation of shape "
        "(3,); expected a finite floating-point array (e.g. float32) of shape (12,)"
    )
    assert "the envs done before are in" in err
    report = json.loads((out / "result.json").read_text())
    assert list(report["results"]) == ["GlimpseMNIST-v0"]
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_glimpses.png", "anytime.png", "result.json", "result.md"
    ]  # fmt: skip


def test_accuracy_against_glimpses_curve_point_and_paper(tmp_path: Path) -> None:
    from train.bench_plots import glimpse_curve, paper_points, plot_accuracy_glimpses

    fixed = {
        "env_id": "GlimpseMNIST-v0", "env_kwargs": {}, "accuracy": 0.75,
        "anytime_accuracy": [0.25, 0.5, 0.75], "mean_glimpses": 3.0,
    }  # fmt: skip
    curve = glimpse_curve(fixed)
    assert (curve.glimpses, curve.accuracy, curve.adaptive) == ((1, 2, 3), (0.25, 0.5, 0.75), False)
    # On an adaptive env (the policy stops itself) a result is one point: mean glimpses, accuracy.
    adaptive = {**fixed, "env_id": "GlimpseMNISTAdaptive-v0", "mean_glimpses": 2.4}
    point = glimpse_curve(adaptive)
    assert (point.glimpses, point.accuracy, point.adaptive) == ((2.4,), (0.75,), True)
    assert glimpse_curve({**fixed, "env_kwargs": {"stop": "action"}, "mean_glimpses": 2.4}) == point
    # The paper's RAM rows with learned glimpses (Table 1: 2..7 glimpses on 28x28 MNIST).
    paper = dict(paper_points("GlimpseMNIST-v0"))
    assert sorted(paper) == [2, 3, 4, 5, 6, 7]
    assert paper[7] == pytest.approx(1 - 0.0107)
    assert sorted(dict(paper_points("GlimpseClutteredMNIST-v0"))) == [4, 6, 8]  # no random8
    assert paper_points("GlimpseMNISTAdaptive-v0") == paper_points("GlimpseMNIST-v0")
    reports = [
        {"label": "fixed", "results": {"GlimpseMNIST-v0": fixed, "E-v0": fixed}},
        {"label": "stops", "results": {"GlimpseMNIST-v0": adaptive}},
    ]
    plot_accuracy_glimpses(reports, str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The title names the kinds of marks shown, and only those.
    from train.bench_plots import _accuracy_glimpses_title

    title = _accuracy_glimpses_title(reports)
    assert "lines: the scores after t glimpses" in title and "stars:" in title
    assert "dashed" not in title
    assert "lines" not in _accuracy_glimpses_title(reports[1:])


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--policy", "{m}:make_broken", "--env", "GlimpseMNIST-v0"], 1, "12 NaN or infinite"),
        (["--policy", "{m}:make_raises", "--env", "GlimpseMNIST-v0"], 1, "make_raises() raised"),
        (["--policy", "{m}:nothing", "--env", "GlimpseMNIST-v0"], 1, "has no function 'nothing'"),
        (["--policy", "no_such_mod_xyz:make", "--env", "GlimpseMNIST-v0"], 1, "PYTHONPATH"),
        (["--policy", "{m}:make"], 2, "needs --env ID|all"),
        (["--policy", "not a spec", "--env", "GlimpseMNIST-v0"], 2, "is not a run folder"),
        (["--policy", "pretrained:Nope-v0"], 2, "no pretrained weights for 'Nope-v0'"),
        (["--policy", "pretrained"], 2, "--policy pretrained needs --env ID"),
        (
            ["--policy", "pretrained:GlimpseMNIST-v0", "--env", "GlimpseClutteredMNIST-v0"],
            2,
            "trained on GlimpseMNIST-v0 with glimpses of shape",
        ),
        (["--env", "GlimpseMNIST-v0"], 2, "glimpse bench needs --policy"),
        (["--policy", "pretrained", "--n-images", "10001"], 2, "--n-images"),
        (
            ["--policy", "pretrained", "--env", "adaptive"],
            2,
            "--policy pretrained --env adaptive: no shipped model for GlimpseMNISTAdaptive-v0, "
            "GlimpseTranslatedMNISTAdaptive-v0, GlimpseClutteredMNISTAdaptive-v0, "
            "GlimpseClutteredMNIST100Adaptive-v0 (shipped: GlimpseClutteredMNIST-v0, "
            "GlimpseClutteredMNIST100-v0, GlimpseMNIST-v0, GlimpseTranslatedMNIST-v0); train one "
            "with glimpse train ram --env GlimpseMNISTAdaptive-v0 --init-from "
            "pretrained:GlimpseMNIST-v0 --run-dir runs/stop",
        ),
        (
            ["--policy", "pretrained:GlimpseTranslatedMNISTAdaptive-v0"],
            2,
            "no shipped model for GlimpseTranslatedMNISTAdaptive-v0 (shipped: Glimpse",
        ),
        (
            ["--policy", "pretrained", "--env", "GlimpseClutteredMNISTAdaptive-v0"],
            2,
            "train one with glimpse train ram --env GlimpseClutteredMNISTAdaptive-v0 "
            "--init-from pretrained:GlimpseClutteredMNIST-v0",
        ),
        (["--policy", "{m}:make", "--seeds", "a,b"], 2, "non-negative integers"),
    ],
)
def test_error_lines(
    argv: list[str],
    code: int,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = _user_module(tmp_path, monkeypatch, "my_error_policy", fail=False)
    argv = [a.replace("{m}", module) for a in argv]
    got, _, err = run_cli(capsys, "bench", "--n-images", "5", "--out", str(tmp_path / "o"), *argv)
    assert got == code, err
    assert err.count("\n") == 1 and "Traceback" not in err and says in err, err


def test_out_holding_another_policy_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _user_module(tmp_path, monkeypatch, "my_other_policy", fail=False)
    out = tmp_path / "out"
    common = ["--env", "GlimpseMNIST-v0", "--n-images", "5", "--out", str(out)]
    assert run_cli(capsys, "bench", "--policy", f"{name}:make", *common)[0] == 0
    before = (out / "result.json").read_text()
    code, _, err = run_cli(capsys, "bench", "--policy", f"{name}:make_broken", *common)
    assert code == 2 and "holds the benchmark of another policy" in err
    assert (out / "result.json").read_text() == before


def _report(
    tmp_path: Path,
    name: str,
    label: str,
    accuracy: float,
    policy: str | None = None,
    **measured: Any,
) -> Path:
    """A result.json in ``tmp_path/name`` (its policy ``policy``, default ``name``;
    ``measured`` overrides the entry's mode, n_images, ...)."""
    entry = {
        "mode": "deterministic",
        "split": "test",
        "n_images": 100,
        "accuracy": accuracy,
        "accuracy_interval": [accuracy - 0.05, accuracy + 0.03],
        "anytime_accuracy": [0.5, accuracy],
        "anytime_mean": (0.5 + accuracy) / 2,
        "on_digit_share": 0.5,
        "first_glimpse_distance_px": 3.0,
        "n_parameters": 10,
        "episodes_per_second": 1000.0,
        **measured,
    }
    report = {
        "protocol": PROTOCOL,
        "label": label,
        "policy": policy or name,
        "results": {"E-v0": entry},
    }
    folder = tmp_path / name
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps(report))
    return folder


def test_compare_prints_the_side_by_side_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _report(tmp_path, "a", "A", 0.9)
    b = _report(tmp_path, "b", "B", 0.8)
    code, out, err = run_cli(capsys, "bench", "compare", str(a), str(b / "result.json"))
    assert code == 0, err
    assert "| A | E-v0 | deterministic | 100 | 90.00 [85.00, 93.00] |" in out
    assert "| B | E-v0 | deterministic | 100 | 80.00 [75.00, 83.00] |" in out
    assert "IQM" not in out  # one training seed per entry: no bootstrap


class _FakeMetrics:
    @staticmethod
    def aggregate_iqm(x: Any) -> float:
        return float(x.mean())

    aggregate_mean = aggregate_iqm

    @staticmethod
    def probability_of_improvement(x: Any, y: Any) -> float:
        return float((x[:, None, 0] > y[None, :, 0]).mean())


class _FakeLibrary:
    """rliable's get_interval_estimates, its interval replaced by (point - 0.01, + 0.01)."""

    @staticmethod
    def get_interval_estimates(scores: dict[str, Any], func: Any, reps: int) -> tuple:
        import numpy as np

        points = {k: func(*v) if isinstance(v, tuple) else func(v) for k, v in scores.items()}
        intervals = {
            k: np.stack([np.atleast_1d(p) - 0.01, np.atleast_1d(p) + 0.01])
            for k, p in points.items()
        }
        return points, intervals


def test_compare_with_training_seeds_uses_rliable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring to rliable (a stand-in here: rliable is the optional 'bench' extra)."""
    fake = ModuleType("rliable")
    fake.library, fake.metrics = _FakeLibrary, _FakeMetrics  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rliable", fake)
    files = [
        _report(tmp_path, f"{label}{seed}", label, acc)
        for label, accs in (("A", (0.9, 0.92)), ("B", (0.8, 0.85, 0.95)))
        for seed, acc in enumerate(accs)
    ]
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files))
    assert code == 0, err
    assert "| A | E-v0 | 2 | 91.00 [90.00, 92.00] | 91.00 [90.00, 92.00] |" in out
    assert "| B | E-v0 | 3 | 86.67 [85.67, 87.67] |" in out
    assert "| A > B | E-v0 | 0.67 [0.66, 0.68] |" in out


def test_compare_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, "bench", "compare", str(tmp_path / "missing.json"))
    assert code == 1 and "not found" in err and err.count("\n") == 1
    (tmp_path / "bad.json").write_text("{")
    code, _, err = run_cli(capsys, "bench", "compare", str(tmp_path / "bad.json"))
    assert code == 1 and "not valid JSON" in err
    monkeypatch.setitem(sys.modules, "rliable", None)  # not installed
    files = [_report(tmp_path, f"a{i}", "A", 0.9) for i in range(2)]
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files))
    assert code == 1 and "pip install 'glimpse-env[bench]'" in err and err.count("\n") == 1
    assert out == ""  # checked before anything is printed: no table and then an error
    # One result per label needs no rliable: the table alone.
    code, out, err = run_cli(
        capsys, "bench", "compare", str(files[0]), str(_report(tmp_path, "b", "B", 1))
    )
    assert code == 0 and "| A | E-v0 |" in out and "| B | E-v0 |" in out, err


def _fake_rliable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ModuleType("rliable")
    fake.library, fake.metrics = _FakeLibrary, _FakeMetrics  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rliable", fake)


@pytest.mark.parametrize(
    ("measured", "differ"),
    [
        ([{"n_images": 500}, {"n_images": 500}, {"n_images": 100}], "n_images 500 and 100"),
        ([{}, {"mode": "sample"}], "mode deterministic and sample"),
        ([{}, {"split": "train"}], "split test and train"),
        (
            [{}, {"n_images": 50, "mode": "sample"}, {"n_images": 20}],
            "mode deterministic and sample; n_images 100, 50 and 20",
        ),
    ],
)
def test_compare_refuses_to_pool_results_measured_differently(
    measured: list[dict[str, Any]],
    differ: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_rliable(monkeypatch)
    files = [_report(tmp_path, f"r{i}", "ram-tiny", 0.2, **m) for i, m in enumerate(measured)]
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"the results labelled 'ram-tiny' on E-v0 differ in {differ}," in err
    assert "rebench them with the same --n-images and --mode, or give them different --label" in err


def test_compare_refuses_to_pool_two_protocols(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _report(tmp_path, "a", "A", 0.9), _report(tmp_path, "b", "A", 0.9)
    report = json.loads((b / "result.json").read_text())
    report["protocol"] = "GlimpseBench-v0"
    (b / "result.json").write_text(json.dumps(report))
    code, _, err = run_cli(capsys, "bench", "compare", str(a), str(b))
    assert code == 2 and f"differ in protocol {PROTOCOL} and GlimpseBench-v0," in err


def test_compare_names_the_pooled_runs_and_how_rows_were_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Different labels may be measured differently (separate rows), and the note says so;
    each pooled row names its runs, with the training seed of a run folder's config.json."""
    _fake_rliable(monkeypatch)
    runs = []
    for seed in (3, 4):
        run = tmp_path / f"run-s{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"seed": seed, "lr": 0.001}))
        runs.append(run)
    files = [
        _report(tmp_path, "a0", "A", 0.9, policy=str(runs[0])),
        _report(tmp_path, "a1", "A", 0.92, policy=str(runs[1] / "model.pt")),
        _report(tmp_path, "b0", "B", 0.8, policy="pkg:make", n_images=50),
        _report(tmp_path, "b1", "B", 0.85, policy="pkg:make", n_images=50),
        _report(tmp_path, "c", "C", 0.5, mode="sample"),  # one result: not pooled
    ]
    (runs[1] / "model.pt").write_bytes(b"")  # a checkpoint: its folder's config.json
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files))
    assert code == 0, err
    assert "| B | E-v0 | deterministic | 50 |" in out and "| C | E-v0 | sample | 100 |" in out
    note = out[out.index("Pooled results") :].splitlines()
    assert note[1] == (
        f"- A | E-v0: {runs[0]} (training seed 3), {runs[1] / 'model.pt'} (training seed 4)"
    )
    assert note[2] == f"- B | E-v0: pkg:make [{files[2]}], pkg:make [{files[3]}]"
    assert note[4] == (
        "The rows were measured differently (A | E-v0: 100 images, deterministic; "
        "B | E-v0: 50 images, deterministic): not like for like."
    )
    # Rows measured alike: no such line.
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files[:2]))
    assert code == 0 and "- A | E-v0:" in out and "measured differently" not in out, err


def test_label_is_the_policys_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _user_module(tmp_path, monkeypatch, "my_named_policy", fail=False)
    out = tmp_path / "out"
    argv = ["--env", "GlimpseMNIST-v0", "--n-images", "5"]
    code, _, err = run_cli(
        capsys, "bench", "--policy", f"{name}:make_named", *argv, "--out", str(out)
    )
    assert code == 0, err
    report = json.loads((out / "result.json").read_text())
    assert report["label"] == "raster-toy" and report["policy"] == f"{name}:make_named"
    assert report["results"]["GlimpseMNIST-v0"]["policy"] == f"{name}:make_named"
    assert "| raster-toy | GlimpseMNIST-v0 |" in (out / "result.md").read_text()
    # --label wins; a bare callable has no name of its own: the spec.
    for spec, label, want in ((f"{name}:make_named", "mine", "mine"), (f"{name}:make", None, None)):
        other = tmp_path / f"out-{label}"
        extra = ["--label", label] if label else []
        code, _, err = run_cli(
            capsys, "bench", "--policy", spec, *argv, *extra, "--out", str(other)
        )
        assert code == 0, err
        assert json.loads((other / "result.json").read_text())["label"] == (want or spec)


def test_no_matplotlib_is_said_once_per_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _user_module(tmp_path, monkeypatch, "my_plotless_policy", fail=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    out = tmp_path / "out"
    argv = ["--policy", f"{name}:make", "--env", "all", "--n-images", "5", "--out", str(out)]
    code, stdout, err = run_cli(capsys, "bench", *argv)
    assert code == 0, err
    assert stdout.count("matplotlib is not installed") == 1
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "result.md"]


def test_env_all_and_adaptive_are_the_four_ids_in_help_and_docs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from glimpse_env.registration import ADAPTIVE_IDS

    code, out, _ = run_cli(capsys, "bench", "--help")
    assert code == 0 and len(ENV_IDS) == len(ADAPTIVE_IDS) == 4
    assert "all: the four fixed-length benchmark ids; adaptive: their four adaptive" in " ".join(
        out.split()
    )
    docs = " ".join((Path(__file__).parents[2] / "docs" / "bench.md").read_text().split())
    start = docs.index("`--env all` runs the four fixed-length benchmark ids")
    said = docs[start : docs.index("policy stops itself", start)]
    assert all(f"`{env_id}`" in said for env_id in ENV_IDS), said
    assert "every registered id" not in docs


def test_compare_with_training_seeds_real_rliable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the real rliable: IQM and mean (2-3 seeds: nothing trimmed) and P(A > B), here
    4 of the 6 (A, B) pairs, as computed by hand; the bootstrap is seeded."""
    files = [
        _report(tmp_path, f"{label}{seed}", label, acc)
        for label, accs in (("A", (0.9, 0.92)), ("B", (0.8, 0.85, 0.95)))
        for seed, acc in enumerate(accs)
    ]
    code, out, err = run_cli(capsys, "bench", "compare", *map(str, files), "--reps", "200")
    assert code == 0, err
    assert "| A | E-v0 | 2 | 91.00 [" in out and "| B | E-v0 | 3 | 86.67 [" in out
    assert "| A > B | E-v0 | 0.67 [" in out
    again = run_cli(capsys, "bench", "compare", *map(str, files), "--reps", "200")[1]
    assert again == out


def test_oracle_run_trains_and_benchmarks_looking_at_the_digit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``glimpse train ram --location-policy oracle`` on translated MNIST; the benchmark of
    the run (the loader's oracle, bound to the bench's env) puts every chosen glimpse at
    the centre of the digit's box."""
    run = tmp_path / "oracle"
    argv = ["train", "ram", *TINY_RAM, "--env", "GlimpseTranslatedMNIST-v0", "--epochs",
            str(10 * 16 / 50_000), "--location-policy", "oracle", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((run / "eval.json").read_text())
    assert summary["location_policy"] == "oracle"
    out = tmp_path / "bench"
    code, _, err = run_cli(
        capsys, "bench", "--policy", str(run), "--n-images", "50", "--out", str(out)
    )
    assert code == 0, err
    entry = json.loads((out / "result.json").read_text())["results"]["GlimpseTranslatedMNIST-v0"]
    assert entry["on_digit_share"] == 1.0
    assert entry["first_glimpse_distance_px"] == pytest.approx(0.0, abs=1e-4)
