"""The agents inside the principal's view: who answers a contract, and how.

A responder is a vectorised callable ``(agent_obs [N, n, 4 G G], contracts [N, n, 4], core) -> actions [N, n]``
over all ``N`` games and ``n`` agents at once (``agent_obs`` is the flat agent-centric observation of
:meth:`~sb3_contracts.envs.coin_game.CoinGameBatch.observe`; ``core`` gives scripted responders the positions and the
random generator, and stateful responders a key for the games they answer in). Two optional methods complete the
protocol: ``reset(core, games)`` is called when the episodes of ``games`` (``[N]`` booleans) start, and
``info(core)`` returns per-agent extras (``{name: [N, n]}``) that the principal's view adds to each step's ``info``
(a learner's follow bits, say). Built-ins (see :func:`make_responder`):

- ``"selfish"``: greedy-selfish moves (toward the coin, whatever its colour); contracts are ignored.
- ``"follow"``: always takes the recommended action (greedy-selfish when it has none).
- ``"threshold"`` (the default): a stand-in for a rational agent with a fixed opportunity cost of
  following. It plays greedy-selfish unless its contract pays at least ``follow_price`` on some action, and
  then takes the best-paid action (the recommendation).
- an SB3 model trained on :class:`~sb3_contracts.game.coin_agents_view.ContractAgentsVecEnv` (or, without
  the contract input, on :class:`~sb3_contracts.game.coin_vec_env.CoinGameVecEnv`), shared by all agents and
  queried with **one** ``predict`` call per step on the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sb3_contracts.envs.checks import check_real
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.envs.coin_game.policies import greedy_selfish_policy
from sb3_contracts.game.settlement import recommend

Responder = Callable[[np.ndarray, np.ndarray, CoinGameBatch], np.ndarray]
RESPONDERS = ("selfish", "follow", "threshold")
DEFAULT_FOLLOW_PRICE = 0.1


def selfish_responder(agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch | Any) -> np.ndarray:
    """
    Greedy-selfish moves; contracts are ignored.

    :param agent_obs: ``[N, n, D]`` agent observations (unused)
    :param contracts: ``[N, n, 4]`` contracts (unused)
    :param core: the batch of games (positions, and the random generator for tie-breaks), or the contract layer's
        games over it (:class:`~sb3_contracts.game.contract_game.ContractGames`, whose ``world`` it is)
    :return: actions ``[N, n]``
    """
    world = getattr(core, "world", core)
    return greedy_selfish_policy(world, world.rng)


def random_responder(agent_obs: np.ndarray, contracts: np.ndarray, core: Any) -> np.ndarray:
    """
    Uniformly random actions drawn from ``core.rng`` (any game); contracts are ignored.

    :param agent_obs: ``[N, n, D]`` agent observations (unused)
    :param contracts: ``[N, n, A]`` contracts (their shape gives the number of actions)
    :param core: anything with a NumPy generator ``rng``
    :return: actions ``[N, n]``
    """
    return core.rng.integers(contracts.shape[-1], size=contracts.shape[:2])


class ThresholdResponder:
    """
    ``fallback`` (greedy-selfish in the Coin Game) unless the contract pays at least ``follow_price`` (and more than
    zero) on some action; then the best-paid action. With ``follow_price=0`` it follows every recommendation.

    :param follow_price: the smallest payment for which an agent follows (its opportunity cost)
    :param fallback: the responder for agents that do not follow (:func:`selfish_responder` by default)
    """

    def __init__(self, follow_price: float = DEFAULT_FOLLOW_PRICE, fallback: Responder | None = None) -> None:
        self.follow_price = check_real("follow_price", follow_price, 0.0)
        self.fallback = selfish_responder if fallback is None else fallback

    def __call__(self, agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch) -> np.ndarray:
        recommended = recommend(contracts)
        enough = (recommended >= 0) & (contracts.max(axis=-1) >= self.follow_price)
        return np.where(enough, recommended, self.fallback(agent_obs, contracts, core))


class SB3Responder:
    """
    A shared-parameter SB3 model answering for every agent of every game with one ``predict`` call.

    Whether the contract is part of the model's input is read from its observation space: ``4 G G + 4``
    values (trained on the agents' view) or ``4 G G`` (trained without contracts, e.g. a baseline).

    :param model: an SB3 model (anything with ``predict`` and a flat ``observation_space``)
    :param deterministic: whether to act greedily
    """

    def __init__(self, model: Any, deterministic: bool = True) -> None:
        shape = getattr(getattr(model, "observation_space", None), "shape", None)
        if shape is None or len(shape) != 1:
            raise ValueError(f"the SB3 responder needs a model with a flat observation space, got shape {shape}")
        self.model = model
        self.deterministic = deterministic
        self.obs_dim = int(shape[0])

    def __call__(self, agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch) -> np.ndarray:
        n_games, n_agents = contracts.shape[:2]
        flat = agent_obs.reshape(n_games * n_agents, -1)
        if self.obs_dim == flat.shape[1] + contracts.shape[-1]:
            flat = np.concatenate([flat, contracts.reshape(n_games * n_agents, -1).astype(np.float32)], axis=1)
        elif self.obs_dim != flat.shape[1]:
            raise ValueError(f"the model expects observations of size {self.obs_dim}, but the game gives "
                             f"{flat.shape[1]} (+{contracts.shape[-1]} with the contract)")
        actions, _ = self.model.predict(flat, deterministic=self.deterministic)
        return np.asarray(actions).reshape(n_games, n_agents)


def make_responder(
    agents: str | Responder | Any = "threshold", follow_price: float = DEFAULT_FOLLOW_PRICE
) -> Responder:
    """
    Build a responder from a name, an SB3 model or a callable.

    :param agents: ``"selfish"``, ``"follow"``, ``"threshold"``, an SB3 model (has ``predict``), or a
        responder callable
    :param follow_price: the ``"threshold"`` responder's price
    :return: the responder
    """
    if isinstance(agents, str):
        if agents not in RESPONDERS:
            raise ValueError(f"agents must be one of {RESPONDERS}, an SB3 model or a responder callable, "
                             f"got {agents!r}")
        if agents == "selfish":
            return selfish_responder
        return ThresholdResponder(0.0 if agents == "follow" else follow_price)
    if hasattr(agents, "predict"):
        return SB3Responder(agents)
    if callable(agents):
        return agents
    raise TypeError(f"agents must be a name in {RESPONDERS}, an SB3 model or a responder callable, "
                    f"got {type(agents).__name__}")


def mixed_responder(first: Responder, others: Responder) -> Responder:
    """
    Player 0 answers with ``first``, every other player with ``others`` (both see the whole batch).

    :param first: responder of player 0
    :param others: responder of the other players
    """

    def respond(agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch) -> np.ndarray:
        own, rest = np.asarray(first(agent_obs, contracts, core)), np.asarray(others(agent_obs, contracts, core))
        rest[:, 0] = own[:, 0]
        return rest

    return respond
