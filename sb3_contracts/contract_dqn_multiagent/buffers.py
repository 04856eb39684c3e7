"""Replay buffers of MultiAgentContractDQN: joint transitions of whole games, with the agents' follow bits.

:class:`MultiAgentReplayBuffer` samples uniformly (SB3's ``ReplayBuffer``); :class:`MultiAgentPrioritizedReplayBuffer`
samples proportionally to the principal's TD errors (the paper: proportional prioritized replay, size 100,000,
α = 0.4, β = 0, ε = 1e-7, :data:`~sb3_contracts.common.prioritized.PAPER_PER_KWARGS`). Both store the same fields.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_contracts.common.prioritized import PrioritizedIndices, PrioritizedReplayBuffer


class MultiAgentReplayBufferSamples(NamedTuple):
    """
    A batch of joint transitions: ``observations`` ``[B, n, d]``, ``actions``/``rewards``/``follow`` ``[B, n]``;
    with prioritized replay also the importance-sampling ``weights`` ``[B]`` and the rows' ``leaf_nodes_indices``.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    follow: th.Tensor
    weights: th.Tensor | None = None
    leaf_nodes_indices: np.ndarray | None = None


class _JointTransitions:
    """
    The fields both buffers add to SB3's: every agent's own reward and the follow bits, per game. SB3 builds the
    buffers with the env's action space, the contracts ``Box(n, A)``; the action they store is the move each agent
    took, ``MultiDiscrete([A] * n)``.
    """

    buffer_size: int
    n_envs: int
    pos: int

    @staticmethod
    def _moves_space(action_space: spaces.Space) -> spaces.MultiDiscrete:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 2:
            raise ValueError(f"action_space must be the env's contracts, a Box (n_agents, n_actions), "
                             f"got {action_space}")
        n_agents, n_actions = (int(n) for n in action_space.shape)
        return spaces.MultiDiscrete([n_actions] * n_agents)

    def _allocate_joint(self, n_agents: int) -> None:
        self.agent_rewards = np.zeros((self.buffer_size, self.n_envs, n_agents), dtype=np.float32)
        self.follow = np.zeros((self.buffer_size, self.n_envs, n_agents), dtype=np.float32)

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        """
        Store one step of every game.

        :param obs: ``[N, n, d]`` observations
        :param next_obs: ``[N, n, d]`` next observations (the terminal ones where a game ended)
        :param action: ``[N, n]`` the moves taken
        :param reward: ``[N]`` the env's reward, not stored: SB3's ``rewards`` holds each game's welfare instead
        :param done: ``[N]`` episode ends
        :param infos: the step's infos: the agents' own game rewards ``agent_rewards`` (no payments) and their
            ``follow_bits``, ``[n]`` each (``TimeLimit.truncated`` marks ends by time limit, bootstrapped)
        """
        rewards = np.stack([info["agent_rewards"] for info in infos])
        self.agent_rewards[self.pos] = rewards
        self.follow[self.pos] = np.stack([info["follow_bits"] for info in infos])
        super().add(obs, next_obs, action, rewards.sum(axis=1), done, infos)  # type: ignore[misc]

    def _joint_samples(self, batch_inds: np.ndarray, games: np.ndarray, weights: np.ndarray | None = None,
                       leaves: np.ndarray | None = None) -> MultiAgentReplayBufferSamples:
        index = (batch_inds, games)
        data = (self.observations[index], self.actions[index].astype(np.int64), self.next_observations[index],
                self.dones[index] * (1 - self.timeouts[index]), self.agent_rewards[index], self.follow[index])
        tensors = tuple(map(self.to_torch, data))
        return MultiAgentReplayBufferSamples(*tensors, None if weights is None else self.to_torch(weights), leaves)


class MultiAgentReplayBuffer(_JointTransitions, ReplayBuffer):
    """
    SB3's ``ReplayBuffer`` over games: each entry is one game's joint transition (every agent's row of the
    observation, the moves the agents took and their own game rewards) plus the agents' follow bits.

    :param buffer_size: max number of transitions (over all envs)
    :param observation_space: the principal's observation space ``Box(n, d)``
    :param action_space: the env's action space, the contracts ``Box(n, A)`` (the buffer stores the moves taken)
    :param device: torch device of the samples
    :param n_envs: number of parallel envs (games)
    :param optimize_memory_usage: not supported (must be ``False``)
    :param handle_timeout_termination: treat time-limit truncations as non-terminal, as SB3 does
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Box, action_space: spaces.Box,
                 device: th.device | str = "auto", n_envs: int = 1, optimize_memory_usage: bool = False,
                 handle_timeout_termination: bool = True) -> None:
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage=True is not supported by MultiAgentReplayBuffer")
        super().__init__(buffer_size, observation_space, self._moves_space(action_space), device, n_envs,
                         handle_timeout_termination=handle_timeout_termination)
        self._allocate_joint(int(observation_space.shape[0]))

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None
                     ) -> MultiAgentReplayBufferSamples:
        # SB3's buffers draw from the global NumPy generator, which SB3 seeds.
        games = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        return self._joint_samples(batch_inds, games)


class MultiAgentPrioritizedReplayBuffer(_JointTransitions, PrioritizedReplayBuffer):
    """
    :class:`MultiAgentReplayBuffer` with proportional prioritization over joint transitions (see
    :class:`~sb3_contracts.common.prioritized.PrioritizedReplayBuffer`; the learner reports the principal's TD
    errors after each gradient step).

    :param alpha: prioritization exponent (0: uniform)
    :param beta: initial importance-sampling exponent
    :param final_beta: its value at the end of training
    :param min_priority: ``ε`` added to every ``|δ|``
    The other arguments are those of :class:`MultiAgentReplayBuffer`.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Box, action_space: spaces.Box,
                 device: th.device | str = "auto", n_envs: int = 1, alpha: float = 0.4, beta: float = 0.0,
                 final_beta: float = 0.0, optimize_memory_usage: bool = False, min_priority: float = 1e-7,
                 handle_timeout_termination: bool = True) -> None:
        super().__init__(buffer_size, observation_space, self._moves_space(action_space), device, n_envs,
                         alpha=alpha, beta=beta, final_beta=final_beta, optimize_memory_usage=optimize_memory_usage,
                         min_priority=min_priority, handle_timeout_termination=handle_timeout_termination)
        self._allocate_joint(int(observation_space.shape[0]))

    def _get_prioritized_samples(self, indices: PrioritizedIndices, env: VecNormalize | None = None
                                 ) -> MultiAgentReplayBufferSamples:
        return self._joint_samples(indices.batch_inds, indices.env_inds, indices.weights, indices.leaf_nodes_indices)
