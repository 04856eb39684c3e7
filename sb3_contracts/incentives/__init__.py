"""The second system: incentives for learning agents under stateful externalities."""

from sb3_contracts.incentives.exact import (
    Plan,
    agent_regret,
    best_response,
    expected_return,
    plan,
    policy_values,
    welfare,
    welfare_optimum,
)
from sb3_contracts.incentives.transfers import action_gaps, minimal_transfers

__all__ = [
    "Plan",
    "action_gaps",
    "agent_regret",
    "best_response",
    "expected_return",
    "minimal_transfers",
    "plan",
    "policy_values",
    "welfare",
    "welfare_optimum",
]
