import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contracts.envs.coin_game import CoinGameBatch
from stable_baselines3 import DQN

from sb3_contracts.contract_dqn_multiagent.encoders import CenteredCoinExtractor, infer_grid_size
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv


@pytest.mark.parametrize("preset", ["3x3", "7x7"])
def test_centred_grid_equals_numpy_roll_and_keeps_the_extras(preset):
    core = CoinGameBatch(n_games=16, seed=3, preset=preset)
    core.reset()
    rng = np.random.default_rng(0)
    for _ in range(5):  # a few positions, so that the observer is not always on the same cell
        core.step(rng.integers(4, size=(16, 2)))
    grid = core.observe(flat=True).reshape(32, -1)
    extras = rng.random((32, 3))
    size = core.grid_size
    extractor = CenteredCoinExtractor(spaces.Box(0.0, 2.0, (grid.shape[1] + 3,)))
    features = extractor(th.as_tensor(np.concatenate([grid, extras], axis=1), dtype=th.float32)).numpy()
    assert extractor.features_dim == 3 * size * size + 3
    channels = grid.reshape(32, 4, size, size)
    for row in range(32):
        (r, c), = np.argwhere(channels[row, 0])
        expected = np.roll(channels[row, 1:], (size // 2 - r, size // 2 - c), axis=(1, 2)).reshape(-1)
        np.testing.assert_array_equal(features[row, :-3], expected)
        np.testing.assert_allclose(features[row, -3:], extras[row], rtol=1e-6)


def test_same_relative_situation_gives_the_same_features():
    size = 5
    extractor = CenteredCoinExtractor(spaces.Box(0.0, 1.0, (4 * size * size,)))
    observations = np.zeros((2, 4, size, size), dtype=np.float32)
    for k, (r, c) in enumerate([(0, 0), (3, 4)]):  # observer, with the other player one step right (wrapping)
        observations[k, 0, r, c] = 1
        observations[k, 1, r, (c + 1) % size] = 1
        observations[k, 2, (r + 2) % size, c] = 1
    features = extractor(th.as_tensor(observations.reshape(2, -1)))
    th.testing.assert_close(features[0], features[1])


def test_grid_size_inference_and_bad_inputs():
    assert infer_grid_size(36) == 3 and infer_grid_size(40) == 3 and infer_grid_size(4 * 49 + 4) == 7
    with pytest.raises(ValueError, match="at least 4"):
        infer_grid_size(3)
    with pytest.raises(ValueError, match="flat observations"):
        CenteredCoinExtractor(spaces.Box(0.0, 1.0, (4, 3, 3)))
    with pytest.raises(ValueError, match="grid_size=4"):
        CenteredCoinExtractor(spaces.Box(0.0, 1.0, (40,)), grid_size=4)


def test_sb3_dqn_trains_with_the_centred_extractor():
    env = CoinGameVecEnv(4, obs_format="flat", seed=0, preset="3x3")
    model = DQN("MlpPolicy", env, learning_starts=50, buffer_size=1_000, seed=0,
                policy_kwargs=dict(features_extractor_class=CenteredCoinExtractor, net_arch=[16]))
    model.learn(200)
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (8,)


def test_contract_recommendation_is_appended_as_a_one_hot():
    size = 3
    extractor = CenteredCoinExtractor(spaces.Box(0.0, 2.0, (4 * size * size + 4,)), contract_dims=4)
    observations = np.zeros((4, 4 * size * size + 4), dtype=np.float32)
    observations[:, 0] = 1  # the observer on cell 0
    observations[:, -4:] = [[0, 0, 0.03, 0], [0, 0, 0, 0], [0.5, 0, 0.5, 0], [0.1, 0.2, 0, 0.05]]
    features = extractor(th.as_tensor(observations)).numpy()
    assert extractor.features_dim == 3 * size * size + 8
    np.testing.assert_array_equal(features[:, -8:-4], observations[:, -4:])  # the raw contract stays
    np.testing.assert_array_equal(features[:, -4:], [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="contract_dims must be in"):
        CenteredCoinExtractor(spaces.Box(0.0, 1.0, (4 * size * size + 2,)), contract_dims=4)


def test_the_papers_convolution_sees_the_torus_and_passes_the_extras():
    from sb3_contracts.contract_dqn_multiagent.encoders import CoinConvExtractor

    space = spaces.Box(0.0, 2.0, (4 * 9 + 4,), dtype=np.float32)
    extractor = CoinConvExtractor(space, contract_dims=4)
    assert extractor.conv.kernel_size == (4, 4) and extractor.conv.out_channels == 32
    assert extractor.features_dim == 32 * 16 + 4 + 4
    core = CoinGameBatch(n_games=5, preset="3x3", seed=0)
    grid = th.as_tensor(core.observe(flat=True).reshape(10, -1))
    contract = th.zeros(10, 4)
    contract[:, 2] = 0.3
    features = extractor(th.cat([grid, contract], dim=1)).detach()
    np.testing.assert_array_equal(features[:, -8:-4].numpy(), contract.numpy())
    np.testing.assert_array_equal(features[:, -4:].numpy(), np.tile([0, 0, 1, 0], (10, 1)))
    # a shift of the whole torus shifts the convolution's maps (circular padding: no border)
    shifted = th.roll(grid.reshape(10, 4, 3, 3), shifts=1, dims=3).reshape(10, -1)
    maps = th.relu(extractor.conv(grid.reshape(10, 4, 3, 3)))
    maps_shifted = th.relu(extractor.conv(shifted.reshape(10, 4, 3, 3)))
    assert maps.shape[-2:] == (4, 4)
    assert th.allclose(maps_shifted[..., 1:], maps[..., :-1], atol=1e-6)
    with pytest.raises(ValueError, match="contract_dims"):
        CoinConvExtractor(spaces.Box(0.0, 1.0, (36,), dtype=np.float32), contract_dims=2)
