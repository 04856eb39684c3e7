"""The agents' view of any PettingZoo game under a fixed principal, itself a PettingZoo ``ParallelEnv``.

Each agent observes its own row of the principal's observation (its observation flattened, then its one-hot index
with ``agent_ids``) followed by its contract (one payment per action, with the nudge on the recommendation), acts,
and earns its game reward plus the payment on the action it took. It passes PettingZoo's ``parallel_api_test``
and trains with SB3 through SuperSuit (one network shared by the agents).

Example::

    import supersuit as ss
    from stable_baselines3 import DQN
    from sb3_contracts import ContractAgentsParallelEnv

    agents_env = ContractAgentsParallelEnv(game, principal)  # principal: a trained MultiAgentContractDQN
    vec_env = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(agents_env), 4, base_class="stable_baselines3")
    DQN("MlpPolicy", vec_env).learn(20_000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from sb3_contracts.common.principal import frozen_principal
from sb3_contracts.contracts import DEFAULT_ALPHA, check_contract
from sb3_contracts.game.contract_game import DEFAULT_GAME_B_MAX, ContractGames
from sb3_contracts.game.parallel_games import GameSpec
from sb3_contracts.game.settlement import nudge_contracts

#: ``principal(observation [n_agents, d]) -> contracts [n_agents, n_actions]``: the principal's observation of one
#: game (what :class:`~sb3_contracts.game.contract_game.ContractGameEnv` shows it) to every agent's contract.
GamePrincipal = Callable[[np.ndarray], np.ndarray]


def as_game_principal(principal: Any, shape: tuple[int, int]) -> GamePrincipal:
    """
    The principal as a callable of one observation: a trained model (its policy frozen, copied and asked greedily:
    later training does not change it, it pickles for SuperSuit's copies, and the agents get no handle on its
    networks), a callable, a fixed array of contracts ``[n_agents, n_actions]``, or ``None`` (no contracts).

    :param principal: the principal
    :param shape: ``(n_agents, n_actions)``
    """
    if principal is None:
        zeros = np.zeros(shape)
        return lambda observation: zeros
    if hasattr(principal, "policy") and hasattr(principal, "predict"):
        offer = frozen_principal(principal)
        return lambda observation: offer(observation[None])[0]
    if callable(principal):
        return principal
    fixed = np.asarray(principal, dtype=np.float64)
    return lambda observation: fixed


class ContractAgentsParallelEnv(ParallelEnv):
    """
    The agents' view of one game of a PettingZoo ``ParallelEnv`` under a fixed principal.

    - Agents: the game's. Observation of each: ``Box`` of its row (``obs_dim``) followed by its contract
      (``n_actions``, in ``[0, b_max + nudge]``), float32. Action: the game's ``Discrete(n_actions)``.
    - Reward: the agent's game reward plus its contract's payment on the action it took (plus ``ξ`` if that is the
      recommended action).
    - Every agent stays in the game until its episode ends (terminated if some agent terminated, else truncated).
    - ``info`` per agent: ``payment``, ``followed`` (``1``/``0``, ``-1`` without a recommendation),
      ``recommended_action`` (``-1`` = none) and ``game_reward``; at the end also ``episode_welfare`` and
      ``episode_payments`` (of the game, over all agents).

    :param game: a PettingZoo ``ParallelEnv``, a zero-argument callable returning one, or ``"module:callable"``
    :param principal: a trained principal (a model with ``predict``, e.g. ``MultiAgentContractDQN``), a callable
        ``observation [n_agents, d] -> contracts [n_agents, n_actions]``, a fixed array of contracts, or ``None``
    :param b_max: the largest payment per action (contracts above it raise ``ValueError``)
    :param nudge: ``ξ``, paid on top of the contract to an agent that follows its recommendation
    :param agent_ids: as in :class:`~sb3_contracts.game.contract_game.ContractGameEnv`: must match what the principal
        was trained on
    :param game_kwargs: keyword arguments of the game factory
    :param render_mode: ``None`` only
    """

    metadata = {"name": "contract_agents_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, game: GameSpec, principal: Any = None, b_max: float = DEFAULT_GAME_B_MAX, nudge: float = 0.0,
                 agent_ids: bool = False, game_kwargs: dict[str, Any] | None = None,
                 render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None, got {render_mode!r}")
        self.render_mode = None
        self.games = ContractGames(game, 1, "random", DEFAULT_ALPHA, b_max, nudge, agent_ids, game_kwargs=game_kwargs)
        games = self.games
        self._shape = (games.n_agents, games.n_actions)
        self.principal = as_game_principal(principal, self._shape)
        self.possible_agents = list(games.core.possible_agents)
        self.agents: list[str] = []
        rows = games.observation_space
        low = np.concatenate([rows.low[0], np.zeros(games.n_actions, dtype=np.float32)])
        high = np.concatenate([rows.high[0], np.full(games.n_actions, games.b_max + games.nudge, dtype=np.float32)])
        self._observation_space = spaces.Box(low, high, dtype=np.float32)
        self._action_space = spaces.Discrete(games.n_actions)
        self.contracts = np.zeros(self._shape)

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """
        Start a new episode and ask the principal for its contracts.

        :param seed: seed of the game
        :param options: unused
        :return: observations and (empty) infos per agent
        """
        self.games.reset(seed=seed)
        self.agents = self.possible_agents[:]
        return self._observe(), {agent: {} for agent in self.agents}

    def _observe(self) -> dict[str, np.ndarray]:
        """Ask the principal for the contracts of the current state; observation = own row + own contract."""
        rows = self.games.observe()[0]
        self.contracts = check_contract(self.principal(rows.copy()), self._shape, self.games.b_max,
                                        "principal's contracts", "one payment per agent and action")
        offered = nudge_contracts(self.contracts, self.games.nudge).astype(np.float32)
        return dict(zip(self.possible_agents, np.concatenate([rows, offered], axis=1), strict=True))

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """
        Every agent acts under the contract it was offered; it is paid on its action.

        :param actions: one action per agent
        :return: observations, rewards, terminations, truncations and infos per agent
        """
        if not self.agents:
            raise RuntimeError("the episode is over: call reset() before step()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing or len(actions) != len(self.agents):
            raise ValueError(f"actions must hold exactly one action per agent {self.agents}, got keys {list(actions)}")
        joint = np.array([[int(actions[agent]) for agent in self.agents]])
        if joint.min() < 0 or joint.max() >= self._shape[1]:
            raise ValueError(f"actions must be in 0..{self._shape[1] - 1}, got {actions}")
        _, infos, terminated, truncated = self.games.settle(self.contracts[None], joint)
        info = infos[0]
        done = bool(terminated[0] or truncated[0])
        agents = self.agents
        observations = self._observe()
        rewards = info["agent_rewards"] + info["payments"]
        extra = {key: info[key] for key in ("episode_welfare", "episode_payments") if key in info}
        step_infos = {agent: {"payment": float(info["payments"][i]), "followed": int(info["followed"][i]),
                              "recommended_action": int(info["recommended"][i]),
                              "game_reward": float(info["agent_rewards"][i]), **extra}
                      for i, agent in enumerate(agents)}
        if done:
            self.agents = []
        return (observations, dict(zip(agents, rewards.tolist(), strict=True)),
                dict.fromkeys(agents, bool(terminated[0])), dict.fromkeys(agents, bool(truncated[0])), step_infos)

    def close(self) -> None:
        pass
