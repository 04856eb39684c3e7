"""The Coin Game experiment's quality bar (issue 5): training, validation and baselines, one JSON line last.

Runs the Coin Game experiment (the same as ``sb3-contracts coin``; options: every ``CoinSettings`` field) and prints
``welfare_ratio`` (validated welfare of the fresh DQN agents / cooperative baseline welfare),
``payment_share``, ``follow_rate``, ``spe_ratio``, ``ic_ratio``, ``constant_proportion_welfare_ratio``
(budget-matched to the principal's validated spend), ``selfish_welfare_ratio``, ``wall_s`` and ``cpu_s``, with the PPO
validation's figures and the budgets used, and every welfare against the game's exact cooperative optimum
(``optimal_welfare``; ``optimal_ratio`` is the validated welfare over it, ``<baseline>_optimal_ratio`` the
baselines'), which shows how much room a principal has above selfish play.

Usage::

    python benchmarks/coin_contracts.py --preset 3x3 --seed 0 [--out runs/bench] [--principal-steps N] ...
"""

from __future__ import annotations

import argparse
import json

from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.experiment import EXPERIMENT
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.experiments.options import add_settings_arguments, settings_from_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_settings_arguments(parser, CoinSettings)  # the experiment's settings: one name and default each
    parser.add_argument("--out", default=None, help="experiment folder (metrics.json, TensorBoard); none by default")
    args = parser.parse_args()
    config = settings_from_args(CoinSettings, args)
    cost = Accounting()
    results = run_experiment(EXPERIMENT, config, args.out, log=print)
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
                **{key: value for key, value in results["config"].items() if not isinstance(value, dict)},
                "timings_s": {key: round(value, 1) for key, value in results["timings"].items()},
                # phases in sequence, in this process: its CPU time is all of it
                **cost.figures()}
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
