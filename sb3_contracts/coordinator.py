"""The meta-algorithm with deep learners: alternate a ContractDQN principal and an SB3 agent.

Algorithm 1 of Ivanov et al. alternates exact best responses; here each side is a learner that gets a
budget of env steps per round while the other is frozen:

1. the principal learns on its view, :class:`~sb3_contracts.game.PrincipalVecEnv`, with the agent
   embedded (its deterministic ``predict``, not learning);
2. the agent learns on its view, :class:`~sb3_contracts.game.AgentEnv`, with the principal embedded
   as a callable that queries the ContractDQN (not learning meanwhile).

Both call ``learn(..., reset_num_timesteps=False)`` with a fixed ``tb_log_name``, so each learner keeps one
TensorBoard run across rounds (``principal_0``, ``agent_0`` under its ``tensorboard_log``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_contracts.common.principal import live_principal
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.evaluation import PrincipalEvaluation, evaluate_principal
from sb3_contracts.game import AgentEnv, PrincipalVecEnv, StateEncoder
from sb3_contracts.solvers import solve_spe


class EmbeddedAgent:
    """
    A batched agent for :class:`PrincipalVecEnv` that queries an SB3 model set later (``.model``): the
    principal's env must exist before the agent, whose env embeds the principal.

    :param mdp: the MDP (for the agent's observations).
    :param model: the SB3 agent, or ``None`` until it is built.
    """

    def __init__(self, mdp: PrincipalAgentMDP, model: Any = None, encoding: str = "auto") -> None:
        self.encoder = StateEncoder(mdp, encoding)
        self.model = model

    def act(self, states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("EmbeddedAgent.model is not set: assign the SB3 agent before training")
        observations = np.concatenate([self.encoder(states), contracts.astype(np.float32)], axis=1)
        actions, _ = self.model.predict(observations, deterministic=True)
        return np.asarray(actions).reshape(-1)


def principal_env(mdp: PrincipalAgentMDP, agent: Any, b_max: float, n_envs: int = 8,
                  seed: int | None = None) -> PrincipalVecEnv:
    """The principal's view with ``agent`` (an SB3 model, callable or ``"best_response"``) embedded."""
    return PrincipalVecEnv(mdp, n_envs=n_envs, agent=agent, b_max=b_max, seed=seed)


def agent_env(mdp: PrincipalAgentMDP, principal: Any, b_max: float, n_envs: int = 1) -> DummyVecEnv:
    """The agent's view with ``principal`` embedded (its current contracts; it does not learn meanwhile)."""
    offer, encoder = live_principal(principal), StateEncoder(mdp)
    return DummyVecEnv([lambda: AgentEnv(mdp, principal=lambda state: offer(encoder(state)[None])[0], b_max=b_max)
                        for _ in range(n_envs)])


@dataclass
class RoundLog:
    """One round: env steps so far of each learner and, on tabular MDPs, the exact evaluation."""

    round: int
    principal_timesteps: int
    agent_timesteps: int
    evaluation: PrincipalEvaluation | None = None


@dataclass
class Coordinator:
    """
    Alternate ``principal.learn(principal_steps)`` (agent frozen) and ``agent.learn(agent_steps)``
    (principal frozen) for ``rounds`` rounds.

    The two learners must already be built on envs that embed each other (see :func:`principal_env`
    and :func:`agent_env`); the embedded references are live, so each round sees the other's latest
    weights.

    :param principal: a ContractDQN (or any SB3 principal).
    :param agent: an SB3 agent (DQN, PPO...).
    :param mdp: the MDP, for the exact evaluation after each round (``None``: skip it).
    :param principal_steps: principal env steps per round.
    :param agent_steps: agent env steps per round.
    :param principal_log_name: TensorBoard run name of the principal.
    :param agent_log_name: TensorBoard run name of the agent.
    """

    principal: BaseAlgorithm
    agent: BaseAlgorithm
    mdp: PrincipalAgentMDP | None = None
    principal_steps: int = 10_000
    agent_steps: int = 10_000
    principal_log_name: str = "principal"
    agent_log_name: str = "agent"
    history: list[RoundLog] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.principal_steps < 1 or self.agent_steps < 1:
            raise ValueError(f"principal_steps and agent_steps must be positive, got "
                             f"{self.principal_steps}, {self.agent_steps}")
        self._spe = solve_spe(self.mdp) if self.mdp is not None else None

    def run(self, rounds: int) -> list[RoundLog]:
        """
        Run ``rounds`` alternations (principal first) and return the per-round log.

        :param rounds: number of rounds (> 0).
        """
        if rounds < 1:
            raise ValueError(f"rounds must be positive, got {rounds!r}")
        for _ in range(rounds):
            # With reset_num_timesteps=False SB3 counts the budget on top of the steps already taken.
            self.principal.learn(self.principal_steps, reset_num_timesteps=False, tb_log_name=self.principal_log_name)
            self.agent.learn(self.agent_steps, reset_num_timesteps=False, tb_log_name=self.agent_log_name)
            evaluation = None
            if self.mdp is not None:
                evaluation = evaluate_principal(self.principal, self.mdp, self._spe)
            self.history.append(RoundLog(len(self.history) + 1, self.principal.num_timesteps,
                                         self.agent.num_timesteps, evaluation))
        return self.history
