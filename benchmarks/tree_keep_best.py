"""Screen of the rule that keeps the best policy (issue 26): how many rollout episodes and which nudges it needs.

Each run trains ContractDQN with the tree presets and, from ``--start`` of training on, every ``--eval-freq`` env steps
plays the current weights at each nudge of ``--margins`` for ``--episodes`` episodes (the agent best-responding to the
evaluated policy, the same draws every time: :class:`~sb3_contracts.evaluation.BestPolicyCallback`), recording every
episode's return and the exact utility ratio of what was played. Training is the same as without the evaluations
(they draw nothing from the learner's generators). From the records, the rule "keep the best mean return" is replayed
for fewer episodes (the first ``E`` of the recorded ones: the same draws, as a smaller evaluation would have had them),
for every other evaluation, and for each subset of the nudges that holds the first, and scored by the exact ratio of
the policy it returns at the end and over the last 10% of training::

    python benchmarks/tree_keep_best.py --trees 20 21 --seeds 0 --out runs/keep_screen
    python benchmarks/tree_keep_best.py --pairs 27:1 23:0 --margins 0.005 0.0075 0.01 --out runs/keep_screen_m

One JSON line per run (its trained figures and, per rule, the returned policy's end and minimum over the last 10%),
then the summary over runs per rule (mean and worst end, worst minimum) and the script's cost. ``--out`` holds one file
per run with its records; a run whose file exists is read back (resume).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree

from sb3_contracts import ContractDQN, PrincipalVecEnv
from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_N_ENVS, TREE_START_STATES, binary_tree_hyperparams
from sb3_contracts.evaluation import BestPolicyCallback, ExactEvaluationCallback, evaluate_principal
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.tree import EVAL_SEED_OFFSET, LAST_SHARE

DEPTH = 10


class RecordingKeeper(BestPolicyCallback):
    """Records every evaluation's episode returns and the exact utility ratio of the policy played."""

    def __init__(self, mdp: Any, exact: ExactEvaluationCallback, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mdp, self.exact, self.records = mdp, exact, []

    def _rollouts(self) -> list[float]:
        returns = super()._rollouts()
        ratio = evaluate_principal(self.model, self.mdp, self.exact.spe, self.exact.observations).utility_ratio
        self.records.append({"steps": self.num_timesteps, "margin": float(self.model.policy.margin),
                             "returns": returns, "ratio": float(ratio)})
        return returns


def run(tree: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One training run with its records and the exact evaluations of the trained policy."""
    mdp = random_binary_tree(DEPTH, tree)
    env = PrincipalVecEnv(mdp, n_envs=TREE_N_ENVS, seed=seed)
    model = ContractDQN("MlpPolicy", env, seed=seed, **{**binary_tree_hyperparams(TREE_N_ENVS),
                                                        "training_start_states": TREE_START_STATES})
    total = TREE_ITERATIONS * TREE_N_ENVS
    exact = ExactEvaluationCallback(mdp, eval_freq=args.eval_freq)
    keeper = RecordingKeeper(mdp, exact, eval_env=PrincipalVecEnv(mdp, n_envs=args.episodes),
                             n_eval_episodes=args.episodes, eval_freq=args.eval_freq,
                             start=int(args.start * total), eval_seed=seed + EVAL_SEED_OFFSET,
                             margins=args.margins, restore_best=False)
    model.learn(total, callback=[keeper, exact])
    return {"tree": tree, "seed": seed, "records": keeper.records,
            "history": [[steps, evaluation.utility_ratio] for steps, evaluation in exact.history]}


def replay(saved: dict[str, Any], episodes: int, every: int, margins: tuple[float, ...]) -> dict[str, float]:
    """The rule "keep the best mean return" on a run's records: the returned policy's ratio at the end, its minimum
    over the last 10% of training (the trained policy's before anything is kept) and the step it was kept at."""
    steps = sorted({record["steps"] for record in saved["records"]})
    steps = steps[::-1][::every][::-1]  # every `every`-th evaluation, the last one included
    best, kept, delivered = -np.inf, None, {}
    for step in steps:
        for record in saved["records"]:
            if record["steps"] == step and any(np.isclose(record["margin"], margins)):
                mean = float(np.mean(record["returns"][:episodes]))
                if mean > best:
                    best, kept = mean, record
        delivered[step] = kept
    total = saved["history"][-1][0]
    late = []
    for step, ratio in saved["history"]:
        if step >= (1 - LAST_SHARE) * total:
            earlier = [s for s in delivered if s <= step]
            late.append(delivered[max(earlier)]["ratio"] if earlier else ratio)
    return {"end": kept["ratio"], "min_last10": float(min(late)), "kept_at": kept["steps"],
            "kept_margin": kept["margin"]}


def rules(args: argparse.Namespace) -> list[tuple[int, int, tuple[float, ...]]]:
    """Every (episodes, every, nudges) replayed: the episode counts of ``--subsets``, every evaluation or every
    other, and each subset of ``--margins`` that holds the first."""
    first, others = args.margins[0], args.margins[1:]
    nudges = [(first, *chosen) for size in range(len(others) + 1) for chosen in itertools.combinations(others, size)]
    return [(episodes, every, margins) for episodes in args.subsets if episodes <= args.episodes
            for every in (1, 2) for margins in nudges]


def run_pairs(args: argparse.Namespace) -> list[tuple[int, int]]:
    """The (tree, seed) runs: ``--pairs``, or every tree with every seed; a ``SystemExit`` names a bad pair."""
    if args.pairs is None:
        return list(itertools.product(args.trees, args.seeds))
    try:
        return [(int(tree), int(seed)) for tree, seed in (pair.split(":") for pair in args.pairs)]
    except ValueError as error:
        raise SystemExit(f"--pairs must be tree:seed integer pairs, got {args.pairs!r}") from error


def rule_name(episodes: int, every: int, margins: tuple[float, ...]) -> str:
    return f"E{episodes}_every{every}_xi{'-'.join(f'{m:g}' for m in margins)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=int, nargs="+", default=list(range(20, 30)), help="tree seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--pairs", nargs="+", default=None, metavar="TREE:SEED",
                        help="the runs as tree:seed pairs, instead of every tree with every seed")
    parser.add_argument("--episodes", type=int, default=512, help="episodes recorded per evaluation and nudge")
    parser.add_argument("--subsets", type=int, nargs="+", default=[32, 64, 128, 256, 512],
                        help="episode counts the rule is replayed with (the first E recorded)")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.005],
                        help="nudges each evaluation plays (the first: the presets' own)")
    parser.add_argument("--eval-freq", type=int, default=960, help="env steps between evaluations")
    parser.add_argument("--start", type=float, default=0.5, help="share of training at the first evaluation")
    parser.add_argument("--out", required=True, help="folder of one file per run (resume)")
    args = parser.parse_args()
    cost = Accounting()
    th.set_num_threads(1)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {}
    for tree, seed in run_pairs(args):
        path = folder / f"tree{tree}_seed{seed}.json"
        saved = json.loads(path.read_text()) if path.is_file() else run(tree, seed, args)
        path.write_text(json.dumps(saved))
        history, total = saved["history"], saved["history"][-1][0]
        line: dict[str, Any] = {"tree": tree, "seed": seed, "trained_end": history[-1][1],
                                "trained_min_last10": min(r for s, r in history if s >= (1 - LAST_SHARE) * total)}
        for rule in rules(args):
            figures = replay(saved, *rule)
            results.setdefault(rule_name(*rule), []).append(figures)
            line[rule_name(*rule)] = figures
        print(json.dumps(line), flush=True)
    summary = {name: {"mean_end": float(np.mean([f["end"] for f in runs])),
                      "worst_end": float(min(f["end"] for f in runs)),
                      "worst_min_last10": float(min(f["min_last10"] for f in runs))} for name, runs in results.items()}
    print(json.dumps({"runs": len(run_pairs(args)), "rules": summary, **cost.figures()}))


if __name__ == "__main__":
    main()
