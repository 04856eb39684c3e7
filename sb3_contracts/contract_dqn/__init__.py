"""ContractDQN, laid out like ``sb3_contrib.qrdqn``."""

from sb3_contracts.common.contract_algorithm import exponential_schedule
from sb3_contracts.contract_dqn.buffers import ContractReplayBuffer, ContractReplayBufferSamples
from sb3_contracts.contract_dqn.contract_dqn import ContractDQN
from sb3_contracts.contract_dqn.policies import (
    CnnPolicy,
    ContractDQNPolicy,
    MlpPolicy,
    MultiInputPolicy,
    OneHotEmbedding,
)

__all__ = [
    "CnnPolicy",
    "ContractDQN",
    "ContractDQNPolicy",
    "ContractReplayBuffer",
    "ContractReplayBufferSamples",
    "MlpPolicy",
    "MultiInputPolicy",
    "OneHotEmbedding",
    "exponential_schedule",
]
