"""Exact tools on a known externality model: the ground truth every learned result is checked against.

Backward induction on ``r^A + r^P`` (the welfare optimum), on ``r^A + τ`` (the agent's best response and
value under transfers ``τ``), exact policy evaluation (batched over independent runs), and the agent's
regret against the optimal policy for the transfers on offer. Ties go to the lowest action index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, backward_induction, check_transfers


@dataclass
class Plan:
    """
    An optimal policy and its values.

    :param policy: ``[..., H, S]`` the optimal action in each step and state.
    :param q: ``[..., H, S, A]`` the optimal action values.
    :param v: ``[..., H + 1, S]`` the optimal state values (``v[..., H, :] = 0``).
    :param value: ``[...]`` the expected value from the initial distribution.
    """

    policy: np.ndarray
    q: np.ndarray
    v: np.ndarray
    value: np.ndarray


def plan(model: ExternalityMDP, reward: np.ndarray) -> Plan:
    """
    Optimal policy of ``reward`` (``[..., H, S, A]``, batched over leading axes) by backward induction.

    :param model: the externality model (its transitions and initial distribution).
    :param reward: the reward to maximise.
    :return: the :class:`Plan`.
    """
    q, v = backward_induction(model.transitions, np.asarray(reward, dtype=np.float64))
    return Plan(q.argmax(axis=-1), q, v, v[..., 0, :] @ model.initial_distribution)


def welfare_optimum(model: ExternalityMDP) -> Plan:
    """The welfare-optimal policy ``π^W`` and ``W* = max_π E_π Σ_h (r^A + r^P)``."""
    return plan(model, model.welfare_reward)


def check_schedule(model: ExternalityMDP, transfers: object, name: str = "transfers") -> np.ndarray:
    """
    Validate transfers ``[..., H, S, A]`` for a model (finite, non-negative), batched over leading axes.

    :param model: the externality model.
    :param transfers: the schedule(s).
    :param name: the argument's name, for error messages.
    :return: the transfers as float64.
    """
    array = np.asarray(transfers, dtype=np.float64)
    if array.shape[-3:] != model.shape:
        raise ValueError(f"{name} must have shape [..., H, S, A] = [..., {', '.join(map(str, model.shape))}], "
                         f"got {array.shape}")
    return check_transfers(array, array.shape, name)


def transfer_best_response(model: ExternalityMDP, transfers: np.ndarray) -> Plan:
    """
    The agent's exact best response to transfers (``[..., H, S, A]``): backward induction on ``r^A + τ``.

    :param model: the externality model.
    :param transfers: the schedule on offer (validated: finite, non-negative).
    :return: the agent's optimal policy and values under the transfers.
    """
    return plan(model, model.agent_reward + check_schedule(model, transfers))


def _check_policy(model: ExternalityMDP, policy: np.ndarray) -> np.ndarray:
    policy = np.asarray(policy)
    if np.issubdtype(policy.dtype, np.floating):
        if policy.shape[-3:] != model.shape:
            raise ValueError(f"a stochastic policy must have shape [..., H, S, A] = [..., "
                             f"{', '.join(map(str, model.shape))}], got {policy.shape}")
        if np.any(policy < 0) or not np.allclose(policy.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError("a stochastic policy's rows must be probabilities summing to 1")
        return policy
    if not np.issubdtype(policy.dtype, np.integer) or policy.shape[-2:] != model.shape[:2]:
        raise ValueError(f"policy must be integer actions [..., H, S] = [..., {model.shape[0]}, {model.shape[1]}] "
                         f"or float probabilities [..., H, S, A], got {policy.dtype} {policy.shape}")
    if policy.min() < 0 or policy.max() >= model.n_actions:
        raise ValueError(f"policy actions must lie in [0, {model.n_actions - 1}]")
    return policy


def policy_values(model: ExternalityMDP, reward: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """
    Exact values of a policy, batched over independent runs.

    :param model: the externality model.
    :param reward: ``[H, S, A]`` or ``[..., H, S, A]`` (batch axes as the policy's).
    :param policy: deterministic actions ``[..., H, S]`` (ints) or probabilities ``[..., H, S, A]`` (floats).
    :return: ``[..., H + 1, S]`` state values (``[..., H, :] = 0``).
    """
    policy = _check_policy(model, policy)
    probs = policy if np.issubdtype(policy.dtype, np.floating) else np.eye(model.n_actions)[policy]
    reward = np.broadcast_to(reward, probs.shape)
    horizon = model.horizon
    v = np.zeros((*probs.shape[:-3], horizon + 1, model.n_states))
    for h in range(horizon - 1, -1, -1):
        step = (probs[..., h, :, :] * reward[..., h, :, :]).sum(axis=-1)
        next_values = np.einsum("sat,...t->...sa", model.transitions[h], v[..., h + 1, :])
        v[..., h, :] = step + (probs[..., h, :, :] * next_values).sum(axis=-1)
    return v


def expected_return(model: ExternalityMDP, reward: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """``[...]``: ``E_μ`` of a policy's return of ``reward`` (see :func:`policy_values`)."""
    return policy_values(model, reward, policy)[..., 0, :] @ model.initial_distribution


def welfare(model: ExternalityMDP, policy: np.ndarray) -> np.ndarray:
    """``W(π)``, batched over the policy's leading axes."""
    return expected_return(model, model.welfare_reward, policy)


def agent_regret(model: ExternalityMDP, transfers: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """
    The agent's regret of one episode: its optimal value under the transfers on offer minus the value of the
    policy it played, ``V^{A,*}_τ(μ) − V^{A,π}_τ(μ) ≥ 0``.

    :param model: the externality model.
    :param transfers: ``[..., H, S, A]`` the schedule on offer.
    :param policy: ``[..., H, S]`` actions or ``[..., H, S, A]`` probabilities.
    :return: ``[...]`` the regret.
    """
    reward = model.agent_reward + check_schedule(model, transfers)
    return plan(model, reward).value - expected_return(model, reward, policy)
