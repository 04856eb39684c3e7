import numpy as np
import pytest
import scipy.sparse as sp
from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree, transitions_from_next_states, two_state_example


def _tiny(**overrides):
    args = {
        "outcome_probs": np.array([[[0.9, 0.1], [0.1, 0.9]], [[1.0, 0.0], [1.0, 0.0]]]),
        "agent_reward": np.array([[0.0, -0.5], [0.0, 0.0]]),
        "principal_reward": np.array([[0.0, 1.0], [0.0, 0.0]]),
        "transitions": np.array([[[0.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]),
    }
    args.update(overrides)
    return PrincipalAgentMDP(**args)


def test_valid_mdp_and_terminal_convention():
    mdp = _tiny()
    assert (mdp.n_states, mdp.n_actions, mdp.n_outcomes) == (2, 2, 2)
    np.testing.assert_array_equal(mdp.terminal, [False, True])
    assert not mdp.observed_action
    levels = mdp.topological_levels()
    assert [list(level) for level in levels] == [[0]]


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"outcome_probs": np.full((2, 2, 2), 0.7)}, "outcome_probs rows must sum to 1"),
        ({"outcome_probs": np.full((2, 2), 0.5)}, "3-D"),
        ({"agent_reward": np.zeros((2, 3))}, r"agent_reward must have shape \[S, A\]"),
        ({"principal_reward": np.array([[0.0, np.nan], [0.0, 0.0]])}, "finite"),
        ({"transitions": np.zeros((2, 2, 3))}, r"\[S, O, S\]"),
        ({"transitions": np.array([[[0.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])}, "zero for some outcomes"),
        ({"transitions": np.array([[[0.0, 0.5], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])}, "sum to 1"),
        ({"transitions": -np.array([[[0.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])}, "non-negative"),
        ({"initial_state": 5}, "initial_state"),
        ({"gamma": 1.5}, "gamma"),
    ],
)
def test_invalid_inputs_raise_clear_errors(override, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**override)


def test_sparse_and_dense_transitions_agree():
    dense = _tiny()
    sparse = _tiny(transitions=sp.csr_matrix(dense.transitions))
    values = np.array([3.0, 7.0])
    np.testing.assert_allclose(dense.expected_next(values), sparse.expected_next(values))
    with pytest.raises(ValueError, match=r"\[S\*O, S\]"):
        _tiny(transitions=sp.csr_matrix(np.zeros((3, 2))))


def test_transitions_from_next_states_checks_range():
    with pytest.raises(ValueError, match="next_states"):
        transitions_from_next_states(np.array([[5, 1]]), n_states=2)


def test_cycle_detected():
    assert two_state_example(gamma=0.9).topological_levels() is None


def test_binary_tree_structure():
    depth = 4
    mdp = random_binary_tree(depth, seed=0)
    n_decision = 2**depth - 1
    assert mdp.n_states == 2 * n_decision + 1
    assert mdp.terminal.sum() == 2**depth and not mdp.terminal[:n_decision].any()
    values = np.arange(mdp.n_states, dtype=float)
    expected = mdp.expected_next(values)
    np.testing.assert_array_equal(expected[:n_decision, 0], 2 * np.arange(n_decision) + 1)
    np.testing.assert_array_equal(expected[:n_decision, 1], 2 * np.arange(n_decision) + 2)
    assert len(mdp.topological_levels()) == depth
    np.testing.assert_allclose(mdp.outcome_probs[0], [[0.9, 0.1], [0.1, 0.9]])
    effort_cost = -mdp.agent_reward[:n_decision, 1]
    assert np.all((effort_cost >= 0) & (effort_cost <= 1))
    assert np.all((mdp.principal_reward[:n_decision, 1] >= 0) & (mdp.principal_reward[:n_decision, 1] <= 2))
    np.testing.assert_array_equal(mdp.agent_reward[:, 0], 0.0)
    # Same seed, same tree; another seed, another tree.
    np.testing.assert_array_equal(random_binary_tree(depth, 0).agent_reward, mdp.agent_reward)
    assert not np.array_equal(random_binary_tree(depth, 1).agent_reward, mdp.agent_reward)


def test_binary_tree_rejects_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        random_binary_tree(0)


def test_two_state_example_finite_horizon():
    mdp = two_state_example(horizon=3)
    assert mdp.n_states == 7
    np.testing.assert_array_equal(mdp.terminal, [False] * 6 + [True])
    with pytest.raises(ValueError, match="gamma < 1"):
        two_state_example(gamma=1.0)
