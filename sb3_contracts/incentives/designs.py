"""Coarse incentive designs for ablation: per-unit abatement subsidies, flat or stock-dependent.

A per-unit abatement subsidy pays ``σ`` for every unit of emission the agent does not emit (``abatement[a]``
units under action ``a``): the limited-liability form of a Pigouvian tax (a tax on emissions ``σ e`` and a
subsidy ``σ (E − e)`` move the agent's incentives identically). *Flat*: one ``σ`` everywhere. *Stock-dependent*
(Benchekroun & Long 1998): ``σ(S) = max(0, σ_0 + σ_1 S)`` for stock ``S``. Each design's rates are chosen by
grid search on the welfare of the exact best response (the best coarse design the principal could pick
with the model), so the comparison with the minimal transfers measures the design's form, not a bad rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP
from sb3_contracts.incentives.exact import expected_return, transfer_best_response, welfare, welfare_optimum


@dataclass
class DesignResult:
    """
    :param name: the design.
    :param parameters: the chosen rates.
    :param transfers: ``[H, S, A]`` its schedule.
    :param welfare: ``W`` of the exact best response to it.
    :param gap_closed: ``(W − W_none) / (W* − W_none)``, the share of the welfare gap it closes.
    :param expected_payment: what it costs the principal per episode against the exact best response.
    """

    name: str
    parameters: dict[str, float]
    transfers: np.ndarray
    welfare: float
    gap_closed: float
    expected_payment: float


def abatement_subsidy(model: ExternalityMDP, abatement: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """
    ``[..., H, S, A]`` transfers ``rate[..., s] · abatement[a]``.

    :param model: the world.
    :param abatement: ``[A]`` units abated under each action (non-negative).
    :param rates: ``[..., S]`` subsidy per unit in each state (non-negative), ``[..., H, S]`` per step and
        state, or ``[...]`` for a flat rate.
    """
    abatement = np.asarray(abatement, dtype=np.float64)
    if abatement.shape != (model.n_actions,) or np.any(abatement < 0):
        raise ValueError(f"abatement must be [A] = ({model.n_actions},) non-negative units, got {abatement}")
    rates = np.asarray(rates, dtype=np.float64)
    if np.any(rates < 0):
        raise ValueError("subsidy rates must be non-negative")
    if rates.ndim >= 2 and rates.shape[-2:] == model.shape[:2]:
        per_step = rates
    elif rates.ndim >= 1 and rates.shape[-1] == model.n_states:
        per_step = np.broadcast_to(rates[..., None, :], (*rates.shape[:-1], *model.shape[:2]))
    else:
        per_step = np.broadcast_to(rates[..., None, None], (*rates.shape, *model.shape[:2]))
    return (per_step[..., None] * abatement).copy()


def _score(model: ExternalityMDP, transfers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welfare and expected payment of the exact best responses to a batch of schedules."""
    response = transfer_best_response(model, transfers)
    return welfare(model, response.policy), response.value - expected_return(model, model.agent_reward,
                                                                             response.policy)


def _result(model: ExternalityMDP, name: str, parameters: dict[str, float], transfers: np.ndarray,
            welfare_value: float, payment: float) -> DesignResult:
    none = float(welfare(model, transfer_best_response(model, np.zeros(model.shape)).policy))
    best = float(welfare_optimum(model).value)
    gap = (welfare_value - none) / (best - none) if best > none else float("nan")
    return DesignResult(name, parameters, transfers, float(welfare_value), float(gap), float(payment))


def best_flat_subsidy(model: ExternalityMDP, abatement: np.ndarray, rates: np.ndarray | None = None) -> DesignResult:
    """
    The flat per-unit abatement subsidy with the highest welfare over a grid of rates.

    :param model: the world.
    :param abatement: ``[A]`` units abated under each action.
    :param rates: candidate rates (default ``0, 0.02, …, 4``).
    """
    rates = np.linspace(0, 4, 201) if rates is None else np.asarray(rates, dtype=np.float64)
    transfers = abatement_subsidy(model, abatement, rates)
    values, payments = _score(model, transfers)
    i = int(np.argmax(values))
    return _result(model, "flat subsidy", {"rate": float(rates[i])}, transfers[i], values[i], payments[i])


