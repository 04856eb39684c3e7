"""The agent's view of a principal-agent MDP: observe the state and the contract on offer, act, be paid."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sb3_contracts.contracts import check_contract
from sb3_contracts.envs.binary_tree import random_binary_tree
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game.adapters import PrincipalCallable, make_principal_policy
from sb3_contracts.game.batch import StartStates, resolve_b_max
from sb3_contracts.game.encoding import agent_observation
from sb3_contracts.game.single import SingleGameEnv
from sb3_contracts.solvers import SPESolution


class AgentEnv(SingleGameEnv):
    """
    The agent's view of a principal-agent MDP.

    Observation: the state's encoding followed by the contract on offer (``O`` payments). Action: one of
    the agent's ``A`` actions (an integer; anything else raises ``ValueError``). Reward: ``r(s, a) + b(o)``.
    ``info`` holds ``outcome``, ``payment``, ``principal_reward`` (``r^p(s, o) - b(o)``) and ``state``.

    :param mdp: the principal-agent MDP.
    :param principal: ``"spe"`` (the equilibrium principal), an :class:`SPESolution` (its contracts), an
        ``[S, O]`` array of contracts, or a callable ``state -> contract``.
    :param b_max: bound on payments in the observation space; by default twice the largest SPE payment.
    :param encoding: state encoding, see :class:`~sb3_contracts.game.encoding.StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param render_mode: ``None``, ``"ansi"`` (a one-line text description of the current step) or ``"human"``
        (prints it).
    :param start_states: ``"initial"`` (every episode starts in the MDP's initial state), ``"uniform"``
        (exploring starts, for training) or a share of initial starts: see
        :func:`~sb3_contracts.game.batch.draw_start_states`.
    """

    def __init__(
        self,
        mdp: PrincipalAgentMDP,
        principal: str | SPESolution | np.ndarray | PrincipalCallable = "spe",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        start_states: StartStates = "initial",
    ) -> None:
        solution, b_max = resolve_b_max(mdp, b_max, isinstance(principal, str) and principal == "spe")
        super().__init__(mdp, b_max, encoding, max_episode_steps, render_mode, start_states)
        self.principal = make_principal_policy(principal, mdp, solution)
        low = np.concatenate([self.encoder.space.low, np.zeros(mdp.n_outcomes, np.float32)])
        high = np.concatenate([self.encoder.space.high, np.full(mdp.n_outcomes, self.b_max, np.float32)])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._contract = np.zeros((1, mdp.n_outcomes))

    def _offer(self) -> np.ndarray:
        contract = check_contract(self.principal(self.state), (self.mdp.n_outcomes,), self.b_max,
                                  "the embedded principal's contract")
        self._contract = contract[None]
        return agent_observation(self.encoder(self.state), contract)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_game(seed)
        return self._offer(), {"state": self.state}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._check_running()
        step = self.game.advance(self._contract, self.game.check_actions(action, "action"))
        info = {"state": int(step.states[0]), "outcome": int(step.outcomes[0]), "payment": float(step.payments[0]),
                "principal_reward": float(step.principal_rewards[0])}
        terminated, truncated = self._end_if(bool(step.terminated[0]), bool(step.truncated[0]))
        if terminated:
            observation = agent_observation(self.encoder(self.state), np.zeros(self.mdp.n_outcomes))
        else:
            observation = self._offer()
        return observation, float(step.agent_rewards[0]), terminated, truncated, info


def make_binary_tree_agent_env(depth: int = 10, seed: int = 0, principal: Any = "spe", **kwargs: Any) -> AgentEnv:
    """
    Entry point of ``ContractBinaryTreeAgent-v0``: the agent's view of a random binary game tree.

    :param depth: tree depth (decision levels).
    :param seed: seed of the tree generator.
    :param principal: the embedded principal, see :class:`AgentEnv`.
    :param kwargs: further :class:`AgentEnv` arguments.
    """
    return AgentEnv(random_binary_tree(depth, seed), principal=principal, **kwargs)
