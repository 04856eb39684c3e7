"""Where a ContractDQN run on a random tree loses utility: the contracts on the knife's edge.

Trains one run exactly as ``benchmarks/tree.py`` does (the tree experiment's learner and settings, the same
seeds, 50 exact evaluations) and, at every evaluation, finds the states where the exact agent best-responding to
the learned policy does *not* take the recommendation. For each such state it reports what the deviation costs
(the utility ratio gained by paying there just what the true gap asks), the agent model's gap ``Q̄(s, a) - Q̄(s,
a*)`` against the true one (the agent's truncated Q under the learned policy, :func:`~sb3_contracts.solvers.
best_response`), and the error split into the reward head's part and the continuation's part (``W(s, o)`` against
the agent's true value after outcome ``o``). Between evaluations it records, at every target copy, the model's gap
and contract at the states of the top levels (where one deviation decides a whole subtree), from the online and the
target agent networks. Prints one JSON line per run::

    python benchmarks/tree_knife_edge.py --tree 21 --seed 0
    python benchmarks/tree_knife_edge.py --tree 21 --seed 0 --overrides '{"tau": 0.1}' --out run.json

``--out`` writes the whole record (every evaluation's deviations and the top levels' gaps at every copy);
``--summarize FILE...`` reads such records and prints, over the costly deviations of the second half of training,
their depths and the median parts of their gap errors; ``--ceiling FIRST END`` prints the exact ceilings of the stake
nudge (``nudge_error_scale``) on those trees.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch as th
from sb3_contracts.envs.binary_tree import random_binary_tree

from sb3_contracts.contract_dqn import ContractDQN
from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_N_ENVS, TREE_START_STATES, binary_tree_hyperparams
from sb3_contracts.evaluation import ExactEvaluationCallback, evaluate_policy_table
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.game import PrincipalVecEnv

N_EVALUATIONS = 50
#: Deviating states examined per evaluation (the shallowest).
MAX_DEVIATIONS = 20
#: Levels of the tree whose gaps are tracked at every target copy (states 0 .. 2**TOP_LEVELS - 2).
TOP_LEVELS = 5


def model_tables(model: ContractDQN, observations: np.ndarray, target: bool = False) -> dict[str, np.ndarray]:
    """The agent model's reward head ``[S, A]``, continuation ``W`` ``[S, O]`` and truncated Q ``[S, A]``."""
    policy = model.policy
    net = policy.agent_net_target if target else policy.agent_net
    with th.no_grad():
        obs = th.as_tensor(observations, dtype=th.float32)
        out = net(obs)
        probs = policy.outcome_probs(obs)
        agent_q = policy.agent_q(out, probs)
    n_actions = policy.n_actions
    return {"reward": out[:, :n_actions].numpy().astype(np.float64),
            "post": out[:, n_actions:].numpy().astype(np.float64), "agent_q": agent_q.numpy().astype(np.float64)}


def follow_values(mdp: Any, contracts: np.ndarray, recommended: np.ndarray) -> np.ndarray:
    """The agent's value ``[S]`` if it took every recommendation under these contracts (what the agent model's
    targets assume), by backward induction."""
    values = np.zeros(mdp.n_states)
    for states in mdp.topological_levels():
        action = recommended[states]
        probs = mdp.outcome_probs[states, action]  # [n, O]
        after = contracts[states] + mdp.gamma * mdp.expected_next(values, states)
        values[states] = mdp.agent_reward[states, action] + np.einsum("no,no->n", probs, after)
    return values


