"""Replay buffer of ContractDQN: SB3's ``ReplayBuffer`` plus what Algorithm 2's targets need."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize


class ContractReplayBufferSamples(NamedTuple):
    """
    A batch of principal transitions ``(s, a*, o, r(s, a), r^p(s, o), done, s')``.

    ``actions`` are the recommendations ``a*``; ``agent_actions`` the agent's action where the env reveals
    it (observed-action games) and ``a*`` otherwise; ``rewards`` the principal's net reward
    ``r^p(s, o) - b(o)`` as the env paid it; ``outcome_probs`` and ``next_outcome_probs`` the known
    outcome model ``𝒪(s, ·)``, ``𝒪(s', ·)`` (``[B, A, O]``, zeros when the env does not expose it);
    ``trusted`` is 1 where ``agent_actions`` is known to be the action taken (revealed by the env, or an
    exploratory recommendation with a generous contract) and 0 where it is only assumed.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    outcomes: th.Tensor
    agent_actions: th.Tensor
    agent_rewards: th.Tensor
    principal_rewards: th.Tensor
    outcome_probs: th.Tensor
    next_outcome_probs: th.Tensor
    trusted: th.Tensor


class ContractReplayBuffer(ReplayBuffer):
    """
    Replay buffer for :class:`~sb3_contracts.contract_dqn.ContractDQN`.

    Besides SB3's ``(s, a, r, s', done)`` it reads from each step's ``info`` (see
    :class:`~sb3_contracts.game.PrincipalEnv`): the outcome ``o``, the agent's own reward
    ``r(s, a) = agent_reward - payment``, the principal's gross reward ``r^p(s, o) = reward + payment``,
    the outcome models ``outcome_probs`` / ``next_outcome_probs`` and, when the env reveals it, the
    agent's action. SB3 builds it with the env's action space, the contracts; the action it stores is the
    recommendation ``a*`` that the contract implements (a ``Discrete(A)`` space).

    :param buffer_size: max number of transitions (over all envs).
    :param observation_space: observation space.
    :param action_space: the env's action space, the contracts ``Box(0, b_max, (O,))``.
    :param device: torch device of the samples.
    :param n_envs: number of parallel envs.
    :param optimize_memory_usage: not supported (must be ``False``).
    :param handle_timeout_termination: treat time-limit truncations as non-terminal, as SB3 does.
    :param n_actions: number of agent actions ``A`` (the recommendations).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_actions: int | None = None,
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(f"action_space must be the env's contracts, a Box (O,); got {action_space}")
        if not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
            raise ValueError(f"n_actions must be a positive integer, got {n_actions!r}")
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage=True is not supported by ContractReplayBuffer")
        super().__init__(buffer_size, observation_space, spaces.Discrete(int(n_actions)), device, n_envs,
                         optimize_memory_usage=False, handle_timeout_termination=handle_timeout_termination)
        self.n_actions = int(n_actions)
        self.n_outcomes = int(action_space.shape[0])
        shape = (self.buffer_size, self.n_envs)
        self.outcomes = np.zeros(shape, dtype=np.int64)
        self.agent_actions = np.zeros(shape, dtype=np.int64)
        self.agent_rewards = np.zeros(shape, dtype=np.float32)
        self.principal_rewards = np.zeros(shape, dtype=np.float32)
        self.outcome_probs = np.zeros((*shape, self.n_actions, self.n_outcomes), dtype=np.float32)
        self.next_outcome_probs = np.zeros_like(self.outcome_probs)
        self.trusted = np.zeros(shape, dtype=np.float32)
        self.next_trusted: np.ndarray | None = None

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        pos = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        recommendation = np.asarray(action).reshape(self.n_envs)
        try:
            payment = np.array([info["payment"] for info in infos], dtype=np.float64)
            self.outcomes[pos] = [info["outcome"] for info in infos]
            self.agent_rewards[pos] = np.array([info["agent_reward"] for info in infos]) - payment
        except KeyError as error:
            raise KeyError(f"ContractDQN needs info[{error.args[0]!r}] from the principal's env "
                           "(see sb3_contracts.game.PrincipalEnv)") from error
        self.principal_rewards[pos] = np.asarray(reward, dtype=np.float64).reshape(self.n_envs) + payment
        self.agent_actions[pos] = [info.get("agent_action", a) for info, a in zip(infos, recommendation, strict=True)]
        revealed = np.array(["agent_action" in info for info in infos])
        marked = np.zeros(self.n_envs, dtype=bool) if self.next_trusted is None else self.next_trusted
        self.trusted[pos] = revealed | marked
        self.next_trusted = None
        for key, store in (("outcome_probs", self.outcome_probs), ("next_outcome_probs", self.next_outcome_probs)):
            if key in infos[0]:
                store[pos] = np.stack([info[key] for info in infos])

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ContractReplayBufferSamples:
        # SB3's buffers draw from the global NumPy generator, which SB3 seeds.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        index = (batch_inds, env_indices)
        data = (
            self._normalize_obs(self.observations[index], env),
            self.actions[index].reshape(-1),
            self._normalize_obs(self.next_observations[index], env),
            (self.dones[index] * (1 - self.timeouts[index])),
            self._normalize_reward(self.rewards[index], env),
            self.outcomes[index],
            self.agent_actions[index],
            self.agent_rewards[index],
            self.principal_rewards[index],
            self.outcome_probs[index],
            self.next_outcome_probs[index],
            self.trusted[index],
        )
        return ContractReplayBufferSamples(*tuple(map(self.to_torch, data)))
