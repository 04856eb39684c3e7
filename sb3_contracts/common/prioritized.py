"""
Proportional prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952) for SB3.

:class:`PrioritizedReplayBuffer` is SB3's ``ReplayBuffer`` whose rows are drawn with probability
``P(i) = p_i / Σ_k p_k``, with ``p_i = (|δ_i| + min_priority)^α`` the priority of transition ``i`` and ``δ_i`` its
last TD error; it returns importance-sampling weights ``w_i = (N P(i))^-β / max_j w_j`` with every batch. Its API
mirrors the SB3 maintainers' open proposal (DLR-RM/stable-baselines3 PR #1622, for issue #1242): the constructor
arguments ``alpha``, ``beta``, ``final_beta`` and ``min_priority``; ``update_priorities(leaf_nodes_indices,
td_errors, progress_remaining)``; samples that carry ``weights`` and ``leaf_nodes_indices``; ``beta`` annealed
linearly from ``beta`` to ``final_beta`` as the progress remaining the learner reports goes from 1 to 0.

SB3's buffers store ``[buffer_size, n_envs]``; each ``(pos, env)`` cell is one leaf of the sum tree, at index
``pos * n_envs + env``, so sampling picks the env (the game, in the multi-agent buffer) of every row too.

Random numbers come from NumPy's global generator, as in SB3's own buffers: SB3 seeds it (``seed=`` of an
algorithm, :func:`~stable_baselines3.common.utils.set_random_seed`), which reproduces the batches.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

#: The settings of Ivanov et al. 2024, Appendix D.2 (size 100,000, α = 0.4, β = 0, ε = 1e-7).
PAPER_PER_KWARGS: dict[str, float] = {"alpha": 0.4, "beta": 0.0, "final_beta": 0.0, "min_priority": 1e-7}


class SumTree:
    """
    Binary sum tree over ``capacity`` non-negative leaves, stored in one numpy array (heap layout, root at 1).

    Updates and prefix-sum searches are batched: numpy works on the whole batch at once and Python loops only
    over the ``log2(capacity)`` levels. Sums are recomputed from the children after every update (not
    incremented by differences), so rounding errors do not accumulate over millions of updates.

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.depth = (self.capacity - 1).bit_length()  # levels below the root
        self._first_leaf = 1 << self.depth  # leaves sit at nodes [2^depth, 2^depth + capacity)
        self.nodes = np.zeros(2 * self._first_leaf, dtype=np.float64)

    def __len__(self) -> int:
        return self.capacity

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.nodes[1])

    def __getitem__(self, leaves: np.ndarray | int) -> np.ndarray:
        """
        Values of some leaves.

        :param leaves: leaf indices in ``[0, capacity)``
        :return: their values (float64, the shape of ``leaves``)
        """
        return self.nodes[self._first_leaf + self._check_leaves(leaves)]

    def update(self, leaves: np.ndarray | int, values: np.ndarray | float) -> None:
        """
        Set some leaves and refresh the sums above them. With a repeated leaf, the last value wins.

        :param leaves: leaf indices in ``[0, capacity)``
        :param values: their new values, finite and non-negative (broadcast to the shape of ``leaves``)
        """
        leaves = self._check_leaves(leaves).reshape(-1)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), leaves.shape)
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("values must be finite and non-negative")
        # NumPy does not promise which of repeated indices an assignment keeps: keep the last one explicitly.
        last = leaves.size - 1 - np.unique(leaves[::-1], return_index=True)[1]
        nodes = self._first_leaf + leaves[last]
        self.nodes[nodes] = values[last]
        for _ in range(self.depth):
            # a parent reached twice in the batch gets the same sum twice: no need to deduplicate
            nodes >>= 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find_prefixsum(self, prefix_sums: np.ndarray) -> np.ndarray:
        """
        For each ``v`` in ``prefix_sums``, the leaf ``i`` with ``Σ_{k<i} x_k <= v < Σ_{k<=i} x_k``: the smallest
        leaf whose inclusive prefix sum exceeds ``v``. A ``v`` at or past the total (rounding in a caller's
        ``u * total``) gives the last positive leaf; zero leaves are never returned.

        :param prefix_sums: values in ``[0, total]``
        :return: leaf indices (int64, the shape of ``prefix_sums``)
        """
        values = np.array(prefix_sums, dtype=np.float64)  # a copy: the descent subtracts from it
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("prefix_sums must be finite and non-negative")
        if self.total <= 0:
            raise ValueError("the tree is empty (every leaf is zero): nothing to search")
        nodes = np.ones(values.shape, dtype=np.int64)
        for _ in range(self.depth):  # in-place steps: this loop is the cost of a prioritized batch
            nodes <<= 1  # the left child
            left_sum = self.nodes[nodes]
            go_right = values >= left_sum
            # Never step into a zero subtree: rounding may leave v just above a sum it should be below.
            go_right &= self.nodes[nodes + 1] > 0
            values -= left_sum * go_right
            nodes += go_right
        return nodes - self._first_leaf

    def reset(self) -> None:
        """Set every leaf to zero."""
        self.nodes[:] = 0.0

    def _check_leaves(self, leaves: np.ndarray | int) -> np.ndarray:
        leaves = np.asarray(leaves)
        if leaves.size and not np.issubdtype(leaves.dtype, np.integer):
            raise ValueError(f"leaves must be integers, got dtype {leaves.dtype}")
        leaves = leaves.astype(np.int64)
        if leaves.size and (leaves.min() < 0 or leaves.max() >= self.capacity):
            raise ValueError(f"leaves must be in [0, {self.capacity}), got range [{leaves.min()}, {leaves.max()}]")
        return leaves


