"""State encodings: what the principal's and the agent's views observe of a tabular state."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sb3_contracts.envs.mdp import PrincipalAgentMDP

#: Largest MDP encoded one-hot; larger ones need ``state_features``.
MAX_ONE_HOT_STATES = 1 << 16
ENCODINGS = ("auto", "onehot", "features")


class StateEncoder:
    """
    Maps state indices to observation vectors.

    :param mdp: the principal-agent MDP.
    :param encoding: ``"onehot"``, ``"features"`` (the MDP's ``state_features``) or ``"auto"`` (one-hot
        when the MDP is small enough, else features).
    """

    def __init__(self, mdp: PrincipalAgentMDP, encoding: str = "auto") -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if encoding == "auto":
            encoding = "onehot" if mdp.n_states <= MAX_ONE_HOT_STATES or mdp.state_features is None else "features"
        if encoding == "onehot":
            if mdp.n_states > MAX_ONE_HOT_STATES:
                raise ValueError(f"encoding='onehot' supports at most {MAX_ONE_HOT_STATES} states, the MDP has "
                                 f"{mdp.n_states}; give the MDP state_features and use encoding='features'")
            self.dim = mdp.n_states
            low, high = 0.0, 1.0
        else:
            if mdp.state_features is None:
                raise ValueError("encoding='features' needs an MDP with state_features")
            self._features = mdp.state_features.astype(np.float32)
            self.dim = self._features.shape[1]
            low, high = -np.inf, np.inf
        self.encoding = encoding
        self.space = gym.spaces.Box(low, high, (self.dim,), np.float32)

    def __call__(self, states: np.ndarray | int) -> np.ndarray:
        """Encode one state (``[dim]``) or a batch (``[n, dim]``)."""
        states = np.asarray(states)
        if self.encoding == "features":
            return self._features[states]
        out = np.zeros((*states.shape, self.dim), dtype=np.float32)
        np.put_along_axis(out, states[..., None], 1.0, axis=-1)
        return out


def agent_observation(encoded_state: np.ndarray, contract: np.ndarray) -> np.ndarray:
    """The agent's observation: the state encoding followed by the contract on offer."""
    return np.concatenate([encoded_state, np.asarray(contract, dtype=np.float32)], axis=-1)
