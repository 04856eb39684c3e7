"""Scores of a run: welfare ratios, regret slopes, payments; and their TensorBoard scalars."""

from __future__ import annotations

import numpy as np

from sb3_contracts.incentives.simulate import RunRecord


def loglog_slope(curve: np.ndarray, start: int = 1_000, end: int | None = None, points: int = 50) -> float:
    """
    The slope of ``log curve(t)`` against ``log t`` fitted by least squares on ``points`` log-spaced episodes
    of ``[start, end]`` (episode numbers from 1; ``end`` defaults to the curve's length).

    :param curve: ``[T]`` a cumulative curve (e.g. the welfare regret averaged over runs), positive on the range.
    :param start: the first episode of the fit.
    :param end: the last episode of the fit.
    :param points: how many episodes to fit on.
    """
    curve = np.asarray(curve, dtype=np.float64)
    end = len(curve) if end is None else min(end, len(curve))
    if not 1 <= start < end:
        raise ValueError(f"the fit needs 1 <= start < end <= len(curve), got start={start}, end={end}")
    t = np.unique(np.geomspace(start, end, points).round().astype(np.int64))
    values = curve[t - 1]
    if np.any(values <= 0):
        raise ValueError("the curve must be positive over the fitted range")
    return float(np.polyfit(np.log(t), np.log(values), 1)[0])


def final_ratio(record: RunRecord, share: float = 0.1) -> np.ndarray:
    """``[N]``: mean ``W(π_t) / W*`` over the last ``share`` of episodes, per run."""
    tail = max(1, int(round(share * len(record.welfare))))
    return record.welfare[-tail:].mean(axis=0) / record.optimal_welfare


def summarize(record: RunRecord, slope_start: int = 1_000) -> dict[str, float]:
    """
    The run's headline figures (means over runs; ``_sd`` the spread over runs).

    :param record: the run.
    :param slope_start: the first episode of the log–log fit.
    """
    ratio = final_ratio(record)
    regret = record.welfare_regret
    tail = max(1, len(record.welfare) // 10)
    summary = {
        "episodes": len(record.welfare),
        "runs": record.welfare.shape[1],
        "optimal_welfare": record.optimal_welfare,
        "final_welfare_ratio": float(ratio.mean()),
        "final_welfare_ratio_sd": float(ratio.std()),
        "welfare_regret": float(regret[-1].mean()),
        "agent_regret": float(record.agent_regret.sum(axis=0).mean()),
        "transfers_per_episode_final": float(record.transfers[-tail:].mean()),
        "cumulative_transfers": float(record.transfers.sum(axis=0).mean()),
        "principal_net_per_episode_final": float(record.principal_net[-tail:].mean()),
        "estimation_episodes": int(record.estimating.sum()),
    }
    curves = {"welfare_regret_slope": regret.mean(axis=1),
              "agent_regret_slope": np.cumsum(record.agent_regret.mean(axis=1))}
    for name, curve in curves.items():
        if len(curve) > slope_start and np.all(curve[slope_start - 1:] > 0):
            summary[name] = loglog_slope(curve, slope_start)
    return summary


def log_record(record: RunRecord, logger: object, every: int = 100) -> None:
    """
    Write a run's curves as TensorBoard scalars through an SB3 logger (step = episode), every ``every``
    episodes: ``two_phase/welfare_ratio``, ``/welfare_regret``, ``/agent_regret``, ``/cumulative_transfers``,
    ``/principal_net``, ``/estimating``, ``/mean_stock``.

    :param record: the run.
    :param logger: a ``stable_baselines3.common.logger.Logger``.
    :param every: episodes between two points.
    """
    regret = record.welfare_regret.mean(axis=1)
    agent = np.cumsum(record.agent_regret.mean(axis=1))
    transfers = np.cumsum(record.transfers.mean(axis=1))
    for t in range(every - 1, len(record.welfare), every):
        window = slice(t + 1 - every, t + 1)
        logger.record("two_phase/welfare_ratio", float(record.welfare[window].mean() / record.optimal_welfare))
        logger.record("two_phase/welfare_regret", float(regret[t]))
        logger.record("two_phase/agent_regret", float(agent[t]))
        logger.record("two_phase/cumulative_transfers", float(transfers[t]))
        logger.record("two_phase/principal_net", float(record.principal_net[window].mean()))
        logger.record("two_phase/estimating", float(record.estimating[window].mean()))
        logger.record("two_phase/mean_stock", float(record.mean_state[window].mean()))
        logger.dump(step=t + 1)
