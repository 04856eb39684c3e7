"""ContractDQN on an observed-action game (contracts pay on the action) and with a scripted embedded agent."""

from __future__ import annotations

import numpy as np
import torch as th
from sb3_contracts.envs.mdp import PrincipalAgentMDP, transitions_from_next_states

from sb3_contracts import ContractDQN, PrincipalVecEnv
from sb3_contracts.contract_dqn import OneHotEmbedding
from sb3_contracts.evaluation import evaluate_principal

th.set_num_threads(1)
POLICY_KWARGS = dict(features_extractor_class=OneHotEmbedding, features_extractor_kwargs=dict(features_dim=64),
                     net_arch=[64])


def observed_action_tree(seed: int, n_actions: int = 3) -> PrincipalAgentMDP:
    """A two-level tree in which the outcome is the action itself: action ``a`` leads to child ``a``."""
    rng = np.random.default_rng(seed)
    n_decision = 1 + n_actions
    n_states = n_decision + n_actions * n_actions
    next_states = np.full((n_states, n_actions), -1)
    next_states[0] = 1 + np.arange(n_actions)
    for parent in range(1, n_decision):
        next_states[parent] = n_decision + (parent - 1) * n_actions + np.arange(n_actions)
    agent_reward = np.zeros((n_states, n_actions))
    agent_reward[:n_decision] = -rng.uniform(0, 1, (n_decision, n_actions))
    principal_reward = np.zeros((n_states, n_actions))
    principal_reward[:n_decision] = rng.uniform(0, 2, (n_decision, n_actions))
    return PrincipalAgentMDP(np.broadcast_to(np.eye(n_actions), (n_states, n_actions, n_actions)).copy(),
                             agent_reward, principal_reward, transitions_from_next_states(next_states, n_states))


def _model(env: PrincipalVecEnv, **kwargs) -> ContractDQN:
    return ContractDQN("MlpPolicy", env, learning_rate=1e-3, batch_size=64, gamma=1.0, learning_starts=200,
                       target_update_interval=100, buffer_size=20_000, exploration_fraction=0.6, nudge=0.01,
                       policy_kwargs=POLICY_KWARGS, seed=0, **kwargs)


def test_learns_the_spe_with_observed_actions() -> None:
    mdp = observed_action_tree(seed=3)
    assert mdp.observed_action
    model = _model(PrincipalVecEnv(mdp, n_envs=8, seed=0, start_states="uniform"))
    assert model.observed_action
    model.learn(6_000)
    result = evaluate_principal(model, mdp)
    assert result.accuracy == 1.0
    assert result.utility_ratio > 0.95
    # Observed action: a contract pays on the recommended action only.
    contracts, recommended = model.predict_with_recommendation(np.eye(mdp.n_states, dtype=np.float32)[:4])
    off_target = np.ones_like(contracts, dtype=bool)
    off_target[np.arange(4), recommended] = False
    assert np.all(contracts[off_target] == 0)


def test_trains_against_a_scripted_agent_within_bounds() -> None:
    """A scripted agent (best-paid action if paid at least 0.5, else action 0) is not rational: ContractDQN
    still trains against it, offering finite contracts within the action space."""
    mdp = observed_action_tree(seed=4)

    def scripted(states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
        return np.where(contracts.max(axis=1) >= 0.5, contracts.argmax(axis=1), 0)

    class Scripted:
        act = staticmethod(scripted)

    env = PrincipalVecEnv(mdp, n_envs=8, seed=0, agent=Scripted(), b_max=2.0, start_states="uniform")
    model = _model(env)
    model.learn(3_000)
    contracts, _ = model.predict(np.eye(mdp.n_states, dtype=np.float32), deterministic=True)
    assert np.all(np.isfinite(contracts)) and np.all(contracts >= 0) and np.all(contracts <= 2.0)
