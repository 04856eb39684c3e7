"""``ContractCoinGame-v0``: the principal's view of the Coin Game (the paper's headline experiment).

Each step the principal sees the game and offers every agent a contract, four payments (one per move, the action
being observed); the agents (a :mod:`~sb3_contracts.game.responders` responder) move; agent ``i`` is paid
``contract[i, a_i]`` (:func:`~sb3_contracts.game.settlement.settle`). The principal's reward is
``welfare / alpha - sum of payments``, welfare being the sum of the agents' game rewards this step.

:class:`PrincipalCoinGames` is the batch (``n`` games stepped together); :class:`ContractCoinGameEnv` (the
registered id, one game) and :class:`ContractCoinGameVecEnv` (an SB3 ``VecEnv`` of ``n`` games, what
:class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` builds from the id) are views over it, so
both give identical trajectories for the same seed, contracts and responder.

Example::

    import gymnasium as gym
    import sb3_contracts  # registers the env ids

    env = gym.make("ContractCoinGame-v0", preset="3x3", agents="threshold", alpha=0.1)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_contracts.contracts import DEFAULT_ALPHA, check_b_max, check_contract
from sb3_contracts.envs.checks import check_real
from sb3_contracts.envs.coin_game import N_ACTIONS, N_OBS_CHANNELS, CoinGameBatch
from sb3_contracts.game.contract_game import ContractGamesView
from sb3_contracts.game.responders import DEFAULT_FOLLOW_PRICE, Responder, make_responder
from sb3_contracts.game.settlement import DEFAULT_B_MAX, settle
from sb3_contracts.game.single import check_render_mode, render_metadata, render_text

#: What the principal observes: every agent's agent-centric view stacked ``[n, 4 G G]`` (the input of a
#: parameter-sharing principal), or the global state flat ``[2 n G G]`` or as a grid ``[2 n, G, G]``.
PRINCIPAL_OBS_FORMATS = ("agents", "flat", "grid")


class PrincipalCoinGames:
    """
    ``n_games`` Coin Games under a principal's contracts, stepped together (the batch both views share).

    :param n_games: number of games
    :param agents: the responder, see :func:`~sb3_contracts.game.responders.make_responder`
    :param alpha: weight of welfare against payments (the principal values welfare at ``1/alpha``)
    :param b_max: the largest payment per action
    :param follow_price: the ``"threshold"`` responder's price of following
    :param obs_format: ``"agents"``, ``"flat"`` or ``"grid"`` (:data:`PRINCIPAL_OBS_FORMATS`)
    :param seed: seed of the games (and of the scripted responders' tie-breaks)
    :param game_kwargs: Coin Game arguments (``preset``, ``grid_size``, ``max_steps``, ``reward_rule``, ``n_agents``)
    """

    def __init__(self, n_games: int = 1, agents: str | Responder | Any = "threshold", alpha: float = DEFAULT_ALPHA,
                 b_max: float = DEFAULT_B_MAX, follow_price: float = DEFAULT_FOLLOW_PRICE, obs_format: str = "agents",
                 seed: int | None = None, **game_kwargs: Any) -> None:
        if obs_format not in PRINCIPAL_OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {PRINCIPAL_OBS_FORMATS}, got {obs_format!r}")
        check_real("alpha", alpha, 0.0, low_open=True)
        self.core = CoinGameBatch(n_games=n_games, seed=seed, **game_kwargs)
        self.responder = make_responder(agents, follow_price)
        self.alpha, self.b_max, self.obs_format = float(alpha), check_b_max(b_max), obs_format
        n, g = self.core.n_agents, self.core.grid_size
        shape = {"agents": (n, N_OBS_CHANNELS * g * g), "flat": (2 * n * g * g,), "grid": (2 * n, g, g)}[obs_format]
        self.observation_space = spaces.Box(0.0, 1.0, shape, dtype=np.float32)
        self.action_space = spaces.Box(0.0, self.b_max, (n, N_ACTIONS), dtype=np.float32)
        self.episode_payments = np.zeros(self.core.n_games)

    def observe(self) -> np.ndarray:
        """The principal's observation of every game ``[N, *obs_shape]`` (a copy)."""
        core = self.core
        view = core.observe(flat=True) if self.obs_format == "agents" else core.global_state()
        return view.reshape(core.n_games, *self.observation_space.shape).copy()

    def check_contracts(self, contracts: Any, name: str = "action") -> np.ndarray:
        """The contracts ``[N, n, 4]`` as float64, or a ``ValueError`` naming ``name``: nothing is clipped."""
        core = self.core
        return check_contract(contracts, (core.n_games, core.n_agents, N_ACTIONS), self.b_max, name,
                              "one contract (a payment per move) per game and agent")

    def reset(self, mask: np.ndarray | None = None, seed: int | None = None) -> None:
        """Start new episodes in every game (or those in ``mask``); responders with a ``reset`` hear of it."""
        self.core.reset(seed=seed, mask=mask)
        games = np.ones(self.core.n_games, dtype=bool) if mask is None else mask
        self.episode_payments[games] = 0.0
        if hasattr(self.responder, "reset"):
            self.responder.reset(self.core, games)

    def play(self, contracts: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
        """
        One step of every game under checked ``contracts [N, n, 4]``: the agents answer, the step is settled.

        :return: the principal's rewards ``[N]``, one ``info`` per game (see :class:`ContractCoinGameEnv`) and the
            truncations ``[N]``
        """
        core = self.core
        actions = np.asarray(self.responder(core.observe(flat=True), contracts, core))
        if actions.shape != (core.n_games, core.n_agents):
            raise ValueError(f"the responder must return actions of shape {(core.n_games, core.n_agents)}, "
                             f"got {actions.shape}")
        step = settle(core, contracts, actions)
        welfare = step.rewards.sum(axis=1)
        paid = step.payments.sum(axis=1)
        self.episode_payments += paid
        extras = self.responder.info(core) if hasattr(self.responder, "info") else {}
        infos = [{"agent_rewards": r, "payments": p, "actions": a, "recommended": rec, "followed": f, "welfare": w}
                 for r, p, a, rec, f, w in zip(step.rewards, step.payments, actions, step.recommended, step.followed,
                                               welfare.tolist(), strict=True)]
        for key, values in extras.items():
            for info, value in zip(infos, values, strict=True):
                info[key] = value
        if step.truncated.any():
            self._end_episodes(step.truncated, infos)
        return welfare / self.alpha - paid, infos, step.truncated

    def _end_episodes(self, ended: np.ndarray, infos: list[dict[str, Any]]) -> None:
        stats = self.core.episode_stats()
        for game in np.flatnonzero(ended).tolist():
            own = stats["pick_own_color"][game]
            infos[game].update(
                episode_welfare=float(stats["social_welfare"][game]),
                episode_payments=float(self.episode_payments[game]),
                pick_speed=float(stats["pick_speed"][game].mean()),
                pick_own_color=float(np.nanmean(own)) if np.isfinite(own).any() else float("nan"),
            )


class PrincipalCoinGamesView(ContractGamesView):
    """What both views over :class:`PrincipalCoinGames` (``self.games``) expose of it; agents by the Coin Game's names
    (:func:`~sb3_contracts.game.responders.make_responder`)."""

    games: PrincipalCoinGames
    make_agents = staticmethod(make_responder)


class ContractCoinGameEnv(PrincipalCoinGamesView, gym.Env):
    """
    The principal's view of one Coin Game (``ContractCoinGame-v0``).

    - Observation: every agent's agent-centric view stacked ``[n, 4 G G]`` (``obs_format="agents"``, the
      default: what a principal with one network shared over agents reads; together the views hold the whole
      state), or the global state (one position channel per player, one coin channel per colour), flat
      ``[2 n G G]`` (``"flat"``) or ``[2 n, G, G]`` (``"grid"``); float32.
    - Action: the contracts ``Box(0, b_max, (n_agents, 4))``: ``action[i, a]`` is paid to agent ``i`` if it
      takes move ``a``. Invalid contracts (shape, NaN, negative, above ``b_max``) raise ``ValueError``.
    - Reward: ``welfare / alpha - sum_i action[i, a_i]``, welfare being ``sum_i r_i`` this step.
    - Episodes are truncated after ``max_steps``; the game never terminates.
    - ``info``: ``agent_rewards``, ``payments``, ``actions``, ``recommended`` (``-1`` = none) and
      ``followed`` (``1``/``0``, ``-1`` when undefined), arrays ``[n_agents]``, ``welfare``, and what the
      responder reports (e.g. a learner's ``follow_bits``); at the last step also ``episode_welfare``,
      ``episode_payments``, ``pick_speed`` (coins per step, mean over agents) and ``pick_own_color`` (mean over
      the agents that picked a coin; NaN if none did).

    :param agents: the responder, see :func:`~sb3_contracts.game.responders.make_responder`
    :param alpha: weight of welfare against payments (the principal values welfare at ``1/alpha``)
    :param b_max: the largest payment per action
    :param follow_price: the ``"threshold"`` responder's price of following
    :param obs_format: ``"agents"`` (default), ``"flat"`` or ``"grid"``
    :param render_mode: ``None``, ``"ansi"`` (``render()`` returns the grid as text) or ``"human"`` (prints it)
    :param game_kwargs: Coin Game arguments: ``preset``, ``grid_size``, ``max_steps``, ``reward_rule``,
        ``n_agents``
    """

    metadata = render_metadata()

    def __init__(self, agents: str | Responder | Any = "threshold", alpha: float = DEFAULT_ALPHA,
                 b_max: float = DEFAULT_B_MAX, follow_price: float = DEFAULT_FOLLOW_PRICE, obs_format: str = "agents",
                 render_mode: str | None = None, **game_kwargs: Any) -> None:
        check_render_mode(render_mode)
        self.games = PrincipalCoinGames(1, agents, alpha, b_max, follow_price, obs_format, **game_kwargs)
        self.render_mode = render_mode
        self.observation_space = self.games.observation_space
        self.action_space = self.games.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        # the core's generator also breaks the scripted responders' ties: one seed fixes the whole episode
        self.games.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
        return self.games.observe()[0], {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        n = self.core.n_agents
        contracts = check_contract(action, (n, N_ACTIONS), self.games.b_max, "action",
                                   "one contract (a payment per move) per agent")
        rewards, infos, truncated = self.games.play(contracts[None])
        return self.games.observe()[0], float(rewards[0]), False, bool(truncated[0]), infos[0]

    def render(self) -> str | None:
        return render_text(self.render_mode, self.core.render_ansi(0))


class ContractCoinGameVecEnv(PrincipalCoinGamesView, VecEnv):
    """
    ``n_games`` principal's views of the Coin Game as one SB3 ``VecEnv`` (one slot per game), stepped together
    with no Python loop over games but the ``info`` dicts SB3 needs. Observations, actions, rewards and ``info``
    are those of :class:`ContractCoinGameEnv`; episodes end together by truncation and reset automatically, their
    last ``info`` carrying ``terminal_observation``, ``TimeLimit.truncated`` and the Monitor-style ``episode``.

    :param n_games: number of games (``num_envs``)
    :param seed: seed of the games (``seed()`` then ``reset()`` reseeds them)
    :param kwargs: the arguments of :class:`ContractCoinGameEnv` (``agents``, ``alpha``, ``b_max``, ``preset``...)
    """

    def __init__(self, n_games: int = 16, seed: int | None = None, **kwargs: Any) -> None:
        check_render_mode(kwargs.pop("render_mode", None))
        self.games = PrincipalCoinGames(n_games, seed=seed, **kwargs)
        self.render_mode = None
        super().__init__(self.games.core.n_games, self.games.observation_space, self.games.action_space)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs)
        self._start = time.time()

    def reset(self) -> VecEnvObs:
        self.games.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self.games.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        contracts, self._actions = self.games.check_contracts(self._actions, "actions"), None
        rewards, infos, truncated = self.games.play(contracts)
        self._returns += rewards
        observations = self.games.observe()
        if truncated.any():
            for game in np.flatnonzero(truncated).tolist():
                infos[game].update({"terminal_observation": observations[game], "TimeLimit.truncated": True,
                                    "episode": {"r": float(self._returns[game]), "l": int(self.core.t[game]),
                                                "t": round(time.time() - self._start, 6)}})
            self._returns[truncated] = 0.0
            self.games.reset(mask=truncated)
            observations = self.games.observe()
        return observations, rewards.astype(np.float32), truncated.copy(), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of this batch once; its result is repeated for every selected slot."""
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
