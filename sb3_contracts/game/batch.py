"""The tabular principal-agent game, written once: ``n`` episodes of one MDP stepped together in NumPy.

One step of every game (:meth:`ContractGameBatch.play`): the contracts are checked, the agent answers them,
outcomes are drawn, both players are paid, and the next states are drawn. :class:`ContractGameBatch.advance` is
the part after the agent's answer, for views whose agent acts from outside (the agent's view). There is no
Python loop over games: the principal's and the agent's Gymnasium views are thin views over a batch of one, and
the principal's VecEnv is the batch itself, so all of them give identical trajectories for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from sb3_contracts.contracts import check_b_max, check_contract
from sb3_contracts.envs.checks import check_instance, check_int, check_seed
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.solvers import SPESolution, solve_spe

#: Where training episodes begin, see :func:`draw_start_states` (or a share of initial starts, a float in [0, 1]).
START_STATES = ("initial", "uniform")
#: ``"initial"``, ``"uniform"``, or the share of episodes that start in the initial state (the others uniform).
StartStates = str | float

BatchedAgent = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_start_states(start_states: StartStates) -> StartStates:
    """``start_states`` if it is one of :data:`START_STATES` or a share in [0, 1], else a ``ValueError``."""
    if isinstance(start_states, str):
        if start_states not in START_STATES:
            raise ValueError(f"start_states must be one of {START_STATES} or a share in [0, 1], got {start_states!r}")
    elif isinstance(start_states, bool) or not isinstance(start_states, (int, float)) or not 0 <= start_states <= 1:
        raise ValueError(f"start_states must be one of {START_STATES} or a share in [0, 1], got {start_states!r}")
    return start_states


def parse_start_states(text: str) -> StartStates:
    """
    ``start_states`` from a command line: ``"initial"``, ``"uniform"`` or a share in [0, 1] (``ValueError`` else).

    :param text: the argument as typed.
    """
    if text in START_STATES:
        return text
    try:
        share = float(text)
    except ValueError:
        raise ValueError(f"start_states must be one of {START_STATES} or a share in [0, 1], got {text!r}") from None
    return check_start_states(share)


def draw_start_states(mdp: PrincipalAgentMDP, start_states: StartStates, rng: np.random.Generator,
                      n: int) -> np.ndarray:
    """
    Where episodes begin: the MDP's initial state, or (``"uniform"``, exploring starts) a uniformly
    random non-terminal state, so that a learner sees every state however unlikely its path from the
    root, or a mix: a share ``p`` of the episodes starts in the initial state and the others uniformly. Uniform
    starts alone visit the states near the root rarely (on a depth-10 tree the root starts one episode in a
    thousand) although every evaluation passes through them; the mix trains both. Exploring starts change the
    training distribution only: evaluate from the initial state.

    :param mdp: the principal-agent MDP.
    :param start_states: ``"initial"``, ``"uniform"`` or the share ``p`` in [0, 1] of initial starts.
    :param rng: the random generator to draw with (untouched for ``"initial"``, ``p = 1`` or ``n = 0``).
    :param n: how many start states.
    :return: ``[n]`` state indices.
    """
    share = 1.0 if start_states == "initial" else 0.0 if start_states == "uniform" else float(start_states)
    if share == 1.0 or n == 0:
        return np.full(n, mdp.initial_state, dtype=np.int64)
    live = np.flatnonzero(~mdp.terminal)
    states = live[rng.integers(0, live.size, n)]
    if share > 0.0:
        states = np.where(rng.random(n) < share, mdp.initial_state, states)
    return states


def default_b_max(solution: SPESolution) -> float:
    """Room to offer twice the largest equilibrium payment (at least 1), so the SPE lies well inside the box."""
    return float(max(1.0, 2.0 * solution.contracts.max()))


def resolve_b_max(mdp: PrincipalAgentMDP, b_max: float | None, needs_solution: bool
                  ) -> tuple[SPESolution | None, float]:
    """
    The SPE when the default ``b_max`` or an equilibrium player needs it, and the checked ``b_max``.

    :param mdp: the principal-agent MDP.
    :param b_max: the cap on payments, or ``None`` for :func:`default_b_max`.
    :param needs_solution: whether an equilibrium player (exact agent, SPE principal) will be embedded.
    """
    solution = solve_spe(mdp) if (needs_solution or b_max is None) else None
    return solution, check_b_max(default_b_max(solution) if b_max is None else b_max)


class GameStep(NamedTuple):
    """What one step of every game produced, each array ``[n]``."""

    states: np.ndarray
    actions: np.ndarray
    outcomes: np.ndarray
    payments: np.ndarray
    agent_rewards: np.ndarray  # r(s, a) + b(o)
    principal_rewards: np.ndarray  # r^p(s, o) - b(o)
    next_states: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class ContractGameBatch:
    """
    ``n_games`` episodes of a principal-agent MDP held in arrays and stepped together. ``step`` never resets:
    call :meth:`reset` with the mask of the finished games (views do it on their own schedule).

    :param mdp: the principal-agent MDP.
    :param n_games: number of episodes stepped together.
    :param b_max: the largest payment per outcome.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param start_states: ``"initial"``, ``"uniform"`` (exploring starts) or a share of initial starts, see
        :func:`draw_start_states`.
    :param seed: seed of the batch's random generator (``rng`` may be replaced, e.g. by a Gymnasium env's).
    """

    def __init__(self, mdp: PrincipalAgentMDP, n_games: int, b_max: float, max_episode_steps: int | None = None,
                 start_states: StartStates = "initial", seed: int | None = None) -> None:
        check_instance("mdp", mdp, PrincipalAgentMDP)
        check_int("n_envs", n_games, 1)
        if max_episode_steps is not None:
            check_int("max_episode_steps", max_episode_steps, 1)
        elif mdp.topological_levels() is None:
            raise ValueError("the MDP has a cycle, so its episodes never end: pass max_episode_steps")
        self.start_states = check_start_states(start_states)
        if mdp.terminal[mdp.initial_state]:
            raise ValueError(f"the initial state {mdp.initial_state} is terminal: nothing can happen")
        self.mdp, self.n_games, self.b_max = mdp, int(n_games), check_b_max(b_max)
        self.max_episode_steps = max_episode_steps
        self.rng = np.random.default_rng(check_seed(seed))
        transitions = mdp.transitions
        self._indptr, self._indices = transitions.indptr, transitions.indices
        # Global running sum of transition probabilities: sampling a successor of row r is one searchsorted.
        self._cumulative = np.cumsum(transitions.data)
        self.states = np.full(self.n_games, mdp.initial_state, dtype=np.int64)
        self.steps = np.zeros(self.n_games, dtype=np.int64)

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """
        Start new episodes in every game, or in those selected by ``mask``.

        :param mask: ``[n]`` booleans; ``None`` resets all.
        :return: the states of all games ``[n]``.
        """
        games = np.ones(self.n_games, dtype=bool) if mask is None else mask
        self.states[games] = draw_start_states(self.mdp, self.start_states, self.rng, int(games.sum()))
        self.steps[games] = 0
        return self.states

    def check_contracts(self, contracts: Any, name: str = "contracts") -> np.ndarray:
        """The contracts ``[n, O]`` as float64, or a ``ValueError`` naming ``name``: nothing is clipped."""
        return check_contract(contracts, (self.n_games, self.mdp.n_outcomes), self.b_max, name,
                              "one payment per game and outcome")

    def check_actions(self, actions: Any, source: str = "the embedded agent's actions") -> np.ndarray:
        """The agent's actions ``[n]`` as int64, or a ``ValueError`` naming ``source``."""
        actions = np.asarray(actions).reshape(-1)
        n_actions = self.mdp.n_actions
        if (actions.shape != (self.n_games,) or actions.dtype.kind not in "iu" or actions.min() < 0
                or actions.max() >= n_actions):
            raise ValueError(f"{source} must be {self.n_games} integer action(s) in [0, {n_actions - 1}], "
                             f"got {actions!r}")
        return actions.astype(np.int64, copy=False)

    def play(self, contracts: Any, agent: BatchedAgent) -> GameStep:
        """
        One step of every game: check the contracts, let ``agent`` answer them, then :meth:`advance`.

        :param contracts: ``[n, O]`` payments per game and outcome.
        :param agent: batched ``(states [n], contracts [n, O]) -> actions [n]``.
        """
        contracts = self.check_contracts(contracts)
        return self.advance(contracts, self.check_actions(agent(self.states, contracts)))

    def advance(self, contracts: np.ndarray, actions: np.ndarray) -> GameStep:
        """
        Draw the outcomes, pay both players and move to the next states (inputs already checked).

        :param contracts: ``[n, O]`` float64 payments.
        :param actions: ``[n]`` int64 agent actions.
        """
        mdp, states = self.mdp, self.states
        outcomes = self._sample_rows(mdp.outcome_probs[states, actions])
        payments = contracts[np.arange(self.n_games), outcomes]
        next_states = self._sample_next(states * mdp.n_outcomes + outcomes)
        self.steps += 1
        terminated = mdp.terminal[next_states]
        truncated = np.zeros_like(terminated) if self.max_episode_steps is None else (
            (self.steps >= self.max_episode_steps) & ~terminated)
        self.states = next_states
        return GameStep(states, actions, outcomes, payments, mdp.agent_reward[states, actions] + payments,
                        mdp.principal_reward[states, outcomes] - payments, next_states, terminated, truncated)

    def _sample_rows(self, probs: np.ndarray) -> np.ndarray:
        """One categorical draw per row of ``probs [n, K]``."""
        draws = self.rng.random(probs.shape[0])[:, None]
        return np.minimum((np.cumsum(probs, axis=1) < draws).sum(axis=1), probs.shape[1] - 1)

    def _sample_next(self, rows: np.ndarray) -> np.ndarray:
        start, end = self._indptr[rows], self._indptr[rows + 1]
        before = np.where(start > 0, self._cumulative[np.maximum(start - 1, 0)], 0.0)
        mass = self._cumulative[end - 1] - before
        point = before + self.rng.random(rows.size) * mass
        position = np.clip(np.searchsorted(self._cumulative, point, side="right"), start, end - 1)
        return self._indices[position]


class GameBatchView:
    """What every view over a :class:`ContractGameBatch` (``self.game``) exposes of it."""

    game: ContractGameBatch

    @property
    def mdp(self) -> PrincipalAgentMDP:
        return self.game.mdp

    @property
    def b_max(self) -> float:
        return self.game.b_max

    def set_start_states(self, start_states: StartStates) -> None:
        """Where the next episodes start (see :func:`draw_start_states`): a learner's exploring starts."""
        self.game.start_states = check_start_states(start_states)
