"""The agents' view of the Coin Game under a fixed principal: an SB3 ``VecEnv`` for DQN/PPO responders.

Every player of every game is one slot (slot ``g * n_agents + i`` is player ``i`` of game ``g``), as in
:class:`~sb3_contracts.coin_vec_env.CoinGameVecEnv`, whose auto-reset and episode infos are reused. Each slot
observes its agent-centric flat grid followed by its own contract (four payments) and receives its own game
reward plus the payment on the action it took. One shared-parameter model acts for all slots.

Example::

    from stable_baselines3 import DQN
    from sb3_contracts.multiagent import ContractAgentsVecEnv

    contract = [[0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]  # pay agent 0 for moving down
    vec_env = ContractAgentsVecEnv(n_games=8, principal=contract, preset="3x3")
    DQN("MlpPolicy", vec_env).learn(10_000)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from sb3_contracts.coin_vec_env import CoinGameVecEnv
from sb3_contracts.envs.coin_game import N_ACTIONS
from sb3_contracts.multiagent.common import DEFAULT_B_MAX, Principal, follow_flags, make_principal, pay, recommend


class ContractAgentsVecEnv(CoinGameVecEnv):
    """
    ``n_games`` Coin Games as one SB3 ``VecEnv`` of ``n_games * n_agents`` slots, with a principal's contracts.

    The principal is asked once per step for all games' contracts (and once more after an auto-reset, for
    the new episodes' first state). Each step's ``info`` holds ``payment``, ``followed`` (``1``/``0``, ``-1``
    without a recommendation) and ``recommended_action`` (``-1`` = none) for the slot; at the end of an
    episode ``episode["r"]`` is the player's return *including* payments (what ``Monitor`` would record),
    ``episode_payments`` the payments alone, and the Coin Game statistics are those of
    :class:`~sb3_contracts.coin_vec_env.CoinGameVecEnv`.

    :param n_games: number of games
    :param principal: a callable ``(global_state [N, 2n, G, G], agent_obs [N, n, 4 G G]) -> contracts
        [N, n, 4]``, a fixed array ``[n, 4]`` or ``[N, n, 4]``, or ``None`` (no contracts)
    :param b_max: the largest payment per action (contracts above it raise ``ValueError``); also the upper
        bound of the contract part of the observation space
    :param seed: seed of the games
    :param game_kwargs: Coin Game arguments (``preset``, ``grid_size``, ``max_steps``, ``n_agents``,
        ``reward_rule``)
    """

    def __init__(
        self,
        n_games: int = 1,
        principal: Principal | np.ndarray | None = None,
        b_max: float = DEFAULT_B_MAX,
        seed: int | None = None,
        **game_kwargs: Any,
    ) -> None:
        if "obs_format" in game_kwargs:
            raise ValueError("ContractAgentsVecEnv observations are flat (grid followed by contract): "
                             "obs_format cannot be set")
        super().__init__(n_games=n_games, obs_format="flat", seed=seed, **game_kwargs)
        core = self.core
        self.principal = make_principal(principal, core.n_games, core.n_agents, b_max)
        self.b_max = float(b_max)
        grid_dim = self.observation_space.shape[0]
        high = np.concatenate([np.ones(grid_dim), np.full(N_ACTIONS, self.b_max)]).astype(np.float32)
        self.observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self.contracts = np.zeros((core.n_games, core.n_agents, N_ACTIONS))
        self._episode_payments = np.zeros(self.num_envs)

    def _observe(self) -> np.ndarray:
        """Ask the principal for the contracts of the current state; observation = own grid + own contract."""
        agent_obs = self.core.observe(flat=True)
        self.contracts = self.principal(self.core.global_state(), agent_obs)
        return np.concatenate([agent_obs, self.contracts.astype(np.float32)], axis=-1).reshape(self.num_envs, -1)

    def reset(self) -> np.ndarray:
        self._episode_payments[:] = 0.0
        return super().reset()

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        actions = np.asarray(self._actions).reshape(self.core.n_games, self.core.n_agents)
        contracts = self.contracts  # offered in the state the actions were taken in
        obs, rewards, dones, infos = super().step_wait()
        payments = pay(contracts, actions).reshape(-1)
        recommended = recommend(contracts).reshape(-1)
        followed = follow_flags(recommended, actions.reshape(-1))
        self._episode_payments += payments
        # SB3 needs one dict per slot; tolist() keeps this loop to plain Python scalars
        for info, paid, flag, action in zip(infos, payments.tolist(), followed.tolist(), recommended.tolist(),
                                            strict=True):
            info.update(payment=paid, followed=flag, recommended_action=action)
        if dones.any():
            for slot in np.flatnonzero(dones):
                infos[slot]["episode"]["r"] += float(self._episode_payments[slot])
                infos[slot]["episode_payments"] = float(self._episode_payments[slot])
            self._episode_payments[dones] = 0.0
        return obs, (rewards + payments).astype(np.float32), dones, infos
