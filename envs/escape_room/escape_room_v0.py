# noqa: D212, D415
"""
# Escape Room

| Import               | `from sb3_contracts.envs.escape_room import escape_room_v0`      |
|----------------------|------------------------------------------------------------------|
| Actions              | Discrete                                                         |
| Parallel API         | Yes (native; `env()` / `raw_env()` give the AEC view)            |
| Manual Control       | No                                                               |
| Agents               | `agents= ['agent_0', 'agent_1', ...]`                            |
| Agents               | 2 or more                                                        |
| Action Shape         | (1,)                                                             |
| Action Values        | 0 go to the lever, 1 go to the start, 2 go to the door           |
| Observation Shape    | (3 N,)                                                           |
| Observation Values   | {0, 1} (float32): one-hot positions, own first                   |
| State Shape          | (N,)                                                             |
| State Values         | 0 lever, 1 start, 2 door                                         |

The Escape Room of Yang et al. (2020, LIO), a social dilemma of `N` agents: the door opens in a step where at
least `M` agents choose the lever, and only those who choose the door then earn +10; pulling the lever costs -1
(any move does; staying costs nothing). Someone must sacrifice for the others to get out, so selfish learners stay
at the start. The rules are those of LIO's `room_symmetric.py`, pinned in
:mod:`sb3_contracts.envs.escape_room.core`; this env is a thin view over an
:class:`~sb3_contracts.envs.escape_room.core.EscapeRoomBatch` of one room (`env.core`), and `env.make_batch(n)`
gives the batched core the contract layer steps as its fast path.

### Arguments

```python
escape_room_v0.parallel_env(n_agents=2, min_at_lever=1, max_steps=5)
```

`n_agents`: `N >= 2`. `min_at_lever`: `M`, with `1 <= M < N`. `max_steps`: the length of an episode at most
(LIO's 5). These are the fields of `EscapeRoomConfig`, which `config=` takes whole. `render_mode`: `None`, `"ansi"`
or `"human"`.

**Episode end**: termination when the door is open and some agent ends the step at the door, or after
`max_steps` steps (as LIO's `done`; never truncation: the step limit is part of the game and no agent observes the
clock, so a learner must not bootstrap through it). At the last step every agent's `info` holds `episode_welfare`
and `episode_length`.
The optimum is `10 (N - M) - M` per episode (9 for N = 2 / M = 1, 8 for N = 3 / M = 2).

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
from .core import N_ACTIONS, N_POSITIONS, EscapeRoomBatch, EscapeRoomConfig

__all__ = ["EscapeRoomParallelEnv", "env", "parallel_env", "raw_env"]

_SYMBOLS = "LSD"


class EscapeRoomParallelEnv(ParallelEnv):
    """
    Escape Room as a PettingZoo ``ParallelEnv``, a view over an :class:`EscapeRoomBatch` of one room (``self.core``).

    :param config: the rules (:class:`~sb3_contracts.envs.escape_room.core.EscapeRoomConfig`), or give its fields as
        keywords (``n_agents``, ``min_at_lever``, ``max_steps``)
    :param render_mode: ``None``, ``"ansi"`` (``render`` returns a string) or ``"human"`` (prints it)
    """

    metadata = {"name": "escape_room_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(self, config: EscapeRoomConfig | None = None, render_mode: str | None = None, **rules: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.core = EscapeRoomBatch(1, config, **rules)
        self.config = self.core.config
        self.render_mode = render_mode
        self.possible_agents = list(self.core.possible_agents)
        self.agents: list[str] = []
        n = self.core.n_agents
        self._observation_space = spaces.Box(0.0, 1.0, (N_POSITIONS * n,), dtype=np.float32)
        self._action_space = spaces.Discrete(N_ACTIONS)
        self.state_space = spaces.MultiDiscrete([N_POSITIONS] * n)
        self._welfare = 0.0

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    @property
    def optimal_welfare(self) -> float:
        """The most welfare an episode can give, ``10 (N - M) - M`` (what experiments compare the welfare with)."""
        return self.config.optimal_welfare

    def make_batch(self, n_games: int, seed: int | None = None) -> EscapeRoomBatch:
        """
        ``n_games`` rooms with this env's rules, stepped together (the contract layer's batched fast path).

        :param n_games: number of rooms
        :param seed: unused (no randomness)
        """
        return EscapeRoomBatch(n_games, self.config, seed=seed)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """
        Start a new episode, everyone at the start.

        :param seed: unused (no randomness)
        :param options: unused
        :return: observations and (empty) infos per agent
        """
        self.core.reset(seed=seed)
        self.agents = self.possible_agents[:]
        self._welfare = 0.0
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """
        Advance the room by one step.

        :param actions: one action in ``0..2`` per agent
        :return: observations, rewards, terminations, truncations and infos per agent
        """
        if not self.agents:
            raise RuntimeError("the episode is over: call reset() before step()")
        agents = self.agents
        missing = [agent for agent in agents if agent not in actions]
        if missing or len(actions) != len(agents):
            raise ValueError(f"actions must hold exactly one action per agent {agents}, got keys {list(actions)}")
        joint = np.asarray([[int(actions[agent]) for agent in agents]])
        rewards, terminated, truncated = self.core.step(joint)
        self._welfare += float(rewards.sum())
        done = bool(terminated[0] or truncated[0])
        extra = {"episode_welfare": self._welfare, "episode_length": int(self.core.t[0])} if done else {}
        observations = self._observations()
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return (observations, dict(zip(agents, rewards[0].tolist(), strict=True)),
                dict.fromkeys(agents, bool(terminated[0])), dict.fromkeys(agents, bool(truncated[0])),
                {agent: dict(extra) for agent in agents})

    def _observations(self) -> dict[str, np.ndarray]:
        return dict(zip(self.agents, self.core.observe()[0], strict=True))

    def state(self) -> np.ndarray:
        """Every agent's position (0 lever, 1 start, 2 door)."""
        return self.core.positions[0].copy()

    def render(self) -> str | None:
        """The positions as text, e.g. ``"step 1: L D"`` (``"ansi"`` returns it, ``"human"`` prints it)."""
        if self.render_mode is None:
            return None
        return render_text(self.render_mode,
                           f"step {int(self.core.t[0])}: " + " ".join(_SYMBOLS[p] for p in self.core.positions[0]))

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> EscapeRoomParallelEnv:
    """
    Make the Escape Room ``ParallelEnv``.

    :param kwargs: arguments of :class:`EscapeRoomParallelEnv`
    """
    return EscapeRoomParallelEnv(**kwargs)


def raw_env(**kwargs: Any) -> AECEnv:
    """
    Make the Escape Room's AEC view, unwrapped (PettingZoo's ``parallel_to_aec`` conversion).

    :param kwargs: arguments of :class:`EscapeRoomParallelEnv`
    """
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def env(**kwargs: Any) -> AECEnv:
    """
    Make the Escape Room's AEC view in PettingZoo's standard wrappers.

    :param kwargs: arguments of :class:`EscapeRoomParallelEnv`
    """
    return wrappers.OrderEnforcingWrapper(wrappers.AssertOutOfBoundsWrapper(raw_env(**kwargs)))
