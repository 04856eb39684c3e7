"""Every public boundary answers bad input with an error that names the argument: no silent accepts, no obscure
crashes (issue 16's audit, as property tests over the kinds of bad input: types, NaN/inf, signs, bounds, shapes)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree, two_state_example
from sb3_contracts.envs.checks import as_real_array, check_int, check_real
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.envs.coin_game.optimum import optimal_welfare

from sb3_contracts import AgentEnv, ExactBestResponder, PrincipalEnv, PrincipalVecEnv, minimal_contract, nudge_margin
from sb3_contracts.contracts import check_contract, minimal_contracts, minimal_contracts_torch
from sb3_contracts.game import ContractCoinGameEnv, ContractCoinGameVecEnv
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv
from sb3_contracts.solvers import best_response, meta_algorithm, principal_best_response, solve_spe, value_iteration

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


# -- the batched contract paths: outcome tables, targets ------------------------------------------------------------

DEFECTS = {"nan": "outcome_probs must be finite", "inf": "outcome_probs must be finite",
           "negative": "outcome_probs must be non-negative", "long": "outcome_probs rows must sum to 1",
           "short": "outcome_probs rows must sum to 1"}


@st.composite
def defective_tables(draw):
    """A two-action outcome table ``[B, 2, O]`` with one defect in one place, and the defect's name."""
    batch, n_outcomes = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    probs = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).dirichlet(np.ones(n_outcomes), size=(batch, 2))
    row = draw(st.integers(0, batch - 1)), draw(st.integers(0, 1))
    where = (*row, draw(st.integers(0, n_outcomes - 1)))
    defect = draw(st.sampled_from(sorted(DEFECTS)))
    if defect == "nan":
        probs[where] = np.nan
    elif defect == "inf":
        probs[where] = draw(st.sampled_from([np.inf, -np.inf]))
    elif defect == "negative":
        probs[where] = -draw(st.floats(1e-6, 1.0))
    elif defect == "long":
        probs[where] += draw(st.floats(1e-4, 10.0))
    else:
        probs[row] *= draw(st.floats(0.0, 0.999))
    return probs, defect


@given(defective_tables(), st.sampled_from([torch.float32, torch.float64]))
@settings(max_examples=60, deadline=None)
def test_the_batched_contract_paths_refuse_a_table_that_is_no_distribution(table, dtype):
    probs, defect = table
    agent_q, target = np.zeros(probs.shape[:2]), np.zeros(probs.shape[0], dtype=np.int64)
    with pytest.raises(ValueError, match=DEFECTS[defect]):
        minimal_contracts_torch(torch.from_numpy(probs).to(dtype), torch.from_numpy(agent_q).to(dtype),
                                torch.from_numpy(target))
    with pytest.raises(ValueError, match=DEFECTS[defect]):
        minimal_contracts(probs, agent_q, target)


@given(st.one_of(st.integers(-10, 10).filter(lambda t: t not in (0, 1)), st.floats(-1, 3), st.booleans()))
@settings(max_examples=40, deadline=None)
def test_every_contract_path_names_a_target_that_is_no_action(target):
    probs, agent_q = np.array([[0.9, 0.1], [0.2, 0.8]]), np.zeros(2)
    wrong_kind = not isinstance(target, int) or isinstance(target, bool)
    match = "target must hold integer actions" if wrong_kind else r"target actions must lie in \[0, 1\]"
    for observed in (False, True):
        with pytest.raises(ValueError, match=match):
            minimal_contracts_torch(torch.from_numpy(probs), torch.from_numpy(agent_q), torch.tensor([target]),
                                    observed_action=observed)
    with pytest.raises(ValueError, match=match):
        minimal_contracts(probs, agent_q, np.array([target]))
    with pytest.raises((TypeError, ValueError), match="target must be"):
        minimal_contract(probs, agent_q, target)


@given(st.sampled_from([(0, 2), (2, 0), (0, 0), (3, 0, 2)]))
def test_an_empty_outcome_table_is_named_not_its_empty_target_range(shape):
    probs, agent_q = np.zeros(shape), np.zeros(shape[:-1])
    match = r"outcome_probs must be \[\.\.\., A, O\] with at least one action and one outcome"
    with pytest.raises(ValueError, match=match):
        minimal_contracts(probs, agent_q, np.zeros(shape[:-2], dtype=np.int64))
    with pytest.raises(ValueError, match=match):
        minimal_contracts_torch(torch.from_numpy(probs), torch.from_numpy(agent_q),
                                torch.zeros(shape[:-2], dtype=torch.long))
    if len(shape) == 2:
        with pytest.raises(ValueError, match=match):
            minimal_contract(probs, agent_q, 0)


# -- what is no MDP, and seeds NumPy refuses --------------------------------------------------------------------------

NOT_MDPS = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
#: Every public entry that takes an MDP first.
MDP_ENTRIES = {
    "solve_spe": solve_spe,
    "value_iteration": value_iteration,
    "meta_algorithm": meta_algorithm,
    "best_response": lambda mdp: best_response(mdp, np.zeros((3, 2))),
    "principal_best_response": lambda mdp: principal_best_response(mdp, np.zeros((3, 2))),
    "ExactBestResponder": ExactBestResponder,
    "PrincipalEnv": PrincipalEnv,
    "AgentEnv": AgentEnv,
    "PrincipalVecEnv": PrincipalVecEnv,
    "PrincipalVecEnv with a callable agent": lambda mdp: PrincipalVecEnv(mdp, agent=lambda s, c: 0, b_max=1.0),
}


@given(NOT_MDPS)
@settings(max_examples=25, deadline=None)
def test_every_solver_and_view_names_an_argument_that_is_no_mdp(value):
    for entry in MDP_ENTRIES.values():
        with pytest.raises(TypeError, match=f"mdp must be a PrincipalAgentMDP, got {type(value).__name__}"):
            entry(value)


@given(st.integers(max_value=-1))
@settings(max_examples=25, deadline=None)
def test_a_negative_seed_is_named(seed):
    match = f"seed must be >= 0, got {seed}"
    tree = random_binary_tree(2, 0)
    with pytest.raises(ValueError, match=match):
        random_binary_tree(2, seed)
    with pytest.raises(ValueError, match=match):
        CoinGameBatch(seed=seed)
    with pytest.raises(ValueError, match=match):
        CoinGameBatch().reset(seed=seed)
    with pytest.raises(ValueError, match=match):
        PrincipalVecEnv(tree, n_envs=2, seed=seed)
    for vec_env in (PrincipalVecEnv(tree, n_envs=1), CoinGameVecEnv(n_games=1)):
        vec_env.seed(seed)  # SB3 keeps the seed for the next reset
        with pytest.raises(ValueError, match=match):
            vec_env.reset()
