"""What the principal's and the agent's Gymnasium views share: a batch of one game, its encoding and its reset."""

from __future__ import annotations

import gymnasium as gym

from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game.batch import ContractGameBatch, GameBatchView, StartStates
from sb3_contracts.game.encoding import StateEncoder


def check_render_mode(render_mode: str | None) -> None:
    """Accept ``None`` or ``"ansi"``; anything else raises ``TypeError``."""
    if render_mode not in (None, "ansi"):
        # A TypeError, as for an unknown keyword: SB3 builds envs from ids with render_mode="rgb_array"
        # and falls back to no render mode on exactly this error.
        raise TypeError(f"render_mode must be None or 'ansi', got {render_mode!r}")


class SingleGameEnv(GameBatchView, gym.Env):
    """
    A Gymnasium view of one episode at a time: a thin layer over a :class:`ContractGameBatch` of one game
    (``self.game``), seeded by ``reset(seed=...)`` through the env's own ``np_random``.

    :param mdp: the principal-agent MDP.
    :param b_max: the largest payment per outcome (checked).
    :param encoding: state encoding, see :class:`~sb3_contracts.game.encoding.StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param render_mode: ``None`` or ``"ansi"`` (a one-line text description of the current step).
    :param start_states: ``"initial"``, ``"uniform"`` (exploring starts, for training) or a share of initial
        starts, see :func:`~sb3_contracts.game.batch.draw_start_states`.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, mdp: PrincipalAgentMDP, b_max: float, encoding: str, max_episode_steps: int | None,
                 render_mode: str | None, start_states: StartStates) -> None:
        check_render_mode(render_mode)
        self.render_mode = render_mode
        self.game = ContractGameBatch(mdp, 1, b_max, max_episode_steps, start_states)
        self.encoder = StateEncoder(mdp, encoding)
        self._ended = False

    @property
    def state(self) -> int:
        """The current state."""
        return int(self.game.states[0])

    def _reset_game(self, seed: int | None) -> None:
        super().reset(seed=seed)
        self.game.rng = self.np_random
        self.game.reset()
        self._ended = False

    def _check_running(self) -> None:
        if self._ended:
            raise RuntimeError("the episode has ended (terminated or truncated): call reset() before step()")

    def _end_if(self, terminated: bool, truncated: bool) -> tuple[bool, bool]:
        self._ended = terminated or truncated
        return terminated, truncated

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return f"step {int(self.game.steps[0])}: state {self.state}"
