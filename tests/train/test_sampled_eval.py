"""Sampled evaluation is seeded from the evaluation seed: identical runs, identical results."""

from __future__ import annotations

import json

import pytest
import torch

from agents.policy import evaluate_policy, load_policy
from agents.pretrained import pretrained_path
from train.cli import main

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_sampled_evaluation_is_a_function_of_the_seed() -> None:
    policy = load_policy(pretrained_path("GlimpseMNIST-v0")).policy
    results = []
    for global_seed in (1, 2, 3):  # whatever state torch's global generator is in
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        results.append(evaluate_policy(policy, n_images=300, mode="sample", num_envs=300))
        assert torch.equal(torch.get_rng_state(), before)  # the global generator untouched
    assert results[0] == results[1] == results[2]
    other = evaluate_policy(policy, n_images=300, mode="sample", num_envs=300, seed=1)
    assert other["mode"] == "sample" and 0.9 < other["accuracy"] <= 1.0


def test_glimpse_eval_sample_gives_the_same_numbers_every_time(
    capsys: pytest.CaptureFixture,
) -> None:
    argv = ["eval", "--pretrained", "GlimpseMNIST-v0", "--mode", "sample", "--json"]
    argv += ["--n-images", "300", "--num-envs", "100"]
    outputs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        assert main(argv) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1] and outputs[0]["mode"] == "sample"


def test_rendered_sampled_episodes_are_the_same_every_time() -> None:
    import numpy as np

    from train.render_cmd import render_policy

    policy = load_policy(pretrained_path("GlimpseMNIST-v0")).policy
    frames = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        frames.append(render_policy(policy, "GlimpseMNIST-v0", n=4, deterministic=False))
    assert all(
        np.array_equal(a, b)
        for t in range(len(frames[0]))
        for a, b in zip(frames[0][t], frames[1][t])
    )
