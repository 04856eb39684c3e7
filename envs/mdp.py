"""The tabular principal-agent MDP.

One step of the game: the principal sees the state ``s`` and offers a contract ``b`` (a non-negative
payment per outcome); the agent sees ``(s, b)`` and picks an action ``a``; an outcome
``o ~ outcome_probs[s, a]`` is observed by both; the agent receives ``agent_reward[s, a] + b[o]``, the
principal ``principal_reward[s, o] - b[o]``; the next state is drawn from ``transitions[s, o]``.

Terminal convention: a state whose transition rows are all zero (for every outcome) is terminal; it
has value zero and nothing happens there. A non-terminal state's transition rows must each sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .checks import as_real_array, check_distributions, check_int, check_real

_PROB_ATOL = 1e-6


def _as_float_array(name: str, value: object, ndim: int) -> np.ndarray:
    return as_real_array(name, value, ndim=ndim)


def transitions_from_next_states(next_states: np.ndarray, n_states: int) -> sp.csr_matrix:
    """
    Build the sparse transition matrix of a deterministic MDP.

    :param next_states: ``[S, O]`` integer array; ``next_states[s, o]`` is the state reached after
        outcome ``o`` in ``s``, or ``-1`` for terminal states (all entries of a terminal row are ``-1``).
    :param n_states: number of states ``S``.
    :return: CSR matrix of shape ``[S * O, S]``, the sparse form accepted by :class:`PrincipalAgentMDP`.
    """
    next_states = np.asarray(next_states)
    if next_states.ndim != 2 or not np.issubdtype(next_states.dtype, np.integer):
        raise ValueError(f"next_states must be a 2-D integer array, got {next_states.dtype} {next_states.shape}")
    if np.any(next_states >= n_states) or np.any(next_states < -1):
        raise ValueError(f"next_states entries must lie in [-1, {n_states - 1}]")
    flat = next_states.reshape(-1)
    live = flat >= 0
    rows = np.flatnonzero(live)
    return sp.csr_matrix(
        (np.ones(rows.size), (rows, flat[live])), shape=(flat.size, n_states), dtype=np.float64
    )


class PrincipalAgentMDP:
    """
    A finite principal-agent MDP ``(S, s0, A, O, 𝒪, r, r^p, T, γ)``.

    :param outcome_probs: ``[S, A, O]``, the outcome distribution ``𝒪(s, a)``; rows sum to 1.
    :param agent_reward: ``[S, A]``, the agent's own reward ``r(s, a)`` (may be negative: effort costs).
    :param principal_reward: ``[S, O]``, the principal's reward ``r^p(s, o)`` before payments.
    :param transitions: ``T(s' | s, o)``, either dense ``[S, O, S]`` or a SciPy sparse matrix of shape
        ``[S * O, S]`` (row ``s * O + o``). A state whose rows are all zero is terminal.
    :param initial_state: the start state ``s0``.
    :param gamma: discount factor in ``[0, 1]``.
    :param state_features: optional ``[S, F]`` compact state encoding used by environments when a
        one-hot encoding would be too large.
    :param action_names: optional names of the agent's actions (for printing).
    :param outcome_names: optional names of the outcomes (for printing).
    """

    def __init__(
        self,
        outcome_probs: np.ndarray,
        agent_reward: np.ndarray,
        principal_reward: np.ndarray,
        transitions: np.ndarray | sp.spmatrix,
        initial_state: int = 0,
        gamma: float = 1.0,
        state_features: np.ndarray | None = None,
        action_names: Sequence[str] | None = None,
        outcome_names: Sequence[str] | None = None,
    ) -> None:
        self.outcome_probs = _as_float_array("outcome_probs", outcome_probs, 3)
        n_states, n_actions, n_outcomes = self.outcome_probs.shape
        if n_states < 1 or n_actions < 1 or n_outcomes < 1:
            raise ValueError(f"outcome_probs must have S, A, O >= 1, got shape {self.outcome_probs.shape}")
        check_distributions("outcome_probs", self.outcome_probs)
        self.agent_reward = _as_float_array("agent_reward", agent_reward, 2)
        if self.agent_reward.shape != (n_states, n_actions):
            raise ValueError(f"agent_reward must have shape [S, A] = {(n_states, n_actions)}, "
                             f"got {self.agent_reward.shape}")
        self.principal_reward = _as_float_array("principal_reward", principal_reward, 2)
        if self.principal_reward.shape != (n_states, n_outcomes):
            raise ValueError(f"principal_reward must have shape [S, O] = {(n_states, n_outcomes)}, "
                             f"got {self.principal_reward.shape}")
        self.transitions = self._validate_transitions(transitions, n_states, n_outcomes)
        self.initial_state = check_int("initial_state", initial_state, 0, n_states - 1)
        self.gamma = check_real("gamma", gamma, 0.0, 1.0)
        if state_features is not None:
            state_features = _as_float_array("state_features", state_features, 2)
            if state_features.shape[0] != n_states:
                raise ValueError(f"state_features must have {n_states} rows, got {state_features.shape[0]}")
        self.state_features = state_features
        self.action_names = self._validate_names("action_names", action_names, n_actions)
        self.outcome_names = self._validate_names("outcome_names", outcome_names, n_outcomes)
        self._levels: list[np.ndarray] | None = None
        self._levels_known = False

    @staticmethod
    def _validate_names(name: str, names: Sequence[str] | None, size: int) -> tuple[str, ...] | None:
        if names is None:
            return None
        if len(names) != size:
            raise ValueError(f"{name} must have {size} entries, got {len(names)}")
        return tuple(str(n) for n in names)

    @staticmethod
    def _validate_transitions(transitions: object, n_states: int, n_outcomes: int) -> sp.csr_matrix:
        if sp.issparse(transitions):
            matrix = sp.csr_matrix(transitions, dtype=np.float64)
            if matrix.shape != (n_states * n_outcomes, n_states):
                raise ValueError(f"sparse transitions must have shape [S*O, S] = "
                                 f"{(n_states * n_outcomes, n_states)}, got {matrix.shape}")
            if not np.all(np.isfinite(matrix.data)):
                raise ValueError("transitions must be finite (found NaN or inf)")
        else:
            dense = _as_float_array("transitions", transitions, 3)
            if dense.shape != (n_states, n_outcomes, n_states):
                raise ValueError(f"transitions must have shape [S, O, S] = {(n_states, n_outcomes, n_states)}, "
                                 f"got {dense.shape}")
            matrix = sp.csr_matrix(dense.reshape(n_states * n_outcomes, n_states))
        matrix.eliminate_zeros()
        if matrix.nnz and matrix.data.min() < 0:
            raise ValueError("transitions must be non-negative")
        row_sums = np.asarray(matrix.sum(axis=1)).reshape(n_states, n_outcomes)
        zero = row_sums == 0
        partial = zero.any(axis=1) & ~zero.all(axis=1)
        if np.any(partial):
            s = int(np.flatnonzero(partial)[0])
            raise ValueError(f"transitions of state {s} are zero for some outcomes only; a terminal state has "
                             f"all-zero rows, a non-terminal state rows that sum to 1")
        bad = ~zero & ~np.isclose(row_sums, 1.0, atol=_PROB_ATOL)
        if np.any(bad):
            s, o = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"transitions[{s}, {o}] must sum to 1, sums to {row_sums[s, o]:.6g}")
        return matrix

    @property
    def n_states(self) -> int:
        return self.outcome_probs.shape[0]

    @property
    def n_actions(self) -> int:
        return self.outcome_probs.shape[1]

    @property
    def n_outcomes(self) -> int:
        return self.outcome_probs.shape[2]

    @cached_property
    def terminal(self) -> np.ndarray:
        """``[S]`` boolean mask of terminal states."""
        out_degree = np.diff(self.transitions.indptr).reshape(self.n_states, self.n_outcomes)
        return out_degree.sum(axis=1) == 0

    @cached_property
    def observed_action(self) -> bool:
        """Whether outcomes reveal actions (``O = A`` and ``𝒪(s, a) = δ_a`` everywhere)."""
        if self.n_outcomes != self.n_actions:
            return False
        return bool(np.array_equal(self.outcome_probs, np.broadcast_to(np.eye(self.n_actions),
                                                                       self.outcome_probs.shape)))

    def expected_next(self, values: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """
        Expected value of the next state after each outcome, ``E_{s' ~ T(s, o)} values[s']``.

        :param values: ``[S]`` or ``[S, K]`` state values.
        :param states: optional subset of states (row indices); all states when ``None``.
        :return: ``[len(states), O]`` (or ``[len(states), O, K]``).
        """
        if states is None:
            out = self.transitions @ values
            n = self.n_states
        else:
            rows = (np.asarray(states)[:, None] * self.n_outcomes + np.arange(self.n_outcomes)).reshape(-1)
            out = self.transitions[rows] @ values
            n = len(states)
        return np.asarray(out).reshape((n, self.n_outcomes) + np.shape(values)[1:])

    def topological_levels(self) -> list[np.ndarray] | None:
        """
        Non-terminal states grouped for backward induction: every successor of a state in level ``k``
        is terminal or lies in a level before ``k``. ``None`` when the MDP has a cycle.

        Computed once with sparse matrix operations (no Python loop over states) and cached.
        """
        if self._levels_known:
            return self._levels
        adjacency = self.transitions.tocoo()
        src = adjacency.row // self.n_outcomes
        succ = sp.csr_matrix((np.ones(src.size), (src, adjacency.col)), shape=(self.n_states, self.n_states))
        succ.sum_duplicates()
        succ.data[:] = 1.0
        done = self.terminal.copy()
        # Successors not yet processed; terminal states count as processed from the start.
        remaining = np.diff(succ.indptr) - (succ @ done.astype(np.float64)).astype(np.int64)
        levels: list[np.ndarray] = []
        while not done.all():
            frontier = np.flatnonzero((remaining == 0) & ~done)
            if frontier.size == 0:
                self._levels, self._levels_known = None, True
                return None
            levels.append(frontier)
            done[frontier] = True
            indicator = np.zeros(self.n_states)
            indicator[frontier] = 1.0
            remaining -= (succ @ indicator).astype(np.int64)
        self._levels, self._levels_known = levels, True
        return levels

    def __repr__(self) -> str:
        return (f"PrincipalAgentMDP(S={self.n_states}, A={self.n_actions}, O={self.n_outcomes}, "
                f"gamma={self.gamma}, initial_state={self.initial_state})")
