"""Sweep resumption (issue 15): a 2x2 local sweep killed once its first trial finished, then resumed; one JSON line.

Starts ``sb3-contracts sweep coin --grid reward_rule=parl,lola --seeds 0 1 --set <budgets> --out <folder>`` in a child
process of its own session, kills that session (SIGKILL: the driver, its local Ray and every trial) as soon as one
trial has finished, then runs the same command again. Prints the trials finished when it was killed, the trials the
second invocation ran (``ran``: those that reported to Tune again) and whether they are exactly the other three,
and the walls and load averages.

Usage::

    python benchmarks/sweep_resume.py --out runs/sweep_resume
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.sweeps import report_counts, sweep_status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/sweep_resume", help="the sweep's folder (emptied first)")
    parser.add_argument("--set", nargs="+", dest="settings", help="settings of every trial",
                        default=["principal_steps=10000", "agent_steps=20000", "baseline_steps=20000"])
    args = parser.parse_args()
    cost = Accounting()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sb3_contracts.cli", "sweep", "coin", "--grid", "reward_rule=parl,lola",
               "--seeds", "0", "1", "--set", *args.settings, "--out", str(out)]
    load = [os.getloadavg()[0]]
    start = time.perf_counter()
    child = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished: list[str] = []
    while not finished and child.poll() is None:
        time.sleep(1.0)
        finished = sorted(path.parent.name for path in out.glob("*/finished"))
    os.killpg(child.pid, signal.SIGKILL)  # the child leads its own session: its Ray and trials go with it
    child.wait()
    killed_after = time.perf_counter() - start
    first = sweep_status(out)
    before = report_counts(str(out))
    load.append(os.getloadavg()[0])
    start = time.perf_counter()
    resumed = subprocess.run(command, capture_output=True, text=True)
    resume_wall = time.perf_counter() - start
    status = sweep_status(out, before)
    names = [trial["name"] for trial in status["trials"]]
    print(resumed.stdout.strip().splitlines()[-1] if resumed.stdout.strip() else resumed.stderr[-2000:])
    print(json.dumps({
        "trials": names, "finished_when_killed": finished, "killed_after_s": round(killed_after, 1),
        "status_after_kill": {trial["name"]: trial["status"] for trial in first["trials"]},
        "resume_ran": status["ran"], "resume_ran_only_the_others": sorted(status["ran"]) == sorted(
            set(names) - set(finished)), "resume_exit_code": resumed.returncode,
        "all_finished": all(trial["status"] == "finished" for trial in status["trials"]),
        "resume_wall_s": round(resume_wall, 1), "load_1m": load + [os.getloadavg()[0]],
        **cost.figures(),  # the sweeps ran as child processes, waited for: their CPU is counted
    }))


if __name__ == "__main__":
    main()
