"""ContractCoinGame-v0 (the principal's view), the responders and the metrics."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.spaces import Box
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_contracts  # noqa: F401  (registers the env ids)
from sb3_contracts.experiments.coin.baselines import evaluate_agents
from sb3_contracts.experiments.coin.metrics import follow_rate, ic_ratio, payment_share, rollout_metrics, spe_ratio
from sb3_contracts.game import ContractCoinGameEnv, follow_flags, pay, recommend


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("obs_format", "expected"), [("agents", (2, 36)), ("flat", (36,)), ("grid", (4, 3, 3))])
def test_passes_gymnasium_and_sb3_checks(obs_format, expected):
    env = gym.make("ContractCoinGame-v0", preset="3x3", obs_format=obs_format)
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)
    assert env.action_space == Box(0.0, 2.0, (2, 4), np.float32)
    assert env.observation_space.shape == expected


def test_the_default_observation_stacks_every_agents_view():
    env = gym.make("ContractCoinGame-v0", preset="3x3")
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, env.unwrapped.core.observe(flat=True)[0])
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs, env.unwrapped.core.observe(flat=True)[0])


def test_sb3_and_gymnasium_vectorise_every_registered_id():
    from stable_baselines3.common.env_util import make_vec_env

    for env_id in sb3_contracts.ENV_IDS:
        kwargs = {"depth": 3} if "Tree" in env_id else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vec = make_vec_env(env_id, n_envs=2, env_kwargs=kwargs)  # asks for render_mode="rgb_array" first
        assert not [w for w in caught if "render_mode" in str(w.message)], env_id
        vec.reset()
        vec.step(np.stack([vec.action_space.sample() for _ in range(2)]))
        vector = gym.make_vec(env_id, num_envs=2, **kwargs)
        vector.reset(seed=0)
        vector.step(vector.action_space.sample())
    with pytest.raises(TypeError, match="render_mode"):
        gym.make("ContractCoinGame-v0", render_mode="rgb_array")


def test_the_batched_view_plays_the_single_views_trajectory():
    from sb3_contracts.game import ContractCoinGameVecEnv

    single = gym.make("ContractCoinGame-v0", preset="3x3", max_steps=5).unwrapped
    batch = ContractCoinGameVecEnv(1, preset="3x3", max_steps=5, contested="random")  # as the registered id
    single.reset(seed=4)
    batch.reset()
    batch.games.reset(seed=int(np.random.default_rng(4).integers(2**31)))  # the core's seed from reset(seed=4)
    rng = np.random.default_rng(1)
    obs = single.games.observe()[0]
    np.testing.assert_array_equal(batch.games.observe()[0], obs)
    for _ in range(12):
        contract = (rng.uniform(0, 2, (2, 4)) * (rng.random((2, 4)) < 0.3)).astype(np.float32)
        obs, reward, _, truncated, info = single.step(contract)
        batch_obs, batch_reward, dones, infos = batch.step(contract[None])
        assert batch_reward[0] == pytest.approx(reward) and dones[0] == truncated
        np.testing.assert_array_equal(infos[0]["actions"], info["actions"])
        if truncated:
            np.testing.assert_array_equal(infos[0]["terminal_observation"], obs)
            assert infos[0]["episode_welfare"] == info["episode_welfare"]
            break
        np.testing.assert_array_equal(batch_obs[0], obs)


def _hand_state(env):
    # agent 0 at (0, 0) next to the coin of its colour at (0, 1); agent 1 at (2, 2), two moves away
    env.unwrapped.core.set_state(positions=np.array([[[0, 0], [2, 2]]]), coin_pos=np.array([[0, 1]]),
                                 coin_color=np.array([0]))


def test_hand_computed_step():
    env = gym.make("ContractCoinGame-v0", preset="3x3", alpha=0.1)  # threshold responder, price 0.1
    env.reset(seed=0)
    _hand_state(env)
    contract = np.zeros((2, 4), np.float32)
    contract[0, 0] = 0.5  # pays agent 0 for moving right, onto the coin: it follows
    contract[1, 3] = 0.05  # below agent 1's price: it stays greedy (down or left, never up)
    _, reward, terminated, truncated, info = env.step(contract)
    np.testing.assert_array_equal(info["actions"][0], 0)
    assert info["actions"][1] in (1, 2)
    np.testing.assert_allclose(info["agent_rewards"], [1.0, 0.0])
    np.testing.assert_allclose(info["payments"], [0.5, 0.0])
    np.testing.assert_array_equal(info["recommended"], [0, 3])
    np.testing.assert_array_equal(info["followed"], [1, 0])
    assert info["welfare"] == pytest.approx(1.0)
    assert reward == pytest.approx(1.0 / 0.1 - 0.5)
    assert not terminated and not truncated


def test_free_agent_has_no_follow_flag_and_episode_metrics_at_the_end():
    env = gym.make("ContractCoinGame-v0", preset="3x3", max_steps=3)
    env.reset(seed=1)
    _hand_state(env)
    contract = np.zeros((2, 4), np.float32)
    contract[0, 0] = 0.5
    welfare = payments = 0.0
    for _ in range(3):
        _, _, _, truncated, info = env.step(contract)
        welfare += info["welfare"]
        payments += info["payments"].sum()
        assert info["followed"][1] == -1 and info["recommended"][1] == -1
    assert truncated
    assert info["episode_welfare"] == pytest.approx(welfare)
    assert info["episode_payments"] == pytest.approx(payments)
    assert 0.0 <= info["pick_speed"] <= 1.0 and {"pick_own_color"} <= set(info)


@pytest.mark.parametrize("agents", ["selfish", "threshold", "follow"])
def test_payments_only_on_the_action_taken_and_never_negative(agents):
    env = gym.make("ContractCoinGame-v0", preset="3x3", agents=agents)
    env.reset(seed=2)
    env.action_space.seed(2)
    for _ in range(40):
        contract = env.action_space.sample()
        contract[contract < 0.5] = 0.0  # zero entries too
        _, reward, _, truncated, info = env.step(contract)
        expected = contract[np.arange(2), info["actions"]]
        np.testing.assert_allclose(info["payments"], expected, rtol=1e-6)
        assert (info["payments"] >= 0).all()
        assert reward == pytest.approx(info["welfare"] / 0.1 - info["payments"].sum(), rel=1e-5)
        if agents == "follow":
            assert (info["followed"][contract.max(axis=1) > 0] == 1).all()
        if truncated:
            env.reset()


@pytest.mark.parametrize(
    ("contract", "match"),
    [
        (np.zeros((2, 3)), r"shape \(2, 4\)"),
        (np.full((2, 4), np.nan), "finite"),
        (-np.ones((2, 4)), "non-negative"),
        (np.full((2, 4), 2.5), "b_max=2.0"),
    ],
)
def test_invalid_contracts_raise(contract, match):
    env = gym.make("ContractCoinGame-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(contract)


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match=r"unknown Coin Game setting\(s\) \['colour'\]; the settings are"):
        gym.make("ContractCoinGame-v0", colour=3)
    with pytest.raises(ValueError, match="alpha"):
        ContractCoinGameEnv(alpha=0.0)
    with pytest.raises(ValueError, match="agents must be one of"):
        ContractCoinGameEnv(agents="greedy")
    with pytest.raises(ValueError, match="follow_price"):
        ContractCoinGameEnv(follow_price=-1.0)
    with pytest.raises(ValueError, match="reward_rule"):
        ContractCoinGameEnv(reward_rule="nice")
    env = ContractCoinGameEnv(preset="7x7", n_agents=3)
    assert env.action_space.shape == (3, 4) and env.observation_space.shape == (3, 4 * 49)
    assert ContractCoinGameEnv(preset="7x7", n_agents=3, obs_format="flat").observation_space.shape == (6 * 49,)


def test_recommendation_convention():
    contracts = np.array([[0.0, 0.3, 0.3, 0.1], [0.0, 0.0, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0]])
    recommended = recommend(contracts)
    np.testing.assert_array_equal(recommended, [1, -1, 0])  # ties go to the lowest action
    np.testing.assert_array_equal(follow_flags(recommended, np.array([1, 2, 3])), [1, -1, 0])
    np.testing.assert_allclose(pay(contracts, np.array([2, 0, 1])), [0.3, 0.0, 0.0])


class CountingModel:
    """A stand-in SB3 model that records every predict call."""

    def __init__(self, obs_dim):
        self.observation_space = Box(0.0, 2.0, (obs_dim,), np.float32)
        self.calls = []

    def predict(self, observation, deterministic=False):
        self.calls.append(observation.shape)
        return np.full(len(observation), 2), None


def test_sb3_responder_predicts_once_per_step_on_the_whole_batch():
    model = CountingModel(36 + 4)
    metrics = evaluate_agents(model, n_games=8, n_episodes=2, principal=np.full((2, 4), 0.2), preset="3x3")
    assert model.calls == [(16, 40)] * 40
    # flat contracts recommend action 0 (ties go low); the model always moves down (2)
    assert metrics["follow_rate"] == 0.0 and metrics["episodes"] == 16
    baseline_model = CountingModel(36)  # trained without the contract input
    evaluate_agents(baseline_model, n_games=4, preset="3x3")
    assert baseline_model.calls == [(8, 36)] * 20
    env = ContractCoinGameEnv(agents=CountingModel(40), preset="3x3")
    env.reset(seed=0)
    env.step(np.zeros((2, 4), np.float32))
    assert env.responder.model.calls == [(2, 40)]
    with pytest.raises(ValueError, match="size 7"):
        evaluate_agents(CountingModel(7), n_games=2, preset="3x3")


def test_metrics_on_hand_made_rollouts():
    rewards = np.zeros((3, 2, 2))  # 3 steps, 2 episodes, 2 agents
    rewards[0, 0] = [1.0, 0.2]
    rewards[2, 1] = [0.0, 1.0]
    payments = np.zeros_like(rewards)
    payments[1, 0, 0] = 0.3
    payments[2, 1, 1] = 0.5
    followed = np.full(rewards.shape, -1)
    followed[:, 0, 0] = [1, 1, 0]
    followed[:, 1, 1] = [1, 1, 1]
    metrics = rollout_metrics(rewards, payments, followed, np.array([[0.5, 0.5], [0.0, 1 / 3]]),
                              np.array([[1.0, 0.0], [np.nan, 1.0]]))
    assert metrics["welfare"] == pytest.approx((1.2 + 1.0) / 2)
    assert metrics["welfare_se"] == pytest.approx(np.std([1.2, 1.0], ddof=1) / np.sqrt(2))
    assert metrics["payments"] == pytest.approx(0.4)
    assert metrics["payment_share"] == pytest.approx(0.8 / 2.2)
    assert metrics["follow_rate"] == pytest.approx(5 / 6)
    assert metrics["pick_speed"] == pytest.approx((1 + 1 / 3) / 4)
    assert metrics["pick_own_color"] == pytest.approx(2 / 3)
    assert metrics["episodes"] == 2
    assert np.isnan(follow_rate(np.full(4, -1))) and np.isnan(payment_share(1.0, 0.0))
    assert spe_ratio(9.0, 10.0) == pytest.approx(0.9) and ic_ratio(11.0, 10.0) == pytest.approx(1.1)
    assert np.isnan(spe_ratio(1.0, 0.0))
    with pytest.raises(ValueError, match="share one"):
        rollout_metrics(rewards, payments[:2], followed, np.zeros((2, 2)), np.zeros((2, 2)))
