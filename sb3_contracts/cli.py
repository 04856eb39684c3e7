"""The ``sb3-contracts`` command line.

Subcommands:

* ``solve``: exact SPE of a random binary game tree (values, share of states where effort is induced,
  time taken).
* ``demo``: ``solve``, then one episode of ``ContractBinaryTree-v0`` with the equilibrium contracts,
  step by step.
* one per experiment (``coin``, ``tree``, ``two-phase``, ``bandit``): run it into ``--out`` (``metrics.json``,
  models, TensorBoard under ``<out>/tb``, figures); its options are its settings dataclass's fields, one option
  per field with the field's name, default and docstring (:mod:`sb3_contracts.experiments.options`).
* ``plot``: an experiment's figure from run folders (several are pooled), or a sweep's figures.
* ``table``: run folders' results as a Markdown table, or a sweep's tables.
* ``sweep``: a grid of settings x seeds of any experiment as Ray Tune trials, resumable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.envs.binary_tree import random_binary_tree
from sb3_contracts.experiments import experiment_names
from sb3_contracts.experiments.options import parse_value
from sb3_contracts.solvers import SPESolution, solve_spe

Command = Callable[[argparse.Namespace], int]


def _solve_tree(depth: int, seed: int) -> tuple[SPESolution, dict]:
    mdp = random_binary_tree(depth, seed)
    start = time.perf_counter()
    solution = solve_spe(mdp)
    elapsed = time.perf_counter() - start
    decision = ~mdp.terminal
    summary = {
        "depth": depth,
        "seed": seed,
        "states": int(mdp.n_states),
        "decision_states": int(decision.sum()),
        "principal_value": float(solution.principal_value[mdp.initial_state]),
        "agent_value": float(solution.agent_value[mdp.initial_state]),
        "effort_share": float(np.mean(solution.recommended_action[decision] == 1)),
        "mean_payment": float(solution.contracts[decision].max(axis=1).mean()),
        "solve_seconds": elapsed,
    }
    return solution, summary


def _print_summary(summary: dict) -> None:
    print(f"Random binary tree: depth {summary['depth']}, seed {summary['seed']}, "
          f"{summary['decision_states']:,} decision states")
    print(f"  principal value at the root  {summary['principal_value']:.4f}")
    print(f"  agent value at the root      {summary['agent_value']:.4f}")
    print(f"  effort induced in            {100 * summary['effort_share']:.1f}% of decision states")
    print(f"  solved in                    {1000 * summary['solve_seconds']:.1f} ms")


def cmd_solve(args: argparse.Namespace) -> int:
    _, summary = _solve_tree(args.depth, args.seed)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import sb3_contracts  # noqa: F401  (registers the env ids)

    solution, summary = _solve_tree(args.depth, args.seed)
    _print_summary(summary)
    env = gym.make("ContractBinaryTree-v0", depth=args.depth, seed=args.seed)
    env.reset(seed=args.seed)
    print("\nOne episode of ContractBinaryTree-v0, the principal offering the SPE contracts:")
    total, done = 0.0, False
    while not done:
        state = env.unwrapped.state
        contract = solution.contracts[state].astype(np.float32)
        _, reward, terminated, truncated, info = env.step(contract)
        total += reward
        print(f"  state {state:5d}: recommend a{solution.recommended_action[state]}, contract "
              f"[{contract[0]:.3f}, {contract[1]:.3f}] -> agent a{info['true_agent_action']}, "
              f"outcome o{info['outcome']}, paid {info['payment']:.3f}, principal reward {reward:+.3f}")
        done = terminated or truncated
    print(f"Episode return {total:.4f} (expected value {summary['principal_value']:.4f})")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from sb3_contracts.experiments import get_experiment, run_experiment
    from sb3_contracts.experiments.options import settings_from_args
    from sb3_contracts.experiments.runner import experiment_folder

    experiment = get_experiment(args.experiment)
    experiment_folder(args.out, "--out")
    settings = settings_from_args(experiment.settings, args)
    parallel = None if experiment.parallel_phases and not getattr(args, "sequential", True) else False
    results = run_experiment(experiment, settings, args.out, parallel=parallel, progress_bar=not args.no_progress,
                             log=print)
    print(f"metrics: {args.out}/metrics.json, TensorBoard: tensorboard --logdir {args.out}/tb; "
          f"table: sb3-contracts table {args.out}; figure: sb3-contracts plot {args.out}")
    print(json.dumps(results["summary"]))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    sweeps = _sweeps(args.runs)
    if sweeps:
        from sb3_contracts.sweeps import sweep_plots

        for folder in sweeps:
            print("\n".join(map(str, sweep_plots(folder, args.out))))
        return 0
    experiment = _experiment_of(args.runs)
    out = Path(args.out or f"{args.runs[0]}/{experiment.name}.png")
    print(experiment.plot(args.runs, out))
    if experiment.name == "coin":  # the paper's curves over training too, from the runs' TensorBoard scalars
        from sb3_contracts.experiments.coin.plots import plot_curves

        folders = [Path(run) if Path(run).is_dir() else Path(run).parent for run in args.runs]
        if all((folder / "tb").is_dir() for folder in folders):
            print(plot_curves(folders, out.with_name(f"{out.stem}_curves.png")))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    sweeps = _sweeps(args.runs)
    if sweeps:
        from sb3_contracts.sweeps import sweep_table

        print("\n\n".join(sweep_table(folder) for folder in sweeps))
        return 0
    print(_experiment_of(args.runs).table(args.runs))
    return 0


def _experiment_of(runs: Sequence[str]) -> Any:
    """The experiment whose runs ``runs`` are (all of them of one)."""
    from sb3_contracts.experiments import get_experiment
    from sb3_contracts.experiments.runner import load_metrics

    names = {load_metrics(run)["experiment"] for run in runs}
    if len(names) != 1:
        raise ValueError(f"runs: give runs of one experiment, got runs of {sorted(names)}")
    return get_experiment(names.pop())


def _sweeps(runs: Sequence[str]) -> list[str]:
    """The sweep folders among ``runs``: all of them or none (a sweep's trials are read from its folder)."""
    from sb3_contracts.sweeps import is_sweep

    sweeps = [run for run in runs if is_sweep(run)]
    if sweeps and len(sweeps) != len(runs):
        raise ValueError(f"runs: give sweep folders or experiment folders, not both (sweeps: {sweeps})")
    return sweeps


def _assignments(items: Sequence[str], argument: str, values: bool) -> dict[str, Any]:
    """``KEY=VALUE`` items (``KEY=V1,V2`` or ``KEY=[...]`` with ``values``) as a dict."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key or not text:
            raise ValueError(f"{argument} expects KEY={'V1,V2' if values else 'VALUE'}, got {item!r}")
        if key in parsed:
            raise ValueError(f"{argument} gives {key} twice")
        if not values:
            parsed[key] = parse_value(text)
        elif text.startswith("["):
            parsed[key] = parse_value(text)
            if not isinstance(parsed[key], list):
                raise ValueError(f"{argument} {key}: {text!r} is not a JSON list")
        else:
            parsed[key] = [parse_value(value) for value in text.split(",")]
    return parsed


def cmd_sweep(args: argparse.Namespace) -> int:
    from sb3_contracts.sweeps import run_sweep

    status = run_sweep(args.experiment, _assignments(args.grid, "--grid", True), args.seeds,
                       _assignments(args.settings, "--set", False), args.out, args.address, args.storage,
                       args.phase_cpus, args.max_concurrent, args.max_failures,
                       use_ray=False if args.no_ray else None, log=print)
    unfinished = [trial["name"] for trial in status["trials"] if trial["status"] != "finished"]
    print(f"{len(status['trials']) - len(unfinished)} of {len(status['trials'])} trials finished "
          f"({len(status['ran'])} ran now) in {status['folder']}")
    if unfinished:
        print(f"not finished: {', '.join(unfinished)}; run the same command again to resume them")
        return 1
    print(f"results: sb3-contracts table {status['folder']}; figures: sb3-contracts plot {status['folder']}")
    return 0


def _add_experiment_command(commands: Any, name: str) -> None:
    """The subcommand of an experiment: one option per settings field, then the run's own options."""
    from sb3_contracts.experiments import get_experiment
    from sb3_contracts.experiments.options import add_settings_arguments, plain

    experiment = get_experiment(name)
    doc = plain(sys.modules[experiment.phases.__module__].__doc__ or name)
    command = commands.add_parser(name.replace("_", "-"), help=doc.split("\n")[0], description=doc.split("\n\n")[0])
    add_settings_arguments(command.add_argument_group("settings"), experiment.settings)
    run = command.add_argument_group("the run")
    run.add_argument("--out", default=f"runs/{name}", help=f"the run's folder (default runs/{name})")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    if experiment.parallel_phases:
        run.add_argument("--sequential", action="store_true",
                         help="run the phases one after the other (default: as parallel Ray tasks when Ray is "
                              "installed)")
    command.set_defaults(func=cmd_experiment, experiment=name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb3-contracts", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    solve = commands.add_parser("solve", help="exact SPE of a random binary game tree")
    solve.add_argument("--depth", type=int, default=10, help="tree depth (default 10)")
    solve.add_argument("--seed", type=int, default=0, help="tree seed (default 0)")
    solve.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    solve.set_defaults(func=cmd_solve)

    demo = commands.add_parser("demo", help="solve a tree and play one episode of its contract env")
    demo.add_argument("--depth", type=int, default=6, help="tree depth (default 6)")
    demo.add_argument("--seed", type=int, default=0, help="tree and episode seed (default 0)")
    demo.set_defaults(func=cmd_demo)

    for name in experiment_names():
        _add_experiment_command(commands, name)

    plot = commands.add_parser("plot", help="an experiment's figure from run folders, or a sweep's figures")
    plot.add_argument("runs", nargs="+", help="run folders (or metrics.json files) of one experiment, several are "
                                              "pooled; or sweep folders (a figure per setting, its seeds pooled)")
    plot.add_argument("--out", default=None, help="PNG path (default <first run>/<experiment>.png); for sweeps a "
                                                  "folder (default <sweep>/plots)")
    plot.set_defaults(func=cmd_plot)

    table = commands.add_parser("table", help="run folders' results as a Markdown table, or a sweep's")
    table.add_argument("runs", nargs="+", help="run folders (or metrics.json files) of one experiment, one row "
                                               "each; or sweep folders (a table per setting: a row per trial)")
    table.set_defaults(func=cmd_table)

    sweep = commands.add_parser("sweep", help="a grid of settings x seeds of an experiment as Ray Tune trials; "
                                              "the same command again resumes it")
    sweep.add_argument("experiment", help=f"the experiment: {', '.join(experiment_names())} or one registered")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every setting (default 0)")
    sweep.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                       help="settings to vary and their values, e.g. reward_rule=parl,lola alpha=0.1,0.2 (values are "
                            "JSON or strings; KEY=[...] for a JSON list)")
    sweep.add_argument("--set", nargs="+", default=[], dest="settings", metavar="KEY=VALUE",
                       help="settings of every trial, e.g. preset=7x7 agent_steps=500000")
    sweep.add_argument("--out", default="runs/sweep", help="the sweep's folder (default runs/sweep); with --storage, "
                                                           "its path under the storage")
    sweep.add_argument("--address", default=None,
                       help="a running Ray cluster (the address `ray start --head` printed, host:port); default: Ray "
                            "on this machine")
    sweep.add_argument("--storage", default=None,
                       help="storage every node reaches, for several machines: a shared folder or a URI (s3://...)")
    sweep.add_argument("--phase-cpus", type=int, default=1,
                       help="CPUs of each trial (on one node) for its phases in parallel (experiments whose phases "
                            "can: coin; default 1: phases in sequence, trials in parallel)")
    sweep.add_argument("--max-concurrent", type=int, default=None, help="the most trials at once (default: all "
                                                                        "the CPUs allow)")
    sweep.add_argument("--max-failures", type=int, default=0, help="retries of a failed trial, from its checkpoint")
    sweep.add_argument("--no-ray", action="store_true", help="run the trials one after the other in this process")
    sweep.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-contracts`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as error:  # bad arguments, missing inputs: a message, no trace
        raise SystemExit(f"sb3-contracts {args.command}: {error}") from error


if __name__ == "__main__":
    raise SystemExit(main())
