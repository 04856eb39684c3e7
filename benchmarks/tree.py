"""Tree benchmark: ContractDQN (and a direct-contract baseline) on the paper's random binary trees.

Trains on random trees, evaluates the learned principal against the exact agent best-responding to it
(``sb3_contracts.evaluation``) and prints one JSON line per run, then (for more than one run) one summary
JSON line last::

    python benchmarks/tree.py --depth 10 --seed 0 --trial 0 --direct-steps 0   # one run
    python benchmarks/tree.py --protocol heldout                 # 20 held-out trees x 3 seeds (the headline)
    python benchmarks/tree.py --protocol heldout --trees 5 --trials 1 --overrides '{"nudge": 0.005}'
    python benchmarks/tree.py --sweep --trees 3 --direct-steps 0 # trees --seed.. x seeds --trial..

Protocols: ``one`` (tree ``--seed``, training seed ``--trial``); ``sweep`` (``--trees`` trees from ``--seed`` x
``--trials`` seeds from ``--trial``); ``heldout`` (the first ``--trees`` of :data:`HELDOUT_TREES`, trees the tree
presets were never tuned on, x ``--trials`` seeds from ``--trial``).

Figures per run: ``utility_ratio`` and ``accuracy`` of the policy the run returns (with ``--keep-best``, the default,
the best policy by rollout evaluation, :class:`~sb3_contracts.evaluation.BestPolicyCallback`; else the trained one),
``utility_ratio_min_last10`` (the minimum over the exact evaluations in the last 10% of training of the policy the run
would have returned at each: the one kept by then), ``utility_ratio_trained`` and ``utility_ratio_min_last10_trained``
(the same for the policy being trained), ``kept_at`` (the training step of the returned policy), ``eval_env_steps`` (the
rollout evaluations' env steps, on top of training's), ``utility_ratio_best`` (the best exact evaluation of the trained
policy: where keeping the best by exact evaluation would have ended), ``utility_ratio_ceiling`` (the exact SPE paying
the same nudge: the most a learner with that nudge can reach), ``wall_s`` (ContractDQN training time), ``load`` (the
1-minute load average after the run: wall times are only comparable at similar load), and the same with the prefix
``direct_`` for the PPO baseline that outputs raw contracts. Dips of the trained policy the end and the last 10% can
miss show in ``utility_ratio_min_last25`` and ``evaluations_below_098_last25`` (the minimum over the last quarter of
training and how many of its evaluations fall below 0.98 of the optimum), and the same over the second half
(``_last50``), the signal for screening on a few runs; ``cpu_s`` is the run's CPU time (SPE solves and exact evaluations
included). The summary holds each figure's mean and std, the worst of every utility ratio, the number of runs below the
targets' thresholds and, as every benchmark's last line, the whole script's cost
(:class:`~sb3_contracts.experiments.accounting.Accounting`: ``wall_s``, ``cpu_s``, ``load_1m_at_start``).

With ``--out FOLDER`` a protocol is resumable: each run writes its JSON line to its own file there as it ends, and a
run whose file exists (with the same settings) is read back instead of run again; stop it and start the same
command again to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree

from sb3_contracts import PrincipalVecEnv
from sb3_contracts.contract_dqn import OneHotEmbedding
from sb3_contracts.contract_dqn.presets import (
    TREE_ITERATIONS,
    TREE_KEEP_BEST,
    TREE_N_ENVS,
    TREE_START_STATES,
    binary_tree_hyperparams,
)
from sb3_contracts.evaluation import ExactEvaluationCallback, evaluate_policy_table
from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.accounting import Accounting, cpu_seconds
from sb3_contracts.experiments.direct_baseline import make_direct_baseline
from sb3_contracts.experiments.tree import EXPERIMENT, TreeSettings, check_keep_best, plot_tree_runs
from sb3_contracts.game.batch import StartStates, parse_start_states
from sb3_contracts.solvers import solve_spe

N_EVALUATIONS = 50
#: Trees of the held-out protocol: ``random_binary_tree(depth, seed)`` for these seeds. The presets were tuned
#: on seeds 0-5 and their candidates screened on seeds 20-29; none of these was looked at before the final runs.
HELDOUT_TREES = tuple(range(100, 120))
PROTOCOLS = ("one", "sweep", "heldout")
#: Thresholds of issue 26's targets: every run's end ≥ 0.97 and its minimum over the last 10% ≥ 0.95; the summary
#: counts the runs below each.
END_TARGET, LATE_TARGET = 0.97, 0.95
#: A late evaluation below this share of the optimum counts as a dip (0.98: the paper's reported level).
DIP_LEVEL = 0.98


def summarize(callback: ExactEvaluationCallback, total: int) -> dict[str, float]:
    last = [e.utility_ratio for t, e in callback.history if t >= 0.9 * total]
    final = callback.history[-1][1]
    return {"utility_ratio": final.utility_ratio, "accuracy": final.accuracy,
            "utility_ratio_min_last10": float(min(last)) if last else float("nan"),
            "utility_ratio_best": float(max(e.utility_ratio for _, e in callback.history))}


def run_contract_dqn(args: argparse.Namespace, mdp: Any, tree: int, trial: int,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """One ContractDQN run: the tree experiment (:data:`~sb3_contracts.experiments.tree.EXPERIMENT`)."""
    config = TreeSettings(depth=args.depth, tree_seed=tree, seed=trial, iterations=args.iterations,
                          n_envs=args.n_envs, start_states=args.start_states, n_evaluations=N_EVALUATIONS,
                          hyperparams=overrides, threads=args.threads, keep_best=args.keep_best)
    results = run_experiment(EXPERIMENT, config)
    final, history = results["final"], results["history"]
    total = args.iterations * args.n_envs
    last25 = [row["utility_ratio"] for row in history if row["steps"] >= 0.75 * total]
    last50 = [row["utility_ratio"] for row in history if row["steps"] >= 0.5 * total]
    hyperparams = {**binary_tree_hyperparams(args.n_envs), **overrides}
    # the SPE pays one nudge everywhere: no ceiling for a nudge that varies over training or by state
    nudge = hyperparams.get("nudge", 0.0) if not hyperparams.get("nudge_error_scale") else None
    kept = results["kept"]
    return {"utility_ratio": final["utility_ratio"], "accuracy": final["accuracy"],
            "utility_ratio_min_last10": results["utility_ratio_min_last10"],
            "utility_ratio_trained": results["final_trained"]["utility_ratio"],
            "utility_ratio_min_last10_trained": results["utility_ratio_min_last10_trained"],
            "utility_ratio_min_last25": float(min(last25)),
            "evaluations_below_098_last25": int(sum(r < DIP_LEVEL for r in last25)),
            "utility_ratio_min_last50": float(min(last50)),
            "evaluations_below_098_last50": int(sum(r < DIP_LEVEL for r in last50)),
            "utility_ratio_best": max(row["utility_ratio"] for row in history),
            "kept_at": kept[-1]["steps"] if kept else float("nan"), "eval_env_steps": results["eval_env_steps"],
            **nudge_ceiling(mdp, nudge), "wall_s": results["wall_s"],
            "history": [[row["steps"], row["utility_ratio"], row["accuracy"], row["delivered_utility_ratio"]]
                        for row in history]}


def nudge_ceiling(mdp: Any, nudge: Any) -> dict[str, float]:
    """The utility ratio of the SPE itself with the learner's nudge: the most a learner with that nudge can reach
    (nothing for ``None`` or a schedule)."""
    if nudge is None or callable(nudge):
        return {}
    nudged = solve_spe(mdp, nudge=float(nudge))
    ratio = evaluate_policy_table(mdp, nudged.contracts, nudged.recommended_action, solve_spe(mdp)).utility_ratio
    return {"utility_ratio_ceiling": ratio}


def run_direct(mdp: Any, trial: int, steps: int, n_envs: int, start_states: StartStates) -> dict[str, float]:
    env = PrincipalVecEnv(mdp, n_envs=n_envs, seed=trial, start_states=start_states)
    model = make_direct_baseline(env, "ppo", seed=trial, n_steps=256, batch_size=256, learning_rate=3e-4,
                                 policy_kwargs=dict(features_extractor_class=OneHotEmbedding,
                                                    features_extractor_kwargs=dict(features_dim=256),
                                                    net_arch=[256]))
    callback = ExactEvaluationCallback(mdp, eval_freq=max(steps // N_EVALUATIONS, 1))
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    wall = time.perf_counter() - start
    figures = {**summarize(callback, steps), "wall_s": wall}
    figures.pop("accuracy")  # raw contracts carry no recommendation
    return {f"direct_{k}": v for k, v in figures.items()}


def run_one(args: argparse.Namespace, tree: int, trial: int, overrides: dict[str, Any]) -> dict[str, Any]:
    mdp = random_binary_tree(args.depth, tree)
    result: dict[str, Any] = {"depth": args.depth, "tree": tree, "trial": trial}
    cpu_start = cpu_seconds()
    result.update(run_contract_dqn(args, mdp, tree, trial, overrides))
    if args.direct_steps > 0:
        result.update(run_direct(mdp, trial, args.direct_steps, args.n_envs, args.start_states))
    result["cpu_s"] = cpu_seconds() - cpu_start
    result["load"] = os.getloadavg()[0]
    return result


def run_settings(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """What a run's figures depend on besides its tree and seed: ``--out`` reads a run back only if these match."""
    return {"overrides": overrides, "iterations": args.iterations, "n_envs": args.n_envs,
            "start_states": args.start_states, "direct_steps": args.direct_steps, "keep_best": args.keep_best}


