"""MultiAgentContractDQN: VDN over agents with follow bits (Algorithm 3's training phase) on ContractCoinGame-v0."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

import sb3_contracts  # noqa: F401  (registers the env ids)
from sb3_contracts import MultiAgentContractDQN
from sb3_contracts.common.principal import frozen_principal
from sb3_contracts.contract_dqn_multiagent import FollowBitAgents, MultiAgentReplayBuffer
from sb3_contracts.game import ContractCoinGameVecEnv
from sb3_contracts.game.settlement import recommend

th.set_num_threads(1)


def _model(n_envs=4, n_agents=2, **kwargs):
    kwargs = {"learning_starts": 64, "batch_size": 32, "seed": 0, "policy_kwargs": {"net_arch": [32]}, **kwargs}
    return MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=n_envs,
                                 env_kwargs={"preset": "3x3", "n_agents": n_agents}, **kwargs)


def test_trains_on_the_registered_id_with_shared_networks_on_each_agents_row():
    model = _model(n_agents=3).learn(300)
    assert isinstance(model.env, ContractCoinGameVecEnv) and model.env.num_envs == 4
    assert model.policy.principal_net.q_net[-1].out_features == 4
    # the agent model reads an agent's row and the two other agents' follow bits
    assert model.policy.agent_net.features_extractor.features_dim == 4 * 9 + 2
    # after learn() the env's own agents are back
    assert not isinstance(model.env.responder, FollowBitAgents)


def test_a_learn_that_fails_puts_the_envs_own_agents_back_all_the_same():
    model = _model()
    own = model.env.responder

    def stop(local_vars, _):
        assert model.env.responder is model.training_agents  # the training agents play meanwhile
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        model.learn(200, callback=stop)
    assert model.env.responder is own
    model.learn(100)  # and learn() plugs them in again
    assert model.env.responder is own and model.replay_buffer.pos == 25


def test_sb3s_setup_builds_the_buffer_from_the_envs_contract_space():
    model = _model(n_agents=3)
    assert model.action_space.shape == (3, 4)  # the env's actions: a contract per agent
    assert model.replay_buffer.action_space == spaces.MultiDiscrete([4, 4, 4])  # the buffer's: the moves taken
    with pytest.raises(ValueError, match="contracts"):
        MultiAgentReplayBuffer(10, model.observation_space, spaces.MultiDiscrete([4, 4, 4]))


def test_trains_on_sb3s_make_vec_env_too():
    env = make_vec_env("ContractCoinGame-v0", n_envs=2, env_kwargs={"preset": "3x3"})
    model = MultiAgentContractDQN("MlpPolicy", env, learning_starts=32, batch_size=16,
                                  policy_kwargs={"net_arch": [16]}, seed=0).learn(120)
    assert model.replay_buffer.pos == 60 and model.num_timesteps == 120


def test_buffer_holds_joint_transitions_and_the_follow_bits_the_env_reported():
    model = _model(n_envs=4, n_agents=3).learn(600)
    buffer = model.replay_buffer
    assert buffer.observations.shape[1:] == (4, 3, 36) and buffer.agent_rewards.shape[1:] == (4, 3)
    data = buffer.sample(16)
    assert data.observations.shape == (16, 3, 36) and data.actions.shape == (16, 3)
    assert data.rewards.shape == (16, 3) and data.follow.shape == (16, 3) and data.dones.shape == (16,)
    assert set(np.unique(buffer.follow[: buffer.pos])) == {0.0, 1.0}
    # the stored rewards are the game's own rewards: 0, 0.2 or 1 under the paper's rule
    assert set(np.round(np.unique(buffer.agent_rewards[: buffer.pos]).astype(float), 3)) <= {0.0, 0.2, 1.0}


def test_predict_returns_the_envs_action_paying_only_the_recommended_move():
    model = _model().learn(200)
    env = model.env
    obs = env.reset()
    contracts, _ = model.predict(obs, deterministic=True)
    assert contracts.shape == (4, 2, 4) and contracts.dtype == np.float32
    assert model.predict(obs[0], deterministic=True)[0].shape == (2, 4)
    assert (contracts >= 0).all() and (contracts <= 2.0).all()
    assert ((contracts > 0).sum(axis=2) == 1).all()  # one paid move per agent: the recommendation
    recommended = model.predict_recommendation(obs)
    np.testing.assert_array_equal(recommend(contracts), recommended)
    with th.no_grad():
        payments = model.policy.following_payments(th.as_tensor(obs.reshape(8, -1)))
    expected = np.minimum(payments.numpy()[np.arange(8), recommended.reshape(-1)], 2.0)
    np.testing.assert_allclose(contracts.max(axis=2).reshape(-1), expected, rtol=1e-6)


def test_follow_bits_decide_who_takes_the_recommendation():
    model = _model(learning_starts=0, exploration_initial_eps=0.0)
    env = model.env
    obs = env.reset()
    contracts, _ = model.predict(obs, deterministic=True)
    agent_obs = env.core.observe(flat=True)
    np.testing.assert_array_equal(agent_obs, obs)
    always, never = FollowBitAgents(model, 1.0), FollowBitAgents(model, 0.0)
    np.testing.assert_array_equal(always(agent_obs, contracts, env.core), recommend(contracts))
    selfish = never(agent_obs, contracts, env.core)
    with th.no_grad():
        rows = th.as_tensor(agent_obs.reshape(8, -1))
        q = model.policy.agent_net(model.policy.with_bits(rows, th.zeros(8, 1))).numpy()
    np.testing.assert_array_equal(selfish.reshape(-1), q.argmax(axis=1))
    assert always.info(env.core)["follow_bits"].tolist() == [[1.0, 1.0]] * 4


def test_training_metrics_count_the_payments_paid_and_the_recommendations_followed():
    model = _model(learning_starts=0)
    env = model.env
    model._setup_learn(100)  # plugs in the training agents, as learn() does
    model._reset_rollout_stats()
    contracts, buffer_actions = model._sample_action(0)
    new_obs, rewards, dones, infos = env.step(contracts)
    model._store_transition(model.replay_buffer, buffer_actions, new_obs, rewards, dones, infos)
    # by hand: each agent is paid its contract on the move it took; it followed if that move is the one paid
    moves = np.stack([info["actions"] for info in infos])
    paid = np.take_along_axis(contracts, moves[..., None], axis=2)[..., 0]
    followed = moves == contracts.argmax(axis=2)
    np.testing.assert_allclose(model._stats["payment"], paid.sum(), rtol=1e-6)
    assert model._stats["followed"] == followed.sum() and model._stats["steps"] == moves.size
    welfare = np.stack([info["agent_rewards"] for info in infos]).sum()
    assert model._stats["gross"] == pytest.approx(welfare)
    bits = np.stack([info["follow_bits"] for info in infos]).astype(bool)
    assert followed[bits].all()  # followers take the recommendation (ε-greedy recommendations included)
    np.testing.assert_allclose(rewards, (welfare_per_game := np.stack([i["welfare"] for i in infos])) / 0.1
                               - paid.sum(axis=1), rtol=1e-5)
    assert welfare_per_game.sum() == pytest.approx(welfare)


def test_save_load_predicts_the_same(tmp_path):
    model = _model().learn(200)
    obs = model.env.reset()
    model.save(tmp_path / "principal.zip")
    loaded = MultiAgentContractDQN.load(tmp_path / "principal.zip")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_frozen_principal_is_a_copy():
    model = _model().learn(200)
    obs = model.env.reset()
    offer = frozen_principal(model)
    before = offer(obs)
    for parameter in model.policy.parameters():
        parameter.data.fill_(float("nan"))
    np.testing.assert_array_equal(offer(obs), before)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="alpha"):
        _model(alpha=0.0)
    with pytest.raises(ValueError, match="follow_prob"):
        _model(follow_prob=1.5)
    with pytest.raises(ValueError, match="observation_space"):
        MultiAgentContractDQN("MlpPolicy", make_vec_env("ContractCoinGame-v0", env_kwargs={"obs_format": "flat"}))


def test_prioritized_replay_samples_by_the_principals_td_error():
    from sb3_contracts.contract_dqn_multiagent import MultiAgentPrioritizedReplayBuffer

    model = _model(replay_buffer_class=MultiAgentPrioritizedReplayBuffer, learning_starts=100).learn(400)
    buffer = model.replay_buffer
    priorities = buffer.priorities()
    # trained rows carry (|δ| + ε)^0.4 of their TD error, the others still the running maximum
    assert priorities.min() < priorities.max() and buffer.alpha == 0.4 and buffer.beta == 0.0
    data = buffer.sample(16)
    assert data.weights.shape == (16,) and data.leaf_nodes_indices.shape == (16,)
    assert th.allclose(data.weights, th.ones(16))  # β = 0: no importance correction (the paper's setting)


def test_prioritized_replay_trains_when_the_last_step_passes_total_timesteps():
    from sb3_contracts.contract_dqn_multiagent import MultiAgentPrioritizedReplayBuffer

    # 4 games a step: 402 steps end at 404, where SB3's progress remaining is below 0
    model = _model(replay_buffer_class=MultiAgentPrioritizedReplayBuffer, learning_starts=100).learn(402)
    assert model.num_timesteps == 404 and model.replay_buffer.beta == 0.0


def test_the_minimal_contract_form_pays_only_what_the_recommendation_needs():
    paper = _model(policy_kwargs={"net_arch": [32], "contract_form": "paper"})
    minimal = _model(policy_kwargs={"net_arch": [32], "contract_form": "minimal"})
    minimal.policy.load_state_dict(paper.policy.state_dict())
    obs = paper.env.reset()
    rows = th.as_tensor(obs.reshape(8, -1))
    with th.no_grad():
        paid_paper, paid_minimal = paper.policy.following_payments(rows), minimal.policy.following_payments(rows)
        q = paper.policy.agent_net(paper.policy.with_bits(rows, th.ones(8, 1)))
    favourite = q.argmax(dim=1)
    others = th.ones_like(paid_paper, dtype=th.bool)
    others[th.arange(8), favourite] = False
    assert th.allclose(paid_paper[others], paid_minimal[others])  # the two forms differ on the favourite only
    second = q.masked_fill(~others, -th.inf).max(dim=1).values
    expected = (second - q.max(dim=1).values + paper.policy.margin).clamp(min=0)
    assert th.allclose(paid_minimal[th.arange(8), favourite], expected)
    with pytest.raises(ValueError, match="contract_form must be one of"):
        _model(policy_kwargs={"net_arch": [32], "contract_form": "cheap"})


@pytest.mark.parametrize("preset", ["3x3", "7x7"])
def test_a_learner_built_from_the_registered_id_alone_uses_the_experiments_settings(preset):
    from sb3_contracts.experiments.coin.settings import PRESET_ENV_IDS, CoinSettings

    tuned = CoinSettings(preset).principal_hyperparams()
    model = MultiAgentContractDQN("MlpPolicy", PRESET_ENV_IDS[preset]["principal"], n_envs=2)
    assert model.lr_schedule(1.0) == pytest.approx(tuned.pop("learning_rate"))
    assert model.train_freq.frequency == tuned.pop("train_freq")
    policy_kwargs = tuned.pop("policy_kwargs")
    assert model.policy.contract_form == policy_kwargs.pop("contract_form")
    assert model.policy_kwargs == policy_kwargs
    for name, value in tuned.items():
        assert getattr(model, name) == value, name


def test_an_env_without_a_preset_gets_the_generic_defaults():
    env = ContractCoinGameVecEnv(2, seed=0)  # built directly: no registered id
    model = MultiAgentContractDQN("MlpPolicy", env)
    assert model.nudge == 0.05 and "features_extractor_class" not in model.policy_kwargs
