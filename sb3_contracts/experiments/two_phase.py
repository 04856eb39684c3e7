"""The second system's experiment: principals against a learning firm under a stateful externality (pollution).

Each principal of :data:`PRINCIPALS` is one phase: it plays against fresh copies of the same kind of learning agent
(``n_runs`` runs, vectorised) and the runs are scored exactly. With an output folder the run writes
``metrics.json``, one TensorBoard run per principal under ``<out>/tb`` and ``<out>/two_phase.png``.
:data:`EXPERIMENT` is the experiment for the runner, the command line (``sb3-contracts two-phase``) and sweeps.
Example::

    from sb3_contracts.experiments import run_experiment
    from sb3_contracts.experiments.two_phase import EXPERIMENT, TwoPhaseSettings

    results = run_experiment(EXPERIMENT, TwoPhaseSettings(episodes=20_000), "runs/two_phase")
    results["summaries"]["two_phase"]["final_welfare_ratio"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, check_int
from sb3_contracts.envs.pollution import PollutionConfig, pollution_model
from sb3_contracts.experiments.runner import Experiment, Phase, PhaseRecord, RunContext, load_metrics
from sb3_contracts.incentives.agents import make_agent
from sb3_contracts.incentives.designs import best_flat_subsidy
from sb3_contracts.incentives.exact import welfare_optimum
from sb3_contracts.incentives.mechanism import TwoPhaseConfig, TwoPhaseMechanism
from sb3_contracts.incentives.metrics import log_record, summarize
from sb3_contracts.incentives.principals import FixedSchedule, IncentivePrincipal
from sb3_contracts.incentives.schedules import no_incentives, oracle_transfers
from sb3_contracts.incentives.simulate import RunRecord, run_game

#: The principals an experiment can compare.
PRINCIPALS = ("two_phase", "none", "oracle", "flat_subsidy")

#: Our default agent options (measured in docs/results/two_phase.md): UCB-H's bonus scale.
AGENT_OPTIONS: dict[str, dict[str, float]] = {"optimistic_q": {"bonus_scale": 0.002}, "epsilon_greedy_q": {},
                                              "exact": {}}
_WORLD_FIELDS = {item.name for item in fields(PollutionConfig)}
_MECHANISM_FIELDS = {item.name for item in fields(TwoPhaseConfig)}


@dataclass(frozen=True)
class TwoPhaseSettings:
    """What the two-phase experiment runs; a bad value fails at creation, naming the setting."""

    damage: str = "linear"
    """the stock's damage: ``"linear"`` (``c S``) or ``"quadratic"`` (``(s/2) S²``)"""
    damage_coef: float = 0.4
    """the damage coefficient ``c`` (linear) or ``s`` (quadratic)"""
    n_firms: int = 1
    """firms sharing the stock (the others unregulated: they emit the most)"""
    max_stock: int = 20
    """the stock grid ``0..K``"""
    agent: str = "optimistic_q"
    """the learning firm: ``"optimistic_q"`` (UCB-H), ``"epsilon_greedy_q"`` or ``"exact"`` (best responds)"""
    principals: tuple[str, ...] = ("two_phase", "none", "oracle")
    """the principals to compare (:data:`PRINCIPALS`)"""
    episodes: int = 100_000
    """episodes ``T`` of every run"""
    n_runs: int = 5
    """independent runs per principal (vectorised)"""
    seed: int = 0
    """base seed"""
    world_kwargs: dict[str, Any] = field(default_factory=dict)
    """other fields of :class:`~sb3_contracts.envs.pollution.PollutionConfig` (e.g. ``horizon``)"""
    mechanism_kwargs: dict[str, Any] = field(default_factory=dict)
    """fields of the mechanism's :class:`~sb3_contracts.incentives.mechanism.TwoPhaseConfig` (e.g. ``margin``)"""
    agent_options: dict[str, float] | None = None
    """the agent's options (``None``: :data:`AGENT_OPTIONS`)"""
    threads: int = 1
    """torch threads"""

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, 2)
        check_int("n_runs", self.n_runs, 1)
        check_int("seed", self.seed, 0)
        check_int("threads", self.threads, 1)
        if self.agent not in AGENT_OPTIONS:
            raise ValueError(f"agent must be one of {tuple(AGENT_OPTIONS)}, got {self.agent!r}")
        if isinstance(self.principals, str) or not isinstance(self.principals, (tuple, list)):
            raise ValueError(f"principals must be a list of names from {PRINCIPALS}, got {self.principals!r}")
        object.__setattr__(self, "principals", tuple(self.principals))
        unknown = set(self.principals) - set(PRINCIPALS)
        if unknown or not self.principals:
            raise ValueError(f"principals must be a non-empty subset of {PRINCIPALS}, got {self.principals}")
        for name, known in (("world_kwargs", _WORLD_FIELDS - {"damage", "damage_coef", "n_firms", "max_stock"}),
                            ("mechanism_kwargs", _MECHANISM_FIELDS)):
            value = getattr(self, name)
            if not isinstance(value, dict) or not set(value) <= known:
                raise ValueError(f"{name} must be a dict with keys among {sorted(known)}, got {value!r}")
        self.world()
        self.mechanism()

    def world(self) -> PollutionConfig:
        """The pollution world."""
        return PollutionConfig(damage=self.damage, damage_coef=self.damage_coef, n_firms=self.n_firms,
                               max_stock=self.max_stock, **self.world_kwargs)

    def mechanism(self) -> TwoPhaseConfig:
        """The two-phase mechanism's settings."""
        return TwoPhaseConfig(**self.mechanism_kwargs)

    def options(self) -> dict[str, float]:
        """The learning agent's options."""
        return AGENT_OPTIONS[self.agent] if self.agent_options is None else self.agent_options


