"""The principal's view of a principal-agent MDP: one episode (:class:`PrincipalEnv`) or a batch (the VecEnv).

Observe the state, act by offering a contract (``Box(0, b_max, (O,))``), receive ``r^p(s, o) - b(o)``. The agent
is embedded: by default the exact best responder (:class:`~sb3_contracts.solvers.ExactBestResponder`, the agent's
subgame-perfect strategy), or any agent :func:`~sb3_contracts.game.adapters.make_batched_agent` accepts. For
training, a learner may put another agent in its place (:class:`TrainingAgents`): one that follows its
recommendations (the paper's protocol) or the exact agent best-responding to its current policy. Both
views step the same :class:`~sb3_contracts.game.batch.ContractGameBatch`, so for the same seed and contracts they
give identical trajectories.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_contracts.contracts import check_contract
from sb3_contracts.envs.binary_tree import random_binary_tree
from sb3_contracts.envs.checks import check_instance, check_seed
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game.adapters import AgentCallable, Predictor, make_batched_agent
from sb3_contracts.game.batch import (
    BatchedAgent,
    ContractGameBatch,
    GameBatchView,
    GameStep,
    StartStates,
    resolve_b_max,
)
from sb3_contracts.game.encoding import StateEncoder
from sb3_contracts.game.one_batch import OneBatchVecEnvMethods
from sb3_contracts.game.single import SingleGameEnv
from sb3_contracts.solvers import ExactBestResponder

#: Where a learner's recommendations come from: the current step's ``[n_envs]`` recommended actions of its VecEnv.
RecommendationSource = Callable[[], np.ndarray]
#: A principal's policy as a learner offers it: observations -> (contracts ``[n, O]``, recommendations ``[n]``).
PrincipalPolicy = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def recommendation_follower(recommendations: RecommendationSource, index: int | None) -> BatchedAgent:
    """
    The agent of the paper's training protocol: it takes the recommended action, whatever the contract.

    :param recommendations: returns the current step's recommendations of every env of the learner's VecEnv.
    :param index: the env's position in that VecEnv (a view of one game takes that entry), or ``None`` for a view
        that is the whole batch.
    """

    def follow(states: np.ndarray, contracts: np.ndarray) -> np.ndarray:
        chosen = np.asarray(recommendations()).reshape(-1)
        return chosen if index is None else chosen[index : index + 1]

    return follow


class TrainingAgents:
    """
    The agents a learner may put in place of a principal's view's own for training (a learner's device, e.g.
    ``ContractDQN(training_agent=...)``; evaluation envs keep their own agent). The view holds ``agent`` (what
    answers the contracts), ``mdp`` and ``encoder``; ``_batched`` says whether it is the learner's whole VecEnv.
    """

    agent: BatchedAgent
    mdp: PrincipalAgentMDP
    encoder: StateEncoder
    _own_agent: BatchedAgent
    _batched: bool
    _responder: ExactBestResponder | None = None

    def follow_recommendations(self, recommendations: RecommendationSource, index: int = 0) -> None:
        """
        Make the embedded agent take the learner's recommendations, whatever the contract (the paper's training
        protocol). The principal's action is the contract alone, so they come through ``recommendations()``.

        :param recommendations: returns the current step's recommendations of every env of the learner's VecEnv.
        :param index: this env's position in that VecEnv (unused by a batched view, which is the whole VecEnv).
        """
        self.agent = recommendation_follower(recommendations, None if self._batched else index)

    def respond_to_principal(self, policy: PrincipalPolicy) -> None:
        """
        Make the embedded agent the exact agent best-responding to the principal's current policy (its contract and
        recommendation in every state, read from ``policy``): an agent consistent with the learned principal, whose
        continuation is that policy's, not the equilibrium's. Call again whenever the policy has moved on.

        :param policy: the learner's deterministic policy, observations -> (contracts, recommendations).
        """
        contracts, recommended = policy(self.encoder(np.arange(self.mdp.n_states)))
        if self._responder is None:
            self._responder = ExactBestResponder(self.mdp)
        self._responder.respond_to(np.asarray(contracts, dtype=np.float64), np.asarray(recommended, dtype=np.int64))
        self.agent = self._responder.act

    def restore_agent(self) -> None:
        """Put the view's own embedded agent back."""
        self.agent = self._own_agent


