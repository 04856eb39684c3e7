"""The learners' options are checked at creation, divergence stops training, and NaN never becomes a contract."""

import numpy as np
import pytest
import torch as th
from sb3_contracts.envs import random_binary_tree

from sb3_contracts import ContractDQN, MultiAgentContractDQN, PrincipalVecEnv

th.set_num_threads(1)


def _tree(**kwargs):
    return ContractDQN("MlpPolicy", PrincipalVecEnv(random_binary_tree(3, 0), n_envs=2), learning_starts=10,
                       policy_kwargs={"net_arch": [16]}, **kwargs)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"gamma": float("nan")}, ValueError, "gamma must be finite"),
    ({"gamma": -1.0}, ValueError, r"gamma must be in \[0.0, 1.0\]"),
    ({"gamma": 2}, ValueError, "gamma must be in"),
    ({"gamma": "0.9"}, TypeError, "gamma must be a real number"),
    ({"tau": float("nan")}, ValueError, "tau must be finite"),
    ({"tau": 2.0}, ValueError, "tau must be in"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"batch_size": True}, TypeError, "batch_size must be an integer"),
    ({"batch_size": 32.5}, TypeError, "batch_size must be an integer"),
    ({"exploration_fraction": 1.5}, ValueError, "exploration_fraction"),
    ({"exploration_initial_eps": -0.1}, ValueError, "exploration_initial_eps"),
    ({"exploration_final_eps": 2.0}, ValueError, "exploration_final_eps"),
    ({"max_grad_norm": -1.0}, ValueError, "max_grad_norm must be > 0"),
    ({"max_grad_norm": float("nan")}, ValueError, "max_grad_norm must be finite"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
    ({"learning_rate_final": float("inf")}, ValueError, "learning_rate_final must be finite"),
    ({"nudge": -0.1}, ValueError, "nudge must be >= 0"),
    ({"nudge": 1j}, TypeError, "nudge must be a real number"),
    ({"loss": "l1"}, ValueError, "loss must be one of"),
    ({"target_update_interval": 0}, ValueError, "target_update_interval must be >= 1"),
    ({"gradient_steps": 0}, ValueError, "gradient_steps must be positive or -1"),
    ({"observed_action": True}, ValueError, "observed_action=True, but the env's MDP hides the agent's actions"),
    ({"observed_action": 1}, TypeError, "observed_action must be a bool or None"),
    ({"outcome_probs": np.full((2, 2), 0.7)}, ValueError, "outcome_probs rows must be probability distributions"),
    ({"outcome_probs": np.array([[1.5, -0.5], [0.5, 0.5]])}, ValueError, "probability distributions"),
    ({"train_freq": 0}, ValueError, "train_freq must be >= 1, got 0"),  # SB3 asserts on it mid-learn
    ({"train_freq": (0, "episode")}, ValueError, "train_freq must be >= 1, got 0"),
    ({"train_freq": (1, "steps")}, ValueError, "train_freq's unit must be one of"),
    ({"train_freq": (1, "step", 2)}, ValueError, "train_freq must be an integer or a tuple"),
])
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        _tree(**kwargs)


def test_learn_needs_a_positive_budget_and_a_negative_nudge_schedule_is_named():
    with pytest.raises(ValueError, match="total_timesteps must be >= 1"):
        _tree().learn(-1)
    with pytest.raises(ValueError, match="nudge: the schedule gave -0.5"):
        _tree(nudge=lambda progress: -0.5).learn(20)


def test_a_diverged_learner_stops_and_names_the_network():
    model = _tree()
    model.learn(40)
    with th.no_grad():
        for parameter in model.policy.agent_net.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite values"):
        model.predict(np.eye(15, dtype=np.float32), deterministic=True)
    multi = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, learning_starts=20, batch_size=8,
                                  policy_kwargs={"net_arch": [16]}, learning_rate=1e30, max_grad_norm=None, seed=0)
    # whichever comes first: a NaN loss (the network named) or NaN values when offering the next contracts
    with pytest.raises(FloatingPointError, match="diverged at update .* loss of the|non-finite values"):
        multi.learn(2_000)


