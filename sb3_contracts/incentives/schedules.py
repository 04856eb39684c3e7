"""Reference transfer schedules the mechanism is measured against: no incentives, the oracle ``τ*``, and the first
system's SPE contracts.

The first system's principal-agent MDP has stationary states, outcomes and contracts per outcome. A
finite-horizon externality model with observed actions is one of them once time is unrolled: a state per
``(h, s)`` plus one terminal state, outcomes = actions (``𝒪(s, a) = δ_a``), the principal's reward
``r^P_h(s, a)``. Its subgame-perfect contracts (:func:`sb3_contracts.solvers.solve_spe`) are the transfers of
a principal who maximises its own net reward against a best-responding agent.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sb3_contracts.envs.externality import ExternalityMDP
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.incentives.exact import welfare_optimum
from sb3_contracts.incentives.transfers import minimal_transfers


def no_incentives(model: ExternalityMDP) -> np.ndarray:
    """``[H, S, A]`` zeros."""
    return np.zeros(model.shape)


def oracle_transfers(model: ExternalityMDP, margin: float = 0.0) -> np.ndarray:
    """``τ*`` (+ ``margin``) on the welfare-optimal targets: the minimal transfers computed from the model."""
    return minimal_transfers(model.transitions, model.agent_reward, welfare_optimum(model).policy, margin)


def unrolled_contract_mdp(model: ExternalityMDP, initial_state: int = 0) -> PrincipalAgentMDP:
    """
    The model as the first system's :class:`~sb3_contracts.envs.PrincipalAgentMDP` with observed actions.

    State ``h * S + s`` is ``(h, s)``; state ``H * S`` is terminal. The first system starts in one state, so
    the unrolled MDP starts in ``(0, initial_state)``; contracts are computed for every state anyway.

    :param model: the externality model.
    :param initial_state: the start state ``s``.
    """
    horizon, n_states, n_actions = model.shape
    total = horizon * n_states + 1
    outcome_probs = np.zeros((total, n_actions, n_actions))
    outcome_probs[:] = np.eye(n_actions)
    agent_reward = np.zeros((total, n_actions))
    agent_reward[:-1] = model.agent_reward.reshape(-1, n_actions)
    principal_reward = np.zeros((total, n_actions))
    principal_reward[:-1] = model.principal_reward.reshape(-1, n_actions)
    dense = np.zeros((horizon * n_states, n_actions, total))
    for h in range(horizon):
        block = slice(h * n_states, (h + 1) * n_states)
        if h + 1 < horizon:
            dense[block, :, (h + 1) * n_states:(h + 2) * n_states] = model.transitions[h]
        else:
            dense[block, :, -1] = 1.0
    transitions = sp.vstack([sp.csr_matrix(dense.reshape(-1, total)), sp.csr_matrix((n_actions, total))])
    return PrincipalAgentMDP(outcome_probs, agent_reward, principal_reward, transitions.tocsr(),
                             initial_state=initial_state)


def spe_transfers(model: ExternalityMDP) -> np.ndarray:
    """``[H, S, A]``: the first system's SPE contracts of :func:`unrolled_contract_mdp` as transfers."""
    from sb3_contracts.solvers import solve_spe

    horizon, n_states, n_actions = model.shape
    solution = solve_spe(unrolled_contract_mdp(model))
    return solution.contracts[:-1].reshape(horizon, n_states, n_actions)
