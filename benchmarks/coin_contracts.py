"""The Coin Game experiment's quality bar (issue 5): training, validation and baselines, one JSON line last.

Runs :func:`sb3_contracts.experiments.coin.experiment.run_pipeline` (the same as ``sb3-contracts coin``) and prints
``welfare_ratio`` (validated welfare of the fresh DQN agents / cooperative baseline welfare),
``payment_share``, ``follow_rate``, ``spe_ratio``, ``ic_ratio``, ``constant_proportion_welfare_ratio``
(budget-matched to the principal's validated spend), ``selfish_welfare_ratio``, ``wall_s`` and ``cpu_s``, with the PPO
validation's figures and the budgets used, and every welfare against the game's exact cooperative optimum
(``optimal_welfare``; ``optimal_ratio`` is the validated welfare over it, ``<baseline>_optimal_ratio`` the
baselines'), which shows how much room a principal has above selfish play.

Usage::

    python benchmarks/coin_contracts.py --grid 3 --seed 0 [--out runs/bench] [--principal-steps N] ...
"""

from __future__ import annotations

import argparse
import json
import time

from sb3_contracts.envs.coin_game import CONTESTED, REWARD_RULES

from sb3_contracts.experiments.coin.experiment import run_pipeline
from sb3_contracts.experiments.coin.settings import ENCODERS, REPLAYS, CoinExperimentConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=3, choices=(3, 7), help="3 or 7")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-rule", choices=REWARD_RULES, default="parl", help="the Coin Game's reward rule")
    parser.add_argument("--out", default=None, help="experiment folder (metrics.json, TensorBoard); none by default")
    # step budgets: the preset's (sb3_contracts.experiments.coin.settings.PRESETS) unless given; principal: game steps
    parser.add_argument("--principal-steps", type=int, default=None)
    parser.add_argument("--agent-steps", type=int, default=None)
    parser.add_argument("--baseline-steps", type=int, default=None)
    parser.add_argument("--n-games", type=int, default=16)
    parser.add_argument("--contested", choices=CONTESTED, default="random", help="who collects a contested coin")
    parser.add_argument("--n-agents", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default="centred")
    parser.add_argument("--replay", choices=REPLAYS, default="uniform")
    args = parser.parse_args()
    config = CoinExperimentConfig(preset=f"{args.grid}x{args.grid}", seed=args.seed, reward_rule=args.reward_rule,
                                  contested=args.contested,
                                  n_games=args.n_games, n_agents=args.n_agents, alpha=args.alpha,
                                  principal_steps=args.principal_steps, agent_steps=args.agent_steps,
                                  baseline_steps=args.baseline_steps, encoder=args.encoder, replay=args.replay)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = run_pipeline(config, args.out, log=print)
    summary = results["summary"]
    figures = {key: summary[key] for key in ("welfare_ratio", "payment_share", "follow_rate", "spe_ratio", "ic_ratio",
                                              "constant_proportion_welfare_ratio", "constant_proportion_margin",
                                              "constant_proportion_margin_se", "selfish_welfare_ratio")}
    ppo = results["validation"].get("ppo")
    if ppo is not None:
        figures |= {"ppo_welfare_ratio": ppo["welfare"] / summary["cooperative_welfare"],
                    "ppo_payment_share": ppo["payment_share"], "ppo_follow_rate": ppo["follow_rate"]}
    figures |= {key: value for key, value in summary.items() if "optimal" in key}
    figures |= {"welfare": summary["welfare"], "cooperative_welfare": summary["cooperative_welfare"],
                "grid": args.grid, "seed": args.seed, "reward_rule": args.reward_rule, "contested": args.contested,
                "n_agents": args.n_agents,
                "alpha": args.alpha, "encoder": args.encoder, "replay": args.replay,
                "principal_steps": config.principal_steps,
                "agent_steps": config.agent_steps, "baseline_steps": config.baseline_steps,
                "nudge": config.nudge,
                "timings_s": {key: round(value, 1) for key, value in results["timings"].items()},
                "wall_s": round(time.perf_counter() - start, 1),
                # the process's own CPU time: what the run costs on a core of its own, whatever else is running
                "cpu_s": round(time.process_time() - cpu_start, 1)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
