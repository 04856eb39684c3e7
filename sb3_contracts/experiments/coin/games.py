"""The games the experiment plays: the Coin Game through its own batched views, or any game the contract layer wraps.

Every phase of :mod:`~sb3_contracts.experiments.coin.experiment` reaches its game through the methods of
:class:`CoinExperimentGame` or :class:`WrappedExperimentGame` (:func:`experiment_game` picks one from the settings):
the principal's VecEnv, the agents' VecEnv under a frozen principal (every agent learning, or agent 0 alone against
a partner), the bare game for the baselines (one slot per agent, no contract), the principal's contracts from a
saved model, the responders, evaluation rollouts and the exact optimum when the game has one. A wrapped game is any
PettingZoo ``ParallelEnv`` under :class:`~sb3_contracts.ContractGameVecEnv` and
:class:`~sb3_contracts.game.contract_agents.ContractGameAgentsVecEnv` (stepped as one batch where the game provides
``make_batch``); its optimum is the env's ``optimal_welfare`` attribute when it has one (per episode, before
payments), else unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_contracts.common.principal import frozen_principal
from sb3_contracts.contracts import check_contract
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.envs.coin_game.optimum import optimal_welfare
from sb3_contracts.experiments.coin.baselines import collect_rollouts
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.game.coin_agents_view import (
    ContractAgentsVecEnv,
    Principal,
    SoloContractVecEnv,
    coin_principal,
    make_principal,
)
from sb3_contracts.game.coin_principal_view import ContractCoinGameVecEnv
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv
from sb3_contracts.game.contract_agents import ContractGameAgentsVecEnv
from sb3_contracts.game.contract_game import ContractGames, ContractGameVecEnv, make_game_responder, view_kwargs
from sb3_contracts.game.parallel_games import build_game
from sb3_contracts.game.responders import Responder, make_responder
from sb3_contracts.game.settlement import DEFAULT_B_MAX

#: Seed offset of the evaluation games (added to the settings' seed).
EVAL_SEED = 10_000


class CoinExperimentGame:
    """
    The Coin Game of the settings (``preset``, ``reward_rule``, ``contested``, ``n_agents``) through its own views.

    :param config: the experiment
    """

    def __init__(self, config: CoinSettings) -> None:
        self.config = config
        self.n_agents = config.n_agents

    def principal_env(self) -> VecEnv:
        """The principal's VecEnv (``ContractCoinGame-v0``'s batch), seeded with the settings' seed."""
        config = self.config
        return ContractCoinGameVecEnv(config.n_games, seed=config.seed, alpha=config.alpha, **config.game_kwargs())

    def agents_env(self, principal: Principal, seed: int, partner: Responder | None = None) -> VecEnv:
        """
        The agents' VecEnv under ``principal``: every player a slot, or with ``partner`` player 0 alone (``n_agents``
        times the games, for as many learner slots per step).

        :param principal: the frozen contracts (:meth:`offer`)
        :param seed: seed of the games
        :param partner: the other players' responder
        """
        config = self.config
        if partner is None:
            return ContractAgentsVecEnv(config.n_games, principal=principal, seed=seed, **config.game_kwargs())
        return SoloContractVecEnv(config.n_agents * config.n_games, principal, partner, seed=seed,
                                  **config.game_kwargs())

    def baseline_env(self, seed: int) -> VecEnv:
        """The bare game, one slot per player, no contract (what the baselines shape)."""
        config = self.config
        return CoinGameVecEnv(config.n_games, obs_format="flat", seed=seed, **config.game_kwargs())

    @staticmethod
    def offer(model: Any) -> Principal:
        """The contracts of a trained principal, frozen."""
        return coin_principal(model)

    @staticmethod
    def responder(agents: Any) -> Responder:
        """Agents by name (``"follow"``...), an SB3 model or a responder callable, as a responder."""
        return make_responder(agents)

    def rollouts(self, responder: Responder, principal: Principal | None) -> dict[str, np.ndarray]:
        """
        The evaluation's episodes (``eval_games x eval_episodes``, seeded ``EVAL_SEED + seed``) under ``principal``
        (``None``: no contracts), as :func:`~sb3_contracts.experiments.coin.metrics.rollout_metrics` reads them.
        """
        config = self.config
        core = CoinGameBatch(config.eval_games, seed=EVAL_SEED + config.seed, **config.game_kwargs())
        offer = make_principal(principal, core.n_games, core.n_agents, DEFAULT_B_MAX)
        return collect_rollouts(responder, offer, core, config.eval_episodes)

    def optimum(self) -> float | None:
        """The exact cooperative optimum per episode (known for two players only)."""
        config = self.config
        return optimal_welfare(config.game_config()) if config.n_agents == 2 else None


