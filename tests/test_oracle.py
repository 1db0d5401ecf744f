"""The oracle location (glimpse_env/oracle.py): digit centres from hand-made layouts, from a
real vector env (its glimpse is the digit's central patch), and the action wrapper."""

from __future__ import annotations

import types

import gymnasium as gym
import numpy as np
import pytest

from glimpse_env.oracle import OracleLocationWrapper, digit_centres, oracle_locations

pytestmark = pytest.mark.usefixtures("glimpse_data")


def test_digit_centres_by_hand() -> None:
    # 60x60 canvas: box at rows 0..27, cols 0..27 -> centre (14, 14) -> x = y = 28/60 - 1;
    # box at row 32, col 10 -> centre (46, 24) -> x = 48/60 - 1 = -0.2, y = 92/60 - 1.
    layout = {"digit_pos": np.array([[0, 0], [32, 10]]), "clutter_pos": np.zeros((2, 4, 2))}
    out = digit_centres(layout, 2, 60)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert np.allclose(out, [[28 / 60 - 1, 28 / 60 - 1], [-0.2, 92 / 60 - 1]])
    # The largest position on 100x100 (72) centres the box at 86: x = 172/100 - 1.
    assert np.allclose(digit_centres({"digit_pos": [[72, 72]]}, 1, 100), [[0.72, 0.72]])
    # Plain MNIST: no position, the digit is the canvas: its centre.
    assert np.array_equal(digit_centres({}, 3, 28), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"must be \(3, 2\)"):
        digit_centres({"digit_pos": np.zeros((2, 2))}, 3, 60)


@pytest.mark.parametrize("env_id", ["GlimpseTranslatedMNIST-v0", "GlimpseClutteredMNIST-v0"])
def test_the_oracle_glimpse_is_the_digits_central_patch(env_id: str) -> None:
    envs = OracleLocationWrapper(gym.make_vec(env_id, num_envs=5, split="test", sequential=True))
    envs.reset(seed=0)
    expected = digit_centres(envs.unwrapped.layout, 5, 60)
    assert np.array_equal(oracle_locations(envs), expected)
    actions = np.full((5, 12), 0.9, dtype=np.float32)  # looks at the corner, says "9"...
    actions[:, 2:] = np.eye(10, dtype=np.float32)[np.arange(5)]
    obs, *_ = envs.step(actions)
    assert np.array_equal(obs["location"], expected)  # ...but the oracle location is sent
    canvases, top_left = envs.unwrapped.canvases, envs.unwrapped.layout["digit_pos"]
    for i in range(5):
        row, col = top_left[i] + 14
        centre = canvases[i, row - 6 : row + 6, col - 6 : col + 6] / 255.0  # 12x12 scale 0
        assert np.allclose(obs["glimpse"][i, 0], centre, atol=1e-6)
    assert actions[0, 0] == np.float32(0.9)  # the caller's actions are not written to
    envs.close()


def test_wrapper_keeps_scores_and_stop_and_torch_actions() -> None:
    import torch

    envs = gym.make_vec("GlimpseTranslatedMNISTAdaptive-v0", num_envs=3, split="test")
    wrapper = OracleLocationWrapper(envs)
    envs.reset(seed=1)
    expected = oracle_locations(envs)
    actions = np.arange(3 * 13, dtype=np.float32).reshape(3, 13) / 100.0
    out = wrapper.actions(actions)
    assert np.array_equal(out[:, :2], expected) and np.array_equal(out[:, 2:], actions[:, 2:])
    tensor = torch.as_tensor(actions, dtype=torch.float64)
    out_t = wrapper.actions(tensor)
    assert out_t.dtype == torch.float64 and torch.equal(out_t[:, 2:], tensor[:, 2:])
    assert np.allclose(out_t[:, :2].numpy(), expected)
    assert tensor[0, 0].item() == 0.0  # not written to
    envs.close()


def test_plain_mnist_oracle_is_the_centre_and_other_envs_are_refused() -> None:
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2, split="test")
    envs.reset(seed=0)
    assert np.array_equal(oracle_locations(envs), np.zeros((2, 2), np.float32))
    envs.close()
    stranger = types.SimpleNamespace(unwrapped=object(), num_envs=2)
    with pytest.raises(TypeError, match="need the digit's position"):
        oracle_locations(stranger)  # type: ignore[arg-type]