def world_model(world: PollutionConfig) -> ExternalityMDP:
    """
    The regulated firm's problem. With several firms, the others are unregulated and emit as they like
    (the most, ``E``: their own best response whatever the stock), as in Dockner & Long's international
    setting where a country can pay only its own firm.
    """
    if world.n_firms == 1:
        return pollution_model(world)
    return pollution_model(world, np.full((world.horizon, world.n_states), world.max_emission))


def make_principal(name: str, model: ExternalityMDP, settings: TwoPhaseSettings) -> IncentivePrincipal:
    """Build one of :data:`PRINCIPALS` for the model."""
    n = settings.n_runs
    if name == "two_phase":
        return TwoPhaseMechanism(model.shape, n, settings.episodes, welfare_optimum(model).policy,
                                 settings.mechanism(), seed=settings.seed + 7)
    if name == "none":
        return FixedSchedule(no_incentives(model), n)
    if name == "oracle":
        return FixedSchedule(oracle_transfers(model, settings.mechanism().margin), n)
    world = settings.world()
    abatement = world.max_emission - np.arange(world.n_actions)
    return FixedSchedule(best_flat_subsidy(model, abatement).transfers, n)


def principal_phase(settings: TwoPhaseSettings, name: str) -> dict[str, Any]:
    """
    One phase: the principal ``name`` against fresh learning agents, ``n_runs`` runs.

    :return: ``record`` (the runs' :class:`~sb3_contracts.incentives.simulate.RunRecord`) and ``summary``
    """
    model = world_model(settings.world())
    agent = make_agent(settings.agent, model, settings.n_runs, seed=settings.seed, **settings.options())
    principal = make_principal(name, model, settings)
    record = run_game(model, agent, principal, settings.episodes, seed=settings.seed + 1)
    return {"record": record, "summary": summarize(record)}


def two_phase_phases(settings: TwoPhaseSettings, context: RunContext) -> list[Phase]:
    """One phase per principal; they are independent (each seeds its own agents)."""
    return [Phase(name, partial(principal_phase, settings, name)) for name in settings.principals]


def two_phase_results(settings: TwoPhaseSettings, records: Mapping[str, PhaseRecord]) -> dict[str, Any]:
    """
    The results: ``settings``, ``summaries`` (per principal, with its phase's ``wall_s``) and ``summary`` (per
    principal its final welfare ratio and welfare-regret slope, flat).
    """
    summaries = {name: {**records[name].output["summary"], "wall_s": records[name].seconds}
                 for name in settings.principals}
    # no slope where the regret is not positive throughout (the oracle's) or the run is short
    flat = {f"{name}/{key}": summary[key] for name, summary in summaries.items()
            for key in ("final_welfare_ratio", "welfare_regret_slope") if key in summary}
    data = asdict(settings)
    data["principals"] = list(settings.principals)
    return {"settings": data, "summaries": summaries, "summary": flat}


def write_outputs(folder: Path, settings: TwoPhaseSettings, records: Mapping[str, PhaseRecord],
                  results: dict[str, Any], every: int = 100) -> None:
    """A TensorBoard run per principal under ``<folder>/tb`` and ``two_phase.png`` (its path in ``results``)."""
    from stable_baselines3.common.logger import configure

    from sb3_contracts.experiments.two_phase_plots import plot_runs

    runs: dict[str, RunRecord] = {name: records[name].output["record"] for name in settings.principals}
    for name, record in runs.items():
        logger = configure(str(folder / "tb" / name), ["tensorboard"])
        log_record(record, logger, every=max(1, min(every, len(record.welfare) // 2)))
        logger.close()
    results["plot"] = str(plot_runs(runs, folder / "two_phase.png"))


def two_phase_table(paths: Any) -> str:
    """
    Experiments as a Markdown table: a row per experiment and principal (final welfare ratio, welfare-regret
    slope, wall), then each principal's mean ± standard deviation over the experiments (e.g. a sweep's seeds).

    :param paths: experiment folders or ``metrics.json`` files
    """
    runs = [load_metrics(path, "two_phase") for path in paths]
    if not runs:
        raise ValueError("two_phase_table needs at least one experiment")
    lines = ["| seed | principal | final welfare ratio | welfare-regret slope | wall |", "|---|---|---|---|---|"]
    pooled: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for name, summary in run["summaries"].items():
            # no slope where the regret is not positive throughout (the oracle's) or the run is short
            ratio, slope = summary["final_welfare_ratio"], summary.get("welfare_regret_slope", np.nan)
            pooled.setdefault(name, []).append((ratio, slope))
            seed = run["settings"]["seed"]
            lines.append(f"| {seed} | {name} | {ratio:.4f} | {_cell(slope)} | {summary['wall_s']:.0f} s |")
    for name, values in pooled.items():
        ratios, slopes = np.array(values).T
        slope = "n/a" if np.isnan(slopes).any() else f"{slopes.mean():.3f} ± {slopes.std():.3f}"
        lines.append(f"| mean ± std | {name} | {ratios.mean():.4f} ± {ratios.std():.4f} | {slope} | |")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"


def _plot(runs: Any, png: Path) -> Path:
    from sb3_contracts.experiments.two_phase_plots import plot_final_ratios

    return plot_final_ratios([load_metrics(run, "two_phase") for run in runs], png)


EXPERIMENT = Experiment("two_phase", TwoPhaseSettings, two_phase_phases, two_phase_results, two_phase_table, _plot,
                        write=write_outputs, checkpoints=False,
                        describe=lambda s: f"principals {', '.join(s.principals)} against {s.n_runs} runs of the "
                                           f"{s.agent} firm, {s.episodes:,} episodes each ({s.damage} damage)")
