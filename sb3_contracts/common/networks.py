"""Q-networks of the contract policies: SB3's ``QNetwork`` with a features extractor of its own."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.dqn.policies import QNetwork


def make_q_network(policy: BasePolicy, n_outputs: int, observation_space: spaces.Space | None = None) -> QNetwork:
    """
    A Q-network with ``n_outputs`` heads, built with ``policy``'s architecture (``net_arch``, ``activation_fn``,
    features extractor class and kwargs) on ``observation_space`` (the policy's by default), with its own
    features extractor.

    :param policy: the policy whose settings to use
    :param n_outputs: number of outputs
    :param observation_space: what the network reads (e.g. one agent's row of a multi-agent observation)
    """
    space = policy.observation_space if observation_space is None else observation_space
    extractor = None if observation_space is None else policy.features_extractor_class(
        space, **policy.features_extractor_kwargs)
    net_args = policy._update_features_extractor(
        {"observation_space": space, "action_space": spaces.Discrete(n_outputs), "net_arch": policy.net_arch,
         "activation_fn": policy.activation_fn, "normalize_images": policy.normalize_images},
        features_extractor=extractor,
    )
    return QNetwork(**net_args).to(policy.device)


def check_finite_values(*values: th.Tensor) -> None:
    """
    Refuse to offer contracts computed from non-finite values (a diverged learner or corrupted weights): the
    error says so, where clipping or an argmax would turn NaN into some finite contract.

    :param values: the principal's Q-values and the contracts derived from them
    """
    if not all(bool(th.isfinite(value).all()) for value in values):
        raise FloatingPointError("the principal's networks give non-finite values (diverged training or corrupted "
                                 "weights): no contract is offered")


class DQNLoadGuard:
    """
    A contract policy's ``q_net``, which it does not have: SB3's ``DQN.load`` of a contract learner's file builds the
    file's policy, then reads ``policy.q_net``; this makes it fail naming the loader to use rather than with an
    ``AttributeError`` about ``q_net``. (A ``TypeError``: torch's ``Module.__getattr__`` would replace an
    ``AttributeError`` raised here by its own.)

    :param learner: the learner whose ``load`` reads the file
    """

    def __init__(self, learner: str) -> None:
        self.learner = learner

    def __get__(self, policy: Any, owner: type | None = None) -> Any:
        if policy is None:
            return self
        raise TypeError(f"{type(policy).__name__} has no q_net: this is a {self.learner} model, which SB3's DQN "
                        f"cannot run; load it with sb3_contracts.{self.learner}.load")
