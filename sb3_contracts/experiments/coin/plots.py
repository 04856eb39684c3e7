"""Figure 2 of Ivanov et al. (2024) from the Coin Game runs' ``metrics.json`` files (matplotlib, Agg backend).

Five panels: (a) social welfare per episode of the principal's validated agents (DQN, PPO) next to the
selfish, cooperative and budget-matched constant-proportion baselines; (b) share of welfare paid (the
principal's payments; the proportion baseline's redistributed spend); (c) follow rate; (d) SPE ratio;
(e) IC ratio. :func:`plot_figure2` draws the final values (dots with one standard error over the runs; panel (a)
with the game's exact optimum as a dashed line); :func:`plot_curves` draws (a)-(c) over each phase's training, as
the paper does, from the ``coin/`` TensorBoard scalars.

:func:`results_table` writes the same runs as the README's Markdown results table, one row per run and a row
pooling the seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.experiments.coin.metrics import payment_share, ratio
from sb3_contracts.experiments.coin.settings import game_budgets
from sb3_contracts.experiments.figures import pyplot, save_figure
from sb3_contracts.experiments.runner import load_metrics

PANEL_COLORS = {"principal": "tab:blue", "baseline": "tab:gray"}


def _bars(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per panel, per bar: the values of every run."""
    panels: dict[str, dict[str, list[float]]] = {key: {} for key in ("welfare", "paid", "follow", "spe", "ic")}

    def add(panel: str, label: str, value: float) -> None:
        panels[panel].setdefault(label, []).append(float(value))

    for run in runs:
        for algo, metrics in run["validation"].items():
            add("welfare", f"principal\n({algo})", metrics["welfare"])
            add("paid", f"principal\n({algo})", metrics["payment_share"])
            add("follow", f"principal\n({algo})", metrics["follow_rate"])
        for kind, metrics in run["baselines"].items():
            add("welfare", kind if kind != "proportion" else "constant\nproportion", metrics["welfare"])
        proportion = run["baselines"]["proportion"]
        add("paid", "constant\nproportion", payment_share(proportion["spend_per_episode"], proportion["welfare"]))
        add("spe", "validation\nagent", run["ratios"]["spe_ratio"])
        add("ic", "validation\nagent", run["ratios"]["ic_ratio"])
    return panels


#: Per panel of Figure 2: its title and y-axis label (with units).
PANELS = {
    "welfare": ("(a) social welfare", "welfare per episode (sum of the agents' rewards)"),
    "paid": ("(b) payments", "payments / welfare"),
    "follow": ("(c) recommendations followed", "share of recommendations followed"),
    "spe": ("(d) SPE ratio", "return deviating / following"),
    "ic": ("(e) IC ratio", "return deviating / following"),
}


#: The panels measured against 1 and what 1 means there (the reference line's legend).
UNIT_REFERENCES = {
    "follow": "1 = every recommendation followed",
    "spe": "1 = deviating earns what following does\n(the others following)",
    "ic": "1 = deviating earns what following does\n(the others on their own policy)",
}
#: The least half-span of a panel around its reference 1, so that a ratio of 0.999 reads as 1, not far below it.
UNIT_HALF_SPAN = 0.05


