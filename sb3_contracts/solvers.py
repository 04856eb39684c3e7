"""Exact solutions of principal-agent MDPs: the ground truth every learner is measured against.

* :func:`solve_spe`: the subgame-perfect equilibrium, by backward induction on acyclic MDPs (level by
  level, each level one vectorised step) or by value iteration on cyclic discounted MDPs
  (:func:`value_iteration`, the contraction).
* :func:`best_response`: the agent's exact best response to any principal policy (contracts per state).
* :func:`meta_algorithm`: Algorithm 1 of Ivanov et al., alternating exact best responses of the agent
  and the principal; on a finite horizon it reaches the SPE in about horizon-many rounds.

Tie-breaking. In the SPE the agent breaks ties in the principal's favour: minimal contracts leave it
exactly indifferent, and it then takes the recommended action. Among recommended actions with equal
principal value the lowest index wins. :func:`best_response` breaks ties toward the recommendation
(or, without one, toward the principal's best action); its ``strict=True`` mode breaks them against
the principal, which shows how much of a policy's value rests on knife-edge indifference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sb3_contracts.contracts import minimal_contracts
from sb3_contracts.envs.checks import as_real_array, check_instance, check_int, check_real
from sb3_contracts.envs.mdp import PrincipalAgentMDP

#: Values closer than this (relative to their scale, at least 1) count as a tie for the agent. It is
#: wider than float64 rounding so that a minimal contract passed through a float32 action space (as SB3
#: policies emit) still implements its target: float32 carries about 7 significant digits.
TIE_TOLERANCE = 1e-6

Stage = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]


@dataclass
class SPESolution:
    """
    The principal's and agent's equilibrium strategies and values.

    :param principal_value: ``[S]`` the principal's value in each state.
    :param agent_value: ``[S]`` the agent's value in each state.
    :param recommended_action: ``[S]`` the action the principal implements (-1 in terminal states).
    :param contracts: ``[S, O]`` the minimal contract offered in each state.
    :param principal_q: ``[S, A]`` the principal's contractual Q over recommended actions
        (``-inf`` where an action cannot be implemented).
    :param agent_q: ``[S, A]`` the agent's truncated Q ``Q̄`` (excluding the current payment).
    :param residuals: sup-norm change per value-iteration sweep (empty for backward induction).
    """

    principal_value: np.ndarray
    agent_value: np.ndarray
    recommended_action: np.ndarray
    contracts: np.ndarray
    principal_q: np.ndarray
    agent_q: np.ndarray
    residuals: list[float] = field(default_factory=list)
    iterations: int = 0


@dataclass
class AgentResponse:
    """
    The agent's exact best response to a fixed principal policy, and what it is worth to both.

    :param action: ``[S]`` the agent's action in each state (-1 in terminal states).
    :param agent_value: ``[S]`` the agent's value (payments included).
    :param principal_value: ``[S]`` the principal's value of the resulting play (payments deducted).
    :param agent_q: ``[S, A]`` the agent's truncated Q ``Q̄`` under this principal policy.
    """

    action: np.ndarray
    agent_value: np.ndarray
    principal_value: np.ndarray
    agent_q: np.ndarray


def _sweep(mdp: PrincipalAgentMDP, stage: Stage, n_values: int, tol: float, max_iter: int,
           iterative: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], list[float]]:
    """
    Run ``stage`` over the states in backward order: once per topological level when the MDP is
    acyclic (and ``iterative`` is false), otherwise as value iteration over all non-terminal states
    until the values move less than ``tol``. ``stage(states, values)`` returns the new
    ``[n, n_values]`` values of ``states`` and per-state extras; those of terminal states stay zero.
    """
    check_real("tol", tol, 0.0, low_open=True)
    check_int("max_iter", max_iter, 1)
    values = np.zeros((mdp.n_states, n_values))
    extras: dict[str, np.ndarray] = {}

    def store(states: np.ndarray, new_extras: dict[str, np.ndarray]) -> None:
        for name, array in new_extras.items():
            if name not in extras:
                extras[name] = np.zeros((mdp.n_states, *array.shape[1:]), dtype=array.dtype)
            extras[name][states] = array

    levels = None if iterative else mdp.topological_levels()
    if levels is not None:
        for states in levels:
            values[states], new_extras = stage(states, values)
            store(states, new_extras)
        return values, extras, []
    if mdp.gamma >= 1.0:
        raise ValueError("the MDP has a cycle and gamma = 1: values need not exist; use gamma < 1 "
                         "or make the MDP acyclic (finite horizon)")
    states = np.flatnonzero(~mdp.terminal)
    residuals: list[float] = []
    for _ in range(max_iter):
        new_values, new_extras = stage(states, values)
        residuals.append(float(np.max(np.abs(new_values - values[states]))) if states.size else 0.0)
        values[states] = new_values
        store(states, new_extras)
        if residuals[-1] < tol:
            return values, extras, residuals
    raise RuntimeError(f"value iteration did not reach tol={tol} in {max_iter} sweeps "
                       f"(last change {residuals[-1]:.3g})")


def _principal_choice(mdp: PrincipalAgentMDP, states: np.ndarray, agent_q: np.ndarray,
                      principal_next: np.ndarray, nudge: float) -> dict[str, np.ndarray]:
    """
    The principal's best recommendation in ``states`` given the agent's truncated Q ``[n, A]`` and the
    expected principal value after each outcome ``[n, O]``: minimal contracts for every target, the
    contractual Q, and the argmax.
    """
    probs = mdp.outcome_probs[states]
    n_actions = mdp.n_actions
    payments, feasible = minimal_contracts(probs[:, None], agent_q[:, None], np.arange(n_actions)[None], nudge)
    net = mdp.principal_reward[states][:, None, :] - payments + mdp.gamma * principal_next[:, None, :]
    principal_q = np.where(feasible, np.einsum("nao,nao->na", probs, net), -np.inf)
    if not feasible.any(axis=1).all():
        state = int(states[np.flatnonzero(~feasible.any(axis=1))[0]])
        raise ValueError(f"no action can be implemented in state {state} with nudge {nudge}")
    recommended = np.argmax(principal_q, axis=1)
    rows = np.arange(states.size)
    contracts = payments[rows, recommended]
    agent_value = agent_q[rows, recommended] + np.sum(probs[rows, recommended] * contracts, axis=1)
    return {
        "principal_value": principal_q[rows, recommended],
        "agent_value": agent_value,
        "recommended_action": recommended,
        "contracts": contracts,
        "principal_q": principal_q,
    }


def _truncated_q(mdp: PrincipalAgentMDP, states: np.ndarray, agent_next: np.ndarray) -> np.ndarray:
    """``Q̄(s, a) = r(s, a) + γ Σ_o 𝒪(s, a)[o] E[V(s') | s, o]`` for ``states``, given ``[n, O]``."""
    return mdp.agent_reward[states] + mdp.gamma * np.einsum("nao,no->na", mdp.outcome_probs[states], agent_next)


def solve_spe(mdp: PrincipalAgentMDP, nudge: float = 0.0, tol: float = 1e-10, max_iter: int = 100_000,
              iterative: bool = False) -> SPESolution:
    """
    Subgame-perfect equilibrium with minimal contracts.

    Acyclic MDPs (finite horizon) are solved exactly by backward induction, level by level; cyclic
    MDPs need ``gamma < 1`` and are solved by :func:`value_iteration`.

    :param mdp: the principal-agent MDP.
    :param nudge: ``ξ``: every contract makes the target better by at least ``ξ`` (the LP's ``margin``).
    :param tol: value-iteration stopping tolerance (sup norm), cyclic MDPs only.
    :param max_iter: value-iteration sweep limit, cyclic MDPs only.
    :param iterative: use value iteration even on an acyclic MDP (see :func:`value_iteration`).
    :return: the equilibrium.
    """
    check_instance("mdp", mdp, PrincipalAgentMDP)

    def stage(states: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        expected = mdp.expected_next(values, states)  # [n, O, 2]: principal, agent
        agent_q = _truncated_q(mdp, states, expected[..., 1])
        choice = _principal_choice(mdp, states, agent_q, expected[..., 0], nudge)
        new_values = np.stack([choice.pop("principal_value"), choice.pop("agent_value")], axis=1)
        choice["agent_q"] = agent_q
        return new_values, choice

    values, extras, residuals = _sweep(mdp, stage, 2, tol, max_iter, iterative)
    return _solution(mdp, values, extras, residuals)


def _solution(mdp: PrincipalAgentMDP, values: np.ndarray, extras: dict[str, np.ndarray],
              residuals: list[float], iterations: int = 0) -> SPESolution:
    terminal = mdp.terminal
    recommended = extras["recommended_action"].astype(np.int64)
    recommended[terminal] = -1
    principal_q = extras["principal_q"]
    principal_q[terminal] = 0.0
    return SPESolution(
        principal_value=values[:, 0],
        agent_value=values[:, 1],
        recommended_action=recommended,
        contracts=extras["contracts"],
        principal_q=principal_q,
        agent_q=extras["agent_q"],
        residuals=residuals,
        iterations=iterations or len(residuals),
    )


def value_iteration(mdp: PrincipalAgentMDP, nudge: float = 0.0, tol: float = 1e-10,
                    max_iter: int = 100_000) -> SPESolution:
    """
    SPE of a discounted (possibly cyclic) MDP by iterating the one-step equilibrium operator on the
    principal's and agent's values over all states at once. ``residuals`` records the sup-norm change
    of each sweep; it shrinks geometrically (at rate ``gamma`` once the recommendations settle).

    :param mdp: an MDP with ``gamma < 1``.
    :param nudge: ``ξ``.
    :param tol: stop when a sweep changes no value by more than this.
    :param max_iter: sweep limit (a ``RuntimeError`` past it).
    """
    check_instance("mdp", mdp, PrincipalAgentMDP)
    if mdp.gamma >= 1.0:
        raise ValueError(f"value iteration needs gamma < 1, got {mdp.gamma}")
    return solve_spe(mdp, nudge=nudge, tol=tol, max_iter=max_iter, iterative=True)


def best_response(
    mdp: PrincipalAgentMDP,
    contracts: np.ndarray,
    recommended: np.ndarray | None = None,
    strict: bool = False,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> AgentResponse:
    """
    The agent's exact best response to a principal policy that offers ``contracts[s]`` in state ``s``.

    The agent maximises its own return ``Σ γ^t (r(s, a) + b_s(o))``. Ties (within
    :data:`TIE_TOLERANCE`) go to the recommended action when it is among the best; otherwise, or with
    no recommendation, to the best of them for the principal. With ``strict=True`` ties go against the
    principal: the recommendation is taken only when strictly preferred, and otherwise the tied
    action worst for the principal.

    :param mdp: the principal-agent MDP.
    :param contracts: ``[S, O]`` non-negative payments per state and outcome.
    :param recommended: optional ``[S]`` recommended actions.
    :param strict: break ties against the principal.
    :param tol: value-iteration tolerance (cyclic MDPs only).
    :param max_iter: value-iteration sweep limit (cyclic MDPs only).
    """
    check_instance("mdp", mdp, PrincipalAgentMDP)
    contracts = _validate_contracts(mdp, contracts)
    if recommended is not None:
        recommended = np.asarray(recommended)
        if recommended.shape != (mdp.n_states,) or not np.issubdtype(recommended.dtype, np.integer):
            raise ValueError(f"recommended must be an integer array of shape [S] = [{mdp.n_states}], "
                             f"got {recommended.dtype} {recommended.shape}")
        live = recommended[~mdp.terminal]
        if live.size and (live.min() < 0 or live.max() >= mdp.n_actions):
            raise ValueError(f"recommended actions of non-terminal states must lie in [0, {mdp.n_actions - 1}]")

    def stage(states: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        expected = mdp.expected_next(values, states)  # [n, O, 2]: agent, principal
        agent_q = _truncated_q(mdp, states, expected[..., 0])
        full_q, principal_q = _payoffs_under_contracts(mdp, states, agent_q, contracts[states], expected[..., 1])
        rec = None if recommended is None else recommended[states]
        action = _agent_choice(full_q, principal_q, rec, strict)
        rows = np.arange(states.size)
        new_values = np.stack([full_q[rows, action], principal_q[rows, action]], axis=1)
        return new_values, {"action": action, "agent_q": agent_q}

    values, extras, _ = _sweep(mdp, stage, 2, tol, max_iter)
    action = extras["action"].astype(np.int64)
    action[mdp.terminal] = -1
    return AgentResponse(action=action, agent_value=values[:, 0], principal_value=values[:, 1],
                         agent_q=extras["agent_q"])


def _payoffs_under_contracts(mdp: PrincipalAgentMDP, states: np.ndarray, agent_q: np.ndarray,
                             contracts: np.ndarray, principal_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Both players' payoff of each agent action in ``states`` when ``contracts [n, O]`` are on offer: the agent's
    full Q (truncated ``agent_q [n, A]`` plus the expected payment) and the principal's Q given its expected
    value after each outcome ``principal_next [n, O]``.
    """
    probs = mdp.outcome_probs[states]
    full_q = agent_q + np.einsum("nao,no->na", probs, contracts)
    net = mdp.principal_reward[states] - contracts + mdp.gamma * principal_next
    return full_q, np.einsum("nao,no->na", probs, net)


def _agent_choice(full_q: np.ndarray, principal_q: np.ndarray, recommended: np.ndarray | None,
                  strict: bool) -> np.ndarray:
    scale = np.maximum(1.0, np.abs(full_q).max(axis=1, keepdims=True))
    tied = full_q >= full_q.max(axis=1, keepdims=True) - TIE_TOLERANCE * scale
    rows = np.arange(full_q.shape[0])
    if strict:
        if recommended is not None:
            alone = tied.sum(axis=1) == 1
            tied[rows, recommended] &= alone
        return np.argmin(np.where(tied, principal_q, np.inf), axis=1)
    choice = np.argmax(np.where(tied, principal_q, -np.inf), axis=1)
    if recommended is not None:
        choice = np.where(tied[rows, recommended], recommended, choice)
    return choice


def _validate_contracts(mdp: PrincipalAgentMDP, contracts: np.ndarray) -> np.ndarray:
    contracts = np.asarray(contracts, dtype=np.float64)
    if contracts.shape != (mdp.n_states, mdp.n_outcomes):
        raise ValueError(f"contracts must have shape [S, O] = {(mdp.n_states, mdp.n_outcomes)}, "
                         f"got {contracts.shape}")
    if not np.all(np.isfinite(contracts)):
        raise ValueError("contracts must be finite (found NaN or inf)")
    if np.any(contracts < 0):
        raise ValueError("contracts must be non-negative (limited liability)")
    return contracts


def principal_best_response(mdp: PrincipalAgentMDP, agent_q: np.ndarray, nudge: float = 0.0,
                            tol: float = 1e-10, max_iter: int = 100_000) -> SPESolution:
    """
    The principal's optimal policy against an agent whose truncated Q is held fixed at ``agent_q``:
    in each state it implements the best action with the minimal contract that ``agent_q`` implies.

    :param mdp: the principal-agent MDP.
    :param agent_q: ``[S, A]`` the agent's truncated Q (e.g. from :func:`best_response`).
    :param nudge: ``ξ``.
    """
    check_instance("mdp", mdp, PrincipalAgentMDP)
    agent_q = np.asarray(agent_q, dtype=np.float64)
    if agent_q.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"agent_q must have shape [S, A] = {(mdp.n_states, mdp.n_actions)}, got {agent_q.shape}")

    def stage(states: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        choice = _principal_choice(mdp, states, agent_q[states], mdp.expected_next(values[:, 0], states), nudge)
        new_values = np.stack([choice.pop("principal_value"), choice.pop("agent_value")], axis=1)
        choice["agent_q"] = agent_q[states]
        return new_values, choice

    values, extras, residuals = _sweep(mdp, stage, 2, tol, max_iter)
    return _solution(mdp, values, extras, residuals)


@dataclass
class MetaAlgorithmResult:
    """
    Outcome of :func:`meta_algorithm`.

    :param solution: the principal's final policy with the values of play against the agent's exact
        best response.
    :param iterations: rounds until the principal's policy stopped changing.
    :param principal_values: the principal's value at the initial state after each round.
    :param converged: whether the policy reached a fixed point within the round limit.
    """

    solution: SPESolution
    iterations: int
    principal_values: list[float]
    converged: bool


def meta_algorithm(mdp: PrincipalAgentMDP, max_rounds: int = 1000, nudge: float = 0.0,
                   atol: float = 1e-9) -> MetaAlgorithmResult:
    """
    Algorithm 1 of Ivanov et al.: alternate the agent's exact best response to the principal's policy
    and the principal's exact best response to the agent's resulting truncated Q, starting from the
    empty contract, until the principal's policy stops changing. A fixed point is an SPE; on a finite
    horizon ``H`` each round fixes one more step back from the end, so it takes about ``H`` rounds.

    :param mdp: the principal-agent MDP.
    :param max_rounds: round limit.
    :param nudge: ``ξ`` of the principal's minimal contracts.
    :param atol: contracts closer than this count as unchanged.
    """
    check_instance("mdp", mdp, PrincipalAgentMDP)
    check_int("max_rounds", max_rounds, 1)
    check_real("atol", atol, 0.0)
    contracts = np.zeros((mdp.n_states, mdp.n_outcomes))
    recommended: np.ndarray | None = None
    history: list[float] = []
    for round_index in range(1, max_rounds + 1):  # noqa: B007 (the count is reported)
        response = best_response(mdp, contracts, recommended)
        solution = principal_best_response(mdp, response.agent_q, nudge)
        stable = (recommended is not None and np.array_equal(solution.recommended_action, recommended)
                  and np.allclose(solution.contracts, contracts, atol=atol, rtol=0.0))
        contracts, recommended = solution.contracts, solution.recommended_action
        played = best_response(mdp, contracts, recommended)
        history.append(float(played.principal_value[mdp.initial_state]))
        if stable:
            break
    solution.principal_value, solution.agent_value = played.principal_value, played.agent_value
    solution.iterations = round_index
    return MetaAlgorithmResult(solution, round_index, history, stable)


class ExactBestResponder:
    """
    An agent that best-responds exactly to the contract offered now, valuing the future by a fixed
    continuation: by default the SPE's (so it plays its subgame-perfect strategy at every state and
    every contract, on and off the equilibrium path), or its best response to a given principal policy
    (:meth:`respond_to`). Ties go to the action best for the principal (``strict=False``) or worst
    for it (``strict=True``), as in :func:`best_response`.

    :param mdp: the principal-agent MDP.
    :param strict: break ties against the principal.
    :param solution: a precomputed SPE to take the continuation from (solved when ``None``).
    """

    def __init__(self, mdp: PrincipalAgentMDP, strict: bool = False, solution: SPESolution | None = None) -> None:
        self.mdp = check_instance("mdp", mdp, PrincipalAgentMDP)
        self.strict = strict
        solution = solve_spe(mdp) if solution is None else solution
        self._set_continuation(solution.agent_q, solution.principal_value)

    def _set_continuation(self, agent_q: np.ndarray, principal_value: np.ndarray) -> None:
        self.agent_q = agent_q
        self._principal_next = self.mdp.expected_next(principal_value)

    def respond_to(self, contracts: np.ndarray, recommended: np.ndarray | None = None) -> AgentResponse:
        """
        Re-base the continuation on the agent's exact best response to a principal policy.

        :param contracts: ``[S, O]`` the principal's contract in every state.
        :param recommended: optional ``[S]`` recommended actions (for tie-breaking).
        :return: that best response.
        """
        response = best_response(self.mdp, contracts, recommended, strict=self.strict)
        self._set_continuation(response.agent_q, response.principal_value)
        return response

    def act(self, states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
        """
        The agent's actions in a batch of states.

        :param states: ``[n]`` state indices.
        :param contracts: ``[n, O]`` the contracts offered there.
        :return: ``[n]`` actions.
        """
        full_q, principal_q = _payoffs_under_contracts(self.mdp, states, self.agent_q[states], contracts,
                                                       self._principal_next[states])
        return _agent_choice(full_q, principal_q, None, self.strict)

    def __call__(self, state: int, contract: np.ndarray) -> int:
        """
        The agent's action in one state: checked inputs (``act`` is the unchecked batched form the views use).

        :param state: a state index
        :param contract: ``[O]`` non-negative finite payments
        """
        check_int("state", state, 0, self.mdp.n_states - 1)
        contract = as_real_array("contract", contract, shape=(self.mdp.n_outcomes,))
        if np.any(contract < 0):
            raise ValueError(f"contract payments must be non-negative (limited liability), got {contract}")
        return int(self.act(np.array([state]), contract[None])[0])
