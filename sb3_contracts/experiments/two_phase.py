"""The pollution experiment end to end: principals against a learning agent, scores, TensorBoard, plots.

One call of :func:`run_experiment` plays every principal of :data:`PRINCIPALS` against fresh copies of the
same kind of agent (``N`` runs each, vectorised), scores the runs exactly, and with ``out`` writes
``metrics.json``, one TensorBoard run per principal under ``out/tb`` and ``out/two_phase.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_contracts.envs.externality import ExternalityMDP, check_int
from sb3_contracts.envs.pollution import PollutionConfig, pollution_model
from sb3_contracts.incentives.agents import make_agent
from sb3_contracts.incentives.baselines import no_incentives, oracle_transfers
from sb3_contracts.incentives.designs import best_flat_subsidy
from sb3_contracts.incentives.exact import welfare_optimum
from sb3_contracts.incentives.mechanism import TwoPhaseConfig, TwoPhaseMechanism
from sb3_contracts.incentives.metrics import log_record, summarize
from sb3_contracts.incentives.principals import FixedSchedule, Principal
from sb3_contracts.incentives.simulate import RunRecord, run_game

#: The principals an experiment can compare.
PRINCIPALS = ("two_phase", "none", "oracle", "flat_subsidy")

#: Our default agent options (measured in the README): UCB-H's bonus scale.
AGENT_OPTIONS: dict[str, dict[str, float]] = {"optimistic_q": {"bonus_scale": 0.002}, "epsilon_greedy_q": {},
                                              "exact": {}}


@dataclass
class ExperimentSettings:
    """
    :param world: the pollution world.
    :param agent: ``"optimistic_q"``, ``"epsilon_greedy_q"`` or ``"exact"``.
    :param agent_options: the agent's options (default :data:`AGENT_OPTIONS`).
    :param mechanism: the two-phase mechanism's settings.
    :param principals: which principals to run (see :data:`PRINCIPALS`).
    :param episodes: ``T``.
    :param n_runs: independent runs (seeds) per principal.
    :param seed: base seed.
    """

    world: PollutionConfig = field(default_factory=PollutionConfig)
    agent: str = "optimistic_q"
    agent_options: dict[str, float] | None = None
    mechanism: TwoPhaseConfig = field(default_factory=TwoPhaseConfig)
    principals: tuple[str, ...] = ("two_phase", "none", "oracle")
    episodes: int = 100_000
    n_runs: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, 2)
        check_int("n_runs", self.n_runs, 1)
        check_int("seed", self.seed, 0)
        unknown = set(self.principals) - set(PRINCIPALS)
        if unknown or not self.principals:
            raise ValueError(f"principals must be a non-empty subset of {PRINCIPALS}, got {self.principals}")


@dataclass(frozen=True)
class TwoPhaseRun:
    """
    The experiment's usual settings as flat keywords: the ``two-phase`` command's options and a sweep's keys
    (``sb3-contracts sweep two_phase --grid damage=linear,quadratic``). :meth:`settings` builds the
    :class:`ExperimentSettings`; a bad value fails at creation, naming the setting.

    :param damage: ``"linear"`` or ``"quadratic"`` damage of the stock.
    :param damage_coef: the damage coefficient (``c`` or ``s``).
    :param n_firms: firms sharing the stock (the others unregulated).
    :param max_stock: the stock grid ``0..K``.
    :param agent: the learning firm (see :class:`ExperimentSettings`).
    :param principals: which principals to run (see :data:`PRINCIPALS`).
    :param episodes: ``T``.
    :param n_runs: independent runs per principal.
    :param seed: base seed.
    """

    damage: str = "linear"
    damage_coef: float = 0.4
    n_firms: int = 1
    max_stock: int = 20
    agent: str = "optimistic_q"
    principals: tuple[str, ...] = ("two_phase", "none", "oracle")
    episodes: int = 100_000
    n_runs: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.agent not in AGENT_OPTIONS:
            raise ValueError(f"agent must be one of {tuple(AGENT_OPTIONS)}, got {self.agent!r}")
        if isinstance(self.principals, str) or not isinstance(self.principals, (tuple, list)):
            raise ValueError(f"principals must be a list of names from {PRINCIPALS}, got {self.principals!r}")
        object.__setattr__(self, "principals", tuple(self.principals))
        self.settings()

    def settings(self) -> ExperimentSettings:
        """The experiment's settings."""
        world = PollutionConfig(damage=self.damage, damage_coef=self.damage_coef, n_firms=self.n_firms,
                                max_stock=self.max_stock)
        return ExperimentSettings(world=world, agent=self.agent, principals=self.principals, episodes=self.episodes,
                                  n_runs=self.n_runs, seed=self.seed)


