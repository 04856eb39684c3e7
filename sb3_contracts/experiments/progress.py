"""Progress of phases that run as Ray tasks, where SB3's progress bars cannot be seen.

A phase's learners report through :class:`PhaseProgress`, an SB3 callback that rewrites a small file while its
phase runs as a Ray task (and does nothing in sequence, where SB3's own bars show); the runner's driver reads the
files of the running phases (:func:`read_progress`) while it waits for them. Tasks run on the driver's node (or in a
trial's one-node placement group), so a local file reaches it. Reporting reads no random numbers and changes no
training: results are the same with and without it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

#: Weight of the latest interval in the reported rate (as tqdm's smoothing): a learner slows once its updates start,
#: so its mean rate since the start would promise too little time left.
SMOOTHING = 0.3
#: The progress file of the phase running in this process (set by the runner's Ray task, ``None`` elsewhere).
_report_to: Path | None = None


@contextmanager
def reporting_to(path: str | Path | None) -> Iterator[None]:
    """
    Let the :class:`PhaseProgress` callbacks of this process report to ``path`` while in the block.

    :param path: the running phase's progress file (``None``: no reports)
    """
    global _report_to
    previous, _report_to = _report_to, Path(path) if path is not None else None
    try:
        yield
    finally:
        _report_to = previous


@dataclass(frozen=True)
class Progress:
    """
    How far a phase's current learner is.

    :param steps: its timesteps so far in this ``learn`` call
    :param total: the timesteps of this ``learn`` call
    :param rate: its recent timesteps per second (0 at the start)
    """

    steps: int
    total: int
    rate: float

    def __str__(self) -> str:
        if self.rate > 0:
            minutes, seconds = divmod(round(max(self.total - self.steps, 0) / self.rate), 60)
            left = f"{minutes}m{seconds:02d}s left" if minutes else f"{seconds} s left"
        else:
            left = "starting"
        return f"{self.steps:,}/{self.total:,} steps ({self.steps / max(self.total, 1):.0%}), " \
               f"{self.rate:,.0f} steps/s, {left}"


def read_progress(path: str | Path) -> Progress | None:
    """
    A phase's latest report.

    :param path: its progress file
    :return: ``None`` before its first report
    """
    try:
        return Progress(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):  # not written yet
        return None


class PhaseProgress(BaseCallback):
    """
    Report the learner's timesteps to the runner when its phase runs as a Ray task: its progress file, rewritten at
    the start, at most every ``every`` seconds, and at the end. Outside such a task it does nothing.

    :param every: seconds between reports
    """

    def __init__(self, every: float = 1.0) -> None:
        super().__init__()
        self.every = every
        self._path: Path | None = None
        self._first_step = self._total = self._last_steps = 0
        self._last = self._rate = 0.0

    def _on_training_start(self) -> None:
        self._path = _report_to
        self._first_step = self.model.num_timesteps
        self._total = self.locals["total_timesteps"] - self._first_step  # as SB3's progress bar counts
        self._last = time.perf_counter()
        self._last_steps, self._rate = 0, 0.0
        self._report()

    def _on_step(self) -> bool:
        if self._path is not None and time.perf_counter() - self._last >= self.every:
            self._report()
        return True

    def _on_training_end(self) -> None:
        self._report()

    def _report(self) -> None:
        if self._path is None:
            return
        now, steps = time.perf_counter(), self.model.num_timesteps - self._first_step
        if now > self._last and steps > self._last_steps:
            recent = (steps - self._last_steps) / (now - self._last)
            self._rate = recent if self._rate == 0 else SMOOTHING * recent + (1 - SMOOTHING) * self._rate
        self._last, self._last_steps = now, steps
        progress = Progress(steps, self._total, self._rate)
        partial = self._path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(progress)))
        os.replace(partial, self._path)  # the driver never reads half a file
