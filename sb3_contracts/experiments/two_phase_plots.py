"""PNG plots of the second system's runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.experiments.figures import pyplot, save_figure
from sb3_contracts.incentives.simulate import RunRecord

#: The six panels of :func:`plot_runs`: title, x-axis and y-axis labels (with units; rewards are the world's units).
PANELS = [
    ("(a) welfare ratio (smoothed)", "episode", "welfare / optimal welfare W* (1 = optimum)"),
    ("(b) welfare regret", "episode (log)", "cumulative welfare regret R_W(t) (reward units, log)"),
    ("(c) agent regret", "episode (log)", "cumulative agent regret (reward units, log)"),
    ("(d) transfers paid", "episode", "cumulative transfers (reward units)"),
    ("(e) principal's net reward (smoothed)", "episode", "net reward per episode (reward units)"),
    ("(f) pollution stock, last 10% of episodes", "step h of the episode", "mean stock (stock units)"),
]


def plot_runs(records: dict[str, RunRecord], path: str | Path, title: str = "") -> Path:
    """
    Six panels (:data:`PANELS`: titles and units), one line per principal (means over runs) and one legend for
    all: welfare ratio per episode (smoothed), cumulative welfare regret and agent regret (log–log), cumulative
    transfers, the principal's net reward per episode, and the stock trajectory within an episode over the last
    10% of episodes.

    :param records: the runs, by principal.
    :param path: the PNG to write.
    :param title: the figure's title.
    :return: the path written.
    """
    plt = pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for name, record in records.items():
        episodes = np.arange(1, len(record.welfare) + 1)
        window = max(1, len(episodes) // 200)
        ratio = record.welfare.mean(axis=1) / record.optimal_welfare
        smooth = np.convolve(ratio, np.ones(window) / window, mode="valid")
        axes[0, 0].plot(episodes[window - 1:], smooth, label=name)
        axes[0, 1].loglog(episodes, np.maximum(record.welfare_regret.mean(axis=1), 1e-9), label=name)
        axes[0, 2].loglog(episodes, np.maximum(np.cumsum(record.agent_regret.mean(axis=1)), 1e-9), label=name)
        axes[1, 0].plot(episodes, np.cumsum(record.transfers.mean(axis=1)), label=name)
        net = np.convolve(record.principal_net.mean(axis=1), np.ones(window) / window, mode="valid")
        axes[1, 1].plot(episodes[window - 1:], net, label=name)
        tail = max(1, len(episodes) // 10)
        axes[1, 2].plot(np.arange(record.mean_state.shape[1]), record.mean_state[-tail:].mean(axis=0), marker="o",
                        label=name)
    for ax, (panel, x, y) in zip(axes.flat, PANELS, strict=True):
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    # one legend for all six panels: every panel draws the same principals in the same colours
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=max(1, len(names)), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save_figure(fig, path, dpi=90, tight=False)


def plot_final_ratios(runs: Any, path: str | Path) -> Path:
    """
    Each principal's final welfare ratio over several experiments (e.g. a sweep's seeds): a dot per experiment,
    the mean as a bar.

    :param runs: the experiments' metrics (``metrics.json`` as read by
        :func:`~sb3_contracts.experiments.runner.load_metrics`).
    :param path: the PNG to write.
    :return: the path written.
    """
    plt = pyplot()

    ratios: dict[str, list[float]] = {}
    for run in runs:
        for name, summary in run["summaries"].items():
            ratios.setdefault(name, []).append(summary["final_welfare_ratio"])
    fig, ax = plt.subplots(figsize=(1.6 * len(ratios) + 2, 4))
    for position, values in enumerate(ratios.values()):
        ax.bar(position, np.mean(values), color="lightgrey")
        ax.plot(np.full(len(values), position), values, "o", color="black")
    ax.set_xticks(range(len(ratios)), list(ratios))
    ax.set_ylabel("final welfare ratio (welfare / optimum)")
    ax.set_ylim(min(min(v) for v in ratios.values()) * 0.95, 1.01)
    return save_figure(fig, path, dpi=120)
