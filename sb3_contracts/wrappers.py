"""The contract layer as Gymnasium environments.

* :class:`PrincipalEnv`, the principal's view: observe the state, act by offering a contract
  (``Box(0, b_max, (O,))``), receive ``r^p(s, o) - b(o)``. The agent is embedded: by default the exact
  best responder (:class:`~sb3_contracts.solvers.ExactBestResponder`, the agent's subgame-perfect
  strategy), or any callable ``(state, contract) -> action``, or any SB3 model trained on the agent's view.
* :class:`AgentEnv`, the agent's view: observe the state and the contract on offer, act, receive
  ``r(s, a) + b(o)``. The principal is embedded: the SPE principal by default, or any callable
  ``state -> contract``.

States are encoded one-hot (for up to :data:`MAX_ONE_HOT_STATES` states) or by the MDP's
``state_features``. Invalid contracts (wrong shape, NaN, negative, above ``b_max``) raise a ``ValueError``:
nothing is clipped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_contracts.envs.binary_tree import random_binary_tree
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.solvers import ExactBestResponder, SPESolution, solve_spe

#: Largest MDP encoded one-hot; larger ones need ``state_features``.
MAX_ONE_HOT_STATES = 1 << 16

AgentCallable = Callable[[int, np.ndarray], int]
PrincipalCallable = Callable[[int], np.ndarray]


class _Predictor(Protocol):
    def predict(self, observation: np.ndarray, deterministic: bool = ...) -> tuple[Any, Any]: ...


class StateEncoder:
    """
    Maps state indices to observation vectors.

    :param mdp: the principal-agent MDP.
    :param encoding: ``"onehot"``, ``"features"`` (the MDP's ``state_features``) or ``"auto"`` (one-hot
        when the MDP is small enough, else features).
    """

    def __init__(self, mdp: PrincipalAgentMDP, encoding: str = "auto") -> None:
        if encoding == "auto":
            encoding = "onehot" if mdp.n_states <= MAX_ONE_HOT_STATES or mdp.state_features is None else "features"
        if encoding == "onehot":
            if mdp.n_states > MAX_ONE_HOT_STATES:
                raise ValueError(f"encoding='onehot' supports at most {MAX_ONE_HOT_STATES} states, the MDP has "
                                 f"{mdp.n_states}; give the MDP state_features and use encoding='features'")
            self.dim = mdp.n_states
            low, high = 0.0, 1.0
        elif encoding == "features":
            if mdp.state_features is None:
                raise ValueError("encoding='features' needs an MDP with state_features")
            self._features = mdp.state_features.astype(np.float32)
            self.dim = self._features.shape[1]
            low, high = -np.inf, np.inf
        else:
            raise ValueError(f"encoding must be 'auto', 'onehot' or 'features', got {encoding!r}")
        self.encoding = encoding
        self.space = gym.spaces.Box(low, high, (self.dim,), np.float32)

    def __call__(self, states: np.ndarray | int) -> np.ndarray:
        """Encode one state (``[dim]``) or a batch (``[n, dim]``)."""
        states = np.asarray(states)
        if self.encoding == "features":
            return self._features[states]
        out = np.zeros((*states.shape, self.dim), dtype=np.float32)
        np.put_along_axis(out, states[..., None], 1.0, axis=-1)
        return out


def agent_observation(encoded_state: np.ndarray, contract: np.ndarray) -> np.ndarray:
    """The agent's observation: the state encoding followed by the contract on offer."""
    return np.concatenate([encoded_state, np.asarray(contract, dtype=np.float32)], axis=-1)


def _default_b_max(solution: SPESolution) -> float:
    # Room to offer twice the largest equilibrium payment, so that the SPE lies well inside the box.
    return float(max(1.0, 2.0 * solution.contracts.max()))


def _check_b_max(b_max: float) -> float:
    if not np.isfinite(b_max) or b_max <= 0:
        raise ValueError(f"b_max must be a positive finite number, got {b_max!r}")
    return float(b_max)


