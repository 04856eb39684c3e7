"""The Coin Game experiment's metrics (the paper's Figure 2), as plain functions of rollouts and returns.

Rollout arrays are indexed ``[step, episode, agent]`` (``T x E x n``); per-episode statistics ``[episode,
agent]``. Follow flags use the convention of :mod:`sb3_contracts.multiagent.common`: ``1`` followed, ``0``
deviated, ``-1`` no recommendation (excluded from the follow rate).
"""

from __future__ import annotations

import numpy as np


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
    return float(total_payments / total_welfare) if total_welfare != 0 else float("nan")


def _return_ratio(deviating_return: float, following_return: float) -> float:
    return float(deviating_return / following_return) if following_return != 0 else float("nan")


def spe_ratio(deviating_return: float, following_return: float) -> float:
    """
    SPE ratio (Figure 2d): a best-responding agent's return when it deviates, divided by its return when it
    follows, the other agents following. About 1 means following is a best response (an equilibrium).

    :param deviating_return: the agent's mean return with its best response (others following)
    :param following_return: its mean return when it follows (others following)
    :return: the ratio; NaN when ``following_return`` is zero
    """
    return _return_ratio(deviating_return, following_return)


def ic_ratio(deviating_return: float, following_return: float) -> float:
    """
    IC ratio (Figure 2e): as :func:`spe_ratio`, but with the other agents playing their own learned policy
    instead of following. About 1 means following pays whatever the others do (incentive compatibility).

    :param deviating_return: the agent's mean return with its best response (others on their own policy)
    :param following_return: its mean return when it follows (others on their own policy)
    :return: the ratio; NaN when ``following_return`` is zero
    """
    return _return_ratio(deviating_return, following_return)


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
