"""Principals: who sets the transfer schedule each episode, for ``N`` independent runs at once.

A principal announces a schedule ``τ`` ``[N, H, S, A]`` before each episode (:meth:`IncentivePrincipal.offer`) and sees
the episode's states, actions and its own rewards afterwards (:meth:`IncentivePrincipal.observe`): behaviour only,
never the agent's reward or parameters. :class:`FixedSchedule` offers the same schedule every episode (no
incentives, the oracle ``τ*``, coarse designs, the first system's SPE contracts); the two-phase mechanism is
in :mod:`sb3_contracts.incentives.mechanism`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from sb3_contracts.envs.externality import check_int


class IncentivePrincipal(ABC):
    """
    The principal's side of the repeated game.

    :param shape: ``(H, S, A)`` of the world.
    :param n_runs: independent runs.
    """

    #: What the principal is doing now, for logs (e.g. ``"estimate"``, ``"steer"``).
    phase: str = "steer"

    def __init__(self, shape: tuple[int, int, int], n_runs: int) -> None:
        self.shape = tuple(shape)
        self.n_runs = check_int("n_runs", n_runs, 1)

    @abstractmethod
    def offer(self, episode: int) -> np.ndarray:
        """The schedule ``[N, H, S, A]`` announced for ``episode``."""

    def observe(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """
        Learn from an episode of every run.

        :param states: ``[N, H]`` the state at each step.
        :param actions: ``[N, H]`` the agent's actions (observed).
        :param rewards: ``[N, H]`` the principal's own rewards ``r^P`` (before transfers).
        """
        return None


class FixedSchedule(IncentivePrincipal):
    """
    The same transfers every episode.

    :param transfers: ``[H, S, A]`` (shared by every run) or ``[N, H, S, A]``.
    :param n_runs: independent runs.
    """

    def __init__(self, transfers: np.ndarray, n_runs: int) -> None:
        transfers = np.asarray(transfers, dtype=np.float64)
        if transfers.ndim not in (3, 4):
            raise ValueError(f"transfers must be [H, S, A] or [N, H, S, A], got shape {transfers.shape}")
        if not np.all(np.isfinite(transfers)) or np.any(transfers < 0):
            raise ValueError("transfers must be finite and non-negative (limited liability)")
        super().__init__(transfers.shape[-3:], n_runs)
        if transfers.ndim == 4 and transfers.shape[0] != self.n_runs:
            raise ValueError(f"transfers [N, H, S, A] must have N = n_runs = {self.n_runs}, got {transfers.shape[0]}")
        self.transfers = np.broadcast_to(transfers, (self.n_runs, *self.shape))

    def offer(self, episode: int) -> np.ndarray:
        return self.transfers
