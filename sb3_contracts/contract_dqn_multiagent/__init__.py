"""MultiAgentContractDQN, the multi-agent sibling of ContractDQN (laid out like ``sb3_contrib.qrdqn``)."""

from sb3_contracts.contract_dqn_multiagent.agents import FollowBitAgents
from sb3_contracts.contract_dqn_multiagent.buffers import (
    MultiAgentPrioritizedReplayBuffer,
    MultiAgentReplayBuffer,
    MultiAgentReplayBufferSamples,
)
from sb3_contracts.contract_dqn_multiagent.contract_dqn_multiagent import MultiAgentContractDQN
from sb3_contracts.contract_dqn_multiagent.policies import MlpPolicy, MultiAgentContractDQNPolicy

__all__ = [
    "FollowBitAgents",
    "MlpPolicy",
    "MultiAgentContractDQN",
    "MultiAgentContractDQNPolicy",
    "MultiAgentPrioritizedReplayBuffer",
    "MultiAgentReplayBuffer",
    "MultiAgentReplayBufferSamples",
]
