"""Proportional prioritized replay: the sum tree against brute force, sampling laws, weights, SB3 compatibility."""

from typing import NamedTuple

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import set_random_seed

from sb3_contracts.common import (
    PAPER_PER_KWARGS,
    PrioritizedIndices,
    PrioritizedReplayBuffer,
    PrioritizedReplayBufferSamples,
    SumTree,
)

th.set_num_threads(1)

OBS_SPACE = spaces.Box(-np.inf, np.inf, (3,), dtype=np.float32)
ACTION_SPACE = spaces.Discrete(2)


def _buffer(buffer_size=8, n_envs=1, **kwargs) -> PrioritizedReplayBuffer:
    return PrioritizedReplayBuffer(buffer_size, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=n_envs, **kwargs)


def _add(buffer: PrioritizedReplayBuffer, step: int) -> None:
    """Add one row whose observation is ``[step, env, 0]`` in every env, so a sample tells where it came from."""
    n = buffer.n_envs
    obs = np.stack([np.full(n, step), np.arange(n), np.zeros(n)], axis=1).astype(np.float32)
    buffer.add(obs, obs + 1, np.zeros(n), np.full(n, float(step)), np.zeros(n), [{} for _ in range(n)])


def _filled(buffer_size=8, n_envs=1, steps=None, **kwargs) -> PrioritizedReplayBuffer:
    buffer = _buffer(buffer_size, n_envs, **kwargs)
    for step in range(buffer.buffer_size if steps is None else steps):
        _add(buffer, step)
    return buffer


def _counts(buffer: PrioritizedReplayBuffer, n_batches: int, batch_size: int) -> np.ndarray:
    leaves = np.concatenate([buffer.sample_indices(batch_size).leaf_nodes_indices for _ in range(n_batches)])
    return np.bincount(leaves, minlength=buffer.size() * buffer.n_envs)


# --- the sum tree ---------------------------------------------------------------------------------------------

# Multiples of 1/8 below 2^10: every partial sum is exact in float64, so the tree must equal np.cumsum exactly.
exact_values = st.integers(0, 8 * 1024).map(lambda k: k / 8)


@st.composite
def trees_with_updates(draw):
    capacity = draw(st.integers(1, 70))
    batches = draw(st.lists(st.lists(st.tuples(st.integers(0, capacity - 1), exact_values), min_size=1, max_size=20),
                            min_size=1, max_size=6))
    return capacity, batches


@settings(max_examples=200, deadline=None)
@given(trees_with_updates(), st.lists(st.floats(0, 1.2), min_size=1, max_size=30))
def test_sum_tree_matches_brute_force_cumulative_sums(tree_and_updates, fractions):
    capacity, batches = tree_and_updates
    tree, values = SumTree(capacity), np.zeros(capacity)
    for batch in batches:
        leaves, new = (np.array(column) for column in zip(*batch, strict=True))
        tree.update(leaves, new)
        for leaf, value in batch:  # sequential assignment: a repeated leaf keeps its last value
            values[leaf] = value
    np.testing.assert_array_equal(tree[np.arange(capacity)], values)
    assert tree.total == values.sum()
    if values.sum() == 0:
        return
    cumulative = np.cumsum(values)
    # prefix sums on the exact grid too (multiples of 1/16), including every boundary and past the total
    prefix = np.concatenate([np.round(np.array(fractions) * values.sum() * 16) / 16, cumulative[:-1], [0.0]])
    expected = np.minimum(np.searchsorted(cumulative, prefix, side="right"), np.flatnonzero(values)[-1])
    np.testing.assert_array_equal(tree.find_prefixsum(prefix), expected)
    assert (values[tree.find_prefixsum(prefix)] > 0).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e6) | st.just(0.0), min_size=1, max_size=300), st.lists(st.floats(0, 1), max_size=50))
def test_sum_tree_search_lands_in_the_right_interval_for_any_floats(values, fractions):
    values = np.array(values)
    tree = SumTree(len(values))
    tree.update(np.arange(len(values)), values)
    assert tree.total == pytest.approx(values.sum(), rel=1e-12, abs=1e-300)
    if tree.total == 0:
        with pytest.raises(ValueError, match="empty"):
            tree.find_prefixsum(np.zeros(1))
        return
    prefix = np.array(fractions) * tree.total
    leaves = tree.find_prefixsum(prefix)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    tolerance = 1e-9 * values.sum()
    assert (values[leaves] > 0).all()
    assert (cumulative[leaves] <= prefix + tolerance).all() and (prefix <= cumulative[leaves + 1] + tolerance).all()


