"""The two-phase mechanism: estimate the minimal transfers from behaviour, then steer with them.

**Phase 1** (estimate). For each step ``h`` in turn, a binary search in every state at once on the transfer
offered for the target action ``a*_h(s)``, batched in visits: a state's current offer (the midpoint of its
bracket) stands until the agent has visited ``(h, s)`` ``m`` more times (after a burn-in of ``⌊burn_in · m⌋``
visits); then the agent has *accepted* if it played ``a*`` on at least ``1 − δ`` of them, and the midpoint
becomes the upper end of the bracket, else the lower end. A state stops after ``B`` decisions; the step ends
when every state visited so far has stopped, or after ``E`` episodes. The estimate is the upper end of the
bracket: a state never decided keeps ``max_transfer``, which still implements its target. The principal
sees only which actions were played.

* *The continuation.* The minimal transfer at ``h`` depends on what the agent expects later. With minimal
  later transfers the agent's continuation is its transfer-free one (the identity of
  :mod:`sb3_contracts.incentives.transfers`), so by default (``order="forward"``) the search at ``h`` offers
  nothing at later steps, which measures exactly the transfer that is minimal given minimal later transfers;
  later steps also stay untouched while the agent learns them, so a learner's continuation values never see
  the search's test offers. ``order="backward"`` searches ``h = H − 1, …, 0`` and offers the estimates at the
  later steps (the literal recipe); both are measured in the README.
* *Coverage.* At the steps before ``h`` each episode offers ``max_transfer`` on the target actions (with
  probability ``explore_targets``: the states welfare steers to) or on one uniformly random action per state
  (the rest of the grid); the agent sees the offer and takes it, so the states at ``h`` are covered whatever
  the agent would do on its own.
* *Batch lengths grow with the horizon of episodes* ``T``: ``m = max(min_visits, ⌈visit_scale · T^β⌉)`` visits
  per decision and at most ``E = max(min_step_episodes, ⌈step_scale · T^β⌉)`` episodes per step (``A``
  rounds per step when every action is estimated).

**Phase 2** (steer). Known model: offer ``τ̂ + η`` on the welfare-optimal targets ``π^W``, zero elsewhere,
and raise an estimate by ``η`` wherever the agent keeps refusing it (a learner seen in Phase 1 may have
accepted too little while it still overrated the target).
Unknown model (``targets=None``): Phase 1 estimates every action's transfer, and the principal learns which
action to target by optimistic Q-learning on its net reward ``r^P − τ`` (by the identity, maximising the
net is maximising welfare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sb3_contracts.envs.externality import check_int
from sb3_contracts.incentives.principals import IncentivePrincipal
from sb3_contracts.incentives.transfers import check_margin


@dataclass(frozen=True)
class TwoPhaseConfig:
    """
    The mechanism's settings (defaults: ours, measured in the README).

    :param margin: ``η``, added to every estimate in Phase 2 (the search stops at a precision of ``η / 4``).
    :param max_transfer: the largest transfer the principal ever offers (upper end of the search, and the
        exploration offer); it must exceed the largest minimal transfer.
    :param acceptance: ``δ``: the agent accepts when it plays the target on at least ``1 − δ`` of its visits.
    :param exponent: ``β``, how batch lengths grow with the horizon of episodes ``T``.
    :param visit_scale: visits per decision ``m = ⌈visit_scale · T^β⌉`` (at least ``min_visits``).
    :param min_visits: the fewest visits per decision.
    :param step_scale: episodes per step at most, ``E = ⌈step_scale · T^β⌉`` (at least ``min_step_episodes``).
    :param min_step_episodes: the fewest episodes per step.
    :param burn_in: share of each batch's visits not counted (the agent adapts to the new offer first).
    :param search_steps: binary-search decisions ``B`` per state (``None``: enough to reach ``η / 4``).
    :param order: ``"forward"`` or ``"backward"`` in ``h`` (see the module docstring).
    :param explore_targets: share of Phase 1 episodes whose earlier steps follow the targets (the rest explore
        uniformly); 0 without targets.
    :param principal_bonus: optimism of the principal's learner (unknown model only), per unit of its reward range.
    :param ratchet: in Phase 2 (known targets), raise an estimate by ``η`` whenever the agent refuses its
        target on more than ``δ`` of ``max(m, ratchet_visits)`` visits (see ``TwoPhaseMechanism._ratchet``).
    :param ratchet_visits: the fewest visits the ratchet judges on (a learner's own exploration must not
        look like a refusal).
    """

    margin: float = 0.1
    max_transfer: float = 10.0
    acceptance: float = 0.1
    exponent: float = 0.5
    visit_scale: float = 0.02
    min_visits: int = 1
    step_scale: float = 3.0
    min_step_episodes: int = 20
    burn_in: float = 0.25
    search_steps: int | None = None
    order: str = "forward"
    explore_targets: float = 0.75
    principal_bonus: float = 0.05
    ratchet: bool = True
    ratchet_visits: int = 30

    def __post_init__(self) -> None:
        check_margin(self.margin)
        for name, low, high in (("max_transfer", 0.0, np.inf), ("acceptance", 0.0, 1.0), ("exponent", 0.0, 1.0),
                                ("visit_scale", 0.0, np.inf), ("step_scale", 0.0, np.inf), ("burn_in", 0.0, 1.0),
                                ("explore_targets", 0.0, 1.0), ("principal_bonus", 0.0, np.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
        if self.max_transfer <= self.margin:
            raise ValueError(f"max_transfer ({self.max_transfer}) must exceed the margin ({self.margin})")
        check_int("min_visits", self.min_visits, 1)
        check_int("min_step_episodes", self.min_step_episodes, 1)
        check_int("ratchet_visits", self.ratchet_visits, 1)
        if self.search_steps is not None:
            check_int("search_steps", self.search_steps, 1)
        if self.order not in ("forward", "backward"):
            raise ValueError(f"order must be 'forward' or 'backward', got {self.order!r}")
        if not isinstance(self.ratchet, (bool, np.bool_)):
            raise TypeError(f"ratchet must be a bool, got {self.ratchet!r}")

    def visits_per_decision(self, horizon_episodes: int) -> int:
        """``m`` for a horizon of ``T`` episodes."""
        check_int("horizon_episodes", horizon_episodes, 1)
        return max(self.min_visits, math.ceil(self.visit_scale * horizon_episodes**self.exponent))

    def episodes_per_step(self, horizon_episodes: int) -> int:
        """``E`` for a horizon of ``T`` episodes."""
        check_int("horizon_episodes", horizon_episodes, 1)
        return max(self.min_step_episodes, math.ceil(self.step_scale * horizon_episodes**self.exponent))

    @property
    def n_search_steps(self) -> int:
        """``B``: decisions of the binary search per state."""
        if self.search_steps is not None:
            return self.search_steps
        return max(1, math.ceil(math.log2(4 * self.max_transfer / self.margin)))


class TwoPhaseMechanism(IncentivePrincipal):
    """
    The two-phase mechanism for ``N`` independent runs (see the module docstring).

    :param shape: ``(H, S, A)`` of the world.
    :param n_runs: independent runs.
    :param horizon_episodes: ``T``, the number of episodes the mechanism will play (sets the batch lengths).
    :param targets: ``[H, S]`` the actions to implement (known model: the welfare optimum ``π^W``), or ``None``
        (unknown model: estimate every action and learn the targets from ``r^P − τ``).
    :param config: the settings.
    :param seed: seed of the exploration draws.
    """

    def __init__(self, shape: tuple[int, int, int], n_runs: int, horizon_episodes: int,
                 targets: np.ndarray | None = None, config: TwoPhaseConfig | None = None, seed: int = 0) -> None:
        super().__init__(shape, n_runs)
        self.config = config or TwoPhaseConfig()
        horizon, n_states, n_actions = self.shape
        self.targets = None if targets is None else self._check_targets(targets)
        self.visits_needed = self.config.visits_per_decision(horizon_episodes)
        self.burn_in = math.floor(self.config.burn_in * self.visits_needed)
        self.step_cap = self.config.episodes_per_step(horizon_episodes)
        self.rng = np.random.default_rng(seed)
        rounds = 1 if self.targets is not None else n_actions
        steps = range(horizon) if self.config.order == "forward" else range(horizon - 1, -1, -1)
        self._plan = [(h, k) for h in steps for k in range(rounds)]
        self._round = 0
        self._round_episodes = 0
        self.low = np.zeros((self.n_runs, horizon, n_states, n_actions))
        self.high = np.full((self.n_runs, horizon, n_states, n_actions), self.config.max_transfer)
        self.decisions = np.zeros((self.n_runs, horizon, n_states, n_actions), dtype=np.int64)
        self._visits = np.zeros((self.n_runs, n_states), dtype=np.int64)
        self._plays = np.zeros((self.n_runs, n_states), dtype=np.int64)
        self._seen = np.zeros((self.n_runs, n_states), dtype=bool)
        self.phase1_episodes = 0
        self._check_visits = np.zeros((self.n_runs, horizon, n_states), dtype=np.int64)
        self._check_plays = np.zeros((self.n_runs, horizon, n_states), dtype=np.int64)
        self.ratchets = np.zeros((self.n_runs, horizon, n_states), dtype=np.int64)
        self._runs = np.arange(self.n_runs)
        self._steer: np.ndarray | None = None
        self._last_targets = np.zeros((self.n_runs, horizon, n_states), dtype=np.int64)
        self._last_offer = np.zeros((self.n_runs, *self.shape))
        self.learner = None if self.targets is not None else _NetRewardLearner(self.shape, self.n_runs,
                                                                               self.config.principal_bonus)

    def _check_targets(self, targets: np.ndarray) -> np.ndarray:
        targets = np.asarray(targets)
        if targets.shape != self.shape[:2] or not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets must be an integer array [H, S] = {self.shape[:2]}, got {targets.dtype} "
                             f"{targets.shape}")
        if targets.min() < 0 or targets.max() >= self.shape[2]:
            raise ValueError(f"targets must lie in [0, {self.shape[2] - 1}]")
        return targets

    @property
    def phase(self) -> str:  # type: ignore[override]
        return "estimate" if self._round < len(self._plan) else "steer"

    @property
    def estimates(self) -> np.ndarray:
        """``[N, H, S, A]``: the current estimates of the minimal transfers (upper brackets)."""
        return self.high

    @property
    def accepted(self) -> np.ndarray:
        """
        ``[N, H, S, A]``: where the search finished (``B`` decisions) and the agent accepted at least once.
        Only there does the mechanism pay: an unfinished estimate overpays, and overpaying anywhere raises the
        agent's continuation there and pulls it off the targets upstream (unfinished estimates on rarely
        visited high-stock states made the firm pollute to reach them), while paying nothing leaves it its
        transfer-free continuation, which is what minimal transfers leave it.
        """
        finished = self.decisions >= self.config.n_search_steps
        return finished & (self.high < self.config.max_transfer)

    def _searched(self) -> tuple[int, np.ndarray]:
        """The step searched now and the action searched in each state ``[S]``."""
        h, k = self._plan[self._round]
        actions = self.targets[h] if self.targets is not None else np.full(self.shape[1], k)
        return h, actions

    def offer(self, episode: int) -> np.ndarray:
        if self.phase == "steer":
            return self._phase2_offer()
        return self._phase1_offer()

    def _exploration(self, h: int) -> np.ndarray:
        """``[N, h, S]`` the actions bribed at the steps before ``h`` in this episode."""
        n_actions = self.shape[2]
        explored = self.rng.integers(0, n_actions, size=(self.n_runs, h, self.shape[1]))
        if self.targets is None:
            return explored
        follow = self.rng.random(self.n_runs) < self.config.explore_targets
        return np.where(follow[:, None, None], self.targets[None, :h], explored)

    def _phase1_offer(self) -> np.ndarray:
        horizon, n_states, _ = self.shape
        h, actions = self._searched()
        offer = np.zeros((self.n_runs, *self.shape))
        if h > 0:
            np.put_along_axis(offer[:, :h], self._exploration(h)[..., None], self.config.max_transfer, axis=-1)
        if self.config.order == "backward" and h + 1 < horizon:
            offer[:, h + 1:] = self._steering(self.targets)[:, h + 1:]
        states = np.arange(n_states)
        offer[:, h, states, actions] = self._middle(h, actions)
        return offer

    def _middle(self, h: int, actions: np.ndarray) -> np.ndarray:
        """``[N, S]`` the offers under test: the bracket's midpoint, or its upper end once a state is done."""
        states = np.arange(self.shape[1])
        low, high = self.low[:, h, states, actions], self.high[:, h, states, actions]
        done = self.decisions[:, h, states, actions] >= self.config.n_search_steps
        return np.where(done, high, (low + high) / 2)

    def _steering(self, targets: np.ndarray) -> np.ndarray:
        """``[N, H, S, A]``: ``τ̂ + η`` on the targets (``[H, S]`` or ``[N, H, S]``) where :attr:`accepted`, else 0."""
        index = np.broadcast_to(targets, (self.n_runs, *self.shape[:2]))[..., None]
        paid = np.take_along_axis(self.high, index, axis=-1) + self.config.margin
        offer = np.zeros((self.n_runs, *self.shape))
        np.put_along_axis(offer, index, np.where(np.take_along_axis(self.accepted, index, axis=-1), paid, 0.0), axis=-1)
        return offer

    def _phase2_offer(self) -> np.ndarray:
        if self.targets is not None:
            if self._steer is None:
                self._steer = self._steering(self.targets)
            return self._steer
        self._last_targets = self.learner.targets()
        self._last_offer = self._steering(self._last_targets)
        return self._last_offer

    def _ratchet(self, states: np.ndarray, actions: np.ndarray) -> None:
        """
        Phase 2 follow-up (known targets): every ``max(m, ratchet_visits)`` visits to a paid ``(h, s)``, if the
        agent played its target on fewer than ``1 − δ`` of them, raise the estimate there by ``η``. Phase 1 saw a
        learner whose values were still moving (an optimistic learner may accept too little while it still
        overrates the target); behaviour alone corrects that, upward only.
        """
        steps = np.arange(self.shape[0])
        runs = self._runs[:, None]
        self._check_visits[runs, steps, states] += 1
        self._check_plays[runs, steps, states] += actions == self.targets[steps, states]
        due = self._check_visits >= max(self.visits_needed, self.config.ratchet_visits)
        if not due.any():
            return
        paid = np.take_along_axis(self.accepted, self.targets[None, :, :, None], axis=-1)[..., 0]
        refused = due & paid & (self._check_plays < (1 - self.config.acceptance) * self._check_visits)
        if refused.any():
            index = np.broadcast_to(self.targets[None, :, :, None], (self.n_runs, *self.shape[:2], 1))
            raised = np.take_along_axis(self.high, index, axis=-1)[..., 0] + self.config.margin * refused
            np.put_along_axis(self.high, index, np.minimum(raised, self.config.max_transfer - 1e-9)[..., None],
                              axis=-1)
            self.ratchets += refused
            self._steer = None
        self._check_visits[due] = 0
        self._check_plays[due] = 0

    def observe(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self.phase == "steer":
            if self.targets is not None and self.config.ratchet:
                self._ratchet(states, actions)
            if self.learner is not None:
                steps, runs = np.arange(self.shape[0]), self._runs[:, None]
                paid = self._last_offer[runs, steps, states, actions]
                self.learner.update(states, self._last_targets[runs, steps, states], rewards - paid)
            return
        self.phase1_episodes += 1
        h, searched = self._searched()
        visited = states[:, h]
        self._seen[self._runs, visited] = True
        self._visits[self._runs, visited] += 1
        counted = self._visits[self._runs, visited] > self.burn_in
        self._plays[self._runs, visited] += counted & (actions[:, h] == searched[visited])
        self._decide(h, searched)
        self._round_episodes += 1
        if self._round_done(h, searched):
            self._round += 1
            self._round_episodes = 0
            self._visits[:] = 0
            self._plays[:] = 0
            self._seen[:] = False

    def _decide(self, h: int, actions: np.ndarray) -> None:
        """Close the batches that have their ``m`` counted visits: accepted → upper end, rejected → lower end."""
        states = np.arange(self.shape[1])
        ready = self._visits >= self.burn_in + self.visits_needed
        if not ready.any():
            return
        middle = self._middle(h, actions)
        accepted = ready & (self._plays >= (1 - self.config.acceptance) * self.visits_needed)
        rejected = ready & ~accepted
        self.high[:, h, states, actions] = np.where(accepted, middle, self.high[:, h, states, actions])
        self.low[:, h, states, actions] = np.where(rejected, middle, self.low[:, h, states, actions])
        self.decisions[:, h, states, actions] += ready
        self._visits[ready] = 0
        self._plays[ready] = 0

    def _round_done(self, h: int, actions: np.ndarray) -> bool:
        """Every state seen has made its ``B`` decisions, or the step's episodes are spent."""
        if self._round_episodes >= self.step_cap:
            return True
        done = self.decisions[:, h, np.arange(self.shape[1]), actions] >= self.config.n_search_steps
        return bool(np.all(done | ~self._seen))


class _NetRewardLearner:
    """
    The principal's learner of which action to target (unknown model): optimistic Q-learning (UCB-H step
    sizes) over its own choice, the target ``a*`` in ``(h, s)``, on the net reward it receives,
    ``r^P_h(s, a) − τ`` (``a`` the agent's action, ``τ`` what was paid), along the states the agent visits.

    :param shape: ``(H, S, A)``.
    :param n_runs: independent runs.
    :param bonus: optimism per unit of the observed reward range.
    """

    def __init__(self, shape: tuple[int, int, int], n_runs: int, bonus: float) -> None:
        self.shape = shape
        self.q = np.zeros((n_runs, *shape))
        self.counts = np.zeros((n_runs, *shape), dtype=np.int64)
        self.bonus = bonus
        self._scale = 0.0
        self._runs = np.arange(n_runs)

    def targets(self) -> np.ndarray:
        """``[N, H, S]``: untried targets first, then the greedy one (the lowest index among ties)."""
        untried = self.counts == 0
        return np.where(untried.any(axis=-1), untried.argmax(axis=-1), self.q.argmax(axis=-1))

    def update(self, states: np.ndarray, targets: np.ndarray, net: np.ndarray) -> None:
        """
        :param states: ``[N, H]`` the states visited.
        :param targets: ``[N, H]`` the targets offered there.
        :param net: ``[N, H]`` the principal's net reward at each step.
        """
        horizon = self.shape[0]
        self._scale = max(self._scale, float(np.ptp(net)))
        for h in range(horizon - 1, -1, -1):
            index = (self._runs, h, states[:, h], targets[:, h])
            self.counts[index] += 1
            n = self.counts[index]
            rate = (horizon + 1) / (horizon + n)
            following = self.q[self._runs, h + 1, states[:, h + 1]].max(axis=1) if h + 1 < horizon else 0.0
            target = net[:, h] + following + self.bonus * self._scale * np.sqrt(horizon / n)
            self.q[index] += rate * (target - self.q[index])
