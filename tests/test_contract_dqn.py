"""ContractDQN: buffer and target shapes, learning on a small tree, save/load, evaluation, options."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_contracts import ContractDQN, PrincipalEnv, PrincipalVecEnv, solve_spe
from sb3_contracts.contract_dqn import ContractReplayBuffer, OneHotEmbedding
from sb3_contracts.contract_dqn.policies import stake_margin
from sb3_contracts.evaluation import ExactEvaluationCallback, evaluate_policy_table, evaluate_principal
from sb3_contracts.solvers import best_response

th.set_num_threads(1)
POLICY_KWARGS = dict(features_extractor_class=OneHotEmbedding, features_extractor_kwargs=dict(features_dim=64),
                     net_arch=[64])


def make_model(depth: int = 3, seed: int = 0, n_envs: int = 8, **kwargs) -> tuple[ContractDQN, object]:
    mdp = random_binary_tree(depth, seed)
    env = PrincipalVecEnv(mdp, n_envs=n_envs, seed=seed)
    args = dict(learning_rate=1e-3, batch_size=64, gamma=1.0, learning_starts=200, target_update_interval=200,
                buffer_size=20_000, exploration_fraction=0.7, policy_kwargs=POLICY_KWARGS, seed=seed)
    args.update(kwargs)
    return ContractDQN("MlpPolicy", env, **args), mdp


def test_buffer_and_target_shapes() -> None:
    model, mdp = make_model(n_envs=4)
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, ContractReplayBuffer)
    data = buffer.sample(32)
    assert data.observations.shape == (32, mdp.n_states)
    assert data.actions.shape == data.outcomes.shape == data.agent_rewards.shape == (32,)
    assert data.outcome_probs.shape == data.next_outcome_probs.shape == (32, 2, 2)
    assert th.all(data.actions >= 0) and th.all(data.actions < 2)
    assert th.allclose(data.outcome_probs.sum(-1), th.ones(32, 2))
    # r(s, a) is one of the MDP's two agent rewards of that state, never a payment.
    states = data.observations.argmax(1).numpy()
    agent_rewards = mdp.agent_reward[states]
    assert np.all(np.min(np.abs(agent_rewards - data.agent_rewards.numpy()[:, None]), axis=1) < 1e-5)
    principal_rewards = mdp.principal_reward[states, data.outcomes.numpy()]
    assert np.allclose(principal_rewards, data.principal_rewards.numpy(), atol=1e-5)
    model.train(gradient_steps=2, batch_size=32)
    logged = model.logger.name_to_value
    assert all(np.isfinite(logged[key]) for key in ("train/principal_loss", "train/agent_loss", "agent_model/td_error"))


def test_sb3s_setup_builds_the_buffer_from_the_envs_contract_space() -> None:
    model, mdp = make_model(depth=2, n_envs=2)
    assert model.action_space.shape == (mdp.n_outcomes,)  # the env's actions: contracts
    assert model.replay_buffer.action_space == gymnasium.spaces.Discrete(mdp.n_actions)  # the recommendations
    assert model.replay_buffer.n_outcomes == mdp.n_outcomes
    with pytest.raises(ValueError, match="contracts"):
        ContractReplayBuffer(10, model.observation_space, gymnasium.spaces.Discrete(2), n_actions=2)
    with pytest.raises(ValueError, match="n_actions"):
        ContractReplayBuffer(10, model.observation_space, model.action_space)


def test_predict_returns_contracts_and_recommendations() -> None:
    model, mdp = make_model()
    obs = np.eye(mdp.n_states, dtype=np.float32)[:5]
    contracts, _ = model.predict(obs, deterministic=True)
    assert contracts.shape == (5, 2) and np.all(contracts >= 0)
    assert np.all(contracts <= model.action_space.high)
    both = model.predict_with_recommendation(obs)
    assert np.array_equal(both[0], contracts)
    assert np.array_equal(model.predict_recommendation(obs), both[1])
    single, rec = model.predict_with_recommendation(obs[0])
    assert single.shape == (2,) and np.ndim(rec) == 0


@pytest.mark.parametrize("factorization", ["outcome", "action"])
def test_learns_spe_recommendations_on_small_tree(factorization: str) -> None:
    model, mdp = make_model(depth=3, seed=1, factorization=factorization, nudge=0.01)
    model.learn(12_000)
    result = evaluate_principal(model, mdp)
    assert result.accuracy >= 6 / 7
    assert result.utility_ratio > 0.8


def test_save_load_round_trip(tmp_path) -> None:
    model, mdp = make_model(nudge=0.02)
    model.learn(1_000)
    obs = np.eye(mdp.n_states, dtype=np.float32)
    before = model.predict_with_recommendation(obs)
    model.save(tmp_path / "principal")
    loaded = ContractDQN.load(tmp_path / "principal")
    after = loaded.predict_with_recommendation(obs)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert float(loaded.policy.margin) == pytest.approx(0.02)


def test_works_with_gymnasium_env_and_registered_id() -> None:
    env = PrincipalEnv(random_binary_tree(2, 0))
    model = ContractDQN("MlpPolicy", env, learning_starts=10, buffer_size=500, gamma=1.0, seed=0)
    model.learn(60)
    # SB3 would make a string id with render_mode="rgb_array", which PrincipalEnv does not offer.
    model = ContractDQN("MlpPolicy", gymnasium.make("ContractBinaryTree-v0", depth=3), learning_starts=10,
                        buffer_size=500, seed=0, gamma=1.0)
    assert model.n_actions == 2 and model.policy.outcome_net is not None


def test_evaluation_of_the_spe_itself() -> None:
    mdp = random_binary_tree(4, 3)
    spe = solve_spe(mdp)
    result = evaluate_policy_table(mdp, spe.contracts, spe.recommended_action, spe)
    assert result.utility_ratio == pytest.approx(1.0)
    assert result.accuracy == 1.0 and result.follow_rate == 1.0
    underpaid = evaluate_policy_table(mdp, spe.contracts * 0.9, spe.recommended_action, spe)
    assert underpaid.utility_ratio < 1.0


def test_exact_evaluation_callback_logs_history() -> None:
    model, mdp = make_model(n_envs=4)
    callback = ExactEvaluationCallback(mdp, eval_freq=200)
    model.learn(800, callback=callback)
    assert len(callback.history) >= 4
    assert all(0.0 <= e.accuracy <= 1.0 for _, e in callback.history)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(loss="l1"), "loss"),
        (dict(outcome_model="guess"), "outcome_model"),
        (dict(nudge=-1.0), "nudge"),
        (dict(agent_samples="some"), "agent_samples"),
        (dict(training_agent="obedient"), "training_agent"),
        (dict(factorization="state"), "factorization"),
        (dict(nudge_error_scale=-0.01), "nudge_error_scale"),
        (dict(nudge_error_scale=0.01, factorization="action"), "nudge_error_scale"),
        (dict(outcome_probs=np.ones((3, 2))), "outcome_probs"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


class _FollowRecord(BaseCallback):
    """Records, per training step, whether the env's agent took each recommendation."""

    def __init__(self) -> None:
        super().__init__()
        self.followed: list[bool] = []

    def _on_step(self) -> bool:
        pairs = zip(self.locals["infos"], self.locals["buffer_actions"], strict=True)
        self.followed += [info["true_agent_action"] == recommended for info, recommended in pairs]
        return True


