"""sb3-contracts: principal-agent reinforcement learning with contracts.

Importing the package registers its Gymnasium environment ids (Gymnasium 1.x has no plugin loading) and nothing
heavier: the learners and solvers (torch, Stable-Baselines3, SciPy's LP) load on first use of their names
(PEP 562), so ``import sb3_contracts.envs.coin_game`` stays a numpy-only import.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

__version__ = "0.1.0"

#: Every registered env id and its entry point.
ENV_IDS = {
    "ContractBinaryTree-v0": "sb3_contracts.wrappers:make_binary_tree_principal_env",
    "ContractBinaryTreeAgent-v0": "sb3_contracts.wrappers:make_binary_tree_agent_env",
    "ContractCoinGame-v0": "sb3_contracts.multiagent.contract_coin_game:ContractCoinGameEnv",
    "PollutionControl-v0": "sb3_contracts.envs.pollution:PollutionControlEnv",
    "PollutionControlPrincipal-v0": "sb3_contracts.envs.pollution:PollutionControlPrincipalEnv",
}
for _env_id, _entry_point in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

#: Public names and the module each is loaded from on first use.
_EXPORTS = {
    "AgentEnv": "sb3_contracts.wrappers",
    "ContractAgentsVecEnv": "sb3_contracts.multiagent",
    "ContractCoinGameEnv": "sb3_contracts.multiagent",
    "ContractDQN": "sb3_contracts.contract_dqn",
    "ExactBestResponder": "sb3_contracts.solvers",
    "MultiAgentContractDQN": "sb3_contracts.contract_dqn",
    "PrincipalEnv": "sb3_contracts.wrappers",
    "PrincipalVecEnv": "sb3_contracts.wrappers",
    "SPESolution": "sb3_contracts.solvers",
    "best_response": "sb3_contracts.solvers",
    "meta_algorithm": "sb3_contracts.solvers",
    "minimal_contract": "sb3_contracts.contracts",
    "minimal_contracts": "sb3_contracts.contracts",
    "minimal_contracts_torch": "sb3_contracts.contracts",
    "minimal_transfers": "sb3_contracts.incentives",
    "nudge_margin": "sb3_contracts.contracts",
    "solve_spe": "sb3_contracts.solvers",
    "value_iteration": "sb3_contracts.solvers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sb3_contracts' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
