"""``ContractCoinGame-v0``: the principal's view of the Coin Game (the paper's headline experiment).

Each step the principal sees the game and offers every agent a contract, four payments (one per move, the action
being observed); the agents (a :mod:`~sb3_contracts.game.responders` responder) move; agent ``i`` is paid
``contract[i, a_i]`` (:func:`~sb3_contracts.game.settlement.settle`). The principal's reward is
``welfare / alpha - sum of payments``, welfare being the sum of the agents' game rewards this step.

:class:`ContractCoinGameEnv` (the registered id, one game) and :class:`ContractCoinGameVecEnv` (an SB3 ``VecEnv`` of
``n`` games, what :class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` builds from the id) are the
generic contract layer's views (:class:`~sb3_contracts.game.contract_game.ContractGameEnv`,
:class:`~sb3_contracts.game.contract_game.ContractGameVecEnv`) over the Coin Game's PettingZoo env, whose batched core
is their fast path (``make_batch``): the step is written once, in :mod:`~sb3_contracts.game.contract_game`. What is
the Coin Game's own: its agents by name (the ``"threshold"`` responder by default), ``b_max = 2``, the seed of a single
game drawn from the env's generator, the end-of-episode pick statistics and the text rendering.

Example::

    import gymnasium as gym
    import sb3_contracts  # registers the env ids

    env = gym.make("ContractCoinGame-v0", preset="3x3", agents="threshold", alpha=0.1)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

from typing import Any

from sb3_contracts.contracts import DEFAULT_ALPHA
from sb3_contracts.game.contract_game import PRINCIPAL_OBS_FORMATS, ContractGameEnv, ContractGameVecEnv
from sb3_contracts.game.responders import DEFAULT_FOLLOW_PRICE, Responder, make_responder
from sb3_contracts.game.settlement import DEFAULT_B_MAX
from sb3_contracts.game.single import render_text

#: The Coin Game's PettingZoo env, whose ``make_batch`` is the batched core the views step.
COIN_GAME = "sb3_contracts.envs.coin_game.coin_game_v0:parallel_env"

__all__ = ["COIN_GAME", "PRINCIPAL_OBS_FORMATS", "ContractCoinGameEnv", "ContractCoinGameVecEnv"]


class ContractCoinGameEnv(ContractGameEnv):
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

    make_agents = staticmethod(make_responder)

    def __init__(self, agents: str | Responder | Any = "threshold", alpha: float = DEFAULT_ALPHA,
                 b_max: float = DEFAULT_B_MAX, follow_price: float = DEFAULT_FOLLOW_PRICE, obs_format: str = "agents",
                 render_mode: str | None = None, **game_kwargs: Any) -> None:
        super().__init__(COIN_GAME, alpha, b_max, make_responder(agents, follow_price), game_kwargs=game_kwargs,
                         render_mode=render_mode, obs_format=obs_format)

    def game_seed(self, seed: int | None) -> int | None:
        """A seed drawn from the env's generator: the core's generator also breaks the scripted responders' ties, so
        one seed fixes the whole episode."""
        return None if seed is None else int(self.np_random.integers(2**31))

    def render(self) -> str | None:
        return render_text(self.render_mode, self.core.render_ansi(0))


class ContractCoinGameVecEnv(ContractGameVecEnv):
    """
    ``n_games`` principal's views of the Coin Game as one SB3 ``VecEnv`` (one slot per game), stepped together
    with no Python loop over games but the ``info`` dicts SB3 needs. Observations, actions, rewards and ``info``
    are those of :class:`ContractCoinGameEnv`; episodes end together by truncation and reset automatically, their
    last ``info`` carrying ``terminal_observation``, ``TimeLimit.truncated`` and the Monitor-style ``episode``.

    :param n_games: number of games (``num_envs``)
    :param seed: seed of the games (``seed()`` then ``reset()`` reseeds them)
    :param agents: the responder, see :func:`~sb3_contracts.game.responders.make_responder`
    :param alpha: weight of welfare against payments
    :param b_max: the largest payment per action
    :param follow_price: the ``"threshold"`` responder's price of following
    :param obs_format: ``"agents"`` (default), ``"flat"`` or ``"grid"``
    :param game_kwargs: Coin Game arguments (``preset``, ``reward_rule``, ``n_agents``...)
    """

    make_agents = staticmethod(make_responder)

    def __init__(self, n_games: int = 16, seed: int | None = None, agents: str | Responder | Any = "threshold",
                 alpha: float = DEFAULT_ALPHA, b_max: float = DEFAULT_B_MAX,
                 follow_price: float = DEFAULT_FOLLOW_PRICE, obs_format: str = "agents",
                 render_mode: str | None = None, **game_kwargs: Any) -> None:
        super().__init__(COIN_GAME, n_games, seed, agents=make_responder(agents, follow_price), alpha=alpha,
                         b_max=b_max, obs_format=obs_format, game_kwargs=game_kwargs, render_mode=render_mode)
