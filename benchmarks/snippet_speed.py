"""The README's ten-line snippet's speed: MultiAgentContractDQN on ContractCoinGame-v0, steps per second of wall and
of CPU with its constructor defaults (the registered id's preset: the experiment's settings) and with the Coin Game
experiment's principal settings passed explicitly, one JSON line last.

    python benchmarks/snippet_speed.py 4000            # torch's default threads in the process
    python benchmarks/snippet_speed.py 4000 1          # the process on one thread
"""
import json
import sys
import time

import torch as th

import sb3_contracts  # noqa: F401
from sb3_contracts import MultiAgentContractDQN
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.settings import CoinSettings

steps = int(sys.argv[1])
threads = sys.argv[2] if len(sys.argv) > 2 else "default"
if threads != "default":
    th.set_num_threads(int(threads))
cost = Accounting()
out = {"process_torch_threads": th.get_num_threads()}
for name, kwargs in (("defaults", {}), ("experiment", CoinSettings().principal_hyperparams())):
    model = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", seed=0, **kwargs)
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(steps)
    out[name] = steps / (time.perf_counter() - start)
    out[f"{name}_per_cpu_s"] = steps / (time.process_time() - cpu)  # what a core of its own would run
print(json.dumps({**out, **cost.figures()}))