def reset_infos(mdp: PrincipalAgentMDP, states: np.ndarray) -> list[dict[str, Any]]:
    """The ``info`` of a reset in each state: the state and its known outcome model ``[A, O]``."""
    probs = mdp.outcome_probs[states]
    return [{"state": state, "outcome_probs": p} for state, p in zip(states.tolist(), probs, strict=True)]


def step_infos(mdp: PrincipalAgentMDP, step: GameStep) -> list[dict[str, Any]]:
    """
    The ``info`` of every game after a step of the principal's view (see :class:`PrincipalEnv`), built from
    the step's arrays in one pass.
    """
    probs, next_probs = mdp.outcome_probs[step.states], mdp.outcome_probs[step.next_states]
    actions = step.actions.tolist()
    infos = [
        {"state": s, "outcome": o, "payment": p, "agent_reward": r, "true_agent_action": a, "outcome_probs": op,
         "next_outcome_probs": nop}
        for s, o, p, r, a, op, nop in zip(step.states.tolist(), step.outcomes.tolist(), step.payments.tolist(),
                                          step.agent_rewards.tolist(), actions, probs, next_probs, strict=True)
    ]
    if mdp.observed_action:
        for info, action in zip(infos, actions, strict=True):
            info["agent_action"] = action
    return infos