def deviations(model: ContractDQN, callback: ExactEvaluationCallback) -> list[dict[str, Any]]:
    """Every state where the exact agent deviates from the last evaluation's recommendation, worst first."""
    from sb3_contracts.solvers import best_response

    mdp, evaluation = callback.mdp, callback.history[-1][1]
    contracts, recommended = evaluation.contracts, evaluation.recommended
    response = best_response(mdp, contracts, recommended)
    decision = np.flatnonzero(~mdp.terminal)
    # the shallowest ones (heap order: state order is depth order): a deviation decides its whole subtree
    deviating = decision[response.action[decision] != recommended[decision]][:MAX_DEVIATIONS]
    tables = model_tables(model, callback.observations)
    child_value = mdp.gamma * mdp.expected_next(response.agent_value)  # [S, O] the agent's value after o
    # the same if the agent followed every recommendation below: the gap the model's targets aim at
    child_follow = mdp.gamma * mdp.expected_next(follow_values(mdp, contracts, recommended))
    rows = []
    for state in deviating.tolist():
        star, other = int(recommended[state]), int(response.action[state])
        probs = mdp.outcome_probs[state]
        fixed = contracts.copy()
        # the cheapest contract on the most telling outcome that the true gap asks for (a tiny nudge breaks no tie)
        true_gap = response.agent_q[state, other] - response.agent_q[state, star]
        outcome = int(np.argmax(probs[star] - probs[other]))
        fixed[state] = 0.0
        fixed[state, outcome] = (true_gap + 1e-6) / (probs[star, outcome] - probs[other, outcome])
        gain = evaluate_policy_table(mdp, fixed, recommended, callback.spe).utility_ratio - evaluation.utility_ratio
        model_gap = tables["agent_q"][state, other] - tables["agent_q"][state, star]
        reward_err = (tables["reward"][state] - mdp.agent_reward[state])
        post_err = tables["post"][state] - child_value[state]
        rows.append({"state": state, "depth": int(np.floor(np.log2(state + 1))), "recommended": star,
                     "gain_if_paid": float(gain), "true_gap": float(true_gap), "model_gap": float(model_gap),
                     "gap_error": float(model_gap - true_gap), "nudge": float(model.policy.margin),
                     "reward_part": float(reward_err[other] - reward_err[star]),
                     "continuation_part": float((probs[other] - probs[star]) @ post_err),
                     # the continuation part split: the model against following below (learning error), and
                     # following below against the true agent, who deviates wherever underpaid (its rents)
                     "learning_part": float((probs[other] - probs[star])
                                            @ (tables["post"][state] - child_follow[state])),
                     "rent_part": float((probs[other] - probs[star]) @ (child_follow[state] - child_value[state])),
                     "post_error": post_err.tolist()})
    return sorted(rows, key=lambda row: -row["gain_if_paid"])


class KnifeEdgeCallback(ExactEvaluationCallback):
    """The exact evaluations of :class:`ExactEvaluationCallback`, each with its deviations, plus the top levels' gaps
    from the online and target agent networks at every target copy."""

    def __init__(self, mdp: Any, eval_freq: int) -> None:
        super().__init__(mdp, eval_freq)
        self.records: list[dict[str, Any]] = []
        self.copies: list[dict[str, Any]] = []
        self.top = np.arange(2**TOP_LEVELS - 1)

    def evaluate(self) -> Any:
        result = super().evaluate()
        self.records.append({"steps": self.num_timesteps, "utility_ratio": result.utility_ratio,
                             "accuracy": result.accuracy, "deviations": deviations(self.model, self)})
        return result

    def _on_step(self) -> bool:
        model = self.model
        if model._target_copy_due():
            online = model_tables(model, self.observations[self.top])
            target = model_tables(model, self.observations[self.top], target=True)
            with th.no_grad():
                q_values, _, _ = model.policy.contract_menu(th.as_tensor(self.observations[self.top], dtype=th.float32))
            self.copies.append({"steps": self.num_timesteps,
                                "online_gap": (online["agent_q"][:, 0] - online["agent_q"][:, 1]).tolist(),
                                "target_gap": (target["agent_q"][:, 0] - target["agent_q"][:, 1]).tolist(),
                                "principal_q": q_values.numpy().tolist()})
        return super()._on_step()


