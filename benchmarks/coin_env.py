"""Speed of the Coin Game: joint steps per second of the batched core and of the PettingZoo env.

A *joint step* advances one game by one step with all players' actions, so one call of the core
with ``n_games = 4096`` is 4096 joint steps. Episodes are reset when they end (the reset is timed
too). Actions are drawn beforehand and cycled, so the policy's cost is not counted.

Measured variants, per preset (3x3/20 steps and 7x7/50 steps):

- ``core_no_obs``: ``CoinGameBatch.step`` alone (observations are lazy).
- ``core_with_obs``: ``step`` followed by ``observe()``, which builds every player's observation into
  the core's preallocated buffer (the figure to compare with other envs).
- ``parallel_env``: ``CoinGameParallelEnv.step`` with a dict of actions, one game; it always returns
  observations (copied out of the buffer), rewards, terminations, truncations and infos.
- ``principal_env`` and ``principal_vec_env``: the principal's views under contracts, ``ContractCoinGameEnv.step``
  (one game, the registered id's class) and ``ContractCoinGameVecEnv.step`` (``n_games`` of
  :data:`PRINCIPAL_BATCH_SIZES`, what the learner trains on), with random contracts drawn beforehand and the
  default ``"threshold"`` agents answering (the contract layer's cost: responders, settlement, infos).

``--contested`` picks who collects a coin several players reach (one ``"random"`` winner, the game's default, or
``"all"``; ``"random"`` costs one more gathered row and a check per step, and a draw for the contested
games on the steps where some game's coin is contested; with these uniformly random actions that is every
step at 4096 games on 3x3 and about half of them on 7x7, but only about one step in 100 for a single 3x3
game and almost never for a single 7x7 one).

Each figure is the best of ``--repeats`` runs of about ``--seconds`` each (the best run is the one
least disturbed by other processes). The last line of output is one JSON object.

Usage::

    python benchmarks/coin_env.py [--seconds 0.5] [--repeats 3] [--contested all|random]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from sb3_contracts.envs.coin_game import CONTESTED, PRESETS, CoinGameBatch, CoinGameConfig, parallel_env

from sb3_contracts import ContractCoinGameEnv, ContractCoinGameVecEnv
from sb3_contracts.experiments.accounting import Accounting

BATCH_SIZES = (1, 256, 4096)
#: Games of the principal's batched view measured (16: the experiment's ``n_games``).
PRINCIPAL_BATCH_SIZES = (16, 256)
TARGETS = {"3x3 core_with_obs n=4096": 5_000_000, "3x3 parallel_env": 50_000}


def best_rate(run_chunk: Callable[[], int], seconds: float, repeats: int) -> float:
    """
    Best rate over ``repeats`` runs of ``run_chunk`` repeated for about ``seconds``.

    :param run_chunk: does some work and returns the number of joint steps it made
    :param seconds: minimum duration of a run
    :param repeats: number of runs
    :return: joint steps per second of the fastest run
    """
    run_chunk()  # warm-up: caches, lazily built tables
    rates = []
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            steps += run_chunk()
        rates.append(steps / elapsed)
    return max(rates)


def core_chunk(preset: str, n_games: int, with_obs: bool, contested: str, chunk: int = 64) -> Callable[[], int]:
    core = CoinGameBatch(n_games=n_games, preset=preset, seed=0, contested=contested)
    actions = np.random.default_rng(0).integers(0, 4, (chunk, n_games, core.n_agents))

    def run() -> int:
        for joint in actions:
            _, truncated = core.step(joint)
            if with_obs:
                core.observe()
            if truncated[0]:  # all games share max_steps, so they end together
                core.reset()
        return chunk * n_games

    return run


def parallel_env_chunk(preset: str, contested: str, chunk: int = 1000) -> Callable[[], int]:
    env = parallel_env(preset=preset, contested=contested)
    env.reset(seed=0)
    draws = np.random.default_rng(0).integers(0, 4, (chunk, len(env.possible_agents))).tolist()
    actions = [dict(zip(env.possible_agents, joint, strict=True)) for joint in draws]

    def run() -> int:
        for joint in actions:
            env.step(joint)
            if not env.agents:
                env.reset()
        return chunk

    return run


def principal_chunk(preset: str, n_games: int | None, contested: str, chunk: int = 64) -> Callable[[], int]:
    """Steps of the principal's view of one game (``n_games=None``: ``ContractCoinGameEnv``) or of its VecEnv."""
    rng = np.random.default_rng(0)
    if n_games is None:
        env = ContractCoinGameEnv(preset=preset, contested=contested)
        env.reset(seed=0)
        contracts = rng.uniform(0.0, 2.0, (chunk, *env.action_space.shape)).astype(np.float32)

        def run_single() -> int:
            for contract in contracts:
                if env.step(contract)[3]:
                    env.reset()
            return chunk

        return run_single
    vec_env = ContractCoinGameVecEnv(n_games, seed=0, preset=preset, contested=contested)
    vec_env.reset()
    contracts = rng.uniform(0.0, 2.0, (chunk, n_games, *vec_env.action_space.shape)).astype(np.float32)

    def run() -> int:
        for contract in contracts:
            vec_env.step(contract)  # resets finished games itself
        return chunk * n_games

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum duration of one run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the best is kept)")
    parser.add_argument("--contested", choices=CONTESTED, default=CoinGameConfig().contested,
                        help="who collects a shared coin (default: the game's, CoinGameConfig)")
    args = parser.parse_args()
    cost = Accounting()
    results: dict[str, dict] = {}
    for preset in PRESETS:
        figures: dict = {"core_no_obs": {}, "core_with_obs": {}}
        for n_games in BATCH_SIZES:
            for variant, with_obs in (("core_no_obs", False), ("core_with_obs", True)):
                rate = best_rate(core_chunk(preset, n_games, with_obs, args.contested), args.seconds, args.repeats)
                figures[variant][str(n_games)] = round(rate)
                print(f"{preset}  {variant:<14} n_games={n_games:<5} {rate:>14,.0f} joint steps/s", flush=True)
        rate = best_rate(parallel_env_chunk(preset, args.contested), args.seconds, args.repeats)
        figures["parallel_env"] = round(rate)
        print(f"{preset}  parallel_env   n_games=1     {rate:>14,.0f} joint steps/s", flush=True)
        figures["principal_env"] = round(best_rate(principal_chunk(preset, None, args.contested), args.seconds,
                                                   args.repeats))
        print(f"{preset}  principal_env  n_games=1     {figures['principal_env']:>14,.0f} joint steps/s", flush=True)
        figures["principal_vec_env"] = {}
        for n_games in PRINCIPAL_BATCH_SIZES:
            rate = best_rate(principal_chunk(preset, n_games, args.contested), args.seconds, args.repeats)
            figures["principal_vec_env"][str(n_games)] = round(rate)
            print(f"{preset}  principal_vec  n_games={n_games:<5} {rate:>14,.0f} joint steps/s", flush=True)
        results[preset] = figures
    measured = {
        "3x3 core_with_obs n=4096": results["3x3"]["core_with_obs"]["4096"],
        "3x3 parallel_env": results["3x3"]["parallel_env"],
    }
    summary = {
        "benchmark": "coin_env",
        "unit": "joint steps per second (best of repeats)",
        "keys": "core_no_obs: CoinGameBatch.step only; core_with_obs: step + observe(); "
        "parallel_env: PettingZoo ParallelEnv.step (observations included); principal_env / principal_vec_env: "
        "the principal's views under random contracts, threshold agents; inner keys: n_games",
        "contested": args.contested,
        **results,
        "targets": TARGETS,
        "meets_targets": all(measured[key] >= target for key, target in TARGETS.items()),
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
        **cost.figures(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
