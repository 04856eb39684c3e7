"""The contract game as Gymnasium environments: the batched step written once, and the views over it.

* :mod:`~sb3_contracts.game.batch`: :class:`ContractGameBatch`, ``n`` episodes stepped together in NumPy.
* :mod:`~sb3_contracts.game.principal_view`: :class:`PrincipalEnv` (one episode) and :class:`PrincipalVecEnv`
  (the batch as an SB3 ``VecEnv``); :class:`TrainingAgents`, the agents a learner may put in their place.
* :mod:`~sb3_contracts.game.agent_view`: :class:`AgentEnv`.
* :mod:`~sb3_contracts.game.adapters`: the agent embedded in the principal's view, the principal in the agent's.
* :mod:`~sb3_contracts.game.encoding`: state encodings.

Many agents, any PettingZoo ``ParallelEnv`` whose agents share one ``Discrete`` action space:

* :mod:`~sb3_contracts.game.contract_game`: :class:`ContractGameEnv` and :class:`ContractGameVecEnv`, the principal's
  view (the Escape Room and Coin Game ids are instances).
* :mod:`~sb3_contracts.game.contract_agents`: the agents' view under a principal, :class:`ContractAgentsParallelEnv`
  (one game, PettingZoo) and :class:`ContractGameAgentsVecEnv` (every agent of many games, one SB3 ``VecEnv``).
* :mod:`~sb3_contracts.game.parallel_games`: a game as a batch of copies, or the game's own batched fast path.

Many agents, the Coin Game under a principal (its batched core):

* :mod:`~sb3_contracts.game.coin_principal_view`: :class:`ContractCoinGameEnv` and :class:`ContractCoinGameVecEnv`,
  the principal's view: the generic views with the Coin Game's core as their fast path.
* :mod:`~sb3_contracts.game.coin_agents_view`: :class:`ContractAgentsVecEnv`, the agents' view under a principal.
* :mod:`~sb3_contracts.game.coin_vec_env`: the bare game as an SB3 ``VecEnv`` of agent-steps.
* :mod:`~sb3_contracts.game.responders`: how agents answer contracts (follow, selfish, thresholds, SB3 models).
* :mod:`~sb3_contracts.game.settlement`: recommendations, follow flags and payments, written once.
"""

from sb3_contracts.game.agent_view import AgentEnv
from sb3_contracts.game.batch import START_STATES, ContractGameBatch, draw_start_states
from sb3_contracts.game.coin_agents_view import ContractAgentsVecEnv, make_principal
from sb3_contracts.game.coin_principal_view import ContractCoinGameEnv, ContractCoinGameVecEnv
from sb3_contracts.game.contract_agents import ContractAgentsParallelEnv, ContractGameAgentsVecEnv
from sb3_contracts.game.contract_game import ContractGameEnv, ContractGames, ContractGameVecEnv
from sb3_contracts.game.encoding import StateEncoder, agent_observation
from sb3_contracts.game.principal_view import PrincipalEnv, PrincipalVecEnv, TrainingAgents
from sb3_contracts.game.responders import SB3Responder, ThresholdResponder, make_responder, selfish_responder
from sb3_contracts.game.settlement import follow_flags, pay, recommend, settle

__all__ = [
    "START_STATES",
    "AgentEnv",
    "ContractAgentsParallelEnv",
    "ContractAgentsVecEnv",
    "ContractCoinGameEnv",
    "ContractCoinGameVecEnv",
    "ContractGameBatch",
    "ContractGameAgentsVecEnv",
    "ContractGameEnv",
    "ContractGameVecEnv",
    "ContractGames",
    "PrincipalEnv",
    "PrincipalVecEnv",
    "StateEncoder",
    "TrainingAgents",
    "agent_observation",
    "SB3Responder",
    "ThresholdResponder",
    "draw_start_states",
    "follow_flags",
    "make_principal",
    "make_responder",
    "pay",
    "recommend",
    "selfish_responder",
    "settle",
]