class PrioritizedReplayBufferSamples(NamedTuple):
    """
    SB3's ``ReplayBufferSamples`` plus what prioritized replay needs.

    ``weights`` ``[B, 1]`` are the importance-sampling weights (multiply the per-row loss by them);
    ``leaf_nodes_indices`` ``[B]`` (numpy int64) identify the rows for
    :meth:`PrioritizedReplayBuffer.update_priorities`. ``discounts`` is SB3's n-step field (``None`` here), kept
    so that SB3's DQN/SAC/TD3 read these samples unchanged.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    weights: th.Tensor
    leaf_nodes_indices: np.ndarray
    discounts: th.Tensor | None = None


class PrioritizedIndices(NamedTuple):
    """
    A prioritized draw of ``B`` rows: which cells of the ``[buffer_size, n_envs]`` arrays and their weights.

    :param batch_inds: ``[B]`` positions in the buffer
    :param env_inds: ``[B]`` env (game) indices
    :param weights: ``[B]`` importance-sampling weights (float32, max 1)
    :param leaf_nodes_indices: ``[B]`` leaves of the sum tree, ``batch_inds * n_envs + env_inds``
    """

    batch_inds: np.ndarray
    env_inds: np.ndarray
    weights: np.ndarray
    leaf_nodes_indices: np.ndarray


class PrioritizedReplayBuffer(ReplayBuffer):
    """
    SB3's ``ReplayBuffer`` with proportional prioritization (Schaul et al. 2016).

    New transitions get the largest priority seen so far (1 before any update), so each is replayed at least
    about as often as anything else until its TD error is known. After a gradient step, report the batch's TD
    errors with :meth:`update_priorities`. SB3's own algorithms (DQN, SAC...) accept this buffer as
    ``replay_buffer_class`` but never call :meth:`update_priorities` nor weigh their loss, so with them it
    samples uniformly; the learner that uses it calls both.

    Sampling is stratified as in the paper (Appendix B.2.1): ``[0, Σ p)`` is cut into ``batch_size`` equal
    segments and one prefix sum drawn uniformly in each. Weights are normalised by the batch's largest weight,
    as in the proposal (normalising by the buffer's, as OpenAI Baselines does, would need a min-tree too).

    **Adding fields in a subclass.** Store extra arrays ``[buffer_size, n_envs, ...]`` in ``__init__`` and write
    them at ``self.pos`` before calling ``super().add(...)`` (as SB3 subclasses do). To return them, override
    :meth:`_get_prioritized_samples`, which receives the draw (:class:`PrioritizedIndices`), index every array
    with ``(indices.batch_inds, indices.env_inds)`` and put ``indices.weights`` and
    ``indices.leaf_nodes_indices`` in the subclass's own samples NamedTuple::

        class MyBuffer(PrioritizedReplayBuffer):
            def _get_prioritized_samples(self, indices, env=None):
                cells = (indices.batch_inds, indices.env_inds)
                data = (self.observations[cells], ..., self.follow[cells], indices.weights)
                return MySamples(*map(self.to_torch, data), indices.leaf_nodes_indices)

    :param buffer_size: max number of transitions (over all envs)
    :param observation_space: observation space
    :param action_space: action space
    :param device: torch device of the samples
    :param n_envs: number of parallel envs
    :param alpha: how much prioritization is used, ``>= 0`` (0: uniform, 1: fully proportional)
    :param beta: importance-sampling exponent at the start, in ``[0, 1]`` (0: no correction, 1: full)
    :param final_beta: importance-sampling exponent at the end of training, in ``[0, 1]``; ``beta`` is
        interpolated linearly between the two by the progress remaining given to :meth:`update_priorities`
        or :meth:`set_progress_remaining`
    :param optimize_memory_usage: not supported (must be ``False``): the slot it invalidates would need its
        priority zeroed and restored at every step
    :param min_priority: ``ε > 0`` added to ``|δ|``, so that no transition's probability falls to zero
    :param handle_timeout_termination: treat time-limit truncations as non-terminal, as SB3 does
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        alpha: float = 0.5,
        beta: float = 0.4,
        final_beta: float = 1.0,
        optimize_memory_usage: bool = False,
        min_priority: float = 1e-8,
        handle_timeout_termination: bool = True,
    ) -> None:
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        for name, value in (("beta", beta), ("final_beta", final_beta)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not np.isfinite(min_priority) or min_priority <= 0:
            raise ValueError(f"min_priority must be a finite number > 0, got {min_priority!r}")
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage=True is not supported by PrioritizedReplayBuffer")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs,
                         optimize_memory_usage=False, handle_timeout_termination=handle_timeout_termination)
        self.alpha = float(alpha)
        self.initial_beta = float(beta)
        self.final_beta = float(final_beta)
        self.min_priority = float(min_priority)
        self._current_progress_remaining = 1.0
        # Leaves hold p_i = (|δ_i| + ε)^α; the max is over every priority ever set, as in the paper.
        self.max_priority = 1.0
        self.tree = SumTree(self.buffer_size * self.n_envs)

    @property
    def beta(self) -> float:
        """The current importance-sampling exponent, ``beta`` annealed linearly to ``final_beta``."""
        return self.final_beta + (self.initial_beta - self.final_beta) * self._current_progress_remaining

    def set_progress_remaining(self, progress_remaining: float) -> None:
        """
        Anneal ``beta``: the learner's ``_current_progress_remaining`` (1 at the start of training, 0 at the end).

        :param progress_remaining: in ``[0, 1]``
        """
        if not 0.0 <= progress_remaining <= 1.0:
            raise ValueError(f"progress_remaining must be in [0, 1], got {progress_remaining!r}")
        self._current_progress_remaining = float(progress_remaining)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        # One row per env at self.pos; overwriting an old row (wrapped around) replaces its priority too.
        first = self.pos * self.n_envs
        self.tree.update(np.arange(first, first + self.n_envs), self.max_priority)
        super().add(obs, next_obs, action, reward, done, infos)

    def reset(self) -> None:
        super().reset()
        self.tree.reset()
        self.max_priority = 1.0

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:
        """
        Draw ``batch_size`` transitions with probability proportional to their priorities (with replacement).

        :param batch_size: number of rows
        :param env: associated VecEnv, to normalise observations and rewards (``VecNormalize``)
        :return: the rows, their importance-sampling weights and their leaf indices
        """
        return self._get_prioritized_samples(self.sample_indices(batch_size), env)

    def sample_indices(self, batch_size: int) -> PrioritizedIndices:
        """
        Draw rows without reading the data: what a subclass's :meth:`_get_prioritized_samples` indexes with.

        :param batch_size: number of rows
        :return: positions, env indices, importance-sampling weights and leaf indices of the rows
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self.size() == 0:
            raise ValueError("cannot sample from an empty PrioritizedReplayBuffer")
        total = self.tree.total
        # Stratified: one uniform draw in each of batch_size equal segments of [0, total) (the paper's B.2.1).
        # SB3's buffers draw from the global NumPy generator, which SB3 seeds.
        draws = np.random.random(batch_size)  # noqa: NPY002
        leaves = self.tree.find_prefixsum((np.arange(batch_size) + draws) * (total / batch_size))
        probs = self.tree[leaves] / total
        n_stored = self.size() * self.n_envs
        weights = (n_stored * probs) ** -self.beta
        batch_inds, env_inds = np.divmod(leaves, self.n_envs)
        return PrioritizedIndices(batch_inds, env_inds, (weights / weights.max()).astype(np.float32), leaves)

    def _get_prioritized_samples(self, indices: PrioritizedIndices, env: VecNormalize | None = None
                                 ) -> PrioritizedReplayBufferSamples:
        """
        Read the drawn rows; subclasses with more fields override this (see the class docstring).

        :param indices: the draw, from :meth:`sample_indices`
        :param env: associated VecEnv, to normalise observations and rewards
        """
        cells = (indices.batch_inds, indices.env_inds)
        data = (
            self._normalize_obs(self.observations[cells], env),
            self.actions[cells],
            self._normalize_obs(self.next_observations[cells], env),
            # only dones that are not time-limit truncations end the bootstrap, as in SB3
            (self.dones[cells] * (1 - self.timeouts[cells])).reshape(-1, 1),
            self._normalize_reward(self.rewards[cells].reshape(-1, 1), env),
            indices.weights.reshape(-1, 1),
        )
        return PrioritizedReplayBufferSamples(*tuple(map(self.to_torch, data)), indices.leaf_nodes_indices)

    def update_priorities(self, leaf_nodes_indices: np.ndarray, td_errors: np.ndarray | th.Tensor,
                          progress_remaining: float | None = None) -> None:
        """
        Set the priorities of sampled transitions to ``(|δ| + min_priority)^α``. A leaf repeated in the batch
        takes its last TD error.

        :param leaf_nodes_indices: ``[B]`` the samples' ``leaf_nodes_indices``
        :param td_errors: ``[B]`` (or ``[B, 1]``) their TD errors ``δ`` (signed or absolute), numpy or torch
        :param progress_remaining: the learner's progress remaining, to anneal ``beta`` (unchanged if ``None``)
        """
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().cpu().numpy()
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        leaves = np.asarray(leaf_nodes_indices).reshape(-1)
        if td_errors.shape != leaves.shape:
            raise ValueError(f"td_errors must have one value per leaf: {td_errors.size} values for {leaves.size} "
                             "leaf_nodes_indices")
        if not np.isfinite(td_errors).all():
            raise ValueError("td_errors must be finite (got NaN or inf)")
        self._check_stored(leaves)
        if progress_remaining is not None:
            self.set_progress_remaining(progress_remaining)
        priorities = (np.abs(td_errors) + self.min_priority) ** self.alpha
        self.tree.update(leaves, priorities)
        if priorities.size:
            self.max_priority = max(self.max_priority, float(priorities.max()))

    def priorities(self) -> np.ndarray:
        """The priorities ``p = (|δ| + ε)^α`` of the stored cells, ``[size, n_envs]`` (a copy, in leaf order)."""
        return self.tree[np.arange(self.size() * self.n_envs)].reshape(-1, self.n_envs)

    def _check_stored(self, leaves: np.ndarray) -> None:
        if leaves.size and not np.issubdtype(leaves.dtype, np.integer):
            raise ValueError(f"leaf_nodes_indices must be integers, got dtype {leaves.dtype}")
        # A leaf past the stored cells has no transition yet: a priority there would make it sampleable.
        n_stored = self.size() * self.n_envs
        if leaves.size and (leaves.min() < 0 or leaves.max() >= n_stored):
            raise ValueError(f"leaf_nodes_indices must be in [0, {n_stored}) (the stored transitions), got range "
                             f"[{leaves.min()}, {leaves.max()}]")
