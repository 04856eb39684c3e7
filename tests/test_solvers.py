import itertools

import numpy as np
import pytest
from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree, two_state_example

from sb3_contracts.contracts import minimal_contract
from sb3_contracts.solvers import (
    ExactBestResponder,
    best_response,
    meta_algorithm,
    principal_best_response,
    solve_spe,
    value_iteration,
)


def _children(mdp, state):
    return [int(mdp.transitions.getrow(state * mdp.n_outcomes + o).indices[0]) for o in range(mdp.n_outcomes)]


def _play(mdp, recommended, state):
    """Principal's and agent's values when every state's recommendation gets the LP's minimal contract."""
    if mdp.terminal[state]:
        return 0.0, 0.0
    children = [_play(mdp, recommended, child) for child in _children(mdp, state)]
    principal_next = np.array([c[0] for c in children])
    agent_next = np.array([c[1] for c in children])
    probs = mdp.outcome_probs[state]
    agent_q = mdp.agent_reward[state] + probs @ agent_next
    target = recommended[state]
    contract = minimal_contract(probs, agent_q, target)
    if contract is None:
        return -np.inf, 0.0
    principal = probs[target] @ (mdp.principal_reward[state] - contract + principal_next)
    return principal, agent_q[target] + probs[target] @ contract


def brute_force_tree(mdp):
    """Best principal value over every map of recommendations, each implemented by the LP's minimal contract."""
    decision = np.flatnonzero(~mdp.terminal).tolist()
    return max(
        _play(mdp, dict(zip(decision, choice, strict=True)), mdp.initial_state)[0]
        for choice in itertools.product(range(mdp.n_actions), repeat=len(decision))
    )


@pytest.mark.parametrize("seed", range(4))
def test_spe_equals_brute_force_on_small_trees(seed):
    mdp = random_binary_tree(3, seed)
    solution = solve_spe(mdp)
    assert solution.principal_value[0] == pytest.approx(brute_force_tree(mdp), abs=1e-9)


def test_spe_beats_every_contract_on_a_grid_one_state():
    """Depth 1: no contract on a fine grid, against an exact tie-breaking agent, does better than the SPE."""
    mdp = random_binary_tree(1, seed=3)
    solution = solve_spe(mdp)
    grid = np.linspace(0.0, 3.0, 301)
    pay0, pay1 = np.meshgrid(grid, grid, indexing="ij")
    contracts = np.stack([pay0.ravel(), pay1.ravel()], axis=1)
    agent = ExactBestResponder(mdp, solution=solution)
    actions = agent.act(np.zeros(len(contracts), dtype=int), contracts)
    probs = mdp.outcome_probs[0][actions]
    utility = np.sum(probs * (mdp.principal_reward[0] - contracts), axis=1)
    assert utility.max() <= solution.principal_value[0] + 1e-9
    assert utility.max() >= solution.principal_value[0] - 0.01


def test_spe_reference_values_on_depth10_trees():
    shares, principal, agent = [], [], []
    for seed in range(20):
        mdp = random_binary_tree(10, seed)
        solution = solve_spe(mdp)
        decision = ~mdp.terminal
        shares.append(np.mean(solution.recommended_action[decision] == 1))
        principal.append(solution.principal_value[0])
        agent.append(solution.agent_value[0])
    assert 0.55 <= np.mean(shares) <= 0.61
    assert np.mean(principal) == pytest.approx(3.96, abs=0.1)
    assert np.mean(agent) == pytest.approx(0.14, abs=0.03)


def test_spe_is_consistent_with_exact_best_response():
    mdp = random_binary_tree(6, seed=1)
    solution = solve_spe(mdp)
    decision = ~mdp.terminal
    response = best_response(mdp, solution.contracts, solution.recommended_action)
    np.testing.assert_array_equal(response.action[decision], solution.recommended_action[decision])
    np.testing.assert_allclose(response.principal_value, solution.principal_value, atol=1e-9)
    np.testing.assert_allclose(response.agent_value, solution.agent_value, atol=1e-9)
    np.testing.assert_allclose(response.agent_q[decision], solution.agent_q[decision], atol=1e-9)
    # Minimal contracts leave the agent indifferent: breaking ties against the principal costs it.
    strict = best_response(mdp, solution.contracts, solution.recommended_action, strict=True)
    assert strict.principal_value[0] < solution.principal_value[0] - 0.1


def test_nudged_spe_survives_strict_tie_breaking():
    mdp = random_binary_tree(6, seed=1)
    nudged = solve_spe(mdp, nudge=1e-4)
    strict = best_response(mdp, nudged.contracts, nudged.recommended_action, strict=True)
    np.testing.assert_allclose(strict.principal_value, nudged.principal_value, atol=1e-9)
    assert nudged.principal_value[0] <= solve_spe(mdp).principal_value[0]