def test_sum_tree_rejects_bad_input():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)
    with pytest.raises(ValueError, match="leaves"):
        tree.update(np.array([4]), 1.0)
    with pytest.raises(ValueError, match="leaves"):
        tree.update(np.array([-1]), 1.0)
    with pytest.raises(ValueError, match="leaves"):
        tree.update(np.array([0.5]), 1.0)
    with pytest.raises(ValueError, match="values"):
        tree.update(np.array([0]), -1.0)
    with pytest.raises(ValueError, match="values"):
        tree.update(np.array([0]), np.nan)
    tree.update(np.array([1]), 1.0)
    with pytest.raises(ValueError, match="prefix_sums"):
        tree.find_prefixsum(np.array([-0.5]))
    tree.reset()
    assert tree.total == 0.0


# --- sampling ---------------------------------------------------------------------------------------------------


def test_sampling_frequencies_are_proportional_to_priorities():
    set_random_seed(0)
    alpha, min_priority = 0.6, 1e-2
    buffer = _filled(buffer_size=24, n_envs=2, alpha=alpha, min_priority=min_priority)
    td_errors = np.linspace(-3.0, 3.0, 24)  # signed: the priority uses |δ|
    buffer.update_priorities(np.arange(24), td_errors)
    expected = (np.abs(td_errors) + min_priority) ** alpha
    np.testing.assert_allclose(buffer.priorities().reshape(-1), expected)
    counts = _counts(buffer, n_batches=400, batch_size=128)
    # Stratified draws are less dispersed than multinomial ones, so the chi-square test is conservative.
    p_value = stats.chisquare(counts, counts.sum() * expected / expected.sum()).pvalue
    assert p_value > 1e-3, (counts, p_value)


def test_alpha_zero_samples_uniformly_whatever_the_td_errors():
    set_random_seed(1)
    buffer = _filled(buffer_size=20, n_envs=2, alpha=0.0)
    buffer.update_priorities(np.arange(20), np.geomspace(1e-3, 1e3, 20))
    np.testing.assert_array_equal(buffer.priorities(), 1.0)
    counts = _counts(buffer, n_batches=200, batch_size=100)
    assert stats.chisquare(counts).pvalue > 1e-3, counts
    assert (buffer.sample(32).weights == 1).all()


def test_importance_weights_match_a_hand_computation():
    # alpha = 1 and a tiny epsilon: priorities 1, 2, 3, 4; N = 4, total 10, P = 0.1, 0.2, 0.3, 0.4.
    buffer = _filled(buffer_size=4, alpha=1.0, beta=0.5, final_beta=1.0, min_priority=1e-12)
    buffer.update_priorities(np.arange(4), np.array([1.0, -2.0, 3.0, -4.0]))
    # (N P)^-beta for beta = 0.5: 0.4^-0.5, 0.8^-0.5, 1.2^-0.5, 1.6^-0.5
    by_hand = np.array([1.5811388, 1.1180340, 0.9128709, 0.7905694])
    for _ in range(20):
        draw = buffer.sample_indices(4)
        expected = by_hand[draw.leaf_nodes_indices] / by_hand[draw.leaf_nodes_indices].max()
        np.testing.assert_allclose(draw.weights, expected, rtol=1e-6)
    # beta halfway to final_beta = 1: w = 1 / (N P) normalised by the batch's largest
    buffer.update_priorities(np.array([0]), np.array([1.0]), progress_remaining=0.5)
    assert buffer.beta == pytest.approx(0.75)
    buffer.set_progress_remaining(0.0)
    assert buffer.beta == 1.0
    draw = buffer.sample_indices(4)
    by_hand = np.array([2.5, 1.25, 1 / 1.2, 1 / 1.6])
    np.testing.assert_allclose(draw.weights, by_hand[draw.leaf_nodes_indices] / by_hand[draw.leaf_nodes_indices].max(),
                               rtol=1e-6)
    samples = buffer.sample(4)
    assert samples.weights.shape == (4, 1) and samples.weights.max() == 1.0


