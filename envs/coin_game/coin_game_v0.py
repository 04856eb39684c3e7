# noqa: D212, D415
"""
# Coin Game

| Import               | `from sb3_contracts.envs.coin_game import coin_game_v0`          |
|----------------------|------------------------------------------------------------------|
| Actions              | Discrete                                                         |
| Parallel API         | Yes (native; `env()` / `raw_env()` give the AEC view)            |
| Manual Control       | No                                                               |
| Agents               | `agents= ['player_0', 'player_1', ...]`                          |
| Agents               | 2 to 4                                                           |
| Action Shape         | (1,)                                                             |
| Action Values        | 0 right, 1 left, 2 down, 3 up                                    |
| Observation Shape    | (4, G, G), or (4 G G,) with `obs_format="flat"`                  |
| Observation Values   | {0, 1} (float32)                                                 |
| State Shape          | (2 n_agents, G, G)                                               |
| State Values         | {0, 1} (float32)                                                 |

Two to four players walk on a toroidal `G x G` grid on which one coin lies at a time; each player
owns a colour. Picking a coin of one's own colour is good for oneself, picking another's coin hurts
the owner (or forgoes its larger reward), so selfish play lowers social welfare: the rllib/LOLA
Coin Game as used by Ivanov et al. (2024). The mechanics, the reward rules and the observation
channels are pinned in :mod:`sb3_contracts.envs.coin_game.core`; this env is a thin view over a
:class:`~sb3_contracts.envs.coin_game.core.CoinGameBatch` of one game (``env.core``), so both give
identical trajectories for the same seed and actions.

### Arguments

```python
coin_game_v0.parallel_env(preset="7x7", reward_rule="parl", n_agents=2, obs_format="grid", contested="random")
```

`preset`: `"3x3"` (3x3 grid, 20 steps: the paper's appendix) or `"7x7"` (7x7, 50 steps: its main experiment);
`grid_size` and `max_steps` override it. `reward_rule`: `"parl"` (the paper's: +1 for one's own colour, +0.2
for another's) or `"lola"` (+1 to a taker, -2 to the owner of a taken coin). `n_agents`: 2 to 4 (these are the
fields of `CoinGameConfig`, which `config=` takes whole). `obs_format`: `"grid"` or `"flat"`. `render_mode`:
`None`, `"ansi"` or `"human"`. `contested`: who collects a coin that several players reach in the same step:
one `"random"` winner (the default, as everywhere in the package: `CoinGameConfig`) or `"all"` of them
(rllib's default); the winner is drawn uniformly from the game's own generator so that seeds reproduce (the
others on the coin get nothing and have not picked it); under `"lola"` the owner's -2 applies when the
collector is another player.

**Episode end**: truncation after exactly `max_steps` steps; the game never terminates. At the last
step every agent's `info` holds its episode statistics (`episode_return`, `coins_picked`,
`own_coins_picked`, `pick_speed`, `pick_own_color`) and the game's `social_welfare` and
`episode_length`.

### Version History

* v0: Initial version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper

from ..rendering import render_text
from .core import N_ACTIONS, N_OBS_CHANNELS, OBS_FORMATS, CoinGameBatch, CoinGameConfig

__all__ = ["CoinGameContractBatch", "CoinGameParallelEnv", "env", "parallel_env", "raw_env"]


class CoinGameContractBatch:
    """
    A :class:`CoinGameBatch` as the contract layer steps a game batch (its fast path, see
    ``sb3_contracts.game.parallel_games``): every player's flat agent-centric view as its row, terminations that never
    happen, and the Coin Game's own episode statistics. Everything else is the wrapped batch's (``self.core``):
    positions, ``rng`` (whose draws the scripted players share), ``t``, ``render_ansi``...

    :param core: the batch of games
    :param possible_agents: the players' names, in row order
    """

    def __init__(self, core: CoinGameBatch, possible_agents: list[str]) -> None:
        self.core = core
        self.possible_agents = list(possible_agents)
        self.n_actions = N_ACTIONS
        g, n = core.grid_size, core.n_agents
        self.observation_space = spaces.Box(0.0, 1.0, (n, N_OBS_CHANNELS * g * g), dtype=np.float32)
        self.state_space = spaces.Box(0.0, 1.0, (2 * n, g, g), dtype=np.float32)
        self._never = np.zeros(core.n_games, dtype=bool)

    def __getattr__(self, name: str) -> Any:
        if name == "core":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.core, name)

    @property
    def rng(self) -> np.random.Generator:
        """The batch's random generator (the contract layer's responders draw from it too)."""
        return self.core.rng

    def reset(self, seed: int | None = None, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every game, or in those of ``mask`` (``seed`` reseeds the batch's generator)."""
        self.core.reset(seed=seed, mask=mask)

    def observe(self, flat: bool = True) -> np.ndarray:
        """
        Every player's agent-centric view: a buffer the next call overwrites.

        :param flat: ``[n_games, n_agents, 4 G G]`` (the layer's rows, the default) or ``[n_games, n_agents, 4, G, G]``
        """
        return self.core.observe(flat=flat)

    def global_state(self) -> np.ndarray:
        """Every game's global state ``[n_games, 2 n_agents, G, G]``: a buffer the next call overwrites."""
        return self.core.global_state()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every game: rewards ``[n_games, n_agents]``, terminations (never) and truncations."""
        rewards, truncated = self.core.step(actions)
        return rewards, self._never, truncated

    def episode_infos(self, games: list[int]) -> list[dict[str, float]]:
        """
        The finished episodes' statistics, one dict per game of ``games``: ``episode_welfare`` (as the core counts
        it), ``pick_speed`` (coins per step, mean over players) and ``pick_own_color`` (mean over the players that
        picked a coin; NaN if none did).
        """
        stats = self.core.episode_stats()
        infos = []
        for game in games:
            own = stats["pick_own_color"][game]
            infos.append({"episode_welfare": float(stats["social_welfare"][game]),
                          "pick_speed": float(stats["pick_speed"][game].mean()),
                          "pick_own_color": float(np.nanmean(own)) if np.isfinite(own).any() else float("nan")})
        return infos


class CoinGameParallelEnv(ParallelEnv):
    """
    The Coin Game as a PettingZoo ``ParallelEnv``: a thin layer over a :class:`CoinGameBatch` of
    one game (available as ``self.core``), so both give identical trajectories for the same seed
    and actions. Agents are ``"player_0"``, ... and ``"player_i"`` owns colour ``i``.

    :param config: the game's rules (:class:`~sb3_contracts.envs.coin_game.CoinGameConfig`), or give its fields as
        keywords (``game``: ``preset``, ``grid_size``, ``max_steps``, ``n_agents``, ``reward_rule``, ``contested``)
    :param obs_format: ``"grid"`` for ``(4, G, G)`` observations, ``"flat"`` for ``(4 * G * G,)``
    :param render_mode: ``None``, ``"ansi"`` (``render`` returns a string) or ``"human"`` (prints it)
    """

    metadata = {"name": "coin_game_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(self, config: CoinGameConfig | None = None, obs_format: str = "grid",
                 render_mode: str | None = None, **game: Any) -> None:
        if obs_format not in OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {OBS_FORMATS}, got {obs_format!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.core = CoinGameBatch(1, config, **game)
        self.obs_format = obs_format
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(self.core.n_agents)]
        self.agents: list[str] = []
        g = self.core.grid_size
        shape = (N_OBS_CHANNELS * g * g,) if obs_format == "flat" else (N_OBS_CHANNELS, g, g)
        self._observation_spaces = {
            agent: spaces.Box(0.0, 1.0, shape, dtype=np.float32) for agent in self.possible_agents
        }
        self._action_spaces = {agent: spaces.Discrete(N_ACTIONS) for agent in self.possible_agents}
        self.state_space = spaces.Box(0.0, 1.0, (2 * self.core.n_agents, g, g), dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def make_batch(self, n_games: int, seed: int | None = None) -> CoinGameContractBatch:
        """
        ``n_games`` games of this env's rules stepped together: the contract layer's batched fast path.

        :param n_games: number of games
        :param seed: seed of the batch's random generator
        """
        return CoinGameContractBatch(CoinGameBatch(n_games, self.core.config, seed=seed), self.possible_agents)

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """
        Start a new episode.

        :param seed: seed of the game's random generator
        :param options: unused
        :return: observations and (empty) infos per agent
        """
        self.core.reset(seed=seed)
        self.agents = self.possible_agents[:]
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """
        Advance the game by one step.

        :param actions: one action in ``0..3`` per live agent
        :return: observations, rewards, terminations (always False), truncations and infos per
            agent; at the last step the infos hold the episode statistics
        """
        if not self.agents:
            raise RuntimeError("the episode is over: call reset() before step()")
        agents = self.agents
        try:
            joint = np.asarray([[actions[agent] for agent in agents]])
        except KeyError as missing:
            raise ValueError(f"actions must hold one action per agent {agents}, missing {missing}") from None
        if len(actions) != len(agents):
            raise ValueError(f"actions must hold exactly one action per agent {agents}, got keys {list(actions)}")
        rewards, truncated = self.core.step(joint)
        observations = self._observations()
        done = bool(truncated[0])
        infos = self._episode_infos() if done else {agent: {} for agent in agents}
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return (
            observations,
            dict(zip(agents, rewards[0].tolist(), strict=True)),
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, done),
            infos,
        )

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self.core.observe(flat=self.obs_format == "flat")[0].copy()
        return dict(zip(self.agents, obs, strict=True))

    def _episode_infos(self) -> dict[str, dict[str, Any]]:
        stats = self.core.episode_stats()
        welfare = float(stats["social_welfare"][0])
        length = int(stats["episode_length"][0])
        per_agent = ("episode_return", "coins_picked", "own_coins_picked", "pick_speed", "pick_own_color")
        return {
            agent: {
                **{key: stats[key][0, i].item() for key in per_agent},
                "social_welfare": welfare,
                "episode_length": length,
            }
            for i, agent in enumerate(self.agents)
        }

    def state(self) -> np.ndarray:
        """The global state (``2 * n_agents`` channels, see the module docstring)."""
        return self.core.global_state()[0].copy()

    def render(self) -> str | None:
        """Draw the game as text (``render_mode="ansi"`` returns it, ``"human"`` prints it)."""
        if self.render_mode is None:
            return None
        return render_text(self.render_mode, self.core.render_ansi(0))

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> CoinGameParallelEnv:
    """
    Make the Coin Game ``ParallelEnv``.

    :param kwargs: arguments of :class:`CoinGameParallelEnv`
    """
    return CoinGameParallelEnv(**kwargs)


def raw_env(**kwargs: Any) -> AECEnv:
    """
    Make the Coin Game's AEC view, unwrapped (PettingZoo's ``parallel_to_aec`` conversion).

    :param kwargs: arguments of :class:`CoinGameParallelEnv`
    """
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def env(**kwargs: Any) -> AECEnv:
    """
    Make the Coin Game's AEC view in PettingZoo's standard wrappers (out-of-bounds actions and calls out of
    order raise clear errors).

    :param kwargs: arguments of :class:`CoinGameParallelEnv`
    """
    return wrappers.OrderEnforcingWrapper(wrappers.AssertOutOfBoundsWrapper(raw_env(**kwargs)))
