"""Code the learners share, laid out like ``sb3_contrib.common``: prioritized experience replay."""

from sb3_contracts.common.prioritized import (
    PAPER_PER_KWARGS,
    PrioritizedIndices,
    PrioritizedReplayBuffer,
    PrioritizedReplayBufferSamples,
    SumTree,
)

__all__ = [
    "PAPER_PER_KWARGS",
    "PrioritizedIndices",
    "PrioritizedReplayBuffer",
    "PrioritizedReplayBufferSamples",
    "SumTree",
]