class PrincipalEnv(TrainingAgents, SingleGameEnv):
    """
    The principal's view of a principal-agent MDP, one episode at a time.

    Observation: the state's encoding. Action: a contract, one non-negative payment per outcome, in
    ``Box(0, b_max, (O,))``; a wrong shape, NaN, a negative payment or one above ``b_max`` raises ``ValueError``
    (nothing is clipped). Reward: ``r^p(s, o) - b(o)``. ``info`` holds ``outcome``, ``payment``,
    ``agent_reward`` (``r(s, a) + b(o)``), ``state`` (the state the contract was offered in), ``outcome_probs``
    and ``next_outcome_probs`` (the known outcome model ``𝒪(s, ·)`` ``[A, O]`` of that state and of the next one,
    for learners that use it), and ``agent_action`` when the MDP's actions are observed. ``true_agent_action``
    is always there for metrics (e.g. follow rates): a learner of the hidden-action game must not train on it.

    :param mdp: the principal-agent MDP.
    :param agent: ``"best_response"`` (exact subgame-perfect agent), ``"best_response_strict"`` (ties against
        the principal), a callable ``(state, contract) -> action``, an object with a batched ``act``, or an SB3
        model trained on :class:`~sb3_contracts.game.agent_view.AgentEnv` of the same MDP.
    :param b_max: the largest payment per outcome; by default twice the largest SPE payment (at least 1).
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
        agent: str | AgentCallable | Predictor = "best_response",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        start_states: StartStates = "initial",
    ) -> None:
        solution, b_max = resolve_b_max(mdp, b_max, isinstance(agent, str))
        super().__init__(mdp, b_max, encoding, max_episode_steps, render_mode, start_states)
        self.agent = self._own_agent = make_batched_agent(agent, mdp, self.encoder, solution)
        self._batched = False
        self.observation_space = self.encoder.space
        self.action_space = gym.spaces.Box(0.0, self.b_max, (mdp.n_outcomes,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_game(seed)
        return self.encoder(self.state), reset_infos(self.mdp, self.game.states)[0]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._check_running()
        contract = check_contract(action, (self.mdp.n_outcomes,), self.b_max)
        step = self.game.play(contract[None], self.agent)
        terminated, truncated = self._end_if(bool(step.terminated[0]), bool(step.truncated[0]))
        return (self.encoder(self.state), float(step.principal_rewards[0]), terminated, truncated,
                step_infos(self.mdp, step)[0])


class PrincipalVecEnv(TrainingAgents, GameBatchView, OneBatchVecEnvMethods, VecEnv):
    """
    ``n_envs`` episodes of :class:`PrincipalEnv` stepped together: an SB3 ``VecEnv`` that is the game's batch
    itself (outcomes, payments, transitions and the exact agent's replies are all batched).

    Observations, actions, rewards and ``info`` keys are those of :class:`PrincipalEnv`; finished episodes
    reset automatically and carry ``terminal_observation`` and the Monitor-style ``episode`` summary
    (``r``, ``l``, ``t``), so no ``Monitor`` wrapper is needed.

    :param mdp: the principal-agent MDP.
    :param n_envs: number of parallel episodes.
    :param agent: as for :class:`PrincipalEnv`; an SB3 model is queried once per batch, a per-state callable in a
        loop.
    :param b_max: the largest payment per outcome; by default twice the largest SPE payment (at least 1).
    :param encoding: state encoding, see :class:`~sb3_contracts.game.encoding.StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param seed: seed of the environments' random generator (``seed()`` before ``reset()`` also works).
    :param start_states: ``"initial"``, ``"uniform"`` (exploring starts, for training) or a share of initial
        starts, see :func:`~sb3_contracts.game.batch.draw_start_states`.
    """

    def __init__(
        self,
        mdp: PrincipalAgentMDP,
        n_envs: int = 8,
        agent: str | AgentCallable | Predictor | Any = "best_response",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        seed: int | None = None,
        start_states: StartStates = "initial",
    ) -> None:
        check_instance("mdp", mdp, PrincipalAgentMDP)
        solution, b_max = resolve_b_max(mdp, b_max, isinstance(agent, str))
        self.game = ContractGameBatch(mdp, n_envs, b_max, max_episode_steps, start_states, seed)
        self.encoder = StateEncoder(mdp, encoding)
        self.agent = self._own_agent = make_batched_agent(agent, mdp, self.encoder, solution)
        self._batched = True
        self.render_mode = None
        action_space = gym.spaces.Box(0.0, b_max, (mdp.n_outcomes,), np.float32)
        super().__init__(self.game.n_games, self.encoder.space, action_space)
        self._returns = np.zeros(self.num_envs)
        self._starts = np.zeros(self.num_envs)
        self._actions: np.ndarray | None = None

    @property
    def states(self) -> np.ndarray:
        """The current state of every episode ``[n_envs]``."""
        return self.game.states

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self.game.rng = np.random.default_rng(check_seed(self._seeds[0]))
        self._reset_seeds()
        self._reset_options()
        states = self.game.reset()
        self._returns[:] = 0.0
        self._starts[:] = time.time()
        self.reset_infos = reset_infos(self.mdp, states)
        return self.encoder(states)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_async must be called before step_wait")
        contracts, self._actions = self.game.check_contracts(self._actions), None
        step = self.game.play(contracts, self.agent)
        self._returns += step.principal_rewards
        dones = step.terminated | step.truncated
        observations = self.encoder(step.next_states)
        infos = step_infos(self.mdp, step)
        if dones.any():
            self._end_episodes(dones, step.truncated, observations, infos)
        return observations, step.principal_rewards.astype(np.float32), dones, infos

    def _end_episodes(self, dones: np.ndarray, truncated: np.ndarray, observations: np.ndarray,
                      infos: list[dict[str, Any]]) -> None:
        """Close the finished episodes' infos and start new episodes there (auto-reset)."""
        now = time.time()
        for i in np.flatnonzero(dones).tolist():
            infos[i]["terminal_observation"] = observations[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self.game.steps[i]),
                                   "t": round(now - self._starts[i], 6)}
        states = self.game.reset(dones)
        observations[dones] = self.encoder(states[dones])
        fresh = reset_infos(self.mdp, states[dones])
        for i, info in zip(np.flatnonzero(dones).tolist(), fresh, strict=True):
            self.reset_infos[i] = info
        self._returns[dones] = 0.0
        self._starts[dones] = now


def make_binary_tree_principal_env(depth: int = 10, seed: int = 0, agent: Any = "best_response",
                                   **kwargs: Any) -> PrincipalEnv:
    """
    Entry point of ``ContractBinaryTree-v0``: the principal's view of a random binary game tree.

    :param depth: tree depth (decision levels).
    :param seed: seed of the tree generator (the tree itself; episodes are seeded by ``reset``).
    :param agent: the embedded agent, see :class:`PrincipalEnv`.
    :param kwargs: further :class:`PrincipalEnv` arguments (``b_max``, ``encoding``, ``max_episode_steps``).
    """
    return PrincipalEnv(random_binary_tree(depth, seed), agent=agent, **kwargs)