class WrappedExperimentGame:
    """
    Any game the contract layer wraps (``config.game``), through the layer's generic views.

    :param config: the experiment
    """

    def __init__(self, config: CoinSettings) -> None:
        self.config = config
        self.view = view_kwargs(config.game, config.env_kwargs)
        self.agents_view = {key: value for key, value in self.view.items() if key != "alpha"}
        self.game = build_game(self.view["game"], self.view.get("game_kwargs"))
        self.n_agents = len(self.game.possible_agents)

    def principal_env(self) -> VecEnv:
        """The principal's :class:`~sb3_contracts.ContractGameVecEnv`, seeded with the settings' seed."""
        config = self.config
        return ContractGameVecEnv(n_envs=config.n_games, seed=config.seed, **{**self.view, "alpha": config.alpha})

    def agents_env(self, principal: Any, seed: int, partner: Responder | None = None) -> VecEnv:
        """As :meth:`CoinExperimentGame.agents_env`, on :class:`ContractGameAgentsVecEnv`."""
        n_games = self.config.n_games * (1 if partner is None else self.n_agents)
        return ContractGameAgentsVecEnv(n_envs=n_games, principal=principal, partner=partner, seed=seed,
                                        **self.agents_view)

    def baseline_env(self, seed: int) -> VecEnv:
        """The bare game, one slot per agent, no contract."""
        return ContractGameAgentsVecEnv(n_envs=self.config.n_games, observe_contracts=False, seed=seed,
                                        **self.agents_view)

    @staticmethod
    def offer(model: Any) -> Any:
        """The contracts of a trained principal, frozen: observations ``[N, n, d]`` to contracts ``[N, n, A]``."""
        return frozen_principal(model)

    @staticmethod
    def responder(agents: Any) -> Responder:
        """Agents by name (``"follow"``, ``"random"``), an SB3 model or a responder callable, as a responder."""
        return make_game_responder(agents)

    def rollouts(self, responder: Responder, principal: Any | None) -> dict[str, np.ndarray]:
        """
        As :meth:`CoinExperimentGame.rollouts`: ``eval_episodes`` episodes in each of ``eval_games`` games; steps after
        an episode's end count as zeros (no reward, no payment, no recommendation). The game has no pick statistics
        (NaN).
        """
        config = self.config
        games = ContractGames(n_games=config.eval_games, agents=responder, seed=EVAL_SEED + config.seed,
                              **self.agents_view)
        shape = (games.n_games, games.n_agents, games.n_actions)
        offer = (lambda rows: np.zeros(shape)) if principal is None else principal
        episodes: dict[str, list[np.ndarray]] = {"rewards": [], "payments": [], "followed": []}
        current: dict[str, list[list[np.ndarray]]] = {key: [[] for _ in range(games.n_games)] for key in episodes}
        ended = np.zeros(games.n_games, dtype=np.int64)
        games.reset()
        while (ended < config.eval_episodes).any():
            contracts = check_contract(offer(games.observe()), shape, games.b_max, "principal's contracts",
                                       "one payment per game, agent and action")
            _, infos, terminated, truncated = games.play(contracts)
            for game, info in enumerate(infos):
                for key, name in (("rewards", "agent_rewards"), ("payments", "payments"), ("followed", "followed")):
                    current[key][game].append(info[name])
            for game in np.flatnonzero(terminated | truncated).tolist():
                if ended[game] < config.eval_episodes:
                    for key in episodes:
                        episodes[key].append(np.stack(current[key][game]))
                ended[game] += 1
                for key in episodes:
                    current[key][game] = []
            games.reset(mask=terminated | truncated)
        return {**{key: _pad(steps, -1 if key == "followed" else 0) for key, steps in episodes.items()},
                "pick_speed": np.full((len(episodes["rewards"]), games.n_agents), np.nan),
                "pick_own_color": np.full((len(episodes["rewards"]), games.n_agents), np.nan)}

    def optimum(self) -> float | None:
        """The game's ``optimal_welfare`` per episode, if its env has one."""
        value = getattr(self.game, "optimal_welfare", None)
        return None if value is None else float(value)


def _pad(episodes: list[np.ndarray], fill: float) -> np.ndarray:
    """Episodes ``[T_e, n]`` of different lengths as one ``[T, E, n]`` array, ``fill`` after each episode's end."""
    longest = max(len(steps) for steps in episodes)
    out = np.full((longest, len(episodes), episodes[0].shape[1]), fill, dtype=np.result_type(episodes[0], fill))
    for e, steps in enumerate(episodes):
        out[: len(steps), e] = steps
    return out


def experiment_game(config: CoinSettings) -> CoinExperimentGame | WrappedExperimentGame:
    """The game of the settings: the Coin Game, or the wrapped ``config.game``."""
    return CoinExperimentGame(config) if config.game is None else WrappedExperimentGame(config)