def _solution_and_b_max(mdp: PrincipalAgentMDP, b_max: float | None, needs_solution: bool
                        ) -> tuple[SPESolution | None, float]:
    """The SPE when the default ``b_max`` or an equilibrium player needs it, and the checked ``b_max``."""
    solution = solve_spe(mdp) if (needs_solution or b_max is None) else None
    return solution, _check_b_max(_default_b_max(solution) if b_max is None else b_max)


def _check_game_args(mdp: Any, max_episode_steps: int | None) -> None:
    if not isinstance(mdp, PrincipalAgentMDP):
        raise TypeError(f"mdp must be a sb3_contracts.envs.PrincipalAgentMDP, got {type(mdp).__name__}")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be positive or None, got {max_episode_steps!r}")


def _principal_step_info(mdp: PrincipalAgentMDP, state: int, next_state: int, outcome: int, payment: float,
                         agent_reward: float, agent_action: int) -> dict[str, Any]:
    """The ``info`` of one step of the principal's view (see :class:`PrincipalEnv`)."""
    info = {"state": state, "outcome": outcome, "payment": payment, "agent_reward": agent_reward,
            "true_agent_action": agent_action, "outcome_probs": mdp.outcome_probs[state].copy(),
            "next_outcome_probs": mdp.outcome_probs[next_state].copy()}
    if mdp.observed_action:
        info["agent_action"] = agent_action
    return info


def check_contract(contract: Any, shape: tuple[int, ...], b_max: float, name: str = "contract",
                   meaning: str = "one payment per outcome") -> np.ndarray:
    """
    Validate a contract (or a batch of contracts) as float64: nothing is clipped silently.

    :param contract: the payments.
    :param shape: the expected shape.
    :param b_max: the largest payment allowed.
    :param name: what to call the argument in error messages.
    :param meaning: what the shape means, for error messages.
    :return: the payments as a float64 array.
    :raises ValueError: on a wrong shape, NaN or inf, a negative payment or one above ``b_max``.
    """
    contract = np.asarray(contract, dtype=np.float64)
    if contract.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, {meaning}; got {contract.shape}")
    if not np.all(np.isfinite(contract)):
        raise ValueError(f"{name} must be finite, got {contract}")
    if np.any(contract < 0):
        raise ValueError(f"{name} payments must be non-negative (limited liability), got {contract}")
    # float32 actions may exceed a float64 bound by rounding only.
    if np.any(contract > b_max * (1 + 1e-6)):
        raise ValueError(f"{name} payments must be at most b_max={b_max}, got {contract}")
    return contract


START_STATES = ("initial", "uniform")


def _check_start_states(start_states: str) -> str:
    if start_states not in START_STATES:
        raise ValueError(f"start_states must be one of {START_STATES}, got {start_states!r}")
    return start_states


