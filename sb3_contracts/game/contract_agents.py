"""The agents' view of any PettingZoo game under a fixed principal: a PettingZoo ``ParallelEnv`` of one game
(:class:`ContractAgentsParallelEnv`) and an SB3 ``VecEnv`` of every agent of many games
(:class:`ContractGameAgentsVecEnv`).

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

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from sb3_contracts.common.principal import frozen_principal
from sb3_contracts.contracts import DEFAULT_ALPHA, check_contract
from sb3_contracts.game.contract_game import DEFAULT_GAME_B_MAX, ContractGames, make_game_responder
from sb3_contracts.game.one_batch import OneBatchVecEnvMethods
from sb3_contracts.game.parallel_games import GameSpec
from sb3_contracts.game.responders import Responder
from sb3_contracts.game.settlement import nudge_contracts

#: ``principal(observation [n_agents, d]) -> contracts [n_agents, n_actions]``: the principal's observation of one
#: game (what :class:`~sb3_contracts.game.contract_game.ContractGameEnv` shows it) to every agent's contract.
GamePrincipal = Callable[[np.ndarray], np.ndarray]
#: ``principal(observations [N, n_agents, d]) -> contracts [N, n_agents, n_actions]``: the same over a batch of games.
BatchPrincipal = Callable[[np.ndarray], np.ndarray]


def as_batch_principal(principal: Any, shape: tuple[int, int]) -> BatchPrincipal:
    """
    The principal as a callable of a batch of observations: a trained model (frozen, as in
    :func:`as_game_principal`), a callable of the batch, a fixed array of contracts ``[n_agents, n_actions]`` (the same
    in every game), or ``None`` (no contracts).

    :param principal: the principal
    :param shape: ``(n_agents, n_actions)``
    """
    if hasattr(principal, "policy") and hasattr(principal, "predict"):
        return frozen_principal(principal)
    if callable(principal):
        return principal
    fixed = np.zeros(shape) if principal is None else np.asarray(principal, dtype=np.float64)
    return lambda observations: np.broadcast_to(fixed, (len(observations), *fixed.shape))


def as_game_principal(principal: Any, shape: tuple[int, int]) -> GamePrincipal:
    """
    The principal as a callable of one observation: a trained model (its policy frozen, copied and asked greedily:
    later training does not change it, it pickles for SuperSuit's copies, and the agents get no handle on its
    networks), a callable, a fixed array of contracts ``[n_agents, n_actions]``, or ``None`` (no contracts).

    :param principal: the principal
    :param shape: ``(n_agents, n_actions)``
    """
    if callable(principal) and not hasattr(principal, "predict"):
        return principal
    offer = as_batch_principal(principal, shape)
    return lambda observation: offer(observation[None])[0]


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
        rows = games.row_space
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
        rows = self.games.rows()[0]
        self.contracts = check_contract(self.principal(self.games.observe()[0]), self._shape, self.games.b_max,
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


class ContractGameAgentsVecEnv(OneBatchVecEnvMethods, VecEnv):
    """
    The agents' view of ``n_envs`` games of any PettingZoo ``ParallelEnv`` under a fixed principal, as one SB3
    ``VecEnv`` for a shared-parameter SB3 model: slot ``g * n_agents + i`` is agent ``i`` of game ``g`` (with a
    ``partner``, slot ``g`` is agent 0 of game ``g`` and the other agents answer with ``partner``). The games are
    stepped as one batch (the game's own fast path wherever it has one, see
    :mod:`~sb3_contracts.game.parallel_games`).

    - Observation of a slot: its agent's row of the principal's observation (then, with ``observe_contracts``, its
      contract, with the nudge on the recommendation), float32; action: the game's ``Discrete(n_actions)``.
    - Reward: the agent's game reward plus its contract's payment on the action it took.
    - ``info`` per slot: ``payment``, ``followed`` (``1``/``0``, ``-1`` without a recommendation) and
      ``recommended_action`` (``-1`` = none); when its game's episode ends (the game is then reset) also
      ``terminal_observation``, ``TimeLimit.truncated``, the Monitor-style ``episode`` (the agent's return with its
      payments), ``episode_welfare`` (the game's) and ``episode_payments`` (the agent's).

    :param game: a PettingZoo ``ParallelEnv``, a zero-argument callable returning one, or ``"module:callable"``
    :param n_envs: number of games
    :param principal: a trained principal (a model with ``predict``), a callable ``observations [N, n_agents, d] ->
        contracts [N, n_agents, n_actions]``, a fixed array ``[n_agents, n_actions]``, or ``None`` (no contracts)
    :param partner: ``None`` (every agent is a slot) or the other agents' responder (a name, an SB3 model or a
        responder callable, see :func:`~sb3_contracts.game.contract_game.make_game_responder`): agent 0 learns alone
    :param observe_contracts: whether a slot observes its contract (``False``: its row only, e.g. a baseline)
    :param seed: seed of the games (``seed()`` then ``reset()`` reseeds them)
    :param b_max: the largest payment per action (contracts above it raise ``ValueError``)
    :param nudge: ``ξ``, paid on top of the contract to an agent that follows its recommendation
    :param agent_ids: as in :class:`~sb3_contracts.game.contract_game.ContractGameEnv`: must match the principal's
    :param game_kwargs: keyword arguments of the game factory
    """

    def __init__(self, game: GameSpec, n_envs: int = 16, principal: Any = None, partner: str | Responder | Any = None,
                 observe_contracts: bool = True, seed: int | None = None, b_max: float = DEFAULT_GAME_B_MAX,
                 nudge: float = 0.0, agent_ids: bool = False, game_kwargs: dict[str, Any] | None = None) -> None:
        self.games = ContractGames(game, n_envs, "random", DEFAULT_ALPHA, b_max, nudge, agent_ids, seed, game_kwargs)
        games = self.games
        self.core = games.core
        self.n_agents = games.n_agents
        self.principal = as_batch_principal(principal, (games.n_agents, games.n_actions))
        self.partner = None if partner is None else make_game_responder(partner)
        self.observe_contracts = bool(observe_contracts)
        self.render_mode = None
        self._slots = self.n_agents if self.partner is None else 1
        rows = games.row_space
        low, high = rows.low[0], rows.high[0]
        if self.observe_contracts:
            low = np.concatenate([low, np.zeros(games.n_actions, dtype=np.float32)])
            high = np.concatenate([high, np.full(games.n_actions, games.b_max + games.nudge, dtype=np.float32)])
        super().__init__(games.n_games * self._slots, spaces.Box(low, high, dtype=np.float32),
                         spaces.Discrete(games.n_actions))
        self.contracts = np.zeros((games.n_games, games.n_agents, games.n_actions))
        self._offered = self.contracts
        self._returns = np.zeros((games.n_games, games.n_agents))
        self._payments = np.zeros((games.n_games, games.n_agents))
        self._actions: np.ndarray | None = None
        self._start = time.time()

    def _observe(self) -> np.ndarray:
        """Ask the principal for the contracts of the current states; a slot's observation: its row (+ contract)."""
        games = self.games
        rows = games.rows()
        shape = (games.n_games, games.n_agents, games.n_actions)
        self.contracts = check_contract(self.principal(games.observe()), shape, games.b_max, "principal's contracts",
                                        "one payment per game, agent and action")
        self._offered = nudge_contracts(self.contracts, games.nudge)
        if self.observe_contracts:
            rows = np.concatenate([rows, self._offered.astype(np.float32)], axis=2)
        return rows[:, : self._slots].reshape(self.num_envs, -1)

    def reset(self) -> VecEnvObs:
        self.games.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._payments[:] = 0.0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._observe()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.size != self.num_envs:
            raise ValueError(f"actions must hold one action per slot ({self.num_envs}), got shape {actions.shape}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        games = self.games
        actions, self._actions = self._actions.reshape(games.n_games, self._slots), None
        if self.partner is not None:
            others = np.asarray(self.partner(games.rows(), self._offered, games)).reshape(games.n_games, -1)
            actions = np.concatenate([actions, others[:, 1:]], axis=1)
        lengths = games.t + 1
        # the contracts were offered in the state the actions were taken in
        _, infos, terminated, truncated = games.settle(self.contracts, actions.astype(np.int64))
        rewards = np.stack([info["agent_rewards"] + info["payments"] for info in infos])
        payments = np.stack([info["payments"] for info in infos])
        self._returns += rewards
        self._payments += payments
        slot_infos = [{"payment": paid, "followed": flag, "recommended_action": action}
                      for paid, flag, action in zip(
                          payments[:, : self._slots].reshape(-1).tolist(),
                          np.stack([info["followed"] for info in infos])[:, : self._slots].reshape(-1).tolist(),
                          np.stack([info["recommended"] for info in infos])[:, : self._slots].reshape(-1).tolist(),
                          strict=True)]
        observations = self._observe()
        dones = terminated | truncated
        if dones.any():
            self._end_episodes(dones, terminated, lengths, infos, slot_infos, observations)
            games.reset(mask=dones)
            observations = self._observe()
        return observations, rewards[:, : self._slots].reshape(-1).astype(np.float32), \
            np.repeat(dones, self._slots), slot_infos

    def _end_episodes(self, dones: np.ndarray, terminated: np.ndarray, lengths: np.ndarray,
                      infos: list[dict[str, Any]], slot_infos: list[dict[str, Any]], observations: np.ndarray) -> None:
        elapsed = round(time.time() - self._start, 6)
        for game in np.flatnonzero(dones).tolist():
            for agent in range(self._slots):
                slot = game * self._slots + agent
                slot_infos[slot].update({
                    "terminal_observation": observations[slot],
                    "TimeLimit.truncated": not bool(terminated[game]),
                    "episode": {"r": float(self._returns[game, agent]), "l": int(lengths[game]), "t": elapsed},
                    "episode_welfare": infos[game]["episode_welfare"],
                    "episode_payments": float(self._payments[game, agent]),
                })
        self._returns[dones] = 0.0
        self._payments[dones] = 0.0
