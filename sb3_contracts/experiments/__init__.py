"""Experiments: one interface for every experiment (:class:`~sb3_contracts.experiments.runner.Experiment`) and one
runner (:func:`~sb3_contracts.experiments.runner.run_experiment`).

* :mod:`~sb3_contracts.experiments.runner`: the interface, the runner, the phase DAG in sequence or as Ray tasks.
* :mod:`~sb3_contracts.experiments.coin`: the Coin Game under a principal (the paper's Figure 2), or any game the
  contract layer wraps (``game=``, e.g. Escape Room).
* :mod:`~sb3_contracts.experiments.tree`: ContractDQN on a random binary tree, scored against the SPE (Figure 3).
* :mod:`~sb3_contracts.experiments.two_phase`: the second system, transfers for a learning firm (pollution).
* :mod:`~sb3_contracts.experiments.bandit`: its one-state case against Scheid et al.'s algorithm.

Experiments are known by name (:func:`get_experiment`); their modules load on first use, so that importing this
package imports neither torch nor Stable-Baselines3. Example::

    from sb3_contracts.experiments import get_experiment, run_experiment

    tree = get_experiment("tree")
    results = run_experiment(tree, tree.settings(depth=6, seed=1), out="runs/tree_d6")
    results["summary"]   # utility_ratio, accuracy, ...
"""

from __future__ import annotations

import importlib

from sb3_contracts.experiments.runner import Experiment, RunContext, load_metrics, run_experiment

#: The experiments that come with the package: the module holding each one's ``EXPERIMENT``.
BUILTIN = {
    "coin": "sb3_contracts.experiments.coin.experiment",
    "tree": "sb3_contracts.experiments.tree",
    "two_phase": "sb3_contracts.experiments.two_phase",
    "bandit": "sb3_contracts.experiments.bandit",
}
_REGISTERED: dict[str, Experiment] = {}


def experiment_names() -> list[str]:
    """The names of every experiment (the built-in ones, then those registered)."""
    return [*BUILTIN, *_REGISTERED]


def get_experiment(name: str) -> Experiment:
    """
    The experiment called ``name``.

    :raise ValueError: naming the known experiments
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in BUILTIN:
        raise ValueError(f"experiment must be one of {experiment_names()}, got {name!r}")
    return importlib.import_module(BUILTIN[name]).EXPERIMENT


def register_experiment(experiment: Experiment) -> None:
    """
    Make an experiment of your own known by its name (the command line's ``sweep``, ``table`` and ``plot``, once
    its module is imported).

    :param experiment: the experiment; its name must be new
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    if experiment.name in experiment_names():
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    _REGISTERED[experiment.name] = experiment


__all__ = ["BUILTIN", "Experiment", "RunContext", "experiment_names", "get_experiment", "load_metrics",
           "register_experiment", "run_experiment"]