def _mean_and_error(values: list[float]) -> tuple[float, float]:
    """Mean over runs and its standard error (0 for one run)."""
    return float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def plot_figure2(runs: Sequence[str | Path | dict[str, Any]], out: str | Path) -> Path:
    """
    Draw the five panels of final values into a PNG: a dot per method with its standard error over the runs (no
    truncated bars), the exact optimum and the ratio 1 as reference lines (what 1 means, in words), each panel
    zoomed to its data, but at least ±:data:`UNIT_HALF_SPAN` around 1 for the ratios; the title names the game's
    rules and the number of seeds.

    :param runs: experiment folders, ``metrics.json`` paths or loaded metrics (one per seed)
    :param out: the PNG file to write
    :return: the path written
    """
    plt = pyplot()

    if not runs:
        raise ValueError("runs must name at least one experiment folder or metrics.json")
    loaded = [run if isinstance(run, dict) else load_metrics(run, "coin") for run in runs]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.6))
    for ax, (key, points) in zip(axes, _bars(loaded).items(), strict=True):
        labels = list(points)
        stats = [_mean_and_error(points[label]) for label in labels]
        for index, (label, (mean, error)) in enumerate(zip(labels, stats, strict=True)):
            kind = "principal" if "principal" in label or "agent" in label else "baseline"
            ax.errorbar(index, mean, yerr=error, fmt="o", color=PANEL_COLORS[kind], capsize=4, markersize=7)
            ax.annotate(f"{mean:.2f}", (index, mean), xytext=(7, 0), textcoords="offset points", va="center",
                        fontsize=8)
        references = [1.0] if key in UNIT_REFERENCES else []
        optima = [run["summary"]["optimal_welfare"] for run in loaded if "optimal_welfare" in run.get("summary", {})]
        if key == "welfare" and optima:
            references = [float(np.mean(optima))]
            ax.axhline(references[0], color="black", linestyle="--", linewidth=0.8,
                       label=f"exact optimum {references[0]:.2f}")
        elif references:
            ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8, label=UNIT_REFERENCES[key])
        # a ratio is NaN when its denominator is 0 (e.g. no welfare, no recommendation): its dot is left out
        values = [v for v in [m - e for m, e in stats] + [m + e for m, e in stats] + references if np.isfinite(v)]
        values = values or [0.0, 1.0]
        span = max(values) - min(values) or 1.0
        low, high = min(values) - 0.15 * span, max(values) + 0.15 * span
        if key in UNIT_REFERENCES:
            low, high = min(low, 1.0 - UNIT_HALF_SPAN), max(high, 1.0 + UNIT_HALF_SPAN)
        ax.set_ylim(low, high)
        ax.set_xlim(-0.5, len(labels) - 0.3)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        title, ylabel = PANELS[key]
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        if references:
            ax.legend(fontsize=7, loc="best")
    errors = (f"{len(loaded)} seeds, error bars ± one standard error" if len(loaded) > 1
              else "1 seed: no error bars")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=color, label=name)
               for name, color in (("principal (validated agents)", PANEL_COLORS["principal"]),
                                   ("baselines", PANEL_COLORS["baseline"]))]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"{game_title(loaded[0].get('config', {}))}; final values, {errors}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, out, tight=False)


def game_title(config: dict[str, Any]) -> str:
    """The game a figure shows, from a run's settings: a wrapped game's name (and arguments), or the Coin Game's grid,
    players when not two, reward rule and contested rule."""
    if config.get("game") is not None:
        return config["game"] + (f" {config['env_kwargs']}" if config.get("env_kwargs") else "")
    players = f", {config['n_agents']} players" if config.get("n_agents", 2) != 2 else ""
    return (f"Coin Game {config.get('preset', '')}{players}, reward rule {config.get('reward_rule', 'parl')}, "
            f"contested coins: {config.get('contested', 'all')}")


#: The curves of Figure 2 over training: the TensorBoard runs and scalars each panel reads.
CURVES = {
    "welfare": ("coin/welfare", ("principal", "validation_dqn", "validation_ppo", "baseline_selfish",
                                 "baseline_cooperative", "baseline_proportion")),
    "paid": ("coin/payment_share", ("principal", "validation_dqn", "validation_ppo")),
    "follow": ("coin/follow_rate", ("principal", "validation_dqn", "validation_ppo")),
}


