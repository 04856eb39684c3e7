"""The SB3 VecEnv adapter over the batched Coin Game, and the SuperSuit route with the ParallelEnv."""

import numpy as np
import pytest
import supersuit as ss
from sb3_contracts.envs.coin_game import CoinGameBatch, parallel_env
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import VecMonitor

from sb3_contracts.game.coin_vec_env import CoinGameVecEnv


def test_slots_are_players_of_games():
    vec = CoinGameVecEnv(n_games=3, n_agents=3, obs_format="grid", seed=0)
    assert vec.num_envs == 9
    assert vec.observation_space.shape == (4, 3, 3) and vec.action_space.n == 4
    obs = vec.reset()
    assert obs.shape == (9, 4, 3, 3)
    np.testing.assert_array_equal(obs.reshape(3, 3, 4, 3, 3), vec.core.observe())
    flat = CoinGameVecEnv(n_games=2, seed=0)
    assert flat.reset().shape == (4, 36)


def test_same_trajectory_as_the_core_with_auto_reset():
    kwargs = {"grid_size": 3, "max_steps": 5}
    vec = CoinGameVecEnv(n_games=2, seed=4, **kwargs)
    core = CoinGameBatch(n_games=2, seed=4, **kwargs)
    obs = vec.reset()
    core.reset()  # without a seed, as VecEnv.reset() does: the stream continues
    rng = np.random.default_rng(0)
    returns = np.zeros(4)
    for step in range(1, 6):
        actions = rng.integers(0, 4, 4)
        obs, rewards, dones, infos = vec.step(actions)
        core_rewards, truncated = core.step(actions.reshape(2, 2))
        np.testing.assert_array_equal(rewards, core_rewards.reshape(-1))
        returns += rewards
        assert dones.all() == (step == 5) and dones.dtype == bool
    # the last step: terminal observations of the finished episode, then fresh ones
    np.testing.assert_array_equal(
        np.stack([i["terminal_observation"] for i in infos]), core.observe(flat=True).reshape(4, -1)
    )
    assert all(i["TimeLimit.truncated"] for i in infos)
    np.testing.assert_allclose([i["episode"]["r"] for i in infos], returns, rtol=1e-6)
    assert [i["episode"]["l"] for i in infos] == [5] * 4
    stats = core.episode_stats()
    assert [i["coins_picked"] for i in infos] == stats["coins_picked"].reshape(-1).tolist()
    assert infos[0]["social_welfare"] == pytest.approx(stats["social_welfare"][0])
    core.reset(mask=truncated)
    np.testing.assert_array_equal(obs, core.observe(flat=True).reshape(4, -1))
    assert vec.core.t.tolist() == [0, 0]


def test_seed_then_reset_is_reproducible():
    def rollout(vec):
        vec.seed(123)
        out = [vec.reset()]
        for _ in range(7):
            out.append(vec.step(np.arange(vec.num_envs) % 4)[0])
        return np.stack(out)

    np.testing.assert_array_equal(rollout(CoinGameVecEnv(n_games=2)), rollout(CoinGameVecEnv(n_games=2)))


def test_dqn_trains_on_flat_observations():
    vec = CoinGameVecEnv(n_games=4, preset="3x3", obs_format="flat")
    model = DQN("MlpPolicy", vec, learning_starts=64, buffer_size=2_000, train_freq=4, seed=0)
    model.learn(400)
    assert len(model.ep_info_buffer) > 0
    assert set(model.ep_info_buffer[0]) >= {"r", "l"}


def test_ppo_trains_on_grid_observations():
    vec = CoinGameVecEnv(n_games=4, preset="3x3", obs_format="grid", reward_rule="lola")
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=0)
    model.learn(300)
    assert len(model.ep_info_buffer) > 0
    actions, _ = model.predict(vec.reset(), deterministic=True)
    assert actions.shape == (8,)


@pytest.mark.filterwarnings("ignore:The `render_mode` attribute is not defined")
def test_supersuit_route_with_the_parallel_env():
    vec = ss.pettingzoo_env_to_vec_env_v1(parallel_env(obs_format="flat"))
    vec = ss.concat_vec_envs_v1(vec, 2, num_cpus=0, base_class="stable_baselines3")
    vec = VecMonitor(vec)
    assert vec.num_envs == 4
    # no `seed=` here: SuperSuit's SB3 wrapper does not implement VecEnv.seed
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1)
    model.learn(200)
    assert len(model.ep_info_buffer) > 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="obs_format"):
        CoinGameVecEnv(obs_format="rgb")
    with pytest.raises(ValueError, match="reward_rule"):
        CoinGameVecEnv(reward_rule="nice")
    vec = CoinGameVecEnv(n_games=2)
    vec.reset()
    with pytest.raises(ValueError):
        vec.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="0..3"):
        vec.step(np.full(4, 9))


def test_attribute_access():
    vec = CoinGameVecEnv(n_games=2, preset="7x7")
    assert vec.get_attr("grid_size") == [7] * 4
    assert vec.get_attr("render_mode", indices=[0]) == [None]
    assert vec.env_is_wrapped(VecMonitor) == [False] * 4
    assert vec.env_method("episode_stats", indices=[1])[0]["episode_length"].tolist() == [0, 0]
