"""Random binary game trees: the paper's single-agent benchmark (Ivanov et al. 2024, Figure 3).

A complete binary tree of the given depth: ``2**depth - 1`` decision states and ``2**depth`` terminal
leaves, stored in heap order (state ``i`` has children ``2i + 1`` and ``2i + 2``; the root is 0). Two
agent actions (``a0`` low effort, ``a1`` high effort) and two outcomes; ``P(o1 | a0) = 0.1``,
``P(o1 | a1) = 0.9``; outcome ``o0`` leads to the left child and ``o1`` to the right child; ``γ = 1``.
Per decision state, independently: ``r(s, a0) = 0``, ``r^p(s, o0) = 0``, ``r(s, a1) = -u`` with
``v ~ U[0, 1], u ~ U[0, 1 - v]``, and ``r^p(s, o1) = u'`` with ``v' ~ U[0, 2], u' ~ U[0, 2 - v']``.

The transitions are stored sparsely, so trees of depth 20 (about two million states) fit easily.
"""

from __future__ import annotations

import numpy as np

from .checks import check_int, check_seed
from .mdp import PrincipalAgentMDP, transitions_from_next_states

#: ``P(o1 | a)`` for the low- and high-effort actions.
P_SUCCESS = (0.1, 0.9)


def random_binary_tree(depth: int, seed: int | None = None) -> PrincipalAgentMDP:
    """
    Sample the paper's random binary game tree.

    :param depth: number of decision levels (the paper uses 10); between 1 and 24.
    :param seed: seed of the NumPy random generator (``None`` for fresh entropy).
    :return: the tree as a :class:`PrincipalAgentMDP` with initial state 0 (the root).
    """
    check_int("depth", depth, 1, 24)
    rng = np.random.default_rng(check_seed(seed))
    n_decision = 2**depth - 1
    n_states = 2 * n_decision + 1

    v = rng.uniform(0.0, 1.0, n_decision)
    effort_cost = rng.uniform(0.0, 1.0 - v)
    v_principal = rng.uniform(0.0, 2.0, n_decision)
    success_reward = rng.uniform(0.0, 2.0 - v_principal)

    agent_reward = np.zeros((n_states, 2))
    agent_reward[:n_decision, 1] = -effort_cost
    principal_reward = np.zeros((n_states, 2))
    principal_reward[:n_decision, 1] = success_reward

    p1 = np.asarray(P_SUCCESS)
    outcome_probs = np.broadcast_to(np.stack([1.0 - p1, p1], axis=1), (n_states, 2, 2)).copy()

    next_states = np.full((n_states, 2), -1, dtype=np.int64)
    parents = np.arange(n_decision)
    next_states[:n_decision, 0] = 2 * parents + 1
    next_states[:n_decision, 1] = 2 * parents + 2

    return PrincipalAgentMDP(
        outcome_probs,
        agent_reward,
        principal_reward,
        transitions_from_next_states(next_states, n_states),
        initial_state=0,
        gamma=1.0,
        action_names=("a0", "a1"),
        outcome_names=("o0", "o1"),
    )


def decision_states(depth: int) -> np.ndarray:
    """Indices of the non-terminal states of a tree of the given depth."""
    return np.arange(2**depth - 1)
