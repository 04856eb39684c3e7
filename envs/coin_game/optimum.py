"""The Coin Game's exact cooperative optimum: the most social welfare any joint policy can get, by dynamic programming.

The two-player game is a small finite-horizon MDP when both players are controlled together: the state is
``(position_0, position_1, coin cell, coin colour)`` (``G^6 * 2`` states: 1,458 on 3x3, 235,298 on 7x7) and the
time step, the joint action one of 16 moves. Backward induction over the ``max_steps`` steps with the game's own
tables (:func:`~sb3_contracts.envs.coin_game.move_table`, :func:`~sb3_contracts.envs.coin_game.event_tables`; a
collected coin respawns uniformly on a cell no player occupies) gives the optimal expected welfare from every state,
averaged over the game's start distribution (players and coin on distinct uniform cells, uniform first colour).
Under ``contested="random"`` the step's welfare is its expectation over the winner of a contested coin
(:func:`~sb3_contracts.envs.coin_game.expected_event_stats`: with both players on the coin each wins with
probability 1/2); the next state does not depend on the winner (the coin is gone and respawns either way), so this
expectation is exact.

This is the reference a welfare ratio needs: no principal, whatever it pays, can make the agents' *welfare*
exceed it, and a learned cooperative baseline that falls short of it is undertrained. Example::

    from sb3_contracts.envs.coin_game.optimum import optimal_welfare

    optimal_welfare("3x3")   # 13.90 per episode (greedy-selfish play: 8.16); "7x7": 15.25 (8.88)
    optimal_welfare("3x3", contested="all")   # 15.81 (greedy-selfish play: 15.54); "7x7": 16.66 (14.89)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .core import N_ACTIONS, CoinGameConfig, coin_game_config, event_tables, expected_event_stats, move_table

#: Largest (state, joint action) table the backward induction builds (about 8 bytes each, a few arrays at once).
MAX_JOINT_ENTRIES = 50_000_000


def _free_mean(values: np.ndarray) -> np.ndarray:
    """``values [C, C, C, k]`` → ``[C, C, k]``: mean over the coin cells no player occupies."""
    n_cells = values.shape[0]
    total = values.sum(axis=2)
    cells = np.arange(n_cells)
    on_first = values[cells[:, None], cells[None, :], cells[:, None]]  # coin under player 0
    on_second = values[cells[:, None], cells[None, :], cells[None, :]]  # coin under player 1
    same = cells[:, None] == cells[None, :]
    excluded = on_first + np.where(same[..., None], 0.0, on_second)
    n_free = n_cells - np.where(same, 1, 2)
    return (total - excluded) / n_free[..., None]


@functools.cache
def optimal_values(grid_size: int, max_steps: int, reward_rule: str, contested: str) -> np.ndarray:
    """
    Optimal expected welfare-to-go at the start of an episode, per state.

    :param grid_size: side of the grid
    :param max_steps: episode length
    :param reward_rule: ``"parl"`` or ``"lola"``
    :param contested: ``"all"`` or ``"random"`` (who collects a coin both players reach)
    :return: ``V_0 [C, C, C, 2]`` indexed by ``(position_0, position_1, coin, colour)``, ``C = grid_size**2``
    """
    n_cells = grid_size**2
    if n_cells**3 * 2 * N_ACTIONS**2 > MAX_JOINT_ENTRIES:
        raise ValueError(f"grid_size={grid_size}: the exact optimum's backward induction needs "
                         f"{n_cells**3 * 2 * N_ACTIONS**2:,} state-action entries per array (at most "
                         f"{MAX_JOINT_ENTRIES:,}); it is meant for the paper's grids (3x3, 7x7)")
    moves = move_table(grid_size).reshape(n_cells, N_ACTIONS)
    _, side = event_tables(2, reward_rule)
    welfare, next_color = expected_event_stats(2, reward_rule, contested)[:2].sum(axis=0), side[0]
    cells = np.arange(n_cells)
    # after moves: destinations [C, A] for each player, broadcast to [p0, p1, coin, colour, a0, a1]
    dest0 = moves[:, None, None, None, :, None]
    dest1 = moves[None, :, None, None, None, :]
    coin = cells[None, None, :, None, None, None]
    color = np.arange(2)[None, None, None, :, None, None]
    picked0, picked1 = dest0 == coin, dest1 == coin
    code = color * 4 + picked0 * 1 + picked1 * 2
    reward = welfare[code]
    collected = picked0 | picked1
    shape = np.broadcast_shapes(dest0.shape, dest1.shape, coin.shape, color.shape)
    dest0, dest1, coin, color = (np.broadcast_to(x, shape) for x in (dest0, dest1, coin, color))
    new_color = next_color[code]
    values = np.zeros((n_cells, n_cells, n_cells, 2))
    for _ in range(max_steps):
        respawned = _free_mean(values)  # [C, C, 2]: expected value after a respawn with each colour
        following = np.where(collected, respawned[dest0, dest1, new_color], values[dest0, dest1, coin, color])
        values = (reward + following).reshape(*shape[:4], -1).max(axis=-1)
    return values


def optimal_welfare(config: CoinGameConfig | str | None = None, **game: Any) -> float:
    """
    The exact optimal expected social welfare per episode of the two-player Coin Game (joint control).

    :param config: the game (:class:`~sb3_contracts.envs.coin_game.CoinGameConfig`), or a preset's name
        (``"3x3"``, ``"7x7"``), or ``None`` with the game's fields as keywords
    :param game: :class:`~sb3_contracts.envs.coin_game.CoinGameConfig` fields (with a preset's name: the others)
    :return: the mean over the start distribution of the optimal welfare
    :raise ValueError: for other than two players
    """
    if isinstance(config, str):
        config, game = None, {"preset": config, **game}
    config = coin_game_config(config, **game)
    if config.n_agents != 2:
        raise ValueError(f"n_agents: the exact optimum is known for two players only, got {config.n_agents}")
    values = optimal_values(config.grid_size, config.max_steps, config.reward_rule, config.contested)
    n_cells = values.shape[0]
    p0, p1, coin = np.meshgrid(*(np.arange(n_cells),) * 3, indexing="ij")
    distinct = (p0 != p1) & (p0 != coin) & (p1 != coin)
    return float(values[distinct].mean())


__all__ = ["optimal_values", "optimal_welfare"]
