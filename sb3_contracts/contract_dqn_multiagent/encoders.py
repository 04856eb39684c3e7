"""Features extractor for agent-centric Coin Game observations: the grid re-centred on the observing player.

The Coin Game is a torus, so nothing about a situation depends on where on the board it happens: only where the
coins and the other players are *relative to* the observer. :class:`CenteredCoinExtractor` rolls each observation
so that the observer sits on the centre cell, which makes the same situation one input wherever it happens (49
times fewer distinct inputs on 7x7). The observations themselves are unchanged (the environment stays the paper's
agent-centric grid); this is the encoder a learner chooses, like the paper's convolution (translation
equivariance), but exact on a torus and cheap on a CPU. Any trailing features after the ``4 G G`` grid (an
agent's contract in the agents' view, the others' follow bits in the principal's agent model) pass through.

With ``contract_dims=4`` (the agents' view, whose last 4 features are the agent's contract) it also appends the
contract's recommendation as a one-hot (the move paid most, none for an all-zero contract; the convention of
:mod:`sb3_contracts.game.settlement`). The nudged payments are small next to the agents' values (0.03 on 7x7,
values near 10), and a network reads a raw 0.03 input poorly; the one-hot is scale-free. It is a function of the
agent's own observation only, so validation agents still know nothing of the principal but its contracts.

Example::

    from stable_baselines3 import DQN
    from sb3_contracts.contract_dqn_multiagent.encoders import CenteredCoinExtractor

    DQN("MlpPolicy", vec_env, policy_kwargs=dict(features_extractor_class=CenteredCoinExtractor))
"""

from __future__ import annotations

import math

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_contracts.envs.coin_game import N_OBS_CHANNELS


