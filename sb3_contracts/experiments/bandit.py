"""The second system's one-state case: the principal-agent bandit of Scheid et al. (ICML 2024), both mechanisms.

Two phases, one per mechanism (:mod:`sb3_contracts.incentives.bandit`): ours (``two_phase``) and Scheid et al.'s
binary search then UCB (``ipa``), each ``n_runs`` runs of ``horizon`` rounds, vectorised. The results hold each
mechanism's final cumulative regret and its mean and standard deviation over runs along the rounds (at most
:data:`POINTS` rounds, for the figure). :data:`EXPERIMENT` is the experiment for the runner, the command line
(``sb3-contracts bandit``) and sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.envs.checks import check_int
from sb3_contracts.experiments.figures import pyplot, save_figure
from sb3_contracts.experiments.runner import Experiment, Phase, PhaseRecord, RunContext, load_metrics
from sb3_contracts.incentives.bandit import AGENT_VALUES, THETA, BanditSetup, run_ipa, run_two_phase

#: The mechanisms compared, by phase name: their legend in the figure.
MECHANISMS = {"two_phase": "two-phase (ours)", "ipa": "Scheid et al. (IPA)"}
#: Rounds kept per curve in ``metrics.json``.
POINTS = 200


@dataclass(frozen=True)
class BanditSettings:
    """What the bandit experiment runs (defaults: Scheid et al.'s supplementary setup)."""

    theta: tuple[float, ...] = THETA
    """the principal's mean reward per arm"""
    agent_values: tuple[float, ...] = AGENT_VALUES
    """the agent's value ``s`` per arm"""
    horizon: int = 10_000
    """rounds ``T``"""
    n_runs: int = 100
    """independent runs"""
    seed: int = 0
    """random seed"""
    threads: int = 1
    """torch threads"""

    def __post_init__(self) -> None:
        check_int("threads", self.threads, 1)
        check_int("seed", self.seed, 0)
        object.__setattr__(self, "theta", tuple(self.theta))
        object.__setattr__(self, "agent_values", tuple(self.agent_values))
        self.setup()

    def setup(self) -> BanditSetup:
        """The bandit."""
        return BanditSetup(self.theta, self.agent_values, self.horizon, self.n_runs, self.seed)


def mechanism_phase(settings: BanditSettings, name: str) -> dict[str, Any]:
    """One mechanism's runs: its cumulative regret ``[T, N]`` summarised (final mean and sd; curves at POINTS)."""
    curve = run_two_phase(settings.setup()) if name == "two_phase" else run_ipa(settings.setup())
    rounds = np.unique(np.linspace(0, len(curve) - 1, min(POINTS, len(curve))).astype(int))
    return {"final_regret": float(curve[-1].mean()), "final_regret_sd": float(curve[-1].std()),
            "round": (rounds + 1).tolist(), "mean": curve[rounds].mean(axis=1).tolist(),
            "sd": curve[rounds].std(axis=1).tolist()}


def bandit_phases(settings: BanditSettings, context: RunContext) -> list[Phase]:
    """One phase per mechanism."""
    return [Phase(name, partial(mechanism_phase, settings, name)) for name in MECHANISMS]


def bandit_results(settings: BanditSettings, records: Mapping[str, PhaseRecord]) -> dict[str, Any]:
    """The results: ``settings``, ``curves`` (per mechanism) and ``summary`` (the final regrets)."""
    curves = {name: records[name].output for name in MECHANISMS}
    summary = {f"{name}/final_regret": curve["final_regret"] for name, curve in curves.items()}
    return {"settings": asdict(settings), "curves": curves, "summary": summary}


def bandit_table(runs: Sequence[str | Path]) -> str:
    """Runs as a Markdown table: per run and mechanism the final cumulative regret (mean ± sd over its runs)."""
    lines = ["| seed | mechanism | final cumulative regret (mean ± sd over runs) |", "|---|---|---|"]
    for run in (load_metrics(path, "bandit") for path in runs):
        for name, curve in run["curves"].items():
            lines.append(f"| {run['settings']['seed']} | {MECHANISMS.get(name, name)} | "
                         f"{curve['final_regret']:.1f} ± {curve['final_regret_sd']:.1f} |")
    return "\n".join(lines)


def plot_bandit(runs: Sequence[str | Path | dict[str, Any]], png: str | Path) -> Path:
    """
    Each mechanism's mean cumulative regret with a band of ± one standard deviation over its runs (the runs of
    every folder given, pooled by averaging their curves).

    :param runs: run folders, ``metrics.json`` files or loaded metrics
    :param png: the file to write
    """
    plt = pyplot()
    loaded = [run if isinstance(run, dict) else load_metrics(run, "bandit") for run in runs]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, label in MECHANISMS.items():
        curves = [run["curves"][name] for run in loaded]
        rounds = np.asarray(curves[0]["round"])
        mean, sd = (np.mean([curve[key] for curve in curves], axis=0) for key in ("mean", "sd"))
        ax.plot(rounds, mean, label=label)
        ax.fill_between(rounds, mean - sd, mean + sd, alpha=0.2)
    settings = loaded[0]["settings"]
    ax.set_xlabel("round")
    ax.set_ylabel("principal's cumulative regret")
    ax.set_title(f"{len(settings['theta'])} arms, {settings['n_runs']} runs: mean, band ± 1 sd over runs",
                 fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, png, dpi=90)


def write_plot(folder: Path, settings: BanditSettings, records: Mapping[str, PhaseRecord],
               results: dict[str, Any]) -> None:
    """``<folder>/bandit.png`` (its path in ``results``)."""
    results["plot"] = str(plot_bandit([results], folder / "bandit.png"))


EXPERIMENT = Experiment("bandit", BanditSettings, bandit_phases, bandit_results, bandit_table, plot_bandit,
                        write=write_plot,
                        describe=lambda s: f"the principal-agent bandit: {len(s.theta)} arms, {s.horizon:,} rounds, "
                                           f"{s.n_runs} runs")
