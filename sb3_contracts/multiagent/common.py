"""What every multi-agent view shares: the recommendation convention, payments, and the embedded principal.

Recommendation convention
-------------------------

A contract for agent ``i`` is four payments ``contract[i, a]``, one per move ``a`` (the action is observed,
so it is paid on directly). Agent ``i`` is paid ``contract[i, a_i]``: only on the action it took.

- A contract **recommends** the action it pays most on (ties go to the lowest action index, as ``argmax``).
- An **all-zero** contract recommends nothing: the agent is free. Its recommendation is reported as ``-1``.
- ``followed[i]`` is ``1`` when agent ``i`` took its recommended action, ``0`` when it did not, and ``-1``
  (undefined) when it had no recommendation; follow rates exclude the ``-1`` entries.

The learned principal always nudges (pays a positive amount on its recommendation), so its
recommendations are always defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sb3_contracts.contracts import check_b_max, check_contract
from sb3_contracts.envs.coin_game import N_ACTIONS, CoinGameBatch

#: Default largest payment per action. A coin is worth 1 to its owner (``"parl"``), so paying up to two
#: coins' worth for one move leaves the minimal contracts well inside the box.
DEFAULT_B_MAX = 2.0
#: Marks "no recommendation" in recommended actions and follow flags.
NO_RECOMMENDATION = -1

#: ``principal(global_state [N, 2n, G, G], agent_obs [N, n, 4 G G]) -> contracts [N, n, 4]``. Both inputs are
#: buffers that the next step overwrites: copy them to keep them.
Principal = Callable[[np.ndarray, np.ndarray], np.ndarray]


def recommend(contracts: np.ndarray) -> np.ndarray:
    """
    The recommended action of each contract: the best-paid action, ``-1`` for an all-zero contract.

    :param contracts: ``[..., 4]`` payments per action
    :return: ``[...]`` int64 actions in ``-1..3``
    """
    best = contracts.argmax(axis=-1)
    return np.where(contracts.max(axis=-1) > 0, best, NO_RECOMMENDATION)


def pay(contracts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """
    The payment of each contract on the action taken.

    :param contracts: ``[..., 4]`` payments per action
    :param actions: ``[...]`` actions taken
    :return: ``[...]`` payments ``contracts[..., actions]``
    """
    return np.take_along_axis(contracts, actions[..., None].astype(np.intp), axis=-1)[..., 0]


def follow_flags(recommended: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """
    Whether each agent followed its recommendation: ``1``, ``0``, or ``-1`` when it had none.

    :param recommended: ``[...]`` recommended actions (``-1`` = none), see :func:`recommend`
    :param actions: ``[...]`` actions taken
    :return: ``[...]`` int8 flags
    """
    flags = (recommended == actions).astype(np.int8)
    flags[recommended == NO_RECOMMENDATION] = NO_RECOMMENDATION
    return flags


def make_principal(principal: Principal | np.ndarray | None, n_games: int, n_agents: int, b_max: float) -> Principal:
    """
    Turn ``principal`` into a callable whose contracts are validated at every call.

    :param principal: a callable ``(global_state, agent_obs) -> contracts [N, n, 4]``, a fixed array (one
        contract per agent ``[n, 4]``, or per game and agent ``[N, n, 4]``), or ``None`` (no contracts)
    :param n_games: number of games ``N``
    :param n_agents: number of agents ``n``
    :param b_max: the largest payment allowed
    :return: the principal as a callable returning float64 ``[N, n, 4]``
    """
    shape = (n_games, n_agents, N_ACTIONS)
    b_max = check_b_max(b_max)
    meaning = "one payment per game, agent and action"
    if principal is None:
        zeros = np.zeros(shape)
        return lambda global_state, agent_obs: zeros
    if callable(principal):
        def offer(global_state: np.ndarray, agent_obs: np.ndarray) -> np.ndarray:
            return check_contract(principal(global_state, agent_obs), shape, b_max, "principal's contracts", meaning)

        return offer
    fixed = np.asarray(principal, dtype=np.float64)
    if fixed.shape == shape[1:]:
        fixed = np.broadcast_to(fixed, shape)
    fixed = check_contract(fixed, shape, b_max, "principal", f"or {shape[1:]}; {meaning}")
    return lambda global_state, agent_obs: fixed


class ContractStep(NamedTuple):
    """What one step under contracts produced, every array ``[N, n]`` (``truncated``: ``[N]``)."""

    rewards: np.ndarray
    truncated: np.ndarray
    payments: np.ndarray
    recommended: np.ndarray
    followed: np.ndarray


def step_with_contracts(core: CoinGameBatch, contracts: np.ndarray, actions: np.ndarray) -> ContractStep:
    """
    Step every game and settle the contracts: agent ``i`` is paid ``contracts[g, i, a_i]``.

    :param core: the batch of games
    :param contracts: ``[N, n, 4]`` validated contracts
    :param actions: ``[N, n]`` actions
    :return: the game's rewards (without payments), truncations, payments, recommendations and follow flags
    """
    rewards, truncated = core.step(actions)
    recommended = recommend(contracts)
    return ContractStep(rewards, truncated, pay(contracts, actions), recommended, follow_flags(recommended, actions))
