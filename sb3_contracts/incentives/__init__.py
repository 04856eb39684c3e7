"""The second system: incentives for learning agents under stateful externalities.

* :mod:`~sb3_contracts.incentives.exact`: welfare optimum, best responses, policy values, agent regret.
* :mod:`~sb3_contracts.incentives.transfers`: :func:`minimal_transfers` (and the transfer-free gaps).
* :mod:`~sb3_contracts.incentives.agents`: learning agents vectorised over runs (UCB-H, ε-greedy, exact).
* :mod:`~sb3_contracts.incentives.principals`, :mod:`~sb3_contracts.incentives.mechanism`: who sets the
  transfers: fixed schedules, and the two-phase mechanism.
* :mod:`~sb3_contracts.incentives.simulate`: the repeated game with exact per-episode scores.
* :mod:`~sb3_contracts.incentives.designs`, :mod:`~sb3_contracts.incentives.schedules`: coarse subsidies; no
  incentives, the oracle, the first system's SPE contracts.
* :mod:`~sb3_contracts.incentives.bandit`: the one-state reproduction of Scheid et al. (2024).
* :mod:`~sb3_contracts.incentives.metrics`, :mod:`~sb3_contracts.incentives.sb3_agents`: scores and
  TensorBoard curves; SB3 firms. The experiment end to end lives with the others:
  :mod:`sb3_contracts.experiments.two_phase` and :mod:`sb3_contracts.experiments.bandit`.
"""

from sb3_contracts.incentives.agents import EpsilonGreedyQAgent, ExactAgent, OptimisticQAgent, make_agent
from sb3_contracts.incentives.exact import (
    Plan,
    agent_regret,
    expected_return,
    plan,
    policy_values,
    transfer_best_response,
    welfare,
    welfare_optimum,
)
from sb3_contracts.incentives.mechanism import TwoPhaseConfig, TwoPhaseMechanism
from sb3_contracts.incentives.principals import FixedSchedule, IncentivePrincipal
from sb3_contracts.incentives.simulate import RunRecord, run_game
from sb3_contracts.incentives.transfers import action_gaps, minimal_transfers

__all__ = [
    "EpsilonGreedyQAgent",
    "ExactAgent",
    "FixedSchedule",
    "OptimisticQAgent",
    "Plan",
    "IncentivePrincipal",
    "RunRecord",
    "TwoPhaseConfig",
    "TwoPhaseMechanism",
    "action_gaps",
    "agent_regret",
    "transfer_best_response",
    "expected_return",
    "make_agent",
    "minimal_transfers",
    "plan",
    "policy_values",
    "run_game",
    "welfare",
    "welfare_optimum",
]
