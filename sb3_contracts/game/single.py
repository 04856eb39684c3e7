"""What the principal's and the agent's Gymnasium views share: a batch of one game, its encoding and its reset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.envs.rendering import render_text
from sb3_contracts.game.batch import ContractGameBatch, GameBatchView, StartStates
from sb3_contracts.game.encoding import StateEncoder

#: The render modes of every contract env: ``"ansi"`` returns the text of the current step, ``"human"`` prints it
#: (rl-zoo3's ``enjoy`` and SB3's ``VecEnv.render("human")`` ask for ``"human"`` and call ``render()`` each step).
RENDER_MODES = ("ansi", "human")


def check_render_mode(render_mode: str | None) -> None:
    """Accept ``None`` or one of :data:`RENDER_MODES`; anything else raises ``TypeError``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        # A TypeError, as for an unknown keyword: SB3 builds envs from ids with render_mode="rgb_array"
        # and falls back to no render mode on exactly this error.
        raise TypeError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")


def render_metadata() -> dict[str, Any]:
    """A contract env's Gymnasium ``metadata`` (a new dict per class): its render modes and a nominal frame rate."""
    # Gymnasium's checker warns on every human render of an env that declares no frame rate; text needs no pacing.
    return {"render_modes": list(RENDER_MODES), "render_fps": 4}


class SingleGameEnv(GameBatchView, gym.Env):
    """
    A Gymnasium view of one episode at a time: a thin layer over a :class:`ContractGameBatch` of one game
    (``self.game``), seeded by ``reset(seed=...)`` through the env's own ``np_random``.

    :param mdp: the principal-agent MDP.
    :param b_max: the largest payment per outcome (checked).
    :param encoding: state encoding, see :class:`~sb3_contracts.game.encoding.StateEncoder`.
    :param max_episode_steps: truncate episodes after this many steps (needed for cyclic MDPs).
    :param render_mode: ``None``, ``"ansi"`` (a one-line text description of the current step) or ``"human"``
        (prints it).
    :param start_states: ``"initial"``, ``"uniform"`` (exploring starts, for training) or a share of initial
        starts, see :func:`~sb3_contracts.game.batch.draw_start_states`.
    """

    metadata = render_metadata()

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
        return render_text(self.render_mode, f"step {int(self.game.steps[0])}: state {self.state}")
