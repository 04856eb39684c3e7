"""Exact evaluation of learned principals on tabular principal-agent MDPs.

A learned principal is judged the way the paper judges it: its contract in every state, computed in one
batched forward pass over all states, is paired with the *exact* best-responding agent
(:func:`~sb3_contracts.solvers.best_response`, ties to the recommendation), and compared with the SPE:

* ``utility_ratio``: the principal's value at ``s0`` under that play / the SPE value at ``s0``;
* ``accuracy``: share of decision (non-terminal) states whose recommendation is the SPE's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game import StateEncoder
from sb3_contracts.solvers import SPESolution, best_response, solve_spe


@dataclass
class PrincipalEvaluation:
    """
    :param utility_ratio: principal value at ``s0`` against the exact agent / SPE value there.
    :param accuracy: share of decision states recommending the SPE action (``nan`` without recommendations).
    :param follow_rate: share of decision states where the exact agent takes the recommendation.
    :param principal_value: the principal's value at ``s0``.
    :param contracts: ``[S, O]`` the contracts evaluated.
    :param recommended: ``[S]`` the recommendations (``None`` for a direct-contract policy).
    """

    utility_ratio: float
    accuracy: float
    follow_rate: float
    principal_value: float
    contracts: np.ndarray
    recommended: np.ndarray | None

    def as_dict(self) -> dict[str, float]:
        return {"utility_ratio": self.utility_ratio, "accuracy": self.accuracy, "follow_rate": self.follow_rate,
                "principal_value": self.principal_value}


def all_state_observations(mdp: PrincipalAgentMDP, encoding: str = "auto") -> np.ndarray:
    """Observations ``[S, dim]`` of every state, in state order."""
    return StateEncoder(mdp, encoding)(np.arange(mdp.n_states))


def evaluate_policy_table(mdp: PrincipalAgentMDP, contracts: np.ndarray, recommended: np.ndarray | None,
                          spe: SPESolution | None = None) -> PrincipalEvaluation:
    """
    Judge a principal policy given as a table against the exact best-responding agent.

    :param mdp: the principal-agent MDP.
    :param contracts: ``[S, O]`` contracts per state.
    :param recommended: ``[S]`` recommended actions, or ``None`` (ties then go to the principal's best).
    :param spe: the MDP's SPE (solved when ``None``; pass it when evaluating repeatedly).
    """
    spe = solve_spe(mdp) if spe is None else spe
    contracts = np.asarray(contracts, dtype=np.float64)
    response = best_response(mdp, contracts, recommended)
    s0, decision = mdp.initial_state, ~mdp.terminal
    optimum = spe.principal_value[s0]
    if optimum == 0:
        raise ValueError("the SPE value at the initial state is 0: the utility ratio is undefined")
    accuracy = follow = float("nan")
    if recommended is not None:
        accuracy = float(np.mean(recommended[decision] == spe.recommended_action[decision]))
        follow = float(np.mean(response.action[decision] == recommended[decision]))
    value = float(response.principal_value[s0])
    return PrincipalEvaluation(value / optimum, accuracy, follow, value, contracts, recommended)


def evaluate_principal(model: Any, mdp: PrincipalAgentMDP, spe: SPESolution | None = None,
                       observations: np.ndarray | None = None) -> PrincipalEvaluation:
    """
    Evaluate a trained principal against the exact agent: ContractDQN (contracts and recommendations from
    ``predict_with_recommendation``) or any SB3 model whose action is the contract (``recommended=None``).

    :param model: the principal.
    :param mdp: the MDP it was trained on.
    :param spe: the MDP's SPE (solved when ``None``).
    :param observations: ``[S, dim]`` observations of all states (one-hot by default).
    """
    observations = all_state_observations(mdp) if observations is None else observations
    if hasattr(model, "predict_with_recommendation"):
        contracts, recommended = model.predict_with_recommendation(observations, deterministic=True)
        recommended = np.asarray(recommended, dtype=np.int64)
    else:
        contracts, _ = model.predict(observations, deterministic=True)
        recommended = None
    return evaluate_policy_table(mdp, contracts, recommended, spe)


class ExactEvaluationCallback(BaseCallback):
    """
    Evaluate the learner against the exact agent every ``eval_freq`` env steps and log
    ``exact/utility_ratio``, ``exact/accuracy`` and ``exact/follow_rate``; ``history`` keeps
    ``(num_timesteps, evaluation)`` pairs (e.g. for the minimum over the end of training).

    :param mdp: the MDP the learner trains on (its SPE is solved once).
    :param eval_freq: env steps between evaluations.
    :param on_evaluation: called with ``(num_timesteps, evaluation)`` after each evaluation (e.g. to report it to
        Ray Tune).
    :param verbose: verbosity.
    """

    def __init__(self, mdp: PrincipalAgentMDP, eval_freq: int = 10_000,
                 on_evaluation: Callable[[int, PrincipalEvaluation], None] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be positive, got {eval_freq!r}")
        self.mdp, self.eval_freq, self.on_evaluation = mdp, eval_freq, on_evaluation
        self.spe = solve_spe(mdp)
        self.observations = all_state_observations(mdp)
        self.history: list[tuple[int, PrincipalEvaluation]] = []
        self._next = eval_freq

    def evaluate(self) -> PrincipalEvaluation:
        result = evaluate_principal(self.model, self.mdp, self.spe, self.observations)
        self.history.append((self.num_timesteps, result))
        for name, value in result.as_dict().items():
            if name != "principal_value" and np.isfinite(value):
                self.logger.record(f"exact/{name}", value)
        if self.on_evaluation is not None:
            self.on_evaluation(self.num_timesteps, result)
        return result

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.eval_freq
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][0] != self.num_timesteps:
            self.evaluate()