def infer_grid_size(dim: int) -> int:
    """
    The grid side ``G`` of a flat observation of ``dim`` features: the largest ``G`` with ``4 G G <= dim``.

    :param dim: length of a flat observation (the grid, then at most ``8 G + 3`` trailing features)
    """
    size = math.isqrt(dim // N_OBS_CHANNELS)
    if size < 1:
        raise ValueError(f"a Coin Game observation has at least {N_OBS_CHANNELS} features, got {dim}")
    return size


class CenteredCoinExtractor(BaseFeaturesExtractor):
    """
    Rolls the agent-centric grid (channels: own position, other players, own coin, other coin) so that the
    observer is on the centre cell, drops the then-constant own-position channel, and appends the trailing
    features. Batched in torch with one gather; no parameters.

    :param observation_space: flat ``Box`` of ``4 G G`` grid features followed by any extras
    :param grid_size: the grid side ``G`` (inferred from the observation length by default)
    :param contract_dims: how many of the trailing features are a contract whose recommendation to append as a
        one-hot (0: none; 4 in the agents' view)
    """

    def __init__(self, observation_space: spaces.Box, grid_size: int | None = None, contract_dims: int = 0) -> None:
        if len(observation_space.shape) != 1:
            raise ValueError(f"CenteredCoinExtractor needs flat observations, got shape {observation_space.shape}")
        dim = int(observation_space.shape[0])
        size = infer_grid_size(dim) if grid_size is None else int(grid_size)
        cells = size * size
        extras = dim - N_OBS_CHANNELS * cells
        if size < 1 or extras < 0:
            raise ValueError(f"grid_size={grid_size!r} does not fit observations of {dim} features")
        if not 0 <= contract_dims <= extras:
            raise ValueError(f"contract_dims must be in [0, {extras}] (the trailing features), got {contract_dims!r}")
        super().__init__(observation_space, (N_OBS_CHANNELS - 1) * cells + extras + contract_dims)
        self.grid_size, self.cells, self.contract_dims = size, cells, int(contract_dims)
        # source cell of each centred cell for an observer at cell 0: (row + offset) mod G, flattened
        offsets = th.arange(size) - size // 2
        rows = offsets[:, None].expand(size, size)
        cols = offsets[None, :].expand(size, size)
        self.register_buffer("_rows", rows.reshape(-1), persistent=False)
        self.register_buffer("_cols", cols.reshape(-1), persistent=False)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        batch = observations.shape[0]
        grid = observations[:, : N_OBS_CHANNELS * self.cells].reshape(batch, N_OBS_CHANNELS, self.cells)
        position = grid[:, 0].argmax(dim=1)
        size = self.grid_size
        row, col = position // size, position % size
        source = ((row[:, None] + self._rows) % size) * size + (col[:, None] + self._cols) % size
        centred = grid[:, 1:].gather(2, source[:, None, :].expand(batch, N_OBS_CHANNELS - 1, self.cells))
        features = [centred.reshape(batch, -1), observations[:, N_OBS_CHANNELS * self.cells:]]
        if self.contract_dims:
            features.append(recommendation_one_hot(observations[:, -self.contract_dims:]))
        return th.cat(features, dim=1)


class CoinConvExtractor(BaseFeaturesExtractor):
    """
    The paper's encoder (App. D.2): one 4x4 convolution from the 4 observation channels to 32, ReLU, flattened; the
    policy's ``net_arch=[64, 64]`` then adds the two fully connected layers of 64. The grid is a torus, so the
    convolution pads circularly (by 2: the 4x4 kernel then covers every cell's neighbourhood on the 3x3 grid too).
    Trailing features (an agent's contract, the others' follow bits) are appended after the flattened maps; with
    ``contract_dims`` the contract's recommendation as a one-hot too, as :class:`CenteredCoinExtractor` does.

    :param observation_space: flat ``Box`` of ``4 G G`` grid features followed by any extras
    :param grid_size: the grid side ``G`` (inferred from the observation length by default)
    :param contract_dims: how many trailing features are a contract (0: none; 4 in the agents' view)
    :param channels: output channels of the convolution (the paper's 32)
    """

    def __init__(self, observation_space: spaces.Box, grid_size: int | None = None, contract_dims: int = 0,
                 channels: int = 32) -> None:
        if len(observation_space.shape) != 1:
            raise ValueError(f"CoinConvExtractor needs flat observations, got shape {observation_space.shape}")
        dim = int(observation_space.shape[0])
        size = infer_grid_size(dim) if grid_size is None else int(grid_size)
        extras = dim - N_OBS_CHANNELS * size * size
        if size < 1 or extras < 0:
            raise ValueError(f"grid_size={grid_size!r} does not fit observations of {dim} features")
        if not 0 <= contract_dims <= extras:
            raise ValueError(f"contract_dims must be in [0, {extras}] (the trailing features), got {contract_dims!r}")
        super().__init__(observation_space, channels * (size + 1) ** 2 + extras + contract_dims)
        self.grid_size, self.contract_dims = size, int(contract_dims)
        self.conv = th.nn.Conv2d(N_OBS_CHANNELS, channels, kernel_size=4, padding=2, padding_mode="circular")

    def forward(self, observations: th.Tensor) -> th.Tensor:
        batch, size = observations.shape[0], self.grid_size
        grid = observations[:, : N_OBS_CHANNELS * size * size].reshape(batch, N_OBS_CHANNELS, size, size)
        features = [th.relu(self.conv(grid)).reshape(batch, -1), observations[:, N_OBS_CHANNELS * size * size:]]
        if self.contract_dims:
            features.append(recommendation_one_hot(observations[:, -self.contract_dims:]))
        return th.cat(features, dim=1)


def recommendation_one_hot(contract: th.Tensor) -> th.Tensor:
    """
    The recommendation of each contract ``[B, A]`` as a one-hot: the first maximal entry (ties go to the lowest
    index), none for an all-zero contract (the convention of :mod:`~sb3_contracts.game.settlement`).

    :param contract: ``[B, A]`` payments
    """
    best = contract.max(dim=1)
    one_hot = th.nn.functional.one_hot(best.indices, contract.shape[1]).to(contract.dtype)
    return one_hot * (best.values > 0)[:, None].to(contract.dtype)
