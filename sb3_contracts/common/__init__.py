"""Code the contract learners share (as ``sb3_contrib/common/`` serves sb3-contrib's algorithms)."""

from sb3_contracts.common.contract_algorithm import ContractOffPolicyAlgorithm, exponential_schedule
from sb3_contracts.common.networks import make_q_network
from sb3_contracts.common.principal import frozen_principal, live_principal
from sb3_contracts.common.prioritized import (
    PAPER_PER_KWARGS,
    PrioritizedIndices,
    PrioritizedReplayBuffer,
    PrioritizedReplayBufferSamples,
    SumTree,
)

__all__ = [
    "PAPER_PER_KWARGS",
    "ContractOffPolicyAlgorithm",
    "PrioritizedIndices",
    "PrioritizedReplayBuffer",
    "PrioritizedReplayBufferSamples",
    "SumTree",
    "exponential_schedule",
    "frozen_principal",
    "live_principal",
    "make_q_network",
]
