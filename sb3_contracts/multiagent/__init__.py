"""Contracts for many agents: the Coin Game under a principal, its responders, agents' view, baselines, metrics."""

from sb3_contracts.multiagent.agents_view import ContractAgentsVecEnv
from sb3_contracts.multiagent.common import follow_flags, make_principal, pay, recommend
from sb3_contracts.multiagent.contract_coin_game import ContractCoinGameEnv
from sb3_contracts.multiagent.optimum import optimal_welfare
from sb3_contracts.multiagent.responders import SB3Responder, ThresholdResponder, make_responder, selfish_responder

__all__ = [
    "ContractAgentsVecEnv",
    "ContractCoinGameEnv",
    "SB3Responder",
    "ThresholdResponder",
    "follow_flags",
    "make_principal",
    "make_responder",
    "optimal_welfare",
    "pay",
    "recommend",
    "selfish_responder",
]
