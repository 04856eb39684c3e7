"""Exact tools of the second system: minimal transfers, best responses, the identity of the notes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contracts.envs.externality import ExternalityMDP

from sb3_contracts.incentives import (
    action_gaps,
    agent_regret,
    expected_return,
    minimal_transfers,
    policy_values,
    transfer_best_response,
    welfare,
    welfare_optimum,
)


def random_model(seed: int, horizon: int = 3, n_states: int = 4, n_actions: int = 3) -> ExternalityMDP:
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.full(n_states, 0.5), size=(horizon, n_states, n_actions))
    agent = rng.normal(size=(horizon, n_states, n_actions))
    principal = rng.normal(size=(horizon, n_states, n_actions))
    return ExternalityMDP(transitions, agent, principal, rng.dirichlet(np.ones(n_states)))


models = st.builds(random_model, st.integers(0, 10**6), st.integers(1, 4), st.integers(1, 5), st.integers(1, 4))


def _random_policy(model: ExternalityMDP, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, model.n_actions, size=model.shape[:2])


@settings(max_examples=60, deadline=None)
@given(models, st.integers(0, 1000))
def test_identity_payment_equals_agent_value_loss_and_net_equals_welfare_minus_agent_optimum(model, seed):
    target = _random_policy(model, seed)
    tau = minimal_transfers(model.transitions, model.agent_reward, target)
    agent_optimum = transfer_best_response(model, np.zeros(model.shape)).value
    agent_on_target = expected_return(model, model.agent_reward, target)
    payment = expected_return(model, tau, target)
    np.testing.assert_allclose(payment, agent_optimum - agent_on_target, atol=1e-9)
    net = expected_return(model, model.principal_reward - tau, target)
    np.testing.assert_allclose(net, welfare(model, target) - agent_optimum, atol=1e-9)
    # The transfers leave the agent its transfer-free optimum, reached by the target.
    response = transfer_best_response(model, tau)
    np.testing.assert_allclose(response.value, agent_optimum, atol=1e-9)
    np.testing.assert_allclose(expected_return(model, model.agent_reward + tau, target), agent_optimum, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(models, st.integers(0, 1000), st.floats(0.01, 1.0))
def test_margin_makes_the_target_strictly_optimal_by_the_margin(model, seed, margin):
    target = _random_policy(model, seed)
    tau = minimal_transfers(model.transitions, model.agent_reward, target, margin=margin)
    assert np.all(tau >= 0)
    off_target = np.ones(model.shape, bool)
    np.put_along_axis(off_target, target[..., None], False, axis=-1)
    assert np.all(tau[off_target] == 0)
    q = transfer_best_response(model, tau).q
    q_target = np.take_along_axis(q, target[..., None], axis=-1)[..., 0]
    q_other = np.where(off_target, q, -np.inf).max(axis=-1)
    assert np.all(q_target >= q_other + margin - 1e-9)
    # Cheapest: paying every target a little less breaks the margin somewhere (where anything is paid).
    if tau.max() > 1e-6:
        q = transfer_best_response(model, np.maximum(tau - 1e-6, 0)).q
        q_target = np.take_along_axis(q, target[..., None], axis=-1)[..., 0]
        q_other = np.where(off_target, q, -np.inf).max(axis=-1)
        assert np.any(q_target < q_other + margin - 1e-9)


@settings(max_examples=40, deadline=None)
@given(models, st.integers(0, 1000))
def test_minimal_transfers_are_the_transfer_free_gaps(model, seed):
    target = _random_policy(model, seed)
    tau = minimal_transfers(model.transitions, model.agent_reward, target)
    gaps = action_gaps(model.transitions, model.agent_reward)
    np.testing.assert_allclose(np.take_along_axis(tau, target[..., None], -1),
                               np.take_along_axis(gaps, target[..., None], -1), atol=1e-9)


def test_welfare_optimum_beats_every_deterministic_policy_on_a_small_model():
    model = random_model(3, horizon=2, n_states=2, n_actions=2)
    best = welfare_optimum(model)
    policies = np.array(np.meshgrid(*[[0, 1]] * 4, indexing="ij")).reshape(4, -1).T.reshape(-1, 2, 2)
    values = welfare(model, policies)
    np.testing.assert_allclose(best.value, values.max(), atol=1e-12)
    np.testing.assert_allclose(welfare(model, best.policy), best.value, atol=1e-12)


def test_regret_is_zero_for_the_best_response_and_positive_otherwise():
    model = random_model(5)
    tau = np.random.default_rng(0).uniform(0, 1, model.shape)
    response = transfer_best_response(model, tau)
    assert abs(agent_regret(model, tau, response.policy)) < 1e-12
    policies = np.random.default_rng(1).integers(0, model.n_actions, size=(50, *model.shape[:2]))
    regrets = agent_regret(model, np.broadcast_to(tau, (50, *model.shape)), policies)
    assert regrets.shape == (50,) and np.all(regrets >= -1e-12) and regrets.max() > 0


def test_stochastic_and_deterministic_policy_values_agree():
    model = random_model(7)
    policy = _random_policy(model, 0)
    probs = np.eye(model.n_actions)[policy]
    np.testing.assert_allclose(policy_values(model, model.agent_reward, policy),
                               policy_values(model, model.agent_reward, probs))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target_policy": np.zeros((3, 4))}, ValueError, "integer"),
        ({"target_policy": np.full((3, 4), 7)}, ValueError, "lie in"),
        ({"target_policy": np.zeros((2, 4), int)}, ValueError, "shape"),
        ({"agent_reward": np.zeros((3, 4, 2))}, ValueError, "agent_reward"),
        ({"transitions": np.full((3, 4, 3, 4), 0.3)}, ValueError, "sum to 1"),
        ({"margin": -0.1}, ValueError, "margin"),
        ({"margin": True}, TypeError, "margin"),
        ({"margin": float("nan")}, ValueError, "margin"),
    ],
)
def test_minimal_transfers_reject_bad_input(kwargs, error, match):
    model = random_model(0)
    args = {"transitions": model.transitions, "agent_reward": model.agent_reward,
            "target_policy": np.zeros((3, 4), int), **kwargs}
    with pytest.raises(error, match=match):
        minimal_transfers(**args)


def test_policy_and_transfer_validation():
    model = random_model(0)
    with pytest.raises(ValueError, match="non-negative"):
        transfer_best_response(model, -np.ones(model.shape))
    with pytest.raises(ValueError, match="shape"):
        transfer_best_response(model, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="integer actions"):
        welfare(model, np.zeros((3, 5), int))
    with pytest.raises(ValueError, match="probabilities"):
        welfare(model, np.full(model.shape, 0.5))
