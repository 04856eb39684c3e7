"""Coordinator (deep meta-algorithm), TensorBoard metrics, outcome classifier and the direct baseline."""

from __future__ import annotations

import os

import numpy as np
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree
from stable_baselines3 import DQN

from sb3_contracts import ContractDQN, PrincipalVecEnv, solve_spe
from sb3_contracts.contract_dqn import OneHotEmbedding
from sb3_contracts.coordinator import Coordinator, EmbeddedAgent, agent_env, principal_env
from sb3_contracts.evaluation import ExactEvaluationCallback, evaluate_principal
from sb3_contracts.experiments.direct_baseline import make_direct_baseline

th.set_num_threads(1)
SMALL = dict(features_extractor_class=OneHotEmbedding, features_extractor_kwargs=dict(features_dim=32), net_arch=[32])


def test_coordinator_alternates_and_keeps_one_tensorboard_run_per_learner(tmp_path) -> None:
    mdp = random_binary_tree(2, 0)
    b_max = 2.0
    embedded = EmbeddedAgent(mdp)
    principal = ContractDQN("MlpPolicy", principal_env(mdp, embedded, b_max, n_envs=4, seed=0), learning_starts=20,
                            buffer_size=2_000, gamma=1.0, policy_kwargs=SMALL, tensorboard_log=str(tmp_path), seed=0)
    agent = DQN("MlpPolicy", agent_env(mdp, principal, b_max), learning_starts=20, buffer_size=2_000, gamma=1.0,
                tensorboard_log=str(tmp_path), seed=0)
    embedded.model = agent
    coordinator = Coordinator(principal, agent, mdp, principal_steps=200, agent_steps=100)
    history = coordinator.run(3)
    assert [log.principal_timesteps for log in history] == [200, 400, 600]
    assert [log.agent_timesteps for log in history] == [100, 200, 300]
    assert all(log.evaluation is not None and np.isfinite(log.evaluation.utility_ratio) for log in history)
    assert sorted(os.listdir(tmp_path)) == ["agent_0", "principal_0"]


def test_tensorboard_metrics_are_recorded(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mdp = random_binary_tree(3, 0)
    model = ContractDQN("MlpPolicy", PrincipalVecEnv(mdp, n_envs=4, seed=0), learning_starts=100, gamma=1.0,
                        buffer_size=5_000, policy_kwargs=SMALL, nudge_td_factor=2.0, tensorboard_log=str(tmp_path),
                        seed=0)
    model.learn(1_200, callback=ExactEvaluationCallback(mdp, eval_freq=400), log_interval=10, tb_log_name="run")
    events = EventAccumulator(str(tmp_path / "run_1"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"principal/episode_utility", "principal/mean_payment", "principal/payment_share",
                "principal/follow_rate", "agent_model/td_error", "agent_model/margin", "exact/utility_ratio",
                "exact/accuracy"}
    assert expected <= tags
    margins = [event.value for event in events.Scalars("agent_model/margin")]
    assert max(margins) > 0  # tied to the TD error, the nudge is positive once learning starts


def test_outcome_classifier_recovers_outcome_model() -> None:
    # With hidden actions the principal never sees which action is which: the classifier can only
    # recover 𝒪 up to a relabelling of the actions (the labels are "the action my contract induces").
    mdp = random_binary_tree(3, 2)
    model = ContractDQN("MlpPolicy", PrincipalVecEnv(mdp, n_envs=8, seed=0), outcome_model="learned",
                        learning_starts=200, gamma=1.0, buffer_size=20_000, batch_size=128, policy_kwargs=SMALL,
                        exploration_fraction=1.0, exploration_final_eps=0.5, seed=0)
    model.learn(8_000)
    decision = np.flatnonzero(~mdp.terminal)
    observations = th.as_tensor(np.eye(mdp.n_states, dtype=np.float32)[decision])
    with th.no_grad():
        learned = model.policy.outcome_probs(observations).numpy()
    truth = mdp.outcome_probs[decision]
    error = np.minimum(np.abs(learned - truth).max(axis=(1, 2)), np.abs(learned[:, ::-1] - truth).max(axis=(1, 2)))
    assert error.max() < 0.1


def test_direct_baseline_evaluates_without_recommendation() -> None:
    mdp = random_binary_tree(3, 0)
    spe = solve_spe(mdp)
    model = make_direct_baseline(PrincipalVecEnv(mdp, n_envs=4, seed=0), "ppo", seed=0, n_steps=64, batch_size=64)
    model.learn(256)
    result = evaluate_principal(model, mdp, spe)
    assert result.recommended is None and np.isnan(result.accuracy)
    assert result.contracts.shape == (mdp.n_states, 2)