def test_new_transitions_get_the_largest_priority_seen_so_far():
    buffer = _filled(buffer_size=6, steps=3, alpha=0.5, min_priority=1e-6)
    np.testing.assert_array_equal(buffer.priorities(), 1.0)  # before any update: 1, as in the paper
    buffer.update_priorities(np.array([0, 1]), np.array([8.0, 0.5]))
    top = (8.0 + 1e-6) ** 0.5
    assert buffer.max_priority == pytest.approx(top)
    buffer.update_priorities(np.array([0]), np.array([0.0]))  # the max is over every priority ever set
    _add(buffer, 3)
    assert buffer.priorities()[3, 0] == pytest.approx(top)
    buffer.reset()
    assert buffer.size() == 0 and buffer.tree.total == 0.0 and buffer.max_priority == 1.0


def test_wrapped_buffer_overwrites_priorities_and_samples_current_rows():
    set_random_seed(2)
    buffer = _filled(buffer_size=8, n_envs=2, steps=6, alpha=1.0, min_priority=1e-6)  # 8 leaves, pos back at 2
    assert buffer.full and buffer.pos == 2
    buffer.update_priorities(np.arange(8), np.full(8, 1e-3))
    _add(buffer, 6)  # overwrites row 2 (step 2): both its cells take the max priority again
    np.testing.assert_allclose(buffer.priorities()[2], 1.0)
    np.testing.assert_allclose(buffer.priorities()[[0, 1, 3]], 1e-3 + 1e-6)
    samples = buffer.sample(64)
    rows, envs = np.divmod(samples.leaf_nodes_indices, 2)
    # rows hold steps 4, 5, 6, 3; observations are [step, env, 0]
    np.testing.assert_array_equal(samples.observations[:, 0].numpy(), np.array([4, 5, 6, 3])[rows])
    np.testing.assert_array_equal(samples.observations[:, 1].numpy(), envs)
    assert (rows == 2).mean() > 0.9  # nearly all the mass sits on the fresh row
    buffer.update_priorities(samples.leaf_nodes_indices, th.ones(64, 1))  # torch [B, 1] accepted
    with pytest.raises(ValueError, match="leaf_nodes_indices"):
        buffer.update_priorities(np.array([8]), np.array([1.0]))


def test_each_env_cell_is_a_leaf():
    set_random_seed(3)
    buffer = _filled(buffer_size=15, n_envs=3, alpha=1.0, min_priority=1e-6)
    assert buffer.buffer_size == 5 and len(buffer.tree) == 15
    td_errors = np.full((5, 3), 1e-4)
    td_errors[:, 1] = 10.0  # env 1 holds nearly all the priority mass
    buffer.update_priorities(np.arange(15), td_errors.reshape(-1))
    draw = buffer.sample_indices(256)
    np.testing.assert_array_equal(draw.leaf_nodes_indices, draw.batch_inds * 3 + draw.env_inds)
    assert (draw.env_inds == 1).mean() > 0.99
    samples = buffer._get_prioritized_samples(draw)
    np.testing.assert_array_equal(samples.observations[:, :2].numpy(), np.stack([draw.batch_inds, draw.env_inds], 1))
    np.testing.assert_array_equal(samples.rewards[:, 0].numpy(), draw.batch_inds)


def test_sampling_is_reproduced_by_sb3_seeding():
    buffer = _filled(buffer_size=40, n_envs=2, alpha=0.7)
    buffer.update_priorities(np.arange(40), np.random.default_rng(0).normal(size=40))
    set_random_seed(7)
    first = buffer.sample_indices(32).leaf_nodes_indices
    set_random_seed(7)
    np.testing.assert_array_equal(buffer.sample_indices(32).leaf_nodes_indices, first)


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"alpha": -0.1}, "alpha"), ({"alpha": np.nan}, "alpha"),
    ({"beta": -0.1}, "beta"), ({"beta": 1.5}, "beta"), ({"final_beta": 2.0}, "final_beta"),
    ({"min_priority": 0.0}, "min_priority"), ({"min_priority": -1e-3}, "min_priority"),
    ({"min_priority": np.nan}, "min_priority"), ({"optimize_memory_usage": True}, "optimize_memory_usage"),
])
def test_bad_constructor_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _buffer(**kwargs)


