"""The agents' view of the Coin Game under a fixed principal: an SB3 ``VecEnv`` for DQN/PPO responders.

Every player of every game is one slot (slot ``g * n_agents + i`` is player ``i`` of game ``g``), as in
:class:`~sb3_contracts.game.coin_vec_env.CoinGameVecEnv`, whose auto-reset and episode infos are reused. Each
slot observes its agent-centric flat grid followed by its own contract (four payments) and receives its own game
reward plus the payment on the action it took. One shared-parameter model acts for all slots.

Example::

    from stable_baselines3 import DQN
    from sb3_contracts.game import ContractAgentsVecEnv

    contract = [[0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]  # pay agent 0 for moving down
    vec_env = ContractAgentsVecEnv(n_games=8, principal=contract, preset="3x3")
    DQN("MlpPolicy", vec_env).learn(10_000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_contracts.common.principal import frozen_principal, live_principal
from sb3_contracts.contracts import check_b_max, check_contract
from sb3_contracts.envs.coin_game import N_ACTIONS
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv
from sb3_contracts.game.responders import Responder, make_responder
from sb3_contracts.game.settlement import DEFAULT_B_MAX, settle
from sb3_contracts.game.single import check_render_mode, render_metadata, render_text

#: ``principal(global_state [N, 2n, G, G], agent_obs [N, n, 4 G G]) -> contracts [N, n, 4]``. Both inputs are
#: buffers that the next step overwrites: copy them to keep them.
Principal = Callable[[np.ndarray, np.ndarray], np.ndarray]


def make_principal(principal: Principal | np.ndarray | None, n_games: int, n_agents: int, b_max: float) -> Principal:
    """
    Turn ``principal`` into a callable whose contracts are validated at every call.

    :param principal: a callable ``(global_state, agent_obs) -> contracts [N, n, 4]``, a fixed array (one
        contract per agent ``[n, 4]``, or per game and agent ``[N, n, 4]``), or ``None`` (no contracts)
    :param n_games: number of games ``N``
    :param n_agents: number of agents ``n``
    :param b_max: the largest payment allowed
    :return: the principal as a callable returning float64 ``[N, n, 4]``
    """
    shape = (n_games, n_agents, N_ACTIONS)
    b_max = check_b_max(b_max)
    meaning = "one payment per game, agent and action"
    if principal is None:
        zeros = np.zeros(shape)
        return lambda global_state, agent_obs: zeros
    if callable(principal):
        def offer(global_state: np.ndarray, agent_obs: np.ndarray) -> np.ndarray:
            return check_contract(principal(global_state, agent_obs), shape, b_max, "principal's contracts", meaning)

        return offer
    fixed = np.asarray(principal, dtype=np.float64)
    if fixed.shape == shape[1:]:
        fixed = np.broadcast_to(fixed, shape)
    fixed = check_contract(fixed, shape, b_max, "principal", f"or {shape[1:]}; {meaning}")
    return lambda global_state, agent_obs: fixed


class ContractAgentsVecEnv(CoinGameVecEnv):
    """
    ``n_games`` Coin Games as one SB3 ``VecEnv`` of ``n_games * n_agents`` slots, with a principal's contracts.

    The principal is asked once per step for all games' contracts (and once more after an auto-reset, for
    the new episodes' first state). Each step's ``info`` holds ``payment``, ``followed`` (``1``/``0``, ``-1``
    without a recommendation) and ``recommended_action`` (``-1`` = none) for the slot; at the end of an
    episode ``episode["r"]`` is the player's return *including* payments (what ``Monitor`` would record),
    ``episode_payments`` the payments alone, and the Coin Game statistics are those of
    :class:`~sb3_contracts.game.coin_vec_env.CoinGameVecEnv`.

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
        self.b_max = check_b_max(b_max)
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

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        # the contracts were offered in the state the actions were taken in
        step = settle(self.core, self.contracts, actions)
        payments = step.payments.reshape(-1)
        self._episode_payments += payments
        # SB3 needs one dict per slot; tolist() keeps this loop to plain Python scalars
        infos = [{"payment": paid, "followed": flag, "recommended_action": action}
                 for paid, flag, action in zip(payments.tolist(), step.followed.reshape(-1).tolist(),
                                               step.recommended.reshape(-1).tolist(), strict=True)]
        return step.rewards + step.payments, step.truncated, infos

    def _fill_episode_infos(self, infos: list[dict[str, Any]], obs: np.ndarray, truncated: np.ndarray) -> None:
        super()._fill_episode_infos(infos, obs, truncated)
        ended = np.repeat(truncated, self.core.n_agents)
        for slot in np.flatnonzero(ended):
            infos[slot]["episode"]["r"] += float(self._episode_payments[slot])
            infos[slot]["episode_payments"] = float(self._episode_payments[slot])
        self._episode_payments[ended] = 0.0


