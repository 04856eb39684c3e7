"""An SB3 ``VecEnv`` over the batched Coin Game: every player of every game is one slot.

This is parameter sharing as SuperSuit does it (``pettingzoo_env_to_vec_env_v1`` +
``concat_vec_envs_v1``), without the per-game Python loop: one policy acts for all
``n_games * n_agents`` slots, each slot seeing its player's agent-centric observation and receiving
that player's reward. Slot ``g * n_agents + i`` is player ``i`` of game ``g``.

Example::

    from stable_baselines3 import DQN
    from sb3_contracts.game.coin_vec_env import CoinGameVecEnv

    vec_env = CoinGameVecEnv(n_games=8, preset="3x3", obs_format="flat")
    DQN("MlpPolicy", vec_env).learn(10_000)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_contracts.envs.coin_game import N_ACTIONS, N_OBS_CHANNELS, OBS_FORMATS, CoinGameBatch

#: Per-player episode statistics copied into the slot's final ``info`` (with ``social_welfare``).
EPISODE_STAT_KEYS = ("coins_picked", "own_coins_picked", "pick_speed", "pick_own_color")


class CoinGameVecEnv(VecEnv):
    """
    ``n_games`` Coin Games as one SB3 ``VecEnv`` of ``n_games * n_agents`` slots.

    Episodes end by truncation only, at the same step in every game, and the games are then reset
    automatically, as SB3 expects: the ``info`` of each slot at that step holds
    ``terminal_observation``, ``TimeLimit.truncated=True`` (so that learners bootstrap),
    ``episode={"r", "l", "t"}`` (the player's return, the length and the wall time since creation,
    read by SB3's ``ep_info_buffer`` as ``Monitor`` would write it), the player's Coin Game
    statistics (``EPISODE_STAT_KEYS``) and the game's ``social_welfare``.

    :param n_games: number of games (the batch size of the core)
    :param obs_format: ``"flat"`` (``[4 * G * G]``, for ``MlpPolicy``) or ``"grid"`` (``[4, G, G]``)
    :param seed: seed of the core's random generator (``seed()`` then ``reset()`` reseeds it)
    :param game_kwargs: other arguments of :class:`~sb3_contracts.envs.coin_game.CoinGameBatch`
        (``preset``, ``grid_size``, ``max_steps``, ``n_agents``, ``reward_rule``)
    """

    def __init__(self, n_games: int = 1, obs_format: str = "flat", seed: int | None = None, **game_kwargs: Any):
        if obs_format not in OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {OBS_FORMATS}, got {obs_format!r}")
        self.core = CoinGameBatch(n_games=n_games, seed=seed, **game_kwargs)
        self.obs_format = obs_format
        self.render_mode = None
        g = self.core.grid_size
        shape = (N_OBS_CHANNELS * g * g,) if obs_format == "flat" else (N_OBS_CHANNELS, g, g)
        super().__init__(
            n_games * self.core.n_agents,
            spaces.Box(0.0, 1.0, shape, dtype=np.float32),
            spaces.Discrete(N_ACTIONS),
        )
        self._actions: np.ndarray | None = None
        self._start_time = time.time()

    def _observe(self) -> np.ndarray:
        obs = self.core.observe(flat=self.obs_format == "flat")
        return obs.reshape(self.num_envs, *self.observation_space.shape).copy()

    def reset(self) -> VecEnvObs:
        """
        Reset every game; a seed set with ``seed()`` reseeds the core (used once).

        :return: observations ``[num_envs, *obs_shape]``
        """
        self.core.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._observe()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.size != self.num_envs:
            raise ValueError(f"actions must hold one move per slot ({self.num_envs} = {self.core.n_games} games x "
                             f"{self.core.n_agents} players), got shape {actions.shape}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        actions = self._actions.reshape(self.core.n_games, self.core.n_agents)
        self._actions = None
        rewards, truncated, infos = self._advance(actions)
        obs = self._observe()
        dones = np.repeat(truncated, self.core.n_agents)
        if truncated.any():
            self._fill_episode_infos(infos, obs, truncated)
            self.core.reset(mask=truncated)
            obs = self._observe()
        return obs, rewards.reshape(-1), dones, infos

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """
        Step every game: the slots' rewards ``[N, n]``, the games' truncations ``[N]`` and one ``info`` per slot.

        :param actions: ``[N, n]`` every player's move
        """
        rewards, truncated = self.core.step(actions)
        return rewards, truncated, [{} for _ in range(self.num_envs)]

    def _fill_episode_infos(self, infos: list[dict[str, Any]], obs: np.ndarray, truncated: np.ndarray) -> None:
        stats = self.core.episode_stats()
        per_slot = {key: stats[key].reshape(-1) for key in ("episode_return", *EPISODE_STAT_KEYS)}
        welfare = np.repeat(stats["social_welfare"], self.core.n_agents)
        length = np.repeat(stats["episode_length"], self.core.n_agents)
        elapsed = round(time.time() - self._start_time, 6)
        # one dict per finished slot is what SB3 consumes; this loop runs once per episode only
        for slot in np.flatnonzero(np.repeat(truncated, self.core.n_agents)):
            infos[slot].update({
                "terminal_observation": obs[slot],
                "TimeLimit.truncated": True,
                "episode": {"r": float(per_slot["episode_return"][slot]), "l": int(length[slot]), "t": elapsed},
                **{key: per_slot[key][slot].item() for key in EPISODE_STAT_KEYS},
                "social_welfare": float(welfare[slot]),
            })

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute of the shared core (the same for every slot)."""
        source = self if attr_name == "render_mode" else self.core
        return [getattr(source, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared core (every slot sees the change)."""
        setattr(self.core, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call a method of the shared core once; its result is repeated for every selected slot."""
        result = getattr(self.core, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
