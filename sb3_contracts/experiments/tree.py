"""The binary-tree experiment (the paper's Figure 3) as one run: ContractDQN on a random tree, scored against the SPE.

:class:`TreeExperimentConfig` holds its settings (the tuned presets of :mod:`sb3_contracts.contract_dqn.presets` by
default); :func:`run_tree_experiment` trains the principal and evaluates it against the exact best-responding agent
over training (``sb3-contracts tree`` and the sweeps run it); :func:`tree_table` and :func:`plot_tree_curves` read the
``metrics.json`` files it writes. Example::

    from sb3_contracts.experiments.tree import TreeExperimentConfig, run_tree_experiment

    model, results = run_tree_experiment(TreeExperimentConfig(depth=10, tree_seed=0, seed=0), "runs/tree")
    results["final"]   # utility_ratio, accuracy, follow_rate, principal_value
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_N_ENVS, TREE_START_STATES
from sb3_contracts.experiments.runner import experiment_folder
from sb3_contracts.game.batch import StartStates, check_start_states

#: Share of training at the end over which ``utility_ratio_min_last10`` takes the minimum.
LAST_SHARE = 0.1


@dataclass
class TreeExperimentConfig:
    """What :func:`run_tree_experiment` runs."""

    depth: int = 10
    """depth of the random binary tree (``2**depth - 1`` decision states)"""
    tree_seed: int = 0
    """seed of the tree (:func:`~sb3_contracts.envs.random_binary_tree`)"""
    seed: int = 0
    """training seed: the learner's and its episodes' (``sb3-contracts tree --trial``)"""
    iterations: int = TREE_ITERATIONS
    """vec-env steps of training, one gradient step each"""
    n_envs: int = TREE_N_ENVS
    """parallel episodes"""
    start_states: StartStates = TREE_START_STATES
    """where training episodes start: in any state (``"uniform"``, exploring starts), at the root (``"initial"``), or
    a share in [0, 1] of them at the root and the others anywhere"""
    n_evaluations: int = 20
    """exact evaluations over training"""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """overrides of :func:`~sb3_contracts.contract_dqn.presets.binary_tree_hyperparams`"""
    threads: int = 1
    """torch threads (1 is fastest for these small networks)"""

    def __post_init__(self) -> None:
        for name in ("depth", "iterations", "n_envs", "n_evaluations", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_start_states(self.start_states)
        if not isinstance(self.hyperparams, dict):
            raise ValueError(f"hyperparams must be a dict of ContractDQN arguments, got {self.hyperparams!r}")


def run_tree_experiment(config: TreeExperimentConfig, out: str | Path | None = None,
                        tensorboard_log: str | None = None, tb_log_name: str | None = None, progress_bar: bool = False,
                        on_evaluation: Callable[[int, Any], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """
    Train ContractDQN on the tree and evaluate it against the exact best-responding agent ``n_evaluations`` times.

    :param config: the experiment
    :param out: folder for ``metrics.json``, ``model.zip`` and TensorBoard (``<out>/tb``); ``None``: no files
    :param tensorboard_log: TensorBoard folder (default ``<out>/tb``)
    :param tb_log_name: the TensorBoard run's name (default ``tree_d<depth>_s<tree_seed>_t<seed>``)
    :param progress_bar: show SB3's progress bar
    :param on_evaluation: called with ``(num_timesteps, PrincipalEvaluation)`` after each evaluation
    :return: the model and the results: ``config``, ``final`` (the last evaluation), ``history`` (every
        evaluation with its ``steps``), ``utility_ratio_min_last10`` (the minimum over the last 10% of training)
        and ``wall_s`` (training time)
    """
    import torch as th

    from sb3_contracts.contract_dqn import ContractDQN
    from sb3_contracts.contract_dqn.presets import binary_tree_hyperparams
    from sb3_contracts.envs.binary_tree import random_binary_tree
    from sb3_contracts.evaluation import ExactEvaluationCallback
    from sb3_contracts.game import PrincipalVecEnv

    folder = experiment_folder(out)
    th.set_num_threads(config.threads)  # small MLPs train fastest on one thread; more only add synchronisation
    mdp = random_binary_tree(config.depth, config.tree_seed)
    env = PrincipalVecEnv(mdp, n_envs=config.n_envs, seed=config.seed)
    hyperparams = {**binary_tree_hyperparams(config.n_envs), "training_start_states": config.start_states,
                   **config.hyperparams}
    if tensorboard_log is None and folder is not None:
        tensorboard_log = str(folder / "tb")
    model = ContractDQN("MlpPolicy", env, seed=config.seed, tensorboard_log=tensorboard_log, **hyperparams)
    total = config.iterations * config.n_envs
    callback = ExactEvaluationCallback(mdp, eval_freq=max(total // config.n_evaluations, 1),
                                       on_evaluation=on_evaluation)
    start = time.perf_counter()
    model.learn(total, callback=callback, progress_bar=progress_bar,
                tb_log_name=tb_log_name or f"tree_d{config.depth}_s{config.tree_seed}_t{config.seed}")
    wall = time.perf_counter() - start
    history = [{"steps": steps, **evaluation.as_dict()} for steps, evaluation in callback.history]
    last = [row["utility_ratio"] for row in history if row["steps"] >= (1 - LAST_SHARE) * total]
    results = {"config": asdict(config), "final": history[-1], "history": history,
               "utility_ratio_min_last10": float(min(last)), "wall_s": wall}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.zip")
        (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
    return model, results


def load_tree_metrics(path: str | Path) -> dict[str, Any]:
    """
    Read one tree run's metrics.

    :param path: a ``metrics.json`` file or the run's folder
    """
    path = Path(path)
    path = path / "metrics.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json at {path}")
    metrics = json.loads(path.read_text())
    if not isinstance(metrics, dict) or not {"config", "final", "history"} <= metrics.keys():
        raise ValueError(f"{path} is not a tree experiment's metrics.json (no 'config', 'final' and 'history')")
    return metrics


def tree_table(paths: Sequence[str | Path]) -> str:
    """
    Tree runs as a Markdown table: one row per run, then the mean ± standard deviation over runs.

    :param paths: run folders or ``metrics.json`` files
    """
    if not paths:
        raise ValueError("tree_table needs at least one run")
    runs = [load_tree_metrics(path) for path in paths]
    columns = ("utility_ratio", "accuracy", "follow_rate")
    lines = ["| depth | tree | seed | utility_ratio | accuracy | follow_rate | min utility_ratio, last 10% | wall |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        config, final = run["config"], run["final"]
        lines.append(f"| {config['depth']} | {config['tree_seed']} | {config['seed']} | "
                     + " | ".join(f"{final[key]:.3f}" for key in columns)
                     + f" | {run['utility_ratio_min_last10']:.3f} | {run['wall_s']:.0f} s |")
    values = {key: [run["final"][key] for run in runs] for key in columns}
    values["min"] = [run["utility_ratio_min_last10"] for run in runs]
    cells = [f"{np.mean(value):.3f} ± {np.std(value):.3f}" for value in values.values()]
    lines.append(f"| mean ± std | | | {' | '.join(cells)} | |")
    return "\n".join(lines)


def plot_tree_curves(paths: Sequence[str | Path], out: str | Path) -> Path:
    """
    Utility ratio and accuracy over training (one thin line per run, their mean in bold) into a PNG.

    :param paths: run folders or ``metrics.json`` files
    :param out: the PNG file to write
    :return: the path written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not paths:
        raise ValueError("plot_tree_curves needs at least one run")
    runs = [load_tree_metrics(path) for path in paths]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("utility_ratio", "accuracy"), strict=True):
        curves = []
        for run in runs:
            steps = [row["steps"] for row in run["history"]]
            curves.append([row[key] for row in run["history"]])
            ax.plot(steps, curves[-1], color="tab:blue", alpha=0.3, linewidth=0.8)
        length = min(len(curve) for curve in curves)
        ax.plot(steps[:length], np.mean([curve[:length] for curve in curves], axis=0), color="tab:blue", linewidth=2)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("env steps")
        ax.set_title(key)
    config = runs[0]["config"]
    fig.suptitle(f"ContractDQN on depth-{config['depth']} trees ({len(runs)} run{'s' if len(runs) > 1 else ''})")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