def test_bad_updates_and_samples_name_their_argument():
    buffer = _buffer(buffer_size=8)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4)
    for step in range(3):
        _add(buffer, step)
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0)
    for td_errors in ([np.nan], [np.inf]):
        with pytest.raises(ValueError, match="td_errors"):
            buffer.update_priorities(np.array([0]), np.array(td_errors))
    with pytest.raises(ValueError, match="td_errors"):
        buffer.update_priorities(np.array([0, 1]), np.array([1.0]))
    for leaves in ([3], [-1], [0.0]):  # 3 cells stored: leaf 3 has no transition yet
        with pytest.raises(ValueError, match="leaf_nodes_indices"):
            buffer.update_priorities(np.array(leaves), np.array([1.0]))
    with pytest.raises(ValueError, match="progress_remaining"):
        buffer.update_priorities(np.array([0]), np.array([1.0]), progress_remaining=1.5)
    np.testing.assert_array_equal(buffer.priorities(), 1.0)  # nothing was written by the rejected calls


# --- extending and using it -------------------------------------------------------------------------------------


class FollowSamples(NamedTuple):
    observations: th.Tensor
    rewards: th.Tensor
    follow: th.Tensor
    weights: th.Tensor
    leaf_nodes_indices: np.ndarray


class FollowBuffer(PrioritizedReplayBuffer):
    """A subclass with one more field, as the multi-agent buffer adds ``follow``: the documented recipe."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.follow = np.zeros((self.buffer_size, self.n_envs, 2), dtype=np.float32)

    def add_with_follow(self, follow: np.ndarray, step: int) -> None:
        self.follow[self.pos] = follow
        _add(self, step)

    def _get_prioritized_samples(self, indices: PrioritizedIndices, env=None) -> FollowSamples:
        cells = (indices.batch_inds, indices.env_inds)
        data = (self.observations[cells], self.rewards[cells], self.follow[cells], indices.weights)
        return FollowSamples(*map(self.to_torch, data), indices.leaf_nodes_indices)


def test_a_subclass_adds_fields_through_get_prioritized_samples():
    buffer = FollowBuffer(6, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=2, alpha=1.0)
    for step in range(3):
        buffer.add_with_follow(np.array([[step, 0], [step, 1]]), step)
    samples = buffer.sample(16)
    assert isinstance(samples, FollowSamples)
    np.testing.assert_array_equal(samples.follow[:, 0], samples.observations[:, 0])  # same cell as the obs
    np.testing.assert_array_equal(samples.follow[:, 1], samples.observations[:, 1])
    buffer.update_priorities(samples.leaf_nodes_indices, np.ones(16))


def test_sb3_dqn_trains_with_it_unchanged_and_the_td_loop_updates_priorities():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN("MlpPolicy", env, replay_buffer_class=PrioritizedReplayBuffer, replay_buffer_kwargs=PAPER_PER_KWARGS,
                buffer_size=1000, learning_starts=100, batch_size=32, train_freq=4, policy_kwargs={"net_arch": [16]},
                seed=0, device="cpu")
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.alpha == 0.4 and buffer.beta == 0.0
    assert buffer.size() == 200 and buffer.n_envs == 2
    # what the principal's learner will do after each gradient step
    samples = buffer.sample(32)
    assert isinstance(samples, PrioritizedReplayBufferSamples)
    with th.no_grad():
        target = samples.rewards + 0.99 * (1 - samples.dones) * model.q_net_target(samples.next_observations).max(1,
                                                                                                  keepdim=True)[0]
        current = model.q_net(samples.observations).gather(1, samples.actions.long())
    buffer.update_priorities(samples.leaf_nodes_indices, target - current, model._current_progress_remaining)
    np.testing.assert_allclose(buffer.tree[samples.leaf_nodes_indices],
                               ((target - current).abs().reshape(-1).numpy().astype(np.float64) + 1e-7) ** 0.4,
                               rtol=1e-5)
