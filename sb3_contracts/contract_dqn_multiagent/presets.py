"""Tuned MultiAgentContractDQN settings (one source for the learner's defaults, the Coin Game experiment and
``zoo_configs/contract_dqn_multiagent.yml``; a test keeps the YAML equal to what these generate).

:data:`PRINCIPAL_HYPERPARAMS` are the learner's settings on every game (App. D.2 of the paper scaled down: Huber
loss, gradient-norm clipping 10, the learning rate decaying from 5e-4 to 1e-4); :data:`ENV_PRESETS` adds, per
registered principal's view, what depends on the game: the nudge ξ and the encoder. ``MultiAgentContractDQN("MlpPolicy",
"ContractCoinGame-v0")`` with no other argument trains with exactly what the experiment uses. Why each value is what
it is, with the measurements: docs/results/coin_game.md and docs/results/speed.md.
"""

from __future__ import annotations

import copy
from typing import Any

from sb3_contracts.contract_dqn_multiagent.encoders import CenteredCoinExtractor

#: The principal's networks on every game: two hidden layers of 64 and torch's fused Adam (one kernel per step
#: instead of one per parameter tensor).
POLICY_KWARGS: dict[str, Any] = dict(net_arch=[64, 64], optimizer_kwargs=dict(fused=True))
#: The principal's hyperparameters on every game: one gradient step per step of the games (four cost 2.7x the CPU;
#: both side by side in docs/results/speed.md). Steps are game steps.
PRINCIPAL_HYPERPARAMS: dict[str, Any] = dict(
    learning_rate=5e-4, learning_rate_final=1e-4, buffer_size=100_000, learning_starts=1_000, batch_size=128,
    train_freq=1, gradient_steps=1, target_update_interval=2_000, exploration_initial_eps=0.4,
    exploration_final_eps=0.0, gamma=0.99, policy_kwargs=POLICY_KWARGS)
#: The nudge of an env without a preset.
DEFAULT_NUDGE = 0.05
#: The Coin Game's encoder: the agent-centric grid re-centred on its observer.
COIN_POLICY_KWARGS: dict[str, Any] = dict(POLICY_KWARGS, features_extractor_class=CenteredCoinExtractor)
#: What depends on the game, per registered principal's view: the nudge ξ paid on every followed recommendation
#: and the policy's arguments.
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "ContractCoinGame-v0": dict(nudge=0.05, policy_kwargs=COIN_POLICY_KWARGS),
    "ContractCoinGame7x7-v0": dict(nudge=0.035, policy_kwargs=COIN_POLICY_KWARGS),
    # Escape Room: the generic MLP; the nudge measured in docs/results/escape_room.md
    "ContractEscapeRoom-v0": dict(nudge=0.25),
    "ContractEscapeRoom3-v0": dict(nudge=0.25),
}


def env_preset(env_id: str | None) -> dict[str, Any]:
    """
    What :data:`ENV_PRESETS` says of ``env_id`` (a copy; empty for an env without a preset).

    :param env_id: a registered id, or ``None``
    """
    return copy.deepcopy(ENV_PRESETS.get(env_id, {})) if env_id is not None else {}
