"""The binary-tree experiment (the paper's Figure 3): ContractDQN on a random tree, scored against the SPE.

:class:`TreeSettings` holds its settings (the tuned presets of :mod:`sb3_contracts.contract_dqn.presets` by
default); its one phase trains the principal and evaluates it against the exact best-responding agent over training.
:data:`EXPERIMENT` is the experiment for the runner, the command line (``sb3-contracts tree``) and sweeps; its
table and plot read the ``metrics.json`` files runs write. Example::

    from sb3_contracts.experiments import run_experiment
    from sb3_contracts.experiments.tree import EXPERIMENT, TreeSettings

    results = run_experiment(EXPERIMENT, TreeSettings(depth=10, tree_seed=0, seed=0), "runs/tree")
    results["final"]   # utility_ratio, accuracy, follow_rate, principal_value
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_KEEP_BEST, TREE_N_ENVS, TREE_START_STATES
from sb3_contracts.experiments.figures import pyplot, save_figure
from sb3_contracts.experiments.runner import Experiment, Phase, PhaseRecord, RunContext, load_metrics
from sb3_contracts.game.batch import StartStates, check_start_states

#: Share of training at the end over which ``utility_ratio_min_last10`` takes the minimum.
LAST_SHARE = 0.1
#: The rollout evaluations' seed is the training seed plus this (draws of their own, not the training env's).
EVAL_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class TreeSettings:
    """What the tree experiment runs."""

    depth: int = 10
    """depth of the random binary tree (``2**depth - 1`` decision states)"""
    tree_seed: int = 0
    """seed of the tree (:func:`~sb3_contracts.envs.random_binary_tree`)"""
    seed: int = 0
    """training seed: the learner's and its episodes'"""
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
    keep_best: dict[str, Any] | None = field(default_factory=lambda: dict(TREE_KEEP_BEST))
    """keeping the best policy by evaluation in rollouts (:class:`~sb3_contracts.evaluation.BestPolicyCallback`):
    ``evaluations`` (how many, evenly spaced from ``start``), ``episodes`` (per evaluation) and ``start`` (the share of
    training before the first); ``None``: the trained policy is the result"""

    def __post_init__(self) -> None:
        for name in ("depth", "iterations", "n_envs", "n_evaluations", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("tree_seed", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        check_start_states(self.start_states)
        if not isinstance(self.hyperparams, dict):
            raise ValueError(f"hyperparams must be a dict of ContractDQN arguments, got {self.hyperparams!r}")
        if self.keep_best is not None:
            check_keep_best(self.keep_best)


def check_keep_best(keep_best: Mapping[str, Any]) -> None:
    """A ``ValueError`` naming the entry unless ``keep_best`` is ``{"evaluations": int >= 1, "episodes": int >= 1,
    "start": share in [0, 1)}``, optionally with ``"margins"``: the nudges each evaluation plays (see
    :class:`~sb3_contracts.evaluation.BestPolicyCallback`)."""
    keys = {"evaluations", "episodes", "start"}
    if not isinstance(keep_best, Mapping) or not keys <= set(keep_best) <= keys | {"margins"}:
        raise ValueError(f"keep_best must be None or a dict with the keys evaluations, episodes and start (and "
                         f"optionally margins), got {keep_best!r}")
    margins = keep_best.get("margins", [0.0])
    if (not isinstance(margins, (list, tuple)) or not margins
            or not all(isinstance(m, (int, float)) and not isinstance(m, bool) and m >= 0 for m in margins)):
        raise ValueError(f"keep_best['margins'] must be a non-empty list of nudges >= 0, got {margins!r}")
    for name in ("evaluations", "episodes"):
        value = keep_best[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"keep_best[{name!r}] must be a positive integer, got {value!r}")
    start = keep_best["start"]
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start < 1:
        raise ValueError(f"keep_best['start'] must be a share of training in [0, 1), got {start!r}")


def keeper_for(settings: TreeSettings, mdp: Any, on_new_best: Any) -> Any:
    """The :class:`~sb3_contracts.evaluation.BestPolicyCallback` of ``settings.keep_best`` (``None`` when off): its
    episodes start at the root and are played against the exact agent best-responding to the evaluated policy, on
    seeds of their own (:data:`EVAL_SEED_OFFSET`)."""
    if settings.keep_best is None:
        return None
    from sb3_contracts.evaluation import BestPolicyCallback
    from sb3_contracts.game import PrincipalVecEnv

    keep = settings.keep_best
    # one episode per env: every evaluation is one batch of `depth` steps
    eval_env = PrincipalVecEnv(mdp, n_envs=keep["episodes"], seed=settings.seed + EVAL_SEED_OFFSET)
    return BestPolicyCallback(eval_env, n_eval_episodes=keep["episodes"],
                              **keep_best_schedule(keep, settings.iterations * settings.n_envs),
                              eval_seed=settings.seed + EVAL_SEED_OFFSET, respond=True, on_new_best=on_new_best,
                              margins=keep.get("margins"))


def keep_best_schedule(keep_best: Mapping[str, Any], total: int) -> dict[str, int]:
    """``eval_freq`` and ``start`` of :class:`~sb3_contracts.evaluation.BestPolicyCallback` for ``keep_best``: its
    ``evaluations`` evenly spaced after the first ``start`` share of ``total`` env steps, the last at the end."""
    begin = int(keep_best["start"] * total)
    freq = max((total - begin) // keep_best["evaluations"], 1)
    return {"eval_freq": freq, "start": begin + freq}


def train_phase(settings: TreeSettings, context: RunContext) -> dict[str, Any]:
    """
    The experiment's one phase: train ContractDQN on the tree, evaluating it against the exact best-responding
    agent ``n_evaluations`` times; with ``keep_best``, the best policy by rollout evaluation is kept and returned.

    :return: ``model`` (the returned model's ``.zip`` bytes: the kept policy with ``keep_best``), ``history`` (every
        exact evaluation of the trained policy with its ``steps``), ``kept`` (the exact evaluation of each kept
        policy with the step it was kept at), ``final`` (the exact evaluation of the returned model),
        ``eval_env_steps`` (env steps of the rollout evaluations) and ``train_s`` (training time, evaluations included)
    """
    from sb3_contracts.contract_dqn import ContractDQN
    from sb3_contracts.contract_dqn.presets import binary_tree_hyperparams
    from sb3_contracts.envs.binary_tree import random_binary_tree
    from sb3_contracts.evaluation import ExactEvaluationCallback, evaluate_principal
    from sb3_contracts.experiments.progress import PhaseProgress
    from sb3_contracts.game import PrincipalVecEnv

    mdp = random_binary_tree(settings.depth, settings.tree_seed)
    env = PrincipalVecEnv(mdp, n_envs=settings.n_envs, seed=settings.seed)
    # the settings' threads, or the learner would set its own default of one for the length of learn
    hyperparams = {**binary_tree_hyperparams(settings.n_envs), "training_start_states": settings.start_states,
                   "torch_threads": settings.threads, **settings.hyperparams}
    model = ContractDQN("MlpPolicy", env, seed=settings.seed, tensorboard_log=context.tensorboard_log, **hyperparams)
    total = settings.iterations * settings.n_envs
    callback = ExactEvaluationCallback(mdp, eval_freq=max(total // settings.n_evaluations, 1))
    kept: list[dict[str, Any]] = []
    keeper = keeper_for(settings, mdp, lambda steps: kept.append(
        {"steps": steps, **evaluate_principal(model, mdp, callback.spe, callback.observations).as_dict()}))
    # the keeper first: at a step where both evaluate, the exact history sees the policy kept there
    callbacks = [c for c in (keeper, callback, PhaseProgress()) if c is not None]
    start = time.perf_counter()
    model.learn(total, callback=callbacks, progress_bar=context.progress_bar,
                tb_log_name=f"tree_d{settings.depth}_s{settings.tree_seed}_t{settings.seed}")
    train_s = time.perf_counter() - start
    final = evaluate_principal(model, mdp, callback.spe, callback.observations).as_dict()
    buffer = io.BytesIO()
    model.save(buffer)
    return {"model": buffer.getvalue(), "history": [{"steps": steps, **evaluation.as_dict()}
                                                    for steps, evaluation in callback.history],
            "kept": kept, "final": final, "eval_env_steps": 0 if keeper is None else keeper.eval_steps,
            "train_s": train_s}


def tree_phases(settings: TreeSettings, context: RunContext) -> list[Phase]:
    """The experiment's DAG: one phase."""
    return [Phase("principal", lambda: train_phase(settings, context))]