def cached_run(args: argparse.Namespace, tree: int, trial: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """
    One run, or with ``--out`` its file if an earlier invocation wrote it with the same settings. The file also keeps
    the run's evaluations (``history``: steps, utility ratio, accuracy), e.g. to try a rule for keeping a policy.
    """
    if args.out is None:
        result = run_one(args, tree, trial, overrides)
        result.pop("history")
        return result
    path = Path(args.out) / f"depth{args.depth}_tree{tree}_trial{trial}.json"
    settings = run_settings(args, overrides)
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("settings") != settings:
            raise SystemExit(f"--out {args.out}: {path.name} was run with other settings ({saved.get('settings')}); "
                             "use another folder")
        return saved["result"]
    result = run_one(args, tree, trial, overrides)
    history = result.pop("history")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "result": result, "history": history}))
    return result


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std of every figure over the runs, plus the worst end ratio and worst late minimum."""
    summary: dict[str, Any] = {"runs": len(runs), "trees": sorted({run["tree"] for run in runs})}
    for key in (k for k in runs[0] if k not in ("depth", "tree", "trial")):
        values = np.array([run[key] for run in runs], dtype=np.float64)
        summary[f"{key}_mean"], summary[f"{key}_std"] = float(values.mean()), float(values.std())
        if key.startswith(("utility_ratio", "direct_utility_ratio")):
            summary[f"{key}_worst"] = float(values.min())
    for suffix in ("", "_trained"):
        summary[f"runs_end_below_097{suffix}"] = int(sum(run[f"utility_ratio{suffix}"] < END_TARGET for run in runs))
        summary[f"runs_min_last10_below_095{suffix}"] = int(sum(run[f"utility_ratio_min_last10{suffix}"] < LATE_TARGET
                                                                for run in runs))
    return summary


def parse_overrides(text: str) -> dict[str, Any]:
    """The ``--overrides`` JSON object, or a ``SystemExit`` naming the argument."""
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--overrides must be a JSON object of ContractDQN keyword arguments: {error}") from error
    if not isinstance(overrides, dict):
        raise SystemExit(f"--overrides must be a JSON object of ContractDQN keyword arguments, got {text!r}")
    return overrides


def plot_runs(args: argparse.Namespace, trees: list[int], trials: list[int]) -> None:
    """Plot the evaluations of the runs in ``--out`` into ``--plot``
    (:func:`~sb3_contracts.experiments.tree.plot_tree_runs`)."""
    columns = ("steps", "utility_ratio", "accuracy", "delivered_utility_ratio")
    runs = []
    for tree in trees:
        for trial in trials:
            saved = json.loads((Path(args.out) / f"depth{args.depth}_tree{tree}_trial{trial}.json").read_text())
            runs.append({"config": {"depth": args.depth},
                         "history": [dict(zip(columns, row, strict=False)) for row in saved["history"]]})
    plot_tree_runs(runs, args.plot)


def parse_keep_best(text: str) -> dict[str, Any] | None:
    """The ``--keep-best`` JSON (an object, or ``null``), or an ``argparse`` error naming the argument."""
    try:
        keep_best = json.loads(text)
        if keep_best is not None:
            check_keep_best(keep_best)
    except (json.JSONDecodeError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"--keep-best: {error}") from error
    return keep_best


def tree_seeds(args: argparse.Namespace) -> list[int]:
    """The tree seeds the protocol trains on."""
    if args.protocol == "one":
        return [args.seed]
    if args.protocol == "heldout":
        trees = len(HELDOUT_TREES) if args.trees is None else args.trees
        if not 1 <= trees <= len(HELDOUT_TREES):
            raise SystemExit(f"--trees must be in [1, {len(HELDOUT_TREES)}] for the held-out protocol, got {trees}")
        return list(HELDOUT_TREES[:trees])
    trees = 3 if args.trees is None else args.trees
    if trees < 1:
        raise SystemExit(f"--trees must be positive, got {trees}")
    return list(range(args.seed, args.seed + trees))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="one",
                        help="one run, a sweep from --seed, or the held-out trees (see the module doc)")
    parser.add_argument("--sweep", action="store_true", help="shorthand for --protocol sweep")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="tree seed (the first one of a sweep)")
    parser.add_argument("--trial", type=int, default=0, help="training seed (the first one of a sweep)")
    parser.add_argument("--trees", type=int, default=None,
                        help="number of trees (sweep: 3; heldout: all 20, or the first N for a cheap screen)")
    parser.add_argument("--trials", type=int, default=3, help="training seeds per tree (sweep, heldout)")
    parser.add_argument("--iterations", type=int, default=TREE_ITERATIONS,
                        help="vec-env steps (one gradient step each)")
    parser.add_argument("--n-envs", type=int, default=TREE_N_ENVS)
    parser.add_argument("--direct-steps", type=int, default=None,
                        help="PPO env steps (0: skip the baseline; default 200000 for one run and sweeps, 0 held out)")
    parser.add_argument("--overrides", default="{}", help="JSON dict of ContractDQN keyword overrides")
    parser.add_argument("--start-states", default=TREE_START_STATES, type=parse_start_states,
                        help="where training episodes start: uniform (anywhere), initial (the root), or the share of "
                             "episodes that start at the root, the others anywhere")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small MLPs: 1 is fastest)")
    parser.add_argument("--keep-best", type=parse_keep_best, default=dict(TREE_KEEP_BEST),
                        help="keeping the best policy by rollout evaluation: a JSON object with evaluations, episodes, "
                             f"start and optionally margins (default {json.dumps(TREE_KEEP_BEST)}), or null for the "
                             "trained policy")
    parser.add_argument("--out", default=None,
                        help="folder of one JSON file per run: runs already there are read back, not rerun (resume)")
    parser.add_argument("--plot", default=None,
                        help="a PNG of the runs' evaluations over training, trained and returned policy (needs --out)")
    args = parser.parse_args()
    cost = Accounting()
    if args.sweep:
        args.protocol = "sweep"
    if args.direct_steps is None:
        args.direct_steps = 0 if args.protocol == "heldout" else 200_000
    if args.trials < 1:
        raise SystemExit(f"--trials must be positive, got {args.trials}")
    if args.plot is not None and args.out is None:
        raise SystemExit("--plot reads the runs' evaluations from their files: it needs --out")
    overrides = parse_overrides(args.overrides)
    trees = tree_seeds(args)
    th.set_num_threads(args.threads)
    trials = [args.trial] if args.protocol == "one" else list(range(args.trial, args.trial + args.trials))
    runs = []
    for tree in trees:
        for trial in trials:
            runs.append(cached_run(args, tree, trial, overrides))
            if len(trees) * len(trials) > 1:
                print(json.dumps(runs[-1]), flush=True)
    if args.plot is not None:
        plot_runs(args, trees, trials)
    if len(runs) > 1:
        print(json.dumps({"protocol": args.protocol, "depth": args.depth, "overrides": overrides,
                          **summary_of(runs), **cost.figures()}))
    else:  # one run: its figures, with the script's cost under "cost" (its own wall_s is the training's)
        print(json.dumps({**runs[-1], "cost": cost.figures()}))


if __name__ == "__main__":
    main()
