import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sb3_contracts.envs.examples import two_state_example

from sb3_contracts.contracts import (
    expected_payment,
    is_observed_action,
    minimal_contract,
    minimal_contracts,
    minimal_contracts_torch,
    nudge_margin,
    observed_action_payments,
)

TOL = 1e-7


def _implements(probs, agent_q, contract, target, margin=0.0, tol=TOL):
    utility = agent_q + probs @ contract
    others = np.delete(utility, target)
    return others.size == 0 or utility[target] >= others.max() + margin - tol


def _random_instance(rng, n_actions, n_outcomes):
    probs = rng.dirichlet(np.ones(n_outcomes), size=n_actions)
    agent_q = rng.normal(size=n_actions)
    return probs, agent_q


def test_figure1_one_step_contract():
    mdp = two_state_example(horizon=1)
    probs = mdp.outcome_probs[0]
    agent_q = mdp.agent_reward[0]  # one step: the truncated Q is the immediate reward
    contract = minimal_contract(probs, agent_q, target=0)
    np.testing.assert_allclose(contract, [1.0, 0.0], atol=1e-9)
    principal_utility = probs[0] @ (mdp.principal_reward[0] - contract)
    agent_utility = agent_q[0] + probs[0] @ contract
    assert principal_utility == pytest.approx(0.5)
    assert agent_utility == pytest.approx(0.1)


def test_free_action_needs_no_payment():
    probs = np.array([[0.9, 0.1], [0.1, 0.9]])
    np.testing.assert_array_equal(minimal_contract(probs, np.array([-0.8, 0.0]), target=1), [0.0, 0.0])


def test_infeasible_target_returns_none():
    # Both actions produce the same outcomes: the costlier one can never be implemented.
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert minimal_contract(probs, np.array([-1.0, 0.0]), target=0) is None
    payments, feasible = minimal_contracts(probs, np.array([-1.0, 0.0]), np.array(0))
    assert not feasible and np.all(payments == 0)


def test_dominated_action_infeasible_with_three_actions():
    # Action 0's outcome distribution is a mix of the others' and it costs more: never implementable.
    probs = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    assert minimal_contract(probs, np.array([-1.0, 0.0, 0.0]), target=0) is None


@pytest.mark.parametrize("n_outcomes", [2, 3, 4])
def test_two_action_closed_form_equals_lp(n_outcomes):
    rng = np.random.default_rng(n_outcomes)
    for _ in range(50):
        probs, agent_q = _random_instance(rng, 2, n_outcomes)
        margin = float(rng.choice([0.0, 0.1]))
        for target in range(2):
            lp = minimal_contract(probs, agent_q, target, margin)
            closed, feasible = minimal_contracts(probs, agent_q, np.array(target), margin)
            assert feasible == (lp is not None)
            if lp is not None:
                # The LP may have several optimal vertices; the cost is unique.
                assert probs[target] @ closed == pytest.approx(probs[target] @ lp, abs=1e-7)
                assert _implements(probs, agent_q, closed, target, margin)


def test_observed_action_closed_form_equals_lp():
    rng = np.random.default_rng(0)
    for n_actions in (2, 3, 5):
        probs = np.eye(n_actions)
        for _ in range(20):
            agent_q = rng.normal(size=n_actions)
            margin = float(rng.choice([0.0, 0.05]))
            for target in range(n_actions):
                lp = minimal_contract(probs, agent_q, target, margin)
                closed, feasible = minimal_contracts(probs, agent_q, np.array(target), margin)
                assert feasible
                np.testing.assert_allclose(closed, lp, atol=1e-7)
                expected = max(0.0, np.delete(agent_q, target).max() + margin - agent_q[target])
                assert closed[target] == pytest.approx(expected)


def test_observed_action_menu_with_and_without_a_recommendation_everywhere():
    rng = np.random.default_rng(3)
    agent_q = rng.normal(size=(50, 4))
    minimal = observed_action_payments(torch.from_numpy(agent_q), 0.05).numpy()
    paper = observed_action_payments(torch.from_numpy(agent_q), 0.05, always_recommend=True).numpy()
    for q, row in zip(agent_q, minimal, strict=True):
        for target in range(4):
            assert row[target] == pytest.approx(minimal_contract(np.eye(4), q, target, 0.05)[target], abs=1e-7)
    favourite = agent_q.argmax(axis=1)
    others = np.ones_like(paper, dtype=bool)
    others[np.arange(50), favourite] = False
    np.testing.assert_allclose(paper[others], minimal[others])  # the two forms differ on the favourite only
    np.testing.assert_allclose(paper[np.arange(50), favourite], 0.05)
    assert (minimal[np.arange(50), favourite] < 0.05).all()


def test_closed_forms_equal_brute_force_grid():
    """Grid search over payments finds nothing cheaper than the closed form (2 actions, 2 outcomes)."""
    rng = np.random.default_rng(1)
    grid = np.linspace(0.0, 6.0, 601)
    pay0, pay1 = np.meshgrid(grid, grid, indexing="ij")
    contracts = np.stack([pay0.ravel(), pay1.ravel()], axis=1)
    for _ in range(20):
        probs, agent_q = _random_instance(rng, 2, 2)
        for target in range(2):
            closed, feasible = minimal_contracts(probs, agent_q, np.array(target))
            utility = agent_q[None, :] + contracts @ probs.T
            ok = utility[:, target] >= utility[:, 1 - target] - 1e-12
            if not feasible:
                assert not ok.any()
                continue
            if closed.max() > grid[-1]:
                continue  # the grid cannot reach this contract
            best_grid = (contracts[ok] @ probs[target]).min()
            cost = probs[target] @ closed
            assert cost <= best_grid + 1e-9
            # The grid step bounds how far above the optimum the grid's best can be.
            assert best_grid - cost <= 0.01 + 1e-9


