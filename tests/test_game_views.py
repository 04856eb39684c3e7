import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from sb3_contracts.envs import random_binary_tree, two_state_example
from stable_baselines3 import DQN
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_contracts  # noqa: F401  (registers the env ids)
from sb3_contracts.game import AgentEnv, PrincipalEnv
from sb3_contracts.solvers import solve_spe


@pytest.mark.parametrize("env_id", ["ContractBinaryTree-v0", "ContractBinaryTreeAgent-v0"])
def test_registered_envs_pass_checkers(env_id):
    env = gym.make(env_id, depth=3, seed=1)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_unknown_kwarg_raises():
    with pytest.raises(TypeError, match="unexpected keyword argument 'speed'"):
        gym.make("ContractBinaryTree-v0", depth=3, speed=2)


def _play_spe(env, solution, episodes, seed=0):
    returns = []
    env.reset(seed=seed)
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            contract = solution.contracts[env.unwrapped.state].astype(np.float32)
            _, reward, terminated, truncated, info = env.step(contract)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return np.array(returns), info


def test_spe_contracts_earn_the_spe_value_in_the_principal_env():
    mdp = random_binary_tree(4, seed=0)
    env = PrincipalEnv(mdp)
    solution = solve_spe(mdp)
    returns, info = _play_spe(env, solution, episodes=3000)
    standard_error = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - solution.principal_value[0]) < 4 * standard_error + 1e-9
    assert set(info) >= {"outcome", "payment", "agent_reward", "true_agent_action", "outcome_probs"}
    assert "agent_action" not in info  # hidden action


def test_observed_action_info_and_two_state_values():
    mdp = two_state_example(horizon=1)
    env = PrincipalEnv(mdp)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert terminated and info["true_agent_action"] == 0
    assert reward == pytest.approx(14 / 9 - 1.0 if info["outcome"] == 0 else 0.0)
    assert info["agent_reward"] == pytest.approx(-0.8 + info["payment"])
    assert "agent_action" not in info
    # Without payment the agent does not exert effort.
    env.reset(seed=0)
    assert env.step(np.zeros(2, dtype=np.float32))[4]["true_agent_action"] == 1


@pytest.mark.parametrize(
    ("contract", "match"),
    [
        (np.array([-0.1, 0.0]), "non-negative"),
        (np.array([np.nan, 0.0]), "finite"),
        (np.array([0.1, 0.1, 0.1]), "shape"),
        (np.array([1e6, 0.0]), "b_max"),
    ],
)
def test_invalid_contracts_raise(contract, match):
    env = PrincipalEnv(random_binary_tree(2, seed=0))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(contract)


def test_agent_env_follows_spe_principal():
    mdp = random_binary_tree(4, seed=0)
    solution = solve_spe(mdp)
    env = AgentEnv(mdp)
    observation, _ = env.reset(seed=0)
    returns = []
    for _ in range(2000):
        total, done = 0.0, False
        while not done:
            state = env.state
            np.testing.assert_allclose(observation[-2:], solution.contracts[state], rtol=1e-6)
            observation, reward, terminated, truncated, _ = env.step(solution.recommended_action[state])
            total += reward
            done = terminated or truncated
        returns.append(total)
        observation, _ = env.reset()
    standard_error = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - solution.agent_value[0]) < 4 * standard_error + 1e-9
    with pytest.raises(ValueError, match="action"):
        env.step(7)


def test_callable_and_sb3_agents_can_be_embedded():
    mdp = random_binary_tree(2, seed=0)
    always_effort = PrincipalEnv(mdp, agent=lambda state, contract: 1, b_max=5.0)
    always_effort.reset(seed=0)
    assert always_effort.step(np.zeros(2, dtype=np.float32))[4]["true_agent_action"] == 1

    agent_env = AgentEnv(mdp, b_max=5.0)
    model = DQN("MlpPolicy", agent_env, learning_starts=10, buffer_size=100, seed=0)
    model.learn(50)
    principal_env = PrincipalEnv(mdp, agent=model, b_max=5.0)
    principal_env.reset(seed=0)
    _, _, _, _, info = principal_env.step(np.zeros(2, dtype=np.float32))
    assert info["true_agent_action"] in (0, 1)


