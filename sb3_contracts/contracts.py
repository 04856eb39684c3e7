"""Minimal implementing contracts: what it costs the principal to make an action the agent's best choice.

For a state with outcome distribution ``𝒪(a) = outcome_probs[a]`` and the agent's truncated Q-values
``Q̄(a) = agent_q[a]`` (its value of each action *excluding* this step's payment), the minimal contract
implementing a target action ``a*`` solves

    minimise_b   Σ_o 𝒪(a*)[o] b(o)
    subject to   Q̄(a*) + Σ_o 𝒪(a*)[o] b(o) ≥ Q̄(a) + Σ_o 𝒪(a)[o] b(o) + ξ   for every a ≠ a*
                 b ≥ 0    (limited liability)

where ``ξ ≥ 0`` is the nudge margin. With ``ξ = 0`` the agent is left exactly indifferent, and the
solution concept breaks such ties in the principal's favour (the agent takes the target).

Three ways to compute it live here, and they agree:

* :func:`minimal_contract`: the general linear program, solved by SciPy's HiGHS, for one state.
* Closed forms, batched: two actions with any number of outcomes (one incentive constraint, so all
  payment goes on the outcome with the best likelihood ratio) and observed actions (pay the gap on the
  target action). They are written once, in torch (:func:`minimal_contracts_torch`, used in training);
  :func:`minimal_contracts` is their NumPy front end for solvers, and falls back to one LP per state
  only where no closed form applies (hidden action with three or more actions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
import torch

from sb3_contracts.envs.checks import as_real_array, check_distributions, check_indices, check_int, check_real

#: Probabilities below this are treated as zero when forming likelihood ratios.
_PROB_EPS = 1e-12
#: Incentive gaps below this need no payment (the LP solver's feasibility tolerance is far coarser).
_GAP_EPS = 1e-12


#: The paper's weight of welfare against payments: a principal's utility is ``welfare / alpha - payments`` (one home
#: for the Coin Game's views and the multi-agent learner).
DEFAULT_ALPHA = 0.1


def nudge_margin(agent_q_error: float, factor: float = 2.0) -> float:
    """
    Nudge margin ``ξ`` that keeps a contract implementing its target when the agent's truncated Q
    is only known up to an error (Proposition 4.1 of Ivanov et al.: ``ξ = 2E``).

    :param agent_q_error: bound ``E ≥ 0`` on the error of each estimated ``Q̄(s, a)``.
    :param factor: multiple of the error to pay (2 covers an error of ``E`` on both sides of a gap).
    :return: the margin ``factor * E``.
    """
    return check_real("factor", factor, 0.0) * check_real("agent_q_error", agent_q_error, 0.0)


def _check_margin(margin: float) -> None:
    check_real("margin", margin, 0.0)


def check_b_max(b_max: float, name: str = "b_max") -> float:
    """
    Validate the cap on payments (the most the principal can commit to per outcome or action).

    :param b_max: the cap.
    :param name: what to call it in error messages.
    :return: the cap as a float.
    :raises ValueError: unless it is a positive finite number (``TypeError`` unless a real number).
    """
    return check_real(name, b_max, 0.0, low_open=True)


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
    contract = as_real_array(name, contract, finite=False)
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


def minimal_contract(
    outcome_probs: np.ndarray, agent_q: np.ndarray, target: int, margin: float = 0.0
) -> np.ndarray | None:
    """
    Minimal contract implementing ``target`` in one state, by linear programming (HiGHS).

    :param outcome_probs: ``[A, O]`` outcome distribution of each action; rows sum to 1.
    :param agent_q: ``[A]`` the agent's truncated Q-values (excluding this step's payment).
    :param target: the action to implement.
    :param margin: nudge ``ξ ≥ 0``: the target must beat every other action by at least ``ξ``.
    :return: payments ``[O]`` (non-negative), or ``None`` when no contract implements ``target``.
    """
    outcome_probs, agent_q = _validate_single(outcome_probs, agent_q, target)
    _check_margin(margin)
    n_actions, n_outcomes = outcome_probs.shape
    others = np.arange(n_actions) != target
    if not others.any():
        return np.zeros(n_outcomes)
    # (p_a - p_target) · b <= Q̄(target) - Q̄(a) - ξ   for every a ≠ target
    a_ub = outcome_probs[others] - outcome_probs[target]
    b_ub = agent_q[target] - agent_q[others] - margin
    # An action with the target's outcome distribution cannot be priced apart: decide its row exactly, since
    # HiGHS would accept a violation of 0 <= b_ub up to its feasibility tolerance (1e-7).
    unpriceable = np.all(np.abs(a_ub) <= _PROB_EPS, axis=1)
    if np.any(b_ub[unpriceable] < -_GAP_EPS):
        return None
    a_ub, b_ub = a_ub[~unpriceable], b_ub[~unpriceable]
    if not len(b_ub):
        return np.zeros(n_outcomes)
    result = scipy.optimize.linprog(
        c=outcome_probs[target], A_ub=a_ub, b_ub=b_ub, bounds=[(0, None)] * n_outcomes, method="highs"
    )
    if result.status == 2:  # infeasible
        return None
    if result.status != 0:
        raise RuntimeError(f"HiGHS failed on the minimal-contract LP: {result.message}")
    return np.maximum(result.x, 0.0)


def _validate_single(outcome_probs: np.ndarray, agent_q: np.ndarray, target: int) -> tuple[np.ndarray, ...]:
    outcome_probs = as_real_array("outcome_probs", outcome_probs, ndim=2)
    _check_table_shape(outcome_probs.shape)
    agent_q = as_real_array("agent_q", agent_q, shape=outcome_probs.shape[:1])
    check_distributions("outcome_probs", outcome_probs)
    check_int("target", target, 0, outcome_probs.shape[0] - 1)
    return outcome_probs, agent_q


def _check_table_shape(shape: tuple[int, ...]) -> None:
    # without an action the target's range is empty, and without an outcome no row is a distribution
    if len(shape) < 2 or shape[-2] < 1 or shape[-1] < 1:
        raise ValueError(f"outcome_probs must be [..., A, O] with at least one action and one outcome, got shape "
                         f"{tuple(shape)}")


def is_observed_action(outcome_probs: np.ndarray | torch.Tensor) -> bool:
    """Whether ``outcome_probs [..., A, O]`` is the observed-action case (``O = A``, ``𝒪(a) = δ_a``)."""
    n_actions, n_outcomes = outcome_probs.shape[-2:]
    if n_actions != n_outcomes:
        return False
    if isinstance(outcome_probs, torch.Tensor):
        eye = torch.eye(n_actions, dtype=outcome_probs.dtype, device=outcome_probs.device)
        return bool(torch.equal(outcome_probs, eye.expand_as(outcome_probs)))
    return bool(np.array_equal(outcome_probs, np.broadcast_to(np.eye(n_actions), outcome_probs.shape)))


def minimal_contracts_torch(
    outcome_probs: torch.Tensor | None,
    agent_q: torch.Tensor,
    target: torch.Tensor,
    margin: float | torch.Tensor = 0.0,
    observed_action: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Batched closed-form minimal contracts in torch (differentiable-free, no Python loop over the batch).

    Leading dimensions broadcast: e.g. ``outcome_probs [B, 1, A, O]``, ``agent_q [B, 1, A]`` and
    ``target [1, A]`` give the contract for every state and every target at once, ``[B, A, O]``.

    :param outcome_probs: ``[..., A, O]``; may be ``None`` when ``observed_action`` is true.
    :param agent_q: ``[..., A]`` truncated Q-values.
    :param target: ``[...]`` integer target actions.
    :param margin: nudge ``ξ ≥ 0``, a float or a tensor broadcastable to the batch.
    :param observed_action: outcomes are the actions themselves (``O = A``, ``𝒪(a) = δ_a``).
    :return: ``(payments [..., O], feasible [...])``; payments are zero where infeasible.
    :raises ValueError: on an outcome table with NaN, inf, negative entries or rows that do not sum to 1, a
        target that is no integer action, or a negative margin. ``agent_q`` is not checked: the learners check
        their networks' values after this call and name the diverged network (a NaN gap asks for no payment).
    """
    _check_torch_inputs(outcome_probs, agent_q, target, margin, observed_action)
    return _closed_form_contracts(outcome_probs, agent_q, target, margin, observed_action)


