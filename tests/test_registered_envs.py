"""Every env id that ``import sb3_contracts`` registers passes Gymnasium's full env checker, and ``reset(seed)``
reproduces across fresh instances (the checker only compares resets of one instance)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sb3_contracts  # noqa: F401  (registers the env ids)


#: Listed from Gymnasium's registry rather than by hand, so that an id added later is checked too.
def _entry_module(entry_point) -> str:
    """The module of a registered entry point: a ``module:attr`` string, a callable, or a partial of one."""
    if isinstance(entry_point, str):
        return entry_point
    return getattr(getattr(entry_point, "func", entry_point), "__module__", "")


REGISTERED_IDS = sorted(env_id for env_id, spec in gym.registry.items()
                        if _entry_module(spec.entry_point).startswith("sb3_contracts"))


def test_the_registry_lists_the_package_ids():
    assert set(REGISTERED_IDS) == set(sb3_contracts.ENV_IDS)


@pytest.mark.parametrize("env_id", REGISTERED_IDS)
def test_registered_env_passes_gymnasiums_full_check(env_id):
    env = gym.make(env_id, disable_env_checker=True)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", REGISTERED_IDS)
def test_reset_with_a_seed_reproduces_across_fresh_envs(env_id):
    first, second = gym.make(env_id).unwrapped, gym.make(env_id).unwrapped
    obs_first, _ = first.reset(seed=5)
    obs_second, _ = second.reset(seed=5)
    np.testing.assert_array_equal(obs_first, obs_second)
    # and the episodes go on alike under the same moves
    first.action_space.seed(5)
    action = first.action_space.sample()
    np.testing.assert_array_equal(first.step(action)[0], second.step(action)[0])
