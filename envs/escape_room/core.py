"""Escape Room (Yang et al. 2020, "Learning to Incentivize Other Learning Agents"), ``n_games`` rooms in arrays.

The rules follow the public LIO code (``lio/env/room_symmetric.py``, without its ``randomize`` and reward-giving
parts): three positions, lever (0), start (1) and door (2); every agent starts at the start; an action is the
position to go to. The door is open in a step when at least ``min_at_lever`` agents choose the lever in that step.
An agent earns +10 for choosing the door while it is open, 0 for choosing its current position (staying), and -1
for any other move. An episode terminates when the door is open and some agent ends the step at the door, or after
``max_steps`` steps (LIO's ``done``).

The step limit ends the game by **termination**, not by a time-limit truncation: the game is ``max_steps`` steps long
(its welfare per episode is what a principal is judged on) and nobody observes the clock. A learner bootstraps
through a truncation (SB3 does, from ``TimeLimit.truncated``), and without a clock that turns the game into an
endless one: an agent paid ``b`` each step on the lever values staying there at ``b / (1 - gamma)``, 200 for
``b = 2`` and ``gamma = 0.99``, where the game pays at most ``max_steps * b``.

The cooperative optimum is reached in the first step: ``min_at_lever`` agents pull the lever (-1 each) while the
others walk out (+10 each), ``10 (N - M) - M`` per episode (9 for N = 2 / M = 1, 8 for N = 3 / M = 2). Nobody
wants to pull the lever, so selfish agents stay at the start (0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from ..checks import check_int, check_seed

#: Positions, which are also the actions (the position to go to).
LEVER, START, DOOR = 0, 1, 2
N_POSITIONS = N_ACTIONS = 3
#: Reward for choosing the open door, for staying, for any other move.
DOOR_REWARD, STAY_REWARD, MOVE_REWARD = 10.0, 0.0, -1.0


@dataclass(frozen=True)
class EscapeRoomConfig:
    """
    The rules of an Escape Room, validated once.

    :param n_agents: number of agents ``N`` (at least 2)
    :param min_at_lever: agents ``M`` that must choose the lever in a step to open the door (``1 <= M < N``)
    :param max_steps: steps of an episode at most (LIO's 5); the last one terminates it
    """

    n_agents: int = 2
    min_at_lever: int = 1
    max_steps: int = 5

    def __post_init__(self) -> None:
        check_int("n_agents", self.n_agents, 2)
        check_int("min_at_lever", self.min_at_lever, 1, self.n_agents - 1)
        check_int("max_steps", self.max_steps, 1)

    @property
    def optimal_welfare(self) -> float:
        """The most welfare an episode can give: ``10 (N - M) - M``."""
        return DOOR_REWARD * (self.n_agents - self.min_at_lever) + MOVE_REWARD * self.min_at_lever


class EscapeRoomBatch:
    """
    ``n_games`` Escape Rooms stepped together in NumPy (the batched core the contract layer uses as its fast path).

    Agent ``i``'s observation is one-hot positions, its own first, then the other agents' in index order:
    ``3 N`` values in ``{0, 1}``.

    :param n_games: number of rooms
    :param config: the rules, or give their fields as keywords
    :param seed: unused (the game has no randomness), accepted for the batch protocol
    """

    def __init__(self, n_games: int = 1, config: EscapeRoomConfig | None = None, seed: int | None = None,
                 **rules: Any) -> None:
        if config is not None and rules:
            raise ValueError(f"give config or its fields ({sorted(rules)}), not both")
        self.config = config if config is not None else EscapeRoomConfig(**rules)
        self.n_games = check_int("n_games", n_games, 1)
        check_seed(seed)
        n = self.n_agents = self.config.n_agents
        self.n_actions = N_ACTIONS
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.observation_space = spaces.Box(0.0, 1.0, (n, N_POSITIONS * n), dtype=np.float32)
        # agent i's observation lists agent i first, then the others in order
        self._order = np.array([[i, *(j for j in range(n) if j != i)] for i in range(n)])
        self.positions = np.full((self.n_games, n), START, dtype=np.int64)
        self.t = np.zeros(self.n_games, dtype=np.int64)

    def reset(self, seed: int | None = None, mask: np.ndarray | None = None) -> None:
        """
        Put every agent of every room (or of the rooms in ``mask``) back at the start.

        :param seed: unused (no randomness)
        :param mask: ``[n_games]`` booleans, the rooms to reset (all by default)
        """
        check_seed(seed)
        rooms = slice(None) if mask is None else np.asarray(mask, dtype=bool)
        self.positions[rooms] = START
        self.t[rooms] = 0

    def observe(self) -> np.ndarray:
        """Every agent's observation ``[n_games, N, 3 N]`` (float32, a new array)."""
        one_hot = np.eye(N_POSITIONS, dtype=np.float32)[self.positions]  # [G, N, 3]
        return one_hot[:, self._order].reshape(self.n_games, self.n_agents, -1)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        One step of every room.

        :param actions: ``[n_games, N]`` positions to go to, in ``0..2``
        :return: rewards ``[n_games, N]``, terminations ``[n_games]`` and truncations ``[n_games]`` (always
            ``False``: the step limit terminates, see the module's docstring)
        """
        actions = np.asarray(actions)
        if actions.shape != self.positions.shape or not np.issubdtype(actions.dtype, np.integer) \
                or actions.min() < 0 or actions.max() >= N_ACTIONS:
            raise ValueError(f"actions must be integers in 0..{N_ACTIONS - 1} of shape {self.positions.shape}, "
                             f"got {actions.dtype} {actions.shape}")
        door_open = (actions == LEVER).sum(axis=1) >= self.config.min_at_lever
        rewards = np.where(actions == self.positions, STAY_REWARD, MOVE_REWARD)
        rewards = np.where(door_open[:, None] & (actions == DOOR), DOOR_REWARD, rewards)
        self.positions = actions.astype(np.int64)
        self.t += 1
        terminated = (door_open & (self.positions == DOOR).any(axis=1)) | (self.t >= self.config.max_steps)
        return rewards, terminated, np.zeros_like(terminated)
