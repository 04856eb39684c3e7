"""Prioritized replay benchmark: the cost of one batch from a full 100,000-transition buffer.

Times ``sample_indices`` (the sum-tree draw and the weights), ``sample`` (plus reading the rows into torch) and
``update_priorities`` for batch 128, best of 5 repeats, and prints one JSON line last (microseconds per call)::

    python benchmarks/prioritized_replay.py
"""

from __future__ import annotations

import json
import timeit

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_contracts.common import PAPER_PER_KWARGS, PrioritizedReplayBuffer
from sb3_contracts.experiments.accounting import Accounting

BUFFER_SIZE = 100_000
BATCH_SIZE = 128
CALLS = 2000


def time_buffer(n_envs: int, obs_dim: int, rng: np.random.Generator) -> dict[str, float]:
    """Fill a buffer's priorities at random (the rows' contents do not change the cost) and time its calls."""
    observation_space = spaces.Box(-1.0, 1.0, (obs_dim,), dtype=np.float32)
    kwargs = {**PAPER_PER_KWARGS, "beta": 0.4, "final_beta": 1.0}  # beta > 0: the weights are really computed
    buffer = PrioritizedReplayBuffer(BUFFER_SIZE, observation_space, spaces.Discrete(4), device="cpu",
                                     n_envs=n_envs, **kwargs)
    buffer.full = True
    leaves = np.arange(len(buffer.tree))
    buffer.update_priorities(leaves, rng.exponential(size=leaves.size))
    batch = buffer.sample_indices(BATCH_SIZE).leaf_nodes_indices
    td_errors = rng.normal(size=BATCH_SIZE)
    calls = {"sample_indices": lambda: buffer.sample_indices(BATCH_SIZE),
             "sample": lambda: buffer.sample(BATCH_SIZE),
             "update_priorities": lambda: buffer.update_priorities(batch, td_errors)}
    return {f"{name}_us": round(min(timeit.repeat(call, number=CALLS, repeat=5)) / CALLS * 1e6, 1)
            for name, call in calls.items()}


def main() -> None:
    th.set_num_threads(1)
    cost = Accounting()
    np.random.seed(0)  # noqa: NPY002 (the buffer draws from the global generator, as SB3's buffers do)
    rng = np.random.default_rng(0)
    figures = {"buffer_size": BUFFER_SIZE, "batch_size": BATCH_SIZE}
    for label, n_envs, obs_dim in (("cartpole", 1, 4), ("coin_7x7_16_games", 16, 2 * 4 * 49)):
        figures.update({f"{label}_{key}": value for key, value in time_buffer(n_envs, obs_dim, rng).items()})
    print(json.dumps({**figures, **cost.figures()}))


if __name__ == "__main__":
    main()
