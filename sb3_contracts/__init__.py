"""sb3-contracts: principal-agent reinforcement learning with contracts.

Importing the package registers its Gymnasium environment ids (Gymnasium 1.x has no plugin loading) and nothing
heavier: the learners and solvers (torch, Stable-Baselines3, SciPy's LP) load on first use of their names
(PEP 562), so ``import sb3_contracts.envs.coin_game`` stays a numpy-only import.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import gymnasium

__version__ = "0.1.0"

#: The Coin Game ids play ``CoinGameConfig``'s game (its defaults: one place) at the paper's two sizes.
_COIN_3x3 = {"preset": "3x3"}
_COIN_7x7 = {"preset": "7x7"}
#: The Escape Room ids play LIO's two settings through the generic layer (a one-hot agent index tells the agents
#: apart: they all start at the start and see the same thing; pulling the lever costs 1, so payments go up to 2).
_ESCAPE_ROOM = "sb3_contracts.envs.escape_room.escape_room_v0:parallel_env"
_ROOM_2_1 = {"game": _ESCAPE_ROOM, "game_kwargs": {"n_agents": 2, "min_at_lever": 1}, "agent_ids": True,
             "b_max": 2.0}
_ROOM_3_2 = {"game": _ESCAPE_ROOM, "game_kwargs": {"n_agents": 3, "min_at_lever": 2}, "agent_ids": True,
             "b_max": 2.0}
#: Every registered env id: its entry point and default arguments (variants as Gymnasium's ``FrozenLake8x8-v1``).
ENV_IDS: dict[str, tuple[str, dict]] = {
    "ContractBinaryTree-v0": ("sb3_contracts.game.principal_view:make_binary_tree_principal_env", {}),
    "ContractBinaryTreeAgent-v0": ("sb3_contracts.game.agent_view:make_binary_tree_agent_env", {}),
    "ContractCoinGame-v0": ("sb3_contracts.game.coin_principal_view:ContractCoinGameEnv", _COIN_3x3),
    "ContractCoinGame7x7-v0": ("sb3_contracts.game.coin_principal_view:ContractCoinGameEnv", _COIN_7x7),
    "ContractCoinGameAgents-v0": ("sb3_contracts.game.coin_agents_view:ContractCoinGameAgentsEnv", _COIN_3x3),
    "ContractCoinGameAgents7x7-v0": ("sb3_contracts.game.coin_agents_view:ContractCoinGameAgentsEnv", _COIN_7x7),
    "ContractEscapeRoom-v0": ("sb3_contracts.game.contract_game:ContractGameEnv", _ROOM_2_1),
    "ContractEscapeRoom3-v0": ("sb3_contracts.game.contract_game:ContractGameEnv", _ROOM_3_2),
    "PollutionControl-v0": ("sb3_contracts.envs.pollution:PollutionControlEnv", {}),
    "PollutionControlPrincipal-v0": ("sb3_contracts.envs.pollution:PollutionControlPrincipalEnv", {}),
}


def make_env(entry_point: str, **kwargs: Any) -> gymnasium.Env:
    """
    The env that ``entry_point`` (``"module:name"``, a class or a function) builds with ``kwargs``: what every id
    is registered with. Gymnasium warns before building a class whose declared render modes lack the one asked
    for, and SB3's ``make_vec_env`` asks every id for ``"rgb_array"`` (falling back to none on the ``TypeError``
    our envs raise): registered through this function, the ids build without that warning on every call, and an
    unsupported render mode still fails with the env's own error.

    :param entry_point: ``"module:name"`` of the env class or function
    :param kwargs: its arguments
    """
    module, name = entry_point.split(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


for _env_id, (_entry_point, _kwargs) in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=functools.partial(make_env, _entry_point), kwargs=_kwargs)

#: Env ids with a batched SB3 VecEnv (``entry(n_envs, seed=..., **env_kwargs)``): the learners build it from the id
#: (:func:`~sb3_contracts.common.vec_env.make_batched_vec_env`) rather than a DummyVecEnv of single envs.
BATCHED_VEC_ENVS = {
    "ContractCoinGame-v0": "sb3_contracts.game.coin_principal_view:ContractCoinGameVecEnv",
    "ContractCoinGame7x7-v0": "sb3_contracts.game.coin_principal_view:ContractCoinGameVecEnv",
    "ContractEscapeRoom-v0": "sb3_contracts.game.contract_game:make_contract_game_vec_env",
    "ContractEscapeRoom3-v0": "sb3_contracts.game.contract_game:make_contract_game_vec_env",
}

#: Public names and the module each is loaded from on first use.
_EXPORTS = {
    "AgentEnv": "sb3_contracts.game",
    "ContractAgentsParallelEnv": "sb3_contracts.game",
    "ContractAgentsVecEnv": "sb3_contracts.game",
    "ContractCoinGameEnv": "sb3_contracts.game",
    "ContractCoinGameVecEnv": "sb3_contracts.game",
    "ContractDQN": "sb3_contracts.contract_dqn",
    "ContractGameAgentsVecEnv": "sb3_contracts.game",
    "ContractGameEnv": "sb3_contracts.game",
    "ContractGameVecEnv": "sb3_contracts.game",
    "ExactBestResponder": "sb3_contracts.solvers",
    "MultiAgentContractDQN": "sb3_contracts.contract_dqn_multiagent",
    "PrincipalEnv": "sb3_contracts.game",
    "PrincipalVecEnv": "sb3_contracts.game",
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