def test_lp_batch_path_matches_single_lp():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), size=(6, 3))
    agent_q = rng.normal(size=(6, 3))
    targets = rng.integers(0, 3, size=6)
    payments, feasible = minimal_contracts(probs, agent_q, targets)
    for i in range(6):
        single = minimal_contract(probs[i], agent_q[i], int(targets[i]))
        assert feasible[i] == (single is not None)
        if single is not None:
            assert probs[i, targets[i]] @ payments[i] == pytest.approx(probs[i, targets[i]] @ single, abs=1e-7)


def test_torch_batch_matches_numpy_and_broadcasts_over_targets():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=(64, 2))
    agent_q = rng.normal(size=(64, 2))
    all_targets = np.arange(2)[None, :]
    numpy_pay, numpy_ok = minimal_contracts(probs[:, None], agent_q[:, None], all_targets)
    torch_pay, torch_ok = minimal_contracts_torch(
        torch.tensor(probs[:, None]), torch.tensor(agent_q[:, None]), torch.tensor(all_targets)
    )
    assert numpy_pay.shape == (64, 2, 3)
    np.testing.assert_allclose(torch_pay.numpy(), numpy_pay)
    np.testing.assert_array_equal(torch_ok.numpy(), numpy_ok)
    observed_pay, _ = minimal_contracts_torch(None, torch.tensor(agent_q), torch.zeros(64, dtype=torch.long),
                                              observed_action=True)
    np.testing.assert_allclose(observed_pay[:, 0].numpy(), np.maximum(agent_q[:, 1] - agent_q[:, 0], 0.0))


def test_torch_rejects_three_hidden_actions():
    with pytest.raises(NotImplementedError, match="minimal_contracts"):
        minimal_contracts_torch(torch.full((1, 3, 2), 0.5), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long))


def test_expected_payment_and_observed_detection():
    probs = np.array([[0.9, 0.1], [0.1, 0.9]])
    assert expected_payment(probs, np.array([1.0, 0.0]), np.array(0)) == pytest.approx(0.9)
    assert is_observed_action(np.eye(3)[None].repeat(4, axis=0))
    assert not is_observed_action(probs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"outcome_probs": np.array([[0.5, 0.6], [0.1, 0.9]])}, "summing to 1"),
        ({"outcome_probs": np.array([[np.nan, 1.0], [0.1, 0.9]])}, "finite"),
        ({"agent_q": np.array([1.0])}, "agent_q"),
        ({"target": 2}, "target"),
        ({"margin": -0.1}, "margin"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, match):
    args = {"outcome_probs": np.array([[0.9, 0.1], [0.1, 0.9]]), "agent_q": np.zeros(2), "target": 0, "margin": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        minimal_contract(**args)


def test_batched_bad_input_raises():
    probs = np.array([[0.9, 0.1], [0.1, 0.9]])
    with pytest.raises(ValueError, match="integer"):
        minimal_contracts(probs, np.zeros(2), np.array(0.5))
    with pytest.raises(ValueError, match="lie in"):
        minimal_contracts(probs, np.zeros(2), np.array(3))
    with pytest.raises(ValueError, match="broadcast"):
        minimal_contracts(probs[None].repeat(3, 0), np.zeros((4, 2)), np.zeros(3, dtype=int))


def test_nudge_margin():
    assert nudge_margin(0.05) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="agent_q_error"):
        nudge_margin(float("nan"))


def test_identical_outcome_distributions_cannot_pay_for_a_tiny_gap():
    # HiGHS alone accepted this within its 1e-7 feasibility tolerance; no contract can move the 6e-8 gap.
    probs, agent_q = np.full((2, 2), 0.5), np.array([6e-8, 0.0])
    assert minimal_contract(probs, agent_q, 1) is None
    assert not minimal_contracts(probs, agent_q, np.array(1))[1]
    assert np.array_equal(minimal_contract(probs, agent_q, 0), np.zeros(2))


@st.composite
def instances(draw):
    n_actions = draw(st.integers(2, 4))
    n_outcomes = draw(st.integers(2, 4))
    weights = draw(arrays(np.float64, (n_actions, n_outcomes), elements=st.floats(0.05, 1.0)))
    probs = weights / weights.sum(axis=1, keepdims=True)
    agent_q = draw(arrays(np.float64, (n_actions,), elements=st.floats(-2.0, 2.0)))
    target = draw(st.integers(0, n_actions - 1))
    margin = draw(st.sampled_from([0.0, 0.01, 0.2]))
    return probs, agent_q, target, margin


@settings(max_examples=150, deadline=None)
@given(instances())
def test_minimal_contract_is_a_best_response_and_minimal(instance):
    probs, agent_q, target, margin = instance
    contract, feasible = minimal_contracts(probs, agent_q, np.array(target), margin)
    lp = minimal_contract(probs, agent_q, target, margin)
    assert bool(feasible) == (lp is not None)
    if not feasible:
        return
    assert np.all(contract >= 0)
    assert _implements(probs, agent_q, contract, target, margin, tol=1e-6)
    # Paying any outcome less (where it costs something) breaks the incentive constraint.
    for outcome in itertools.compress(range(probs.shape[1]), (contract > 1e-6) & (probs[target] > 0)):
        cheaper = contract.copy()
        cheaper[outcome] -= min(1e-4, cheaper[outcome])
        assert not _implements(probs, agent_q, cheaper, target, margin, tol=1e-9)
