"""A trained principal as a plain function of observations, for the views that embed it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th

#: ``offer(observations [B, *obs_shape]) -> contracts [B, *action_shape]`` (float64, greedy).
Offer = Callable[[np.ndarray], np.ndarray]


def frozen_principal(model: Any) -> Offer:
    """
    The principal's greedy contracts as a function of a batch of observations, built from a frozen deep copy of its
    policy: later training of ``model`` does not change it, and nothing it returns gives a handle on the networks
    (validation agents see the principal only as contracts).

    :param model: a trained contract learner (``ContractDQN``, ``MultiAgentContractDQN``) or any SB3 model
    """
    policy = copy.deepcopy(model.policy).to("cpu")
    policy.set_training_mode(False)
    for parameter in policy.parameters():
        parameter.requires_grad_(False)

    def offer(observations: np.ndarray) -> np.ndarray:
        with th.no_grad():
            contracts = policy._predict(th.as_tensor(np.asarray(observations, dtype=np.float32)), deterministic=True)
        return contracts.numpy().astype(np.float64)

    return offer


def live_principal(model: Any) -> Offer:
    """
    Like :func:`frozen_principal` but reading ``model``'s current networks (the meta-algorithm's alternation, where
    the agents must face the principal's latest contracts).

    :param model: the principal being trained
    """

    def offer(observations: np.ndarray) -> np.ndarray:
        contracts, _ = model.predict(observations, deterministic=True)
        return np.asarray(contracts, dtype=np.float64)

    return offer
