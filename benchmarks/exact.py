"""Speed of the exact machinery: SPE solves of random binary trees and batched minimal contracts.

Prints one JSON line: median SPE solve time of depth-10 trees (ms; wall and CPU), SPE solve time of a depth-20 tree
(s, about two million states), and closed-form minimal contracts per second, batched (torch and the
NumPy front end). Targets on a 2-core CPU: depth 10 under 50 ms, depth 20 under 10 s, at least 1M
contracts/s.

    python benchmarks/exact.py
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sb3_contracts.envs.binary_tree import random_binary_tree

from sb3_contracts.contracts import minimal_contracts, minimal_contracts_torch
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.solvers import solve_spe


def _time(function, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="depth-10 solves to time")
    parser.add_argument("--batch", type=int, default=1_000_000, help="contracts per batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: with torch's default of "
                                                               "one per core a busy machine slows the solves)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cost = Accounting()

    small = random_binary_tree(10, seed=0)
    solve_spe(small)  # warm-up: first torch call, sparse index caches
    depth10, depth10_cpu = _time(lambda: solve_spe(small), args.repeats)

    start = time.perf_counter()
    large = random_binary_tree(20, seed=0)
    build_s = time.perf_counter() - start
    depth20 = _time(lambda: solve_spe(large), 1)[0][0]

    rng = np.random.default_rng(0)
    probs = np.broadcast_to(np.array([[0.9, 0.1], [0.1, 0.9]]), (args.batch, 2, 2)).copy()
    agent_q = rng.normal(size=(args.batch, 2))
    target = rng.integers(0, 2, size=args.batch)
    torch_args = (torch.from_numpy(probs), torch.from_numpy(agent_q), torch.from_numpy(target))
    torch_s = min(_time(lambda: minimal_contracts_torch(*torch_args), 5)[0])
    numpy_s = min(_time(lambda: minimal_contracts(probs, agent_q, target), 5)[0])
    observed_s = min(_time(lambda: minimal_contracts_torch(None, torch_args[1], torch_args[2],
                                                           observed_action=True), 5)[0])

    print(json.dumps({
        "spe_depth10_ms": 1000 * float(np.median(depth10)),
        # the CPU time of a solve: what it costs whatever else runs (the wall above waits for the CPU on a busy one)
        "spe_depth10_cpu_ms": 1000 * float(np.median(depth10_cpu)),
        "spe_depth20_s": depth20,
        "depth20_build_s": build_s,
        "depth20_states": int(large.n_states),
        "contracts_per_s_torch": args.batch / torch_s,
        "contracts_per_s_numpy": args.batch / numpy_s,
        "observed_contracts_per_s_torch": args.batch / observed_s,
        "torch_threads": torch.get_num_threads(),
        **cost.figures(),
    }))


if __name__ == "__main__":
    main()
