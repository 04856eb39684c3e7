"""Text rendering shared by the worlds' envs and the contract layer's views (worlds draw themselves as text)."""

from __future__ import annotations


def render_text(render_mode: str | None, text: str) -> str | None:
    """
    What ``render()`` does with the text of the current step: return it (``"ansi"``), print it (``"human"``) or
    nothing (``None``).

    :param render_mode: the env's render mode
    :param text: the current step as text
    """
    if render_mode == "human":
        print(text)
        return None
    return text if render_mode == "ansi" else None
