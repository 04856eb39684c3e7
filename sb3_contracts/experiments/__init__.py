"""Experiments: one interface for every experiment and one runner.

* :mod:`~sb3_contracts.experiments.runner`: an experiment's phases as a DAG, run in sequence or as Ray tasks.
* :mod:`~sb3_contracts.experiments.coin`: the Coin Game under a principal (the paper's Figure 2).
* :mod:`~sb3_contracts.experiments.tree`: ContractDQN on a random binary tree, scored against the SPE (Figure 3).
* :mod:`~sb3_contracts.experiments.two_phase`: the second system, transfers for a learning firm (pollution).
"""
