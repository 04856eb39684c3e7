"""The one-state case: the principal-agent bandit of Scheid et al. (ICML 2024), both mechanisms side by side.

``K`` arms; the agent values arm ``a`` at ``s_a`` and plays ``argmax_a s_a + π_a`` for the incentive ``π``
on offer; the principal draws ``N(θ_a, 1)`` from the arm played and pays ``π_a``. Its regret per round is
``max_a (θ_a − π*_a) − (θ_{a_t} − π_t(a_t))`` with ``π*_a = max_b s_b − s_a`` (the minimal incentive).

* :func:`run_ipa`: Scheid et al.'s algorithm as their paper describes it: a binary search of ``⌈log2 T⌉``
  rounds per arm on ``[0, 1]`` for the minimal incentive, then UCB on the net reward ``θ̂_a − π̂_a``
  (offering ``π̂_a`` plus a tiny ``1 / T``, the upper end of the search).
* :func:`run_two_phase`: our mechanism (:class:`~sb3_contracts.incentives.mechanism.TwoPhaseMechanism`) on
  the one-step, one-state model, unknown model: every arm's incentive by batched binary search, then the
  principal's optimistic learner on ``r^P − τ``.

Both are vectorised over runs. Defaults: the issue's setup (θ and s from the authors' supplementary
experiments, ``T = 10,000``, 100 runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, check_int
from sb3_contracts.incentives.mechanism import TwoPhaseConfig, TwoPhaseMechanism

THETA = (0.30, 0.24, 0.88, 0.07, 0.65)
AGENT_VALUES = (0.64, 0.99, 0.73, 0.61, 0.59)


@dataclass(frozen=True)
class BanditSetup:
    """
    :param theta: the principal's mean reward per arm.
    :param agent_values: the agent's value ``s`` per arm.
    :param horizon: rounds ``T``.
    :param n_runs: independent runs.
    :param seed: random seed.
    """

    theta: tuple[float, ...] = THETA
    agent_values: tuple[float, ...] = AGENT_VALUES
    horizon: int = 10_000
    n_runs: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.theta) != len(self.agent_values) or len(self.theta) < 2:
            raise ValueError("theta and agent_values must have the same length, at least 2")
        check_int("horizon", self.horizon, 1)
        check_int("n_runs", self.n_runs, 1)

    @property
    def minimal_incentives(self) -> np.ndarray:
        values = np.asarray(self.agent_values)
        return values.max() - values

    @property
    def best_net(self) -> float:
        return float(np.max(np.asarray(self.theta) - self.minimal_incentives))


def _agent_plays(setup: BanditSetup, incentives: np.ndarray) -> np.ndarray:
    """``[N]`` the agent's arm for incentives ``[N, K]`` (ties: the lowest index)."""
    return np.argmax(np.asarray(setup.agent_values) + incentives, axis=1)


def _regret(setup: BanditSetup, arms: np.ndarray, paid: np.ndarray) -> np.ndarray:
    return setup.best_net - (np.asarray(setup.theta)[arms] - paid)


def run_ipa(setup: BanditSetup = BanditSetup()) -> np.ndarray:
    """
    Scheid et al.'s binary search then UCB on net reward; returns the cumulative regret ``[T, N]``.

    :param setup: the bandit.
    """
    rng = np.random.default_rng(setup.seed)
    n, k, horizon = setup.n_runs, len(setup.theta), setup.horizon
    theta = np.asarray(setup.theta)
    runs = np.arange(n)
    search = max(1, math.ceil(math.log2(horizon)))
    low, high = np.zeros((n, k)), np.ones((n, k))
    sums, counts = np.zeros((n, k)), np.zeros((n, k))
    regret = np.zeros((horizon, n))
    for t in range(horizon):
        incentives = np.zeros((n, k))
        if t < k * search:
            arm = t // search
            offer = (low[:, arm] + high[:, arm]) / 2
            incentives[:, arm] = offer
            played = _agent_plays(setup, incentives)
            took = played == arm
            high[:, arm] = np.where(took, offer, high[:, arm])
            low[:, arm] = np.where(took, low[:, arm], offer)
        else:
            estimate = high + 1.0 / horizon
            bonus = np.where(counts > 0, np.sqrt(2 * np.log(horizon) / np.maximum(counts, 1)), np.inf)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
            chosen = np.argmax(mean + bonus - estimate, axis=1)
            incentives[runs, chosen] = estimate[runs, chosen]
            played = _agent_plays(setup, incentives)
        reward = theta[played] + rng.standard_normal(n)
        sums[runs, played] += reward
        counts[runs, played] += 1
        regret[t] = _regret(setup, played, incentives[runs, played])
    return np.cumsum(regret, axis=0)


def bandit_model(setup: BanditSetup) -> ExternalityMDP:
    """The bandit as a one-step, one-state externality model (``r^A = s``, ``r^P = θ``)."""
    k = len(setup.theta)
    return ExternalityMDP(np.ones((1, 1, k, 1)), np.asarray(setup.agent_values)[None, None],
                          np.asarray(setup.theta)[None, None], np.ones(1))


#: Our mechanism's settings on the bandit: incentives lie in [0, 1]; the margin, paid every round, is 0.001.
BANDIT_CONFIG = TwoPhaseConfig(margin=0.001, max_transfer=1.0, min_step_episodes=1, principal_bonus=0.5)


def run_two_phase(setup: BanditSetup = BanditSetup(), config: TwoPhaseConfig = BANDIT_CONFIG) -> np.ndarray:
    """
    Our mechanism on the bandit (unknown model); returns the cumulative regret ``[T, N]``.

    :param setup: the bandit.
    :param config: the mechanism's settings.
    """
    rng = np.random.default_rng(setup.seed)
    model = bandit_model(setup)
    mechanism = TwoPhaseMechanism(model.shape, setup.n_runs, setup.horizon, targets=None, config=config,
                                  seed=setup.seed)
    theta = np.asarray(setup.theta)
    runs = np.arange(setup.n_runs)
    regret = np.zeros((setup.horizon, setup.n_runs))
    for t in range(setup.horizon):
        incentives = mechanism.offer(t)[:, 0, 0]
        played = _agent_plays(setup, incentives)
        reward = theta[played] + rng.standard_normal(setup.n_runs)
        mechanism.observe(np.zeros((setup.n_runs, 1), dtype=np.int64), played[:, None], reward[:, None])
        regret[t] = _regret(setup, played, incentives[runs, played])
    return np.cumsum(regret, axis=0)
