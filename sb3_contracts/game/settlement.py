"""Settlement of a step under contracts, written once: the recommendation convention, the nudge and the payments.

Every many-agent view settles through this module: the Coin Game's (:func:`settle`) and those of any PettingZoo game
(:func:`settle_actions`, :func:`nudge_contracts`, used by :mod:`~sb3_contracts.game.contract_game`).

Recommendation convention
-------------------------

A contract for agent ``i`` is one payment ``contract[i, a]`` per action ``a`` (four moves in the Coin Game; the
action is observed, so it is paid on directly). Agent ``i`` is paid ``contract[i, a_i]``: only on the action it took.

- A contract **recommends** the action it pays most on (ties go to the lowest action index, as ``argmax``).
- An **all-zero** contract recommends nothing: the agent is free. Its recommendation is reported as ``-1``.
- ``followed[i]`` is ``1`` when agent ``i`` took its recommended action, ``0`` when it did not, and ``-1``
  (undefined) when it had no recommendation; follow rates exclude the ``-1`` entries.

The learned principal always nudges (pays a positive amount on its recommendation), so its
recommendations are always defined.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sb3_contracts.envs.coin_game import CoinGameBatch

#: Default largest payment per action. A coin is worth 1 to its owner (``"parl"``), so paying up to two
#: coins' worth for one move leaves the minimal contracts well inside the box.
DEFAULT_B_MAX = 2.0
#: Marks "no recommendation" in recommended actions and follow flags.
NO_RECOMMENDATION = -1

def recommend(contracts: np.ndarray) -> np.ndarray:
    """
    The recommended action of each contract: the best-paid action, ``-1`` for an all-zero contract.

    :param contracts: ``[..., A]`` payments per action
    :return: ``[...]`` int64 actions in ``-1..A-1``
    """
    best = contracts.argmax(axis=-1)
    return np.where(contracts.max(axis=-1) > 0, best, NO_RECOMMENDATION)


def pay(contracts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """
    The payment of each contract on the action taken.

    :param contracts: ``[..., A]`` payments per action
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


def nudge_contracts(contracts: np.ndarray, nudge: float) -> np.ndarray:
    """
    The contracts with the nudge ``ξ`` added to the payment on each recommendation (all-zero contracts stay free):
    what an agent is offered, and paid if it follows, when the principal nudges on top of its contracts.

    :param contracts: ``[..., A]`` payments per action
    :param nudge: ``ξ >= 0``
    :return: a new array (``contracts`` itself when ``nudge`` is 0)
    """
    if nudge == 0:
        return contracts
    recommended = recommend(contracts)
    bonus = np.eye(contracts.shape[-1])[np.maximum(recommended, 0)] * (recommended >= 0)[..., None]
    return contracts + nudge * bonus


class Settlement(NamedTuple):
    """How contracts settle on the actions taken, every array ``[..., n]``."""

    payments: np.ndarray
    recommended: np.ndarray
    followed: np.ndarray


def settle_actions(contracts: np.ndarray, actions: np.ndarray) -> Settlement:
    """
    Settle contracts on the actions taken: each agent is paid its contract's payment on its action.

    :param contracts: ``[..., A]`` validated contracts
    :param actions: ``[...]`` actions
    :return: payments, recommendations and follow flags
    """
    recommended = recommend(contracts)
    return Settlement(pay(contracts, actions), recommended, follow_flags(recommended, actions))


class ContractStep(NamedTuple):
    """What one step under contracts produced, every array ``[N, n]`` (``truncated``: ``[N]``)."""

    rewards: np.ndarray
    truncated: np.ndarray
    payments: np.ndarray
    recommended: np.ndarray
    followed: np.ndarray


def settle(core: CoinGameBatch, contracts: np.ndarray, actions: np.ndarray) -> ContractStep:
    """
    Step every game and settle the contracts: agent ``i`` is paid ``contracts[g, i, a_i]``. Every view of the
    game under contracts (the principal's, the agents', the evaluation rollouts) steps through this function.

    :param core: the batch of games
    :param contracts: ``[N, n, 4]`` validated contracts
    :param actions: ``[N, n]`` actions
    :return: the game's rewards (without payments), truncations, payments, recommendations and follow flags
    """
    rewards, truncated = core.step(actions)
    return ContractStep(rewards, truncated, *settle_actions(contracts, actions))
