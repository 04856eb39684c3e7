"""The Coin Game experiment's metrics (the paper's Figure 2), as plain functions of rollouts and returns.

Rollout arrays are indexed ``[step, episode, agent]`` (``T x E x n``); per-episode statistics ``[episode,
agent]``. Follow flags use the convention of :mod:`sb3_contracts.game.settlement`: ``1`` followed, ``0``
deviated, ``-1`` no recommendation (excluded from the follow rate).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


def follow_rate(followed: np.ndarray) -> float:
    """
    Share of recommendations followed, over the agents that had one.

    :param followed: follow flags (any shape), ``-1`` where there was no recommendation
    :return: the rate, NaN when no agent had a recommendation
    """
    followed = np.asarray(followed)
    valid = followed >= 0
    return float(followed[valid].mean()) if valid.any() else float("nan")


def payment_share(total_payments: float, total_welfare: float) -> float:
    """
    Payments as a share of welfare (the paper's Figure 2b).

    :param total_payments: everything the principal paid
    :param total_welfare: the agents' summed game rewards over the same episodes
    :return: ``total_payments / total_welfare``; NaN when the welfare is zero
    """
    return ratio(total_payments, total_welfare)


def ratio(value: float, reference: float) -> float:
    """
    ``value / reference``, NaN when ``reference`` is zero (e.g. a game whose cooperative baseline earns nothing).

    :param value: the numerator
    :param reference: the denominator
    """
    return float(value / reference) if reference != 0 else float("nan")


def spe_ratio(deviating_return: float, following_return: float) -> float:
    """
    SPE ratio (Figure 2d): a best-responding agent's return when it deviates, divided by its return when it
    follows, the other agents following. About 1 means following is a best response (an equilibrium).

    :param deviating_return: the agent's mean return with its best response (others following)
    :param following_return: its mean return when it follows (others following)
    :return: the ratio; NaN when ``following_return`` is zero
    """
    return ratio(deviating_return, following_return)


def ic_ratio(deviating_return: float, following_return: float) -> float:
    """
    IC ratio (Figure 2e): as :func:`spe_ratio`, but with the other agents playing their own learned policy
    instead of following. About 1 means following pays whatever the others do (incentive compatibility).

    :param deviating_return: the agent's mean return with its best response (others on their own policy)
    :param following_return: its mean return when it follows (others on their own policy)
    :return: the ratio; NaN when ``following_return`` is zero
    """
    return ratio(deviating_return, following_return)


def rollout_metrics(
    rewards: np.ndarray,
    payments: np.ndarray,
    followed: np.ndarray,
    pick_speed: np.ndarray,
    pick_own_color: np.ndarray,
) -> dict[str, float]:
    """
    Summarise rollouts of whole episodes.

    :param rewards: ``[T, E, n]`` the agents' game rewards (without payments)
    :param payments: ``[T, E, n]`` payments received
    :param followed: ``[T, E, n]`` follow flags
    :param pick_speed: ``[E, n]`` coins picked per step
    :param pick_own_color: ``[E, n]`` own-colour picks / picks, NaN for an agent with no pick
    :return: ``welfare`` (mean episode welfare), ``welfare_se`` (its standard error over episodes; NaN for a single
        episode), ``payments`` (mean paid per episode), ``payment_share``,
        ``follow_rate``, ``pick_speed`` (mean over agents and episodes), ``pick_own_color`` (mean over the
        agents with a pick) and ``episodes``
    """
    rewards, payments = np.asarray(rewards, dtype=np.float64), np.asarray(payments, dtype=np.float64)
    if rewards.ndim != 3 or payments.shape != rewards.shape or np.shape(followed) != rewards.shape:
        raise ValueError(f"rewards, payments and followed must share one [steps, episodes, agents] shape, got "
                         f"{rewards.shape}, {payments.shape} and {np.shape(followed)}")
    own = np.asarray(pick_own_color, dtype=np.float64)
    welfare = rewards.sum(axis=(0, 2))
    return {
        "welfare": float(welfare.mean()),
        "welfare_se": float(welfare.std(ddof=1) / np.sqrt(welfare.size)) if welfare.size > 1 else float("nan"),
        "payments": float(payments.sum(axis=(0, 2)).mean()),
        "payment_share": payment_share(payments.sum(), welfare.sum()),
        "follow_rate": follow_rate(followed),
        "pick_speed": float(np.mean(pick_speed)),
        "pick_own_color": float(np.nanmean(own)) if np.isfinite(own).any() else float("nan"),
        "episodes": int(rewards.shape[1]),
    }


class CoinMetricsCallback(BaseCallback):
    """
    Log a phase's headline scalars under ``coin/`` (Figure 2 over training), from the step infos of any of the
    experiment's views: ``coin/welfare`` (mean episode welfare), ``coin/payment_share`` (payments over welfare)
    and ``coin/follow_rate`` (share of recommendations the agents actually followed), each over the last
    ``window`` finished games.

    :param slots_per_game: envs of the VecEnv per game: 1 for the principal's view (and a single learner per
        game), ``n_agents`` for the shared-parameter agents' views (one slot per player)
    :param window: finished games averaged
    :param verbose: verbosity
    """

    def __init__(self, slots_per_game: int = 1, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.slots_per_game = slots_per_game
        self._games: deque[tuple[float, float, float, float]] = deque(maxlen=window)
        self._counts = np.zeros((0, 2))  # per env since its episode began: follows, recommendations

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        if self._counts.shape[0] != len(infos):
            self._counts = np.zeros((len(infos), 2))
        if "followed" in infos[0]:
            flags = [np.ravel(info["followed"]) for info in infos]
            self._counts += [((f == 1).sum(), (f >= 0).sum()) for f in flags]
        for env in np.flatnonzero(dones):
            if env % self.slots_per_game == 0:
                self._end_game(infos, range(env, env + self.slots_per_game))
        if self._games:
            welfare, payments, follows, recommendations = np.sum(np.array(self._games), axis=0)
            self.logger.record("coin/welfare", welfare / len(self._games))
            if welfare != 0:
                self.logger.record("coin/payment_share", payments / welfare)
            if recommendations:
                self.logger.record("coin/follow_rate", follows / recommendations)
        return True

    def _end_game(self, infos: list[dict[str, Any]], slots: range) -> None:
        first = infos[slots.start]
        welfare = first.get("episode_welfare", first.get("social_welfare"))
        if welfare is None:
            return
        payments = sum(infos[slot].get("episode_payments", 0.0) for slot in slots)
        follows, recommendations = self._counts[slots].sum(axis=0)
        self._counts[slots] = 0.0
        self._games.append((welfare, payments, follows, recommendations))
