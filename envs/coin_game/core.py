"""The Coin Game's batched core: a fast, faithful multi-agent social dilemma.

Two to four players walk on a toroidal grid on which one coin lies at a time. Each player owns a
colour; picking a coin of one's own colour is good for oneself, picking another's coin hurts the
owner (or forgoes the owner's larger reward), so selfish play lowers social welfare. This is the
rllib/LOLA Coin Game as used by Ivanov et al. (2024), section 4 of the design notes.

This module is the core: :class:`CoinGameBatch`, ``n_games`` games held in numpy arrays and
advanced together; ``step`` has no Python loop over games or agents. Observations are lazy: ``step``
returns rewards and truncations only, :meth:`CoinGameBatch.observe` and
:meth:`CoinGameBatch.global_state` build the observations into preallocated buffers on request. The
PettingZoo env (:mod:`~sb3_contracts.envs.coin_game.coin_game_v0`) is a thin view over a batch of one
game, and the scripted policies (:mod:`~sb3_contracts.envs.coin_game.policies`) act on the core.

Mechanics (pinned)
------------------

- **Grid**: ``grid_size x grid_size`` torus; cells are numbered ``y * grid_size + x`` (row ``y``
  from the top, column ``x`` from the left). Moving off one edge enters at the opposite edge.
- **Actions**: ``Discrete(4)``, the ordering of the LOLA implementation: ``0`` right (x+1),
  ``1`` left (x-1), ``2`` down (y+1), ``3`` up (y-1). There is no "stay" action. Actions must be
  integers (integer dtype); anything else raises ``ValueError``.
- **Start**: players and the coin are placed on ``n_agents + 1`` distinct uniformly random cells;
  the first coin colour is uniform among the players.
- **Players may share cells**; there are no collisions.
- **Order within a step**: all players move simultaneously, then the players standing on the
  coin collect it (who among them collects: ``contested`` below), then, if collected, a new coin
  appears *in the same step* on a uniformly random cell that no player occupies, with the next
  colour in the cycle ``0 -> 1 -> ... -> n_agents - 1 -> 0`` (for two players: alternating). The
  new coin is visible in the observation returned by that step and can be collected from the
  next step on. Hence, after every step, the coin never lies under a player.
- **A contested coin** (two or more players on it after moving; ``contested``):

  - ``"random"`` (the public reproduction's rule, and the default: :class:`CoinGameConfig`): exactly one
    of them, the *winner*, collects it, chosen uniformly at random; the others on the coin collect
    nothing, as if they stood elsewhere (no reward, no pick in the statistics). A coin reached by one
    player alone is that player's. Either way the coin is gone, so the respawn and the colour cycle
    are the same under both rules.
  - ``"all"`` (rllib's default), by name: every player on the coin collects it.

  The rewards below then apply to the *collectors*: everyone on the coin under ``"all"``, the
  winner alone under ``"random"``. Reproducibility: the winners come from the batch's own
  generator (:attr:`CoinGameBatch.rng`), as one ``rng.random(m)`` for the ``m`` games whose coin
  is contested in this step (in game order), drawn only if ``m > 0`` and before the respawn's
  draw; a game's winner is the ``floor(u * k)``-th (in player order) of its ``k`` players on the
  coin. ``"all"`` draws nothing for it: its trajectories for a given seed are those of the game
  before the option existed. (Drawing for the contested games alone, rather than one number per
  game, keeps large batches fast: few of their games are contested in a step.)
- **Rewards** (``reward_rule``), for the collectors:

  - ``"parl"`` (the paper's rule): +1 to a player that collects a coin of its own colour, +0.2 to
    a player that collects another player's coin; nobody is penalised.
  - ``"lola"`` (the classic rule): +1 to every player that collects the coin, whatever its
    colour; the owner of the coin gets -2 if at least one *other* player collected it (once per
    coin, however many others collected it). Under ``"all"``, when the owner and another player
    collect it together, the owner gets +1 - 2 = -1 and the other +1. Under ``"random"`` the
    owner's -2 applies exactly when the winner is another player, whether or not the owner stood
    on the coin too (then the owner gets -2 and the winner +1; if the owner wins: +1 and 0).

  So a coin that the owner and one other player reach together is worth, in expectation, 1.2 of
  welfare under ``"parl"``/``"all"`` but (1 + 0.2) / 2 = 0.6 under ``"parl"``/``"random"``: only
  ``"random"`` makes grabbing another's coin destroy welfare under the paper's rule. Under
  ``"lola"`` with two players it is worth 0 in expectation under both.

- **Episode end**: truncation after exactly ``max_steps`` steps (PettingZoo ``truncations``, SB3
  ``TimeLimit.truncated``); the game never terminates.
- **Presets**: ``PRESETS["3x3"]`` = 3x3 grid / 20 steps (paper's appendix), ``PRESETS["7x7"]`` =
  7x7 / 50 steps (paper's main experiment). ``preset=...`` fills ``grid_size`` and
  ``max_steps``; explicitly passed values override the preset. Without a preset: 3x3 / 20.

Observations (agent-centric, so that agents can share parameters)
-----------------------------------------------------------------

Player ``i`` sees four ``float32`` channels of shape ``(grid_size, grid_size)``, whatever the
number of players: ``0`` its own position, ``1`` the positions of all other players (1 where at
least one other player stands: with more than two players the others are aggregated, which keeps
``C = 4`` and the network input independent of ``n_agents``), ``2`` the coin if it has player
``i``'s colour, ``3`` the coin if it has any other colour. ``obs_format="grid"`` gives
``(4, G, G)`` (channels first); ``"flat"`` gives the same values flattened to ``(4 * G * G,)``.

The **global state** (for a principal that sees everything) has ``2 * n_agents`` channels: one
position channel per player (channel ``i`` = player ``i``), then one coin channel per colour
(channel ``n_agents + c`` holds the coin when its colour is ``c``).

Episode statistics
------------------

Tracked per game and player in arrays, reported by :meth:`CoinGameBatch.episode_stats` and in the
ParallelEnv's ``infos`` at the last step: ``episode_return``, ``coins_picked`` (coins the player
*collected*: under ``contested="random"`` a player that stood on a coin but lost the draw has not
picked it, so the players' picks add up to the coins collected; under ``"all"`` a shared coin
counts once for each collector), ``own_coins_picked``, ``pick_speed`` (coins picked per step),
``pick_own_color`` (own-colour picks divided by picks; **NaN when a player picked no coin**, so
average it with ``np.nanmean``), ``social_welfare`` (sum of all players' returns) and
``episode_length``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..checks import check_int, check_seed

PRESETS: dict[str, dict[str, int]] = {
    "3x3": {"grid_size": 3, "max_steps": 20},
    "7x7": {"grid_size": 7, "max_steps": 50},
}
REWARD_RULES = ("parl", "lola")
#: Who collects a coin that several players reach together (see the module docstring).
CONTESTED = ("all", "random")
OBS_FORMATS = ("grid", "flat")
#: ``(dy, dx)`` per action, in the LOLA implementation's order.
MOVES: tuple[tuple[int, int], ...] = ((0, 1), (0, -1), (1, 0), (-1, 0))
N_ACTIONS = len(MOVES)
N_OBS_CHANNELS = 4
MIN_AGENTS, MAX_AGENTS = 2, 4
#: Reward for collecting another player's coin under the paper's rule.
PARL_OTHER_COLOR_REWARD = 0.2
LOLA_OWNER_PENALTY = -2.0


@dataclass(frozen=True)
class CoinGameConfig:
    """
    The Coin Game's rules, validated once. Every part of the package takes one (or its fields as keywords): the
    batched core, the PettingZoo env, the registered ids, the exact optimum, the scripted policies, evaluation and
    the experiment; so each plays the game these defaults describe (the registered ids' game) unless told
    otherwise. ``grid_size`` and ``max_steps`` left ``None`` are filled from the preset.
    """

    preset: str = "3x3"
    """the paper's sizes: ``"3x3"`` (3x3 grid, 20 steps: the paper's appendix) or ``"7x7"`` (7x7, 50 steps)"""
    grid_size: int | None = None
    """side of the square toroidal grid (``None``: the preset's)"""
    max_steps: int | None = None
    """episode length; the episode is truncated after this many steps (``None``: the preset's)"""
    n_agents: int = 2
    """players, 2 to 4 (one coin colour each)"""
    reward_rule: str = "parl"
    """``"parl"`` (the paper's: +1 own coin, +0.2 another's) or ``"lola"`` (a taken coin costs its owner 2)"""
    contested: str = "random"
    """who collects a coin several players reach together: one ``"random"`` winner (the dilemma, the public
    reproduction's rule) or ``"all"`` of them (rllib's; selfish play is then nearly optimal)"""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        base = PRESETS[self.preset]
        n_agents = check_int("n_agents", self.n_agents, MIN_AGENTS, MAX_AGENTS)
        grid_size = check_int("grid_size", base["grid_size"] if self.grid_size is None else self.grid_size, 1)
        if grid_size**2 < n_agents + 1:
            raise ValueError(
                f"grid_size={grid_size} is too small: the {n_agents} players and the coin need distinct "
                f"cells at the start, so grid_size**2 must be >= n_agents + 1 = {n_agents + 1}"
            )
        max_steps = check_int("max_steps", base["max_steps"] if self.max_steps is None else self.max_steps, 1)
        if self.reward_rule not in REWARD_RULES:
            raise ValueError(f"reward_rule must be one of {REWARD_RULES}, got {self.reward_rule!r}")
        if self.contested not in CONTESTED:
            raise ValueError(f"contested must be one of {CONTESTED}, got {self.contested!r}")
        for name, value in (("n_agents", n_agents), ("grid_size", grid_size), ("max_steps", max_steps)):
            object.__setattr__(self, name, value)


#: The settings a :class:`CoinGameConfig` takes, in its order.
GAME_SETTINGS = tuple(item.name for item in dataclasses.fields(CoinGameConfig))


def coin_game_config(config: CoinGameConfig | None = None, **game: Any) -> CoinGameConfig:
    """
    The game a caller asked for: ``config`` itself, or a :class:`CoinGameConfig` of the keywords.

    :param config: a game config; then ``game`` must be empty
    :param game: :class:`CoinGameConfig` fields
    :raise ValueError: naming an unknown setting and listing the valid ones
    """
    if config is not None:
        if not isinstance(config, CoinGameConfig):
            raise ValueError(f"config must be a CoinGameConfig, got {type(config).__name__}")
        if game:
            raise ValueError(f"give the game as config or as its settings, not both (got config and {sorted(game)})")
        return config
    unknown = sorted(set(game) - set(GAME_SETTINGS))
    if unknown:
        raise ValueError(f"unknown Coin Game setting(s) {unknown}; the settings are {list(GAME_SETTINGS)}")
    return CoinGameConfig(**game)


def event_rewards(picked: tuple[bool, ...], color: int, reward_rule: str) -> list[float]:
    """
    The reward rule for one coin: the reference the batched tables are built from.

    :param picked: whether each player collects the coin (under ``contested="all"`` every player on
        it; under ``"random"`` the winner alone)
    :param color: the coin's colour (index of its owner)
    :param reward_rule: ``"parl"`` or ``"lola"``
    :return: one reward per player
    """
    if reward_rule == "parl":
        return [float(p) * (1.0 if i == color else PARL_OTHER_COLOR_REWARD) for i, p in enumerate(picked)]
    stolen = any(p for i, p in enumerate(picked) if i != color)
    return [float(p) + (LOLA_OWNER_PENALTY if i == color and stolen else 0.0) for i, p in enumerate(picked)]


@functools.cache
def event_tables(n_agents: int, reward_rule: str) -> tuple[np.ndarray, np.ndarray]:
    """
    Everything a step needs, indexed by the event code ``color * 2**n + sum_i picked_i * 2**i``.

    One gather from these tables replaces all per-rule branching in the hot path.

    :param n_agents: number of players ``n``
    :param reward_rule: ``"parl"`` or ``"lola"``
    :return: ``stats [3n, K]`` float (rows: rewards, picks, own-colour picks) and
        ``side [2, K]`` int (rows: next coin colour, whether the coin was collected)
    """
    n = n_agents
    n_codes = n * 2**n
    stats = np.zeros((3 * n, n_codes))
    side = np.zeros((2, n_codes), dtype=np.intp)
    for color, picked in itertools.product(range(n), itertools.product((False, True), repeat=n)):
        code = color * 2**n + sum(int(p) << i for i, p in enumerate(picked))
        stats[:n, code] = event_rewards(picked, color, reward_rule)
        stats[n : 2 * n, code] = picked
        stats[2 * n + color, code] = picked[color]
        side[:, code] = ((color + 1) % n, 1) if any(picked) else (color, 0)
    stats.flags.writeable = False
    side.flags.writeable = False
    return stats, side


@functools.cache
def contest_tables(n_agents: int) -> tuple[np.ndarray, np.ndarray]:
    """
    How ``contested="random"`` turns an event code into the code of its winner, in one gather.

    :param n_agents: number of players ``n``
    :return: ``count [K]`` int, the number ``k`` of players on the coin when ``k >= 2`` (else 0), and
        ``resolve [K * n]`` int, where ``resolve[code * n + j]`` is ``code`` with only the ``j``-th (in
        player order) of its players on the coin kept (``resolve[code * n] = code`` for an uncontested coin)
    """
    n = n_agents
    n_codes = n * 2**n
    count = np.zeros(n_codes, dtype=np.intp)
    resolve = np.repeat(np.arange(n_codes, dtype=np.intp), n)
    for code in range(n_codes):
        mask = code % 2**n
        on_coin = [i for i in range(n) if mask >> i & 1]
        if len(on_coin) >= 2:
            count[code] = len(on_coin)
            resolve[code * n : code * n + len(on_coin)] = [code - mask + (1 << i) for i in on_coin]
    count.flags.writeable = False
    resolve.flags.writeable = False
    return count, resolve


@functools.cache
def expected_event_stats(n_agents: int, reward_rule: str, contested: str) -> np.ndarray:
    """
    The event table's statistics in expectation over the winner of a contested coin (for planning).

    :param n_agents: number of players ``n``
    :param reward_rule: ``"parl"`` or ``"lola"``
    :param contested: ``"all"`` (then this is :func:`event_tables`' ``stats``) or ``"random"``
    :return: ``[3n, K]`` float, rows and codes as in :func:`event_tables`
    """
    if contested not in CONTESTED:
        raise ValueError(f"contested must be one of {CONTESTED}, got {contested!r}")
    stats, _ = event_tables(n_agents, reward_rule)
    if contested == "all":
        return stats
    count, resolve = contest_tables(n_agents)
    k = np.maximum(count, 1).astype(np.intp)  # equally likely winners per code
    winners = resolve.reshape(-1, n_agents)  # [code, slot]
    slots = np.arange(n_agents)[None, :] < k[:, None]
    expected = (stats[:, winners] * slots).sum(axis=-1) / k
    expected.flags.writeable = False
    return expected


@functools.cache
def move_table(grid_size: int) -> np.ndarray:
    """
    Destination cell of every (cell, action) pair on the torus.

    :param grid_size: side of the grid
    :return: ``[grid_size**2 * 4]`` array; entry ``cell * 4 + action`` is the destination
    """
    g = grid_size
    y, x = np.divmod(np.arange(g * g), g)
    dest = np.stack([((y + dy) % g) * g + (x + dx) % g for dy, dx in MOVES], axis=1)
    dest = dest.astype(np.intp).reshape(-1)
    dest.flags.writeable = False
    return dest


def kth_free_cell(occupied: np.ndarray, u: np.ndarray, n_cells: int, distinct: bool = False) -> np.ndarray:
    """
    Sample, for each game, a uniformly random cell not in ``occupied``, with no loop over games.

    With the distinct occupied cells sorted as ``o_0 < o_1 < ...``, ``o_j - j`` free cells lie
    below ``o_j``; so the ``k``-th free cell is ``k + #{j : o_j - j <= k}``. Ranks come from
    pairwise comparisons (at most 4 x 4 per game), which beats sorting rows of length <= 4.

    :param occupied: ``[J, M]`` occupied cells of ``M`` games (``J`` may be 0)
    :param u: ``[M]`` uniform numbers in ``[0, 1)``, one per game
    :param n_cells: number of cells on the grid
    :param distinct: promise that the occupied cells of a game are distinct (skips the
        duplicate handling)
    :return: ``[M]`` free cells
    """
    n_occ = occupied.shape[0]
    if n_occ == 0:
        return (u * n_cells).astype(np.intp)
    below = occupied[:, None, :] < occupied[None, :, :]  # below[i, j]: o_i < o_j
    if distinct:
        key = occupied - below.sum(axis=0)
        k = (u * (n_cells - n_occ)).astype(np.intp)
        return k + (key <= k).sum(axis=0)
    earlier = np.tri(n_occ, k=-1, dtype=bool).T[:, :, None]  # earlier[i, j]: i < j
    duplicate = ((occupied[:, None, :] == occupied[None, :, :]) & earlier).any(axis=0)
    first = ~duplicate
    key = occupied - (below & first[:, None, :]).sum(axis=0)
    key[duplicate] = n_cells  # a duplicate must not shift k twice
    k = (u * (n_cells - first.sum(axis=0))).astype(np.intp)
    return k + (key <= k).sum(axis=0)


def sample_distinct_cells(rng: np.random.Generator, n_samples: int, n_games: int, n_cells: int) -> np.ndarray:
    """
    Draw ``n_samples`` distinct uniformly random cells (an ordered sample) for each game.

    Small batches sort random keys (few calls); large ones draw the cells one after the other
    with :func:`kth_free_cell` (linear in the batch, where sorting ``n_games`` rows is slow).

    :param rng: random generator
    :param n_samples: cells per game (at most ``n_cells``)
    :param n_games: number of games
    :param n_cells: number of cells on the grid
    :return: ``[n_samples, n_games]`` cells
    """
    if n_games * n_cells <= 2048:
        return np.argsort(rng.random((n_games, n_cells)), axis=1)[:, :n_samples].T.astype(np.intp)
    cells = np.empty((n_samples, n_games), dtype=np.intp)
    for j in range(n_samples):
        cells[j] = kth_free_cell(cells[:j], rng.random(n_games), n_cells, distinct=True)
    return cells


#: Largest observation buffers a batch allocates (bytes).
MAX_BATCH_BYTES = 4 * 2**30
#: Largest free-cell table (entries) built for the respawn; bigger games use :func:`kth_free_cell`.
MAX_FREE_TABLE_ENTRIES = 2**20


@functools.cache
def free_cell_table(grid_size: int, n_agents: int) -> tuple[np.ndarray, np.ndarray] | None:
    """
    Free cells of every joint placement of the players, for a respawn in a few gathers.

    Placements are coded ``row = n_cells * sum_i cell_i * n_cells**i``, the start of their row.

    :param grid_size: side of the grid
    :param n_agents: number of players
    :return: ``cells [n_placements * n_cells]`` (from ``row`` on: the free cells in increasing
        order, then padding) and ``n_free`` of the same shape (float, the number of free cells,
        stored at ``row``), or ``None`` when the table would exceed ``MAX_FREE_TABLE_ENTRIES``
    """
    n_cells = grid_size**2
    n_codes = n_cells**n_agents
    if n_codes * n_cells > MAX_FREE_TABLE_ENTRIES:
        return None
    placement = np.stack(np.unravel_index(np.arange(n_codes), (n_cells,) * n_agents)[::-1])  # [agent, code]
    occupied = np.zeros((n_codes, n_cells), dtype=bool)
    occupied[np.arange(n_codes)[None, :], placement] = True
    cells = np.argsort(occupied, axis=1, kind="stable").astype(np.intp).reshape(-1)
    n_free = np.zeros((n_codes, n_cells))
    n_free[:, 0] = n_cells - occupied.sum(axis=1)
    n_free = n_free.reshape(-1)
    cells.flags.writeable = False
    n_free.flags.writeable = False
    return cells, n_free


class CoinGameState(NamedTuple):
    """
    The whole state of a batch of games, game-major, cells numbered ``y * grid_size + x`` (a snapshot: copies).

    :param positions: ``[n_games, n_agents]`` every player's cell
    :param coin_pos: ``[n_games]`` the coin's cell
    :param coin_color: ``[n_games]`` the coin's colour (its owner)
    :param t: ``[n_games]`` steps taken in the current episode
    :param stats: ``[n_games, 3 n_agents]`` the episode so far: returns, picks, own-colour picks per player
    """

    positions: np.ndarray
    coin_pos: np.ndarray
    coin_color: np.ndarray
    t: np.ndarray
    stats: np.ndarray


class CoinGameBatch:
    """
    ``n_games`` Coin Games held in numpy arrays and stepped together (see the module docstring for
    the mechanics).

    State is stored player-major (``[n_agents, n_games]``) so that per-player rows are contiguous;
    the public views (``positions`` etc.) are game-major and read-only. ``step`` never resets:
    after a game is truncated call :meth:`reset` (optionally with a ``mask`` of the games to
    reset) before stepping again.

    :param n_games: number of games in the batch
    :param config: the game's rules (:class:`CoinGameConfig`), or give its fields as keywords (``game``)
    :param seed: seed of the batch's random generator (``reset(seed=...)`` reseeds it); a ``"random"`` contest's
        winner is drawn from it (:attr:`rng`)
    :param game: :class:`CoinGameConfig` fields (``preset``, ``grid_size``, ``max_steps``, ``n_agents``,
        ``reward_rule``, ``contested``)
    """

    def __init__(self, n_games: int = 1, config: CoinGameConfig | None = None, seed: int | None = None,
                 **game: Any) -> None:
        self.config = coin_game_config(config, **game)
        self.n_games = check_int("n_games", n_games, 1)
        # the observation buffers: (4 agent-centric + 2 global) float32 channels per player and game
        footprint = 24 * self.n_games * self.config.n_agents * self.config.grid_size ** 2
        if footprint > MAX_BATCH_BYTES:
            raise ValueError(f"n_games={n_games} games of grid_size={self.config.grid_size} need "
                             f"{footprint / 2**30:.1f} GiB of observation buffers (at most "
                             f"{MAX_BATCH_BYTES / 2**30:.0f} GiB): use fewer games or a smaller grid")
        self.grid_size: int = self.config.grid_size
        self.max_steps: int = self.config.max_steps
        self.n_agents: int = self.config.n_agents
        self.reward_rule: str = self.config.reward_rule
        self.contested: str = self.config.contested
        self.n_cells = self.grid_size**2
        self._rng = np.random.default_rng(check_seed(seed))
        self._allocate_state()
        self._allocate_observation_buffers()
        self.reset(seed=seed)

    # ------------------------------------------------------------------ state
    def _allocate_state(self) -> None:
        n, a = self.n_games, self.n_agents
        self._move = move_table(self.grid_size)
        self._stats_table, self._side_table = event_tables(a, self.reward_rule)
        self._free_table = free_cell_table(self.grid_size, a)
        self._resolve = None  # under "all": nothing is drawn or gathered for contests
        if self.contested == "random":
            count, self._resolve = contest_tables(a)
            # a third side row, the size of a contested coin's crowd (0 if none), comes with the side gather
            self._side_table = np.vstack([self._side_table, count])
            self._side_table.flags.writeable = False
        self._pos = np.zeros((a, n), dtype=np.intp)
        self._coin = np.zeros(n, dtype=np.intp)
        self._t = np.zeros(n, dtype=np.intp)
        self._t_max = 0  # max of _t, tracked so that the done check needs no reduction
        self._stats = np.zeros((3 * a, n))  # rows: returns, picks, own-colour picks
        # rows: picked (one per player), coin colour, collected (and, under "random", the number of
        # players on a contested coin). Colour and collected sit next to the picks so that one matmul
        # gives the event code and one gather updates colour and collected.
        self._event = np.zeros((a + len(self._side_table), n), dtype=np.intp)
        self._color, self._collected, *contest = self._event[a:]
        self._contest_size = contest[0] if contest else None
        self._code_w = np.append(1 << np.arange(a), 1 << a).astype(np.intp)
        # scratch buffers reused by every step: no allocation in the hot path
        self._idx = np.empty((a, n), dtype=np.intp)
        self._code = np.empty(n, dtype=np.intp)
        self._events = np.empty((3 * a, n))
        self._uniform = np.empty(n)
        self._row = np.empty(n, dtype=np.intp)
        self._row_w = self.n_cells ** np.arange(1, a + 1, dtype=np.intp)
        self._slot = np.empty(n)

    @property
    def positions(self) -> np.ndarray:
        """``[n_games, n_agents]`` cell index ``y * grid_size + x`` of every player (read-only view)."""
        return self._readonly(self._pos.T)

    @property
    def coin_pos(self) -> np.ndarray:
        """``[n_games]`` cell of the coin (read-only view)."""
        return self._readonly(self._coin)

    @property
    def coin_color(self) -> np.ndarray:
        """``[n_games]`` colour of the coin, i.e. the index of its owner (read-only view)."""
        return self._readonly(self._color)

    @property
    def t(self) -> np.ndarray:
        """``[n_games]`` steps taken in the current episode (read-only view)."""
        return self._readonly(self._t)

    @property
    def rng(self) -> np.random.Generator:
        """The batch's random generator (scripted policies may share it)."""
        return self._rng

    @staticmethod
    def _readonly(array: np.ndarray) -> np.ndarray:
        view = array.view()
        view.flags.writeable = False
        return view

    def reset(self, seed: int | None = None, mask: np.ndarray | None = None) -> None:
        """
        Start new episodes in all games, or only in those selected by ``mask``.

        :param seed: reseed the batch's random generator first (reproducible episodes)
        :param mask: ``[n_games]`` booleans selecting the games to reset; ``None`` resets all
        """
        if seed is not None:
            self._rng = np.random.default_rng(check_seed(seed))
        games = self._games_from_mask(mask)
        m = self.n_games if isinstance(games, slice) else len(games)
        cells = sample_distinct_cells(self._rng, self.n_agents + 1, m, self.n_cells)  # players, then coin
        self._pos[:, games] = cells[:-1]
        self._coin[games] = cells[-1]
        self._color[games] = self._rng.integers(0, self.n_agents, m)
        self._t[games] = 0
        self._stats[:, games] = 0.0
        self._t_max = int(self._t.max())

    def _games_from_mask(self, mask: np.ndarray | None) -> slice | np.ndarray:
        if mask is None:
            return slice(None)
        mask = np.asarray(mask)
        if mask.shape != (self.n_games,) or mask.dtype != bool:
            raise ValueError(
                f"mask must be a boolean array of shape (n_games,) = ({self.n_games},), "
                f"got dtype {mask.dtype} and shape {mask.shape}"
            )
        return np.flatnonzero(mask)

    @property
    def state(self) -> CoinGameState:
        """A snapshot of the whole state (copies), for debugging and for :meth:`restore`."""
        return CoinGameState(self._pos.T.copy(), self._coin.copy(), self._color.copy(), self._t.copy(),
                             self._stats.T.copy())

    def restore(self, state: CoinGameState) -> None:
        """
        Put every game back in a snapshot taken with :attr:`state` (checked as :meth:`set_state` checks).

        :param state: the snapshot
        """
        stats = np.asarray(state.stats, dtype=np.float64)
        if stats.shape != (self.n_games, 3 * self.n_agents):
            raise ValueError(f"state.stats must have shape ({self.n_games}, {3 * self.n_agents}), got {stats.shape}")
        positions, coin = (np.stack(np.divmod(np.asarray(cells), self.grid_size), axis=-1)
                           for cells in (state.positions, state.coin_pos))
        self.set_state(positions=positions, coin_pos=coin, coin_color=state.coin_color, t=state.t)
        self._stats[:] = stats.T

    def set_state(
        self,
        positions: np.ndarray | None = None,
        coin_pos: np.ndarray | None = None,
        coin_color: np.ndarray | None = None,
        t: np.ndarray | int | None = None,
    ) -> None:
        """
        Put the games in a hand-built state (for tests and scripted scenarios).

        Coordinates are ``(y, x)`` pairs. Arguments left as ``None`` keep their current value;
        episode statistics are kept.

        :param positions: ``[n_games, n_agents, 2]`` players' ``(y, x)``
        :param coin_pos: ``[n_games, 2]`` coin's ``(y, x)``
        :param coin_color: ``[n_games]`` coin colours in ``0..n_agents-1``
        :param t: steps already taken (scalar or ``[n_games]``), in ``0..max_steps``
        """
        n, a = self.n_games, self.n_agents
        pos = self._pos.T if positions is None else self._cells("positions", positions, (n, a, 2))
        coin = self._coin if coin_pos is None else self._cells("coin_pos", coin_pos, (n, 2))
        if (pos == coin[:, None]).any():
            raise ValueError("coin_pos must not be under a player (the coin never is, after any step)")
        color = self._color
        if coin_color is not None:
            color = np.asarray(coin_color)
            if color.shape != (n,) or not np.issubdtype(color.dtype, np.integer):
                raise ValueError(f"coin_color must be integers of shape ({n},), got {color!r}")
            if ((color < 0) | (color >= a)).any():
                raise ValueError(f"coin_color must be in 0..{a - 1}, got {color}")
        if t is not None:
            steps = np.broadcast_to(np.asarray(t), (n,))
            if not np.issubdtype(steps.dtype, np.integer) or ((steps < 0) | (steps > self.max_steps)).any():
                raise ValueError(f"t must be integers in 0..max_steps={self.max_steps}, got {t!r}")
            self._t[:] = steps
            self._t_max = int(self._t.max())
        self._pos[:] = pos.T
        self._coin[:] = coin
        self._color[:] = color

    def _cells(self, name: str, yx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        yx = np.asarray(yx)
        if yx.shape != shape or not np.issubdtype(yx.dtype, np.integer):
            raise ValueError(f"{name} must be integer (y, x) pairs of shape {shape}, got shape {yx.shape}")
        if ((yx < 0) | (yx >= self.grid_size)).any():
            raise ValueError(f"{name} must be in 0..grid_size-1 = 0..{self.grid_size - 1}, got {yx.tolist()}")
        return yx[..., 0] * self.grid_size + yx[..., 1]

    # ------------------------------------------------------------------- step
    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.n_games, self.n_agents):
            raise ValueError(
                f"actions must have shape (n_games, n_agents) = ({self.n_games}, {self.n_agents}), got {actions.shape}"
            )
        if actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers in 0..{N_ACTIONS - 1}, got dtype {actions.dtype}")
        # for signed ints, any bit outside the two lowest (sign included) means out of 0..3: one
        # cheap check instead of min() and max()
        out_of_range = actions & ~(N_ACTIONS - 1) if actions.dtype.kind == "i" else actions >= N_ACTIONS
        if np.count_nonzero(out_of_range):
            raise ValueError(
                f"actions must be in 0..{N_ACTIONS - 1}, got values from {actions.min()} to {actions.max()}"
            )
        return actions if actions.dtype.kind == "i" else actions.astype(np.intp)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Advance every game by one step (no reset; see :meth:`reset`).

        :param actions: ``[n_games, n_agents]`` integer actions in ``0..3``
        :return: rewards ``[n_games, n_agents]`` (float32) and truncations ``[n_games]`` (bool),
            both new arrays
        """
        actions = self._check_actions(actions)
        if self._t_max >= self.max_steps:
            raise RuntimeError("some games reached max_steps: call reset() (e.g. with mask=truncated) first")
        a = self.n_agents
        np.multiply(self._pos, N_ACTIONS, out=self._idx)
        np.add(self._idx, actions.T, out=self._idx)
        self._move.take(self._idx, out=self._pos)
        np.equal(self._pos, self._coin, out=self._event[:a], casting="unsafe")
        np.matmul(self._code_w, self._event[: a + 1], out=self._code)
        # next colour and collected (and the contest sizes) do not depend on who wins a contested coin
        self._side_table.take(self._code, axis=1, out=self._event[a:])
        if self._resolve is not None and np.count_nonzero(self._contest_size):
            self._draw_winners()
        self._stats_table.take(self._code, axis=1, out=self._events)
        self._stats += self._events
        self._respawn()
        self._t += 1
        self._t_max += 1
        return self._events[:a].T.astype(np.float32, order="C"), self._t >= self.max_steps

    def _draw_winners(self) -> None:
        # contested="random", some coin contested: replace those codes by their winners' (module docstring)
        games = np.flatnonzero(self._contest_size)
        rank = self._rng.random(len(games))
        rank *= self._contest_size[games]  # u * k in [0, k)
        row = self._code[games]
        row *= self.n_agents  # start of the code's row in resolve
        row += rank.astype(np.intp)  # + floor(u * k), the winner's rank among the players on the coin
        self._code[games] = self._resolve.take(row)

    def _respawn(self) -> None:
        collected = self._collected
        if not np.count_nonzero(collected):  # most single-game steps collect nothing
            return
        self._rng.random(out=self._uniform)
        if self._free_table is None:
            fresh = kth_free_cell(self._pos, self._uniform, self.n_cells)
        else:
            # row of the players' placement, then slot floor(u * n_free) within it
            cells, n_free = self._free_table
            np.matmul(self._row_w, self._pos, out=self._row)
            n_free.take(self._row, out=self._slot)
            self._slot *= self._uniform
            self._slot += self._row
            fresh = cells.take(self._slot.astype(np.intp))
        np.copyto(self._coin, fresh, where=collected.astype(bool))

    # ----------------------------------------------------------- observations
    def _allocate_observation_buffers(self) -> None:
        n, a, cells = self.n_games, self.n_agents, self.n_cells
        self._obs = np.zeros((n, a, N_OBS_CHANNELS, cells), dtype=np.float32)
        self._state = np.zeros((n, 2 * a, cells), dtype=np.float32)
        # flat offsets into the buffers: obs of (game, viewer) starts at (game * a + viewer) * 4 * cells
        start = (np.arange(n)[None, :] * a + np.arange(a)[:, None]) * N_OBS_CHANNELS * cells  # [viewer, n]
        own_or_other = np.where(np.eye(a, dtype=bool), 0, 1)  # [viewer, player]
        self._obs_player_base = start[:, None, :] + (own_or_other * cells)[:, :, None]  # [viewer, player, n]
        self._obs_coin_base = start
        # [viewer, colour]: offset of the coin channel, 2 (own colour) or 3 (another's)
        self._obs_coin_channel = np.where(np.eye(a, dtype=bool), 2, 3) * cells
        game_start = np.arange(n) * 2 * a * cells
        self._state_player_base = game_start + (np.arange(a) * cells)[:, None]  # [player, n]
        self._state_coin_base = game_start + a * cells
        # two index buffers each, swapped at every call: the old one says which entries to clear.
        # Views are made once here; creating them costs as much as the work at small batch sizes.
        self._obs_idx = [self._index_views(a * a + a, n, players=(a, a, n), coin=a * a) for _ in range(2)]
        self._state_idx = [self._index_views(a + 1, n, players=(a, n), coin=a) for _ in range(2)]
        self._obs_flat_buffer = self._obs.reshape(-1)
        self._state_flat_buffer = self._state.reshape(-1)
        g = self.grid_size
        self._obs_views = {
            True: self._obs.reshape(n, a, N_OBS_CHANNELS * cells),
            False: self._obs.reshape(n, a, N_OBS_CHANNELS, g, g),
        }
        self._state_view = self._state.reshape(n, 2 * a, g, g)

    @staticmethod
    def _index_views(rows: int, n: int, players: tuple[int, ...], coin: int) -> tuple[np.ndarray, ...]:
        idx = np.zeros((rows, n), dtype=np.intp)
        return idx.reshape(-1), idx[:coin].reshape(players), idx[coin:].reshape(-1, n)

    def observe(self, flat: bool = False) -> np.ndarray:
        """
        Build every player's agent-centric observation.

        The result is a view of a buffer that the next call overwrites: copy it to keep it.

        :param flat: return ``[n_games, n_agents, 4 * G * G]`` instead of ``[n_games, n_agents, 4, G, G]``
        :return: float32 observations (channel layout in the module docstring)
        """
        previous, (idx, players, coin) = self._obs_idx[0][0], self._obs_idx[1]
        self._obs_idx.reverse()
        np.add(self._obs_player_base, self._pos, out=players)
        self._obs_coin_channel.take(self._color, axis=1, out=coin)
        coin += self._obs_coin_base
        coin += self._coin
        self._scatter(self._obs_flat_buffer, previous, idx)
        return self._obs_views[flat]

    @staticmethod
    def _scatter(buffer: np.ndarray, previous: np.ndarray, idx: np.ndarray) -> None:
        # clearing only the entries set last time is far cheaper than zeroing the whole buffer
        # (entry 0 of a fresh all-zero index buffer is cleared once, which is harmless)
        buffer[previous] = 0.0
        buffer[idx] = 1.0

    def global_state(self) -> np.ndarray:
        """
        Build every game's global state: one position channel per player, one coin channel per colour.

        The result is a view of a buffer that the next call overwrites: copy it to keep it.

        :return: ``[n_games, 2 * n_agents, G, G]`` float32
        """
        previous, (idx, players, coin) = self._state_idx[0][0], self._state_idx[1]
        self._state_idx.reverse()
        np.add(self._state_player_base, self._pos, out=players)
        np.multiply(self._color, self.n_cells, out=coin[0])
        coin += self._state_coin_base
        coin += self._coin
        self._scatter(self._state_flat_buffer, previous, idx)
        return self._state_view

    # ------------------------------------------------------------- statistics
    def episode_stats(self) -> dict[str, np.ndarray]:
        """
        Statistics of the current (or just finished) episode of every game.

        :return: dict of arrays: ``episode_return``, ``coins_picked``, ``own_coins_picked``,
            ``pick_speed`` and ``pick_own_color`` (``[n_games, n_agents]``; ``pick_own_color`` is
            NaN for a player with no pick), ``social_welfare`` and ``episode_length`` (``[n_games]``)
        """
        a = self.n_agents
        returns = self._stats[:a].T.copy()
        picks = self._stats[a : 2 * a].T.astype(np.int64)
        own = self._stats[2 * a :].T.astype(np.int64)
        steps = self._t.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = np.where(steps[:, None] > 0, picks / np.maximum(steps[:, None], 1), np.nan)
            own_share = np.where(picks > 0, own / np.maximum(picks, 1), np.nan)
        return {
            "episode_return": returns,
            "coins_picked": picks,
            "own_coins_picked": own,
            "pick_speed": speed,
            "pick_own_color": own_share,
            "social_welfare": returns.sum(axis=1),
            "episode_length": steps,
        }

    def render_ansi(self, game: int = 0) -> str:
        """
        Text picture of one game: digits are players (``*`` for several), letters ``a``-``d`` the
        coin of colour 0-3, dots empty cells.

        :param game: index of the game to draw
        """
        check_int("game", game, 0, self.n_games - 1)
        cells = np.full(self.n_cells, ".", dtype="<U1")
        cells[self._coin[game]] = "abcd"[self._color[game]]
        for player, cell in enumerate(self._pos[:, game]):
            cells[cell] = "*" if cells[cell].isdigit() else str(player)
        rows = cells.reshape(self.grid_size, self.grid_size)
        return "\n".join("".join(row) for row in rows) + f"\nstep {self._t[game]}/{self.max_steps}\n"
