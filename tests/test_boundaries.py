"""Every public boundary answers bad input with an error that names the argument: no silent accepts, no obscure
crashes (issue 16's audit, as property tests over the kinds of bad input: types, NaN/inf, signs, bounds, shapes)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree, two_state_example
from sb3_contracts.envs.checks import as_real_array, check_int, check_real
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.envs.coin_game.optimum import optimal_welfare

from sb3_contracts import AgentEnv, ExactBestResponder, PrincipalEnv, PrincipalVecEnv, minimal_contract, nudge_margin
from sb3_contracts.contracts import check_contract
from sb3_contracts.game import ContractCoinGameEnv, ContractCoinGameVecEnv
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv
from sb3_contracts.solvers import meta_algorithm, solve_spe, value_iteration

#: Values that are no real number at all.
NOT_NUMBERS = st.sampled_from([True, False, "0.5", "1", 1j, None, [0.5], object()])
#: Real numbers that are not finite.
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), -float("inf")])


@given(NOT_NUMBERS)
def test_a_count_or_a_number_is_never_coerced(value):
    with pytest.raises(TypeError, match="size must be"):
        check_int("size", value, 0)
    with pytest.raises(TypeError, match="rate must be a real number"):
        check_real("rate", value, 0.0)


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
def test_a_count_is_never_truncated(value):
    with pytest.raises(TypeError, match="size must be an integer"):
        check_int("size", value, None)


@given(NOT_FINITE)
def test_non_finite_numbers_and_arrays_are_named(value):
    with pytest.raises(ValueError, match="rate must be finite"):
        check_real("rate", value)
    with pytest.raises(ValueError, match="table must be finite"):
        as_real_array("table", [[0.0, value]])


@pytest.mark.parametrize("value", [[[1.0, 2.0], [3.0]], [["a", "b"]], [[1j, 2]], [[True, False]]])
def test_arrays_hold_real_numbers_only(value):
    with pytest.raises((TypeError, ValueError), match="table must"):
        as_real_array("table", value)


def _mdp(**overrides):
    arrays = dict(outcome_probs=np.full((2, 2, 2), 0.5), agent_reward=np.zeros((2, 2)),
                  principal_reward=np.ones((2, 2)), transitions=np.zeros((2, 2, 2)))
    arrays["transitions"][0, :, 1] = 1.0
    return PrincipalAgentMDP(**{**arrays, **overrides})


@given(st.one_of(NOT_NUMBERS, NOT_FINITE, st.floats(-10, -0.01), st.floats(1.01, 10)))
@settings(max_examples=30)
def test_the_mdp_names_a_bad_gamma(gamma):
    with pytest.raises((TypeError, ValueError), match="gamma"):
        _mdp(gamma=gamma)


@pytest.mark.parametrize(("name", "value"), [
    ("outcome_probs", [[[0.5, 0.5], [0.5]], [[0.5, 0.5], [0.5, 0.5]]]),
    ("agent_reward", [["0", "1"], ["0", "1"]]),
    ("principal_reward", np.full((2, 2), 1j)),
    ("initial_state", True),
    ("initial_state", 0.0),
])
def test_the_mdp_names_bad_arrays_and_indices(name, value):
    with pytest.raises((TypeError, ValueError), match=name):
        _mdp(**{name: value})


@pytest.mark.parametrize(("depth", "seed", "match"), [(True, 0, "depth"), (2.5, 0, "depth"), (0, 0, "depth"),
                                                      (3, -1, "seed"), (3, 1.5, "seed")])
def test_random_trees_take_exact_integers(depth, seed, match):
    with pytest.raises((TypeError, ValueError), match=match):
        random_binary_tree(depth, seed)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target": True}, "target must be an integer"),
    ({"target": 2}, "target must be in"),
    ({"agent_q": ["0", "1"]}, "agent_q must hold real numbers"),
    ({"margin": "0.1"}, "margin must be a real number"),
    ({"margin": -0.1}, "margin must be >= 0"),
])
def test_minimal_contract_names_bad_input(kwargs, match):
    arguments = {"outcome_probs": np.eye(2), "agent_q": np.zeros(2), "target": 1, **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        minimal_contract(**arguments)


@pytest.mark.parametrize(("contract", "match"), [
    (np.array([0.5 + 1j, 0.0]), "must hold real numbers"), (np.array(["0.5", "0"]), "must hold real numbers"),
    (np.array([True, False]), "must hold real numbers"), (np.array([np.nan, 0.0]), "finite"),
    (np.array([-1.0, 0.0]), "non-negative"), (np.array([0.1]), "shape"), (np.array([5.0, 0.0]), "b_max"),
])
def test_contracts_are_never_coerced(contract, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_contract(contract, (2,), 2.0, "offer")


def test_nudge_margin_names_its_factor():
    with pytest.raises(ValueError, match="factor must be >= 0"):
        nudge_margin(1.0, factor=-1)


def test_solvers_name_their_limits_and_the_exact_agent_checks_its_call():
    cyclic = two_state_example(gamma=0.9)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        value_iteration(cyclic, max_iter=0)
    with pytest.raises(ValueError, match="max_rounds must be >= 1"):
        meta_algorithm(random_binary_tree(2, 0), max_rounds=0)
    agent = ExactBestResponder(random_binary_tree(2, 0))
    with pytest.raises(ValueError, match="state must be in"):
        agent(-1, np.zeros(2))
    with pytest.raises(ValueError, match="contract must be finite"):
        agent(0, np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="non-negative"):
        agent(0, np.array([-1.0, 0.0]))
    assert agent(0, solve_spe(random_binary_tree(2, 0)).contracts[0]) in (0, 1)


def test_the_views_check_actions_counts_and_endless_episodes():
    tree = random_binary_tree(2, 0)
    env = AgentEnv(tree)
    env.reset(seed=0)
    for action in (0.404, "1", True, 2):
        with pytest.raises(ValueError, match="action must be 1 integer"):
            env.step(action)
    with pytest.raises(TypeError, match="n_envs must be an integer"):
        PrincipalVecEnv(tree, n_envs=True)
    with pytest.raises(ValueError, match="cycle.*max_episode_steps"):
        PrincipalEnv(two_state_example(gamma=0.9))
    with pytest.raises(ValueError, match="max_episode_steps must be >= 1"):
        PrincipalEnv(tree, max_episode_steps=0)
    wrong_agent = PrincipalEnv(tree, agent=lambda state, contract: 0.7)
    wrong_agent.reset(seed=0)
    with pytest.raises(ValueError, match="the embedded agent's actions must be 1 integer"):
        wrong_agent.step(np.zeros(2, dtype=np.float32))


def test_the_coin_game_checks_sizes_types_and_action_counts():
    with pytest.raises(ValueError, match="grid_size=1000000 need .* GiB"):
        CoinGameBatch(grid_size=10**6)
    with pytest.raises(ValueError, match="game must be in"):
        CoinGameBatch(n_games=2).render_ansi(-1)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        ContractCoinGameEnv(alpha="0.1")
    with pytest.raises(ValueError, match="b_max must be finite"):
        ContractCoinGameEnv(b_max=float("nan"))
    with pytest.raises(TypeError, match="follow_price must be a real number"):
        ContractCoinGameEnv(follow_price=[0.1])
    slots = CoinGameVecEnv(n_games=2)
    slots.reset()
    with pytest.raises(ValueError, match="one move per slot"):
        slots.step(np.zeros(3, dtype=np.int64))
    principal = ContractCoinGameVecEnv(2)
    principal.reset()
    with pytest.raises(ValueError, match="actions must have shape"):
        principal.step(np.zeros((3, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="meant for the paper's grids"):
        optimal_welfare(grid_size=12, max_steps=3)