def _check_torch_inputs(outcome_probs: torch.Tensor | None, agent_q: torch.Tensor, target: torch.Tensor,
                        margin: float | torch.Tensor, observed_action: bool) -> None:
    # A few reductions over the batch and no copy to the host unless something is wrong: cheap enough for training.
    if isinstance(margin, torch.Tensor):
        if torch.any(margin < 0) or not torch.all(torch.isfinite(margin)):
            raise ValueError("margin must be finite and non-negative")
    else:
        _check_margin(margin)
    if not observed_action:
        if outcome_probs is None:
            raise ValueError("outcome_probs is required unless observed_action=True")
        _check_table_shape(outcome_probs.shape)
        if agent_q.shape[-1:] != outcome_probs.shape[-2:-1]:
            raise ValueError(f"agent_q must be [..., A] with A = {outcome_probs.shape[-2]}, got shape "
                             f"{tuple(agent_q.shape)}")
        check_distributions("outcome_probs", outcome_probs)
    elif agent_q.ndim < 1 or agent_q.shape[-1] < 1:
        raise ValueError(f"agent_q must be [..., A] with at least one action, got shape {tuple(agent_q.shape)}")
    check_indices("target", target, agent_q.shape[-1], "actions")


def _closed_form_contracts(outcome_probs: torch.Tensor | None, agent_q: torch.Tensor, target: torch.Tensor,
                           margin: float | torch.Tensor, observed_action: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`minimal_contracts_torch` on checked input (the NumPy front end checks its own, once)."""
    target = target.long()
    if observed_action:
        return _observed_action_contracts(agent_q, target, margin)
    n_actions = outcome_probs.shape[-2]
    if n_actions == 1:
        shape = np.broadcast_shapes(outcome_probs.shape[:-2], agent_q.shape[:-1], target.shape)
        payments = outcome_probs.new_zeros((*shape, outcome_probs.shape[-1]))
        return payments, torch.ones(shape, dtype=torch.bool, device=payments.device)
    if n_actions != 2:
        raise NotImplementedError(
            f"closed-form minimal contracts exist for two actions or observed actions; got {n_actions} "
            "hidden actions: use minimal_contracts (NumPy, one LP per state) instead"
        )
    return _two_action_contracts(outcome_probs, agent_q, target, margin)


def observed_action_payments(agent_q: torch.Tensor, margin: float | torch.Tensor = 0.0,
                             always_recommend: bool = False) -> torch.Tensor:
    """
    The observed-action closed form: the minimal payment on each target action ``a*`` (paid on ``a*`` only),
    ``max(max_{a ≠ a*} Q̄(a) + ξ − Q̄(a*), 0)``.

    With ``always_recommend`` the max runs over *all* actions, ``max_a Q̄(a) − Q̄(a*) + ξ`` (the paper's form
    for many agents): the payment is at least ``ξ`` even on the agent's own favourite action, so every
    contract carries a recommendation. It differs from the minimal payment only on that favourite action.

    :param agent_q: ``[..., A]`` truncated Q-values.
    :param margin: nudge ``ξ ≥ 0``, a float or a tensor broadcastable to ``[..., 1]``.
    :param always_recommend: pay at least ``ξ`` on every target (see above).
    :return: ``[..., A]`` the payment implementing each target.
    """
    if always_recommend:
        return agent_q.amax(dim=-1, keepdim=True) - agent_q + margin
    n_actions = agent_q.shape[-1]
    eye = torch.eye(n_actions, dtype=torch.bool, device=agent_q.device)
    # best_other[..., a*] = max over a != a* (-inf with a single action: the gap then clamps to zero)
    best_other = agent_q.unsqueeze(-2).masked_fill(eye, -torch.inf).amax(dim=-1)
    return torch.clamp(best_other + margin - agent_q, min=0.0)


def _observed_action_contracts(
    agent_q: torch.Tensor, target: torch.Tensor, margin: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    agent_q, target = torch.broadcast_tensors(agent_q, target.unsqueeze(-1))
    target = target[..., 0]
    if isinstance(margin, torch.Tensor) and margin.dim():
        margin = margin.unsqueeze(-1)  # broadcast over the batch, as the gap's shape, then over the actions
    gap = observed_action_payments(agent_q, margin).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    payments = torch.nn.functional.one_hot(target, agent_q.shape[-1]).to(agent_q.dtype) * gap.unsqueeze(-1)
    return payments, torch.ones_like(gap, dtype=torch.bool)


def _two_action_contracts(
    outcome_probs: torch.Tensor, agent_q: torch.Tensor, target: torch.Tensor, margin: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # NumPy's broadcast of the shapes: torch's imports sympy on its first call (a second on the first solve_spe)
    batch = np.broadcast_shapes(outcome_probs.shape[:-2], agent_q.shape[:-1], target.shape)
    outcome_probs = outcome_probs.expand(*batch, *outcome_probs.shape[-2:])
    agent_q = agent_q.expand(*batch, 2)
    target = target.expand(batch)
    other = 1 - target
    index = target.unsqueeze(-1)
    target_probs = outcome_probs.gather(-2, index.unsqueeze(-1).expand(*batch, 1, outcome_probs.shape[-1]))
    other_probs = outcome_probs.gather(-2, other.unsqueeze(-1).unsqueeze(-1).expand_as(target_probs))
    target_probs, other_probs = target_probs.squeeze(-2), other_probs.squeeze(-2)
    gap = agent_q.gather(-1, other.unsqueeze(-1)).squeeze(-1) + margin - agent_q.gather(-1, index).squeeze(-1)
    lift = target_probs - other_probs
    # One constraint lift·b >= gap: the cheapest way to meet it pays only on the outcome with the
    # highest lift per unit of expected cost, lift[o] / target_probs[o].
    ratio = torch.where(lift > _PROB_EPS, lift / target_probs.clamp(min=_PROB_EPS), torch.zeros_like(lift))
    best_ratio, best_outcome = ratio.max(dim=-1)
    needs_payment = gap > _GAP_EPS
    feasible = ~needs_payment | (best_ratio > 0)
    best_lift = lift.gather(-1, best_outcome.unsqueeze(-1)).squeeze(-1)
    amount = torch.where(needs_payment & feasible, gap / best_lift.clamp(min=_PROB_EPS), torch.zeros_like(gap))
    payments = torch.nn.functional.one_hot(best_outcome, lift.shape[-1]).to(lift.dtype) * amount.unsqueeze(-1)
    return payments, feasible


def minimal_contracts(
    outcome_probs: np.ndarray,
    agent_q: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    observed_action: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    Batched minimal contracts in NumPy, for solvers.

    Uses the closed forms (two actions, or observed actions) vectorised over the batch; with three or
    more hidden actions it solves one LP per state, which is exact but slow.

    :param outcome_probs: ``[..., A, O]`` outcome distributions.
    :param agent_q: ``[..., A]`` truncated Q-values.
    :param target: ``[...]`` integer target actions (leading dimensions broadcast).
    :param margin: nudge ``ξ ≥ 0``.
    :param observed_action: whether outcomes reveal actions; detected from ``outcome_probs`` when ``None``.
    :return: ``(payments [..., O], feasible [...])``; payments are zero where infeasible.
    :raises ValueError: on NaN or inf, an outcome table whose rows are no distributions, a target that is no
        integer action, or a negative margin.
    """
    outcome_probs = as_real_array("outcome_probs", outcome_probs)
    agent_q = as_real_array("agent_q", agent_q)
    target = np.asarray(target)
    _check_batch_shapes(outcome_probs, agent_q, target)
    check_distributions("outcome_probs", outcome_probs)
    _check_margin(margin)
    if observed_action is None:
        observed_action = is_observed_action(outcome_probs)
    if observed_action or outcome_probs.shape[-2] <= 2:
        payments, feasible = _closed_form_contracts(
            _as_tensor(outcome_probs), _as_tensor(agent_q), _as_tensor(target), margin, observed_action
        )
        return payments.numpy(), feasible.numpy()
    return _lp_contracts(outcome_probs, agent_q, target, margin)


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    # Broadcast views are read-only; torch shares memory only with writable arrays.
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _check_batch_shapes(outcome_probs: np.ndarray, agent_q: np.ndarray, target: np.ndarray) -> None:
    _check_table_shape(outcome_probs.shape)
    n_actions = outcome_probs.shape[-2]
    if agent_q.ndim < 1 or agent_q.shape[-1] != n_actions:
        raise ValueError(f"agent_q must be [..., A] with A = {n_actions}, got shape {agent_q.shape}")
    check_indices("target", target, n_actions, "actions")
    try:
        np.broadcast_shapes(outcome_probs.shape[:-2], agent_q.shape[:-1], target.shape)
    except ValueError as error:
        raise ValueError(f"batch shapes do not broadcast: outcome_probs {outcome_probs.shape}, "
                         f"agent_q {agent_q.shape}, target {target.shape}") from error


def _lp_contracts(
    outcome_probs: np.ndarray, agent_q: np.ndarray, target: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    batch = np.broadcast_shapes(outcome_probs.shape[:-2], agent_q.shape[:-1], target.shape)
    probs = np.broadcast_to(outcome_probs, (*batch, *outcome_probs.shape[-2:])).reshape(-1, *outcome_probs.shape[-2:])
    q = np.broadcast_to(agent_q, (*batch, agent_q.shape[-1])).reshape(-1, agent_q.shape[-1])
    targets = np.broadcast_to(target, batch).reshape(-1)
    payments = np.zeros((targets.size, probs.shape[-1]))
    feasible = np.zeros(targets.size, dtype=bool)
    for i in range(targets.size):
        contract = minimal_contract(probs[i], q[i], int(targets[i]), margin)
        if contract is not None:
            payments[i], feasible[i] = contract, True
    return payments.reshape(*batch, -1), feasible.reshape(batch)


def expected_payment(outcome_probs: np.ndarray, payments: np.ndarray, action: np.ndarray) -> np.ndarray:
    """
    Expected payment ``Σ_o 𝒪(a)[o] b(o)`` when the agent takes ``action``.

    :param outcome_probs: ``[..., A, O]``.
    :param payments: ``[..., O]``.
    :param action: ``[...]`` integer actions.
    :return: ``[...]`` expected payments.
    """
    probs = np.take_along_axis(outcome_probs, np.asarray(action)[..., None, None], axis=-2)[..., 0, :]
    return np.sum(probs * payments, axis=-1)
