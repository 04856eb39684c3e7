"""Contracts for many agents: the Coin Game under a principal, its responders, the agents' view, baselines, metrics."""

from sb3_contracts.multiagent.agents_view import ContractAgentsVecEnv, make_principal
from sb3_contracts.multiagent.optimum import optimal_welfare
from sb3_contracts.multiagent.principal_view import ContractCoinGameEnv, ContractCoinGameVecEnv
from sb3_contracts.multiagent.responders import SB3Responder, ThresholdResponder, make_responder, selfish_responder
from sb3_contracts.multiagent.settlement import follow_flags, pay, recommend, settle

__all__ = [
    "ContractAgentsVecEnv",
    "ContractCoinGameEnv",
    "ContractCoinGameVecEnv",
    "SB3Responder",
    "ThresholdResponder",
    "follow_flags",
    "make_principal",
    "make_responder",
    "optimal_welfare",
    "pay",
    "recommend",
    "selfish_responder",
    "settle",
]
