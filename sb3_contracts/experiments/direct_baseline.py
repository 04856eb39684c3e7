"""Baselines that search contracts directly, without recommendations or an agent model.

The principal's action is the raw contract ``Box(0, b_max, (O,))`` and an off-the-shelf continuous-control
learner (SB3 PPO or SAC) maximises ``r^p(s, o) - b(o)``. The paper warns that contract utility is
discontinuous (underpaying by any ε flips the agent), which gradient-based search over contracts
handles poorly; the tree benchmark measures how poorly.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

DIRECT_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


def make_direct_baseline(env: GymEnv, algo: str = "ppo", seed: int | None = None, **kwargs: Any) -> BaseAlgorithm:
    """
    An SB3 learner whose action is the contract itself.

    :param env: a principal-view env (:class:`~sb3_contracts.game.PrincipalEnv` or
        :class:`~sb3_contracts.game.PrincipalVecEnv`).
    :param algo: ``"ppo"`` or ``"sac"``.
    :param seed: random seed.
    :param kwargs: further arguments of the SB3 algorithm (``policy_kwargs``, ``learning_rate``...).
    :return: the (untrained) model; evaluate it with
        :func:`~sb3_contracts.evaluation.evaluate_principal` (its deterministic contracts, no recommendation).
    """
    if algo not in DIRECT_ALGORITHMS:
        raise ValueError(f"algo must be one of {sorted(DIRECT_ALGORITHMS)}, got {algo!r}")
    kwargs.setdefault("gamma", 1.0)
    return DIRECT_ALGORITHMS[algo]("MlpPolicy", env, seed=seed, **kwargs)