def time_subsidy(model: ExternalityMDP, abatement: np.ndarray, rates: np.ndarray) -> DesignResult:
    """
    A per-unit subsidy that depends on the step only (``rates`` ``[H]``), e.g. the Pigouvian rate of a
    finite horizon: an emission's expected damage over the steps left.

    :param model: the world.
    :param abatement: ``[A]`` units abated under each action.
    :param rates: ``[H]`` subsidy per unit at each step.
    """
    rates = np.asarray(rates, dtype=np.float64)
    if rates.shape != (model.horizon,):
        raise ValueError(f"rates must have shape [H] = ({model.horizon},), got {rates.shape}")
    transfers = abatement_subsidy(model, abatement, np.broadcast_to(rates[:, None], model.shape[:2]))
    values, payments = _score(model, transfers)
    return _result(model, "step-dependent subsidy", {f"rate_{h}": float(r) for h, r in enumerate(rates)},
                   transfers, float(values), float(payments))


def best_time_subsidy(model: ExternalityMDP, abatement: np.ndarray, grid: np.ndarray | None = None,
                      sweeps: int = 3) -> DesignResult:
    """
    The step-dependent subsidy (``[H]`` rates, flat in the stock) with the highest welfare, by coordinate
    ascent over the steps on a grid of rates (from the best flat rate).

    :param model: the world.
    :param abatement: ``[A]`` units abated under each action.
    :param grid: candidate rates for each step (default ``0, 0.02, …, 4``).
    :param sweeps: passes over the steps.
    """
    grid = np.linspace(0, 4, 201) if grid is None else np.asarray(grid, dtype=np.float64)
    rates = np.full(model.horizon, best_flat_subsidy(model, abatement, grid).parameters["rate"])
    for _ in range(sweeps):
        for h in range(model.horizon):
            candidates = np.repeat(rates[None], len(grid), axis=0)
            candidates[:, h] = grid
            transfers = abatement_subsidy(model, abatement, np.broadcast_to(candidates[:, :, None],
                                                                            (len(grid), *model.shape[:2])))
            rates[h] = grid[int(np.argmax(_score(model, transfers)[0]))]
    return time_subsidy(model, abatement, rates)


def best_stock_subsidy(model: ExternalityMDP, abatement: np.ndarray, stock: np.ndarray,
                       intercepts: np.ndarray | None = None, slopes: np.ndarray | None = None) -> DesignResult:
    """
    The stock-dependent subsidy ``max(0, σ_0 + σ_1 S)`` with the highest welfare over a grid.

    :param model: the world.
    :param abatement: ``[A]`` units abated under each action.
    :param stock: ``[S]`` the stock of each state.
    :param intercepts: candidate ``σ_0`` (default ``0, 0.05, …, 4``).
    :param slopes: candidate ``σ_1`` (default ``−0.2 … 0.2`` in steps of 0.01).
    """
    intercepts = np.linspace(0, 4, 81) if intercepts is None else np.asarray(intercepts, dtype=np.float64)
    slopes = np.linspace(-0.2, 0.2, 41) if slopes is None else np.asarray(slopes, dtype=np.float64)
    grid = np.stack(np.meshgrid(intercepts, slopes, indexing="ij"), axis=-1).reshape(-1, 2)
    rates = np.maximum(0.0, grid[:, :1] + grid[:, 1:] * np.asarray(stock, dtype=np.float64)[None, :])
    transfers = abatement_subsidy(model, abatement, rates)
    values, payments = _score(model, transfers)
    i = int(np.argmax(values))
    return _result(model, "stock-dependent subsidy", {"intercept": float(grid[i, 0]), "slope": float(grid[i, 1])},
                   transfers[i], values[i], payments[i])
