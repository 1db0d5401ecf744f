"""SB3 agents: features extractors, the glimpse history wrapper, training, resume, eval."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.vec_env import DummyVecEnv

from agents.policy import evaluate_policy, load_policy
from agents.sb3_policy import (
    ACTION_USE_KEY,
    ActionUse,
    GlimpseFeatures,
    GlimpseHistory,
    GlimpseHistoryFeatures,
    SB3Policy,
    action_use,
    history_space,
)
from glimpse_env.sb3 import GlimpseVecEnv
from train.cli import build_parser, main

ENV_ID = "GlimpseMNIST-v0"
T = 7  # glimpses per episode of GlimpseMNIST-v0
#: A tiny PPO configuration: rollouts of 16 envs x 14 steps (= 2 episodes each).
SMALL = ["--num-envs", "16", "--n-steps", "14", "--batch-size", "112", "--n-epochs", "2"]
SMALL += ["--threads", "1", "--no-progress", "--eval-images", "100"]


@pytest.fixture(autouse=True)
def _data(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GLIMPSE_ENV_DATA", str(mnist_dir))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _single_space() -> gym.spaces.Dict:
    env = gym.make(ENV_ID)
    space = env.observation_space
    env.close()
    return space


def _random_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-1, 1, (n, 12)).astype(np.float32)


# ---------------------------------------------------------------------- features extractors
def test_glimpse_features_mirror_the_ram_glimpse_network() -> None:
    space = _single_space()
    extractor = GlimpseFeatures(space)
    net = extractor.glimpse_net
    assert (net.fc_glimpse.in_features, net.fc_glimpse.out_features) == (64, 128)
    assert (net.fc_location.in_features, net.fc_location.out_features) == (2, 128)
    assert net.fc_what.out_features == net.fc_where.out_features == 256
    obs = {"glimpse": torch.rand(5, 1, 8, 8), "location": torch.rand(5, 2) * 2 - 1}
    features = extractor(obs)
    assert features.shape == (5, 256) == (5, extractor.features_dim)
    assert (features >= 0).all()  # ReLU output


@pytest.mark.parametrize(("combine", "dim"), [("concat", T * 256 + T), ("mean", 256 + T)])
def test_history_features_shapes_and_empty_slots(combine: str, dim: int) -> None:
    space = history_space(_single_space(), T)
    extractor = GlimpseHistoryFeatures(space, combine=combine)
    assert extractor.features_dim == dim
    b, filled = 4, 3
    mask = torch.zeros(b, T)
    mask[:, :filled] = 1.0
    obs = {
        "glimpses": torch.rand(b, T, 1, 8, 8),
        "locations": torch.rand(b, T, 2) * 2 - 1,
        "mask": mask,
    }
    features = extractor(obs)
    assert features.shape == (b, dim)
    assert torch.equal(features[:, -T:], mask)  # the mask is part of the features
    # Whatever sits in an empty slot does not matter.
    noisy = {k: v.clone() for k, v in obs.items()}
    noisy["glimpses"][:, filled:] = torch.rand(b, T - filled, 1, 8, 8)
    noisy["locations"][:, filled:] = 0.5
    assert torch.allclose(extractor(noisy), features)
    if combine == "concat":
        per_slot = features[:, : T * 256].reshape(b, T, 256)
        assert (per_slot[:, filled:] == 0).all()
        assert (per_slot[:, :filled].abs().sum(dim=2) > 0).all()


# ---------------------------------------------------------------------- history wrapper
def test_history_slots_fill_in_order_and_reset_at_episode_end() -> None:
    n, seed = 3, 11
    raw = GlimpseVecEnv(ENV_ID, num_envs=n, seed=seed)
    wrapped = GlimpseHistory(GlimpseVecEnv(ENV_ID, num_envs=n, seed=seed))
    assert wrapped.n_slots == T
    assert wrapped.observation_space["glimpses"].shape == (T, 1, 8, 8)
    rng = np.random.default_rng(0)
    raw_obs, obs = raw.reset(), wrapped.reset()
    seen = [raw_obs]
    for step in range(1, 2 * T + 1):
        t = (step - 1) % T  # glimpses seen before this step, minus one
        # Slots 0..t hold glimpses 1..t+1 of this episode, the rest is zero.
        for slot in range(T):
            if slot <= t:
                np.testing.assert_array_equal(obs["glimpses"][:, slot], seen[slot]["glimpse"])
                np.testing.assert_array_equal(obs["locations"][:, slot], seen[slot]["location"])
                assert (obs["mask"][:, slot] == 1).all()
            else:
                assert (obs["glimpses"][:, slot] == 0).all()
                assert (obs["locations"][:, slot] == 0).all()
                assert (obs["mask"][:, slot] == 0).all()
        actions = _random_actions(rng, n)
        raw.step_async(actions)
        wrapped.step_async(actions)
        raw_obs, raw_rewards, raw_dones, raw_infos = raw.step_wait()
        obs, rewards, dones, infos = wrapped.step_wait()
        np.testing.assert_array_equal(rewards, raw_rewards)
        np.testing.assert_array_equal(dones, raw_dones)
        assert bool(dones.all()) == (step % T == 0)
        if dones.all():
            for i in range(n):
                terminal = infos[i]["terminal_observation"]
                # A full episode: all T slots filled with its T glimpses.
                assert terminal["mask"].tolist() == [1.0] * T
                for slot in range(T):
                    np.testing.assert_array_equal(
                        terminal["glimpses"][slot], seen[slot]["glimpse"][i]
                    )
                assert infos[i]["is_success"] == raw_infos[i]["is_success"]
            seen = [raw_obs]  # the next episode's first glimpse
        else:
            seen.append(raw_obs)


def test_history_terminal_observation_of_truncated_and_ragged_episodes() -> None:
    # Sub-env 0 is truncated after 2 steps, sub-env 1 runs the full 7: histories are
    # tracked and cleared per sub-env.
    venv = DummyVecEnv([lambda: gym.make(ENV_ID, max_episode_steps=2), lambda: gym.make(ENV_ID)])
    venv.seed(3)
    wrapped = GlimpseHistory(venv)
    assert wrapped.n_slots == T
    rng = np.random.default_rng(1)
    obs = wrapped.reset()
    first0 = obs["glimpses"][0, 0].copy()
    wrapped.step_async(_random_actions(rng, 2))
    obs, _, dones, _ = wrapped.step_wait()
    second0 = obs["glimpses"][0, 1].copy()
    wrapped.step_async(_random_actions(rng, 2))
    obs, _, dones, infos = wrapped.step_wait()
    assert dones.tolist() == [True, False]
    assert infos[0]["TimeLimit.truncated"]
    terminal = infos[0]["terminal_observation"]
    # Two glimpses seen, plus the observation after the last step in slot 2.
    assert terminal["mask"].tolist() == [1, 1, 1, 0, 0, 0, 0]
    np.testing.assert_array_equal(terminal["glimpses"][0], first0)
    np.testing.assert_array_equal(terminal["glimpses"][1], second0)
    assert (terminal["glimpses"][3:] == 0).all()
    # Sub-env 0 starts over, sub-env 1 goes on.
    assert obs["mask"][0].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert (obs["glimpses"][0, 1:] == 0).all()
    assert obs["mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_sb3_wrappers_equal_the_gymnasium_vector_wrappers() -> None:
    """GlimpseVecEnv -> GlimpseHistory -> ActionUse (how PPO trains) observes what the
    Gymnasium vector wrappers give over the same-step native env, terminal observations
    included."""
    from glimpse_env.wrappers import VectorActionUse, VectorGlimpseHistory

    n, seed = 3, 2
    sb3 = ActionUse(GlimpseHistory(GlimpseVecEnv(ENV_ID, num_envs=n, seed=seed)))
    native = gym.make_vec(ENV_ID, num_envs=n, autoreset_mode="SameStep")
    gymnasium_envs = VectorActionUse(VectorGlimpseHistory(native))
    assert sb3.observation_space == gymnasium_envs.single_observation_space
    rng = np.random.default_rng(0)
    obs, (expected, _) = sb3.reset(), gymnasium_envs.reset(seed=seed)
    for _ in range(2 * T):
        assert obs.keys() == expected.keys()
        for key in obs:
            np.testing.assert_array_equal(obs[key], expected[key])
            assert obs[key].dtype == expected[key].dtype
        actions = _random_actions(rng, n)
        sb3.step_async(actions)
        obs, _, dones, infos = sb3.step_wait()
        expected, _, terminated, _, info = gymnasium_envs.step(actions)
        np.testing.assert_array_equal(dones, terminated)
        for i in np.flatnonzero(dones):
            final = info["final_obs"][i]
            for key, value in infos[i]["terminal_observation"].items():
                np.testing.assert_array_equal(value, final[key])


# ---------------------------------------------------------------------- action use
def test_action_use_by_hand() -> None:
    steps = np.array([0, 5, 6, 7])
    sparse = [[1, 0], [1, 0], [0, 1], [0, 1]]
    np.testing.assert_array_equal(action_use(steps, T, class_every_step=False), sparse)
    dense = [[1, 1], [1, 1], [0, 1], [0, 1]]
    np.testing.assert_array_equal(action_use(steps, T, class_every_step=True), dense)
    assert action_use(steps, T, False).dtype == np.float32


@pytest.mark.parametrize("reward", ["sparse", "dense"])
def test_action_use_follows_the_episode_steps(reward: str) -> None:
    n = 3
    env = ActionUse(GlimpseHistory(GlimpseVecEnv(ENV_ID, num_envs=n, seed=1, reward=reward)))
    assert (env.horizon, env.class_every_step) == (T, reward == "dense")
    assert env.observation_space[ACTION_USE_KEY].shape == (2,)
    rng = np.random.default_rng(0)
    obs = env.reset()
    for t in range(2 * T):
        step = t % T
        read = [step < T - 1, step == T - 1 or reward == "dense"]
        np.testing.assert_array_equal(obs[ACTION_USE_KEY], np.tile(read, (n, 1)))
        assert obs[ACTION_USE_KEY].dtype == np.float32 and "mask" in obs
        env.step_async(_random_actions(rng, n))
        obs, _, dones, infos = env.step_wait()
        assert dones.all() == (step == T - 1) and dones.all() == dones.any()
        if dones.all():
            assert all(ACTION_USE_KEY in info["terminal_observation"] for info in infos)
    env.close()
    with pytest.raises(ValueError, match=ACTION_USE_KEY):
        ActionUse(env)


@pytest.mark.parametrize("use", [False, True])
def test_policy_adapter_sees_what_training_saw(use: bool) -> None:
    """SB3Policy on the native Gymnasium vector env == the model on GlimpseHistory (and
    ActionUse)."""
    from stable_baselines3 import PPO

    from agents.sb3_distributions import GlimpseMultiInputPolicy

    torch.set_num_threads(1)
    n, seed = 4, 5
    train_env = GlimpseHistory(GlimpseVecEnv(ENV_ID, num_envs=n, seed=seed))
    if use:
        train_env = ActionUse(train_env)
    model = PPO(
        GlimpseMultiInputPolicy,
        train_env,
        n_steps=8,
        batch_size=32,
        policy_kwargs={"features_extractor_class": GlimpseHistoryFeatures},
        device="cpu",
        seed=0,
    )
    if use:
        with pytest.raises(ValueError, match=ACTION_USE_KEY):
            SB3Policy(model, ENV_ID, {})
    policy = SB3Policy(model, ENV_ID, {}, {"horizon": T, "class_every_step": False})
    assert policy.history_slots == T and not policy.recurrent
    envs = gym.make_vec(ENV_ID, num_envs=n)
    obs, _ = envs.reset(seed=seed)
    train_env.seed(seed)
    wrapped_obs = train_env.reset()
    state = policy.initial_state(n)
    for _ in range(T):
        actions, state = policy.act(obs, state, deterministic=True)
        expected, _ = model.predict(wrapped_obs, deterministic=True)
        assert actions.dtype == np.float32 and actions.shape == (n, 12)
        np.testing.assert_allclose(actions, expected, rtol=1e-6, atol=1e-6)
        obs, *_ = envs.step(actions)
        train_env.step_async(actions)
        wrapped_obs, *_ = train_env.step_wait()
    envs.close()
    result = evaluate_policy(policy, n_images=20, num_envs=10)
    assert result["n_images"] == 20
    if use:  # the policy's log-probability counts only the parts the env reads
        obs_t, _ = model.policy.obs_to_tensor(wrapped_obs)
        actions_t = torch.as_tensor(expected)
        for read in ([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]):
            obs_t[ACTION_USE_KEY] = torch.tensor([read] * n)
            with torch.no_grad():
                _, log_prob, entropy = model.policy.evaluate_actions(obs_t, actions_t)
                dist = model.policy.get_distribution(obs_t)
            location = dist.distribution.log_prob(actions_t[:, :2]).sum(-1)
            chosen = dist.classes.log_prob(actions_t[:, 2:].argmax(-1))
            torch.testing.assert_close(log_prob, read[0] * location + read[1] * chosen)
            assert (entropy == 0).all() == (read == [0.0, 0.0])


# ---------------------------------------------------------------------- command line
def test_every_hyperparameter_is_a_flag() -> None:
    args = build_parser().parse_args(
        [
            *("train", "ppo", "--n-steps", "7", "--net-arch-pi", "64,64", "--no-history"),
            *("--lr-schedule", "linear", "--learning-rate", "1e-3"),
        ]
    )
    assert (args.n_steps, args.net_arch_pi, args.history) == (7, (64, 64), False)
    assert (args.lr_schedule, args.learning_rate, args.batch_size) == ("linear", 1e-3, None)


def test_train_ppo_then_eval_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "ppo"
    code = main(
        [
            *("train", "ppo", "--env", ENV_ID, "--reward", "dense", "--run-dir", str(run_dir)),
            *("--total-steps", "2688", "--eval-every", "1344", "--final-eval-images", "200"),
            *("--checkpoint-every", "1000", "--device", "auto", *SMALL),
        ]
    )
    assert code == 0
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["agent"] == "ppo" and meta["checkpoint"] == "model.zip"
    assert meta["env_id"] == ENV_ID and meta["env_kwargs"]["reward"] == "dense"
    assert meta["num_timesteps"] == 2688
    assert meta["action_use"] == {"horizon": T, "class_every_step": True}  # dense reward
    assert (run_dir / "model.zip").is_file() and (run_dir / "config.json").is_file()
    assert not list(run_dir.glob("*.tmp"))  # atomic writes leave no temp files
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 2688
    evaluated = [int(r["step"]) for r in rows if r["eval_accuracy"] != ""]
    assert evaluated == [0, 1344, 2688]
    assert all(0.0 <= float(r["eval_accuracy"]) <= 1.0 for r in rows if r["eval_accuracy"])
    assert rows[-1]["value_loss"] != ""
    final = json.loads((run_dir / "eval.json").read_text())
    assert final["n_images"] == 200 and final["mode"] == "deterministic"
    capsys.readouterr()

    assert main(["eval", str(run_dir), "--json", "--n-images", "200"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"error_rate", "accuracy", "n_images", "env_id", "split", "mode"} <= set(result)
    assert result["n_images"] == 200 and result["env_id"] == ENV_ID
    assert (result["split"], result["mode"]) == ("test", "deterministic")
    assert result["accuracy"] == pytest.approx(1.0 - result["error_rate"])
    # The same deterministic evaluation as the one written at the end of training.
    assert result["accuracy"] == final["accuracy"]


def test_recurrent_ppo_resume_reaches_the_full_step_count(tmp_path: Path) -> None:
    run_dir = tmp_path / "rppo"
    total = 16 * 14 * 6  # six rollouts
    common = ["--final-eval-images", "0", "--eval-every", "0", *SMALL]
    first = ["train", "ppo", "--recurrent", "--run-dir", str(run_dir)]
    first += ["--total-steps", str(total // 2), "--checkpoint-every", "224", *common]
    assert main(first) == 0
    assert json.loads((run_dir / "meta.json").read_text())["num_timesteps"] == total // 2
    # "Killed" half-way: resume to the full count.
    assert (
        main(["train", "ppo", "--resume", str(run_dir), "--total-steps", str(total), *common]) == 0
    )
    loaded = load_policy(run_dir)
    assert loaded.meta["agent"] == "recurrent_ppo"
    assert isinstance(loaded.policy, SB3Policy) and loaded.policy.recurrent
    assert loaded.policy.model.num_timesteps == total
    assert loaded.meta["num_timesteps"] == total
    with (run_dir / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(224, total + 1, 224))
    result = evaluate_policy(loaded.policy, n_images=30, num_envs=30)
    assert result["n_images"] == 30


def test_time_budget_stops_early_and_still_checkpoints(tmp_path: Path) -> None:
    run_dir = tmp_path / "budget"
    argv = ["train", "ppo", "--no-history", "--run-dir", str(run_dir), "--max-minutes", "0"]
    argv += ["--total-steps", "100000", "--eval-every", "0", "--final-eval-images", "0", *SMALL]
    assert main(argv) == 0
    meta = json.loads((run_dir / "meta.json").read_text())
    assert 0 < meta["num_timesteps"] < 100_000
    assert meta["history"] is None
    assert load_policy(run_dir).policy.history_slots is None


def test_used_actions_only_resolution_and_old_run_folders(tmp_path: Path) -> None:
    from agents.sb3_presets import SB3Hyperparams
    from train.ppo import PPOTrainConfig, load_config, uses_action_use

    assert uses_action_use(SB3Hyperparams())  # default: on with the categorical head
    assert not uses_action_use(SB3Hyperparams(class_head="gaussian"))
    assert not uses_action_use(SB3Hyperparams(used_actions_only=False))
    with pytest.raises(ValueError, match="categorical"):
        uses_action_use(SB3Hyperparams(class_head="gaussian", used_actions_only=True))
    # A run folder saved before the option existed resumes as it was trained.
    values = PPOTrainConfig(hyperparams=SB3Hyperparams()).to_dict()
    del values["hyperparams"]["used_actions_only"]
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert load_config(tmp_path).resolved_hyperparams().used_actions_only is False
