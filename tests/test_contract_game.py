"""The contract layer over any PettingZoo ParallelEnv (issue 24): the principal's view, the batched VecEnv, the
agents' view, Escape Room, and a prisoner's dilemma written here that the learner solves with nothing game-specific."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from pettingzoo import ParallelEnv
from pettingzoo.test import parallel_api_test
from pettingzoo.utils.conversions import aec_to_parallel
from sb3_contracts.envs.escape_room import EscapeRoomBatch, EscapeRoomConfig, escape_room_v0

import sb3_contracts
from sb3_contracts import (
    ContractAgentsParallelEnv,
    ContractGameAgentsVecEnv,
    ContractGameEnv,
    ContractGameVecEnv,
    MultiAgentContractDQN,
)
from sb3_contracts.game.parallel_games import ParallelEnvBatch, make_game_batch

#: Row player's and column player's payoffs; cooperate = 0, defect = 1. Defecting gains 1 whatever the other does.
PD_PAYOFFS = {(0, 0): (2.0, 2.0), (0, 1): (-1.0, 3.0), (1, 0): (3.0, -1.0), (1, 1): (0.0, 0.0)}


class PrisonersDilemma(ParallelEnv):
    """A one-shot prisoner's dilemma; the observation is a constant ``Discrete(1)`` (flattened: one-hot ``[1]``)."""

    metadata = {"name": "prisoners_dilemma_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["row", "column"]
        self.agents = []

    def observation_space(self, agent):
        return spaces.Discrete(1)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = self.possible_agents[:]
        return dict.fromkeys(self.agents, 0), {agent: {} for agent in self.agents}

    def step(self, actions):
        rewards = dict(zip(self.agents, PD_PAYOFFS[(int(actions["row"]), int(actions["column"]))], strict=True))
        agents, self.agents = self.agents, []
        return (dict.fromkeys(agents, 0), rewards, dict.fromkeys(agents, True), dict.fromkeys(agents, False),
                {agent: {} for agent in agents})


def room(n_agents=2, min_at_lever=1):
    return escape_room_v0.parallel_env(n_agents=n_agents, min_at_lever=min_at_lever)


def generic_room(n_agents=2, min_at_lever=1):
    """Escape Room through PettingZoo's AEC round trip: a ParallelEnv without the batched fast path."""
    return aec_to_parallel(escape_room_v0.raw_env(n_agents=n_agents, min_at_lever=min_at_lever))


# -- Escape Room ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_agents", "min_at_lever", "optimum"), [(2, 1, 9.0), (3, 2, 8.0)])
def test_escape_room_optimum_is_one_step_of_levers_and_door(n_agents, min_at_lever, optimum):
    env = room(n_agents, min_at_lever)
    env.reset()
    actions = {agent: 0 if i < min_at_lever else 2 for i, agent in enumerate(env.possible_agents)}
    _, rewards, terminations, truncations, infos = env.step(actions)
    assert sum(rewards.values()) == optimum == EscapeRoomConfig(n_agents, min_at_lever).optimal_welfare
    assert all(terminations.values()) and not any(truncations.values()) and env.agents == []
    assert infos["agent_0"]["episode_welfare"] == optimum


def test_escape_room_rules():
    core = EscapeRoomBatch(4, n_agents=3, min_at_lever=2)
    # one on the lever is not enough for M = 2: the door stays shut, moving costs 1, staying costs nothing
    rewards, terminated, truncated = core.step(np.array([[0, 1, 2], [0, 0, 2], [1, 1, 1], [0, 0, 1]]))
    np.testing.assert_array_equal(rewards, [[-1, 0, -1], [-1, -1, 10], [0, 0, 0], [-1, -1, 0]])
    np.testing.assert_array_equal(terminated, [False, True, False, False])  # open door and someone at it
    # from the lever, staying there still counts for the door, at no cost; the door pays even from the door
    rewards, terminated, _ = core.step(np.array([[0, 1, 2], [1, 1, 1], [1, 1, 1], [0, 0, 2]]))
    np.testing.assert_array_equal(rewards[3], [0, 0, 10])
    assert terminated[3] and not terminated[0]
    # staying put for the step limit: the 5th step terminates the episode (LIO's done), nobody earns anything
    env = room()
    env.reset()
    for step in range(5):
        _, rewards, terminations, truncations, _ = env.step(dict.fromkeys(env.possible_agents, 1))
        assert sum(rewards.values()) == 0 and not any(truncations.values())
        assert all(terminations.values()) == (step == 4)


def test_escape_room_step_limit_is_terminal_for_the_learners():
    """
    The step limit is part of the game and nobody observes the clock, so no view may mark it as a time limit
    (``TimeLimit.truncated``): SB3 learners would bootstrap through it and value an agent paid each step on the lever
    over an endless game (docs/results/escape_room.md, "the validation's door-goer").
    """
    core = EscapeRoomBatch(1)
    for _ in range(5):
        _, terminated, truncated = core.step(np.array([[1, 1]]))
    assert terminated[0] and not truncated[0]
    stay = lambda rows, contracts, games: np.ones((games.n_games, games.n_agents), dtype=np.int64)  # noqa: E731
    agents = ContractGameAgentsVecEnv(room, n_envs=2, principal=np.array([[2.0, 0, 0], [0, 0, 0.25]]),
                                      b_max=2.0, agent_ids=True, seed=0)
    principal = ContractGameVecEnv(room, n_envs=2, seed=0, agents=stay, agent_ids=True)
    for view, action in ((agents, np.ones(4, dtype=np.int64)), (principal, np.zeros((2, 2, 3), dtype=np.float32))):
        view.reset()
        for step in range(5):
            _, _, dones, infos = view.step(action)
            assert dones.all() == (step == 4) and dones.any() == (step == 4)
        assert not any(info["TimeLimit.truncated"] for info in infos)


def test_escape_room_observations_list_self_first():
    core = EscapeRoomBatch(1, n_agents=3, min_at_lever=2)
    core.step(np.array([[0, 1, 2]]))
    obs = core.observe()[0]
    np.testing.assert_array_equal(obs[0], [1, 0, 0, 0, 1, 0, 0, 0, 1])  # own lever, then start, door
    np.testing.assert_array_equal(obs[2], [0, 0, 1, 1, 0, 0, 0, 1, 0])  # own door, then lever, start


@pytest.mark.parametrize("kwargs", [{}, {"n_agents": 3, "min_at_lever": 2}])
def test_escape_room_passes_the_parallel_api_test(kwargs):
    parallel_api_test(escape_room_v0.parallel_env(**kwargs), num_cycles=50)


@pytest.mark.parametrize(("kwargs", "name"), [({"n_agents": 1}, "n_agents"), ({"min_at_lever": 2}, "min_at_lever"),
                                              ({"min_at_lever": 0}, "min_at_lever"), ({"max_steps": 0}, "max_steps"),
                                              ({"n_agents": 2.0}, "n_agents")])
def test_escape_room_names_bad_rules(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        escape_room_v0.parallel_env(**kwargs)


# -- the principal's view ---------------------------------------------------------------------------------------


def agent_0_return(pull_after_start, lever_pay, plan=None):
    """
    Agent 0's return (reward plus payments) in Escape Room N = 2 / M = 1 under a scripted principal that asks
    agent 0 to pull in the first state and ``pull_after_start`` in every later one (paying ``lever_pay`` on its
    lever and 0.01 on the other's door, nudge 0.25, b_max 2 or the lever payment), agent 1 following, agent 0
    playing ``plan`` (actions, the last repeated) or following (None).
    """
    steps = []

    def responder(rows, contracts, games):
        recommended = contracts.argmax(axis=-1)[0]
        own = recommended[0] if plan is None else plan[min(len(steps), len(plan) - 1)]
        steps.append(own)
        return np.array([[own, recommended[1]]])

    env = ContractGameEnv(room, agents=responder, agent_ids=True, b_max=max(2.0, lever_pay), nudge=0.25)
    env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        puller = 0 if (env.games.core.positions[0] == 1).all() else pull_after_start
        contracts = np.zeros((2, 3), dtype=np.float32)
        contracts[puller, 0], contracts[1 - puller, 2] = lever_pay, 0.01
        _, _, terminated, truncated, info = env.step(contracts)
        total += float(info["agent_rewards"][0] + info["payments"][0])
        done = terminated or truncated
    return total


def test_escape_room_two_agents_lever_payment_depends_on_who_pulls_after_a_deviation():
    plans = [list(plan) for n in range(1, 6) for plan in itertools.product(range(3), repeat=n)]
    # asked again to pull after it deviates, the lever agent is implemented with 1 <= b_max: following (-1 + 1 +
    # 0.25) earns at least as much as any of its 363 plans (staying throughout earns 0)
    assert agent_0_return(0, 1.0) == pytest.approx(0.25)
    assert max(agent_0_return(0, 1.0, plan) for plan in plans) == pytest.approx(0.25)
    # if the partner is asked to pull after a deviation, staying then walking out earns the door: 10 + 0.25 + 0.01,
    # more than following (-1 + 2 + 0.25) at b_max; it takes a lever payment above 11 to implement
    assert agent_0_return(1, 2.0, [1, 2]) == pytest.approx(10.26)
    assert agent_0_return(1, 2.0) == pytest.approx(1.25)
    assert agent_0_return(1, 11.0) < agent_0_return(1, 11.0, [1, 2]) < agent_0_return(1, 11.1)


def test_the_principal_view_passes_gymnasiums_checker_on_any_game():
    for env in (ContractGameEnv(PrisonersDilemma), ContractGameEnv(generic_room, agent_ids=True),
                gym.make("ContractEscapeRoom3-v0").unwrapped):
        check_env(env, skip_render_check=True)


def test_the_principal_view_settles_a_step():
    env = ContractGameEnv(PrisonersDilemma, alpha=0.5, b_max=2.0, nudge=0.1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 1) and env.action_space.shape == (2, 2)
    # "follow" agents take the recommendations: both cooperate, each paid 1.5 plus the nudge
    _, reward, terminated, truncated, info = env.step(np.array([[1.5, 0.0], [1.5, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(info["payments"], [1.6, 1.6])
    np.testing.assert_array_equal(info["followed"], [1, 1])
    assert info["welfare"] == 4.0 and reward == pytest.approx(4.0 / 0.5 - 3.2)
    assert terminated and not truncated and info["episode_welfare"] == 4.0


def test_the_principal_view_names_bad_input():
    with pytest.raises(TypeError, match="game"):
        ContractGameEnv(42)
    with pytest.raises(ValueError, match="game"):
        ContractGameEnv("no_colon")
    with pytest.raises(ValueError, match="alpha"):
        ContractGameEnv(PrisonersDilemma, alpha=0.0)
    with pytest.raises(ValueError, match="b_max"):
        ContractGameEnv(PrisonersDilemma, b_max=-1.0)
    with pytest.raises(ValueError, match="nudge"):
        ContractGameEnv(PrisonersDilemma, nudge=-0.1)
    with pytest.raises(ValueError, match="agents"):
        ContractGameEnv(PrisonersDilemma, agents="selfish")

    class Mixed(PrisonersDilemma):
        def action_space(self, agent):
            return spaces.Discrete(2 if agent == "row" else 3)

    with pytest.raises(ValueError, match="game's agents must share one Discrete action space"):
        ContractGameEnv(Mixed)
    env = ContractGameEnv(PrisonersDilemma, b_max=2.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.full((2, 2), 3.0))
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros((3, 2)))


def test_the_fast_path_and_the_generic_loop_play_alike():
    fast, loop = make_game_batch(room, 6, seed=0, game_kwargs={"n_agents": 3, "min_at_lever": 2}), \
        make_game_batch(generic_room, 6, seed=0, game_kwargs={"n_agents": 3, "min_at_lever": 2})
    assert isinstance(fast, EscapeRoomBatch) and isinstance(loop, ParallelEnvBatch)
    fast.reset()
    loop.reset()
    rng = np.random.default_rng(0)
    for _ in range(40):
        np.testing.assert_array_equal(fast.observe(), loop.observe())
        actions = rng.integers(3, size=(6, 3))
        for a, b in zip(fast.step(actions), loop.step(actions), strict=True):
            np.testing.assert_array_equal(a, b)
        ended = fast.t >= 5  # both end alike; reset the ended ones (termination or time limit)
        ended |= np.array([loop._done[g].all() for g in range(6)])
        fast.reset(mask=ended)
        loop.reset(mask=ended)


def test_the_vec_env_resets_ended_games_and_matches_the_single_view():
    vec = ContractGameVecEnv(generic_room, n_envs=3, seed=7, agents="random", agent_ids=True)
    single = ContractGameEnv(generic_room, agents="random", agent_ids=True)
    obs = vec.reset()
    np.testing.assert_array_equal(obs[0], single.reset(seed=7)[0])
    ended = 0
    zeros = np.zeros((3, 2, 3), dtype=np.float32)
    for _ in range(30):
        obs, rewards, dones, infos = vec.step(zeros)
        for game in np.flatnonzero(dones):
            info = infos[game]
            ended += 1
            assert not info["TimeLimit.truncated"]  # Escape Room's step limit terminates
            assert info["episode"]["r"] == pytest.approx(info["episode_welfare"] / 0.1)
            np.testing.assert_array_equal(obs[game, :, 3:6], [[0, 1, 0], [0, 1, 0]])  # reset: own start
    assert ended >= 6


# -- the agents' view -------------------------------------------------------------------------------------------


def test_the_agents_view_passes_the_parallel_api_test_and_pays_on_actions():
    contracts = np.array([[1.5, 0.0], [0.0, 0.0]])
    env = ContractAgentsParallelEnv(PrisonersDilemma, contracts, b_max=2.0, nudge=0.1)
    parallel_api_test(env, num_cycles=20)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["row"], [1.0, 1.6, 0.0])  # the row, then the contract with the nudge
    np.testing.assert_allclose(obs["column"], [1.0, 0.0, 0.0])  # no contract: no recommendation, no nudge
    _, rewards, terminations, _, infos = env.step({"row": 0, "column": 1})
    assert rewards == {"row": pytest.approx(-1.0 + 1.6), "column": 3.0} and all(terminations.values())
    assert infos["row"]["followed"] == 1 and infos["column"]["followed"] == -1
    with pytest.raises(ValueError, match="principal's contracts"):
        ContractAgentsParallelEnv(PrisonersDilemma, np.full((2, 2), 5.0), b_max=2.0).reset()


def test_the_agents_view_trains_with_sb3_through_supersuit():
    import supersuit as ss
    from stable_baselines3 import DQN

    env = ContractAgentsParallelEnv(room, lambda obs: np.array([[2.0, 0, 0], [0, 0, 0.5]]), b_max=2.0,
                                    agent_ids=True)
    vec_env = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), 2, num_cpus=0,
                                    base_class="stable_baselines3")
    model = DQN("MlpPolicy", vec_env, learning_starts=50).learn(300)  # SuperSuit's VecEnv has no seed()
    assert model.num_timesteps >= 300


# -- the learner on a game it knows nothing about ---------------------------------------------------------------


@pytest.mark.timeout(300)
def test_the_learned_principal_buys_cooperation_in_a_prisoners_dilemma():
    nudge = 0.1
    env = ContractGameVecEnv(PrisonersDilemma, n_envs=8, b_max=2.0, seed=0)
    model = MultiAgentContractDQN("MlpPolicy", env, learning_starts=200, target_update_interval=200, nudge=nudge,
                                  seed=0).learn(3_000)
    contracts, recommended = model.predict_with_recommendation(env.reset()[:1])
    np.testing.assert_array_equal(recommended, [[0, 0]])  # mutual cooperation
    # each is paid about what defecting would gain it (3 - 2 = 1) plus the nudge, on cooperation only
    np.testing.assert_allclose(contracts[0, :, 0], 1.0 + nudge, atol=0.15)
    np.testing.assert_array_equal(contracts[0, :, 1], 0.0)


def test_escape_room_ids_are_registered_with_a_batched_vec_env():
    assert {"ContractEscapeRoom-v0", "ContractEscapeRoom3-v0"} <= set(sb3_contracts.BATCHED_VEC_ENVS)
    model = MultiAgentContractDQN("MlpPolicy", "ContractEscapeRoom3-v0", n_envs=4, learning_starts=20, seed=0)
    assert isinstance(model.env, ContractGameVecEnv) and model.env.observation_space.shape == (3, 12)
    assert isinstance(model.env.core, EscapeRoomBatch)
    model.learn(100)
