"""The Coin Game: the batched core, its PettingZoo env (``coin_game_v0``) and scripted policies.

- :mod:`~sb3_contracts.envs.coin_game.core`: :class:`CoinGameConfig` (the rules, validated once: what every part of the
  package plays), :class:`CoinGameBatch` (``n_games`` games in arrays) and its tables.
- :mod:`~sb3_contracts.envs.coin_game.coin_game_v0`: the PettingZoo ``ParallelEnv`` over a batch of one game.
- :mod:`~sb3_contracts.envs.coin_game.policies`: scripted policies vectorised over the games of a batch.
- :mod:`~sb3_contracts.envs.coin_game.optimum`: the exact cooperative optimum of a game config.
"""

from . import coin_game_v0
from .coin_game_v0 import CoinGameParallelEnv, env, parallel_env, raw_env
from .core import (
    CONTESTED,
    GAME_SETTINGS,
    MAX_AGENTS,
    MIN_AGENTS,
    MOVES,
    N_ACTIONS,
    N_OBS_CHANNELS,
    OBS_FORMATS,
    PRESETS,
    REWARD_RULES,
    CoinGameBatch,
    CoinGameConfig,
    CoinGameState,
    coin_game_config,
    contest_tables,
    event_rewards,
    event_tables,
    expected_event_stats,
    free_cell_table,
    kth_free_cell,
    move_table,
    sample_distinct_cells,
)
from .optimum import optimal_welfare
from .policies import POLICIES, evaluate_policy, greedy_own_policy, greedy_selfish_policy, random_policy

__all__ = [
    "CONTESTED",
    "GAME_SETTINGS",
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
    "CoinGameConfig",
    "CoinGameParallelEnv",
    "CoinGameState",
    "coin_game_config",
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
    "optimal_welfare",
    "parallel_env",
    "random_policy",
    "raw_env",
    "sample_distinct_cells",
]
