"""sb3-contracts: principal-agent reinforcement learning with contracts.

Importing the package registers its Gymnasium environment ids (Gymnasium 1.x has no plugin loading).
"""

import gymnasium

from sb3_contracts.contract_dqn import ContractDQN, MultiAgentContractDQN
from sb3_contracts.contracts import minimal_contract, minimal_contracts, minimal_contracts_torch, nudge_margin
from sb3_contracts.multiagent import ContractAgentsVecEnv, ContractCoinGameEnv
from sb3_contracts.solvers import (
    ExactBestResponder,
    SPESolution,
    best_response,
    meta_algorithm,
    solve_spe,
    value_iteration,
)
from sb3_contracts.wrappers import AgentEnv, PrincipalEnv, PrincipalVecEnv

__version__ = "0.1.0"

_ENV_IDS = {
    "ContractBinaryTree-v0": "sb3_contracts.wrappers:make_binary_tree_principal_env",
    "ContractBinaryTreeAgent-v0": "sb3_contracts.wrappers:make_binary_tree_agent_env",
    "ContractCoinGame-v0": "sb3_contracts.multiagent.contract_coin_game:ContractCoinGameEnv",
}
for _env_id, _entry_point in _ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

__all__ = [
    "AgentEnv",
    "ContractAgentsVecEnv",
    "ContractCoinGameEnv",
    "ContractDQN",
    "ExactBestResponder",
    "MultiAgentContractDQN",
    "PrincipalEnv",
    "PrincipalVecEnv",
    "SPESolution",
    "best_response",
    "meta_algorithm",
    "minimal_contract",
    "minimal_contracts",
    "minimal_contracts_torch",
    "nudge_margin",
    "solve_spe",
    "value_iteration",
]
