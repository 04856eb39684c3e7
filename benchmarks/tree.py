"""Tree benchmark: ContractDQN (and a direct-contract baseline) on the paper's random binary trees.

Trains on one random tree, evaluates the learned principal against the exact best-responding agent
(``sb3_contracts.evaluation``) and prints one JSON line last::

    python benchmarks/tree.py --depth 10 --seed 0 --trial 0
    python benchmarks/tree.py --depth 10 --sweep          # 3 trees x 3 trials, mean ± std

Figures: ``utility_ratio`` and ``accuracy`` at the end, ``utility_ratio_min_last10`` (minimum over the
evaluations in the last 10% of training), ``wall_s`` (ContractDQN training time), and the same with
the prefix ``direct_`` for the PPO baseline that outputs raw contracts.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree

from sb3_contracts import ContractDQN, PrincipalVecEnv
from sb3_contracts.baselines import make_direct_baseline
from sb3_contracts.contract_dqn import OneHotEmbedding
from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_N_ENVS, TREE_START_STATES, binary_tree_hyperparams
from sb3_contracts.evaluation import ExactEvaluationCallback

N_EVALUATIONS = 50


def summarize(callback: ExactEvaluationCallback, total: int) -> dict[str, float]:
    last = [e.utility_ratio for t, e in callback.history if t >= 0.9 * total]
    final = callback.history[-1][1]
    return {"utility_ratio": final.utility_ratio, "accuracy": final.accuracy,
            "utility_ratio_min_last10": float(min(last)) if last else float("nan")}


def run_contract_dqn(mdp: Any, trial: int, iterations: int, n_envs: int, overrides: dict[str, Any],
                     start_states: str) -> dict[str, float]:
    env = PrincipalVecEnv(mdp, n_envs=n_envs, seed=trial)
    config = {**binary_tree_hyperparams(n_envs), "training_start_states": start_states, **overrides}
    model = ContractDQN("MlpPolicy", env, seed=trial, **config)
    total = iterations * n_envs
    callback = ExactEvaluationCallback(mdp, eval_freq=max(total // N_EVALUATIONS, 1))
    start = time.perf_counter()
    model.learn(total, callback=callback, log_interval=None)
    wall = time.perf_counter() - start
    return {**summarize(callback, total), "wall_s": wall}


def run_direct(mdp: Any, trial: int, steps: int, n_envs: int, start_states: str) -> dict[str, float]:
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


def run_one(args: argparse.Namespace, tree: int, trial: int) -> dict[str, float]:
    mdp = random_binary_tree(args.depth, tree)
    result: dict[str, Any] = {"depth": args.depth, "tree": tree, "trial": trial}
    result.update(run_contract_dqn(mdp, trial, args.iterations, args.n_envs, json.loads(args.overrides),
                                   args.start_states))
    if args.direct_steps > 0:
        result.update(run_direct(mdp, trial, args.direct_steps, args.n_envs, args.start_states))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="tree seed")
    parser.add_argument("--trial", type=int, default=0, help="training seed")
    parser.add_argument("--sweep", action="store_true", help="run --trees trees x --trials trials")
    parser.add_argument("--trees", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=TREE_ITERATIONS,
                        help="vec-env steps (one gradient step each)")
    parser.add_argument("--n-envs", type=int, default=TREE_N_ENVS)
    parser.add_argument("--direct-steps", type=int, default=200_000, help="PPO env steps (0: skip the baseline)")
    parser.add_argument("--overrides", default="{}", help="JSON dict of ContractDQN keyword overrides")
    parser.add_argument("--start-states", default=TREE_START_STATES, choices=("uniform", "initial"),
                        help="training episodes start in a uniformly random state (exploring starts) or at the root")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small MLPs: 1 is fastest)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    if not args.sweep:
        print(json.dumps(run_one(args, args.seed, args.trial)))
        return
    runs = []
    for tree in range(args.seed, args.seed + args.trees):
        for trial in range(args.trial, args.trial + args.trials):
            runs.append(run_one(args, tree, trial))
            print(json.dumps(runs[-1]), flush=True)
    keys = [k for k in runs[0] if k not in ("depth", "tree", "trial")]
    summary: dict[str, Any] = {"depth": args.depth, "runs": len(runs)}
    for key in keys:
        values = np.array([run[key] for run in runs], dtype=np.float64)
        summary[f"{key}_mean"], summary[f"{key}_std"] = float(values.mean()), float(values.std())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
