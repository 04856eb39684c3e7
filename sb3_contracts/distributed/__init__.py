"""Scale out: an experiment's phases as parallel Ray tasks, and sweeps over settings and seeds as Ray Tune trials.

Ray is optional (``pip install "sb3-contracts[distributed]"``) and imported only when used; without it the phases
run in sequence and a sweep runs its trials one after the other. :mod:`~sb3_contracts.distributed.phases` runs a
DAG of phases; :mod:`~sb3_contracts.distributed.sweep` runs the sweeps.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Phase": "sb3_contracts.distributed.phases",
    "PhaseRecord": "sb3_contracts.distributed.phases",
    "SweepExperiment": "sb3_contracts.distributed.sweep",
    "ray_available": "sb3_contracts.distributed.phases",
    "register_experiment": "sb3_contracts.distributed.sweep",
    "resume_sweep": "sb3_contracts.distributed.sweep",
    "run_phases": "sb3_contracts.distributed.phases",
    "run_sweep": "sb3_contracts.distributed.sweep",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # the sweep module imports the experiments, which import the phases module: load on first use, no cycle
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sb3_contracts.distributed' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