def test_agent_env_principal_options():
    mdp = random_binary_tree(2, seed=0)
    table = np.full((mdp.n_states, 2), 0.5)
    env = AgentEnv(mdp, principal=table, b_max=1.0)
    observation, _ = env.reset(seed=0)
    np.testing.assert_allclose(observation[-2:], 0.5)
    with pytest.raises(ValueError, match="shape"):
        AgentEnv(mdp, principal=np.zeros((2, 2)), b_max=1.0)
    with pytest.raises(ValueError, match="b_max"):
        AgentEnv(mdp, principal=lambda state: np.array([2.0, 0.0]), b_max=1.0).reset()
    with pytest.raises(ValueError, match="principal"):
        AgentEnv(mdp, principal="random")
    with pytest.raises(ValueError, match="agent"):
        PrincipalEnv(mdp, agent="random")


def test_large_mdp_needs_features():
    with pytest.raises(ValueError, match="state_features"):
        PrincipalEnv(random_binary_tree(16, seed=0), b_max=5.0, agent=lambda s, c: 0)


def test_cyclic_mdp_truncates():
    env = PrincipalEnv(two_state_example(gamma=0.9), max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.array([1.0, 0.0], dtype=np.float32))[2:4] for _ in range(5)]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])


def test_exploring_starts_cover_the_non_terminal_states():
    mdp = random_binary_tree(3, seed=0)
    env = PrincipalEnv(mdp, start_states="uniform")
    starts = {env.reset(seed=seed)[1]["state"] for seed in range(200)}
    assert starts == set(np.flatnonzero(~mdp.terminal).tolist())
    assert {PrincipalEnv(mdp).reset(seed=seed)[1]["state"] for seed in range(20)} == {0}
    with pytest.raises(ValueError, match="start_states"):
        PrincipalEnv(mdp, start_states="random")


def test_vec_env_exploring_starts_and_restarts():
    from sb3_contracts.game import PrincipalVecEnv

    mdp = random_binary_tree(3, seed=0)
    env = PrincipalVecEnv(mdp, n_envs=64, seed=0, start_states="uniform")
    env.reset()
    seen = set(env.states.tolist())
    for _ in range(10):
        _, _, dones, infos = env.step(np.zeros((64, 2), dtype=np.float32))
        for i in np.flatnonzero(dones):
            # The next episode's first state is the one the reset info names.
            assert env.reset_infos[i]["state"] == env.states[i]
        seen |= set(env.states.tolist())
    assert seen == set(np.flatnonzero(~mdp.terminal).tolist())
    with pytest.raises(ValueError, match="contracts"):
        env.step(-np.ones((64, 2), dtype=np.float32))


def test_sb3_can_build_the_env_from_its_id():
    model = DQN("MlpPolicy", "ContractBinaryTreeAgent-v0", learning_starts=10, buffer_size=100)
    assert model.env.observation_space.shape[0] == 2**11 - 1 + 2
    with pytest.raises(TypeError, match="render_mode"):
        PrincipalEnv(random_binary_tree(2, seed=0), render_mode="rgb_array")


@pytest.mark.parametrize(("env_id", "kwargs", "text"), [
    ("ContractBinaryTree-v0", {"depth": 3}, "step 0: state 0"),
    ("ContractBinaryTreeAgent-v0", {"depth": 3}, "step 0: state 0"),
    ("ContractCoinGame-v0", {}, "step 0/20"),
    ("ContractCoinGameAgents-v0", {}, "step 0/20"),
])
def test_human_rendering_prints_what_ansi_returns(env_id, kwargs, text, capsys):
    env = gym.make(env_id, render_mode="human", **kwargs)
    env.reset(seed=0)
    assert env.render() is None
    printed = capsys.readouterr().out
    env.unwrapped.render_mode = "ansi"
    assert printed == env.render() + "\n" and text in printed


