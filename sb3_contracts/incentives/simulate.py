"""The repeated game: a principal's schedule, an agent's episode, exact per-episode scores, ``N`` runs at once.

Each episode the principal announces its schedule, the agent plays one episode in each run (vectorised over
runs; the loop is over steps only), and both learn. Every episode is scored exactly against the model:
the welfare ``W(π_t)`` of the policy the agent played and its regret against the optimal policy for the
transfers on offer (both by backward induction, recomputed only when the policy or the schedule changed),
beside the realised transfers, principal's net reward and stock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, check_int
from sb3_contracts.incentives.agents import TabularAgent
from sb3_contracts.incentives.exact import plan, policy_values, welfare_optimum
from sb3_contracts.incentives.principals import IncentivePrincipal


@dataclass
class RunRecord:
    """
    Per-episode records of ``N`` runs (``[T, N]`` unless said otherwise).

    :param welfare: exact ``W(π_t)`` of the agent's policy in episode ``t``.
    :param agent_regret: the agent's exact regret in episode ``t`` against the optimal policy for ``τ_t``.
    :param transfers: transfers paid in the episode (realised).
    :param principal_net: the principal's realised net reward ``Σ_h r^P − τ``.
    :param realised_welfare: the episode's realised ``Σ_h r^A + r^P``.
    :param mean_state: ``[T, H]`` the state at each step, averaged over runs (the stock trajectory).
    :param estimating: ``[T]`` whether the principal was estimating (Phase 1) in episode ``t``.
    :param optimal_welfare: ``W*``.
    """

    welfare: np.ndarray
    agent_regret: np.ndarray
    transfers: np.ndarray
    principal_net: np.ndarray
    realised_welfare: np.ndarray
    mean_state: np.ndarray
    estimating: np.ndarray
    optimal_welfare: float

    @property
    def welfare_regret(self) -> np.ndarray:
        """``[T, N]``: cumulative social-welfare regret ``R_W(t) = Σ_{u ≤ t} (W* − W(π_u))``."""
        return np.cumsum(self.optimal_welfare - self.welfare, axis=0)


class _ExactScorer:
    """Exact welfare and agent regret of the played policies, recomputed only when something changed."""

    def __init__(self, model: ExternalityMDP) -> None:
        self.model = model
        self._schedule: np.ndarray | None = None
        self._policy: np.ndarray | None = None
        self._optimal = np.zeros(0)
        self._scores = (np.zeros(0), np.zeros(0))

    def __call__(self, transfers: np.ndarray, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        new_schedule = transfers is not self._schedule
        if new_schedule:
            self._optimal = plan(model, model.agent_reward + transfers).value
        if new_schedule or self._policy is None or not np.array_equal(policy, self._policy):
            rewards = np.stack(np.broadcast_arrays(model.agent_reward + transfers, model.welfare_reward))
            values = policy_values(model, rewards, np.broadcast_to(policy, (2, *policy.shape)))
            agent_value, welfare = values[:, :, 0, :] @ model.initial_distribution
            self._scores = (welfare, self._optimal - agent_value)
            self._policy = policy.copy()
        self._schedule = transfers
        return self._scores


def run_game(model: ExternalityMDP, agent: TabularAgent, principal: IncentivePrincipal, n_episodes: int,
             seed: int = 0) -> RunRecord:
    """
    Play ``n_episodes`` episodes of the repeated game in ``N`` independent runs.

    :param model: the world.
    :param agent: the agent (``N`` runs).
    :param principal: the principal (the same ``N``).
    :param n_episodes: ``T``.
    :param seed: seed of the world's randomness.
    :return: the :class:`RunRecord`.
    """
    n_episodes = check_int("n_episodes", n_episodes, 1)
    if agent.n_runs != principal.n_runs:
        raise ValueError(f"agent and principal must play the same number of runs, got {agent.n_runs} and "
                         f"{principal.n_runs}")
    n_runs, horizon = agent.n_runs, model.horizon
    rng = np.random.default_rng(seed)
    scorer = _ExactScorer(model)
    columns = {name: np.zeros((n_episodes, n_runs)) for name in
               ("welfare", "agent_regret", "transfers", "principal_net", "realised_welfare")}
    mean_state = np.zeros((n_episodes, horizon), dtype=np.float32)
    estimating = np.zeros(n_episodes, dtype=bool)
    states = np.zeros((n_runs, horizon + 1), dtype=np.int64)
    actions = np.zeros((n_runs, horizon), dtype=np.int64)
    runs = np.arange(n_runs)
    for t in range(n_episodes):
        estimating[t] = principal.phase == "estimate"
        schedule = principal.offer(t)
        agent.begin_episode(schedule)
        columns["welfare"][t], columns["agent_regret"][t] = scorer(schedule, agent.policy())
        states[:, 0] = model.sample_initial(rng, n_runs)
        for h in range(horizon):
            s = states[:, h]
            a = actions[:, h] = agent.act(h, s)
            states[:, h + 1] = model.sample_next(h, s, a, rng)
            agent.observe(h, s, a, model.agent_reward[h, s, a], states[:, h + 1])
        steps = np.arange(horizon)
        paid = schedule[runs[:, None], steps, states[:, :-1], actions]
        society = model.principal_reward[steps, states[:, :-1], actions]
        own = model.agent_reward[steps, states[:, :-1], actions]
        principal.observe(states[:, :-1], actions, society)
        columns["transfers"][t] = paid.sum(axis=1)
        columns["principal_net"][t] = (society - paid).sum(axis=1)
        columns["realised_welfare"][t] = (society + own).sum(axis=1)
        mean_state[t] = states[:, :-1].mean(axis=0)
    return RunRecord(**columns, mean_state=mean_state, estimating=estimating,
                     optimal_welfare=float(welfare_optimum(model).value))
