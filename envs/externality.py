"""The finite-horizon externality model: an agent acts, society bears part of the consequences.

An episodic MDP ``(S, A, H, P, r^A, r^P, μ)``: at step ``h`` in state ``s`` the agent takes action ``a``,
receives ``r^A_h(s, a)`` plus the transfer ``τ_h(s, a) ≥ 0`` the principal (society) offers on that observed
action; the principal receives ``r^P_h(s, a) − τ_h(s, a)``; the next state is drawn from
``P_h(· | s, a)``. Welfare ``W(π) = E_π Σ_h (r^A + r^P)``: transfers move utility between the two and
cancel in it. Every episode lasts exactly ``H`` steps (no terminal states).

This module holds the model and its sampling only; planning (backward induction, minimal transfers)
lives in ``sb3_contracts.incentives``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .checks import check_distributions
from .mdp import _as_float_array


def check_int(name: str, value: object, minimum: int = 0) -> int:
    """
    Validate an integer count (booleans are not counts).

    :param name: the argument's name, for the error message.
    :param value: the value to check.
    :param minimum: the smallest value allowed.
    :return: the value as a Python ``int``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_transfers(transfers: object, shape: tuple[int, ...], name: str = "transfers") -> np.ndarray:
    """
    Validate a transfer schedule: finite, non-negative (limited liability), of the expected shape.

    :param transfers: the payments, one per (step, state, action).
    :param shape: the expected shape, ``(H, S, A)`` (or with a leading batch axis).
    :param name: the argument's name, for error messages.
    :return: the transfers as a float64 array.
    """
    array = np.asarray(transfers, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (one payment per step, state and action), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative (limited liability), found {array.min():.6g}")
    return array


class ExternalityMDP:
    """
    A finite-horizon MDP with an agent's reward and a principal's (society's) reward.

    :param transitions: ``[H, S, A, S]``, ``P_h(s' | s, a)``; rows sum to 1.
    :param agent_reward: ``[H, S, A]``, the agent's own reward ``r^A``.
    :param principal_reward: ``[H, S, A]``, the principal's reward ``r^P`` before transfers (the externality).
    :param initial_distribution: ``[S]``, the distribution ``μ`` of the first state.
    :param state_names: optional names of the states (for printing).
    :param action_names: optional names of the actions (for printing).
    """

    def __init__(
        self,
        transitions: np.ndarray,
        agent_reward: np.ndarray,
        principal_reward: np.ndarray,
        initial_distribution: np.ndarray,
        state_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
    ) -> None:
        self.transitions = _as_float_array("transitions", transitions, 4)
        horizon, n_states, n_actions, n_next = self.transitions.shape
        if min(horizon, n_states, n_actions) < 1 or n_next != n_states:
            raise ValueError(f"transitions must have shape [H, S, A, S] with H, S, A >= 1, "
                             f"got {self.transitions.shape}")
        check_distributions("transitions", self.transitions)
        shape = (horizon, n_states, n_actions)
        self.agent_reward = self._reward("agent_reward", agent_reward, shape)
        self.principal_reward = self._reward("principal_reward", principal_reward, shape)
        self.initial_distribution = _as_float_array("initial_distribution", initial_distribution, 1)
        if self.initial_distribution.shape != (n_states,):
            raise ValueError(f"initial_distribution must have shape [S] = ({n_states},), "
                             f"got {self.initial_distribution.shape}")
        check_distributions("initial_distribution", self.initial_distribution)
        self.state_names = self._names("state_names", state_names, n_states)
        self.action_names = self._names("action_names", action_names, n_actions)
        # Cumulative rows make sampling a comparison with one uniform draw per run.
        self._cdf = np.cumsum(self.transitions, axis=-1)
        self._cdf[..., -1] = 1.0
        self._initial_cdf = np.cumsum(self.initial_distribution)
        self._initial_cdf[-1] = 1.0

    @staticmethod
    def _reward(name: str, reward: object, shape: tuple[int, int, int]) -> np.ndarray:
        array = _as_float_array(name, reward, 3)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape [H, S, A] = {shape}, got {array.shape}")
        return array

    @staticmethod
    def _names(name: str, names: Sequence[str] | None, size: int) -> tuple[str, ...] | None:
        if names is None:
            return None
        if len(names) != size:
            raise ValueError(f"{name} must have {size} entries, got {len(names)}")
        return tuple(str(n) for n in names)

    @property
    def horizon(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_states(self) -> int:
        return self.transitions.shape[1]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[2]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, S, A)``: the shape of rewards, transfers and Q tables."""
        return self.transitions.shape[:3]

    @property
    def welfare_reward(self) -> np.ndarray:
        """``[H, S, A]``: ``r^A + r^P``, the per-step welfare (transfers cancel)."""
        return self.agent_reward + self.principal_reward

    def check_transfers(self, transfers: object, name: str = "transfers") -> np.ndarray:
        """Validate a ``[H, S, A]`` transfer schedule for this model (see :func:`check_transfers`)."""
        return check_transfers(transfers, self.shape, name)

    def sample_initial(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """
        Draw ``n`` first states from ``μ``.

        :param rng: the random generator.
        :param n: how many.
        :return: ``[n]`` state indices.
        """
        return np.searchsorted(self._initial_cdf, rng.random(n), side="right")

    def sample_next(self, h: int, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """
        Draw next states for a batch of independent runs at step ``h``.

        :param h: the step, in ``[0, H)``.
        :param states: ``[n]`` current states.
        :param actions: ``[n]`` actions taken.
        :param rng: the random generator.
        :return: ``[n]`` next states.
        """
        cdf = self._cdf[h, states, actions]
        return (rng.random((len(states), 1)) >= cdf).sum(axis=1)

    def __repr__(self) -> str:
        return f"ExternalityMDP(H={self.horizon}, S={self.n_states}, A={self.n_actions})"


def backward_induction(transitions: np.ndarray, reward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Optimal values of a finite-horizon MDP by backward induction (ties: the lowest action index).

    :param transitions: ``[H, S, A, S]``.
    :param reward: ``[H, S, A]`` or batched ``[..., H, S, A]``.
    :return: ``Q`` of the reward's shape and ``V`` ``[..., H + 1, S]`` (``V[..., H, :] = 0``).
    """
    horizon, n_states = transitions.shape[:2]
    q = np.empty(reward.shape)
    v = np.zeros((*reward.shape[:-3], horizon + 1, n_states))
    for h in range(horizon - 1, -1, -1):
        q[..., h, :, :] = reward[..., h, :, :] + np.einsum("sat,...t->...sa", transitions[h], v[..., h + 1, :])
        v[..., h, :] = q[..., h, :, :].max(axis=-1)
    return q, v
