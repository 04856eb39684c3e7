"""The exact solvers and minimal contracts against references written here, apart from the package's code.

Agreement between two code paths of the package (value iteration and backward induction, say) cannot show a bug
they share; these references can. Each computes the minimal contract's cost from the *dual* of the contract LP
(SciPy's HiGHS), a formulation the package does not use, and the equilibrium by its definition, state by state.
"""

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree

from sb3_contracts.contracts import minimal_contract, minimal_contracts, minimal_contracts_torch
from sb3_contracts.solvers import solve_spe, value_iteration


def dual_minimal_cost(probs: np.ndarray, agent_q: np.ndarray, target: int, margin: float = 0.0) -> float | None:
    """
    The least expected payment that makes ``target`` the agent's best action, or ``None`` when none does.

    By LP duality: maximise ``Σ_a λ_a (Q̄(a) − Q̄(target) + ξ)`` over ``λ ≥ 0`` subject to
    ``Σ_a λ_a (𝒪(target) − 𝒪(a))[o] ≤ 𝒪(target)[o]`` for every outcome; an unbounded dual is an infeasible primal.
    """
    others = [a for a in range(len(agent_q)) if a != target]
    if not others:
        return 0.0
    gains = agent_q[others] - agent_q[target] + margin
    lifts = probs[target] - probs[others]  # [A-1, O]
    # λ = 0 is feasible, so the dual is either bounded or unbounded; HiGHS's presolve may call the latter infeasible.
    result = scipy.optimize.linprog(-gains, A_ub=lifts.T, b_ub=probs[target], bounds=(0, None), method="highs",
                                    options={"presolve": False})
    if result.status == 3:
        return None
    assert result.status == 0, result.message
    return max(-result.fun, 0.0)


# -- minimal contracts: no implementing contract is cheaper than the package's ----------------------------------------


