"""ContractDQN, laid out like ``sb3_contrib.qrdqn``."""

from sb3_contracts.contract_dqn.buffers import ContractReplayBuffer, ContractReplayBufferSamples
from sb3_contracts.contract_dqn.contract_dqn import ContractDQN, exponential_schedule
from sb3_contracts.contract_dqn.multiagent import MultiAgentContractDQN, MultiAgentContractDQNPolicy
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
    "MultiAgentContractDQN",
    "MultiAgentContractDQNPolicy",
    "MultiInputPolicy",
    "OneHotEmbedding",
    "exponential_schedule",
]
