"""The ``sb3-contracts`` command line.

Subcommands:

* ``solve``: exact SPE of a random binary game tree (values, share of states where effort is induced,
  time taken).
* ``demo``: ``solve``, then one episode of ``ContractBinaryTree-v0`` with the equilibrium contracts,
  step by step.
* ``tree``: train ContractDQN on a random binary tree (the tuned presets) and score it against the SPE.
* ``coin``: the Coin Game experiment end to end (principal, validation with fresh DQN/PPO agents, SPE/IC
  best responses, baselines), one TensorBoard run per phase under ``<out>/tb`` and ``<out>/metrics.json``.
 * ``two-phase``: the second system on the pollution world (two-phase mechanism, baselines, optional bandit
   reproduction): ``<out>/metrics.json``, TensorBoard runs under ``<out>/tb`` and PNG plots.
* ``plot``: the Figure 2 panels (PNG) from one or more ``coin`` experiment folders, or a sweep's figures.
* ``table``: the ``coin`` experiment folders' results as a Markdown table, or a sweep's tables.
* ``sweep``: a grid of settings x seeds of an experiment (``coin``, ``tree``, ``two_phase``) as Ray Tune trials,
  resumable.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.contract_dqn.presets import TREE_ITERATIONS, TREE_N_ENVS, TREE_START_STATES
from sb3_contracts.envs.binary_tree import random_binary_tree
from sb3_contracts.envs.coin_game import CONTESTED, REWARD_RULES
from sb3_contracts.experiments.coin.settings import ENCODERS, REPLAYS
from sb3_contracts.game.batch import parse_start_states
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


def _model_path(path: str, argument: str) -> Path:
    """Where a model will be saved, checked before any training: its folder must be one (or creatable)."""
    target = Path(path).expanduser()
    for parent in (target.parent, *target.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{argument} {path}: {parent} is a file, not a folder")
            break
    if target.is_dir():
        raise ValueError(f"{argument} {path} is a folder: give a file name (SB3 adds .zip)")
    return target


def cmd_tree(args: argparse.Namespace) -> int:
    from sb3_contracts.experiments.tree import TreeExperimentConfig, run_tree_experiment

    if args.iterations < 1:
        raise ValueError(f"--iterations must be positive, got {args.iterations}")
    config = TreeExperimentConfig(depth=args.depth, tree_seed=args.seed, seed=args.trial, iterations=args.iterations,
                                  n_envs=args.n_envs, start_states=args.start_states)
    save = _model_path(args.save, "--save") if args.save else None
    model, results = run_tree_experiment(config, tensorboard_log=args.tensorboard_log,
                                         progress_bar=not args.no_progress)
    if save is not None:
        model.save(save)
    final = {key: value for key, value in results["final"].items() if key != "steps"}
    print(json.dumps({"depth": args.depth, "seed": args.seed, "trial": args.trial, **final,
                      "wall_s": results["wall_s"]}))
    return 0


def cmd_coin(args: argparse.Namespace) -> int:
    from sb3_contracts.experiments.coin.experiment import run_pipeline
    from sb3_contracts.experiments.coin.settings import CoinExperimentConfig, read_zoo_overrides
    from sb3_contracts.experiments.runner import experiment_folder

    if args.grid not in (3, 7):
        raise ValueError(f"--grid must be 3 or 7 (the paper's presets), got {args.grid}")
    experiment_folder(args.out, "--out")
    preset = f"{args.grid}x{args.grid}"
    overrides = read_zoo_overrides(args.conf_file, preset) if args.conf_file else {}
    config = CoinExperimentConfig(preset=preset, seed=args.seed, reward_rule=args.reward_rule,
                                  contested=args.contested, n_games=args.n_games,
                                  n_agents=args.n_agents, alpha=args.alpha, principal_steps=args.principal_steps,
                                  agent_steps=args.agent_steps, baseline_steps=args.baseline_steps, nudge=args.nudge,
                                  algos=tuple(args.algos), encoder=args.encoder, replay=args.replay, **overrides)
    results = run_pipeline(config, args.out, progress_bar=not args.no_progress, log=print,
                           parallel=False if args.sequential else None)
    print(f"metrics: {args.out}/metrics.json, TensorBoard: tensorboard --logdir {args.out}/tb")
    print(json.dumps(results["summary"]))
    return 0


def cmd_two_phase(args: argparse.Namespace) -> int:
    import torch as th

    from sb3_contracts.experiments.runner import experiment_folder
    from sb3_contracts.experiments.two_phase import TwoPhaseRun, run_experiment

    th.set_num_threads(1)
    experiment_folder(args.out, "--out")
    settings = TwoPhaseRun(damage=args.damage, damage_coef=args.damage_coef, n_firms=args.n_firms,
                           max_stock=args.max_stock, agent=args.agent, principals=tuple(args.principals),
                           episodes=args.episodes, n_runs=args.runs, seed=args.seed).settings()
    _, metrics = run_experiment(settings, out=args.out, log=print)
    if args.bandit:
        from sb3_contracts.experiments.two_phase_plots import plot_bandit
        from sb3_contracts.incentives.bandit import run_ipa, run_two_phase

        curves = {"two-phase (ours)": run_two_phase(), "Scheid et al. (IPA)": run_ipa()}
        metrics["bandit_final_regret"] = {name: float(curve[-1].mean()) for name, curve in curves.items()}
        print(plot_bandit(curves, f"{args.out}/bandit.png"))
        with open(f"{args.out}/metrics.json", "w") as handle:
            json.dump(metrics, handle, indent=2, default=float)
    print(f"metrics: {args.out}/metrics.json, plot: {args.out}/two_phase.png, TensorBoard: tensorboard --logdir "
          f"{args.out}/tb")
    print(json.dumps({name: {key: summary.get(key) for key in ("final_welfare_ratio", "welfare_regret_slope")}
                      for name, summary in metrics["summaries"].items()}))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    sweeps = _sweeps(args.runs)
    if sweeps:
        from sb3_contracts.sweeps import sweep_plots

        for folder in sweeps:
            print("\n".join(map(str, sweep_plots(folder, args.out))))
        return 0
    from sb3_contracts.experiments.coin.plots import plot_curves, plot_figure2

    out = Path(args.out or f"{args.runs[0]}/figure2.png")
    print(plot_figure2(args.runs, out))
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
    from sb3_contracts.experiments.coin.plots import results_table

    print(results_table(args.runs))
    return 0


def _sweeps(runs: Sequence[str]) -> list[str]:
    """The sweep folders among ``runs``: all of them or none (a sweep's trials are read from its folder)."""
    from sb3_contracts.sweeps import is_sweep

    sweeps = [run for run in runs if is_sweep(run)]
    if sweeps and len(sweeps) != len(runs):
        raise ValueError(f"runs: give sweep folders or experiment folders, not both (sweeps: {sweeps})")
    return sweeps


def _parse_value(text: str) -> Any:
    """A setting's value from the command line: JSON (numbers, true, null, lists, dicts) or else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
            parsed[key] = _parse_value(text)
        elif text.startswith("["):
            parsed[key] = _parse_value(text)
            if not isinstance(parsed[key], list):
                raise ValueError(f"{argument} {key}: {text!r} is not a JSON list")
        else:
            parsed[key] = [_parse_value(value) for value in text.split(",")]
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

    tree = commands.add_parser("tree", help="train ContractDQN on a random binary tree, score it against the SPE")
    tree.add_argument("--depth", type=int, default=10, help="tree depth (default 10)")
    tree.add_argument("--seed", type=int, default=0, help="tree seed (default 0)")
    tree.add_argument("--trial", type=int, default=0, help="training seed (default 0)")
    tree.add_argument("--iterations", type=int, default=TREE_ITERATIONS, help="vec-env steps, one gradient step each")
    tree.add_argument("--n-envs", type=int, default=TREE_N_ENVS, help=f"parallel episodes (default {TREE_N_ENVS})")
    tree.add_argument("--start-states", type=parse_start_states, default=TREE_START_STATES,
                      help="where training episodes start: uniform (anywhere), initial (the root), or the share "
                           f"of episodes that start at the root, the others anywhere (default {TREE_START_STATES})")
    tree.add_argument("--tensorboard-log", default=None, help="TensorBoard folder (default: none)")
    tree.add_argument("--save", default=None, help="save the trained model to this .zip")
    tree.add_argument("--no-progress", action="store_true", help="no progress bar")
    tree.set_defaults(func=cmd_tree)

    coin = commands.add_parser("coin", help="the Coin Game experiment: principal, validation, baselines, metrics")
    coin.add_argument("--grid", type=int, default=3, help="3 (3x3, 20 steps) or 7 (7x7, 50 steps); default 3")
    coin.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    coin.add_argument("--reward-rule", choices=REWARD_RULES, default="parl",
                      help="parl: the paper's +1 own / +0.2 other coin (default); lola: a taken coin costs its owner 2")
    coin.add_argument("--contested", choices=CONTESTED, default="random",
                      help="who collects a coin several players reach: one at random (default: the dilemma) or all")
    coin.add_argument("--n-agents", type=int, default=2, help="players, 2 to 4 (default 2)")
    coin.add_argument("--alpha", type=float, default=0.1,
                      help="the principal's weight of welfare against payments: utility welfare/alpha - payments")
    coin.add_argument("--nudge", type=float, default=None, help="the nudge xi (default: the preset's)")
    coin.add_argument("--encoder", choices=sorted(ENCODERS), default="centred",
                      help="every learner's encoder: the centred grid (default) or the paper's convolution")
    coin.add_argument("--replay", choices=REPLAYS, default="uniform",
                      help="the principal's replay: uniform (default) or the paper's prioritized replay")
    coin.add_argument("--out", default="runs/coin", help="experiment folder (default runs/coin)")
    coin.add_argument("--n-games", type=int, default=16, help="games stepped together (default 16)")
    budgets = "default: the preset's, PRESETS in sb3_contracts.experiments.coin.settings"
    coin.add_argument("--principal-steps", type=int, default=None, help=f"principal's game steps ({budgets})")
    coin.add_argument("--agent-steps", type=int, default=None, help=f"each validation agent's agent-steps ({budgets})")
    coin.add_argument("--baseline-steps", type=int, default=None, help=f"each baseline's agent-steps ({budgets})")
    coin.add_argument("--algos", nargs="+", default=["dqn", "ppo"], help="validation algorithms (dqn, ppo)")
    coin.add_argument("--conf-file", nargs="+", default=None,
                      help="rl-zoo3 files whose hyperparameters to use: contract_dqn_multiagent.yml (the principal), "
                           "dqn.yml, ppo.yml (the agents); default: the settings those files are generated from")
    coin.add_argument("--no-progress", action="store_true", help="no progress bars")
    coin.add_argument("--sequential", action="store_true",
                      help="run the phases one after the other (default: as parallel Ray tasks when Ray is installed)")
    coin.set_defaults(func=cmd_coin)

    two = commands.add_parser("two-phase", help="incentives for a learning firm in the pollution world")
    two.add_argument("--episodes", type=int, default=100_000, help="episodes per run (default 100,000)")
    two.add_argument("--runs", type=int, default=5, help="independent runs, vectorised (default 5)")
    two.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    two.add_argument("--agent", choices=("optimistic_q", "epsilon_greedy_q", "exact"), default="optimistic_q",
                     help="the learning firm (default optimistic_q, UCB-H)")
    two.add_argument("--principals", nargs="+", default=["two_phase", "none", "oracle"],
                     help="two_phase, none, oracle, flat_subsidy (default: the first three)")
    two.add_argument("--damage", choices=("linear", "quadratic"), default="linear", help="damage (default linear)")
    two.add_argument("--damage-coef", type=float, default=0.4, help="c or s (default 0.4, for linear damage)")
    two.add_argument("--n-firms", type=int, default=1, help="firms sharing the stock; the others unregulated")
    two.add_argument("--max-stock", type=int, default=20, help="stock grid 0..K (default 20; 40 for two firms)")
    two.add_argument("--bandit", action="store_true", help="also the one-state bandit reproduction (bandit.png)")
    two.add_argument("--out", default="runs/two_phase", help="output folder (default runs/two_phase)")
    two.set_defaults(func=cmd_two_phase)

    plot = commands.add_parser("plot", help="draw the Figure 2 panels from coin experiment folders, or a sweep's")
    plot.add_argument("runs", nargs="+", help="experiment folders (or metrics.json files), several are averaged; or "
                                              "sweep folders (a figure per setting, its seeds averaged)")
    plot.add_argument("--out", default=None, help="PNG path (default <first run>/figure2.png); for sweeps a folder "
                                                  "(default <sweep>/plots)")
    plot.set_defaults(func=cmd_plot)

    table = commands.add_parser("table", help="the coin experiment folders' results as a Markdown table, or a sweep's")
    table.add_argument("runs", nargs="+", help="experiment folders (or metrics.json files), one row each; or sweep "
                                               "folders (a table per setting: a row per trial, the seeds pooled)")
    table.set_defaults(func=cmd_table)

    sweep = commands.add_parser("sweep", help="a grid of settings x seeds of an experiment as Ray Tune trials; "
                                              "the same command again resumes it")
    sweep.add_argument("experiment", help="the experiment: coin, tree or two_phase")
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
                       help="CPUs of each trial (on one node) for its phases in parallel (coin only; default 1: "
                            "phases in sequence, trials in parallel)")
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
