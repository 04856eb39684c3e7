"""Policies of ContractDQN: the principal's contractual Q-network and its model of the agent.

:class:`ContractDQNPolicy` holds, each with a target copy,

* ``principal_net`` ``q_θ(s, ·)``: the principal's contractual Q over recommended actions ``a*``;
* ``agent_net`` ``Q̄_φ(s, ·)``: its model of the agent's truncated Q (this step's payment excluded);

and an outcome model ``𝒪(s, ·)`` (``[A, O]`` per state): the known one (a table, from the MDP) or a
learned classifier. From these it computes, in one batch, the minimal contract implementing every
recommendation (:func:`~sb3_contracts.contracts.minimal_contracts_torch`) and acts by offering the
contract of the best recommendation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_contracts.common.networks import DQNLoadGuard, check_finite_values, make_q_network
from sb3_contracts.contracts import minimal_contracts_torch
from sb3_contracts.envs.checks import check_distributions, check_real

OUTCOME_MODELS = ("known", "learned")
FACTORIZATIONS = ("outcome", "action")


def stake_margin(stake: th.Tensor, error_scale: float) -> th.Tensor:
    """
    The nudge worth paying where a flip costs ``stake``, when the agent model's gap is off by an error of scale
    ``σ = error_scale`` (Gaussian): the margin ``m`` minimising ``m + P(error > m) · stake``, that is
    ``σ sqrt(2 ln(stake / (σ sqrt(2π))))``, and 0 where the stake is below ``σ sqrt(2π)`` (no margin pays for
    itself there). It grows with the stake only logarithmically: a flip near the root, which decides a whole
    subtree, is insured by a few ``σ``; a cheap flip by none.

    :param stake: the principal's loss from a flip, per state and recommendation.
    :param error_scale: ``σ > 0``.
    """
    ratio = stake / (error_scale * math.sqrt(2.0 * math.pi))
    return error_scale * th.sqrt(2.0 * th.log(ratio.clamp(min=1.0)))


class OneHotEmbedding(BaseFeaturesExtractor):
    """
    First layer of an MLP on one-hot observations, as a lookup: ``ReLU(W[:, argmax(obs)] + b)``.

    Mathematically a ``Linear(S, features_dim)`` followed by ReLU on one-hot inputs, but its cost does
    not grow with the number of states ``S`` (a dense first layer on 2047 one-hot inputs dominates the
    update time on CPU). Use it with ``net_arch`` one layer shorter, e.g. ``features_dim=256,
    net_arch=[256]`` for the paper's 2×256 MLP. Observations must be one-hot.

    :param observation_space: a ``Box`` of shape ``(S,)``.
    :param features_dim: width of the layer.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"OneHotEmbedding needs a 1-D Box observation space, got {observation_space}")
        super().__init__(observation_space, features_dim)
        n_states = observation_space.shape[0]
        self.embedding = nn.Embedding(n_states, features_dim)
        # The index as a dot product with 0..S-1: much faster than argmax over a wide batch on CPU.
        self.register_buffer("positions", th.arange(n_states, dtype=th.float32), persistent=False)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.relu(self.embedding((observations @ self.positions).round().long()))