@pytest.mark.parametrize("vectorized", ["batched", "dummy"])
def test_training_agent_follow_takes_every_recommendation(vectorized: str) -> None:
    mdp = random_binary_tree(3, 0)
    # The plain minimal contracts with no nudge and an untrained agent model: the exact agent often declines them.
    args = dict(learning_starts=50, gamma=1.0, nudge=0.0, exploration_margin=0.0, policy_kwargs=POLICY_KWARGS, seed=0)
    followed = {}
    for training_agent in (None, "follow"):
        env = (PrincipalVecEnv(mdp, n_envs=4, seed=0) if vectorized == "batched"
               else DummyVecEnv([lambda: PrincipalEnv(mdp) for _ in range(3)]))
        model = ContractDQN("MlpPolicy", env, training_agent=training_agent, **args)
        record = _FollowRecord()
        model.learn(300, callback=record)
        followed[training_agent] = record.followed
        if training_agent == "follow":
            buffer = model.replay_buffer
            assert buffer.trusted[: buffer.pos].all()  # every action label is known
            # learn() puts the env's own agent (the exact best responder) back
            own = env.agent if vectorized == "batched" else env.envs[0].unwrapped.agent
            assert own is (env._own_agent if vectorized == "batched" else env.envs[0].unwrapped._own_agent)
    assert all(followed["follow"]) and not all(followed[None])


