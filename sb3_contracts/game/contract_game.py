"""The principal's view of any PettingZoo game under contracts: :class:`ContractGameEnv`, :class:`ContractGameVecEnv`.

Each step the principal sees every agent's observation (one row each) and offers every agent a contract, one payment
per action (the action is observed, so it is paid on directly); the agents (a responder, see
:mod:`~sb3_contracts.game.responders`) act; agent ``i`` is paid ``contract[i, a_i]`` (plus the nudge ``ξ`` when
it follows a recommendation; :mod:`~sb3_contracts.game.settlement`). The principal's reward is
``welfare / alpha - payments``, welfare being the sum of the agents' game rewards this step.

:class:`ContractGames` is the batch of games under contracts; :class:`ContractGameEnv` (one game, a Gymnasium env)
and :class:`ContractGameVecEnv` (``n_envs`` games, an SB3 ``VecEnv``) are views over it, so both give identical
trajectories for the same seed, contracts and responder (game ``g`` of the VecEnv is seeded ``seed + g``).
A game whose env has ``make_batch`` is stepped as one batch (see :mod:`~sb3_contracts.game.parallel_games`).

Example::

    from sb3_contracts import ContractGameVecEnv, MultiAgentContractDQN
    from sb3_contracts.envs.escape_room import escape_room_v0

    env = ContractGameVecEnv(escape_room_v0.parallel_env, n_envs=16, b_max=2.0, agent_ids=True,
                             game_kwargs={"n_agents": 2, "min_at_lever": 1})
    MultiAgentContractDQN("MlpPolicy", env).learn(30_000)
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from sb3_contracts.contracts import DEFAULT_ALPHA, check_b_max, check_contract
from sb3_contracts.envs.checks import check_real
from sb3_contracts.game.one_batch import OneBatchVecEnvMethods
from sb3_contracts.game.parallel_games import GameSpec, build_game, make_game_batch
from sb3_contracts.game.responders import Responder, ThresholdResponder, make_responder, random_responder
from sb3_contracts.game.settlement import nudge_contracts, settle_actions
from sb3_contracts.game.single import check_render_mode, render_metadata, render_text

#: The built-in agents of a generic game: ``"follow"`` takes every recommendation (a random action without one),
#: ``"random"`` ignores contracts.
GAME_RESPONDERS = ("follow", "random")
#: Default largest payment per action.
DEFAULT_GAME_B_MAX = 1.0
#: What the principal observes: every agent's row ``[n, d]``, or the game's global state flat or shaped.
PRINCIPAL_OBS_FORMATS = ("agents", "flat", "grid")


def make_game_responder(agents: str | Responder | Any) -> Responder:
    """
    The agents of a generic game: ``"follow"``, ``"random"``, an SB3 model (one ``predict`` for all agents of all
    games, on each agent's row followed by its contract when the model was trained so) or a responder callable
    ``(agent_rows [N, n, d], contracts [N, n, A], games) -> actions [N, n]`` (``games.rng`` is a NumPy generator).

    :param agents: the name, model or callable
    """
    if isinstance(agents, str):
        if agents not in GAME_RESPONDERS:
            raise ValueError(f"agents must be one of {GAME_RESPONDERS}, an SB3 model or a responder callable, "
                             f"got {agents!r}")
        return random_responder if agents == "random" else ThresholdResponder(0.0, fallback=random_responder)
    return make_responder(agents)


def view_kwargs(game: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    The arguments of a game's principal's view (:class:`ContractGameEnv`) from its name: a registered contract-game
    id's (an id whose registered arguments name a ``game``, e.g. ``ContractEscapeRoom-v0``), or ``{"game": game}`` for
    ``"module:callable"``; then ``env_kwargs``.
    The game is built once here, so that a bad name fails before anything trains.

    :param game: the id or ``"module:callable"``
    :param env_kwargs: overrides (``b_max``, ``agent_ids``, ``game_kwargs``, ...)
    """
    if not isinstance(game, str):
        raise ValueError(f"game must be a registered contract-game id or 'module:callable', got {game!r}")
    if ":" in game:
        kwargs = {"game": game}
    else:  # importing this package registered the ids (sb3_contracts/__init__.py)
        registered = gym.registry.get(game)
        if registered is None or "game" not in registered.kwargs:
            ids = sorted(name for name, spec in gym.registry.items() if "game" in spec.kwargs)
            raise ValueError(f"game must be a registered contract-game id ({', '.join(ids)}) or 'module:callable' "
                             f"of a PettingZoo ParallelEnv factory, got {game!r}")
        kwargs = dict(registered.kwargs)
    kwargs.update(env_kwargs or {})
    build_game(kwargs["game"], kwargs.get("game_kwargs"))
    return kwargs


class ContractGames:
    """
    ``n_games`` games under a principal's contracts, stepped together (the batch both views share).

    :param game: a PettingZoo ``ParallelEnv``, a zero-argument callable returning one, or ``"module:callable"``
    :param n_games: number of games
    :param agents: the responder, see :func:`make_game_responder`
    :param alpha: weight of welfare against payments (the principal values welfare at ``1/alpha``)
    :param b_max: the largest payment per action
    :param nudge: ``ξ``, paid on top of a contract's payment to an agent that follows its recommendation
    :param agent_ids: append a one-hot of the agent's index to its row (agents of a symmetric game then differ)
    :param seed: seed of the games and of the responders' random draws
    :param game_kwargs: keyword arguments of the game factory
    :param obs_format: what the principal observes: ``"agents"`` (every agent's row, ``[n, d]``), or the game's global
        state (a game batch with ``global_state()`` and ``state_space``, as the Coin Game's) flat (``"flat"``) or as
        the game shapes it (``"grid"``)

    The responders are handed this batch: its ``rng`` (the game batch's own generator if it has one, so that one seed
    fixes the game and the agents' draws, else one seeded here) and its ``world``, the world's own batch under the
    game batch (the game batch's ``core`` if it wraps one, as the Coin Game's does: its scripted players read the
    positions there; else the game batch itself).
    """

    def __init__(self, game: GameSpec, n_games: int = 1, agents: str | Responder | Any = "follow",
                 alpha: float = DEFAULT_ALPHA, b_max: float = DEFAULT_GAME_B_MAX, nudge: float = 0.0,
                 agent_ids: bool = False, seed: int | None = None, game_kwargs: dict[str, Any] | None = None,
                 obs_format: str = "agents") -> None:
        self.alpha = check_real("alpha", alpha, 0.0, low_open=True)
        self.b_max = check_b_max(b_max)
        self.nudge = check_real("nudge", nudge, 0.0)
        if not isinstance(agent_ids, bool):
            raise TypeError(f"agent_ids must be a bool, got {type(agent_ids).__name__}")
        if obs_format not in PRINCIPAL_OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {PRINCIPAL_OBS_FORMATS}, got {obs_format!r}")
        self.core = make_game_batch(game, n_games, seed, game_kwargs)
        self.world = getattr(self.core, "core", self.core)
        self.responder = make_game_responder(agents)
        self.agent_ids, self.obs_format = agent_ids, obs_format
        self._rng = np.random.default_rng(seed)
        core = self.core
        self.n_games, self.n_agents, self.n_actions = core.n_games, core.n_agents, core.n_actions
        rows = core.observation_space
        low, high = rows.low, rows.high
        if agent_ids:
            ids = np.eye(self.n_agents, dtype=np.float32)
            low, high = np.concatenate([low, np.zeros_like(ids)], 1), np.concatenate([high, np.ones_like(ids)], 1)
        self.row_space = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = self.row_space if obs_format == "agents" else self._state_space(obs_format)
        self.action_space = spaces.Box(0.0, self.b_max, (self.n_agents, self.n_actions), dtype=np.float32)
        self.t = np.zeros(self.n_games, dtype=np.int64)
        self.episode_welfare = np.zeros(self.n_games)
        self.episode_payments = np.zeros(self.n_games)

    def _state_space(self, obs_format: str) -> spaces.Box:
        """The principal's observation space of the game's global state, flat or as the game shapes it."""
        state = getattr(self.core, "state_space", None)
        if state is None or not callable(getattr(self.core, "global_state", None)):
            raise ValueError(f"obs_format={obs_format!r} needs a game batch with a global state (global_state() and "
                             f"state_space, as the Coin Game's): use 'agents'")
        if obs_format == "grid":
            return state
        return spaces.Box(state.low.reshape(-1), state.high.reshape(-1), dtype=np.float32)

    @property
    def rng(self) -> np.random.Generator:
        """The generator of the responders' random draws: the game batch's own if it has one, else this batch's."""
        own = getattr(self.core, "rng", None)
        return self._rng if own is None else own

    def rows(self) -> np.ndarray:
        """Every agent's row ``[N, n, d]`` (its observation, then its one-hot index with ``agent_ids``): what the
        agents see; it may be a buffer the next call overwrites."""
        rows = self.core.observe()
        if self.agent_ids:
            ids = np.broadcast_to(np.eye(self.n_agents, dtype=np.float32), (self.n_games, self.n_agents, self.n_agents))
            rows = np.concatenate([rows, ids], axis=2)
        return np.asarray(rows, dtype=np.float32)

    def observe(self) -> np.ndarray:
        """The principal's observation of every game ``[N, *obs_shape]`` (a new array): the agents' rows
        (``obs_format="agents"``) or the game's global state."""
        if self.obs_format == "agents":
            return self.rows().copy()
        return self.core.global_state().reshape(self.n_games, *self.observation_space.shape).copy()

    def check_contracts(self, contracts: Any, name: str = "action") -> np.ndarray:
        """The contracts ``[N, n, A]`` as float64, or a ``ValueError`` naming ``name``: nothing is clipped."""
        return check_contract(contracts, (self.n_games, self.n_agents, self.n_actions), self.b_max, name,
                              "one contract (a payment per action) per game and agent")

    def reset(self, mask: np.ndarray | None = None, seed: int | None = None) -> None:
        """Start new episodes in every game (or those in ``mask``); responders with a ``reset`` hear of it."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.core.reset(seed=seed, mask=mask)
        games = np.ones(self.n_games, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.t[games] = 0
        self.episode_welfare[games] = 0.0
        self.episode_payments[games] = 0.0
        if hasattr(self.responder, "reset"):
            self.responder.reset(self, games)

    def play(self, contracts: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray, np.ndarray]:
        """
        One step of every game under checked ``contracts [N, n, A]``: the agents answer, the step is settled.

        :return: the principal's rewards ``[N]``, one ``info`` per game (see :class:`ContractGameEnv`), the
            terminations and the truncations ``[N]``
        """
        # the agents answer what they are offered: the contracts with the nudge
        actions = np.asarray(self.responder(self.rows(), nudge_contracts(contracts, self.nudge), self))
        if actions.shape != (self.n_games, self.n_agents):
            raise ValueError(f"the responder must return actions of shape {(self.n_games, self.n_agents)}, "
                             f"got {actions.shape}")
        rewards, infos, terminated, truncated = self.settle(contracts, actions)
        extras = self.responder.info(self) if hasattr(self.responder, "info") else {}
        for key, values in extras.items():
            for info, value in zip(infos, values, strict=True):
                info[key] = value
        return rewards, infos, terminated, truncated

    def settle(self, contracts: np.ndarray, actions: np.ndarray
               ) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray, np.ndarray]:
        """
        Step every game with the agents' ``actions [N, n]`` under checked ``contracts [N, n, A]`` and settle.

        :return: the principal's rewards ``[N]``, one ``info`` per game, the terminations and truncations ``[N]``
        """
        offered = nudge_contracts(contracts, self.nudge)
        rewards, terminated, truncated = self.core.step(actions)
        settled = settle_actions(offered, actions)
        welfare, paid = rewards.sum(axis=1), settled.payments.sum(axis=1)
        self.t += 1
        self.episode_welfare += welfare
        self.episode_payments += paid
        infos = [{"agent_rewards": r, "payments": p, "actions": a, "recommended": rec, "followed": f, "welfare": w}
                 for r, p, a, rec, f, w in zip(rewards, settled.payments, actions, settled.recommended,
                                               settled.followed, welfare.tolist(), strict=True)]
        ended = np.flatnonzero(terminated | truncated).tolist()
        if ended:
            self._end_episodes(ended, infos)
        return welfare / self.alpha - paid, infos, terminated, truncated

    def _end_episodes(self, ended: list[int], infos: list[dict[str, Any]]) -> None:
        """The finished episodes' welfare, payments and length in their last ``info``; a game batch with statistics of
        its own (``episode_infos(games)``, e.g. the Coin Game's) reports those instead of the welfare and length."""
        own = getattr(self.core, "episode_infos", None)
        stats = own(ended) if callable(own) else [
            {"episode_welfare": float(self.episode_welfare[game]), "episode_length": int(self.t[game])}
            for game in ended]
        for game, extra in zip(ended, stats, strict=True):
            infos[game].update(extra, episode_payments=float(self.episode_payments[game]))


class ContractGamesView:
    """
    What a view over a batch of games under contracts (``self.games``: :class:`ContractGames`, or a world's own
    batch with ``core``, ``responder`` and ``alpha``) exposes of it. ``make_agents`` turns what ``set_responder``
    is given into a responder (a world may name agents of its own).
    """

    games: Any
    make_agents = staticmethod(make_game_responder)

    @property
    def core(self) -> Any:
        """The batch of games underneath."""
        return self.games.core

    @property
    def responder(self) -> Responder:
        """The agents answering the contracts."""
        return self.games.responder

    @property
    def alpha(self) -> float:
        """The weight of welfare against payments in the reward."""
        return self.games.alpha

    def set_responder(self, agents: str | Responder | Any) -> None:
        """Plug in other agents (a name, an SB3 model or a responder callable), e.g. a learner's training agents."""
        self.games.responder = self.make_agents(agents)


class ContractGameEnv(ContractGamesView, gym.Env):
    """
    The principal's view of one game of any PettingZoo ``ParallelEnv`` whose agents share one ``Discrete`` action
    space (observations ``Box``, ``Discrete``, or anything Gymnasium flattens).

    - Observation: ``Box[n_agents, obs_dim]``, each agent's own observation flattened, one row each (then its
      one-hot index with ``agent_ids``); float32.
    - Action: the contracts ``Box(0, b_max, (n_agents, n_actions))``: ``action[i, a]`` is paid to agent ``i`` if it
      takes action ``a``. Invalid contracts (shape, NaN, negative, above ``b_max``) raise ``ValueError``.
    - Reward: ``welfare / alpha - payments``, welfare being ``sum_i r_i`` this step, payments what the agents were
      paid (with the nudge ``ξ`` for each agent that followed a recommendation).
    - Episodes end when the game's do (terminated if some agent terminated, truncated otherwise).
    - ``info``: ``agent_rewards``, ``payments``, ``actions``, ``recommended`` (``-1`` = none) and ``followed``
      (``1``/``0``, ``-1`` when undefined), arrays ``[n_agents]``, ``welfare``, and what the responder reports
      (e.g. a learner's ``follow_bits``); at the last step also ``episode_welfare``, ``episode_payments`` and
      ``episode_length``.

    :param game: a PettingZoo ``ParallelEnv``, a zero-argument callable returning one, or ``"module:callable"``
    :param alpha: weight of welfare against payments (the principal values welfare at ``1/alpha``)
    :param b_max: the largest payment per action
    :param agents: who answers the contracts, see :func:`make_game_responder` (``"follow"`` by default; a learner
        plugs in its own while it learns)
    :param nudge: ``ξ``, paid on top of a contract's payment to an agent that follows its recommendation
    :param agent_ids: append a one-hot of the agent's index to its row (needed when agents see the same thing, e.g.
        everyone at the start of the Escape Room, and one network is shared over agents)
    :param game_kwargs: keyword arguments of the game factory
    :param render_mode: ``None``, ``"ansi"`` (``render()`` returns the step, the agents' rows and the last
        contracts as text) or ``"human"`` (prints it)
    :param obs_format: ``"agents"`` (the rows above), or for a game with a global state ``"flat"`` or ``"grid"``, see
        :class:`ContractGames`
    """

    metadata = render_metadata()

    def __init__(self, game: GameSpec, alpha: float = DEFAULT_ALPHA, b_max: float = DEFAULT_GAME_B_MAX,
                 agents: str | Responder | Any = "follow", nudge: float = 0.0, agent_ids: bool = False,
                 game_kwargs: dict[str, Any] | None = None, render_mode: str | None = None,
                 obs_format: str = "agents") -> None:
        check_render_mode(render_mode)
        self.games = ContractGames(game, 1, agents, alpha, b_max, nudge, agent_ids, game_kwargs=game_kwargs,
                                   obs_format=obs_format)
        self.render_mode = render_mode
        self._last_contracts: np.ndarray | None = None
        self.observation_space = self.games.observation_space
        self.action_space = self.games.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.games.reset(seed=self.game_seed(seed))
        return self.games.observe()[0], {}

    def game_seed(self, seed: int | None) -> int | None:
        """The seed the game is reset with for ``reset(seed=seed)``: ``seed`` itself (as game 0 of the VecEnv)."""
        return seed

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        contracts = check_contract(action, self.action_space.shape, self.games.b_max, "action",
                                   "one contract (a payment per action) per agent")
        rewards, infos, terminated, truncated = self.games.play(contracts[None])
        self._last_contracts = contracts
        return self.games.observe()[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0]), infos[0]

    def render(self) -> str | None:
        rows = np.array2string(self.games.observe()[0], precision=2)
        return render_text(self.render_mode, f"step {int(self.games.t[0])}\nrows:\n{rows}\n"
                                             f"last contracts:\n{self._last_contracts}")


class ContractGameVecEnv(ContractGamesView, OneBatchVecEnvMethods, VecEnv):
    """
    ``n_envs`` principal's views of a game as one SB3 ``VecEnv`` (one slot per game, game ``g`` seeded
    ``seed + g``). Observations, actions, rewards and ``info`` are those of :class:`ContractGameEnv`; a game whose
    episode ends is reset automatically, its last ``info`` carrying ``terminal_observation``,
    ``TimeLimit.truncated`` (ended by truncation) and the Monitor-style ``episode``.

    :param game: a PettingZoo ``ParallelEnv``, a zero-argument callable returning one, or ``"module:callable"``
    :param n_envs: number of games (``num_envs``)
    :param seed: seed of the games (``seed()`` then ``reset()`` reseeds them)
    :param kwargs: the other arguments of :class:`ContractGameEnv` (``alpha``, ``b_max``, ``agents``, ``nudge``...)
    """

    def __init__(self, game: GameSpec, n_envs: int = 16, seed: int | None = None, **kwargs: Any) -> None:
        check_render_mode(kwargs.pop("render_mode", None))
        self.games = ContractGames(game, n_envs, seed=seed, **kwargs)
        self.render_mode = None
        super().__init__(self.games.n_games, self.games.observation_space, self.games.action_space)
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
        lengths = self.games.t + 1
        rewards, infos, terminated, truncated = self.games.play(contracts)
        self._returns += rewards
        observations = self.games.observe()
        dones = terminated | truncated
        if dones.any():
            for game in np.flatnonzero(dones).tolist():
                infos[game].update({"terminal_observation": observations[game],
                                    "TimeLimit.truncated": bool(truncated[game] and not terminated[game]),
                                    "episode": {"r": float(self._returns[game]), "l": int(lengths[game]),
                                                "t": round(time.time() - self._start, 6)}})
            self._returns[dones] = 0.0
            self.games.reset(mask=dones)
            observations = self.games.observe()
        return observations, rewards.astype(np.float32), dones, infos


def make_contract_game_vec_env(n_envs: int, seed: int | None = None, **kwargs: Any) -> ContractGameVecEnv:
    """
    :class:`ContractGameVecEnv` as the learners build a registered id's batched VecEnv (``n_envs`` first).

    :param n_envs: number of games
    :param seed: seed of the games
    :param kwargs: ``game`` and the other arguments of :class:`ContractGameEnv`
    """
    return ContractGameVecEnv(n_envs=n_envs, seed=seed, **kwargs)
