"""The Coin Game: the batched core, its PettingZoo env (``coin_game_v0``) and scripted policies.

- :mod:`~sb3_contracts.envs.coin_game.core`: :class:`CoinGameBatch` (``n_games`` games in arrays) and its tables.
- :mod:`~sb3_contracts.envs.coin_game.coin_game_v0`: the PettingZoo ``ParallelEnv`` over a batch of one game.
- :mod:`~sb3_contracts.envs.coin_game.policies`: scripted policies vectorised over the games of a batch.
"""

from . import coin_game_v0
from .coin_game_v0 import CoinGameParallelEnv, env, parallel_env, raw_env
from .core import (
    CONTESTED,
    MAX_AGENTS,
    MIN_AGENTS,
    MOVES,
    N_ACTIONS,
    N_OBS_CHANNELS,
    OBS_FORMATS,
    PRESETS,
    REWARD_RULES,
    CoinGameBatch,
    CoinGameState,
    contest_tables,
    event_rewards,
    event_tables,
    expected_event_stats,
    free_cell_table,
    kth_free_cell,
    move_table,
    resolve_config,
    sample_distinct_cells,
)
from .policies import POLICIES, evaluate_policy, greedy_own_policy, greedy_selfish_policy, random_policy

__all__ = [
    "CONTESTED",
    "MAX_AGENTS",
    "MIN_AGENTS",
    "MOVES",
    "N_ACTIONS",
    "N_OBS_CHANNELS",
    "OBS_FORMATS",
    "POLICIES",
    "PRESETS",
    "REWARD_RULES",
    "CoinGameBatch",
    "CoinGameParallelEnv",
    "CoinGameState",
    "coin_game_v0",
    "contest_tables",
    "env",
    "evaluate_policy",
    "event_rewards",
    "event_tables",
    "expected_event_stats",
    "free_cell_table",
    "greedy_own_policy",
    "greedy_selfish_policy",
    "kth_free_cell",
    "move_table",
    "parallel_env",
    "random_policy",
    "raw_env",
    "resolve_config",
    "sample_distinct_cells",
]
