"""Ablations of the Coin Game principal: one setting varied over values and seeds, judged by fresh DQN agents.

For each value of ``--vary`` and each seed: the principal trains (the experiment's settings, with ``--set``
overrides), fresh shared-parameter DQN agents learn against its frozen contracts, and both are evaluated on
2 x 1024 fresh episodes: the validated welfare and payments per episode, the payment share, the follow rate,
the principal's recommendations followed exactly, and the exact optimum's ratio. No baselines and no SPE/IC
ratios (``benchmarks/coin_contracts.py`` runs those), which halves the cost of a run. Per-run JSON lines, a
Markdown table (mean ± standard error over seeds per value), an optional plot (``--plot``: the welfare-payment
frontier when varying ``alpha``), and one JSON line last. With ``--out FOLDER`` the sweep is resumable: each run
writes its own JSON file there as it ends, and a run whose file exists is read back instead of run again (stop it
at any time and start the same command again).

    python benchmarks/coin_ablation.py --vary alpha 0.01 0.03 0.1 0.3 1 --seeds 0 1 2 \\
        --set preset=3x3 contested=random --plot docs/figures/alpha_frontier.png
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.experiment import (
    evaluate_under_contracts,
    exact_optimum,
    train_agents,
    train_principal,
)
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.experiments.options import parse_value
from sb3_contracts.game.coin_agents_view import coin_principal
from sb3_contracts.game.responders import make_responder

FIGURES = ("welfare", "payments", "payment_share", "follow_rate", "followed_exactly_welfare", "optimal_ratio")


def run_one(config: CoinSettings) -> dict[str, float]:
    """Principal, DQN validation and evaluation of one config."""
    start, cpu_start = time.perf_counter(), time.process_time()
    principal = train_principal(config)
    offer = coin_principal(principal)
    agents = train_agents(offer, config, "dqn")
    validated = evaluate_under_contracts(make_responder(agents), offer, config)
    followed = evaluate_under_contracts(make_responder("follow"), offer, config)
    optimum = exact_optimum(config)
    return {"welfare": validated["welfare"], "welfare_se": validated["welfare_se"],
            "payments": validated["payments"], "payment_share": validated["payment_share"],
            "follow_rate": validated["follow_rate"], "followed_exactly_welfare": followed["welfare"],
            "optimal_ratio": validated["welfare"] / optimum if optimum else float("nan"),
            "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start}


def run_file(out: str, name: str, value: Any, fixed: dict[str, str], seed: int) -> Path:
    """Where ``--out`` keeps one run's row: the varied setting, the fixed ones and the seed name the file."""
    parts = [f"{name}={value}", *(f"{key}={text}" for key, text in sorted(fixed.items())), f"seed={seed}"]
    return Path(out) / ("__".join(parts).replace("/", "_") + ".json")


def table(rows: list[dict[str, Any]], name: str) -> str:
    """Markdown table: per value of the varied setting, the mean ± standard error over seeds of every figure."""
    values = list(dict.fromkeys(row[name] for row in rows))
    lines = [f"| {name} | " + " | ".join(FIGURES) + " | runs |", "|---" * (len(FIGURES) + 2) + "|"]
    for value in values:
        group = [row for row in rows if row[name] == value]
        cells = []
        for figure in FIGURES:
            data = np.array([row[figure] for row in group], dtype=float)
            error = data.std(ddof=1) / np.sqrt(data.size) if data.size > 1 else float("nan")
            cells.append(f"{data.mean():.3f} ± {error:.3f}" if data.size > 1 else f"{data.mean():.3f}")
        lines.append(f"| {value} | " + " | ".join(cells) + f" | {len(group)} |")
    return "\n".join(lines)


def plot_frontier(rows: list[dict[str, Any]], name: str, out: str) -> None:
    """Validated welfare against payments per episode, one point per value (mean ± SE over seeds), labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for value in dict.fromkeys(row[name] for row in rows):
        group = [row for row in rows if row[name] == value]
        welfare, payments = (np.array([row[key] for row in group]) for key in ("welfare", "payments"))
        se = [x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else 0.0 for x in (payments, welfare)]
        # a legend, not labels beside the points: labels collided with the error bars of close points
        ax.errorbar(payments.mean(), welfare.mean(), xerr=se[0], yerr=se[1], fmt="o", capsize=4,
                    label=f"{name} = {value} ({len(group)} seeds)")
    ax.legend(fontsize=8)
    ax.set_xlabel("payments per episode (validated DQN agents)")
    ax.set_ylabel("welfare per episode (sum of the agents' rewards)")
    ax.set_title(f"Welfare-payment frontier over {name} (error bars: ± one SE over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vary", nargs="+", required=True, metavar=("SETTING", "VALUE"),
                        help="a CoinSettings field and its values, e.g. alpha 0.01 0.1 1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="fixed CoinSettings fields")
    parser.add_argument("--plot", default=None, help="PNG of the welfare-payment frontier")
    parser.add_argument("--out", default=None, help="folder of one JSON file per run; runs already there are not rerun")
    args = parser.parse_args()
    cost = Accounting()
    names = {field.name for field in fields(CoinSettings)}
    name, *values = args.vary
    fixed = dict(item.split("=", 1) for item in args.set)
    for key in (name, *fixed):
        if key not in names:
            raise SystemExit(f"--vary/--set: {key!r} is not a CoinSettings field ({sorted(names)})")
    if not values:
        raise SystemExit("--vary needs a setting and at least one value")
    th.set_num_threads(1)
    rows = []
    for value in map(parse_value, values):
        for seed in args.seeds:
            settings = {key: parse_value(text) for key, text in fixed.items()} | {name: value, "seed": seed}
            config = CoinSettings(**{"algos": ("dqn",), **settings})
            path = run_file(args.out, name, value, fixed, seed) if args.out else None
            if path is not None and path.is_file():
                rows.append(json.loads(path.read_text()))
            else:
                rows.append({name: value, "seed": seed, **fixed, **run_one(config)})
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(rows[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, name))
    if args.plot:
        plot_frontier(rows, name, args.plot)
    print(json.dumps({"vary": name, "set": fixed, "runs": rows, **cost.figures()}))


if __name__ == "__main__":
    main()
