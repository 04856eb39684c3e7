"""Pollution control: firms emit, a stock pollutant accumulates, society bears the damage.

The stock-pollutant structure of Dockner & Long (1993, "International pollution control: cooperative versus
non-cooperative strategies"): the stock evolves as ``S_{h+1} = (1 − δ) S_h + Σ_i e_i`` (+ optional noise),
each firm earns ``A e − e²/2`` from emitting ``e`` (its production), and society bears the damage of the
stock, linear ``c S`` or quadratic ``(s/2) S²``. A firm ignores the damage, so left alone it emits
``e = A`` while welfare wants less: the externality.

===================  =====================================================================
world                stock ``0..K`` (integer grid), emissions ``0..E`` per firm, horizon ``H``
agent's view         ``PollutionControl-v0``: observe ``(stock / K, h / H, offer / max_transfer)``,
                     choose an emission level, receive benefit + transfer
principal's view     ``PollutionControlPrincipal-v0``: observe ``(stock / K, h / H)``, offer one
                     transfer per emission level, receive ``−damage − transfer``
===================  =====================================================================

Decisions (ours, where the literature's continuous model needs a discrete one):

* **Discretisation.** The stock lives on ``0..K``; ``(1 − δ) S + e`` is rounded stochastically to the two
  neighbouring grid points (probabilities chosen so that the mean is kept), then clipped to ``[0, K]``.
* **Damage timing.** Society's reward at step ``h`` is minus the expected damage of the stock the step's
  emissions produce, ``−E[D(S_{h+1})]``, so that every emission, the last one included, has a cost.
* **Initial stock.** Uniform over ``0..K // 2`` by default: episodes start from varied stocks, which also
  makes most of the grid reachable (the principal needs behaviour at the states welfare steers to).
* **Several firms.** With ``n_firms > 1`` the model is one firm's (the agent's) problem while the other firms
  emit as ``others_policy`` says (``[H, S]`` emission levels): the strategic externality seen from one
  firm. Society's reward then also counts the other firms' benefits, so that welfare is everyone's.

:data:`DEFAULTS` holds our default world (H = 10, K = 20, E = 4, A = 4, δ = 0.2, c = 0.4 linear damage),
chosen so that a firm left alone pollutes heavily: see the README for the measured welfare ratios.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from .externality import ExternalityMDP, backward_induction, check_int, check_transfers

DAMAGES = ("linear", "quadratic")


@dataclass(frozen=True)
class PollutionConfig:
    """
    The pollution world's parameters (defaults: ours, see the module docstring).

    :param horizon: steps per episode ``H``.
    :param max_stock: the stock grid ``0..K``.
    :param max_emission: emission levels ``0..E`` per firm.
    :param benefit_slope: ``A`` in the benefit ``A e − e²/2``.
    :param decay: the stock's natural decay rate ``δ`` in ``[0, 1]``.
    :param damage: ``"linear"`` (``c S``) or ``"quadratic"`` (``(s/2) S²``).
    :param damage_coef: ``c`` (linear) or ``s`` (quadratic).
    :param noise: probability of a random shock of the stock, half ``+1``, half ``−1`` (clipped).
    :param initial_max_stock: the first stock is uniform over ``0..initial_max_stock``.
    :param n_firms: firms sharing the stock; the agent is firm 0.
    """

    horizon: int = 10
    max_stock: int = 20
    max_emission: int = 4
    benefit_slope: float = 4.0
    decay: float = 0.2
    damage: str = "linear"
    damage_coef: float = 0.4
    noise: float = 0.0
    initial_max_stock: int = 10
    n_firms: int = 1

    def __post_init__(self) -> None:
        check_int("horizon", self.horizon, 1)
        check_int("max_stock", self.max_stock, 1)
        check_int("max_emission", self.max_emission, 1)
        check_int("n_firms", self.n_firms, 1)
        check_int("initial_max_stock", self.initial_max_stock, 0)
        if self.initial_max_stock > self.max_stock:
            raise ValueError(f"initial_max_stock must be at most max_stock={self.max_stock}, "
                             f"got {self.initial_max_stock}")
        if self.damage not in DAMAGES:
            raise ValueError(f"damage must be one of {DAMAGES}, got {self.damage!r}")
        for name, low, high in (("decay", 0.0, 1.0), ("noise", 0.0, 1.0), ("damage_coef", 0.0, np.inf),
                                ("benefit_slope", 0.0, np.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")

    @property
    def n_states(self) -> int:
        return self.max_stock + 1

    @property
    def n_actions(self) -> int:
        return self.max_emission + 1


#: Our default world (one firm, linear damage).
DEFAULTS = PollutionConfig()


def benefit(config: PollutionConfig) -> np.ndarray:
    """``[E + 1]``: a firm's benefit ``A e − e²/2`` of each emission level."""
    emissions = np.arange(config.n_actions, dtype=np.float64)
    return config.benefit_slope * emissions - emissions**2 / 2


