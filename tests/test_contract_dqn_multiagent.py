"""MultiAgentContractDQN: VDN over agents with follow bits (Algorithm 3's training phase)."""

import numpy as np
import pytest
import torch as th

from sb3_contracts.coin_vec_env import CoinGameVecEnv
from sb3_contracts.contract_dqn import ContractDQN
from sb3_contracts.contract_dqn.multiagent import MultiAgentContractDQN, frozen_principal
from sb3_contracts.multiagent.common import recommend

th.set_num_threads(1)


def _model(n_games=4, n_agents=2, **kwargs):
    env = CoinGameVecEnv(n_games, preset="3x3", seed=0, n_agents=n_agents)
    kwargs = {"learning_starts": 64, "batch_size": 32, "seed": 0, "policy_kwargs": {"net_arch": [32]}, **kwargs}
    return MultiAgentContractDQN("MlpPolicy", env, **kwargs)


def test_is_a_contract_dqn_with_shared_networks_on_agent_observations():
    model = _model(n_agents=3)
    assert isinstance(model, ContractDQN)
    assert model.policy.principal_net.q_net[-1].out_features == 4
    # the agent model reads the observation and the two other agents' follow bits
    assert model.policy.agent_net.features_extractor.features_dim == 4 * 9 + 2


def test_buffer_holds_joint_transitions_and_targets_have_game_shapes():
    model = _model(n_games=4, n_agents=3).learn(600)
    buffer = model.replay_buffer
    assert buffer.observations.shape[1:] == (4, 3, 36) and buffer.agent_rewards.shape[1:] == (4, 3)
    data = buffer.sample(16)
    assert data.observations.shape == (16, 3, 36) and data.actions.shape == (16, 3)
    assert data.rewards.shape == (16, 3) and data.follow.shape == (16, 3) and data.dones.shape == (16,)
    assert set(np.unique(data.follow.numpy())) <= {0.0, 1.0}
    # the stored rewards are the game's own rewards: 0, 0.2 or 1 under the paper's rule
    assert set(np.round(np.unique(buffer.agent_rewards[: buffer.pos]).astype(float), 3)) <= {0.0, 0.2, 1.0}
    principal_loss, agent_loss, td_error = model._losses(data)
    assert principal_loss.shape == () and agent_loss.shape == () and np.isfinite(td_error)
    assert model.others_follow(np.array([[1, 0, 1]])).tolist() == [[[0, 1], [1, 1], [1, 0]]]


def test_follow_bits_drive_the_rollout_actions():
    model = _model(n_games=8, exploration_initial_eps=0.0, exploration_final_eps=0.0)
    model.learn(64)  # sets up the rollout state (last observations, follow bits)
    model.num_timesteps = 10**6  # past learning_starts: greedy
    actions, _ = model._sample_action(0)
    obs = th.as_tensor(model._last_obs)
    recommended = model.policy.principal_net(obs).argmax(1).numpy()
    followers = model._follow.reshape(-1).astype(bool)
    np.testing.assert_array_equal(actions[followers], recommended[followers])


def test_contracts_pay_only_the_recommended_move_and_never_negative():
    model = _model().learn(800)
    obs = np.random.default_rng(0).random((50, 36)).astype(np.float32)
    contracts, recommendations = model.predict_with_recommendation(obs)
    assert contracts.shape == (50, 4) and (contracts >= 0).all()
    off = np.ones_like(contracts, dtype=bool)
    off[np.arange(50), recommendations] = False
    assert (contracts[off] == 0).all()
    # the nudge makes every payment positive, so every contract recommends a move (the convention)
    assert (contracts[~off] >= model.current_margin() - 1e-6).all()
    np.testing.assert_array_equal(recommend(contracts), recommendations)
    q_values = model.policy.following_q(th.as_tensor(obs)).detach().numpy()
    expected = q_values.max(1) - q_values[np.arange(50), recommendations] + model.current_margin()
    np.testing.assert_allclose(contracts[~off], np.minimum(expected, 2.0), rtol=1e-5, atol=1e-6)


def test_save_load_predicts_the_same(tmp_path):
    model = _model().learn(800)
    obs = np.random.default_rng(1).random((20, 36)).astype(np.float32)
    model.save(tmp_path / "principal.zip")
    loaded = MultiAgentContractDQN.load(tmp_path / "principal.zip")
    for before, after in zip(model.predict_with_recommendation(obs), loaded.predict_with_recommendation(obs),
                             strict=True):
        np.testing.assert_array_equal(before, after)
    assert loaded.alpha == model.alpha and loaded.n_agents == 2


def test_frozen_principal_is_a_copy():
    model = _model().learn(300)
    offer = frozen_principal(model)
    core = model.env.core
    before = offer(core.global_state(), core.observe(flat=True)).copy()
    for parameter in model.policy.parameters():
        parameter.data.zero_()
    np.testing.assert_array_equal(offer(core.global_state(), core.observe(flat=True)), before)
    assert before.shape == (4, 2, 4)


def test_bad_arguments_raise():
    env = CoinGameVecEnv(2, preset="3x3")
    with pytest.raises(ValueError, match="alpha"):
        MultiAgentContractDQN("MlpPolicy", env, alpha=0.0)
    with pytest.raises(ValueError, match="follow_prob"):
        MultiAgentContractDQN("MlpPolicy", env, follow_prob=1.5)
    with pytest.raises(ValueError, match="b_max"):
        MultiAgentContractDQN("MlpPolicy", env, b_max=-1.0)
