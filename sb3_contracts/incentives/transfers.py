"""Minimal transfers: the cheapest payments, on target actions only, that make a target policy optimal.

Backward in ``h`` with the agent's continuation under the transfers themselves:
``Q_h(s, a) = r^A_h(s, a) + E V_{h+1}``, ``τ_h(s, a*) = max(0, max_{a ≠ a*} Q_h(s, a) + η − Q_h(s, a*))`` on
the target ``a* = π_h(s)`` (zero elsewhere), ``V_h(s) = Q_h(s, a*) + τ_h(s, a*)``. With ``η = 0`` the agent
keeps exactly its transfer-free optimal value ``V^{A,*}``, so the expected payment is
``V^{A,*} − V^{A,π}`` and the principal's net utility ``W(π) − V^{A,*}`` (``tests/test_incentives_exact.py``
checks both on random models). Two facts the mechanism relies on follow: ``τ*_h(s, a) = V^{A,*}_h(s) −
Q^{A,*}_h(s, a)``, the action's gap in the agent's transfer-free problem (so it can be measured with zero
transfers at the other steps), and offering ``τ* + η`` on every target makes each target strictly optimal
by ``η`` (the continuation rises by the same ``η`` per later step in every state).
"""

from __future__ import annotations

import numpy as np

from sb3_contracts.envs.checks import check_distributions
from sb3_contracts.envs.externality import backward_induction
from sb3_contracts.envs.mdp import _as_float_array


def check_margin(margin: object) -> float:
    """A margin: a finite non-negative number (not a bool)."""
    if isinstance(margin, (bool, np.bool_)) or not isinstance(margin, (int, float, np.floating, np.integer)):
        raise TypeError(f"margin must be a number, got {type(margin).__name__}")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be finite and non-negative, got {margin!r}")
    return float(margin)


def _check_inputs(transitions: object, agent_reward: object, target_policy: object
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    transitions = _as_float_array("transitions", transitions, 4)
    horizon, n_states, n_actions, n_next = transitions.shape
    if n_next != n_states or min(horizon, n_states, n_actions) < 1:
        raise ValueError(f"transitions must have shape [H, S, A, S], got {transitions.shape}")
    check_distributions("transitions", transitions)
    agent_reward = _as_float_array("agent_reward", agent_reward, 3)
    if agent_reward.shape != (horizon, n_states, n_actions):
        raise ValueError(f"agent_reward must have shape [H, S, A] = {(horizon, n_states, n_actions)}, "
                         f"got {agent_reward.shape}")
    target = np.asarray(target_policy)
    if target.shape != (horizon, n_states) or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"target_policy must be an integer array of shape [H, S] = {(horizon, n_states)}, "
                         f"got {target.dtype} {target.shape}")
    if target.min() < 0 or target.max() >= n_actions:
        raise ValueError(f"target_policy actions must lie in [0, {n_actions - 1}]")
    return transitions, agent_reward, target


def minimal_transfers(transitions: np.ndarray, agent_reward: np.ndarray, target_policy: np.ndarray,
                      margin: float = 0.0) -> np.ndarray:
    """
    The cheapest action-contingent transfers, paid on the target action only, that make the target policy
    optimal for the agent (strictly by ``margin`` in every step and state when ``margin > 0``).

    :param transitions: ``[H, S, A, S]`` the model's transitions.
    :param agent_reward: ``[H, S, A]`` the agent's own reward.
    :param target_policy: ``[H, S]`` the action to implement in each step and state.
    :param margin: ``η ≥ 0``: how much better than any other action the target must be.
    :return: ``[H, S, A]`` transfers, non-negative, zero off the target.
    """
    transitions, agent_reward, target = _check_inputs(transitions, agent_reward, target_policy)
    margin = check_margin(margin)
    horizon, n_states, n_actions = agent_reward.shape
    transfers = np.zeros(agent_reward.shape)
    rows = np.arange(n_states)
    v = np.zeros(n_states)
    for h in range(horizon - 1, -1, -1):
        q = agent_reward[h] + transitions[h] @ v
        q_target = q[rows, target[h]]
        others = q.copy()
        others[rows, target[h]] = -np.inf
        best_other = others.max(axis=1) if n_actions > 1 else np.full(n_states, -np.inf)
        pay = np.maximum(0.0, best_other + margin - q_target)
        transfers[h, rows, target[h]] = pay
        v = q_target + pay
    return transfers


def action_gaps(transitions: np.ndarray, agent_reward: np.ndarray) -> np.ndarray:
    """
    ``[H, S, A]``: each action's gap ``V^{A,*}_h(s) − Q^{A,*}_h(s, a)`` in the agent's transfer-free problem,
    which is the minimal transfer implementing that action whenever the later targets are paid minimally.

    :param transitions: ``[H, S, A, S]``.
    :param agent_reward: ``[H, S, A]``.
    """
    q, v = backward_induction(np.asarray(transitions, dtype=np.float64), np.asarray(agent_reward, dtype=np.float64))
    return v[:-1, :, None] - q
