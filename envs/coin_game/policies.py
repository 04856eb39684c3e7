"""Scripted Coin Game policies, vectorised over the games of a :class:`~.core.CoinGameBatch`.

Each policy maps ``(core, rng)`` to actions ``[n_games, n_agents]`` with no loop over games or
players (moves come from per-grid lookup tables):

- ``random``: uniform over the four moves.
- ``greedy_selfish``: every player takes a first step of a shortest toroidal path to the coin,
  whatever its colour (uniform among the shortest-path first steps, independently per player).
- ``greedy_own``: the coin's owner steps toward it as above. Every other player approaches the
  coin too but steps onto it only in the same step as the owner, and only where joining costs the
  owner nothing: under ``"parl"`` with ``contested="all"`` (owner +1, joiner +0.2). Under ``"lola"``
  joining would cost the owner -2, and under ``contested="random"`` the joiner would win the coin
  half the time (two players: 0.6 of welfare in expectation instead of 1 under ``"parl"``, 0 instead
  of 1 under ``"lola"``), so there it never joins. When it may not step onto the coin it takes the
  move that keeps it closest to the coin without landing on it (there is no "stay" action). The
  players of a game share their tie-breaks, so players that share a cell keep moving together.
  Hence a coin is only ever collected by its owner, except under ``"parl"``/``"all"`` where a
  joiner collects it *with* the owner.

Why ``greedy_own`` joins the owner under ``"parl"``/``"all"``: since all players on the coin collect
it, greedy-selfish players *herd*: once they share a cell they chase the same coin and take most coins
together, which is worth +1.2 per coin. A greedy-own variant that merely kept off others' coins (greedy-own
as it plays under ``"lola"``) earns +1 per coin at about the same speed and loses to the herd (on 3x3/20
steps: 12.63 vs 15.54 welfare per episode; on 7x7/50: 13.85 vs 14.89). Joining the owner recovers the
+0.2 without ever taking a coin from its owner, and greedy-own then earns more welfare than
greedy-selfish under both rules (``evaluate_policy`` with 4096 games, seeds 0-2: 3x3 parl 15.76 vs
15.54, 7x7 parl 16.02 vs 14.89; lola 12.6 vs 0.0 on 3x3 and 13.8 vs 0.0 on 7x7, as every taken coin
costs its owner 2). Under ``contested="random"`` herding no longer pays (a shared coin is worth 0.6
under ``"parl"``): greedy-own, which then never joins, gets 12.63 (3x3) and 13.85 (7x7) under both
rules (its owner collects every coin alone, +1 under either rule) while greedy-selfish falls to 8.16
and 8.88 under ``"parl"`` and stays near 0 under ``"lola"`` (with two players a shared coin is worth 0
in expectation under both ``contested`` modes). The README's Coin Game section has the whole table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .core import MOVES, N_ACTIONS, CoinGameBatch, move_table

Policy = Callable[[CoinGameBatch, np.random.Generator], np.ndarray]


def _choice_table(allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Turn a mask of allowed actions ``[..., 4]`` into lists of the allowed actions, padded, and
    their count (float), so that a uniform pick is ``actions[floor(u * count)]``.
    """
    actions = np.argsort(~allowed, axis=-1, kind="stable").astype(np.intp)
    count = allowed.sum(axis=-1).astype(np.float64)
    return actions, count