def damage(config: PollutionConfig) -> np.ndarray:
    """``[K + 1]``: society's damage of each stock level."""
    stock = np.arange(config.n_states, dtype=np.float64)
    if config.damage == "linear":
        return config.damage_coef * stock
    return config.damage_coef / 2 * stock**2


def linear_marginal_damage(config: PollutionConfig) -> np.ndarray:
    """
    ``[H]``: the expected damage of one more unit emitted at step ``h`` under linear damage, ``c Σ_{k < H − h}
    (1 − δ)^k`` (the stock it adds decays and is damaged at every step left), ignoring the grid's cap: the
    Pigouvian rate of the finite horizon. (Under quadratic damage it depends on the stock.)
    """
    if config.damage != "linear":
        raise ValueError("the marginal damage is stock-independent under linear damage only")
    steps_left = config.horizon - np.arange(config.horizon)
    return config.damage_coef * (1 - (1 - config.decay) ** steps_left) / config.decay if config.decay > 0 else \
        config.damage_coef * steps_left.astype(np.float64)


def stock_transitions(config: PollutionConfig, total_emission: np.ndarray) -> np.ndarray:
    """
    The stock's next-state distribution for each current stock and total emission.

    :param config: the world.
    :param total_emission: ``[..., S]`` total emissions of all firms, for each current stock.
    :return: ``[..., S, S]`` rows ``P(S' | S, total emission)``.
    """
    n = config.n_states
    stock = np.arange(n, dtype=np.float64)
    mean = np.clip((1 - config.decay) * stock + total_emission, 0, config.max_stock)
    low = np.floor(mean).astype(np.int64)
    high = np.minimum(low + 1, config.max_stock)
    frac = mean - low
    rows = np.zeros((*mean.shape, n))
    np.put_along_axis(rows, low[..., None], (1 - frac)[..., None], axis=-1)
    # Stochastic rounding keeps the mean; at the top of the grid low == high and the two masses add up.
    high_mass = np.take_along_axis(rows, high[..., None], axis=-1) + frac[..., None]
    np.put_along_axis(rows, high[..., None], high_mass, axis=-1)
    if config.noise > 0:
        down = np.concatenate([rows[..., 1:2] + rows[..., :1], rows[..., 2:], np.zeros_like(rows[..., :1])], axis=-1)
        up = np.concatenate([np.zeros_like(rows[..., :1]), rows[..., :-2], rows[..., -2:-1] + rows[..., -1:]], axis=-1)
        rows = (1 - config.noise) * rows + config.noise / 2 * (down + up)
    return rows


def _others_emission(config: PollutionConfig, others_policy: np.ndarray | None) -> np.ndarray:
    """``[H, S]`` total emission of the other firms."""
    if config.n_firms == 1:
        if others_policy is not None:
            raise ValueError("others_policy is only meaningful with n_firms > 1")
        return np.zeros((config.horizon, config.n_states))
    if others_policy is None:
        raise ValueError(f"n_firms={config.n_firms} needs others_policy, the other firms' emission levels [H, S]")
    policy = np.asarray(others_policy)
    if policy.shape != (config.horizon, config.n_states) or not np.issubdtype(policy.dtype, np.integer):
        raise ValueError(f"others_policy must be an integer array of shape [H, S] = "
                         f"{(config.horizon, config.n_states)}, got {policy.dtype} {policy.shape}")
    if policy.min() < 0 or policy.max() > config.max_emission:
        raise ValueError(f"others_policy entries must lie in [0, {config.max_emission}]")
    return (config.n_firms - 1) * policy.astype(np.float64)


