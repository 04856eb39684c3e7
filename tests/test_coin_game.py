"""The Coin Game: PettingZoo API, pinned mechanics on hand-built states, batch/ParallelEnv identity,
scripted policies and argument checks."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test
from sb3_contracts.envs.coin_game import (
    CONTESTED,
    MOVES,
    PRESETS,
    CoinGameBatch,
    CoinGameConfig,
    coin_game_v0,
    event_rewards,
    event_tables,
    expected_event_stats,
    free_cell_table,
    kth_free_cell,
    move_table,
    parallel_env,
    raw_env,
)
from sb3_contracts.envs.coin_game.policies import (
    evaluate_policy,
    greedy_own_policy,
    greedy_selfish_policy,
    random_policy,
)

RIGHT, LEFT, DOWN, UP = 0, 1, 2, 3


def one_game(**kwargs) -> CoinGameBatch:
    # the hand-built states pin the rewards of the "all" rule, where every player on the coin collects it (the
    # default "random" rule has tests of its own below)
    return CoinGameBatch(n_games=1, seed=0, **{"contested": "all", **kwargs})


def put(core: CoinGameBatch, positions, coin, color: int, t: int = 0) -> None:
    """Hand-built state of a single game; coordinates are (y, x)."""
    core.set_state(positions=np.array([positions]), coin_pos=np.array([coin]), coin_color=np.array([color]), t=t)


def yx(core: CoinGameBatch) -> np.ndarray:
    return np.stack(np.divmod(core.positions, core.grid_size), axis=-1)


# --------------------------------------------------------------------------- PettingZoo API


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"obs_format": "flat", "reward_rule": "lola"},
        {"preset": "7x7", "n_agents": 4},
        {"grid_size": 2, "n_agents": 3, "max_steps": 5},
        {"grid_size": 2, "n_agents": 3, "contested": "random"},
    ],
)
def test_parallel_api(kwargs):
    parallel_api_test(parallel_env(**kwargs), num_cycles=60)


def test_seed_tests_and_aec_view():
    parallel_seed_test(lambda: parallel_env())
    parallel_seed_test(lambda: parallel_env(n_agents=3, obs_format="flat"))
    parallel_seed_test(lambda: parallel_env(grid_size=2, n_agents=3, contested="random"))
    api_test(raw_env(), num_cycles=30)
    seed_test(lambda: raw_env(), num_cycles=30)
    api_test(coin_game_v0.env(), num_cycles=30)


def test_the_versioned_module_wraps_the_aec_view_as_pettingzoo_does():
    aec = coin_game_v0.env(preset="3x3")
    aec.reset(seed=0)
    with pytest.raises(AssertionError, match="action"):  # PettingZoo's AssertOutOfBoundsWrapper
        aec.step(4)
    assert coin_game_v0.parallel_env().metadata["name"] == "coin_game_v0"


def test_metadata_agents_and_spaces():
    env = parallel_env(preset="7x7", n_agents=3)
    assert env.metadata["name"] == "coin_game_v0"
    assert env.possible_agents == ["player_0", "player_1", "player_2"]
    assert env.observation_space("player_1").shape == (4, 7, 7)
    assert env.action_space("player_2").n == 4
    assert parallel_env(obs_format="flat").observation_space("player_0").shape == (36,)
    obs, _ = env.reset(seed=1)
    assert all(env.observation_space(a).contains(o) for a, o in obs.items())
    assert env.state().shape == env.state_space.shape == (6, 7, 7)


def test_reset_seed_reproducible():
    env1, env2 = parallel_env(), parallel_env()
    obs1, _ = env1.reset(seed=3)
    obs2, _ = env2.reset(seed=3)
    assert all(np.array_equal(obs1[a], obs2[a]) for a in env1.agents)
    starts = {parallel_env().reset(seed=seed)[0]["player_0"].tobytes() for seed in range(20)}
    assert len(starts) > 1


def test_truncation_at_max_steps_and_episode_info():
    env = parallel_env(grid_size=3, max_steps=4)
    env.reset(seed=0)
    for step in range(1, 5):
        _, _, terms, truncs, infos = env.step(dict.fromkeys(env.agents, RIGHT))
        assert not any(terms.values())
        assert all(truncs.values()) == (step == 4)
    assert env.agents == []
    info = infos["player_0"]
    assert info["episode_length"] == 4
    assert info["pick_speed"] == pytest.approx(info["coins_picked"] / 4)
    assert info["social_welfare"] == pytest.approx(
        infos["player_0"]["episode_return"] + infos["player_1"]["episode_return"]
    )
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


# ------------------------------------------------------------------ mechanics (hand-built)


def test_action_directions_and_wrap_around():
    core = one_game(grid_size=4)
    # player 1 runs on the far corner so that it never meets the coin
    for action, start, end in [
        (RIGHT, (1, 3), (1, 0)),
        (LEFT, (1, 0), (1, 3)),
        (DOWN, (3, 2), (0, 2)),
        (UP, (0, 2), (3, 2)),
        (RIGHT, (1, 1), (1, 2)),
        (DOWN, (1, 1), (2, 1)),
    ]:
        put(core, [start, (3, 3)], coin=(2, 3), color=0)
        core.step(np.array([[action, LEFT]]))
        assert tuple(yx(core)[0, 0]) == end
        assert tuple(yx(core)[0, 1]) == (3, 2)
    assert MOVES[RIGHT] == (0, 1) and MOVES[UP] == (-1, 0)


@pytest.mark.parametrize(
    ("rule", "color", "pickers", "expected"),
    [
        ("parl", 0, (True, False), [1.0, 0.0]),  # own colour
        ("parl", 1, (True, False), [0.2, 0.0]),  # another's colour, nobody penalised
        ("parl", 0, (True, True), [1.0, 0.2]),  # both on the coin both collect
        ("lola", 0, (True, False), [1.0, 0.0]),
        ("lola", 1, (True, False), [1.0, -2.0]),  # owner penalised
        ("lola", 0, (True, True), [-1.0, 1.0]),  # owner +1 - 2, the other +1
    ],
)
def test_reward_rules_on_hand_built_states(rule, color, pickers, expected):
    core = one_game(grid_size=3, reward_rule=rule)
    # coin at (1, 1); a picker steps onto it from the left, a non-picker walks along the top row
    positions = [(1, 0) if picks else (0, 0) for picks in pickers]
    put(core, positions, coin=(1, 1), color=color)
    rewards, truncated = core.step(np.array([[RIGHT, RIGHT]]))
    np.testing.assert_allclose(rewards[0], expected, rtol=1e-6)
    assert rewards.dtype == np.float32 and not truncated[0]
    assert event_rewards(pickers, color, rule) == pytest.approx(expected)
    stats = core.episode_stats()
    np.testing.assert_array_equal(stats["coins_picked"][0], np.array(pickers, dtype=int))
    np.testing.assert_array_equal(stats["own_coins_picked"][0], [color == i and p for i, p in enumerate(pickers)])
    # the coin respawned in the same step with the next colour, on a free cell
    assert core.coin_color[0] == 1 - color
    assert core.coin_pos[0] not in core.positions[0]
    assert core.observe()[0, 0, 2:].sum() == 1  # the new coin is already visible


def test_no_pick_keeps_coin_and_colour():
    core = one_game(grid_size=5)
    put(core, [(0, 0), (4, 4)], coin=(2, 2), color=1)
    rewards, _ = core.step(np.array([[RIGHT, LEFT]]))
    np.testing.assert_array_equal(rewards, [[0.0, 0.0]])
    assert core.coin_pos[0] == 12 and core.coin_color[0] == 1


def test_lola_three_players_penalty_once_and_colour_cycle():
    core = one_game(grid_size=3, n_agents=3, reward_rule="lola")
    put(core, [(0, 0), (1, 0), (1, 2)], coin=(1, 1), color=0)  # players 1 and 2 take player 0's coin
    rewards, _ = core.step(np.array([[UP, RIGHT, LEFT]]))
    np.testing.assert_allclose(rewards[0], [-2.0, 1.0, 1.0])
    assert core.coin_color[0] == 1
    colors = [int(core.coin_color[0])]
    for _ in range(3):  # walk player 0 onto each new coin by hand
        cell = int(core.coin_pos[0])
        y, x = divmod(cell, 3)
        put(core, [(y, (x - 1) % 3), (y, (x + 1) % 3), ((y + 1) % 3, x)], coin=(y, x), color=colors[-1])
        core.step(np.array([[RIGHT, RIGHT, RIGHT]]))  # only player 0 lands on the coin
        colors.append(int(core.coin_color[0]))
    assert colors == [1, 2, 0, 1]


def test_parl_three_players_owner_and_another():
    core = one_game(grid_size=3, n_agents=3)
    put(core, [(1, 0), (1, 2), (0, 0)], coin=(1, 1), color=1)
    rewards, _ = core.step(np.array([[RIGHT, LEFT, UP]]))
    np.testing.assert_allclose(rewards[0], [0.2, 1.0, 0.0], rtol=1e-6)


# four cells around (1, 1) on 3x3 and the move from each onto it; players 0..3 start on them in this order
AROUND = (((1, 0), RIGHT), ((1, 2), LEFT), ((0, 1), DOWN), ((2, 1), UP))


@pytest.mark.parametrize("rule", ["parl", "lola"])
@pytest.mark.parametrize(("n_agents", "on_coin"), [(2, (0, 1)), (3, (0, 1, 2)), (3, (1, 2)), (4, (0, 1, 2, 3))])
def test_random_contest_one_uniform_winner(rule, n_agents, on_coin):
    # n games in one hand-built state: the players in on_coin step onto player 0's coin, the others stay off
    n, color = 6000, 0
    core = CoinGameBatch(n_games=n, grid_size=3, n_agents=n_agents, reward_rule=rule, contested="random", seed=4)
    starts = [AROUND[i] if i in on_coin else ((0, 0), UP) for i in range(n_agents)]  # (0, 0) UP -> (2, 0)
    core.set_state(positions=np.tile([[cell for cell, _ in starts]], (n, 1, 1)),
                   coin_pos=np.tile([1, 1], (n, 1)), coin_color=np.full(n, color))
    rewards, _ = core.step(np.tile([move for _, move in starts], (n, 1)))
    picks = core.episode_stats()["coins_picked"]
    np.testing.assert_array_equal(picks.sum(axis=1), 1)  # exactly one collector per game...
    winner = picks.argmax(axis=1)
    assert set(winner.tolist()) == set(on_coin)  # ...always one of the players on the coin
    for w in on_coin:  # uniformly chosen: each within 4.5 standard deviations of n / k
        k = len(on_coin)
        assert abs(np.sum(winner == w) - n / k) < 4.5 * np.sqrt(n * (1 / k) * (1 - 1 / k))
        expected = event_rewards(tuple(i == w for i in range(n_agents)), color, rule)  # the winner alone collects
        np.testing.assert_allclose(rewards[winner == w], np.tile(expected, (np.sum(winner == w), 1)), rtol=1e-6)
    assert (core.coin_color == 1).all() and not (core.positions == core.coin_pos[:, None]).any()
    # the planning table holds the same rule in expectation
    code = color * 2**n_agents + sum(1 << i for i in on_coin)
    stats, _ = event_tables(n_agents, rule)
    winner_codes = [code - sum(1 << i for i in on_coin) + (1 << w) for w in on_coin]
    np.testing.assert_allclose(expected_event_stats(n_agents, rule, "random")[:, code],
                               stats[:, winner_codes].mean(axis=1))
    np.testing.assert_array_equal(expected_event_stats(n_agents, rule, "all"), stats)


@pytest.mark.parametrize(
    ("rule", "owner_wins", "expected"),
    [("parl", True, [1.0, 0.0]), ("parl", False, [0.0, 0.2]), ("lola", True, [1.0, 0.0]), ("lola", False, [-2.0, 1.0])],
)
def test_random_contest_rewards_on_hand_built_states(rule, owner_wins, expected):
    # owner (player 0) and player 1 reach the owner's coin together; the loser on the coin gets nothing
    # (under lola the owner's -2 comes with the other player's win, the owner having stood on the coin too)
    for seed in range(100):
        core = one_game(grid_size=3, reward_rule=rule, contested="random")
        core.reset(seed=seed)
        put(core, [(1, 0), (1, 2)], coin=(1, 1), color=0)
        rewards, _ = core.step(np.array([[RIGHT, LEFT]]))
        if (core.episode_stats()["coins_picked"][0].tolist() == [1, 0]) == owner_wins:
            np.testing.assert_allclose(rewards[0], expected, rtol=1e-6)
            assert core.episode_stats()["own_coins_picked"][0].tolist() == [int(owner_wins), 0]
            return
    pytest.fail("100 seeds never gave this winner")


def test_contested_draws_only_for_contests_and_all_draws_nothing():
    # under "all", and under "random" without a contest, the generator serves the respawn alone, so
    # "all" trajectories are what they were before the option existed
    def generator_after(contested: str, positions, moves) -> tuple[dict, dict]:
        core = one_game(grid_size=3, contested=contested)
        put(core, positions, coin=(1, 1), color=0)
        probe = copy.deepcopy(core.rng)
        core.step(np.array([moves]))
        return core.rng.bit_generator.state, probe

    for contested, positions, moves, draws in [
        ("all", [(1, 0), (1, 2)], [RIGHT, LEFT], 1),  # contested coin: the respawn's draw only
        ("random", [(1, 0), (0, 0)], [RIGHT, UP], 1),  # one player on the coin: no contest, no draw
        ("random", [(1, 0), (1, 2)], [RIGHT, LEFT], 2),  # the winner's draw, then the respawn's
        ("random", [(0, 0), (0, 2)], [UP, UP], 0),  # nobody on the coin
    ]:
        state, probe = generator_after(contested, positions, moves)
        for _ in range(draws):
            probe.random(1)
        assert state == probe.bit_generator.state, (contested, positions)


def test_random_contest_without_contests_changes_nothing():
    # greedy-own under lola never puts two players on a coin: both modes then give the same episodes
    results = [evaluate_policy("greedy_own", n_games=256, seed=1, preset="7x7", reward_rule="lola", contested=mode)
               for mode in CONTESTED]
    assert results[0] == results[1]


def test_respawn_is_uniform_over_free_cells():
    n = 7000
    core = CoinGameBatch(n_games=n, grid_size=3, seed=1)
    positions = np.tile([[(1, 0), (2, 2)]], (n, 1, 1))
    core.set_state(positions=positions, coin_pos=np.tile([1, 1], (n, 1)), coin_color=np.zeros(n, dtype=int))
    core.step(np.tile([RIGHT, UP], (n, 1)))  # player 0 collects at (1, 1); player 1 goes to (1, 2)
    occupied = {1 * 3 + 1, 1 * 3 + 2}
    counts = np.bincount(core.coin_pos, minlength=9)
    assert all(counts[c] == 0 for c in occupied)
    free = [c for c in range(9) if c not in occupied]
    assert counts[free].min() > 0.8 * n / 7 and counts[free].max() < 1.2 * n / 7


@pytest.mark.parametrize("n_games", [10, 6000])  # the two sampling paths: sorted keys, sequential draws
def test_reset_places_players_and_coin_on_distinct_uniform_cells(n_games):
    core = CoinGameBatch(n_games=n_games, grid_size=3, n_agents=4, seed=2)
    cells = np.concatenate([core.positions, core.coin_pos[:, None]], axis=1)
    assert all(len(set(row)) == 5 for row in cells.tolist())
    if n_games > 1000:
        for column in cells.T:  # every player's and the coin's start is uniform over the 9 cells
            counts = np.bincount(column, minlength=9)
            assert counts.min() > 0.8 * n_games / 9 and counts.max() < 1.2 * n_games / 9
        assert np.bincount(core.coin_color, minlength=4).min() > 0.8 * n_games / 4


def test_free_cell_table_matches_generic_sampler():
    rng = np.random.default_rng(0)
    for grid_size, n_agents in [(2, 3), (3, 2), (3, 4), (4, 3)]:
        cells, n_free = free_cell_table(grid_size, n_agents)
        n_cells = grid_size**2
        pos = rng.integers(0, n_cells, (n_agents, 500))
        u = rng.random(500)
        row = (n_cells ** np.arange(1, n_agents + 1)) @ pos
        from_table = cells[(row + np.floor(u * n_free[row])).astype(int)]
        np.testing.assert_array_equal(from_table, kth_free_cell(pos, u, n_cells))
        assert not (pos == from_table).any()


def test_observation_channels_and_global_state():
    core = one_game(grid_size=3, n_agents=3)
    put(core, [(0, 0), (0, 1), (0, 1)], coin=(2, 2), color=1)
    obs = core.observe()[0]  # [viewer, channel, y, x]
    assert obs.shape == (3, 4, 3, 3) and obs.dtype == np.float32
    assert obs[0, 0, 0, 0] == 1 and obs[0, 0].sum() == 1
    assert obs[0, 1, 0, 1] == 1 and obs[0, 1].sum() == 1  # two others on one cell: aggregated
    assert obs[0, 3, 2, 2] == 1 and obs[0, 2].sum() == 0  # coin of player 1 is "other" for player 0
    assert obs[1, 2, 2, 2] == 1 and obs[1, 3].sum() == 0  # and "own" for player 1
    assert obs[1, 1, 0, 0] == 1 and obs[1, 1, 0, 1] == 1  # player 1 sees player 0 and player 2
    np.testing.assert_array_equal(core.observe(flat=True)[0], obs.reshape(3, -1))
    state = core.global_state()[0]
    assert state.shape == (6, 3, 3)
    assert state[0, 0, 0] == state[1, 0, 1] == state[2, 0, 1] == 1
    assert state[3 + 1, 2, 2] == 1 and state[3:].sum() == 1 and state.sum() == 4
    # buffers are cleared between calls
    put(core, [(1, 1), (2, 0), (2, 1)], coin=(0, 0), color=0)
    # each viewer: itself, two others on distinct cells, the coin
    assert core.observe()[0].sum() == 3 * 4 and core.global_state()[0].sum() == 4


def test_masked_reset_and_step_after_truncation():
    core = CoinGameBatch(n_games=3, grid_size=3, max_steps=2, seed=0)
    for _ in range(2):
        _, truncated = core.step(np.zeros((3, 2), dtype=int))
    assert truncated.all()
    with pytest.raises(RuntimeError, match="reset"):
        core.step(np.zeros((3, 2), dtype=int))
    core.reset(mask=np.array([True, False, False]))
    assert core.t.tolist() == [0, 2, 2]
    core.reset(mask=~(core.t == 0))
    core.step(np.zeros((3, 2), dtype=int))
    assert core.t.tolist() == [1, 1, 1]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    grid_size=st.integers(2, 5),
    n_agents=st.integers(2, 4),
    rule=st.sampled_from(["parl", "lola"]),
    contested=st.sampled_from(CONTESTED),
    n_steps=st.integers(1, 12),
    toward_coin=st.booleans(),
)
def test_invariants_against_reference_model(seed, grid_size, n_agents, rule, contested, n_steps, toward_coin):
    if grid_size**2 < n_agents + 1:
        grid_size = 3
    n = 5
    core = CoinGameBatch(n_games=n, grid_size=grid_size, n_agents=n_agents, reward_rule=rule, seed=seed,
                         contested=contested)
    assert len(set(core.positions[0].tolist()) | {int(core.coin_pos[0])}) == n_agents + 1  # distinct start
    rng = np.random.default_rng(seed)
    total, picks = np.zeros((n, n_agents)), np.zeros((n, n_agents), dtype=int)
    for _ in range(n_steps):
        before = yx(core).copy()
        coin, color = core.coin_pos.copy(), core.coin_color.copy()
        # greedy-selfish moves put several players on the coin often: contests to resolve
        actions = greedy_selfish_policy(core, rng) if toward_coin else rng.integers(0, 4, (n, n_agents))
        on_coin = move_table(grid_size)[core.positions * 4 + actions] == coin[:, None]
        # the reference winners: the pinned draw, one uniform number per contested game, in game order
        contests = iter(copy.deepcopy(core.rng).random(np.sum(on_coin.sum(axis=1) > 1)))
        rewards, _ = core.step(actions)
        moves = np.array(MOVES)[actions]
        np.testing.assert_array_equal(yx(core), (before + moves) % grid_size)
        for g in range(n):  # the reference rule, game by game
            collectors = on_coin[g].copy()
            if collectors.sum() > 1 and contested == "random":
                winner = np.flatnonzero(collectors)[int(next(contests) * collectors.sum())]
                collectors[:] = np.arange(n_agents) == winner
            np.testing.assert_allclose(rewards[g], event_rewards(tuple(collectors), color[g], rule), rtol=1e-6)
            assert core.coin_color[g] == ((color[g] + 1) % n_agents if on_coin[g].any() else color[g])
            picks[g] += collectors
        assert not (core.positions == core.coin_pos[:, None]).any()
        assert ((core.coin_pos >= 0) & (core.coin_pos < grid_size**2)).all()
        total += rewards
        obs = core.observe()
        np.testing.assert_array_equal(obs[:, :, 0].sum(axis=(2, 3)), 1)
        np.testing.assert_array_equal(obs[:, :, 2:].sum(axis=(2, 3, 4)), 1)
    stats = core.episode_stats()
    np.testing.assert_allclose(stats["episode_return"], total, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["social_welfare"], total.sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(stats["coins_picked"], picks)
    assert (stats["own_coins_picked"] <= stats["coins_picked"]).all()


def test_episode_stats_definitions():
    core = one_game(grid_size=3, max_steps=5)
    put(core, [(1, 0), (0, 0)], coin=(1, 1), color=1)
    core.step(np.array([[RIGHT, LEFT]]))  # player 0 takes player 1's coin
    stats = core.episode_stats()
    assert stats["coins_picked"].tolist() == [[1, 0]]
    assert stats["pick_speed"].tolist() == [[1.0, 0.0]]
    assert stats["pick_own_color"][0, 0] == 0.0 and np.isnan(stats["pick_own_color"][0, 1])
    assert stats["social_welfare"][0] == pytest.approx(0.2)


# ------------------------------------------------------- batch vs ParallelEnv, presets


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "3x3"},
        {"preset": "7x7", "max_steps": 8, "n_agents": 3},
        {"preset": "3x3", "contested": "random"},
        {"preset": "3x3", "contested": "random", "n_agents": 3, "reward_rule": "lola"},
    ],
)
def test_batch_and_parallel_env_identical_trajectories(kwargs):
    env = parallel_env(**kwargs)
    core = CoinGameBatch(n_games=1, **kwargs)
    rng = np.random.default_rng(5)
    contests = 0
    for episode in range(3):
        seed = 11 if episode == 0 else None  # later episodes continue the seeded stream
        obs, _ = env.reset(seed=seed)
        core.reset(seed=seed)
        while env.agents:
            expected_obs = core.observe()[0]
            assert all(np.array_equal(obs[a], expected_obs[i]) for i, a in enumerate(env.possible_agents))
            np.testing.assert_array_equal(env.state(), core.global_state()[0])
            # greedy-selfish moves contest many coins (so the winners' draws are compared too)
            greedy = "contested" in kwargs
            actions = greedy_selfish_policy(core, rng) if greedy else rng.integers(0, 4, (1, core.n_agents))
            contests += (move_table(core.grid_size)[core.positions * 4 + actions] == core.coin_pos[:, None]).sum() > 1
            obs, rewards, _, truncs, infos = env.step(dict(zip(env.agents, actions[0].tolist(), strict=True)))
            core_rewards, core_truncated = core.step(actions)
            assert list(rewards.values()) == core_rewards[0].tolist()
            assert all(v == bool(core_truncated[0]) for v in truncs.values())
        stats = core.episode_stats()
        assert infos["player_0"]["social_welfare"] == pytest.approx(stats["social_welfare"][0])
        assert infos["player_1"]["coins_picked"] == stats["coins_picked"][0, 1]
    assert contests > 5 or "contested" not in kwargs


def test_presets():
    assert PRESETS == {"3x3": {"grid_size": 3, "max_steps": 20}, "7x7": {"grid_size": 7, "max_steps": 50}}
    core = CoinGameBatch(preset="7x7")
    assert (core.grid_size, core.max_steps) == (7, 50)
    assert CoinGameBatch(preset="7x7", max_steps=10).max_steps == 10
    assert (CoinGameBatch().grid_size, CoinGameBatch().max_steps) == (3, 20)


# ----------------------------------------------------------------------------- policies


@pytest.mark.parametrize("contested", CONTESTED)
@pytest.mark.parametrize("preset", ["3x3", "7x7"])
@pytest.mark.parametrize("rule", ["parl", "lola"])
def test_greedy_own_earns_more_welfare_than_greedy_selfish(preset, rule, contested):
    # on 3x3/parl/all greedy-selfish players herd and co-collect, so the margin is small (~0.2 per
    # episode): many games make it several standard errors wide
    n_games = 8192 if preset == "3x3" else 2048
    game = {"preset": preset, "reward_rule": rule, "contested": contested}
    own = evaluate_policy("greedy_own", n_games=n_games, seed=7, **game)
    selfish = evaluate_policy("greedy_selfish", n_games=n_games, seed=7, **game)
    assert own["social_welfare"] > selfish["social_welfare"] + 0.1
    assert own["pick_own_color"] >= 0.5 if (rule, contested) == ("parl", "all") else own["pick_own_color"] == 1.0


def test_greedy_policies_behave_as_documented():
    core = CoinGameBatch(n_games=256, preset="7x7", reward_rule="lola", seed=3)
    rng = np.random.default_rng(0)

    def distance(cells, coin):
        (y, x), (cy, cx) = np.divmod(cells, 7), np.divmod(coin[:, None], 7)
        dy, dx = np.abs(y - cy), np.abs(x - cx)
        return np.minimum(dy, 7 - dy) + np.minimum(dx, 7 - dx)

    coin = core.coin_pos.copy()
    before = distance(core.positions, coin)
    core.step(greedy_selfish_policy(core, rng))
    np.testing.assert_array_equal(distance(core.positions, coin), before - 1)  # every step shortens the path
    assert random_policy(core, rng).shape == (256, 2)
    # greedy-own joins the owner on its coin only under parl with contested="all"; elsewhere no coin
    # is ever collected by anyone but its owner (under "random" a joiner could take it from the owner)
    for rule, contested in [("lola", "all"), ("parl", "random"), ("lola", "random"), ("parl", "all")]:
        core = CoinGameBatch(n_games=256, preset="7x7", reward_rule=rule, contested=contested, seed=3)
        for _ in range(50):
            core.step(greedy_own_policy(core, rng))
        stats = core.episode_stats()
        only_own = np.array_equal(stats["coins_picked"], stats["own_coins_picked"])
        assert only_own == ((rule, contested) != ("parl", "all")), (rule, contested)


# ------------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid_size": 1}, "grid_size"),
        ({"grid_size": 2, "n_agents": 4}, "grid_size"),
        ({"grid_size": 2.5}, "grid_size"),
        ({"reward_rule": "gift"}, "reward_rule"),
        ({"contested": "both"}, r"contested must be one of \('all', 'random'\)"),
        ({"contested": None}, "contested"),
        ({"n_agents": 1}, "n_agents"),
        ({"n_agents": 5}, "n_agents"),
        ({"max_steps": 0}, "max_steps"),
        ({"preset": "5x5"}, "preset"),
        ({"n_games": 0}, "n_games"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):  # TypeError: not an integer at all
        CoinGameBatch(**kwargs)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros((2, 3), dtype=int), "shape"),
        (np.zeros(4, dtype=int), "shape"),
        (np.full((2, 2), 4), "0..3"),
        (np.full((2, 2), -1), "0..3"),
        (np.full((2, 2), 1.0), "integers"),
        (np.full((2, 2), 5, dtype=np.uint8), "0..3"),
    ],
)
def test_bad_actions_raise(actions, match):
    core = CoinGameBatch(n_games=2)
    with pytest.raises(ValueError, match=match):
        core.step(actions)


def test_parallel_env_bad_arguments_raise():
    with pytest.raises(ValueError, match="obs_format"):
        parallel_env(obs_format="image")
    with pytest.raises(ValueError, match="render_mode"):
        parallel_env(render_mode="rgb_array")
    with pytest.raises(ValueError, match="contested"):
        parallel_env(contested="first")
    with pytest.raises(ValueError, match="contested"):
        expected_event_stats(2, "parl", "first")
    # one default for the rule everywhere (CoinGameConfig's), "all" by name
    assert parallel_env(contested="all").core.contested == "all" and parallel_env().core.contested == "random"
    assert CoinGameBatch().contested == CoinGameConfig().contested == "random"
    with pytest.raises(ValueError, match=r"unknown Coin Game setting\(s\) \['alpah'\]; the settings are"):
        CoinGameBatch(alpah=0.1)
    with pytest.raises(ValueError, match="not both"):
        CoinGameBatch(config=CoinGameConfig(), preset="7x7")
    env = parallel_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="player_1"):
        env.step({"player_0": 0})
    with pytest.raises(ValueError, match="integers"):
        env.step({"player_0": 0.5, "player_1": 1})
    with pytest.raises(ValueError, match="0..3"):
        env.step({"player_0": 7, "player_1": 1})
    with pytest.raises(ValueError, match="exactly one"):
        env.step({"player_0": 0, "player_1": 1, "player_9": 2})
    core = one_game()
    with pytest.raises(ValueError, match="under a player"):
        put(core, [(0, 0), (1, 1)], coin=(1, 1), color=0)
    with pytest.raises(ValueError, match="mask"):
        core.reset(mask=np.array([1, 0]))


def test_render_ansi():
    env = parallel_env(render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text.count("\n") == 4 and "0" in text and "1" in text


def test_a_snapshot_restores_the_whole_state_and_replays_identically():
    core = CoinGameBatch(n_games=16, preset="3x3", seed=0)
    actions = np.random.default_rng(1).integers(0, 4, (30, 16, 2))
    for step in actions[:7]:
        core.step(step)
    snapshot, generator = core.state, copy.deepcopy(core.rng.bit_generator.state)
    first = [core.step(step)[0] for step in actions[7:19]]
    core.restore(snapshot)
    core.rng.bit_generator.state = generator
    np.testing.assert_array_equal(core.state.stats, snapshot.stats)
    second = [core.step(step)[0] for step in actions[7:19]]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    with pytest.raises(ValueError, match="stats"):
        core.restore(snapshot._replace(stats=snapshot.stats[:, :2]))
    with pytest.raises(ValueError, match="coin_color"):
        core.restore(snapshot._replace(coin_color=snapshot.coin_color + 5))