def draw_start_states(mdp: PrincipalAgentMDP, start_states: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """
    Where episodes begin: the MDP's initial state, or (``"uniform"``, exploring starts) a uniformly
    random non-terminal state, so that a learner sees every state however unlikely its path from the
    root. Exploring starts change the training distribution only: evaluate from the initial state.

    :param mdp: the principal-agent MDP.
    :param start_states: ``"initial"`` or ``"uniform"``.
    :param rng: the random generator to draw with.
    :param n: how many start states.
    :return: ``[n]`` state indices.
    """
    if start_states == "initial":
        return np.full(n, mdp.initial_state, dtype=np.int64)
    live = np.flatnonzero(~mdp.terminal)
    return live[rng.integers(0, live.size, n)]


class _ContractGame(gym.Env):
    """The parts both views share: state, encoding, outcome sampling and transitions."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, mdp: PrincipalAgentMDP, encoding: str, max_episode_steps: int | None,
                 render_mode: str | None, start_states: str = "initial") -> None:
        if render_mode not in (None, "ansi"):
            # A TypeError, as for an unknown keyword: SB3 builds envs from ids with render_mode="rgb_array"
            # and falls back to no render mode on exactly this error.
            raise TypeError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        _check_game_args(mdp, max_episode_steps)
        self.mdp = mdp
        self.encoder = StateEncoder(mdp, encoding)
        self.max_episode_steps = max_episode_steps
        self.start_states = _check_start_states(start_states)
        self.state = mdp.initial_state
        self._steps = 0

    def _check_contract(self, contract: Any, b_max: float) -> np.ndarray:
        return check_contract(contract, (self.mdp.n_outcomes,), b_max)

    def _reset_state(self, seed: int | None) -> None:
        super().reset(seed=seed)
        self.state = int(draw_start_states(self.mdp, self.start_states, self.np_random, 1)[0])
        self._steps = 0
        if self.mdp.terminal[self.state]:
            raise ValueError(f"the initial state {self.state} is terminal: nothing can happen")

    def _advance(self, action: int, contract: np.ndarray) -> tuple[int, float, float, bool, bool]:
        """Sample the outcome and next state; return outcome, agent and principal rewards, flags."""
        mdp, state = self.mdp, self.state
        outcome = int(self.np_random.choice(mdp.n_outcomes, p=mdp.outcome_probs[state, action]))
        payment = float(contract[outcome])
        agent_reward = float(mdp.agent_reward[state, action]) + payment
        principal_reward = float(mdp.principal_reward[state, outcome]) - payment
        row = mdp.transitions.getrow(state * mdp.n_outcomes + outcome)
        self.state = int(row.indices[self.np_random.choice(row.nnz, p=row.data / row.data.sum())])
        self._steps += 1
        terminated = bool(mdp.terminal[self.state])
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps and not terminated
        return outcome, agent_reward, principal_reward, terminated, truncated

    def render(self) -> str:
        return f"step {self._steps}: state {self.state}"


class PrincipalEnv(_ContractGame):
    """
    The principal's view of a principal-agent MDP.

    Observation: the state's encoding. Action: a contract, one non-negative payment per outcome, in
    ``Box(0, b_max, (O,))``. Reward: ``r^p(s, o) - b(o)``. ``info`` holds ``outcome``, ``payment``,
    ``agent_reward`` (``r(s, a) + b(o)``), ``state`` (the state the contract was offered in),
    ``outcome_probs`` and ``next_outcome_probs`` (the known outcome model ``𝒪(s, ·)`` ``[A, O]`` of that
    state and of the next one, for learners that use it), and ``agent_action`` when the MDP's actions
    are observed. ``true_agent_action`` is always there for
    metrics (e.g. follow rates): a learner of the hidden-action game must not train on it.

    :param mdp: the principal-agent MDP.
    :param agent: ``"best_response"`` (exact subgame-perfect agent), ``"best_response_strict"``
        (ties against the principal), a callable ``(state, contract) -> action``, an object with a batched
        ``act``, or an SB3 model trained on :class:`AgentEnv` of the same MDP (see :func:`make_batched_agent`).
    :param b_max: the largest payment per outcome; by default twice the largest SPE payment (at least 1).
    :param encoding: state encoding, see :class:`StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param render_mode: ``None`` or ``"ansi"`` (a one-line text description of the current step).
    :param start_states: ``"initial"`` (every episode starts in the MDP's initial state) or ``"uniform"``
        (exploring starts, for training: see :func:`draw_start_states`).
    """

    def __init__(
        self,
        mdp: PrincipalAgentMDP,
        agent: str | AgentCallable | _Predictor = "best_response",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        start_states: str = "initial",
    ) -> None:
        super().__init__(mdp, encoding, max_episode_steps, render_mode, start_states)
        solution, self.b_max = _solution_and_b_max(mdp, b_max, isinstance(agent, str))
        self.agent = make_batched_agent(agent, mdp, self.encoder, solution)
        self.observation_space = self.encoder.space
        self.action_space = gym.spaces.Box(0.0, self.b_max, (mdp.n_outcomes,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_state(seed)
        info = {"state": self.state, "outcome_probs": self.mdp.outcome_probs[self.state].copy()}
        return self.encoder(self.state), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        contract = self._check_contract(action, self.b_max)
        state = self.state
        agent_action = int(np.asarray(self.agent(np.array([state]), contract[None])).reshape(-1)[0])
        if not 0 <= agent_action < self.mdp.n_actions:
            raise ValueError(f"the embedded agent returned action {agent_action}, "
                             f"outside [0, {self.mdp.n_actions - 1}]")
        outcome, agent_reward, principal_reward, terminated, truncated = self._advance(agent_action, contract)
        info = _principal_step_info(self.mdp, state, self.state, outcome, float(contract[outcome]), agent_reward,
                                    agent_action)
        return self.encoder(self.state), principal_reward, terminated, truncated, info


class AgentEnv(_ContractGame):
    """
    The agent's view of a principal-agent MDP.

    Observation: the state's encoding followed by the contract on offer (``O`` payments). Action: one of
    the agent's ``A`` actions. Reward: ``r(s, a) + b(o)``. ``info`` holds ``outcome``, ``payment``,
    ``principal_reward`` (``r^p(s, o) - b(o)``) and ``state``.

    :param mdp: the principal-agent MDP.
    :param principal: ``"spe"`` (the equilibrium principal), an :class:`SPESolution` (its contracts), an
        ``[S, O]`` array of contracts, or a callable ``state -> contract``.
    :param b_max: bound on payments in the observation space; by default twice the largest SPE payment.
    :param encoding: state encoding, see :class:`StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param render_mode: ``None`` or ``"ansi"`` (a one-line text description of the current step).
    :param start_states: ``"initial"`` (every episode starts in the MDP's initial state) or ``"uniform"``
        (exploring starts, for training: see :func:`draw_start_states`).
    """

    def __init__(
        self,
        mdp: PrincipalAgentMDP,
        principal: str | SPESolution | np.ndarray | PrincipalCallable = "spe",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        start_states: str = "initial",
    ) -> None:
        super().__init__(mdp, encoding, max_episode_steps, render_mode, start_states)
        solution, self.b_max = _solution_and_b_max(mdp, b_max, isinstance(principal, str) and principal == "spe")
        self.principal = self._make_principal(principal, solution)
        low = np.concatenate([self.encoder.space.low, np.zeros(mdp.n_outcomes, np.float32)])
        high = np.concatenate([self.encoder.space.high, np.full(mdp.n_outcomes, self.b_max, np.float32)])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._contract = np.zeros(mdp.n_outcomes)

    def _make_principal(self, principal: Any, solution: SPESolution | None) -> PrincipalCallable:
        if isinstance(principal, str):
            if principal != "spe":
                raise ValueError(f"principal must be 'spe', an SPESolution, an [S, O] array or a callable, "
                                 f"got {principal!r}")
            principal = solution
        if isinstance(principal, SPESolution):
            principal = principal.contracts
        if isinstance(principal, np.ndarray):
            table = principal
            if table.shape != (self.mdp.n_states, self.mdp.n_outcomes):
                raise ValueError(f"a contract table must have shape [S, O] = "
                                 f"{(self.mdp.n_states, self.mdp.n_outcomes)}, got {table.shape}")
            return lambda state: table[state]
        if callable(principal):
            return principal
        raise TypeError(f"principal must be 'spe', an SPESolution, an array or a callable, "
                        f"got {type(principal).__name__}")

    def _offer(self) -> np.ndarray:
        self._contract = self._check_contract(self.principal(self.state), self.b_max)
        return agent_observation(self.encoder(self.state), self._contract)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_state(seed)
        return self._offer(), {"state": self.state}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = int(action)
        if not 0 <= action < self.mdp.n_actions:
            raise ValueError(f"action must lie in [0, {self.mdp.n_actions - 1}], got {action}")
        state, contract = self.state, self._contract
        outcome, agent_reward, principal_reward, terminated, truncated = self._advance(action, contract)
        info = {"state": state, "outcome": outcome, "payment": float(contract[outcome]),
                "principal_reward": principal_reward}
        if terminated:
            observation = agent_observation(self.encoder(self.state), np.zeros(self.mdp.n_outcomes))
        else:
            observation = self._offer()
        return observation, agent_reward, terminated, truncated, info


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


def make_binary_tree_agent_env(depth: int = 10, seed: int = 0, principal: Any = "spe", **kwargs: Any) -> AgentEnv:
    """
    Entry point of ``ContractBinaryTreeAgent-v0``: the agent's view of a random binary game tree.

    :param depth: tree depth (decision levels).
    :param seed: seed of the tree generator.
    :param principal: the embedded principal, see :class:`AgentEnv`.
    :param kwargs: further :class:`AgentEnv` arguments.
    """
    return AgentEnv(random_binary_tree(depth, seed), principal=principal, **kwargs)


BatchedAgent = Callable[[np.ndarray, np.ndarray], np.ndarray]


def make_batched_agent(agent: Any, mdp: PrincipalAgentMDP, encoder: StateEncoder,
                       solution: SPESolution | None) -> BatchedAgent:
    """
    The agent embedded in a principal's view, as a batched ``(states [n], contracts [n, O]) -> actions [n]``.

    :param agent: ``"best_response"`` / ``"best_response_strict"`` (exact, from ``solution``), an object
        with a batched ``act`` (e.g. :class:`~sb3_contracts.solvers.ExactBestResponder`), an SB3 model
        trained on :class:`AgentEnv` (one ``predict`` per batch), or a per-state callable
        ``(state, contract) -> action`` (called in a loop).
    :param mdp: the principal-agent MDP.
    :param encoder: the state encoding the SB3 model observes.
    :param solution: the SPE, for the exact agent's continuation (solved when ``None``).
    """
    if isinstance(agent, str):
        if agent not in ("best_response", "best_response_strict"):
            raise ValueError(f"agent must be 'best_response', 'best_response_strict', a batched agent, an SB3 "
                             f"model or a callable, got {agent!r}")
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


class PrincipalVecEnv(VecEnv):
    """
    ``n_envs`` copies of :class:`PrincipalEnv` stepped together in NumPy: an SB3 ``VecEnv`` with no Python
    loop over environments in ``step`` (outcomes, payments, transitions and the exact agent's replies are
    all batched). Use it instead of ``DummyVecEnv([PrincipalEnv] * n)`` when stepping speed matters.

    Observations, actions, rewards and ``info`` keys are those of :class:`PrincipalEnv`; finished episodes
    reset automatically and carry ``terminal_observation`` and the Monitor-style ``episode`` summary
    (``r``, ``l``, ``t``), so no ``Monitor`` wrapper is needed.

    :param mdp: the principal-agent MDP.
    :param n_envs: number of parallel episodes.
    :param agent: ``"best_response"``, ``"best_response_strict"``, an object with a batched
        ``act(states [n], contracts [n, O]) -> actions [n]`` (e.g. an
        :class:`~sb3_contracts.solvers.ExactBestResponder`), an SB3 model trained on :class:`AgentEnv`
        (queried in one batch), or a per-state callable ``(state, contract) -> action`` (called in a loop).
    :param b_max: the largest payment per outcome; by default twice the largest SPE payment (at least 1).
    :param encoding: state encoding, see :class:`StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param seed: seed of the environments' random generator (``seed()`` before ``reset()`` also works).
    :param start_states: ``"initial"`` or ``"uniform"`` (exploring starts, for training: see
        :func:`draw_start_states`).
    """

    def __init__(
        self,
        mdp: PrincipalAgentMDP,
        n_envs: int = 8,
        agent: str | AgentCallable | _Predictor | Any = "best_response",
        b_max: float | None = None,
        encoding: str = "auto",
        max_episode_steps: int | None = None,
        seed: int | None = None,
        start_states: str = "initial",
    ) -> None:
        _check_game_args(mdp, max_episode_steps)
        if not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
        if mdp.terminal[mdp.initial_state]:
            raise ValueError(f"the initial state {mdp.initial_state} is terminal: nothing can happen")
        self.mdp = mdp
        self.encoder = StateEncoder(mdp, encoding)
        solution, self.b_max = _solution_and_b_max(mdp, b_max, isinstance(agent, str))
        self.agent = make_batched_agent(agent, mdp, self.encoder, solution)
        self.max_episode_steps = max_episode_steps
        self.start_states = _check_start_states(start_states)
        action_space = gym.spaces.Box(0.0, self.b_max, (mdp.n_outcomes,), np.float32)
        self.render_mode = None
        super().__init__(int(n_envs), self.encoder.space, action_space)
        self._rng = np.random.default_rng(seed)
        transitions = mdp.transitions
        self._indptr, self._indices = transitions.indptr, transitions.indices
        # Global running sum of transition probabilities: sampling a successor of row r is one searchsorted.
        self._cumulative = np.cumsum(transitions.data)
        self.states = np.full(self.num_envs, mdp.initial_state, dtype=np.int64)
        self._steps = np.zeros(self.num_envs, dtype=np.int64)
        self._returns = np.zeros(self.num_envs)
        self._starts = np.zeros(self.num_envs)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self.states = draw_start_states(self.mdp, self.start_states, self._rng, self.num_envs)
        self._steps[:] = 0
        self._returns[:] = 0.0
        self._starts[:] = time.time()
        self.reset_infos = [self._reset_info(int(s)) for s in self.states]
        return self.encoder(self.states)

    def _reset_info(self, state: int) -> dict[str, Any]:
        return {"state": state, "outcome_probs": self.mdp.outcome_probs[state]}

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def _sample_rows(self, probs: np.ndarray) -> np.ndarray:
        """One categorical draw per row of ``probs [n, K]``."""
        draws = self._rng.random(probs.shape[0])[:, None]
        return np.minimum((np.cumsum(probs, axis=1) < draws).sum(axis=1), probs.shape[1] - 1)

    def _sample_next(self, rows: np.ndarray) -> np.ndarray:
        start, end = self._indptr[rows], self._indptr[rows + 1]
        before = np.where(start > 0, self._cumulative[np.maximum(start - 1, 0)], 0.0)
        mass = self._cumulative[end - 1] - before
        point = before + self._rng.random(rows.size) * mass
        position = np.clip(np.searchsorted(self._cumulative, point, side="right"), start, end - 1)
        return self._indices[position]

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_async must be called before step_wait")
        mdp, states = self.mdp, self.states
        contracts = check_contract(self._actions, (self.num_envs, mdp.n_outcomes), self.b_max, "contracts",
                                   "one payment per env and outcome")
        self._actions = None
        actions = np.asarray(self.agent(states, contracts), dtype=np.int64).reshape(-1)
        if actions.shape != states.shape or actions.min() < 0 or actions.max() >= mdp.n_actions:
            raise ValueError(f"the embedded agent must return {self.num_envs} actions in [0, {mdp.n_actions - 1}], "
                             f"got {actions}")
        rows = np.arange(self.num_envs)
        outcomes = self._sample_rows(mdp.outcome_probs[states, actions])
        payments = contracts[rows, outcomes]
        agent_rewards = mdp.agent_reward[states, actions] + payments
        rewards = mdp.principal_reward[states, outcomes] - payments
        next_states = self._sample_next(states * mdp.n_outcomes + outcomes)
        self._steps += 1
        self._returns += rewards
        terminated = mdp.terminal[next_states]
        truncated = np.zeros_like(terminated) if self.max_episode_steps is None else (
            (self._steps >= self.max_episode_steps) & ~terminated)
        dones = terminated | truncated
        observations = self.encoder(next_states)
        restarts = draw_start_states(mdp, self.start_states, self._rng, int(dones.sum()))
        next_states_after_reset = next_states.copy()
        next_states_after_reset[dones] = restarts
        infos = []
        for i in range(self.num_envs):
            info = _principal_step_info(mdp, int(states[i]), int(next_states[i]), int(outcomes[i]),
                                        float(payments[i]), float(agent_rewards[i]), int(actions[i]))
            if dones[i]:
                info["terminal_observation"] = observations[i].copy()
                info["TimeLimit.truncated"] = bool(truncated[i])
                info["episode"] = {"r": float(self._returns[i]), "l": int(self._steps[i]),
                                   "t": round(time.time() - self._starts[i], 6)}
                self.reset_infos[i] = self._reset_info(int(next_states_after_reset[i]))
            infos.append(info)
        if dones.any():
            next_states = next_states_after_reset
            observations[dones] = self.encoder(next_states[dones])
            self._steps[dones] = 0
            self._returns[dones] = 0.0
            self._starts[dones] = time.time()
        self.states = next_states
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
