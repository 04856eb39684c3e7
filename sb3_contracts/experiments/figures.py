"""What every experiment's figures share: matplotlib without a screen, and one way to write a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no screen needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """
    Lay out (``tight``), write and close a figure, its folder made if need be.

    :param fig: the matplotlib figure
    :param path: the PNG to write
    :param dpi: its resolution
    :param tight: apply ``tight_layout`` first (a figure laid out otherwise passes ``False``)
    :return: the path written
    """
    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
