"""``glimpse train ppo`` through the run harness: the env's settings, the replaced
``--time-budget``, and run folders written before the harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")

#: Two rollouts of 16 x 14 env steps, no evaluation.
SMALL = ["--num-envs", "16", "--n-steps", "14", "--batch-size", "112", "--n-epochs", "1"]
SMALL += ["--total-steps", "448", "--threads", "1", "--no-progress", "--eval-every", "0"]


def test_env_settings_reach_the_env_and_meta_json(tmp_path: Path) -> None:
    """``--n-glimpses``, ``--glimpse-size``, ``--n-scales`` and ``--reward`` are the env's;
    ``glimpse eval`` reads them back from meta.json."""
    from agents.policy import load_policy

    run = tmp_path / "ppo"
    env = ["--n-glimpses", "5", "--glimpse-size", "6", "--n-scales", "2", "--reward", "dense"]
    argv = ["train", "ppo", "--run-dir", str(run), *env, "--final-eval-images", "50", *SMALL]
    assert main(argv) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["env_kwargs"] == {
        "n_glimpses": 5,
        "glimpse_size": 6,
        "n_scales": 2,
        "start": "random",
        "reward": "dense",
    }
    assert meta["action_use"] == {"horizon": 5, "class_every_step": True}
    assert meta["num_timesteps"] == 448 and meta["schema_version"] == 1
    policy = load_policy(run).policy
    assert policy.model.observation_space["glimpses"].shape == (5, 2, 6, 6)  # the history
    assert json.loads((run / "eval.json").read_text())["n_images"] == 50
    assert main(["eval", str(run), "--json", "--n-images", "20"]) == 0


def test_time_budget_is_replaced_by_max_minutes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "ppo", "--time-budget", "60"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--max-minutes" in err and len(err.splitlines()) == 1


def test_a_config_of_the_first_layout_is_read_back(tmp_path: Path) -> None:
    """config.json as ``glimpse train ppo`` wrote it before the run harness."""
    from agents.sb3_presets import get_preset
    from train.ppo import load_config

    old = {
        "agent": "recurrent_ppo",
        "env_id": "GlimpseMNIST-v0",
        "reward": "dense",
        "env_kwargs": {"n_glimpses": 5},
        "hyperparams": get_preset("recurrent_ppo", "GlimpseMNIST-v0").to_dict(),
        "device": "cpu",
        "seed": 3,
        "run_dir": str(tmp_path),
        "resume": None,
        "progress": True,
        "data_dir": None,
        "checkpoint_every": 224,
        "eval_every": 0,
        "eval_images": 1000,
        "eval_split": "test",
        "final_eval_images": 0,
        "torch_threads": 2,
        "time_budget_s": 90.0,
    }
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = load_config(tmp_path)
    assert cfg.agent == "recurrent_ppo" and cfg.recurrent and cfg.env == "GlimpseMNIST-v0"
    assert (cfg.reward, cfg.n_glimpses, cfg.threads, cfg.max_minutes) == ("dense", 5, 2, 1.5)
    assert cfg.hyperparams == get_preset("recurrent_ppo", "GlimpseMNIST-v0")
    assert load_config(tmp_path).to_dict() == cfg.to_dict()
