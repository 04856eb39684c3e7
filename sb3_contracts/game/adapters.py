"""Who plays the other side inside a view: the agent embedded in the principal's view, the principal in the agent's.

* :func:`make_batched_agent`: the agent as a batched ``(states [n], contracts [n, O]) -> actions [n]``, from a
  name (the exact subgame-perfect agent), an object with a batched ``act``, an SB3 model trained on the agent's
  view, or a per-state callable.
* :func:`make_principal_policy`: the principal as ``state -> contract``, from ``"spe"``, an SPE solution, a
  contract table or a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game.batch import BatchedAgent
from sb3_contracts.game.encoding import StateEncoder, agent_observation
from sb3_contracts.solvers import ExactBestResponder, SPESolution

AgentCallable = Callable[[int, np.ndarray], int]
PrincipalCallable = Callable[[int], np.ndarray]
#: The names of the exact agents: ties in the principal's favour, or against it.
EXACT_AGENTS = ("best_response", "best_response_strict")


class Predictor(Protocol):
    """Anything with SB3's ``predict`` (a trained model)."""

    def predict(self, observation: np.ndarray, deterministic: bool = ...) -> tuple[Any, Any]: ...


def make_batched_agent(agent: Any, mdp: PrincipalAgentMDP, encoder: StateEncoder,
                       solution: SPESolution | None) -> BatchedAgent:
    """
    The agent embedded in a principal's view, as a batched ``(states [n], contracts [n, O]) -> actions [n]``.

    :param agent: ``"best_response"`` / ``"best_response_strict"`` (exact, from ``solution``), an object
        with a batched ``act`` (e.g. :class:`~sb3_contracts.solvers.ExactBestResponder`), an SB3 model
        trained on the agent's view (one ``predict`` per batch), or a per-state callable
        ``(state, contract) -> action`` (called in a loop).
    :param mdp: the principal-agent MDP.
    :param encoder: the state encoding the SB3 model observes.
    :param solution: the SPE, for the exact agent's continuation (solved when ``None``).
    """
    if isinstance(agent, str):
        if agent not in EXACT_AGENTS:
            raise ValueError(f"agent must be one of {EXACT_AGENTS}, a batched agent, an SB3 model or a callable, "
                             f"got {agent!r}")
        return ExactBestResponder(mdp, strict=agent.endswith("strict"), solution=solution).act
    if hasattr(agent, "act"):
        return agent.act
    if hasattr(agent, "predict"):
        def act_sb3(states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
            actions, _ = agent.predict(agent_observation(encoder(states), contracts), deterministic=True)
            return np.asarray(actions).reshape(-1)

        return act_sb3
    if callable(agent):
        def act_each(states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
            return np.array([agent(int(s), c) for s, c in zip(states, contracts, strict=True)])

        return act_each
    raise TypeError(f"agent must be a string, a batched agent, an SB3 model or a callable, "
                    f"got {type(agent).__name__}")


def make_principal_policy(principal: Any, mdp: PrincipalAgentMDP, solution: SPESolution | None
                          ) -> PrincipalCallable:
    """
    The principal embedded in the agent's view, as ``state -> contract``.

    :param principal: ``"spe"`` (the equilibrium principal, from ``solution``), an :class:`SPESolution`, an
        ``[S, O]`` contract table, or a callable ``state -> contract``.
    :param mdp: the principal-agent MDP.
    :param solution: the SPE (needed for ``"spe"``).
    """
    if isinstance(principal, str):
        if principal != "spe":
            raise ValueError(f"principal must be 'spe', an SPESolution, an [S, O] array or a callable, "
                             f"got {principal!r}")
        principal = solution
    if isinstance(principal, SPESolution):
        principal = principal.contracts
    if isinstance(principal, np.ndarray):
        table = principal
        if table.shape != (mdp.n_states, mdp.n_outcomes):
            raise ValueError(f"a contract table must have shape [S, O] = {(mdp.n_states, mdp.n_outcomes)}, "
                             f"got {table.shape}")
        return lambda state: table[state]
    if callable(principal):
        return principal
    raise TypeError(f"principal must be 'spe', an SPESolution, an array or a callable, "
                    f"got {type(principal).__name__}")
