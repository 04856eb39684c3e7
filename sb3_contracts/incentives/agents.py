"""Learning agents facing transfers, vectorised over independent runs (numpy over seeds).

Every agent here plays ``N`` independent runs at once. Each episode the principal announces its transfer
schedule ``τ`` ``[N, H, S, A]``; at each step the agent sees the offer at its state (as the first system's
agents see the contract on offer) and acts. The tabular learners keep the *truncated* value ``Q̄_h(s, a)``,
the agent's own reward plus the continuation, without the current transfer, and act on ``Q̄_h(s, ·) +
τ_h(s, ·)``; the continuation they learn from is ``V_{h+1}(s') = max_a Q̄_{h+1}(s', a) + τ_{h+1}(s', a)`` under
the episode's schedule. So a change of the offer at a step moves behaviour at that step at once, and only the
continuation has to be relearned: our choice for agents that must answer changing incentives.

* :class:`OptimisticQAgent`: optimistic Q-learning with Hoeffding bonuses (UCB-H, Jin et al. 2018):
  learning rate ``α_n = (H + 1) / (H + n)``, bonus ``c R sqrt(H ι / n)``.
* :class:`EpsilonGreedyQAgent`: Q-learning with the same learning rate and ``ε_t = min(1, ε_0 t^{-1/3})``.
* :class:`ExactAgent`: the exact best response to each episode's schedule (backward induction).

``policy()`` returns the policy the agent plays this episode (actions ``[N, H, S]`` or probabilities
``[N, H, S, A]``), from which the experiment computes its exact regret against the optimal policy for the
transfers on offer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, backward_induction, check_int


class TabularAgent(ABC):
    """
    What every agent of the mechanism does, for ``n_runs`` independent runs.

    :param model: the world (the learners use only its shape; the exact agent plans on it).
    :param n_runs: independent runs played together.
    :param seed: seed of the agent's random generator.
    """

    def __init__(self, model: ExternalityMDP, n_runs: int, seed: int = 0) -> None:
        self.model = model
        self.n_runs = check_int("n_runs", n_runs, 1)
        self.rng = np.random.default_rng(seed)
        self.transfers = np.zeros((self.n_runs, *model.shape))
        self._runs = np.arange(self.n_runs)

    def begin_episode(self, transfers: np.ndarray) -> None:
        """Take the schedule ``[N, H, S, A]`` announced for this episode."""
        self.transfers = transfers

    @abstractmethod
    def act(self, h: int, states: np.ndarray) -> np.ndarray:
        """``[N]`` actions at step ``h`` in ``states`` ``[N]``."""

    def observe(self, h: int, states: np.ndarray, actions: np.ndarray, own_rewards: np.ndarray,
                next_states: np.ndarray) -> None:
        """Learn from one step of every run (own reward, without the transfer). Default: nothing to learn."""
        return None

    @abstractmethod
    def policy(self) -> np.ndarray:
        """The policy played this episode: actions ``[N, H, S]`` or probabilities ``[N, H, S, A]``."""


class _QAgent(TabularAgent):
    """Shared by the Q-learners: the truncated ``Q̄`` table, visit counts and the step-size rule."""

    def __init__(self, model: ExternalityMDP, n_runs: int, seed: int = 0, initial_value: float = 0.0) -> None:
        super().__init__(model, n_runs, seed)
        self.q = np.full((self.n_runs, *model.shape), float(initial_value))
        self.counts = np.zeros((self.n_runs, *model.shape), dtype=np.int64)
        self.episodes = 0

    def _offered_values(self, h: int) -> np.ndarray:
        """``[N, S, A]``: ``Q̄_h + τ_h``, what the agent maximises at step ``h``."""
        return self.q[:, h] + self.transfers[:, h]

    def _continuation(self, h: int, next_states: np.ndarray) -> np.ndarray:
        if h + 1 >= self.model.horizon:
            return np.zeros(self.n_runs)
        return self._offered_values(h + 1)[self._runs, next_states].max(axis=1)

    def _bonus(self, counts: np.ndarray) -> np.ndarray:
        return np.zeros(counts.shape)

    def observe(self, h: int, states: np.ndarray, actions: np.ndarray, own_rewards: np.ndarray,
                next_states: np.ndarray) -> None:
        index = (self._runs, h, states, actions)
        self.counts[index] += 1
        n = self.counts[index]
        horizon = self.model.horizon
        rate = (horizon + 1) / (horizon + n)
        target = own_rewards + self._continuation(h, next_states) + self._bonus(n)
        self.q[index] += rate * (target - self.q[index])
        if h == horizon - 1:
            self.episodes += 1

    def greedy(self) -> np.ndarray:
        """``[N, H, S]`` the greedy policy on ``Q̄ + τ``."""
        return (self.q + self.transfers).argmax(axis=-1)


class OptimisticQAgent(_QAgent):
    """
    Optimistic Q-learning with Hoeffding bonuses (UCB-H, Jin et al. 2018), on the truncated ``Q̄``.

    ``Q̄`` starts at ``(H − h) R`` (an upper bound of the agent's own return, ``R`` its reward range) and each
    update adds the bonus ``c R sqrt(H ι / n)``, ``ι = log(S A H T / p)``. Jin et al.'s bonus has ``H^{3/2}``
    and a large constant for the worst case; ``bonus_scale`` sets ``c`` (ours: see the README's measurements).

    :param model: the world (its shape and the agent's reward range only).
    :param n_runs: independent runs.
    :param seed: random seed.
    :param bonus_scale: ``c``.
    :param horizon_episodes: ``T`` in ``ι``.
    :param failure_probability: ``p`` in ``ι``.
    """

    def __init__(self, model: ExternalityMDP, n_runs: int, seed: int = 0, bonus_scale: float = 0.1,
                 horizon_episodes: int = 100_000, failure_probability: float = 0.01) -> None:
        reward_range = float(np.ptp(model.agent_reward)) or 1.0
        super().__init__(model, n_runs, seed, initial_value=0.0)
        steps_left = model.horizon - np.arange(model.horizon)
        self.q += (steps_left * reward_range + model.agent_reward.min())[None, :, None, None]
        if not np.isfinite(bonus_scale) or bonus_scale < 0:
            raise ValueError(f"bonus_scale must be finite and non-negative, got {bonus_scale!r}")
        check_int("horizon_episodes", horizon_episodes, 1)
        if not 0 < failure_probability < 1:
            raise ValueError(f"failure_probability must lie in (0, 1), got {failure_probability!r}")
        iota = np.log(model.n_states * model.n_actions * model.horizon * horizon_episodes / failure_probability)
        self._bonus_coef = bonus_scale * reward_range * np.sqrt(model.horizon * iota)

    def _bonus(self, counts: np.ndarray) -> np.ndarray:
        return self._bonus_coef / np.sqrt(counts)

    def act(self, h: int, states: np.ndarray) -> np.ndarray:
        return self._offered_values(h)[self._runs, states].argmax(axis=1)

    def policy(self) -> np.ndarray:
        return self.greedy()


class EpsilonGreedyQAgent(_QAgent):
    """
    ε-greedy Q-learning on the truncated ``Q̄`` (starts at 0), step size ``(H + 1) / (H + n)``, exploration
    ``ε_t = min(1, ε_0 t^{-1/3})`` in episode ``t`` (a uniformly random action with probability ``ε_t``).

    :param model: the world (its shape only).
    :param n_runs: independent runs.
    :param seed: random seed.
    :param epsilon: ``ε_0``.
    """

    def __init__(self, model: ExternalityMDP, n_runs: int, seed: int = 0, epsilon: float = 1.0) -> None:
        super().__init__(model, n_runs, seed)
        if not 0 <= epsilon <= 1e6:
            raise ValueError(f"epsilon must be non-negative, got {epsilon!r}")
        self.epsilon0 = float(epsilon)

    @property
    def epsilon(self) -> float:
        return min(1.0, self.epsilon0 * (self.episodes + 1) ** (-1 / 3))

    def act(self, h: int, states: np.ndarray) -> np.ndarray:
        greedy = self._offered_values(h)[self._runs, states].argmax(axis=1)
        explore = self.rng.random(self.n_runs) < self.epsilon
        return np.where(explore, self.rng.integers(0, self.model.n_actions, self.n_runs), greedy)

    def policy(self) -> np.ndarray:
        probs = np.full((self.n_runs, *self.model.shape), self.epsilon / self.model.n_actions)
        np.put_along_axis(probs, self.greedy()[..., None], 1 - self.epsilon + self.epsilon / self.model.n_actions,
                          axis=-1)
        return probs


class ExactAgent(TabularAgent):
    """The exact best response to each episode's schedule (ties: the lowest action index)."""

    def __init__(self, model: ExternalityMDP, n_runs: int, seed: int = 0) -> None:
        super().__init__(model, n_runs, seed)
        self._policy = np.zeros((self.n_runs, *model.shape[:2]), dtype=np.int64)
        self._planned_for: np.ndarray | None = None

    def begin_episode(self, transfers: np.ndarray) -> None:
        super().begin_episode(transfers)
        if self._planned_for is None or not np.array_equal(self._planned_for, transfers):
            q, _ = backward_induction(self.model.transitions, self.model.agent_reward + transfers)
            self._policy = q.argmax(axis=-1)
            self._planned_for = transfers.copy()

    def act(self, h: int, states: np.ndarray) -> np.ndarray:
        return self._policy[self._runs, h, states]

    def policy(self) -> np.ndarray:
        return self._policy


AGENTS = {"optimistic_q": OptimisticQAgent, "epsilon_greedy_q": EpsilonGreedyQAgent, "exact": ExactAgent}


def make_agent(name: str, model: ExternalityMDP, n_runs: int, seed: int = 0, **kwargs: float) -> TabularAgent:
    """
    Build an agent by name: ``"optimistic_q"``, ``"epsilon_greedy_q"`` or ``"exact"``.

    :param name: the agent's name.
    :param model: the world.
    :param n_runs: independent runs.
    :param seed: random seed.
    :param kwargs: the agent's own options.
    """
    if name not in AGENTS:
        raise ValueError(f"agent must be one of {sorted(AGENTS)}, got {name!r}")
    return AGENTS[name](model, n_runs, seed, **kwargs)
