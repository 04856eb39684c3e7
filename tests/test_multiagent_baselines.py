"""Baselines without a principal: reward shaping, the budget controller, training and evaluation."""

import numpy as np
import pytest

from sb3_contracts.experiments.coin.baselines import RewardShapingVecEnv, evaluate_agents, train_baseline
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv


def _shaped_env(kind, **kwargs):
    return RewardShapingVecEnv(CoinGameVecEnv(n_games=2, n_agents=3, seed=0), kind, **kwargs)


def test_cooperative_shaping_gives_every_agent_the_welfare():
    env = _shaped_env("cooperative")
    env.reset()
    core = env.venv.core
    rng = np.random.default_rng(0)
    for _ in range(core.max_steps - 1):  # within one episode, so the returns' increments are the rewards
        before = core.episode_stats()["episode_return"]
        _, shaped, _, _ = env.step(rng.integers(0, 4, 6))
        welfare = (core.episode_stats()["episode_return"] - before).sum(axis=1)
        np.testing.assert_allclose(shaped.reshape(2, 3), np.repeat(welfare[:, None], 3, axis=1), atol=1e-6)
    rewards = np.array([[1.0, 0.2, 0.0], [0.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(env.shape_rewards(rewards), [[1.2] * 3, [1.0] * 3])


def test_proportion_shaping_and_its_spend():
    env = _shaped_env("proportion", p=0.5)
    rewards = np.array([[1.0, 0.2, 0.0], [0.0, 0.0, 0.0]], np.float32)
    shaped = env.shape_rewards(rewards)
    mean = 0.4
    np.testing.assert_allclose(shaped[0], 0.5 * rewards[0] + 0.5 * mean, rtol=1e-6)
    np.testing.assert_allclose(shaped[1], 0.0)
    # spend: what moves to the players below the mean, p * ((0.4 - 0.2) + (0.4 - 0))
    np.testing.assert_allclose(env._spend, [0.5 * 0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(_shaped_env("selfish").shape_rewards(rewards), rewards)


def test_budget_controller_meets_a_target_on_a_fixed_disparity():
    env = _shaped_env("proportion", target_budget=0.3)
    infos = [{} for _ in range(6)]
    for _ in range(30):  # an episode = one step with disparity D = 0.6 in each game
        env.shape_rewards(np.array([[1.0, 0.2, 0.0], [1.0, 0.2, 0.0]], np.float32))
        env._end_episodes(np.ones(2, bool), infos)
    assert env.p == pytest.approx(0.5, rel=1e-3)
    assert env.spend_per_episode() == pytest.approx(0.3, rel=0.05)
    assert infos[0]["shaping_spend"] == pytest.approx(0.3, rel=1e-3)


def test_bad_baseline_arguments_raise():
    with pytest.raises(ValueError, match="kind must be one of"):
        _shaped_env("altruist")
    with pytest.raises(ValueError, match="needs p"):
        _shaped_env("proportion")
    with pytest.raises(ValueError, match="'proportion' baseline only"):
        _shaped_env("selfish", target_budget=1.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        _shaped_env("proportion", p=1.5)
    with pytest.raises(ValueError, match="algo must be one of"):
        train_baseline("selfish", 10, algo="a2c")


def test_budget_matched_baseline_spends_its_target(tmp_path):
    model, stats = train_baseline("proportion", 12_800, n_games=32, seed=0, target_budget=0.2,
                                  tensorboard_log=str(tmp_path), learning_starts=200,
                                  game_kwargs={"preset": "3x3"})
    assert stats["spend_per_episode"] == pytest.approx(0.2, rel=0.2)
    assert 0.0 < stats["p"] <= 1.0 and len(stats["history"]) == 10
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = tmp_path.iterdir()
    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert {"baseline/p", "baseline/spend"} <= set(tags)


def test_train_and_evaluate_baselines_with_ppo_and_dqn():
    model, stats = train_baseline("cooperative", 640, n_games=4, algo="ppo", n_steps=32, batch_size=64,
                                  game_kwargs={"preset": "3x3"})
    assert stats["kind"] == "cooperative" and np.isnan(stats["spend_per_episode"])
    metrics = evaluate_agents(model, n_games=8, n_episodes=2, preset="3x3")
    assert metrics["episodes"] == 16 and np.isnan(metrics["follow_rate"]) and metrics["payments"] == 0.0
    model, _ = train_baseline("selfish", 400, n_games=4, learning_starts=50, game_kwargs={"preset": "3x3"})
    under_contract = evaluate_agents(model, n_games=4, principal=np.full((2, 4), 0.1), preset="3x3")
    assert under_contract["payments"] == pytest.approx(0.1 * 2 * 20)  # a flat contract pays every move