def test_predict_never_turns_nan_weights_into_contracts():
    model = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, policy_kwargs={"net_arch": [16]})
    obs = model.env.reset()
    with th.no_grad():
        for parameter in model.policy.principal_net.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="no contract is offered"):
        model.predict(obs, deterministic=True)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: MultiAgentContractDQN("MlpPolicy", "ContractBinaryTree-v0"),
     r"MultiAgentContractDQN needs a many-agent contract env .*got ContractBinaryTree-v0 with action space "
     r"Box\(2,\): use ContractDQN"),
    (lambda: ContractDQN("MlpPolicy", "ContractCoinGame-v0"),
     r"ContractDQN needs a one-agent contract env .*got ContractCoinGame-v0 with action space Box\(2, 4\): use "
     r"MultiAgentContractDQN"),
    (lambda: ContractDQN("MlpPolicy", "ContractBinaryTreeAgent-v0"),
     r"ContractDQN needs .*got ContractBinaryTreeAgent-v0 with action space Discrete\(2\): .*SB3's own algorithms"),
])
def test_a_learner_given_the_other_kind_of_env_names_both(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_contract_dqn_without_an_mdp_asks_for_n_actions():
    from sb3_contracts.game import PrincipalEnv

    class NoMDP(PrincipalEnv):
        mdp = None

    with pytest.raises(ValueError, match="ContractDQN needs the agent's number of actions: pass n_actions="):
        ContractDQN("MlpPolicy", NoMDP(random_binary_tree(2, 0)))


@pytest.mark.parametrize("learner", ["ContractDQN", "MultiAgentContractDQN"])
def test_sb3s_dqn_load_of_a_contract_model_names_the_loader(learner, tmp_path):
    from stable_baselines3 import DQN

    model = _tree() if learner == "ContractDQN" else MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2)
    model.save(tmp_path / "model.zip")
    with pytest.raises(TypeError, match=f"this is a {learner} model.*load it with sb3_contracts.{learner}.load"):
        DQN.load(tmp_path / "model.zip")


@pytest.mark.parametrize("threads", [1, 2, None])
def test_learn_runs_on_torch_threads_and_restores_torch_s_own(threads):
    from stable_baselines3.common.callbacks import BaseCallback

    class Threads(BaseCallback):
        def _on_step(self) -> bool:
            self.seen = th.get_num_threads()
            return True

    before = th.get_num_threads()
    th.set_num_threads(3)
    try:
        callback = Threads()
        MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, learning_starts=10, batch_size=8,
                              policy_kwargs={"net_arch": [16]}, torch_threads=threads, seed=0).learn(20, callback)
        assert callback.seen == (3 if threads is None else threads)
        assert th.get_num_threads() == 3
    finally:
        th.set_num_threads(before)
    with pytest.raises(ValueError, match="torch_threads"):
        MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, torch_threads=0)


def test_predict_refuses_an_observation_that_is_no_one_hot_state_and_the_outcome_table_is_checked():
    model = _tree()
    states = np.eye(model.observation_space.shape[0], dtype=np.float32)
    contracts, _ = model.predict(states[:3], deterministic=True)
    assert contracts.shape == (3, 2)
    for bad in (np.zeros_like(states[0]), np.full_like(states[0], 0.5), 2 * states[1], states[:2].sum(axis=0)):
        with pytest.raises(ValueError, match="observation must be a one-hot state encoding"):
            model.predict(bad, deterministic=True)
    if hasattr(model.policy.outcome_net, "table"):  # hidden actions with the known outcome model
        for table in (np.full((2, 2), np.nan), np.array([[0.5, 0.6], [0.5, 0.5]]), -np.eye(2)):
            with pytest.raises(ValueError, match="table"):
                model.policy.set_outcome_table(table)
