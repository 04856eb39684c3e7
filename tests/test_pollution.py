"""The pollution world: model, Gymnasium views, registration."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from sb3_contracts.envs.externality import ExternalityMDP
from sb3_contracts.envs.pollution import (
    DEFAULTS,
    PollutionConfig,
    PollutionControlEnv,
    PollutionControlPrincipalEnv,
    pollution_model,
    stock_transitions,
)
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import sb3_contracts  # noqa: F401  (registers the env ids)
from sb3_contracts.incentives import transfer_best_response, welfare, welfare_optimum


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_stock_dynamics_keep_the_mean_and_stay_on_the_grid(noise):
    config = PollutionConfig(noise=noise, max_stock=30)
    rows = stock_transitions(config, np.full(config.n_states, 2.0))
    np.testing.assert_allclose(rows.sum(axis=-1), 1.0)
    stock = np.arange(config.n_states)
    inside = (stock > 1) & (stock < 20)  # away from the grid's ends, rounding and symmetric noise keep the mean
    np.testing.assert_allclose((rows @ stock)[inside], ((1 - config.decay) * stock + 2)[inside])


def test_default_world_over_pollutes_without_incentives():
    model = pollution_model()
    assert isinstance(model, ExternalityMDP) and model.shape == (10, 21, 5)
    selfish = transfer_best_response(model, np.zeros(model.shape)).policy
    assert np.all(selfish == DEFAULTS.max_emission)
    optimum = welfare_optimum(model)
    assert np.all(optimum.policy <= selfish) and np.any(optimum.policy < selfish)
    assert welfare(model, selfish) / optimum.value <= 0.90


def test_two_firms_share_the_stock():
    config = PollutionConfig(n_firms=2)
    others = np.full((config.horizon, config.n_states), 2)
    two = pollution_model(config, others_policy=others)
    one = pollution_model()
    assert np.all(two.transitions @ np.arange(21) >= one.transitions @ np.arange(21) - 1e-9)
    assert np.all(two.principal_reward[:, :5] != one.principal_reward[:, :5])
    with pytest.raises(ValueError, match="others_policy"):
        pollution_model(config)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"horizon": 0}, ValueError), ({"horizon": True}, TypeError), ({"damage": "cubic"}, ValueError),
     ({"decay": 1.5}, ValueError), ({"initial_max_stock": 50}, ValueError), ({"noise": -0.1}, ValueError)],
)
def test_bad_configs_raise(kwargs, error):
    with pytest.raises(error):
        PollutionConfig(**kwargs)


@pytest.mark.parametrize("env_id", ["PollutionControl-v0", "PollutionControlPrincipal-v0"])
def test_views_pass_both_env_checkers(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_make_vec_env_and_render_mode():
    vec = make_vec_env("PollutionControl-v0", n_envs=2, seed=0)
    assert vec.reset().shape == (2, 2 + DEFAULTS.n_actions)
    with pytest.raises(TypeError, match="render_mode"):
        PollutionControlEnv(render_mode="human")


def test_agent_view_pays_the_offer_and_rejects_bad_actions():
    model = pollution_model()
    transfers = np.zeros(model.shape)
    transfers[..., 1] = 3.0
    env = PollutionControlEnv(transfers=transfers)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[2:] * env.max_transfer, transfers[0, 0])
    _, reward, terminated, _, info = env.step(1)
    assert reward == pytest.approx(3.5 + 3.0) and info["transfer"] == 3.0 and not terminated
    for bad in (7, -1, 1.5, True):
        with pytest.raises(ValueError, match="emission level"):
            env.step(bad)
    for _ in range(9):
        *_, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(ValueError, match="transfers"):
        PollutionControlEnv(transfers=-transfers)


def test_principal_view_embedded_firm_answers_minimal_offers():
    env = PollutionControlPrincipalEnv()
    env.reset(seed=0)
    offer = np.zeros(DEFAULTS.n_actions, np.float32)
    offer[2] = 2.05  # above the gap of emitting 2 instead of 4 (8 - 6)
    _, reward, _, _, info = env.step(offer)
    assert info["emission"] == 2 and reward == pytest.approx(info["welfare"] - info["firm_reward"])
    with pytest.raises(ValueError, match="non-negative"):
        env.step(-np.ones(DEFAULTS.n_actions, np.float32))


def test_the_pollution_world_imports_without_torch_and_its_ids_register_on_import(tmp_path):
    import subprocess
    import sys

    code = ("import sys, gymnasium\n"
            "import sb3_contracts.envs.pollution\n"
            "assert not [m for m in ('torch', 'stable_baselines3') if m in sys.modules]\n"
            "import sb3_contracts\n"
            "assert {'PollutionControl-v0', 'PollutionControlPrincipal-v0'} <= set(gymnasium.registry)\n"
            "assert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
