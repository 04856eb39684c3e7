"""Any PettingZoo ``ParallelEnv`` as a batch of games stepped together: what the generic contract views step.

The views of :mod:`~sb3_contracts.game.contract_game` and :mod:`~sb3_contracts.game.contract_agents` step a
*game batch*, any object with:

- ``n_games``, ``n_agents``, ``n_actions`` (every agent's action space is ``Discrete(n_actions)``),
  ``possible_agents`` (the agents' names, in row order) and ``observation_space``, a ``Box[n_agents, obs_dim]``
  (each agent's observation flattened to one row);
- ``reset(seed=None, mask=None)``: start new episodes in every game (or in the games of the boolean ``mask``);
- ``observe() -> [n_games, n_agents, obs_dim]`` float32;
- ``step(actions [n_games, n_agents]) -> (rewards [n_games, n_agents], terminated [n_games], truncated
  [n_games])``.

:class:`ParallelEnvBatch` is this batch for any ``ParallelEnv`` (one copy per game, stepped in a Python loop).
A game that has a faster batch of its own (NumPy over games) provides it as a method of its env,
``make_batch(n_games, seed=None)``, and :func:`make_game_batch` then uses it: the Escape Room and the Coin Game do.
Such a batch may also have ``rng`` (its generator, which the responders then share), ``global_state()`` with
``state_space`` (what a principal with ``obs_format="flat"``/``"grid"`` observes), ``episode_infos(games)`` (its own
end-of-episode statistics, one dict per game) and ``core`` (the world's batch it wraps, which scripted agents read).
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_contracts.envs.checks import check_int, check_seed

#: What the generic views accept as a game: a ``ParallelEnv``, a zero-argument callable returning one, or the
#: ``"module:callable"`` path of a factory (what registered ids hold).
GameSpec = Any


def build_game(game: GameSpec, game_kwargs: dict[str, Any] | None = None) -> Any:
    """
    A fresh ``ParallelEnv`` from a game spec.

    :param game: a ``ParallelEnv`` (returned as is), a callable returning one, or ``"module:callable"``
    :param game_kwargs: keyword arguments of the callable (not allowed with an env instance)
    :return: the env, checked to look like a ``ParallelEnv``
    """
    if isinstance(game, str):
        module, sep, name = game.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"game as a string must be 'module:callable', got {game!r}")
        game = getattr(importlib.import_module(module), name)
    if _is_parallel_env(game):
        if game_kwargs:
            raise ValueError("game_kwargs need a game factory (a callable or 'module:callable'), not an env instance")
        return game
    if not callable(game):
        raise TypeError(f"game must be a PettingZoo ParallelEnv, a callable returning one or 'module:callable', "
                        f"got {type(game).__name__}")
    env = game(**(game_kwargs or {}))
    if not _is_parallel_env(env):
        raise TypeError(f"game must build a PettingZoo ParallelEnv, got {type(env).__name__}")
    return env


def _is_parallel_env(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("possible_agents", "reset", "step", "action_space",
                                                 "observation_space")) and not isinstance(value, type)


def make_game_batch(game: GameSpec, n_games: int = 1, seed: int | None = None,
                    game_kwargs: dict[str, Any] | None = None) -> Any:
    """
    ``n_games`` copies of ``game`` as one game batch: the game's own ``make_batch`` if its env has one, else a
    :class:`ParallelEnvBatch`.

    :param game: a ``ParallelEnv``, a callable returning one, or ``"module:callable"``
    :param n_games: number of games
    :param seed: seed of the games (game ``g`` is seeded ``seed + g`` at the first reset)
    :param game_kwargs: keyword arguments of the game factory
    """
    n_games = check_int("n_games", n_games, 1)
    seed = check_seed(seed)
    first = build_game(game, game_kwargs)
    if callable(getattr(first, "make_batch", None)):
        return first.make_batch(n_games, seed=seed)
    if _is_parallel_env(game) and n_games > 1:
        copies = [first, *(copy.deepcopy(first) for _ in range(n_games - 1))]
    else:
        copies = [first, *(build_game(game, game_kwargs) for _ in range(n_games - 1))]
    return ParallelEnvBatch(copies, seed=seed)


class ParallelEnvBatch:
    """
    Copies of a PettingZoo ``ParallelEnv`` as a game batch (see the module docstring), stepped one after the other.

    Every agent's observation is flattened to one row (``gymnasium.spaces.flatten``: a ``Box`` flat, a ``Discrete``
    one-hot); the agents must share one ``Discrete`` action space and flatten to rows of one length. A game's
    episode ends when every agent is done; an agent done earlier sits out the rest (its row keeps its last
    observation, its reward is 0 and its actions are ignored). The episode *terminates* if some agent terminated in
    its last step, and is *truncated* otherwise.

    :param envs: one ``ParallelEnv`` per game, all of one game
    :param seed: seed of game ``g`` (``seed + g``) at the next reset
    """

    def __init__(self, envs: list[Any], seed: int | None = None) -> None:
        if not envs:
            raise ValueError("envs must hold at least one ParallelEnv")
        self.envs = envs
        self.n_games = len(envs)
        first = envs[0]
        self.possible_agents = list(first.possible_agents)
        self.n_agents = len(self.possible_agents)
        if self.n_agents < 1:
            raise ValueError("game must have at least one agent (possible_agents is empty)")
        self.n_actions = _shared_actions(first, self.possible_agents)
        self._spaces = [first.observation_space(agent) for agent in self.possible_agents]
        self.observation_space = _stacked_rows(self._spaces, self.possible_agents)
        self._rows = np.zeros((self.n_games, *self.observation_space.shape), dtype=np.float32)
        self._done = np.ones((self.n_games, self.n_agents), dtype=bool)
        self._seed = check_seed(seed)

    def reset(self, seed: int | None = None, mask: np.ndarray | None = None) -> None:
        """
        Start new episodes in every game, or in the games of ``mask``.

        :param seed: seed of game ``g`` (``seed + g``); by default the one given at creation, used once
        :param mask: ``[n_games]`` booleans
        """
        seed = check_seed(seed)
        if seed is None:
            seed, self._seed = self._seed, None
        games = range(self.n_games) if mask is None else np.flatnonzero(mask).tolist()
        for g in games:
            observations, _ = self.envs[g].reset(seed=None if seed is None else seed + g)
            self._done[g] = False
            self._rows[g] = self._flatten(observations, self._rows[g])

    def observe(self) -> np.ndarray:
        """Every agent's observation row ``[n_games, n_agents, obs_dim]`` (a copy)."""
        return self._rows.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        One step of every game.

        :param actions: ``[n_games, n_agents]`` actions (the agents done already are ignored)
        :return: rewards ``[n_games, n_agents]``, terminations and truncations ``[n_games]``
        """
        actions = np.asarray(actions)
        if actions.shape != (self.n_games, self.n_agents):
            raise ValueError(f"actions must have shape {(self.n_games, self.n_agents)}, got {actions.shape}")
        rewards = np.zeros((self.n_games, self.n_agents))
        terminated = np.zeros(self.n_games, dtype=bool)
        truncated = np.zeros(self.n_games, dtype=bool)
        for g, env in enumerate(self.envs):
            if self._done[g].all():
                raise RuntimeError(f"game {g} is over: reset it before stepping")
            live = [agent for agent, done in zip(self.possible_agents, self._done[g], strict=True) if not done]
            index = {agent: i for i, agent in enumerate(self.possible_agents)}
            joint = {agent: int(actions[g, index[agent]]) for agent in live}
            observations, step_rewards, terminations, truncations, _ = env.step(joint)
            self._rows[g] = self._flatten(observations, self._rows[g])
            for agent in live:
                i = index[agent]
                rewards[g, i] = step_rewards.get(agent, 0.0)
                self._done[g, i] = terminations.get(agent, False) or truncations.get(agent, False)
            if self._done[g].all():
                terminated[g] = any(terminations.get(agent, False) for agent in live)
                truncated[g] = not terminated[g]
        return rewards, terminated, truncated

    def _flatten(self, observations: dict[str, Any], previous: np.ndarray) -> np.ndarray:
        rows = previous.copy()
        for i, agent in enumerate(self.possible_agents):
            if agent in observations:
                rows[i] = spaces.flatten(self._spaces[i], observations[agent])
        return rows


def _shared_actions(env: Any, agents: list[str]) -> int:
    """The one ``Discrete(n)`` action space every agent shares, or a ``ValueError`` naming ``game``."""
    action_spaces = [env.action_space(agent) for agent in agents]
    first = action_spaces[0]
    if not isinstance(first, spaces.Discrete) or int(first.start) != 0 \
            or any(space != first for space in action_spaces):
        raise ValueError(f"game's agents must share one Discrete action space starting at 0, got "
                         f"{dict(zip(agents, action_spaces, strict=True))}")
    return int(first.n)


def _stacked_rows(observation_spaces: list[spaces.Space], agents: list[str]) -> spaces.Box:
    """The agents' flattened observation spaces stacked ``Box[n_agents, obs_dim]`` (the widest bounds per column)."""
    try:
        flat = [spaces.flatten_space(space) for space in observation_spaces]
    except NotImplementedError as error:
        raise ValueError(f"game's observation spaces must flatten to a Box (Box, Discrete, ...): {error}") from None
    if any(not isinstance(space, spaces.Box) or space.shape != flat[0].shape for space in flat):
        raise ValueError(f"game's agents must have observations of one flat size, got "
                         f"{dict(zip(agents, (space.shape for space in flat), strict=True))}")
    low = np.min([space.low for space in flat], axis=0)
    high = np.max([space.high for space in flat], axis=0)
    return spaces.Box(np.broadcast_to(low, (len(agents), *low.shape)).astype(np.float32),
                      np.broadcast_to(high, (len(agents), *high.shape)).astype(np.float32), dtype=np.float32)