def read_scalars(run_folder: str | Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """
    One TensorBoard run's scalar ``tag``: its steps and values (empty arrays when absent).

    :param run_folder: the folder of one run's event files (e.g. ``<out>/tb/validation_dqn_1``)
    :param tag: the scalar's tag
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0)
    events = accumulator.Scalars(tag)
    return np.array([e.step for e in events], dtype=float), np.array([e.value for e in events], dtype=float)


def _phase_folder(experiment: Path, phase: str) -> Path | None:
    folders = sorted((experiment / "tb").glob(f"{phase}_*"))
    return folders[-1] if folders else None


def plot_curves(runs: Sequence[str | Path], out: str | Path, points: int = 50) -> Path:
    """
    Figure 2 as the paper draws it: panels (a)-(c) as curves over each phase's training (its own steps, as a
    share of its budget), the mean over runs with a shaded standard error, from the ``coin/`` TensorBoard scalars
    every phase logs; (d) and (e) are measured once, at the end (:func:`plot_figure2`).

    :param runs: experiment folders (each with its ``tb`` folder)
    :param out: the PNG file to write
    :param points: points per curve (the runs are interpolated onto a common grid)
    :return: the path written
    """
    plt = pyplot()

    folders = [Path(run) for run in runs]
    if not folders:
        raise ValueError("runs must name at least one experiment folder")
    grid = np.linspace(0.0, 1.0, points)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, (key, (tag, phases)) in zip(axes, CURVES.items(), strict=True):
        for phase in phases:
            curves = []
            for folder in folders:
                source = _phase_folder(folder, phase)
                steps, values = read_scalars(source, tag) if source is not None else (np.zeros(0), np.zeros(0))
                if steps.size >= 2:
                    curves.append(np.interp(grid, steps / steps.max(), values))
            if not curves:
                continue
            mean = np.mean(curves, axis=0)
            error = np.std(curves, axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
            line = ax.plot(grid, mean, label=phase.replace("_", " "))[0]
            ax.fill_between(grid, mean - error, mean + error, color=line.get_color(), alpha=0.2)
        title, ylabel = PANELS[key]
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel("share of the phase's training", fontsize=8)
        ax.legend(fontsize=7, loc="best")
    errors = f"{len(folders)} seeds, shaded ± one standard error" if len(folders) > 1 else "1 seed"
    metrics = [folder / "metrics.json" for folder in folders]
    config = load_metrics(metrics[0], "coin").get("config", {}) if metrics[0].is_file() else {}
    fig.suptitle(f"{game_title(config)}: over each phase's training (points: the last 100 games); {errors}",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, tight=False)


#: The results table's columns after ``seed``: summary keys shown as ratios.
_RATIO_COLUMNS = ("welfare_ratio", "payment_share", "follow_rate", "spe_ratio", "ic_ratio")


def _pooled_margin(runs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """
    Mean constant-proportion margin over runs, its evaluation standard error (independent runs) and its standard
    error over runs (the seeds' spread, which also holds the training noise; NaN for one run).
    """
    margins = [run["summary"]["constant_proportion_margin"] for run in runs]
    errors = [run["summary"]["constant_proportion_margin_se"] for run in runs]
    over_runs = float(np.std(margins, ddof=1) / np.sqrt(len(runs))) if len(runs) > 1 else float("nan")
    return float(np.mean(margins)), float(np.sqrt(np.sum(np.square(errors)))) / len(runs), over_runs


#: The marker of a results row whose run had smaller budgets than its preset's, explained under the table.
SHORT_BUDGET_MARK = "†"
_BUDGET_FIELDS = ("principal_steps", "agent_steps", "baseline_steps")


def budget_shortfalls(config: dict[str, Any]) -> list[str]:
    """
    The step budgets of a run below its game's (:func:`~sb3_contracts.experiments.coin.settings.game_budgets`), e.g.
    ``"principal_steps 640 < 150,000"``: such a run's ratios do not measure the experiment (a selfish or
    untrained method can then score a welfare ratio above 1).

    :param config: the run's settings (``metrics["config"]``)
    """
    preset = game_budgets(config)
    return [f"{name} {config[name]:,} < {preset[name]:,}" for name in _BUDGET_FIELDS
            if name in preset and isinstance(config.get(name), int) and config[name] < preset[name]]


def _table_row(run: dict[str, Any]) -> str:
    summary, baselines = run["summary"], run["baselines"]
    welfares = [summary["welfare"], run["principal_follow"]["welfare"],
                *(baselines[kind]["welfare"] for kind in ("selfish", "cooperative", "proportion"))]
    ppo = run["validation"].get("ppo")
    ppo_cell = (f"{ratio(ppo['welfare'], summary['cooperative_welfare']):.3f} / {ppo['follow_rate']:.3f}" if ppo
                else "n/a")
    seed = str(run["config"]["seed"]) + (f" {SHORT_BUDGET_MARK}" if budget_shortfalls(run["config"]) else "")
    cells = [seed, *(f"{summary[key]:.3f}" for key in _RATIO_COLUMNS),
             f"{summary['constant_proportion_margin']:+.2f} ± {summary['constant_proportion_margin_se']:.2f}",
             f"{summary['selfish_welfare_ratio']:.3f}",
             " / ".join(f"{value:.2f}" for value in welfares) + f" (p = {baselines['proportion']['p']:.2f})",
             f"{summary['optimal_ratio']:.3f}" if "optimal_ratio" in summary else "n/a", ppo_cell,
             _wall_cell(run), f"{run['cpu_s']:,.0f} s" if "cpu_s" in run else "n/a"]
    return "| " + " | ".join(cells) + " |"


def _wall_cell(run: dict[str, Any]) -> str:
    """A run's wall time in minutes; a resumed run's covers only the phases its last call ran, and says so."""
    cell = f"{run.get('wall_s', sum(run['timings'].values())) / 60:.0f} min"
    resumed = run.get("resumed_phases", [])
    return cell + (f" (resumed; {len(resumed)} phases before)" if resumed else "")


def results_table(paths: Sequence[str | Path]) -> str:
    """
    The runs' results as a Markdown table: per run (seed; marked, and explained under the table, when its budgets
    are below its preset's) the benchmark's ratios, the margin of the validated
    welfare over the budget-matched constant-proportion baseline (± one standard error), the welfare per episode
    of every method, PPO validation and the wall time; then the mean over runs, the margin with two standard
    errors: the evaluation's, pooled over independent runs, and the runs' spread (``std / sqrt(n)``), which also
    holds the training noise that one run's evaluation error leaves out. The wall time is the run's (``wall_s``; runs
    older than it: the sum of the phases' times; a resumed run's is its last call's, marked), the CPU time that of
    every phase in whichever process ran it (``cpu_s``).

    :param paths: experiment folders or ``metrics.json`` files
    """
    if not paths:
        raise ValueError("results_table needs at least one run")
    runs = [load_metrics(path, "coin") for path in paths]
    header = ("| seed | welfare_ratio | payment_share | follow_rate | spe_ratio | ic_ratio | margin over const.-prop. "
              "| selfish ratio | welfare: principal / followed exactly / selfish / cooperative / const.-prop. "
              "| optimal_ratio | PPO welfare ratio / follow | wall | CPU |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|", *(_table_row(run) for run in runs)]
    margin, evaluation_se, over_runs_se = _pooled_margin(runs)
    means = [f"{np.mean([run['summary'][key] for run in runs]):.3f}" for key in _RATIO_COLUMNS]
    spread = f" (± {over_runs_se:.2f} over seeds)" if len(runs) > 1 else ""
    short = {str(run["config"]["seed"]): budget_shortfalls(run["config"]) for run in runs}
    short = {seed: shortfalls for seed, shortfalls in short.items() if shortfalls}
    mean = f"mean {SHORT_BUDGET_MARK}" if short else "mean"
    lines.append(f"| {mean} | {' | '.join(means)} | {margin:+.2f} ± {evaluation_se:.2f}{spread} | | | | | | |")
    if short:
        lines.append("")
        lines += [f"{SHORT_BUDGET_MARK} seed {seed}: budget below the preset's ({'; '.join(shortfalls)}): its ratios "
                  f"do not measure the experiment" for seed, shortfalls in short.items()]
    return "\n".join(lines)