def run(tree: int, seed: int, overrides: dict[str, Any], depth: int = 10, iterations: int = TREE_ITERATIONS
        ) -> dict[str, Any]:
    """One run of the tree experiment's learner with the diagnosis (same settings and seeds as benchmarks/tree.py)."""
    mdp = random_binary_tree(depth, tree)
    env = PrincipalVecEnv(mdp, n_envs=TREE_N_ENVS, seed=seed)
    hyperparams = {**binary_tree_hyperparams(TREE_N_ENVS), "training_start_states": TREE_START_STATES,
                   "torch_threads": 1, **overrides}
    model = ContractDQN("MlpPolicy", env, seed=seed, **hyperparams)
    total = iterations * TREE_N_ENVS
    callback = KnifeEdgeCallback(mdp, eval_freq=max(total // N_EVALUATIONS, 1))
    start = time.perf_counter()
    model.learn(total, callback=callback)
    wall = time.perf_counter() - start
    ratios = [record["utility_ratio"] for record in callback.records]
    last = [r["utility_ratio"] for r in callback.records if r["steps"] >= 0.9 * total]
    return {"tree": tree, "seed": seed, "overrides": overrides, "utility_ratio": ratios[-1],
            "utility_ratio_min_last10": min(last), "accuracy": callback.records[-1]["accuracy"], "wall_s": wall,
            "total": total, "records": callback.records, "copies": callback.copies}


def brief(result: dict[str, Any]) -> dict[str, Any]:
    """The run's figures and, for its worst late evaluation, the costliest deviation."""
    late = [r for r in result["records"] if r["steps"] >= 0.9 * result["total"]]
    worst = min(late, key=lambda r: r["utility_ratio"])
    keys = ("tree", "seed", "utility_ratio", "utility_ratio_min_last10", "accuracy", "wall_s")
    return {**{k: result[k] for k in keys}, "worst_late_steps": worst["steps"],
            "worst_late_deviation": worst["deviations"][0] if worst["deviations"] else None,
            "end_deviation": result["records"][-1]["deviations"][0] if result["records"][-1]["deviations"] else None}


def summarize(paths: list[str], late: float = 0.5, costly: float = 0.01) -> dict[str, Any]:
    """
    Over the runs written with ``--out``: every evaluation in the last ``late`` share of training whose costliest
    deviation costs at least ``costly`` of the utility ratio, with that deviation's depth and the parts of its gap
    error (medians), and how often the deviation rents are its largest part.
    """
    rows = []
    for path in paths:
        with open(path) as file:
            result = json.load(file)
        for record in result["records"]:
            if record["steps"] >= (1 - late) * result["total"] and record["deviations"]:
                worst = record["deviations"][0]
                if worst["gain_if_paid"] >= costly:
                    rows.append(worst)
    if not rows:
        return {"runs": len(paths), "costly_evaluations": 0}
    depths = np.array([row["depth"] for row in rows])
    parts = {name: np.array([row[f"{name}_part"] for row in rows]) for name in ("reward", "learning", "rent")}
    largest = np.argmax(np.abs(np.stack(list(parts.values()))), axis=0)
    return {"runs": len(paths), "costly_evaluations": len(rows),
            "depth_counts": {int(d): int((depths == d).sum()) for d in np.unique(depths)},
            "median_cost": float(np.median([row["gain_if_paid"] for row in rows])),
            "median_gap_error": float(np.median([row["gap_error"] for row in rows])),
            **{f"median_{name}_part": float(np.median(values)) for name, values in parts.items()},
            "largest_part_counts": {name: int((largest == i).sum()) for i, name in enumerate(parts)}}


def tree_contracts(agent_q: np.ndarray, probs: np.ndarray, target: int, margin: np.ndarray | float) -> np.ndarray:
    """The minimal contracts ``[n, 2]`` implementing ``target`` with ``margin`` in 2-action, 2-outcome states: pay on
    the outcome the target makes likelier."""
    other, paid = 1 - target, target
    payment = np.zeros((agent_q.shape[0], 2))
    payment[:, paid] = (np.maximum(agent_q[:, other] - agent_q[:, target] + margin, 0)
                        / (probs[:, target, paid] - probs[:, other, paid]))
    return payment


def stake_ceiling(mdp: Any, nudge: float, error_scale: float) -> float:
    """
    The utility ratio of the SPE when every contract pays ``max(nudge, stake_margin(stake, error_scale))`` (the most
    a learner with ``nudge_error_scale`` can reach), by backward induction with the exact continuation (two actions,
    two outcomes: the trees).
    """
    from sb3_contracts.contract_dqn.policies import stake_margin
    from sb3_contracts.solvers import solve_spe

    agent_value, principal_value = np.zeros(mdp.n_states), np.zeros(mdp.n_states)
    contracts, recommended = np.zeros((mdp.n_states, 2)), np.zeros(mdp.n_states, dtype=np.int64)
    for states in mdp.topological_levels():
        agent_next = mdp.gamma * mdp.expected_next(agent_value, states)
        gross = mdp.principal_reward[states] + mdp.gamma * mdp.expected_next(principal_value, states)
        probs = mdp.outcome_probs[states]
        agent_q = mdp.agent_reward[states] + np.einsum("nao,no->na", probs, agent_next)
        menu = []
        for target in (0, 1):
            plain = tree_contracts(agent_q, probs, target, nudge)
            stake = np.maximum(np.einsum("no,no->n", probs[:, target] - probs[:, 1 - target], gross - plain), 0)
            margin = np.maximum(nudge, stake_margin(th.as_tensor(stake), error_scale).numpy()) if error_scale else nudge
            priced = tree_contracts(agent_q, probs, target, margin)
            menu.append((np.einsum("no,no->n", probs[:, target], gross - priced), priced))
        choice = (menu[1][0] > menu[0][0]).astype(np.int64)
        contracts[states] = np.where(choice[:, None] == 1, menu[1][1], menu[0][1])
        recommended[states] = choice
        followed = probs[np.arange(len(states)), choice]
        agent_value[states] = mdp.agent_reward[states, choice] + np.einsum("no,no->n", followed,
                                                                          contracts[states] + agent_next)
        principal_value[states] = np.einsum("no,no->n", followed, gross - contracts[states])
    return evaluate_policy_table(mdp, contracts, recommended, solve_spe(mdp)).utility_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=int, default=20, help="tree seed")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--overrides", default="{}", help="JSON dict of ContractDQN keyword overrides")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=TREE_ITERATIONS, help="vec-env steps of training")
    parser.add_argument("--out", default=None, help="write the whole record as JSON here")
    parser.add_argument("--summarize", nargs="+", default=None, metavar="FILE",
                        help="no training: summarise the costly late deviations of runs written with --out")
    parser.add_argument("--ceiling", nargs=2, type=int, default=None, metavar=("FIRST", "END"),
                        help="no training: the exact ceilings of the stake nudge on trees FIRST..END-1")
    args = parser.parse_args()
    cost = Accounting()
    if args.ceiling:
        for scale in (0.0, 0.002, 0.003, 0.004):
            trees = range(*args.ceiling)
            ratios = [stake_ceiling(random_binary_tree(args.depth, tree), 0.005, scale) for tree in trees]
            print(json.dumps({"nudge": 0.005, "nudge_error_scale": scale, "ceiling_mean": float(np.mean(ratios)),
                              "ceiling_min": float(np.min(ratios))}))
        print(json.dumps(cost.figures()))
        return
    if args.summarize:
        print(json.dumps(summarize(args.summarize) | cost.figures()))
        return
    th.set_num_threads(1)
    result = run(args.tree, args.seed, json.loads(args.overrides), args.depth, args.iterations)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(result, file)
    print(json.dumps(brief(result) | cost.figures()), flush=True)


if __name__ == "__main__":
    main()
