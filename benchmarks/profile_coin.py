"""Where a Coin Game seed's time goes: every phase of the experiment in sequence, at a fraction of its budgets, with
its CPU time and (``--profile``) the share of it in each part of the code, one JSON line last.

Parts (by cProfile's own time of each function, so a part holds what runs in it and not what it calls):
``torch ops`` (forward kernels), ``backward``, ``optimizer``, ``torch nn (python)`` (module dispatch), ``torch
(python)`` (the rest of torch's Python: autograd's entry, clipping, tensor methods), ``numpy``,
``np<->torch`` (tensor creation and copies), ``replay`` (buffers), ``env+views`` (the core and the contract layer),
``sb3 loop`` (SB3's collect/train loop), ``our learner``, ``callbacks``, ``logging``, ``evaluation``. cProfile adds
its own cost to every Python call, so the shares weigh Python-heavy parts up; ``cpu_s`` without ``--profile`` is the
cost itself.

    python benchmarks/profile_coin.py --preset 3x3 --fraction 0.1 --profile
    python benchmarks/profile_coin.py --preset 3x3 --fraction 0.1 --set 'principal_kwargs={"gradient_steps": 4}'
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import pstats
import time
from typing import Any

import torch as th

from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.experiment import coin_phases
from sb3_contracts.experiments.coin.settings import BUDGETS, CoinSettings
from sb3_contracts.experiments.options import parse_value

#: Parts of the code, first match wins: (part, substrings of the file, substrings of a builtin's name).
PARTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("backward", (), ("run_backward",)),
    ("np<->torch", (), ("as_tensor", "from_numpy", "'numpy'", "'cpu'", "'to'", "torch.tensor")),
    ("torch ops", (), ("torch", "_C", "Tensor")),
    ("numpy", ("numpy",), ("numpy", "ndarray")),
    ("env+views", ("envs/coin_game", "/game/"), ()),
    ("replay", ("buffers", "prioritized"), ()),
    ("optimizer", ("torch/optim",), ()),
    ("logging", ("logger", "tensorboard"), ()),
    ("callbacks", ("metrics.py", "progress.py", "callbacks"), ()),
    ("evaluation", ("baselines.py",), ()),
    ("torch nn (python)", ("torch/nn",), ()),
    ("torch (python)", ("/torch/",), ()),
    ("sb3 loop", ("stable_baselines3",), ()),
    ("our learner", ("sb3_contracts",), ()),
)


def part_of(filename: str, name: str) -> str:
    """The part of the code a profiled function belongs to (see :data:`PARTS`)."""
    for part, files, builtins in PARTS:
        if filename == "~" and any(key in name for key in builtins):
            return part
        if filename != "~" and any(key in filename for key in files):
            return part
    return "other"


def shares(profile: cProfile.Profile) -> dict[str, float]:
    """Each part's share of the profiled time, largest first."""
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _, name), (_, _, own, _, _) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        totals[part_of(filename, name)] += own
    whole = sum(totals.values()) or 1.0
    return {part: round(seconds / whole, 3) for part, seconds in totals.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="3x3", choices=sorted(BUDGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of every training budget")
    parser.add_argument("--profile", action="store_true", help="profile each phase (slower) and report its parts")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other CoinSettings fields")
    args = parser.parse_args()
    if not 0 < args.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], got {args.fraction}")
    overrides: dict[str, Any] = dict(item.split("=", 1) for item in args.set)
    budgets = {name: max(1, int(BUDGETS[args.preset][name] * args.fraction))
               for name in ("principal_steps", "agent_steps", "baseline_steps")}
    config = CoinSettings(preset=args.preset, seed=args.seed, **budgets,
                          **{key: parse_value(value) for key, value in overrides.items()})
    th.set_num_threads(config.threads)
    cost = Accounting()
    outputs: dict[str, Any] = {}
    phases: dict[str, Any] = {}
    for phase in coin_phases(config):
        profile = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        outputs[phase.name] = phase.fn(*(outputs[name] for name in phase.needs))
        if profile is not None:
            profile.disable()
        phases[phase.name] = {"cpu_s": round(time.process_time() - cpu, 2),
                              "wall_s": round(time.perf_counter() - wall, 2),
                              **({"parts": shares(profile)} if profile is not None else {})}
        print(json.dumps({"phase": phase.name, **phases[phase.name]}), flush=True)
    print(json.dumps({"preset": config.preset, "seed": config.seed, "fraction": args.fraction, **budgets,
                      "profiled": args.profile, "phases": phases, **cost.figures()}))


if __name__ == "__main__":
    main()