def test_exact_best_responder_matches_solver():
    mdp = random_binary_tree(5, seed=2)
    solution = solve_spe(mdp)
    decision = np.flatnonzero(~mdp.terminal)
    agent = ExactBestResponder(mdp, solution=solution)
    np.testing.assert_array_equal(agent.act(decision, solution.contracts[decision]),
                                  solution.recommended_action[decision])
    # No payment: the agent shirks everywhere effort costs it something.
    zero = agent.act(decision, np.zeros((decision.size, 2)))
    assert np.all(zero[mdp.agent_reward[decision, 1] < 0] == 0)
    state = int(decision[0])
    assert agent(state, solution.contracts[state]) == solution.recommended_action[state]


@pytest.mark.parametrize("seed", range(3))
def test_meta_algorithm_reaches_spe(seed):
    depth = 6
    mdp = random_binary_tree(depth, seed)
    solution = solve_spe(mdp)
    result = meta_algorithm(mdp)
    assert result.converged
    assert result.iterations <= depth + 2
    np.testing.assert_allclose(result.solution.principal_value, solution.principal_value, atol=1e-9)
    np.testing.assert_array_equal(result.solution.recommended_action, solution.recommended_action)
    assert result.principal_values[-1] == pytest.approx(solution.principal_value[0])


def test_meta_algorithm_reaches_spe_on_discounted_cycle():
    mdp = two_state_example(gamma=0.9)
    result = meta_algorithm(mdp)
    assert result.converged
    np.testing.assert_allclose(result.solution.principal_value, value_iteration(mdp).principal_value, atol=1e-7)


def _random_cyclic_mdp(seed, n_states=6, n_actions=3, n_outcomes=3, gamma=0.8):
    rng = np.random.default_rng(seed)
    return PrincipalAgentMDP(
        outcome_probs=rng.dirichlet(np.ones(n_outcomes), size=(n_states, n_actions)),
        agent_reward=-rng.uniform(0, 1, size=(n_states, n_actions)),
        principal_reward=rng.uniform(0, 2, size=(n_states, n_outcomes)),
        transitions=rng.dirichlet(np.ones(n_states), size=(n_states, n_outcomes)),
        gamma=gamma,
    )


def test_value_iteration_converges_geometrically_on_cyclic_mdp():
    mdp = _random_cyclic_mdp(0)
    solution = value_iteration(mdp, tol=1e-10)
    residuals = np.array(solution.residuals)
    assert residuals[-1] < 1e-10
    # After the recommendations settle, each sweep shrinks the change by the discount factor.
    # (Checked above 1e-7, where the HiGHS solutions' own rounding does not show.)
    tail = residuals[len(residuals) // 2:]
    tail = tail[tail > 1e-7]
    assert tail.size > 10
    ratios = tail[1:] / tail[:-1]
    assert np.all(ratios <= mdp.gamma + 1e-6)
    # A fixed point: one more sweep of the operator moves nothing, and the agent follows.
    response = best_response(mdp, solution.contracts, solution.recommended_action)
    np.testing.assert_array_equal(response.action, solution.recommended_action)
    np.testing.assert_allclose(response.principal_value, solution.principal_value, atol=1e-8)


def test_value_iteration_equals_backward_induction_on_finite_horizon():
    mdp = two_state_example(gamma=0.9, horizon=5)
    exact = solve_spe(mdp)
    iterated = value_iteration(mdp, tol=1e-12)
    np.testing.assert_allclose(iterated.principal_value, exact.principal_value, atol=1e-9)
    np.testing.assert_allclose(iterated.agent_value, exact.agent_value, atol=1e-9)


def test_two_state_example_cyclic_values():
    solution = value_iteration(two_state_example(gamma=0.9))
    # The one-step contract is optimal forever: 0.5 and 0.1 per step, discounted.
    np.testing.assert_allclose(solution.principal_value, 0.5 / 0.1)
    np.testing.assert_allclose(solution.agent_value, 0.1 / 0.1)
    np.testing.assert_allclose(solution.contracts, [[1.0, 0.0], [1.0, 0.0]], atol=1e-9)


def test_principal_best_response_against_spe_agent_is_spe():
    mdp = random_binary_tree(5, seed=4)
    solution = solve_spe(mdp)
    again = principal_best_response(mdp, solution.agent_q)
    np.testing.assert_allclose(again.principal_value, solution.principal_value)


def test_solver_errors():
    mdp = random_binary_tree(2, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        best_response(mdp, -np.ones((mdp.n_states, 2)))
    with pytest.raises(ValueError, match=r"shape \[S, O\]"):
        best_response(mdp, np.ones((3, 2)))
    with pytest.raises(ValueError, match="gamma < 1"):
        value_iteration(mdp)
    cyclic_undiscounted = _random_cyclic_mdp(1, gamma=1.0)
    with pytest.raises(ValueError, match="cycle"):
        solve_spe(cyclic_undiscounted)