@pytest.mark.parametrize(("mdp", "start_states", "max_steps"), [
    (random_binary_tree(4, seed=3), "uniform", None),
    (two_state_example(gamma=0.9), "initial", 7),  # cyclic: episodes end by truncation
])
def test_single_and_batched_views_play_identical_trajectories(mdp, start_states, max_steps):
    from sb3_contracts.game import PrincipalVecEnv

    contracts = np.random.default_rng(0).uniform(0.0, 1.0, (300, mdp.n_outcomes)).astype(np.float32)
    single = PrincipalEnv(mdp, b_max=1.0, start_states=start_states, max_episode_steps=max_steps)
    batch = PrincipalVecEnv(mdp, n_envs=1, b_max=1.0, start_states=start_states, max_episode_steps=max_steps,
                            seed=11)
    observation, info = single.reset(seed=11)
    np.testing.assert_array_equal(batch.reset()[0], observation)
    assert batch.reset_infos[0]["state"] == info["state"]
    episodes = 0
    for contract in contracts:
        observation, reward, terminated, truncated, info = single.step(contract)
        batch_obs, batch_reward, dones, batch_infos = batch.step(contract[None])
        assert batch_reward[0] == np.float32(reward)
        assert dones[0] == (terminated or truncated)
        for key in ("state", "outcome", "payment", "agent_reward", "true_agent_action"):
            assert batch_infos[0][key] == info[key], key
        if terminated or truncated:
            episodes += 1
            np.testing.assert_array_equal(batch_infos[0]["terminal_observation"], observation)
            assert batch_infos[0]["TimeLimit.truncated"] == truncated
            observation, info = single.reset()
            assert batch.reset_infos[0]["state"] == info["state"]
        np.testing.assert_array_equal(batch_obs[0], observation)
    assert episodes >= 20


def test_stepping_an_ended_episode_asks_for_a_reset():
    env = PrincipalEnv(two_state_example(horizon=1))
    env.reset(seed=0)
    assert env.step(np.zeros(2, dtype=np.float32))[2]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, dtype=np.float32))


def test_a_share_of_starts_at_the_root_mixes_with_exploring_starts():
    from sb3_contracts.game import PrincipalVecEnv
    from sb3_contracts.game.batch import parse_start_states

    mdp = random_binary_tree(3, seed=0)
    env = PrincipalVecEnv(mdp, n_envs=4000, seed=0, start_states=0.5)
    env.reset()
    counts = np.bincount(env.states, minlength=mdp.n_states)
    # half the episodes start at the root; the other half uniformly over the 7 decision states (the root included)
    assert counts[0] / 4000 == pytest.approx(0.5 + 0.5 / 7, abs=0.03)
    assert np.all(counts[1:7] > 0) and counts[7:].sum() == 0
    assert parse_start_states("0.25") == 0.25 and parse_start_states("uniform") == "uniform"
    for bad in (1.5, -0.1, True, "random"):
        with pytest.raises(ValueError, match="start_states"):
            PrincipalVecEnv(mdp, n_envs=2, start_states=bad)
    with pytest.raises(ValueError, match="start_states"):
        parse_start_states("half")


def test_vec_env_methods_run_once_for_the_whole_batch():
    from sb3_contracts.game import PrincipalVecEnv

    mdp = random_binary_tree(3, seed=0)
    spe = solve_spe(mdp)
    env = PrincipalVecEnv(mdp, n_envs=8, seed=0)
    calls = []

    def spe_policy(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(observations.shape)
        return spe.contracts, spe.recommended_action

    assert len(env.env_method("respond_to_principal", spe_policy)) == 8 and calls == [(mdp.n_states, mdp.n_states)]
    # the agent best-responding to the equilibrium's own contracts has the equilibrium's continuation
    assert np.allclose(env._responder.agent_q[~mdp.terminal], spe.agent_q[~mdp.terminal])
    env.restore_agent()
    assert env.agent is env._own_agent