def pollution_model(config: PollutionConfig = DEFAULTS, others_policy: np.ndarray | None = None) -> ExternalityMDP:
    """
    The pollution world as a finite-horizon externality model (one firm's problem).

    :param config: the world's parameters.
    :param others_policy: with ``n_firms > 1``, the emission level ``[H, S]`` every other firm plays.
    :return: the model: ``r^A = A e − e²/2``, ``r^P = −E[D(S')]`` (+ the other firms' benefits).
    """
    if not isinstance(config, PollutionConfig):
        raise TypeError(f"config must be a PollutionConfig, got {type(config).__name__}")
    others = _others_emission(config, others_policy)
    emissions = np.arange(config.n_actions, dtype=np.float64)
    total = others[:, :, None] + emissions[None, None, :]  # [H, S, A]
    transitions = stock_transitions(config, np.swapaxes(total, 1, 2)).swapaxes(1, 2)  # [H, S, A, S]
    agent_reward = np.broadcast_to(benefit(config), (config.horizon, config.n_states, config.n_actions)).copy()
    principal_reward = -transitions @ damage(config)
    if config.n_firms > 1:
        principal_reward += (benefit(config)[np.asarray(others_policy)] * (config.n_firms - 1))[:, :, None]
    initial = np.zeros(config.n_states)
    initial[: config.initial_max_stock + 1] = 1.0 / (config.initial_max_stock + 1)
    return ExternalityMDP(transitions, agent_reward, principal_reward, initial,
                          state_names=[f"stock {k}" for k in range(config.n_states)],
                          action_names=[f"emit {e}" for e in range(config.n_actions)])


TransferSchedule = Callable[[int, int], np.ndarray]


def _as_schedule(transfers: Any, model: ExternalityMDP) -> tuple[TransferSchedule, float | None]:
    """A callable ``(h, stock) -> [A] offer`` and, for a table, its largest entry."""
    if transfers is None:
        transfers = np.zeros(model.shape)
    if callable(transfers):
        return transfers, None
    table = check_transfers(transfers, model.shape)
    return (lambda h, s: table[h, s]), float(table.max())


class _PollutionEnv(gym.Env):
    """What both views share: the model, the stock, the step counter, sampling."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: PollutionConfig, others_policy: np.ndarray | None, render_mode: str | None) -> None:
        if render_mode not in (None, "ansi"):
            # A TypeError, as for an unknown keyword: SB3 builds envs from ids with render_mode="rgb_array"
            # and falls back to no render mode on exactly this error.
            raise TypeError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.config = config
        self.model = pollution_model(config, others_policy)
        self.stock = 0
        self.h = 0

    def _position(self) -> np.ndarray:
        return np.array([self.stock / self.config.max_stock, self.h / self.config.horizon], dtype=np.float32)

    def _reset_world(self, seed: int | None) -> None:
        super().reset(seed=seed)
        self.stock = int(self.model.sample_initial(self.np_random, 1)[0])
        self.h = 0

    def _advance(self, action: int) -> tuple[float, float, bool]:
        """Move the stock; return the agent's own reward, society's reward, and whether the episode ended."""
        model, h, s = self.model, self.h, self.stock
        rewards = float(model.agent_reward[h, s, action]), float(model.principal_reward[h, s, action])
        self.stock = int(model.sample_next(h, np.array([s]), np.array([action]), self.np_random)[0])
        self.h += 1
        return (*rewards, self.h >= model.horizon)

    def _check_action(self, action: Any) -> int:
        value = np.asarray(action)
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or not 0 <= value < self.config.n_actions:
            raise ValueError(f"action must be an integer emission level in [0, {self.config.max_emission}], "
                             f"got {action!r}")
        return int(value)

    def render(self) -> str:
        return f"step {self.h}: stock {self.stock}"


class PollutionControlEnv(_PollutionEnv):
    """
    The agent's (firm's) view: choose an emission level, earn its benefit plus the transfer on offer.

    Observation: ``(stock / K, h / H)`` followed by the transfer offered for each emission level at this
    step and stock, divided by ``max_transfer``. Reward: ``A e − e²/2 + τ_h(stock, e)``. The episode ends
    after ``H`` steps (``terminated``: time is observed). ``info`` holds ``h``, ``stock`` (where the step
    was taken), ``transfer``, ``own_reward`` and ``society_reward``.

    :param config: the world (default: :data:`DEFAULTS`); keyword arguments of :class:`PollutionConfig`
        are accepted too.
    :param transfers: the principal's schedule: ``None`` (no incentives), an ``[H, S, A]`` table, or a
        callable ``(h, stock) -> [A]`` offer (pluggable, e.g. a mechanism's current offer).
    :param max_transfer: the scale of offers in the observation; by default the table's largest entry (at
        least 1). A callable schedule's offers above it raise a ``ValueError``.
    :param others_policy: with several firms, the others' emission levels ``[H, S]``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(self, config: PollutionConfig | None = None, transfers: Any = None, max_transfer: float | None = None,
                 others_policy: np.ndarray | None = None, render_mode: str | None = None, **config_kwargs: Any) -> None:
        super().__init__(_config(config, config_kwargs), others_policy, render_mode)
        self.schedule, table_max = _as_schedule(transfers, self.model)
        scale = max_transfer if max_transfer is not None else max(1.0, table_max or 0.0)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"max_transfer must be a positive finite number, got {max_transfer!r}")
        self.max_transfer = float(scale)
        n_actions = self.config.n_actions
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2 + n_actions,), np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self._offer = np.zeros(n_actions)

    def _observe(self) -> np.ndarray:
        if self.h < self.config.horizon:
            offer = check_transfers(self.schedule(self.h, self.stock), (self.config.n_actions,), "offer")
            if np.any(offer > self.max_transfer * (1 + 1e-9)):
                raise ValueError(f"offer {offer} exceeds max_transfer={self.max_transfer}")
            self._offer = offer
        else:
            self._offer = np.zeros(self.config.n_actions)
        return np.concatenate([self._position(), (self._offer / self.max_transfer).astype(np.float32)])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_world(seed)
        return self._observe(), {"h": 0, "stock": self.stock}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = self._check_action(action)
        h, stock, transfer = self.h, self.stock, float(self._offer[action])
        own, society, done = self._advance(action)
        info = {"h": h, "stock": stock, "transfer": transfer, "own_reward": own, "society_reward": society}
        return self._observe(), own + transfer, done, False, info


