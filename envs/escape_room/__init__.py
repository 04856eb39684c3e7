"""Escape Room (Yang et al. 2020, LIO): the batched core and its PettingZoo env (``escape_room_v0``).

- :mod:`~sb3_contracts.envs.escape_room.core`: :class:`EscapeRoomConfig` (the rules, validated once) and
  :class:`EscapeRoomBatch` (``n_games`` rooms in arrays).
- :mod:`~sb3_contracts.envs.escape_room.escape_room_v0`: the PettingZoo ``ParallelEnv`` over a batch of one room.
"""

from . import escape_room_v0
from .core import DOOR, LEVER, N_ACTIONS, START, EscapeRoomBatch, EscapeRoomConfig
from .escape_room_v0 import EscapeRoomParallelEnv, env, parallel_env, raw_env

__all__ = ["DOOR", "LEVER", "N_ACTIONS", "START", "EscapeRoomBatch", "EscapeRoomConfig", "EscapeRoomParallelEnv",
           "env", "escape_room_v0", "parallel_env", "raw_env"]
