"""Build a registered env id as one batched SB3 ``VecEnv`` when the package registers one with it."""

from __future__ import annotations

import importlib
from typing import Any

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv


def make_batched_vec_env(env_id: str, n_envs: int = 1, seed: int | None = None,
                         env_kwargs: dict[str, Any] | None = None) -> VecEnv:
    """
    The env id as a VecEnv of ``n_envs`` episodes: the batched VecEnv registered with it in
    ``sb3_contracts.BATCHED_VEC_ENVS`` (all episodes in arrays, stepped with no Python loop over envs, and
    Monitor-style ``episode`` infos of its own; the id's registered arguments, then ``env_kwargs``), else SB3's
    ``make_vec_env`` (a ``DummyVecEnv`` of ``gym.make``).

    :param env_id: a registered Gymnasium id
    :param n_envs: number of parallel episodes
    :param seed: seed of the episodes
    :param env_kwargs: the env's arguments
    """
    import gymnasium

    from sb3_contracts import BATCHED_VEC_ENVS  # the package registers the ids on import

    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    entry_point = BATCHED_VEC_ENVS.get(env_id)
    if entry_point is None:
        return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    module, name = entry_point.split(":")
    kwargs = {**gymnasium.spec(env_id).kwargs, **(env_kwargs or {})}  # the id's own defaults first, as gym.make
    return getattr(importlib.import_module(module), name)(n_envs, seed=seed, **kwargs)