@functools.cache
def toward_table(grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """
    First steps of the shortest toroidal paths between every pair of cells.

    :param grid_size: side of the grid
    :return: ``actions [G*G, G*G, 4]`` (indexed by ``[from, to]``, padded) and ``count [G*G, G*G]``;
        from a cell to itself every move counts
    """
    g = grid_size
    y, x = np.divmod(np.arange(g * g), g)
    dy = (y[None, :] - y[:, None]) % g  # [from, to], downward distance
    dx = (x[None, :] - x[:, None]) % g  # rightward distance
    wanted = {  # MOVES order: right, left, down, up; a tie (distance g/2) allows both ways
        (0, 1): (dx > 0) & (2 * dx <= g),
        (0, -1): (dx > 0) & (2 * dx >= g),
        (1, 0): (dy > 0) & (2 * dy <= g),
        (-1, 0): (dy > 0) & (2 * dy >= g),
    }
    allowed = np.stack([wanted[move] for move in MOVES], axis=-1)
    allowed[np.arange(g * g), np.arange(g * g)] = True
    return _choice_table(allowed)


def _torus_distance(grid_size: int) -> np.ndarray:
    g = grid_size
    y, x = np.divmod(np.arange(g * g), g)
    dy = np.abs(y[:, None] - y[None, :])
    dx = np.abs(x[:, None] - x[None, :])
    return np.minimum(dy, g - dy) + np.minimum(dx, g - dx)


@functools.cache
def hover_table(grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Moves that stay as close as possible to a cell (the coin) without landing on it.

    :param grid_size: side of the grid
    :return: ``actions [G*G, G*G, 4]`` (indexed by ``[from, coin]``, padded) and ``count``
    """
    n_cells = grid_size**2
    destination = move_table(grid_size).reshape(n_cells, N_ACTIONS)
    distance = _torus_distance(grid_size)[destination[:, None, :], np.arange(n_cells)[None, :, None]]
    distance[distance == 0] = 2 * n_cells  # landing on the coin is never a hover move
    return _choice_table(distance == distance.min(axis=-1, keepdims=True))


def _pick(table: tuple[np.ndarray, np.ndarray], pair: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Uniform choice among the table's actions for each ``from * n_cells + to`` pair, given ``u``."""
    actions, count = table
    slot = (u * count.reshape(-1)[pair]).astype(np.intp)
    return actions.reshape(-1, N_ACTIONS)[pair, slot]


def random_policy(core: CoinGameBatch, rng: np.random.Generator) -> np.ndarray:
    """
    Uniformly random moves.

    :param core: the batch of games
    :param rng: random generator
    :return: actions ``[n_games, n_agents]``
    """
    return rng.integers(0, N_ACTIONS, (core.n_games, core.n_agents))


def greedy_selfish_policy(core: CoinGameBatch, rng: np.random.Generator) -> np.ndarray:
    """
    Every player steps along a shortest toroidal path to the coin, whatever its colour.

    :param core: the batch of games
    :param rng: random generator (breaks ties between shortest paths, independently per player)
    :return: actions ``[n_games, n_agents]``
    """
    pair = core.positions * core.n_cells + core.coin_pos[:, None]
    return _pick(toward_table(core.grid_size), pair, rng.random(pair.shape))


def greedy_own_policy(core: CoinGameBatch, rng: np.random.Generator) -> np.ndarray:
    """
    The owner of the coin steps toward it; the others approach it and step onto it only together
    with the owner, and only under ``"parl"`` with ``contested="all"`` (see the module docstring).

    :param core: the batch of games
    :param rng: random generator (tie-breaks are shared by the players of a game)
    :return: actions ``[n_games, n_agents]``
    """
    coin = core.coin_pos[:, None]
    pair = core.positions * core.n_cells + coin
    toward = _pick(toward_table(core.grid_size), pair, rng.random((core.n_games, 1)))
    lands = move_table(core.grid_size)[core.positions * N_ACTIONS + toward] == coin
    owner = np.arange(core.n_agents)[None, :] == core.coin_color[:, None]
    owner_lands = (lands & owner).any(axis=1, keepdims=True)
    joining_is_free = core.reward_rule == "parl" and core.contested == "all"
    may_land = owner | (owner_lands & joining_is_free)
    hover = _pick(hover_table(core.grid_size), pair, rng.random((core.n_games, 1)))
    return np.where(lands & ~may_land, hover, toward)


POLICIES: dict[str, Policy] = {
    "random": random_policy,
    "greedy_selfish": greedy_selfish_policy,
    "greedy_own": greedy_own_policy,
}


def evaluate_policy(
    policy: Policy | str, n_games: int = 64, n_episodes: int = 1, seed: int = 0, **game_kwargs
) -> dict[str, float]:
    """
    Play whole episodes of ``n_games`` games in parallel and average their statistics.

    :param policy: a policy or the name of one in ``POLICIES``
    :param n_games: games played in parallel
    :param n_episodes: rounds of ``n_games`` episodes
    :param seed: seed of the games and of the policy's random generator
    :param game_kwargs: arguments of :class:`CoinGameBatch` (``preset``, ``reward_rule``, ...)
    :return: mean ``social_welfare``, ``pick_speed`` and ``pick_own_color`` (means over players
        and episodes; ``pick_own_color`` ignores players with no pick) and the number of episodes
    """
    policy = POLICIES[policy] if isinstance(policy, str) else policy
    core = CoinGameBatch(n_games=n_games, seed=seed, **game_kwargs)
    rng = np.random.default_rng(seed + 1)
    stats: list[dict[str, np.ndarray]] = []
    for _ in range(n_episodes):
        core.reset()
        for _ in range(core.max_steps):
            core.step(policy(core, rng))
        stats.append(core.episode_stats())
    return {
        "social_welfare": float(np.mean([s["social_welfare"] for s in stats])),
        "pick_speed": float(np.mean([s["pick_speed"] for s in stats])),
        "pick_own_color": float(np.nanmean([s["pick_own_color"] for s in stats])),
        "episodes": n_games * n_episodes,
    }
