"""The contract game as Gymnasium environments: the batched step written once, and the views over it.

* :mod:`~sb3_contracts.game.batch`: :class:`ContractGameBatch`, ``n`` episodes stepped together in NumPy.
* :mod:`~sb3_contracts.game.principal_view`: :class:`PrincipalEnv` (one episode) and :class:`PrincipalVecEnv`
  (the batch as an SB3 ``VecEnv``); :class:`TrainingAgents`, the agents a learner may put in their place.
* :mod:`~sb3_contracts.game.agent_view`: :class:`AgentEnv`.
* :mod:`~sb3_contracts.game.adapters`: the agent embedded in the principal's view, the principal in the agent's.
* :mod:`~sb3_contracts.game.encoding`: state encodings.
"""

from sb3_contracts.game.agent_view import AgentEnv
from sb3_contracts.game.batch import START_STATES, ContractGameBatch, draw_start_states
from sb3_contracts.game.encoding import StateEncoder, agent_observation
from sb3_contracts.game.principal_view import PrincipalEnv, PrincipalVecEnv, TrainingAgents

__all__ = [
    "START_STATES",
    "AgentEnv",
    "ContractGameBatch",
    "PrincipalEnv",
    "PrincipalVecEnv",
    "StateEncoder",
    "TrainingAgents",
    "agent_observation",
    "draw_start_states",
]
