"""The exact cooperative optimum of the two-player Coin Game (the welfare ratios' reference)."""

import itertools

import numpy as np
import pytest
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.envs.coin_game.policies import evaluate_policy

from sb3_contracts.multiagent.optimum import optimal_values, optimal_welfare


@pytest.mark.parametrize("rule", ["parl", "lola"])
def test_one_step_optimum_matches_brute_force(rule):
    # every start state (players and coin on distinct cells, either colour) times every joint move, in the game
    g = 3
    states = [(p0, p1, c, color) for p0, p1, c in itertools.permutations(range(g * g), 3) for color in (0, 1)]
    n = len(states)
    core = CoinGameBatch(n_games=n * 16, grid_size=g, max_steps=1, reward_rule=rule, seed=0)
    yx = lambda cells: np.stack(np.divmod(np.asarray(cells), g), axis=-1)  # noqa: E731
    p0, p1, coin, color = (np.repeat(np.array(column), 16) for column in zip(*states, strict=True))
    core.set_state(positions=np.stack([yx(p0), yx(p1)], axis=1), coin_pos=yx(coin), coin_color=color, t=0)
    joint = np.array(list(itertools.product(range(4), repeat=2)))
    rewards, _ = core.step(np.tile(joint, (n, 1)))
    best = rewards.sum(axis=1).reshape(n, 16).max(axis=1)
    assert optimal_welfare(None, rule, grid_size=g, max_steps=1) == pytest.approx(best.mean())
    values = optimal_values(g, 1, rule)
    np.testing.assert_allclose([values[s] for s in states], best)


def test_optimum_bounds_the_scripted_policies():
    optimum = optimal_welfare("3x3")
    assert optimum == pytest.approx(15.81, abs=0.01)
    for policy in ("greedy_selfish", "greedy_own"):
        assert evaluate_policy(policy, n_games=2048, seed=0, preset="3x3")["social_welfare"] < optimum + 0.05
    # a longer episode is worth more, and the lola rule (a shared coin costs its owner) less
    assert optimal_welfare("3x3", max_steps=21) > optimum > optimal_welfare("3x3", "lola")
