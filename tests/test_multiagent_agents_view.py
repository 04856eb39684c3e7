"""ContractAgentsVecEnv: the agents' view of the Coin Game under a fixed principal."""

import numpy as np
import pytest
from sb3_contracts.envs.coin_game import CoinGameBatch
from stable_baselines3 import DQN, PPO

from sb3_contracts.game import ContractAgentsVecEnv


def test_pays_exactly_the_contract_on_the_action_taken():
    kwargs = {"grid_size": 3, "max_steps": 4}
    rng = np.random.default_rng(0)
    contracts = rng.uniform(0, 1, (3, 2, 4)) * (rng.random((3, 2, 4)) < 0.5)
    vec = ContractAgentsVecEnv(n_games=3, principal=contracts, seed=5, **kwargs)
    core = CoinGameBatch(n_games=3, seed=5, **kwargs)
    obs = vec.reset()
    core.reset()
    assert obs.shape == (6, 40) and vec.observation_space.shape == (40,)
    np.testing.assert_allclose(obs[:, 36:], contracts.reshape(6, 4).astype(np.float32))
    paid = np.zeros(6)
    for _ in range(4):
        actions = rng.integers(0, 4, 6)
        obs, rewards, dones, infos = vec.step(actions)
        game_rewards, _ = core.step(actions.reshape(3, 2))
        payments = contracts.reshape(6, 4)[np.arange(6), actions]
        paid += payments
        np.testing.assert_allclose(rewards, game_rewards.reshape(-1) + payments, rtol=1e-6)
        np.testing.assert_allclose([info["payment"] for info in infos], payments)
        recommended = np.where(contracts.max(-1) > 0, contracts.argmax(-1), -1).reshape(-1)
        assert [info["recommended_action"] for info in infos] == recommended.tolist()
        expected = np.where(recommended < 0, -1, (recommended == actions).astype(int))
        assert [info["followed"] for info in infos] == expected.tolist()
    assert dones.all()
    returns = core.episode_stats()["episode_return"].reshape(-1)
    np.testing.assert_allclose([info["episode"]["r"] for info in infos], returns + paid, rtol=1e-6)
    np.testing.assert_allclose([info["episode_payments"] for info in infos], paid)


def test_callable_principal_sees_the_global_state_and_the_agents_views():
    seen = []

    def principal(global_state, agent_obs):
        seen.append((global_state.shape, agent_obs.shape))
        contracts = np.zeros((2, 3, 4))
        contracts[:, :, 1] = global_state[:, 0].sum(axis=(1, 2))[:, None]  # 1 (player 0 is on the grid)
        return contracts

    vec = ContractAgentsVecEnv(n_games=2, principal=principal, seed=0, n_agents=3, grid_size=4, max_steps=2)
    obs = vec.reset()
    assert seen == [((2, 6, 4, 4), (2, 3, 64))]
    np.testing.assert_array_equal(obs[:, 64:], np.tile([0, 1, 0, 0], (6, 1)))
    _, rewards, _, infos = vec.step(np.ones(6, dtype=np.int64))
    assert all(info["followed"] == 1 and info["payment"] == 1.0 for info in infos)
    vec.step(np.zeros(6, dtype=np.int64))  # episode end: asked for the terminal and the reset states
    assert len(seen) == 4


def test_no_principal_means_no_contracts_and_invalid_contracts_raise():
    vec = ContractAgentsVecEnv(n_games=2, principal=None, seed=0)
    assert (vec.reset()[:, 36:] == 0).all()
    _, _, _, infos = vec.step(np.zeros(4, dtype=np.int64))
    assert all(info["followed"] == -1 and info["payment"] == 0.0 for info in infos)
    with pytest.raises(ValueError, match="b_max=2.0"):
        ContractAgentsVecEnv(n_games=2, principal=np.full((2, 4), 3.0))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 4\)"):
        ContractAgentsVecEnv(n_games=2, principal=np.zeros((2, 3)))
    bad = ContractAgentsVecEnv(n_games=2, principal=lambda state, obs: -np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="principal's contracts payments must be non-negative"):
        bad.reset()
    with pytest.raises(ValueError, match="obs_format"):
        ContractAgentsVecEnv(obs_format="grid")


@pytest.mark.parametrize("algo", [DQN, PPO])
def test_sb3_learners_train_on_the_agents_view(algo):
    contract = np.zeros((2, 4))
    contract[:, 2] = 0.5
    vec = ContractAgentsVecEnv(n_games=4, principal=contract, seed=0, preset="3x3")
    kwargs = {"learning_starts": 50, "buffer_size": 1000} if algo is DQN else {"n_steps": 16, "batch_size": 64}
    model = algo("MlpPolicy", vec, seed=0, **kwargs).learn(300)
    assert model.num_timesteps >= 300
    assert len(model.ep_info_buffer) > 0