def world_model(world: PollutionConfig) -> ExternalityMDP:
    """
    The regulated firm's problem. With several firms, the others are unregulated and emit as they like
    (the most, ``E``: their own best response whatever the stock), as in Dockner & Long's international
    setting where a country can pay only its own firm.
    """
    if world.n_firms == 1:
        return pollution_model(world)
    return pollution_model(world, np.full((world.horizon, world.n_states), world.max_emission))


def make_principal(name: str, model: ExternalityMDP, settings: ExperimentSettings) -> Principal:
    """Build one of :data:`PRINCIPALS` for the model."""
    n = settings.n_runs
    if name == "two_phase":
        return TwoPhaseMechanism(model.shape, n, settings.episodes, welfare_optimum(model).policy,
                                 settings.mechanism, seed=settings.seed + 7)
    if name == "none":
        return FixedSchedule(no_incentives(model), n)
    if name == "oracle":
        return FixedSchedule(oracle_transfers(model, settings.mechanism.margin), n)
    abatement = settings.world.max_emission - np.arange(settings.world.n_actions)
    return FixedSchedule(best_flat_subsidy(model, abatement).transfers, n)


def run_experiment(settings: ExperimentSettings, out: str | Path | None = None,
                   log: Any = None) -> tuple[dict[str, RunRecord], dict[str, Any]]:
    """
    Play every principal of the settings against the agent; score; write outputs when ``out`` is given.

    :param settings: the experiment.
    :param out: folder for ``metrics.json``, ``tb/`` and ``two_phase.png`` (``None``: nothing written).
    :param log: a callable taking one line of progress (e.g. ``print``), or ``None``.
    :return: the records per principal and the metrics (summaries per principal, settings, wall times).
    """
    model = world_model(settings.world)
    options = AGENT_OPTIONS.get(settings.agent, {}) if settings.agent_options is None else settings.agent_options
    records, summaries = {}, {}
    for name in settings.principals:
        start = time.perf_counter()
        agent = make_agent(settings.agent, model, settings.n_runs, seed=settings.seed, **options)
        principal = make_principal(name, model, settings)
        records[name] = run_game(model, agent, principal, settings.episodes, seed=settings.seed + 1)
        summaries[name] = {**summarize(records[name]), "wall_s": time.perf_counter() - start}
        if log is not None:
            log(f"{name}: final welfare ratio {summaries[name]['final_welfare_ratio']:.3f}, "
                f"{summaries[name]['wall_s']:.1f} s")
    metrics = {"settings": _settings_dict(settings), "summaries": summaries}
    if out is not None:
        write_outputs(Path(out), records, metrics)
    return records, metrics


def _settings_dict(settings: ExperimentSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["principals"] = list(settings.principals)
    return data


def write_outputs(out: Path, records: dict[str, RunRecord], metrics: dict[str, Any], every: int = 100) -> None:
    """``metrics.json``, a TensorBoard run per principal under ``out/tb``, and ``two_phase.png``."""
    from stable_baselines3.common.logger import configure

    from sb3_contracts.experiments.two_phase_plots import plot_runs

    out.mkdir(parents=True, exist_ok=True)
    for name, record in records.items():
        logger = configure(str(out / "tb" / name), ["tensorboard"])
        log_record(record, logger, every=max(1, min(every, len(record.welfare) // 2)))
        logger.close()
    metrics["plot"] = str(plot_runs(records, out / "two_phase.png"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))


def load_two_phase_metrics(path: str | Path) -> dict[str, Any]:
    """An experiment's ``metrics.json`` (``path`` is the file or its folder)."""
    path = Path(path)
    path = path / "metrics.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no two-phase metrics at {path}: run `sb3-contracts two-phase --out <folder>` first")
    return json.loads(path.read_text())


def two_phase_table(paths: Any) -> str:
    """
    Experiments as a Markdown table: a row per experiment and principal (final welfare ratio, welfare-regret
    slope, wall), then each principal's mean ± standard deviation over the experiments (e.g. a sweep's seeds).

    :param paths: experiment folders or ``metrics.json`` files
    """
    runs = [load_two_phase_metrics(path) for path in paths]
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
