"""Small hand-made principal-agent MDPs from the paper."""

from __future__ import annotations

import numpy as np

from .mdp import PrincipalAgentMDP

#: Probability that an action produces its own outcome (aL → L, aR → R) in the two-state example.
OUTCOME_ACCURACY = 0.9
#: The agent's effort cost of aL and the principal's reward on outcome L in the two-state example.
EFFORT_COST = 4.0 / 5.0
PRINCIPAL_REWARD_L = 14.0 / 9.0


def two_state_example(gamma: float = 0.9, horizon: int | None = None) -> PrincipalAgentMDP:
    """
    The two-state example of the paper's Figure 1.

    States ``sL`` (0) and ``sR`` (1); actions ``aL`` (costs the agent 4/5) and ``aR`` (free); outcome
    ``L`` or ``R`` follows the chosen side with probability 0.9; the principal earns 14/9 on outcome
    ``L``; outcome ``L`` moves to ``sL`` and ``R`` to ``sR``. Both states have the same rewards, so the
    one-step minimal contract for ``aL`` pays ``0.8 / 0.8 = 1`` on ``L``: the principal keeps
    ``0.9 * (14/9 - 1) = 0.5`` and the agent ``-0.8 + 0.9 = 0.1``.

    :param gamma: discount factor (used by the cyclic version; must be < 1 there).
    :param horizon: ``None`` for the cyclic (infinite-horizon, discounted) MDP; an integer ``H`` to
        unroll it into ``H`` steps: state ``2t + side`` at step ``t``, and one terminal state ``2H``.
    :return: the example MDP, starting in ``sL``.
    """
    p = OUTCOME_ACCURACY
    probs_by_action = np.array([[p, 1 - p], [1 - p, p]])
    agent_by_action = np.array([-EFFORT_COST, 0.0])
    principal_by_outcome = np.array([PRINCIPAL_REWARD_L, 0.0])
    names = {"action_names": ("aL", "aR"), "outcome_names": ("L", "R")}
    if horizon is None:
        if gamma >= 1.0:
            raise ValueError(f"the cyclic two-state example needs gamma < 1, got {gamma}; "
                             "pass horizon=H for a finite-horizon version")
        n_states = 2
        transitions = np.zeros((n_states, 2, n_states))
        transitions[:, 0, 0] = 1.0
        transitions[:, 1, 1] = 1.0
    else:
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer or None, got {horizon!r}")
        n_states = 2 * horizon + 1
        transitions = np.zeros((n_states, 2, n_states))
        t = np.arange(horizon - 1)
        for side in (0, 1):
            transitions[2 * t + side, 0, 2 * (t + 1)] = 1.0
            transitions[2 * t + side, 1, 2 * (t + 1) + 1] = 1.0
            transitions[2 * (horizon - 1) + side, :, 2 * horizon] = 1.0
        # The terminal state has all-zero transition rows.
        transitions[2 * horizon] = 0.0
    return PrincipalAgentMDP(
        outcome_probs=np.broadcast_to(probs_by_action, (n_states, 2, 2)).copy(),
        agent_reward=np.broadcast_to(agent_by_action, (n_states, 2)).copy(),
        principal_reward=np.broadcast_to(principal_by_outcome, (n_states, 2)).copy(),
        transitions=transitions,
        initial_state=0,
        gamma=gamma,
        **names,
    )
