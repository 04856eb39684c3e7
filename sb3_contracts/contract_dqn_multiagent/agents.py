"""Algorithm 3's agents in training, plugged into the principal's view as its responder.

At the start of every episode each agent draws a follow bit ``f_i ~ Bernoulli(follow_prob)``. Followers take
the recommendation of their contract (the principal's ε-greedy recommendation: the move it pays); the others
act ε-greedily on the learner's selfish agent model ``Q_φ((o_i, f_{-i}), ·)``. The bits are reported in every
step's ``info`` as ``follow_bits`` (the learner stores them with the transition).

The responder protocol (see :mod:`~sb3_contracts.game.responders`): ``__call__(agent_obs [N, n, d],
contracts [N, n, A], key) -> actions [N, n]``, ``reset(key, games)``, ``info(key)``. ``key`` identifies the batch
of games that calls (each env of a ``DummyVecEnv`` has its own), so one object serves every env in the process;
this responder uses it only as a dictionary key.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch as th


class FollowBitAgents:
    """
    The agents of Algorithm 3's training phase, acting with a learner's live agent model.

    :param model: the learner (reads ``model.policy``, ``model.exploration_rate``, ``model.num_timesteps``,
        ``model.learning_starts``)
    :param follow_prob: probability of each follow bit ``f_i = 1``
    """

    def __init__(self, model: Any, follow_prob: float) -> None:
        self.model = model
        self.follow_prob = float(follow_prob)
        self._bits: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        # SB3 seeds the global NumPy generator (set_random_seed), so `seed=` reproduces the bits.
        return (np.random.rand(*shape) < self.follow_prob).astype(np.float32)  # noqa: NPY002

    def bits(self, key: Any, n_games: int, n_agents: int) -> np.ndarray:
        """The follow bits ``[N, n]`` of the games behind ``key`` (drawn when first seen)."""
        bits = self._bits.get(key)
        if bits is None or bits.shape != (n_games, n_agents):
            bits = self._bits[key] = self._draw((n_games, n_agents))
        return bits

    def reset(self, key: Any, games: np.ndarray) -> None:
        """New episodes in ``games`` ``[N]``: fresh follow bits."""
        bits = self._bits.get(key)
        if bits is not None:
            bits[games] = self._draw((int(games.sum()), bits.shape[1]))

    def info(self, key: Any) -> dict[str, np.ndarray]:
        """The bits of the step just played, for the step's ``info``."""
        return {"follow_bits": self._bits[key].copy()}

    def __call__(self, agent_obs: np.ndarray, contracts: np.ndarray, key: Any) -> np.ndarray:
        n_games, n_agents = contracts.shape[:2]
        follow = self.bits(key, n_games, n_agents)
        model, policy = self.model, self.model.policy
        rows = th.as_tensor(agent_obs.reshape(n_games * n_agents, -1), device=model.device)
        others = th.as_tensor(others_follow(follow).reshape(n_games * n_agents, -1), device=model.device)
        with th.no_grad():
            selfish = policy.agent_net(policy.with_bits(rows, others)).argmax(dim=1).cpu().numpy()
        rate = 1.0 if model.num_timesteps < model.learning_starts else model.exploration_rate
        explore = np.random.rand(n_games * n_agents) < rate  # noqa: NPY002
        selfish = np.where(explore, np.random.randint(contracts.shape[2], size=selfish.size), selfish)  # noqa: NPY002
        selfish = selfish.reshape(n_games, n_agents)
        # An all-zero contract recommends nothing (with ξ = 0 it may offer the agent's own favourite move for free):
        # a follower then acts on its own, which is what the recommendation asked.
        recommended = np.where(contracts.max(axis=2) > 0, contracts.argmax(axis=2), selfish)
        return np.where(follow.astype(bool), recommended, selfish)


def others_follow(follow: np.ndarray | th.Tensor) -> np.ndarray | th.Tensor:
    """
    Each agent's view of the others' follow bits: ``[..., n] -> [..., n, n - 1]`` (agent ``i``'s row drops ``f_i``).

    :param follow: follow bits, agents last
    """
    n = follow.shape[-1]
    others = np.array([[j for j in range(n) if j != i] for i in range(n)]).reshape(n, n - 1)
    if isinstance(follow, th.Tensor):
        return follow[..., th.as_tensor(others, device=follow.device)]
    return follow[..., others]
