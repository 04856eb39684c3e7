"""Figure 2 of Ivanov et al. (2024) from the pipeline's ``metrics.json`` files (matplotlib, Agg backend).

Five panels: (a) social welfare per episode of the principal's validated agents (DQN, PPO) next to the
selfish, cooperative and budget-matched constant-proportion baselines; (b) share of welfare paid (the
principal's payments; the proportion baseline's redistributed spend); (c) follow rate; (d) SPE ratio;
(e) IC ratio. Several runs (seeds) are averaged, with one standard deviation as error bars. Panel (a) draws the
game's exact cooperative optimum (``summary["optimal_welfare"]``) as a dashed line and zooms onto the bars, since
on 3x3 every method lies within a few percent of it.

:func:`results_table` writes the same runs as the README's Markdown results table, one row per run and a row
pooling the seeds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PANEL_COLORS = {"principal": "tab:blue", "baseline": "tab:gray"}


def load_metrics(path: str | Path) -> dict[str, Any]:
    """
    Read one run's metrics.

    :param path: a ``metrics.json`` file or the experiment folder holding it
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json at {path}: run `sb3-contracts coin --out <folder>` first")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a coin experiment's metrics.json (not JSON: {error})") from error
    if not isinstance(metrics, dict) or not {"config", "summary"} <= metrics.keys():
        raise ValueError(f"{path} is not a coin experiment's metrics.json (no 'config' and 'summary')")
    return metrics


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
        add("paid", "constant\nproportion", proportion["spend_per_episode"] / proportion["welfare"])
        add("spe", "validation\nagent", run["ratios"]["spe_ratio"])
        add("ic", "validation\nagent", run["ratios"]["ic_ratio"])
    return panels


def plot_figure2(runs: Sequence[str | Path | dict[str, Any]], out: str | Path) -> Path:
    """
    Draw the five panels into a PNG.

    :param runs: experiment folders, ``metrics.json`` paths or loaded metrics (one per seed)
    :param out: the PNG file to write
    :return: the path written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("runs must name at least one experiment folder or metrics.json")
    loaded = [run if isinstance(run, dict) else load_metrics(run) for run in runs]
    panels = _bars(loaded)
    titles = {"welfare": "(a) social welfare / episode", "paid": "(b) share of welfare paid",
              "follow": "(c) recommendations followed", "spe": "(d) SPE ratio", "ic": "(e) IC ratio"}
    fig, axes = plt.subplots(1, 5, figsize=(19, 4.2))
    for ax, (key, bars) in zip(axes, panels.items(), strict=True):
        labels = list(bars)
        means = [np.mean(bars[label]) for label in labels]
        errors = [np.std(bars[label]) for label in labels]
        colors = [PANEL_COLORS["principal" if "principal" in label or "agent" in label else "baseline"]
                  for label in labels]
        ax.bar(range(len(labels)), means, yerr=errors, color=colors, capsize=4)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(titles[key], fontsize=10)
        for index, mean in enumerate(means):
            ax.annotate(f"{mean:.2f}", (index, mean), ha="center", va="bottom", fontsize=8)
        if key in ("spe", "ic", "follow"):
            ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
        optima = [run["summary"]["optimal_welfare"] for run in loaded if "optimal_welfare" in run.get("summary", {})]
        if key == "welfare" and optima:
            optimum = float(np.mean(optima))
            ax.axhline(optimum, color="black", linestyle="--", linewidth=0.8, label=f"optimum {optimum:.2f}")
            low = min(np.array(means) - np.array(errors))
            ax.set_ylim(max(0.0, low - 0.1 * (optimum - low) - 0.5), optimum + 0.15 * (optimum - low) + 0.2)
            ax.legend(fontsize=8, loc="lower right")
    config = loaded[0].get("config", {})
    fig.suptitle(f"Coin Game {config.get('preset', '')}: principal-agent RL with contracts "
                 f"({len(loaded)} run{'s' if len(loaded) > 1 else ''})")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


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


def _table_row(run: dict[str, Any]) -> str:
    summary, baselines = run["summary"], run["baselines"]
    welfares = [summary["welfare"], run["principal_follow"]["welfare"],
                *(baselines[kind]["welfare"] for kind in ("selfish", "cooperative", "proportion"))]
    ppo = run["validation"].get("ppo")
    ppo_cell = f"{ppo['welfare'] / summary['cooperative_welfare']:.3f} / {ppo['follow_rate']:.3f}" if ppo else "n/a"
    cells = [str(run["config"]["seed"]), *(f"{summary[key]:.3f}" for key in _RATIO_COLUMNS),
             f"{summary['constant_proportion_margin']:+.2f} ± {summary['constant_proportion_margin_se']:.2f}",
             f"{summary['selfish_welfare_ratio']:.3f}",
             " / ".join(f"{value:.2f}" for value in welfares) + f" (p = {baselines['proportion']['p']:.2f})",
             f"{summary.get('optimal_ratio', float('nan')):.3f}", ppo_cell,
             f"{run.get('wall_s', sum(run['timings'].values())) / 60:.0f} min"]
    return "| " + " | ".join(cells) + " |"


def results_table(paths: Sequence[str | Path]) -> str:
    """
    The runs' results as a Markdown table: per run (seed) the benchmark's ratios, the margin of the validated
    welfare over the budget-matched constant-proportion baseline (± one standard error), the welfare per episode
    of every method, PPO validation and the wall time; then the mean over runs, the margin with two standard
    errors: the evaluation's, pooled over independent runs, and the runs' spread (``std / sqrt(n)``), which also
    holds the training noise that one run's evaluation error leaves out. The wall time is the run's (``wall_s``; runs
    older than it: the sum of the phases' times).

    :param paths: experiment folders or ``metrics.json`` files
    """
    if not paths:
        raise ValueError("results_table needs at least one run")
    runs = [load_metrics(path) for path in paths]
    header = ("| seed | welfare_ratio | payment_share | follow_rate | spe_ratio | ic_ratio | margin over const.-prop. "
              "| selfish ratio | welfare: principal / followed exactly / selfish / cooperative / const.-prop. "
              "| optimal_ratio | PPO welfare ratio / follow | wall |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|", *(_table_row(run) for run in runs)]
    margin, evaluation_se, over_runs_se = _pooled_margin(runs)
    means = [f"{np.mean([run['summary'][key] for run in runs]):.3f}" for key in _RATIO_COLUMNS]
    lines.append(f"| mean | {' | '.join(means)} | {margin:+.2f} ± {evaluation_se:.2f} (± {over_runs_se:.2f} over "
                 "seeds) | | | | | |")
    return "\n".join(lines)
