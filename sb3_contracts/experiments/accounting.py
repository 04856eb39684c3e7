"""What a benchmark's last JSON line reports of its cost: wall time, the CPU time of all its processes and the
machine's load when it started (absolute times move with the machine and with what else runs; CPU time much less).

Example::

    from sb3_contracts.experiments.accounting import Accounting

    cost = Accounting()
    results = run_experiment(EXPERIMENT, settings, parallel=True)
    print(json.dumps({**figures, **cost.figures(elsewhere_s=results["cpu_s"])}))
"""

from __future__ import annotations

import os
import time

try:
    import resource
except ImportError:  # not POSIX (Windows): this process only
    resource = None  # type: ignore[assignment]


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended and been waited for."""
    if resource is None:
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Accounting:
    """
    A benchmark's cost from its creation: :meth:`figures` gives ``wall_s``, ``cpu_s`` and ``load_1m_at_start``.

    Ray workers are not this process's children: the CPU time they spent (e.g. the experiment's ``cpu_s``, which
    every phase measures in the process that ran it) is passed to :meth:`figures` as ``elsewhere_s``.
    """

    def __init__(self) -> None:
        self.load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()

    def figures(self, elsewhere_s: float = 0.0) -> dict[str, float]:
        """
        The cost so far.

        :param elsewhere_s: CPU seconds spent in processes this one does not wait for (Ray workers)
        :return: ``wall_s``, ``cpu_s`` (this process, its waited-for children and ``elsewhere_s``), ``cpu_s_elsewhere``
            and ``load_1m_at_start``
        """
        return {"wall_s": round(time.perf_counter() - self._wall, 2),
                "cpu_s": round(cpu_seconds() - self._cpu + elsewhere_s, 2), "cpu_s_elsewhere": round(elsewhere_s, 2),
                "load_1m_at_start": round(self.load_at_start, 2)}
