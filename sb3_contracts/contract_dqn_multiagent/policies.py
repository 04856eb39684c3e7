"""Policy of MultiAgentContractDQN: the principal's per-agent contractual Q and its model of the selfish agents.

Observations are ``[n, d]``: one row per agent (e.g. its agent-centric view), and every network is shared by the
agents (parameter sharing, as in the paper):

* ``principal_net`` ``q_θ(o_i, ·)``: agent ``i``'s part of the principal's Q over the move it recommends to
  ``i``; the principal's Q is their sum (VDN);
* ``agent_net`` ``Q_φ((o_i, f_{-i}), ·)``: agent ``i``'s selfish value of each move, given the other agents'
  follow bits ``f_{-i}`` (appended to the row);

each with a target copy. Actions are observed, so a contract pays on the recommended move only, the paper's
observed-action closed form (:func:`~sb3_contracts.contracts.observed_action_payments`): ``b_i = max_a
Q_φ((o_i, 1), a) - Q_φ((o_i, 1), a*_i) + ξ``, the agent's selfish value when the others follow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_contracts.common.networks import DQNLoadGuard, check_finite_values, make_q_network
from sb3_contracts.contracts import observed_action_payments
from sb3_contracts.envs.checks import check_choice

#: How the principal prices a recommendation (see :class:`MultiAgentContractDQNPolicy`).
CONTRACT_FORMS = ("paper", "minimal")


class MultiAgentContractDQNPolicy(BasePolicy):
    """
    Shared-parameter networks of :class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN`; its action
    is every agent's contract ``[n, A]``.

    :param observation_space: ``Box`` of shape ``(n, d)``, one row per agent
    :param action_space: ``Box(0, b_max, (n, A))``, a contract (one payment per move) per agent
    :param lr_schedule: learning-rate schedule
    :param net_arch: hidden layers of each network
    :param activation_fn: activation function
    :param features_extractor_class: features extractor applied to each agent's row (one per network)
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: unused (rows are flat)
    :param optimizer_class: optimizer (one over the trained networks)
    :param optimizer_kwargs: its keyword arguments, besides the learning rate
    :param contract_form: ``"paper"``: pay ``max_a Q - Q(a*) + ξ``, at least ξ on every recommendation (every
        contract recommends a move); ``"minimal"``: the minimal contract with margin ξ, ``max(max_{a != a*} Q -
        Q(a*) + ξ, 0)``, which pays nothing when the agent already prefers ``a*`` by at least ξ (its contract then
        recommends nothing: the agent is free, and takes that move on its own)
    """

    #: SB3's DQN.load of this policy's model fails here, naming MultiAgentContractDQN.load.
    q_net = DQNLoadGuard("MultiAgentContractDQN")

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = False,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        contract_form: str = "paper",
    ) -> None:
        check_choice("contract_form", contract_form, CONTRACT_FORMS)
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 2:
            raise ValueError(f"observation_space must be a Box (n_agents, d) with one row per agent, "
                             f"got {observation_space}")
        if not isinstance(action_space, spaces.Box) or action_space.shape[:1] != observation_space.shape[:1] \
                or len(action_space.shape) != 2:
            raise ValueError(f"action_space must be a Box (n_agents, n_actions) of contracts matching the "
                             f"observation's {observation_space.shape[0]} agents, got {action_space}")
        super().__init__(observation_space, action_space, features_extractor_class, features_extractor_kwargs,
                         optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
                         normalize_images=normalize_images)
        self.contract_form = contract_form
        self.net_arch = [64, 64] if net_arch is None else net_arch
        self.activation_fn = activation_fn
        self.n_agents, self.n_actions = (int(n) for n in action_space.shape)
        row = spaces.Box(observation_space.low[0], observation_space.high[0], dtype=np.float32)
        bits = spaces.Box(0.0, 1.0, (self.n_agents - 1,), dtype=np.float32)
        self.row_space = row
        self.agent_row_space = spaces.Box(np.concatenate([row.low, bits.low]), np.concatenate([row.high, bits.high]),
                                          dtype=np.float32)
        # The nudge ξ is state of the learner, saved with the weights so that predictions reload exactly.
        self.register_buffer("margin", th.zeros(()))
        self.register_buffer("b_max", th.as_tensor(action_space.high, dtype=th.float32))
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.principal_net = make_q_network(self, self.n_actions, self.row_space)
        self.principal_net_target = make_q_network(self, self.n_actions, self.row_space)
        self.agent_net = make_q_network(self, self.n_actions, self.agent_row_space)
        self.agent_net_target = make_q_network(self, self.n_actions, self.agent_row_space)
        for net, target in self.target_pairs():
            target.load_state_dict(net.state_dict())
            target.set_training_mode(False)
        trained = [*self.principal_net.parameters(), *self.agent_net.parameters()]
        self.optimizer = self.optimizer_class(trained, lr=lr_schedule(1), **self.optimizer_kwargs)

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, target)`` network pairs, for hard or soft target updates."""
        return [(self.principal_net, self.principal_net_target), (self.agent_net, self.agent_net_target)]

    def trained_networks(self) -> list[nn.Module]:
        """The networks the optimiser trains (each clipped on its own)."""
        return [self.principal_net, self.agent_net]

    @staticmethod
    def with_bits(rows: th.Tensor, others_follow: th.Tensor) -> th.Tensor:
        """The agent model's input: agents' rows ``[B, d]`` followed by the others' follow bits ``[B, n-1]``."""
        return th.cat([rows, others_follow.to(rows.dtype)], dim=1)

    def following_payments(self, rows: th.Tensor, margin: th.Tensor | float | None = None) -> th.Tensor:
        """
        Payment implementing each move ``[B, A]``, the others following, uncapped: ``max_a Q_φ((o_i, 1), a) -
        Q_φ((o_i, 1), a*) + ξ`` (``contract_form="paper"``) or the minimal contract with margin ξ (``"minimal"``).

        :param rows: ``[B, d]`` agents' rows
        :param margin: nudge ``ξ`` (the policy's by default)
        """
        ones = th.ones((rows.shape[0], self.n_agents - 1), device=rows.device)
        margin = self.margin if margin is None else margin
        return observed_action_payments(self.agent_net(self.with_bits(rows, ones)), margin,
                                        always_recommend=self.contract_form == "paper")

    def recommend_and_contract(self, obs: th.Tensor, explore: th.Tensor | None = None,
                               random_actions: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        Every agent's recommendation ``[B, n]`` and contract ``[B, n, A]`` (its payment on the recommended move
        only, capped at ``b_max``): greedy on ``q_θ``, except where ``explore [B, n]`` recommends ``random_actions``.

        :param obs: ``[B, n, d]`` observations
        :param explore: where to recommend at random
        :param random_actions: the random recommendations
        """
        batch = obs.shape[0]
        rows = obs.reshape(batch * self.n_agents, -1)
        q_values = self.principal_net(rows)
        recommendation = q_values.argmax(dim=1).reshape(batch, self.n_agents)
        if explore is not None:
            recommendation = th.where(explore, random_actions, recommendation)
        payments = self.following_payments(rows).reshape(batch, self.n_agents, self.n_actions)
        check_finite_values(q_values, payments)  # a NaN must not become some finite contract through argmax or min
        paid = payments.gather(2, recommendation.unsqueeze(2))
        contracts = th.nn.functional.one_hot(recommendation, self.n_actions).to(paid.dtype) * paid
        return recommendation, th.minimum(contracts, self.b_max)

    def forward(self, obs: th.Tensor, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: th.Tensor, deterministic: bool = True) -> th.Tensor:
        return self.recommend_and_contract(observation)[1]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(dict(net_arch=self.net_arch, activation_fn=self.activation_fn, lr_schedule=self._dummy_schedule,
                         optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
                         features_extractor_class=self.features_extractor_class,
                         features_extractor_kwargs=self.features_extractor_kwargs, contract_form=self.contract_form))
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.principal_net.set_training_mode(mode)
        self.agent_net.set_training_mode(mode)
        self.training = mode


MlpPolicy = MultiAgentContractDQNPolicy