def test_training_agent_best_response_answers_the_learned_policy() -> None:
    model, mdp = make_model(n_envs=4, training_agent="best_response", target_update_interval=100)
    env = model.get_env()
    seen = []
    model.learn(400, callback=lambda local_vars, _: seen.append(env.agent) or True)
    assert env.agent is env._own_agent and env._responder.act in seen  # the consistent agent played, then left
    # its continuation is the learned policy's, not the equilibrium's
    env.respond_to_principal(model.predict_with_recommendation)
    contracts, recommended = model.predict_with_recommendation(np.eye(mdp.n_states, dtype=np.float32))
    played = best_response(mdp, np.asarray(contracts, dtype=np.float64), recommended)
    live = ~mdp.terminal
    assert np.allclose(env._responder.agent_q[live], played.agent_q[live], atol=1e-6)
    assert not np.allclose(played.agent_q[live], solve_spe(mdp).agent_q[live], atol=1e-3)


def test_training_agent_follow_needs_the_envs_in_this_process() -> None:
    mdp = random_binary_tree(2, 0)
    env = SubprocVecEnv([lambda: PrincipalEnv(mdp) for _ in range(2)], start_method="fork")
    try:
        model = ContractDQN("MlpPolicy", env, training_agent="follow", learning_starts=10, gamma=1.0, seed=0)
        with pytest.raises(ValueError, match="training_agent"):
            model.learn(20)
    finally:
        env.close()


def test_stake_margin_grows_with_the_stake_and_vanishes_below_its_threshold() -> None:
    sigma = 0.01
    stakes = th.tensor([0.0, sigma * float(np.sqrt(2 * np.pi)), 0.1, 1.0, 10.0])
    margins = stake_margin(stakes, sigma)
    assert margins[0] == 0 and margins[1] == 0
    assert th.all(margins[2:].diff() > 0)
    # the margin m minimises m + P(N(0, σ²) > m) · stake: the derivative 1 - stake · φ(m/σ)/σ vanishes there
    density = th.exp(-0.5 * (margins[2:] / sigma) ** 2) / (sigma * float(np.sqrt(2 * np.pi)))
    assert th.allclose(stakes[2:] * density, th.ones(3), atol=1e-4)


def test_stake_margins_raise_the_nudge_where_a_flip_costs_the_principal_most() -> None:
    model, mdp = make_model(depth=3, nudge=0.001, nudge_error_scale=0.01)
    model.learn(1_000)
    policy, obs = model.policy, th.as_tensor(np.eye(mdp.n_states), dtype=th.float32)
    with th.no_grad():
        probs = policy.outcome_probs(obs)
        agent_q, principal_out = policy.agent_q(policy.agent_net(obs), probs), policy.principal_net(obs)
        plain, _ = policy.minimal_contracts(agent_q, probs)
        priced, _ = policy.priced_contracts(agent_q, probs, principal_out)
        stake = policy.principal_stake(principal_out, probs, plain)
        # the nudge each contract pays: the target's full Q over the other action's
        full = agent_q.unsqueeze(1) + th.einsum("bko,bto->btk", probs, priced)
        paid = full[:, [0, 1], [0, 1]] - full[:, [0, 1], [1, 0]]
    decision = ~th.as_tensor(mdp.terminal)
    expected = th.maximum(stake_margin(stake, 0.01), th.tensor(0.001))
    # where a payment is needed the margin is exactly the stake's (with b = 0 the agent may prefer a* by more)
    needs_pay = (priced.sum(-1) > 0) & decision.unsqueeze(1)
    assert needs_pay.any() and (stake[decision] > 0.05).any()
    assert th.allclose(paid[needs_pay], expected[needs_pay], atol=1e-5)
    assert th.all(paid[decision.unsqueeze(1).expand_as(paid)] >= 0.001 - 1e-6)
