"""SB3 agents on the pollution world's agent's view (``PollutionControl-v0``), scored exactly.

A DQN firm trains on the agent's view under a fixed transfer schedule (none, or the oracle ``τ* + η``);
its greedy policy is then read off state by state and scored exactly (``W(π) / W*``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sb3_contracts.envs.pollution import PollutionConfig, PollutionControlEnv, pollution_model
from sb3_contracts.incentives.exact import welfare, welfare_optimum
from sb3_contracts.incentives.schedules import oracle_transfers


def greedy_policy(model: Any, env: PollutionControlEnv) -> np.ndarray:
    """``[H, S]``: an SB3 model's deterministic action in every step and stock of the env's world."""
    config = env.config
    h, s = np.meshgrid(np.arange(config.horizon), np.arange(config.n_states), indexing="ij")
    offers = np.stack([env.schedule(int(i), int(j)) for i, j in zip(h.ravel(), s.ravel(), strict=True)])
    observations = np.concatenate([np.stack([s.ravel() / config.max_stock, h.ravel() / config.horizon], axis=1),
                                   offers / env.max_transfer], axis=1).astype(np.float32)
    actions, _ = model.predict(observations, deterministic=True)
    return np.asarray(actions, dtype=np.int64).reshape(config.horizon, config.n_states)


def train_dqn_firm(config: PollutionConfig, transfers: np.ndarray | None, steps: int, seed: int = 0) -> float:
    """
    Train an SB3 DQN firm on ``PollutionControl-v0`` under fixed transfers; return ``W(π) / W*`` of its
    greedy policy.

    :param config: the world.
    :param transfers: ``[H, S, A]`` or ``None`` (no incentives).
    :param steps: environment steps of training.
    :param seed: seed.
    """
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    kwargs = {"config": config, "transfers": transfers, "max_transfer": 10.0}
    env = make_vec_env("PollutionControl-v0", n_envs=4, seed=seed, env_kwargs=kwargs)
    model = DQN("MlpPolicy", env, learning_rate=5e-4, buffer_size=50_000, learning_starts=1_000, batch_size=64,
                gamma=1.0, train_freq=4, target_update_interval=1_000, exploration_fraction=0.3,
                exploration_final_eps=0.02, policy_kwargs={"net_arch": [64, 64]}, seed=seed, verbose=0)
    model.learn(steps)
    world = pollution_model(config)
    policy = greedy_policy(model, PollutionControlEnv(**kwargs))
    return float(welfare(world, policy) / welfare_optimum(world).value)


def dqn_welfare_ratios(config: PollutionConfig, steps: int, seed: int = 0,
                       margins: tuple[float, ...] = (0.1, 1.0)) -> dict[str, float]:
    """
    The DQN firm's welfare ratio without incentives and under the oracle ``τ* + η`` for each margin ``η``
    (a function approximator needs a margin above its error, as the first system's nudge).

    :param config: the world.
    :param steps: environment steps of training per firm.
    :param seed: seed.
    :param margins: the margins ``η`` to try.
    """
    model = pollution_model(config)
    ratios = {"none": train_dqn_firm(config, None, steps, seed), "steps": steps}
    for margin in margins:
        ratios[f"oracle_margin_{margin:g}"] = train_dqn_firm(config, oracle_transfers(model, margin), steps, seed)
    return ratios
