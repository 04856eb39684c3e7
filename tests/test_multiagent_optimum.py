"""The exact cooperative optimum of the two-player Coin Game (the welfare ratios' reference)."""

import itertools

import numpy as np
import pytest
from sb3_contracts.envs.coin_game import CONTESTED, CoinGameBatch, CoinGameConfig, event_rewards
from sb3_contracts.envs.coin_game.optimum import optimal_values, optimal_welfare
from sb3_contracts.envs.coin_game.policies import POLICIES, evaluate_policy


def expected_welfare(collectors: np.ndarray, color: int, rule: str, contested: str) -> float:
    """Welfare of one coin from the reference rule: every player on it collects, or each alone with equal chance."""
    if contested == "all" or collectors.sum() < 2:
        return sum(event_rewards(tuple(collectors), color, rule))
    winners = np.flatnonzero(collectors)
    return float(np.mean([sum(event_rewards(tuple(np.arange(2) == w), color, rule)) for w in winners]))


@pytest.mark.parametrize("contested", CONTESTED)
@pytest.mark.parametrize("rule", ["parl", "lola"])
def test_one_step_optimum_matches_brute_force(rule, contested):
    # every start state (players and coin on distinct cells, either colour) times every joint move: the game
    # moves the players, the reference rule (in expectation over a random winner) scores the coin
    g = 3
    states = [(p0, p1, c, color) for p0, p1, c in itertools.permutations(range(g * g), 3) for color in (0, 1)]
    n = len(states)
    core = CoinGameBatch(n_games=n * 16, grid_size=g, max_steps=1, reward_rule=rule, seed=0)
    yx = lambda cells: np.stack(np.divmod(np.asarray(cells), g), axis=-1)  # noqa: E731
    p0, p1, coin, color = (np.repeat(np.array(column), 16) for column in zip(*states, strict=True))
    core.set_state(positions=np.stack([yx(p0), yx(p1)], axis=1), coin_pos=yx(coin), coin_color=color, t=0)
    joint = np.array(list(itertools.product(range(4), repeat=2)))
    core.step(np.tile(joint, (n, 1)))
    on_coin = core.positions == coin[:, None]
    welfare = np.array([expected_welfare(on, c, rule, contested) for on, c in zip(on_coin, color, strict=True)])
    best = welfare.reshape(n, 16).max(axis=1)
    optimum = optimal_welfare(reward_rule=rule, grid_size=g, max_steps=1, contested=contested)
    assert optimum == pytest.approx(best.mean())
    values = optimal_values(g, 1, rule, contested)
    np.testing.assert_allclose([values[s] for s in states], best)


@pytest.mark.parametrize("contested", CONTESTED)
@pytest.mark.parametrize("rule", ["parl", "lola"])
def test_optimum_bounds_the_scripted_policies(rule, contested):
    optimum = optimal_welfare("3x3", reward_rule=rule, contested=contested)
    for policy in POLICIES:
        welfare = evaluate_policy(policy, n_games=2048, seed=0, preset="3x3", reward_rule=rule, contested=contested)
        assert welfare["social_welfare"] < optimum + 0.05, policy
    # a longer episode is worth more
    assert optimal_welfare("3x3", reward_rule=rule, max_steps=21, contested=contested) > optimum


def test_optimum_values_and_the_contest_rule():
    # the game's default rule is "random" (CoinGameConfig); a config gives the same figure as its fields
    assert optimal_welfare("3x3") == pytest.approx(13.90, abs=0.01)
    assert optimal_welfare(CoinGameConfig(contested="all")) == pytest.approx(15.81, abs=0.01)
    assert optimal_welfare("3x3", contested="all") == optimal_welfare(CoinGameConfig(contested="all"))
    # the lola rule (a shared coin costs its owner) is worth less than parl
    assert optimal_welfare("3x3", contested="all") > optimal_welfare("3x3", reward_rule="lola", contested="all")
    with pytest.raises(ValueError, match="n_agents: the exact optimum is known for two players only"):
        optimal_welfare(n_agents=3)
    # under parl a shared coin is worth 1.2 with "all" but 0.6 in expectation with "random", and nothing else
    # changes: the random rule's optimum is lower everywhere, strictly on average. Under lola a coin the two
    # players share is worth 1 - 1 = 0 with "all" and (1 + (1 - 2)) / 2 = 0 with "random": the same optimum.
    parl_all, parl_random = optimal_values(3, 20, "parl", "all"), optimal_values(3, 20, "parl", "random")
    assert (parl_random <= parl_all + 1e-12).all() and parl_random.mean() < parl_all.mean() - 1.0
    np.testing.assert_allclose(optimal_values(3, 20, "lola", "random"), optimal_values(3, 20, "lola", "all"))
    with pytest.raises(ValueError, match="contested"):
        optimal_welfare("3x3", contested="first")