class KnownOutcomeModel(nn.Module):
    """
    The known outcome model as a table ``[K, A, O]``: one row for all states (``K = 1``), or one per
    state (``K = S``, read from one-hot observations). Its values live in a buffer, so they are saved
    with the policy.

    :param shape: ``(K, A, O)``.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.register_buffer("table", th.full(shape, 1.0 / shape[2]))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        n_rows, n_actions, n_outcomes = self.table.shape
        if n_rows == 1:
            return self.table.expand(obs.shape[0], n_actions, n_outcomes)
        return (obs.reshape(obs.shape[0], n_rows) @ self.table.reshape(n_rows, -1)).reshape(-1, n_actions, n_outcomes)


class ContractDQNPolicy(BasePolicy):
    """
    Policy of :class:`~sb3_contracts.contract_dqn.ContractDQN`; its action is the contract ``[O]``.

    :param observation_space: observation space of the principal's env.
    :param action_space: ``Box(0, b_max, (O,))``, the contracts.
    :param lr_schedule: learning-rate schedule.
    :param n_actions: number of agent actions ``A`` (the recommendations).
    :param observed_action: the env's outcomes are the actions (``O = A``): contracts pay on the action.
    :param outcome_model: ``"known"`` (a table ``[K, A, O]``, filled by the algorithm) or ``"learned"``
        (a classifier ``s → 𝒪(s, ·)``); ignored with ``observed_action``.
    :param outcome_table_rows: ``K`` of the known table (1: the same outcome model in every state).
    :param factorization: ``"action"``: the networks output ``q(s, a*)`` and ``Q̄(s, a)`` per action
        (Algorithm 2 as written); ``"outcome"``: they output per-outcome values, and the Q-values are
        assembled with the outcome model, using that the outcome (not the action) drives the transition:
        ``q(s, a*) = Σ_o 𝒪(s, a*)[o] (G(s, o) - b*(s, a*)(o))`` with ``G(s, o) = r^p(s, o) + γ E[V^p(s') | s, o]``,
        and ``Q̄(s, a) = r(s, a) + Σ_o 𝒪(s, a)[o] W(s, o)`` with ``W(s, o) = γ E[V(s') | s, o]``.
    :param nudge_error_scale: ``σ ≥ 0``; when positive, the nudge of each state and recommendation is raised to
        :func:`stake_margin` of the principal's stake there (``factorization="outcome"`` only).
    :param net_arch: hidden layers of each network.
    :param activation_fn: activation function.
    :param features_extractor_class: features extractor (one per network).
    :param features_extractor_kwargs: its keyword arguments.
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: optimizer (one over all trained networks).
    :param optimizer_kwargs: its keyword arguments, besides the learning rate.
    """

    #: SB3's DQN.load of this policy's model fails here, naming ContractDQN.load.
    q_net = DQNLoadGuard("ContractDQN")

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_actions: int = 2,
        observed_action: bool = False,
        outcome_model: str = "known",
        outcome_table_rows: int = 1,
        factorization: str = "outcome",
        nudge_error_scale: float = 0.0,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(f"action_space must be a Box of contracts (O,), got {action_space}")
        if not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
            raise ValueError(f"n_actions must be a positive integer, got {n_actions!r}")
        if outcome_model not in OUTCOME_MODELS:
            raise ValueError(f"outcome_model must be one of {OUTCOME_MODELS}, got {outcome_model!r}")
        if factorization not in FACTORIZATIONS:
            raise ValueError(f"factorization must be one of {FACTORIZATIONS}, got {factorization!r}")
        check_real("nudge_error_scale", nudge_error_scale, 0.0)
        if nudge_error_scale > 0 and factorization != "outcome":
            raise ValueError(f"nudge_error_scale={nudge_error_scale} needs factorization='outcome' (the stake is read "
                             f"off the per-outcome values), got factorization={factorization!r}")
        n_outcomes = action_space.shape[0]
        if observed_action and n_outcomes != n_actions:
            raise ValueError(f"observed_action needs O = A, got O={n_outcomes}, n_actions={n_actions}")
        super().__init__(observation_space, action_space, features_extractor_class, features_extractor_kwargs,
                         optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
                         normalize_images=normalize_images)
        if net_arch is None:
            net_arch = [] if features_extractor_class == NatureCNN else [256, 256]
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.n_actions = int(n_actions)
        self.n_outcomes = int(n_outcomes)
        self.observed_action = bool(observed_action)
        self.outcome_model = outcome_model
        self.outcome_table_rows = int(outcome_table_rows)
        self.factorization = factorization
        self.nudge_error_scale = float(nudge_error_scale)
        self._check_outcome_table(observation_space)
        # The nudge ξ is state of the learner, saved with the weights so that predictions reload exactly.
        self.register_buffer("margin", th.zeros(()))
        self.register_buffer("b_max", th.as_tensor(action_space.high, dtype=th.float32))
        self._build(lr_schedule)

    def _check_outcome_table(self, observation_space: spaces.Space) -> None:
        if self.observed_action or self.outcome_model != "known" or self.outcome_table_rows == 1:
            return
        if observation_space.shape != (self.outcome_table_rows,):
            raise ValueError(f"a per-state known outcome model ({self.outcome_table_rows} rows) needs one-hot "
                             f"observations of that size, got observation shape {observation_space.shape}; "
                             "use outcome_model='learned'")

    def _build(self, lr_schedule: Schedule) -> None:
        by_outcome = self.factorization == "outcome"
        principal_outputs = self.n_outcomes if by_outcome else self.n_actions
        agent_outputs = self.n_actions + self.n_outcomes if by_outcome else self.n_actions
        self.principal_net = make_q_network(self, principal_outputs)
        self.principal_net_target = make_q_network(self, principal_outputs)
        self.agent_net = make_q_network(self, agent_outputs)
        self.agent_net_target = make_q_network(self, agent_outputs)
        for net, target in self.target_pairs():
            target.load_state_dict(net.state_dict())
            target.set_training_mode(False)
        trained = [*self.principal_net.parameters(), *self.agent_net.parameters()]
        self.outcome_net: nn.Module | None = None
        if not self.observed_action:
            if self.outcome_model == "learned":
                self.outcome_net = make_q_network(self, self.n_actions * self.n_outcomes)
                trained += list(self.outcome_net.parameters())
            else:
                self.outcome_net = KnownOutcomeModel((self.outcome_table_rows, self.n_actions, self.n_outcomes))
        self.optimizer = self.optimizer_class(trained, lr=lr_schedule(1), **self.optimizer_kwargs)

    def trained_networks(self) -> list[nn.Module]:
        """The networks the optimiser trains (each clipped on its own)."""
        nets = [self.principal_net, self.agent_net]
        if self.outcome_model == "learned" and self.outcome_net is not None:
            nets.append(self.outcome_net)
        return nets

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, target)`` network pairs, for hard or soft target updates."""
        return [(self.principal_net, self.principal_net_target), (self.agent_net, self.agent_net_target)]

    def set_outcome_table(self, table: np.ndarray) -> None:
        """
        Fill the known outcome model.

        :param table: ``[A, O]`` (same in every state) or ``[K, A, O]`` outcome distributions.
        """
        if not isinstance(self.outcome_net, KnownOutcomeModel):
            raise ValueError("set_outcome_table needs outcome_model='known' and hidden actions")
        table = np.asarray(table, dtype=np.float64)
        expected = tuple(self.outcome_net.table.shape)
        if table.size != math.prod(expected) or table.shape[-2:] != expected[-2:]:
            raise ValueError(f"table must have shape {expected[-2:]} or {expected}, got {table.shape}")
        check_distributions("table", table)  # a NaN or a row not summing to 1 would price every contract wrongly
        self.outcome_net.table.copy_(th.as_tensor(table.reshape(expected), dtype=self.outcome_net.table.dtype))

    # -- the agent's side: outcome model and minimal contracts -------------------------------------------

    def outcome_logits(self, obs: PyTorchObs) -> th.Tensor:
        """Logits ``[B, A, O]`` of the learned outcome classifier."""
        if self.outcome_model != "learned" or self.outcome_net is None:
            raise ValueError("outcome_logits needs outcome_model='learned'")
        return self.outcome_net(obs).reshape(-1, self.n_actions, self.n_outcomes)

    def outcome_probs(self, obs: PyTorchObs) -> th.Tensor:
        """The outcome model ``𝒪(s, ·)`` ``[B, A, O]`` (identity rows in observed-action games)."""
        if self.outcome_net is None:
            batch = obs.shape[0] if isinstance(obs, th.Tensor) else next(iter(obs.values())).shape[0]
            return th.eye(self.n_actions, device=self.device).expand(batch, -1, -1)
        if self.outcome_model == "learned":
            return th.softmax(self.outcome_logits(obs), dim=-1)
        return self.outcome_net(obs)

    def minimal_contracts(self, agent_q: th.Tensor, probs: th.Tensor, target: th.Tensor | None = None,
                          margin: th.Tensor | float | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        Minimal contracts implementing ``target`` (``[B]``; every action when ``None``: ``[B, A, O]``)
        given the agent's truncated Q ``[B, A]`` and outcome model ``[B, A, O]``, with nudge ``margin``
        (the policy's ``ξ`` by default).
        """
        margin = self.margin if margin is None else margin
        if target is None:
            target = th.arange(self.n_actions, device=agent_q.device).unsqueeze(0)
            agent_q, probs = agent_q.unsqueeze(1), probs.unsqueeze(1)
        return minimal_contracts_torch(None if self.observed_action else probs, agent_q, target, margin,
                                       observed_action=self.observed_action)

    def priced_contracts(self, agent_q: th.Tensor, probs: th.Tensor, principal_out: th.Tensor,
                         margin: th.Tensor | float | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        The minimal contract of every recommendation ``[B, A, O]`` and whether it is feasible ``[B, A]``, with the
        nudge ``margin`` (the policy's ``ξ`` by default) raised to :func:`stake_margin` where ``nudge_error_scale``
        asks for it. Acting and the targets price contracts here, so the agent model's targets hold the margins
        actually paid.

        :param agent_q: the agent model's truncated Q ``[B, A]``.
        :param probs: the outcome model ``[B, A, O]``.
        :param principal_out: ``principal_net``'s (or its target's) output ``[B, O]``, for the stakes.
        :param margin: nudge, a float or ``[B, 1]`` per state.
        """
        margin = self.margin if margin is None else margin
        contracts, feasible = self.minimal_contracts(agent_q, probs, margin=margin)
        if self.nudge_error_scale == 0:
            return contracts, feasible
        stake = self.principal_stake(principal_out, probs, contracts)
        margin = th.maximum(th.as_tensor(margin, dtype=stake.dtype, device=stake.device),
                            stake_margin(stake, self.nudge_error_scale))
        return self.minimal_contracts(agent_q, probs, margin=margin)

    def principal_stake(self, principal_out: th.Tensor, probs: th.Tensor, contracts: th.Tensor) -> th.Tensor:
        """
        What the principal loses ``[B, A]`` (by its own per-outcome values) if the agent, offered the contract of
        recommendation ``a*``, takes its best alternative instead: ``max_a Σ_o (𝒪(s, a*)[o] - 𝒪(s, a)[o]) (G(s, o) -
        b*(s, a*)(o))``, at least 0.
        """
        # [B, target, taken]: the principal's value when the agent takes `taken` under the contract for `target`
        values = th.einsum("bko,bto->btk", probs, principal_out.unsqueeze(1) - contracts)
        own = th.diagonal(values, dim1=1, dim2=2)
        return (own.unsqueeze(-1) - values).amax(dim=-1).clamp(min=0.0)

    # -- from network outputs to Q-values ------------------------------------------------------------------

    def agent_q(self, agent_out: th.Tensor, probs: th.Tensor) -> th.Tensor:
        """The agent model's truncated Q ``[B, A]`` from ``agent_net``'s output and the outcome model."""
        if self.factorization == "action":
            return agent_out
        rewards, post_outcome = agent_out[:, : self.n_actions], agent_out[:, self.n_actions :]
        return rewards + th.einsum("bao,bo->ba", probs, post_outcome)

    def principal_q(self, principal_out: th.Tensor, probs: th.Tensor, contracts: th.Tensor) -> th.Tensor:
        """The contractual Q ``[B, A]`` from ``principal_net``'s output, the outcome model and the contracts."""
        if self.factorization == "action":
            return principal_out
        return th.einsum("bao,bao->ba", probs, principal_out.unsqueeze(1) - contracts)

    # -- acting ------------------------------------------------------------------------------------------

    def contract_menu(self, obs: PyTorchObs, margin: th.Tensor | float | None = None
                      ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        Everything the principal weighs in a state: ``(q [B, A], contracts [B, A, O], feasible [B, A])``,
        the contractual Q and the minimal contract of every recommendation, from the online networks.

        :param obs: a batch of observations.
        :param margin: nudge, a float or ``[B, 1]`` per state (the policy's ``ξ`` by default).
        """
        probs = self.outcome_probs(obs)
        agent_q = self.agent_q(self.agent_net(obs), probs)
        principal_out = self.principal_net(obs)
        contracts, feasible = self.priced_contracts(agent_q, probs, principal_out, margin)
        q_values = self.principal_q(principal_out, probs, contracts)
        # the closed forms read a NaN gap as "no payment needed": check what the networks gave, not the contracts
        check_finite_values(agent_q, q_values, contracts)
        return q_values, contracts, feasible

    @staticmethod
    def greedy(q_values: th.Tensor, feasible: th.Tensor) -> th.Tensor:
        """The best implementable recommendation ``[B]``."""
        return q_values.masked_fill(~feasible, -th.inf).argmax(dim=1)

    def recommend_and_contract(self, obs: PyTorchObs, explore: th.Tensor | None = None,
                               random_actions: th.Tensor | None = None, explore_margin: float = 0.0
                               ) -> tuple[th.Tensor, th.Tensor]:
        """
        The recommendation ``[B]`` and its contract ``[B, O]``: greedy, except in the rows where
        ``explore`` is true, which recommend ``random_actions`` with ``explore_margin`` extra nudge.
        """
        margin: th.Tensor | None = None
        if explore is not None:
            margin = (self.margin + explore_margin * explore.float()).unsqueeze(1)
        q_values, contracts, feasible = self.contract_menu(obs, margin)
        recommendation = self.greedy(q_values, feasible)
        if explore is not None:
            recommendation = th.where(explore, random_actions, recommendation)
        chosen = contracts[th.arange(contracts.shape[0], device=contracts.device), recommendation]
        return recommendation, self.clip_contracts(chosen)

    def clip_contracts(self, contracts: th.Tensor) -> th.Tensor:
        # A contract above the env's cap is not offerable; the cap is what the principal can commit to.
        return th.minimum(contracts, self.b_max)

    def forward(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.recommend_and_contract(observation)[1]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                n_actions=self.n_actions,
                observed_action=self.observed_action,
                outcome_model=self.outcome_model,
                outcome_table_rows=self.outcome_table_rows,
                factorization=self.factorization,
                nudge_error_scale=self.nudge_error_scale,
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                lr_schedule=self._dummy_schedule,
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
                features_extractor_class=self.features_extractor_class,
                features_extractor_kwargs=self.features_extractor_kwargs,
            )
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.principal_net.set_training_mode(mode)
        self.agent_net.set_training_mode(mode)
        if isinstance(self.outcome_net, BasePolicy):
            self.outcome_net.set_training_mode(mode)
        self.training = mode


MlpPolicy = ContractDQNPolicy


class CnnPolicy(ContractDQNPolicy):
    """:class:`ContractDQNPolicy` with a NatureCNN features extractor (image observations)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class MultiInputPolicy(ContractDQNPolicy):
    """:class:`ContractDQNPolicy` for dict observations (CombinedExtractor)."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
