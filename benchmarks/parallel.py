"""Parallel phases (issue 15): the same Coin Game experiment in sequence and as parallel Ray tasks, one JSON line last.

Runs the Coin Game experiment twice in one invocation on the same settings (the
preset's budgets by default, one seed): first in sequence in this process, then with its phases as Ray tasks of one
CPU each on a local Ray of ``--cpus`` CPUs (started before the clock runs: the walls compare the phases, not Ray's
start). Prints ``sequential_wall_s``, ``parallel_wall_s``, ``speedup``, ``results_match`` (every figure equal, the
timings aside), both runs' phase times, the wall that the sequence's phase times predict for the parallel schedule
(``predicted_parallel_wall_s``: the same list scheduling on ``--cpus`` CPUs, no overheads), and the 1-minute load
average before and after each run (the speedup is only meaningful when the CPUs were free).

Usage::

    python benchmarks/parallel.py --preset 3x3 --seed 0          # 7x7: --preset 7x7
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.experiment import EXPERIMENT, coin_phases
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.experiments.options import add_settings_arguments, settings_from_args
from sb3_contracts.experiments.runner import init_ray, ordered

#: What must be equal for the two runs to match (the timings differ by nature).
COMPARED = ("config", "principal_follow", "validation", "ratios", "baselines", "summary")


def predicted_wall(config: CoinSettings, seconds: dict[str, float], cpus: int) -> float:
    """
    The wall of the parallel schedule given each phase's time: the first ready phase in the DAG's order takes the
    next free CPU, as :func:`~sb3_contracts.experiments.runner.run_phases` does.
    """
    waiting, running, finished, now = ordered(coin_phases(config)), {}, {}, 0.0
    while waiting or running:
        for phase in list(waiting):
            if len(running) < cpus and all(name in finished for name in phase.needs):
                waiting.remove(phase)
                running[phase.name] = now + seconds[phase.name]
        name = min(running, key=running.get)
        now = finished[name] = running.pop(name)
    return now


def timed(config: CoinSettings, parallel: bool, out: str | None) -> tuple[dict[str, Any], float, list]:
    loads = [os.getloadavg()[0]]
    start = time.perf_counter()
    results = run_experiment(EXPERIMENT, config, out, parallel=parallel, log=print)
    wall = time.perf_counter() - start
    return results, wall, loads + [os.getloadavg()[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_settings_arguments(parser, CoinSettings)  # the experiment's settings: one name and default each
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray (default: all)")
    parser.add_argument("--out", default=None, help="write both runs' folders under this one (default: no files)")
    args = parser.parse_args()
    config = settings_from_args(CoinSettings, args)
    cost = Accounting()
    start = time.perf_counter()
    init_ray(num_cpus=args.cpus, include_dashboard=False)
    ray_start = time.perf_counter() - start
    folder = (lambda name: f"{args.out}/{name}") if args.out else (lambda name: None)
    sequence, sequential_wall, sequential_load = timed(config, False, folder("sequential"))
    parallel, parallel_wall, parallel_load = timed(config, True, folder("parallel"))
    match = all(json.dumps(sequence[key], sort_keys=True) == json.dumps(parallel[key], sort_keys=True)
                for key in COMPARED)
    print(json.dumps({
        "preset": config.preset, "seed": config.seed, "cpus": args.cpus, "principal_steps": config.principal_steps,
        "agent_steps": config.agent_steps, "baseline_steps": config.baseline_steps,
        "sequential_wall_s": round(sequential_wall, 1), "parallel_wall_s": round(parallel_wall, 1),
        "speedup": round(sequential_wall / parallel_wall, 3), "parallel_over_sequential": round(
            parallel_wall / sequential_wall, 3), "results_match": match,
        "predicted_parallel_wall_s": round(predicted_wall(config, sequence["timings"], args.cpus), 1),
        "sequential_phases_s": {key: round(value, 1) for key, value in sequence["timings"].items()},
        "parallel_phases_s": {key: round(value, 1) for key, value in parallel["timings"].items()},
        "load_1m_sequential": sequential_load, "load_1m_parallel": parallel_load, "ray_start_s": round(ray_start, 1),
        "welfare_ratio": sequence["summary"]["welfare_ratio"],
        "parallel_phases_cpu_s": round(parallel["cpu_s"], 1),
        # the sequential run's phases ran here; the parallel run's in Ray workers (their CPU measured there)
        **cost.figures(elsewhere_s=parallel["cpu_s"]),
    }))


if __name__ == "__main__":
    main()