class SoloContractVecEnv(VecEnv):
    """
    The agents' view with one learner per game (player 0); the other players answer with a fixed responder.

    :param n_games: games (= slots of this VecEnv)
    :param principal: the contracts, as for :class:`ContractAgentsVecEnv`
    :param partner: responder of the other players (e.g. ``"follow"``, or an SB3 model)
    :param seed: seed of the games
    :param game_kwargs: Coin Game arguments
    """

    def __init__(self, n_games: int, principal: Principal, partner: Responder | Any, seed: int | None = None,
                 **game_kwargs: Any) -> None:
        self.inner = ContractAgentsVecEnv(n_games, principal=principal, seed=seed, **game_kwargs)
        self.partner = make_responder(partner)
        self.n_agents = self.inner.core.n_agents
        super().__init__(n_games, self.inner.observation_space, spaces.Discrete(N_ACTIONS))
        self._inner_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        self._inner_obs = self.inner.reset()
        return self._inner_obs[:: self.n_agents].copy()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.size != self.num_envs:
            raise ValueError(f"actions must hold one move per game ({self.num_envs}), got shape {actions.shape}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        core, n = self.inner.core, self.n_agents
        grid = self._inner_obs.reshape(core.n_games, n, -1)[..., :-N_ACTIONS]
        joint = np.asarray(self.partner(grid, self.inner.contracts, core)).reshape(core.n_games, n).copy()
        joint[:, 0] = self._actions
        self._inner_obs, rewards, dones, infos = self.inner.step(joint.reshape(-1))
        return self._inner_obs[::n].copy(), rewards[::n], dones[::n], infos[::n]

    def seed(self, seed: int | None = None) -> list[int | None]:
        # the games live in the inner env, and only its reset() reads a seed
        return self.inner.seed(seed)[:: self.n_agents]

    def close(self) -> None:
        self.inner.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self.inner.get_attr(attr_name, [0])[0] for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.inner.set_attr(attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = self.inner.env_method(method_name, *method_args, indices=[0], **method_kwargs)[0]
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def coin_principal(model: Any, live: bool = False) -> Principal:
    """
    A learned principal of ``ContractCoinGame-v0`` as the agents' view embeds it: a callable of the observations
    only (:func:`~sb3_contracts.common.principal.frozen_principal`, or with ``live`` the model's current networks),
    fed what the model observed in training (the stacked agent views, or the global state).

    :param model: a principal trained on the principal's view (e.g. ``MultiAgentContractDQN``)
    :param live: read the model's current networks instead of a frozen copy
    """
    offer = live_principal(model) if live else frozen_principal(model)
    shape = model.observation_space.shape

    def principal(global_state: np.ndarray, agent_obs: np.ndarray) -> np.ndarray:
        view = agent_obs if len(shape) == 2 else global_state
        return offer(view.reshape(view.shape[0], *shape)).reshape(*agent_obs.shape[:2], -1)

    return principal


class ContractCoinGameAgentsEnv(gym.Env):
    """
    One agent's view of the Coin Game under contracts, as a single-agent Gymnasium env (``ContractCoinGameAgents-v0``,
    what rl-zoo3 can train): player 0 learns; the other players answer with ``partner``; the principal is a saved
    learner (``principal``: the path of a ``MultiAgentContractDQN`` zip) or none. Observation: player 0's flat
    agent-centric grid followed by its contract; action: a move; reward: its game reward plus the payment on the
    move it took. Episodes end by truncation after the game's ``max_steps``.

    :param principal: path of a saved principal, or ``None`` (no contracts)
    :param partner: the other players' responder (``"follow"`` by default: the SPE ratio's setting), see
        :func:`~sb3_contracts.game.responders.make_responder`
    :param b_max: the largest payment per move
    :param render_mode: ``None``, ``"ansi"`` (``render()`` returns the grid as text) or ``"human"`` (prints it)
    :param game_kwargs: Coin Game arguments (``preset``, ``reward_rule``, ``n_agents``...)
    """

    metadata = render_metadata()

    def __init__(self, principal: str | None = None, partner: str | Any = "follow", b_max: float = DEFAULT_B_MAX,
                 render_mode: str | None = None, **game_kwargs: Any) -> None:
        check_render_mode(render_mode)
        self.render_mode = render_mode
        offer = None
        if principal is not None:
            from sb3_contracts.contract_dqn_multiagent import MultiAgentContractDQN

            offer = coin_principal(MultiAgentContractDQN.load(principal, device="cpu"))
        self.inner = SoloContractVecEnv(1, offer, partner, b_max=b_max, **game_kwargs)
        self.observation_space = self.inner.observation_space
        self.action_space = self.inner.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.inner.seed(int(self.np_random.integers(2**31)))
        return self.inner.reset()[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, rewards, dones, infos = self.inner.step(np.array([action]))
        info = infos[0]
        if dones[0]:
            obs = info["terminal_observation"][None]
        return obs[0], float(rewards[0]), False, bool(dones[0]), info

    def render(self) -> str | None:
        return render_text(self.render_mode, self.inner.inner.core.render_ansi(0))