def delivered_history(history: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> list[float]:
    """
    The utility ratio of the policy a run would return at each exact evaluation of ``history``: the policy kept last
    at or before that step, or the trained one while none is kept.

    :param history: exact evaluations of the trained policy (``steps``, ``utility_ratio``), in order.
    :param kept: exact evaluations of the kept policies with the steps they were kept at, in order.
    """
    ratios, position = [], -1
    for row in history:
        while position + 1 < len(kept) and kept[position + 1]["steps"] <= row["steps"]:
            position += 1
        ratios.append(row["utility_ratio"] if position < 0 else kept[position]["utility_ratio"])
    return ratios


def tree_results(settings: TreeSettings, records: Mapping[str, PhaseRecord]) -> dict[str, Any]:
    """
    The results: ``config``, ``final`` (the returned model: the kept policy with ``keep_best``), ``final_trained``
    (the last evaluation of the trained policy), ``history`` (the trained policy's evaluations, each with
    ``delivered_utility_ratio``: the ratio of the policy the run would return at that step), ``kept``,
    ``utility_ratio_min_last10`` (the minimum of the returned policy over the last 10% of training; ``_trained``:
    the trained policy's), ``eval_env_steps``, ``train_s`` and ``summary``.
    """
    output = records["principal"].output
    history, total = output["history"], settings.iterations * settings.n_envs
    kept = output.get("kept", [])
    delivered = delivered_history(history, kept)
    history = [{**row, "delivered_utility_ratio": ratio} for row, ratio in zip(history, delivered, strict=True)]
    late = [row for row in history if row["steps"] >= (1 - LAST_SHARE) * total]
    minimum = float(min(row["delivered_utility_ratio"] for row in late))
    minimum_trained = float(min(row["utility_ratio"] for row in late))
    final = {"steps": total, **output.get("final", history[-1])}
    summary = {key: value for key, value in final.items() if key != "steps"}
    return {"config": asdict(settings), "final": final, "final_trained": history[-1], "history": history,
            "kept": kept, "utility_ratio_min_last10": minimum, "utility_ratio_min_last10_trained": minimum_trained,
            "eval_env_steps": output.get("eval_env_steps", 0), "train_s": output["train_s"],
            "summary": {**summary, "utility_ratio_min_last10": minimum,
                        "utility_ratio_trained": history[-1]["utility_ratio"],
                        "utility_ratio_min_last10_trained": minimum_trained}}


def write_model(folder: Path, settings: TreeSettings, records: Mapping[str, PhaseRecord],
                results: dict[str, Any]) -> None:
    """The trained model as ``<folder>/model.zip``."""
    (folder / "model.zip").write_bytes(records["principal"].output["model"])


def load_model(folder: str | Path) -> Any:
    """The trained ContractDQN of a run's folder (``model.zip``), loaded safely."""
    from sb3_contracts.contract_dqn import ContractDQN

    return ContractDQN.load(Path(folder) / "model.zip", device="cpu")


def tree_table(paths: Sequence[str | Path]) -> str:
    """
    Tree runs as a Markdown table: one row per run, then the mean ± standard deviation over runs.

    :param paths: run folders or ``metrics.json`` files
    """
    if not paths:
        raise ValueError("tree_table needs at least one run")
    runs = [load_metrics(path, "tree") for path in paths]
    columns = ("utility_ratio", "accuracy", "follow_rate")
    lines = ["| depth | tree | seed | utility_ratio | accuracy | follow_rate | min utility_ratio, last 10% | "
             "trained policy: end / min last 10% | wall |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        config, final = run["config"], run["final"]
        # runs written before the kept policy have no trained figures apart: the returned policy was the trained one
        trained = run.get("final_trained", final)["utility_ratio"]
        trained_min = run.get("utility_ratio_min_last10_trained", run["utility_ratio_min_last10"])
        lines.append(f"| {config['depth']} | {config['tree_seed']} | {config['seed']} | "
                     + " | ".join(f"{final[key]:.3f}" for key in columns)
                     + f" | {run['utility_ratio_min_last10']:.3f} | {trained:.3f} / {trained_min:.3f} "
                       f"| {run['wall_s']:.0f} s |")
    values = {key: [run["final"][key] for run in runs] for key in columns}
    values["min"] = [run["utility_ratio_min_last10"] for run in runs]
    cells = [f"{np.mean(value):.3f} ± {np.std(value):.3f}" for value in values.values()]
    lines.append(f"| mean ± std | | | {' | '.join(cells)} | | |")
    return "\n".join(lines)


def plot_tree_curves(paths: Sequence[str | Path], out: str | Path) -> Path:
    """
    Utility ratio and accuracy over training (one thin line per run, their mean in bold) into a PNG; see
    :func:`plot_tree_runs`.

    :param paths: run folders or ``metrics.json`` files
    :param out: the PNG file to write
    :return: the path written
    """
    if not paths:
        raise ValueError("plot_tree_curves needs at least one run")
    return plot_tree_runs([load_metrics(path, "tree") for path in paths], out)


def plot_tree_runs(runs: Sequence[Mapping[str, Any]], out: str | Path) -> Path:
    """
    Utility ratio and accuracy of the trained policy over training (one thin line per run, their mean in bold), and,
    where runs keep the best policy, the utility ratio of the policy each run would return at that step (orange).

    :param runs: the runs' results (``config`` with ``depth``; ``history`` rows with ``steps``, ``utility_ratio``,
        ``accuracy`` and, optionally, ``delivered_utility_ratio``)
    :param out: the PNG file to write
    :return: the path written
    """
    if not runs:
        raise ValueError("plot_tree_runs needs at least one run")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    titles = {"utility_ratio": "principal's utility / the SPE's", "accuracy": "recommendations equal to the SPE's"}
    # the trained policy on top: until a policy is kept the returned one is the trained one
    series = {"utility_ratio": [("utility_ratio", "tab:blue", "trained policy", 3),
                                ("delivered_utility_ratio", "tab:orange", "returned policy (kept)", 2)],
              "accuracy": [("accuracy", "tab:blue", "trained policy", 3)]}
    for ax, key in zip(axes, titles, strict=True):
        for column, color, label, zorder in series[key]:
            curves = [([row["steps"] for row in run["history"]], [row[column] for row in run["history"]])
                      for run in runs if column in run["history"][0]]
            if not curves:
                continue
            for steps, curve in curves:
                ax.plot(steps, curve, color=color, alpha=0.3, linewidth=0.8, zorder=zorder)
            length = min(len(curve) for _, curve in curves)
            ax.plot(curves[0][0][:length], np.mean([curve[:length] for _, curve in curves], axis=0), color=color,
                    linewidth=2, label=label, zorder=zorder + 2)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("training steps (all envs)")
        ax.set_title(titles[key] + " (dashed: 1)", fontsize=10)
        if len(ax.get_legend_handles_labels()[0]) > 1:
            ax.legend(fontsize=8, loc="lower right")
    config = runs[0]["config"]
    fig.suptitle(f"ContractDQN on depth-{config['depth']} trees ({len(runs)} run{'s' if len(runs) > 1 else ''}: "
                 "thin lines; their mean: bold)")
    return save_figure(fig, out)


#: The tree's rl-zoo3 file in ``zoo_configs/`` and its env id there.
ZOO_FILE, ZOO_ENV_ID = "contract_dqn.yml", "ContractBinaryTree-v0"


def zoo_hyperparams() -> dict[str, dict[str, Any]]:
    """
    The tree's rl-zoo3 entry, ``{env id: hyperparameters}``: the presets
    (:func:`~sb3_contracts.contract_dqn.presets.binary_tree_hyperparams`) with their budget, on the depth-10 tree 0,
    and the policy kept by rollout evaluation (:data:`~sb3_contracts.contract_dqn.presets.TREE_KEEP_BEST`) as a
    ``callback:``: the model rl-zoo3 saves at the end is the kept one.
    Training start states and the training agent are the learner's (hyperparameters), not the env's: rl-zoo3's
    evaluation and ``enjoy`` start at the root.
    """
    from sb3_contracts.contract_dqn.presets import binary_tree_hyperparams
    from sb3_contracts.experiments.zoo_files import zoo_entry

    total, env_kwargs = TREE_ITERATIONS * TREE_N_ENVS, {"depth": 10, "seed": 0}
    entry = zoo_entry(binary_tree_hyperparams(TREE_N_ENVS), total, TREE_N_ENVS, env_kwargs)
    # rl-zoo3 builds the callbacks its `callback:` entry names from keyword arguments alone
    entry["callback"] = [{"sb3_contracts.evaluation.BestPolicyCallback": {
        "eval_env": ZOO_ENV_ID, "env_kwargs": dict(env_kwargs), "n_eval_episodes": TREE_KEEP_BEST["episodes"],
        **keep_best_schedule(TREE_KEEP_BEST, total), "eval_seed": EVAL_SEED_OFFSET,
        **({"margins": list(TREE_KEEP_BEST["margins"])} if "margins" in TREE_KEEP_BEST else {})}}]
    return {ZOO_ENV_ID: entry}


def write_zoo_config(folder: str | Path) -> Path:
    """
    Write the tree's entry (:func:`zoo_hyperparams`) to ``<folder>/contract_dqn.yml``, keeping every other env id
    there. ``zoo_configs/contract_dqn.yml`` is this function's output (a test keeps it so)::

        python -c "from sb3_contracts.experiments.tree import write_zoo_config; write_zoo_config('zoo_configs')"

    :param folder: the zoo configs folder
    :return: the file written
    """
    from sb3_contracts.experiments.zoo_files import write_zoo_file

    header = ("# rl-zoo3 hyperparameters for sb3_contracts.ContractDQN, generated from\n"
              "# sb3_contracts.contract_dqn.presets by sb3_contracts.experiments.tree.write_zoo_config\n"
              "# (a test keeps them equal; why each value is what it is: presets.py, docs/results/tree.md).\n"
              "#   python -m sb3_contracts.zoo train --algo contract_dqn --env ContractBinaryTree-v0 "
              "--conf-file zoo_configs/contract_dqn.yml\n"
              "# (sb3_contracts.zoo registers contract_dqn and OneHotEmbedding with rl-zoo3, then runs its CLI).\n"
              "# rl-zoo3 vectorises the registered env itself (DummyVecEnv of PrincipalEnv); benchmarks/tree.py\n"
              "# uses the faster batched PrincipalVecEnv with the same hyperparameters.\n")
    return write_zoo_file(Path(folder) / ZOO_FILE, zoo_hyperparams(), header)


EXPERIMENT = Experiment("tree", TreeSettings, tree_phases, tree_results, tree_table, plot_tree_curves,
                        write=write_model,
                        describe=lambda s: f"ContractDQN on the depth-{s.depth} tree {s.tree_seed}, training seed "
                                           f"{s.seed}: {s.iterations:,} iterations x {s.n_envs} envs")