@st.composite
def contract_instances(draw, observed: bool):
    """Sizes, target and margin from Hypothesis; the numbers from a generator it seeds (random, so rarely simple)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if observed:
        probs = np.eye(draw(st.integers(1, 5)))
    else:
        n_actions, n_outcomes = draw(st.integers(2, 4)), draw(st.integers(2, 5))
        weights = rng.dirichlet(np.ones(n_outcomes), size=n_actions)
        weights[rng.random(weights.shape) < draw(st.sampled_from([0.0, 0.3]))] = 0.0  # outcomes never produced
        assume(np.all(weights.sum(axis=1) > 0))
        probs = weights / weights.sum(axis=1, keepdims=True)
    # Q-values on a grid of 0.01: an incentive gap is zero or at least 1e-3, never inside the LP solvers' tolerances
    # (1e-7), where the package decides exactly and HiGHS up to its tolerance.
    agent_q = rng.integers(-200, 201, len(probs)) / 100
    target = draw(st.integers(0, len(probs) - 1))
    margin = draw(st.sampled_from([0.0, 1e-3, 0.2]))
    return probs, agent_q, target, margin


def _cost_agrees(probs, agent_q, target, margin, contract, reference):
    assert np.all(contract >= 0)
    cost = probs[target] @ contract
    assert cost == pytest.approx(reference, rel=1e-6, abs=1e-7)
    utility = agent_q + probs @ contract
    others = np.delete(utility, target)
    assert others.size == 0 or utility[target] >= others.max() + margin - 1e-6 * max(1.0, abs(utility).max())


def _check_every_front_end(probs, agent_q, target, margin, observed):
    reference = dual_minimal_cost(probs, agent_q, target, margin)
    single = minimal_contract(probs, agent_q, target, margin)
    batched, feasible = minimal_contracts(probs, agent_q, np.array(target), margin)
    assert (single is not None) == (reference is not None) == bool(feasible)
    if reference is None:
        return
    _cost_agrees(probs, agent_q, target, margin, single, reference)
    _cost_agrees(probs, agent_q, target, margin, batched, reference)
    if observed or len(agent_q) <= 2:  # the closed forms
        closed, ok = minimal_contracts_torch(torch.from_numpy(probs), torch.from_numpy(agent_q), torch.tensor(target),
                                             margin, observed_action=observed)
        assert bool(ok)
        _cost_agrees(probs, agent_q, target, margin, closed.numpy(), reference)


@settings(max_examples=250, deadline=None)
@given(contract_instances(observed=False))
def test_hidden_action_minimal_contracts_cost_what_the_dual_lp_says(instance):
    _check_every_front_end(*instance, observed=False)


@settings(max_examples=50, deadline=None)
@given(contract_instances(observed=True))
def test_observed_action_minimal_contracts_cost_what_the_dual_lp_says(instance):
    _check_every_front_end(*instance, observed=True)


# -- the SPE by its definition, state by state -------------------------------------------------------------------------


def reference_spe(mdp: PrincipalAgentMDP, transitions: np.ndarray, margin: float = 0.0) -> tuple[np.ndarray, ...]:
    """
    The SPE of an MDP whose transitions only lead to higher-numbered states, by backward induction from the last
    state: in each state, the best recommendation for the principal given both players' values after it, implemented
    at the dual LP's cost (the lowest such action on ties).

    :return: principal values, agent values and recommendations ``[S]`` (-1 in terminal states)
    """
    n_states, n_actions, _ = mdp.outcome_probs.shape
    principal, agent = np.zeros(n_states), np.zeros(n_states)
    recommended = np.full(n_states, -1)
    for s in reversed(range(n_states)):
        if not transitions[s].any():
            continue
        probs = mdp.outcome_probs[s]
        agent_q = mdp.agent_reward[s] + mdp.gamma * probs @ (transitions[s] @ agent)
        gross = probs @ (mdp.principal_reward[s] + mdp.gamma * transitions[s] @ principal)  # before payments
        costs = [dual_minimal_cost(probs, agent_q, a, margin) for a in range(n_actions)]
        values = [-np.inf if cost is None else gross[a] - cost for a, cost in enumerate(costs)]
        best = int(np.argmax(values))
        recommended[s], principal[s], agent[s] = best, values[best], agent_q[best] + costs[best]
    return principal, agent, recommended


def _random_rewards(rng: np.random.Generator, transitions: np.ndarray, n_actions: int,
                    gamma: float) -> PrincipalAgentMDP:
    """The MDP of ``transitions`` ``[S, O, S]`` with random outcome models, efforts and principal rewards."""
    n_states, n_outcomes = transitions.shape[:2]
    return PrincipalAgentMDP(
        outcome_probs=rng.dirichlet(np.ones(n_outcomes), size=(n_states, n_actions)),
        agent_reward=-rng.uniform(0, 1, size=(n_states, n_actions)),
        principal_reward=rng.uniform(0, 2, size=(n_states, n_outcomes)),
        transitions=transitions,
        gamma=gamma,
    )


def random_acyclic_mdp(seed: int, gamma: float, n_states: int = 7, n_actions: int = 3, n_outcomes: int = 3
                       ) -> tuple[PrincipalAgentMDP, np.ndarray]:
    """A random MDP whose transitions lead from each state to higher-numbered ones; the last two are terminal."""
    rng = np.random.default_rng(seed)
    transitions = np.zeros((n_states, n_outcomes, n_states))
    for s in range(n_states - 2):
        transitions[s, :, s + 1:] = rng.dirichlet(np.ones(n_states - s - 1), size=n_outcomes)
    return _random_rewards(rng, transitions, n_actions, gamma), transitions


@pytest.mark.parametrize("gamma", [0.5, 0.9])
@pytest.mark.parametrize("seed", range(4))
def test_spe_of_a_discounted_finite_horizon_mdp_matches_the_definition(seed, gamma):
    mdp, transitions = random_acyclic_mdp(seed, gamma, n_actions=2 + seed % 2)
    assert mdp.topological_levels() is not None  # solved by backward induction, not value iteration
    principal, agent, recommended = reference_spe(mdp, transitions)
    solution = solve_spe(mdp)
    np.testing.assert_array_equal(solution.recommended_action, recommended)
    np.testing.assert_allclose(solution.principal_value, principal, atol=1e-7)
    np.testing.assert_allclose(solution.agent_value, agent, atol=1e-7)


def test_spe_of_a_discounted_binary_tree_matches_the_definition():
    tree = random_binary_tree(4, seed=7)
    transitions = tree.transitions.toarray().reshape(tree.n_states, tree.n_outcomes, tree.n_states)
    mdp = PrincipalAgentMDP(tree.outcome_probs, tree.agent_reward, tree.principal_reward, transitions, gamma=0.7)
    principal, agent, recommended = reference_spe(mdp, transitions)
    solution = solve_spe(mdp)
    np.testing.assert_array_equal(solution.recommended_action, recommended)
    np.testing.assert_allclose(solution.principal_value, principal, atol=1e-7)
    np.testing.assert_allclose(solution.agent_value, agent, atol=1e-7)


# -- ties go to the lowest action index ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.6, 1.0]))
def test_spe_ties_go_to_the_lowest_recommended_action(seed, gamma):
    """Every action gets an exact twin at a higher index: the twins tie in every state, and the SPE never picks one."""
    mdp, transitions = random_acyclic_mdp(seed, gamma, n_states=5, n_actions=2, n_outcomes=2)
    twins = PrincipalAgentMDP(np.concatenate([mdp.outcome_probs] * 2, axis=1),
                              np.concatenate([mdp.agent_reward] * 2, axis=1), mdp.principal_reward, transitions,
                              gamma=gamma)
    solution, original = solve_spe(twins), solve_spe(mdp)
    decision = ~mdp.terminal
    q = solution.principal_q[decision]
    lowest_best = np.argmax(q == q.max(axis=1, keepdims=True), axis=1)
    np.testing.assert_array_equal(solution.recommended_action[decision], lowest_best)
    np.testing.assert_array_equal(solution.recommended_action, original.recommended_action)
    np.testing.assert_allclose(solution.principal_value, original.principal_value, atol=1e-9)


# -- value iteration against one written here --------------------------------------------------------------------------


def reference_value_iteration(mdp: PrincipalAgentMDP, transitions: np.ndarray, margin: float, tol: float = 1e-12,
                              max_sweeps: int = 2000) -> tuple[np.ndarray, ...]:
    """
    Both players' SPE values of a discounted MDP by plain value iteration: every sweep recomputes every live state
    from the previous sweep's values (principal values, agent values, recommendations ``[S]``).
    """
    n_states, n_actions, _ = mdp.outcome_probs.shape
    live = transitions.reshape(n_states, -1).any(axis=1)
    principal, agent = np.zeros(n_states), np.zeros(n_states)
    for _ in range(max_sweeps):
        new_principal, new_agent = np.zeros(n_states), np.zeros(n_states)
        recommended = np.full(n_states, -1)
        for s in np.flatnonzero(live):
            probs = mdp.outcome_probs[s]
            agent_q = mdp.agent_reward[s] + mdp.gamma * probs @ (transitions[s] @ agent)
            gross = probs @ (mdp.principal_reward[s] + mdp.gamma * transitions[s] @ principal)
            costs = [dual_minimal_cost(probs, agent_q, a, margin) for a in range(n_actions)]
            values = [-np.inf if cost is None else gross[a] - cost for a, cost in enumerate(costs)]
            best = int(np.argmax(values))
            recommended[s], new_principal[s], new_agent[s] = best, values[best], agent_q[best] + costs[best]
        change = max(np.abs(new_principal - principal).max(), np.abs(new_agent - agent).max())
        principal, agent = new_principal, new_agent
        if change < tol:
            return principal, agent, recommended
    raise AssertionError("the reference value iteration did not converge")


def random_cyclic_mdp(seed: int, gamma: float, n_states: int = 5) -> tuple[PrincipalAgentMDP, np.ndarray]:
    """A random MDP with cycles between its live states and a terminal exit (the last state)."""
    rng = np.random.default_rng(seed)
    n_actions, n_outcomes = 2, 3
    transitions = np.zeros((n_states, n_outcomes, n_states))
    transitions[:-1] = rng.dirichlet(np.ones(n_states), size=(n_states - 1, n_outcomes))
    return _random_rewards(rng, transitions, n_actions, gamma), transitions


@pytest.mark.parametrize(("seed", "margin"), [(0, 0.0), (1, 0.0), (2, 0.05)])
def test_value_iteration_matches_a_reference_value_iteration(seed, margin):
    mdp, transitions = random_cyclic_mdp(seed, gamma=0.75)
    assert mdp.topological_levels() is None
    principal, agent, recommended = reference_value_iteration(mdp, transitions, margin)
    # A sweep limit ten times what γ = 0.75 needs: a solver whose values stop contracting fails here, not hangs.
    solution = value_iteration(mdp, nudge=margin, tol=1e-11, max_iter=1000)
    np.testing.assert_array_equal(solution.recommended_action, recommended)
    np.testing.assert_allclose(solution.principal_value, principal, atol=1e-8)
    np.testing.assert_allclose(solution.agent_value, agent, atol=1e-8)