Responder = Callable[[int, int, np.ndarray], int]


def continuation_responder(model: ExternalityMDP) -> Responder:
    """
    A firm that knows its own problem and answers an offer at one step only: it plays
    ``argmax_a Q^{A,*}_h(s, a) + offer[a]``, where ``Q^{A,*}`` is its optimal value without transfers
    (ties: the lowest emission). This is the exact best response whenever the later offers leave the firm
    its transfer-free continuation value, as minimal transfers do.

    :param model: the firm's problem.
    :return: a callable ``(h, stock, offer) -> emission level``.
    """
    q, _ = backward_induction(model.transitions, model.agent_reward)

    def respond(h: int, stock: int, offer: np.ndarray) -> int:
        return int(np.argmax(q[h, stock] + offer))

    return respond


class PollutionControlPrincipalEnv(_PollutionEnv):
    """
    The principal's (society's) view: offer a transfer per emission level, the firm picks its emission.

    Observation: ``(stock / K, h / H)``. Action: ``Box(0, max_transfer, (E + 1,))``, the transfer paid if the
    firm picks each level. Reward: ``−E[D(S')] − transfer`` (plus the other firms' benefits with several
    firms). ``info`` holds ``h``, ``stock``, ``emission`` (the firm's action: observed), ``transfer``,
    ``firm_reward`` (benefit + transfer) and ``welfare`` (benefit + society's reward).

    :param config: the world (default: :data:`DEFAULTS`); keyword arguments of :class:`PollutionConfig`
        are accepted too.
    :param responder: the firm: a callable ``(h, stock, offer) -> emission``; by default
        :func:`continuation_responder` of the world.
    :param max_transfer: the largest transfer per level (default 10).
    :param others_policy: with several firms, the others' emission levels ``[H, S]``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(self, config: PollutionConfig | None = None, responder: Responder | None = None,
                 max_transfer: float = 10.0, others_policy: np.ndarray | None = None,
                 render_mode: str | None = None, **config_kwargs: Any) -> None:
        super().__init__(_config(config, config_kwargs), others_policy, render_mode)
        if not np.isfinite(max_transfer) or max_transfer <= 0:
            raise ValueError(f"max_transfer must be a positive finite number, got {max_transfer!r}")
        if responder is not None and not callable(responder):
            raise TypeError(f"responder must be a callable (h, stock, offer) -> emission, "
                            f"got {type(responder).__name__}")
        self.responder = responder or continuation_responder(self.model)
        self.max_transfer = float(max_transfer)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(0.0, self.max_transfer, (self.config.n_actions,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._reset_world(seed)
        return self._position(), {"h": 0, "stock": self.stock}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        offer = check_transfers(action, (self.config.n_actions,), "action")
        if np.any(offer > self.max_transfer * (1 + 1e-6)):  # float32 actions may exceed the bound by rounding
            raise ValueError(f"transfers must be at most max_transfer={self.max_transfer}, got {offer}")
        h, stock = self.h, self.stock
        emission = self._check_action(self.responder(h, stock, offer))
        own, society, done = self._advance(emission)
        transfer = float(offer[emission])
        info = {"h": h, "stock": stock, "emission": emission, "transfer": transfer, "firm_reward": own + transfer,
                "welfare": own + society}
        return self._position(), society - transfer, done, False, info


def _config(config: PollutionConfig | None, kwargs: dict[str, Any]) -> PollutionConfig:
    if config is None:
        return replace(DEFAULTS, **kwargs)
    if not isinstance(config, PollutionConfig):
        raise TypeError(f"config must be a PollutionConfig, got {type(config).__name__}")
    return replace(config, **kwargs) if kwargs else config
