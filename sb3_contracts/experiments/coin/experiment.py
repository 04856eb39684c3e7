"""The Coin Game experiment end to end (the paper's Figure 2): training, validation, baselines, metrics, on the Coin
Game or on any game the contract layer wraps (``CoinSettings.game``, e.g. ``ContractEscapeRoom-v0``: each phase then
runs on the layer's generic views, :mod:`~sb3_contracts.experiments.coin.games`; the Coin Game's views are named
below).

Phases of :data:`EXPERIMENT` (:func:`coin_phases`), each logged as its own TensorBoard run under ``<out>/tb``:

1. ``principal``: :class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` learns contracts on the
   principal's view ``ContractCoinGame-v0`` (Algorithm 3's training phase: VDN, follow bits).
2. ``validation_dqn`` / ``validation_ppo``: **fresh** shared-parameter SB3 DQN and PPO agents learn from
   scratch on the agents' view (:class:`~sb3_contracts.game.coin_agents_view.ContractAgentsVecEnv`) against
   the frozen principal, which they see only as contracts: the env holds a callable of observations built from
   a deep copy of the principal's policy (:func:`~sb3_contracts.game.coin_agents_view.coin_principal`).
3. ``best_response_spe`` / ``best_response_ic``: a fresh selfish DQN agent (player 0 of every game) learns a
   best response to the contracts while the other player follows exactly (SPE ratio) or plays the validated
   DQN policy (IC ratio); ratio = its return (game reward + payments) / its return when it follows instead.
4. ``baseline_selfish``, ``baseline_cooperative``, ``baseline_proportion``: independent DQN agents without a
   principal (:func:`~sb3_contracts.experiments.coin.baselines.train_baseline`), the last one budget-matched to the
   principal's validated spend per episode.

The phases form a DAG (:func:`coin_phases`): validation and the best responses wait for the principal, the IC best
response and the proportion baseline for the first validation, the selfish and cooperative baselines for nothing.
With Ray installed they run as parallel Ray tasks (one CPU and ``config.threads`` torch threads each,
:func:`~sb3_contracts.experiments.runner.run_phases`), else in sequence; every phase seeds its own learners and
games, and hands on only saved models (``.zip`` bytes), so the results are the same either way.

The summary also reports every welfare against the game's exact cooperative optimum
(:func:`~sb3_contracts.envs.coin_game.optimum.optimal_welfare`, by dynamic programming): a learned cooperative
baseline can be undertrained, the optimum cannot, and it shows how much welfare any principal could add over
selfish play.

Every phase logs ``coin/welfare``, ``coin/payment_share`` and ``coin/follow_rate`` over training
(:class:`~sb3_contracts.experiments.coin.metrics.CoinMetricsCallback`); the run ``summary`` holds the final figures
(``coin/welfare_ratio``, ``coin/spe_ratio``, ``coin/ic_ratio``, every baseline's welfare...). Metrics (evaluated
greedily on ``eval_games x eval_episodes`` fresh episodes) go to ``<out>/metrics.json``, read by
:func:`~sb3_contracts.experiments.coin.plots.plot_figure2`. Settings:
:mod:`sb3_contracts.experiments.coin.settings`. Example::

    from sb3_contracts.experiments import run_experiment
    from sb3_contracts.experiments.coin.experiment import EXPERIMENT, CoinSettings

    results = run_experiment(EXPERIMENT, CoinSettings(preset="3x3", seed=0), "runs/coin", parallel=None)
    print(results["summary"])
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure

from sb3_contracts.contract_dqn_multiagent import MultiAgentContractDQN
from sb3_contracts.coordinator import Coordinator
from sb3_contracts.experiments.coin.baselines import ALGOS, BASELINES, train_baseline
from sb3_contracts.experiments.coin.games import experiment_game
from sb3_contracts.experiments.coin.metrics import CoinMetricsCallback, ic_ratio, ratio, rollout_metrics, spe_ratio
from sb3_contracts.experiments.coin.plots import plot_figure2, results_table
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.experiments.progress import PhaseProgress
from sb3_contracts.experiments.runner import Experiment, Phase, PhaseRecord, RunContext
from sb3_contracts.game.coin_agents_view import (
    ContractAgentsVecEnv,
    Principal,
    coin_principal,
)
from sb3_contracts.game.coin_principal_view import ContractCoinGameVecEnv
from sb3_contracts.game.responders import Responder, mixed_responder


def principal_kwargs(config: CoinSettings) -> dict[str, Any]:
    """The principal learner's arguments: its hyperparameters, training on the settings' torch threads (the learner
    would otherwise set its own default of one for the length of ``learn``)."""
    return {"torch_threads": config.threads, **config.principal_hyperparams()}


def train_principal(config: CoinSettings, tensorboard_log: str | None = None,
                    progress_bar: bool = False) -> MultiAgentContractDQN:
    """
    Phase 1: the principal's training (Algorithm 3's training phase).

    :param config: the experiment
    :param tensorboard_log: TensorBoard folder (run ``principal``)
    :param progress_bar: show SB3's progress bar
    """
    env = experiment_game(config).principal_env()
    model = MultiAgentContractDQN("MlpPolicy", env, seed=config.seed, tensorboard_log=tensorboard_log,
                                  **principal_kwargs(config))
    return model.learn(config.principal_steps, callback=[CoinMetricsCallback(), PhaseProgress()],
                       tb_log_name="principal", progress_bar=progress_bar)


def train_agents(principal: Principal, config: CoinSettings, algo: str = "dqn", seed_offset: int = 1,
                 tensorboard_log: str | None = None, tb_log_name: str | None = None, partner: Any = None,
                 progress_bar: bool = False) -> BaseAlgorithm:
    """
    Fresh shared-parameter SB3 agents trained from scratch against fixed contracts (phases 2 and 3).

    The agents' env holds only ``principal``, a callable of observations: the agents' model gets no reference
    to the principal's networks.

    :param principal: the contracts, the game's frozen principal (``experiment_game(config).offer(model)``)
    :param config: the experiment
    :param algo: ``"dqn"`` or ``"ppo"``
    :param seed_offset: added to ``config.seed`` (distinct phases see distinct games)
    :param tensorboard_log: TensorBoard folder
    :param tb_log_name: run name (``validation_<algo>`` by default)
    :param partner: ``None``: every player learns (validation); else a responder for players 1.. and only
        player 0 learns (best response)
    :param progress_bar: show SB3's progress bar
    """
    seed = config.seed + seed_offset
    game = experiment_game(config)
    # with a partner, one learner per game: n_agents times the games for the same number of learner slots per step
    env = game.agents_env(principal, seed, partner)
    slots_per_game = game.n_agents if partner is None else 1
    model = ALGOS[algo]("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log,
                        **config.agent_hyperparams(algo))
    return model.learn(config.agent_steps, callback=[CoinMetricsCallback(slots_per_game), PhaseProgress()],
                       tb_log_name=tb_log_name or f"validation_{algo}", progress_bar=progress_bar)


def player_return(responder: Responder, principal: Principal, config: CoinSettings) -> float:
    """Player 0's mean episode return, game reward plus payments, under ``principal``'s contracts."""
    rollouts = experiment_game(config).rollouts(responder, principal)
    return float((rollouts["rewards"] + rollouts["payments"])[:, :, 0].sum(axis=0).mean())


def evaluate_under_contracts(responder: Responder, principal: Principal,
                             config: CoinSettings) -> dict[str, float]:
    """Welfare, payments, payment share, follow rate and pick metrics of agents facing ``principal``."""
    return rollout_metrics(**experiment_game(config).rollouts(responder, principal))


#: Seed offsets of the phases (added to ``config.seed``), so that distinct phases see distinct games; the validation
#: agents take ``train_agents``' default offset 1.
RATIO_OFFSETS = {"spe": 10, "ic": 11}
BASELINE_OFFSETS = {"selfish": 20, "cooperative": 21, "proportion": 22}


def best_response_ratio(kind: str, principal: Principal, partner: Responder, config: CoinSettings,
                        tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, float]:
    """
    One ratio of phase 3: a fresh selfish DQN agent (player 0) learns a best response to the contracts while the
    other players answer with ``partner``; ratio = its return / its return when it follows instead.

    :param kind: ``"spe"`` (``partner`` follows exactly) or ``"ic"`` (``partner`` is the validated agents)
    :param principal: the frozen contracts
    :param partner: the other players' responder
    :param config: the experiment
    :param tensorboard_log: TensorBoard folder (run ``best_response_<kind>``)
    :param progress_bar: show SB3's progress bar
    :return: ``<kind>_ratio`` and the two returns behind it, ``<kind>_deviating_return`` and
        ``<kind>_following_return``
    """
    deviator = train_agents(principal, config, "dqn", RATIO_OFFSETS[kind], tensorboard_log, f"best_response_{kind}",
                            partner=partner, progress_bar=progress_bar)
    respond = experiment_game(config).responder
    deviating = player_return(mixed_responder(respond(deviator), partner), principal, config)
    following = player_return(mixed_responder(respond("follow"), partner), principal, config)
    measure = spe_ratio if kind == "spe" else ic_ratio
    return {f"{kind}_ratio": measure(deviating, following), f"{kind}_deviating_return": deviating,
            f"{kind}_following_return": following}


def run_baseline(kind: str, config: CoinSettings, budget: float | None = None,
                 tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, float]:
    """
    One baseline of phase 4: independent DQN agents without a principal, trained and evaluated.

    :param kind: ``"selfish"``, ``"cooperative"`` or ``"proportion"``
    :param config: the experiment
    :param budget: the principal's validated payments per episode (the proportion baseline's target spend)
    :param tensorboard_log: TensorBoard folder (run ``baseline_<kind>``)
    :param progress_bar: show SB3's progress bar
    :return: the evaluation's metrics with ``spend_per_episode`` and the final ``p``
    """
    hyperparams = config.agent_hyperparams("dqn")
    hyperparams.get("policy_kwargs", {}).get("features_extractor_kwargs", {}).pop("contract_dims", None)  # no contract
    game = experiment_game(config)
    seed = config.seed + BASELINE_OFFSETS[kind]
    model, stats = train_baseline(kind, config.baseline_steps, seed=seed,
                                  target_budget=budget if kind == "proportion" else None,
                                  tensorboard_log=tensorboard_log, progress_bar=progress_bar,
                                  venv=game.baseline_env(seed), **hyperparams)
    metrics = rollout_metrics(**game.rollouts(game.responder(model), None))
    return {**metrics, "spend_per_episode": stats["spend_per_episode"], "p": stats["p"]}


def _model_bytes(model: BaseAlgorithm) -> bytes:
    """The model's SB3 ``.zip`` (without replay buffer): what a phase hands to the phases that need it."""
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def _offer(principal: dict[str, Any], config: CoinSettings) -> Principal:
    """The contracts of the principal phase's saved model (every later phase faces exactly ``principal.zip``)."""
    return experiment_game(config).offer(MultiAgentContractDQN.load(io.BytesIO(principal["model"]), device="cpu"))


def principal_phase(config: CoinSettings, tensorboard_log: str | None = None,
                    progress_bar: bool = False) -> dict[str, Any]:
    """
    Phase 1 as a DAG node (:func:`train_principal`).

    :return: ``model`` (the principal's ``.zip`` bytes) and ``follow`` (metrics of agents that follow exactly)
    """
    principal = {"model": _model_bytes(train_principal(config, tensorboard_log, progress_bar))}
    follow = experiment_game(config).responder("follow")
    return {**principal, "follow": evaluate_under_contracts(follow, _offer(principal, config), config)}


def validation_phase(principal: dict[str, Any], config: CoinSettings, algo: str,
                     tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, Any]:
    """
    Phase 2 for one algorithm as a DAG node (:func:`train_agents`, then :func:`evaluate_under_contracts`).

    :param principal: the output of :func:`principal_phase`
    :return: ``algo``, ``metrics`` and ``model`` (the agents' ``.zip`` bytes)
    """
    offer = _offer(principal, config)
    model = train_agents(offer, config, algo, tensorboard_log=tensorboard_log, progress_bar=progress_bar)
    metrics = evaluate_under_contracts(experiment_game(config).responder(model), offer, config)
    return {"algo": algo, "metrics": metrics, "model": _model_bytes(model)}


def best_response_phase(principal: dict[str, Any], *validated: dict[str, Any], config: CoinSettings,
                        kind: str, tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, float]:
    """
    One ratio of phase 3 as a DAG node (:func:`best_response_ratio`).

    :param principal: the output of :func:`principal_phase`
    :param validated: for ``kind="ic"``, the output of the first algorithm's :func:`validation_phase`
    """
    respond = experiment_game(config).responder
    partner = respond("follow")
    if kind == "ic":
        (agents,) = validated
        partner = respond(ALGOS[agents["algo"]].load(io.BytesIO(agents["model"]), device="cpu"))
    return best_response_ratio(kind, _offer(principal, config), partner, config, tensorboard_log, progress_bar)


def baseline_phase(*validated: dict[str, Any], config: CoinSettings, kind: str,
                   tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, float]:
    """
    One baseline of phase 4 as a DAG node (:func:`run_baseline`).

    :param validated: for ``kind="proportion"``, the output of the first algorithm's :func:`validation_phase`
        (its payments per episode are the budget to match)
    """
    budget = validated[0]["metrics"]["payments"] if kind == "proportion" else None
    return run_baseline(kind, config, budget, tensorboard_log, progress_bar)


def coin_phases(config: CoinSettings, context: RunContext | None = None) -> list[Phase]:
    """
    The experiment's phases as a DAG for :func:`~sb3_contracts.experiments.runner.run_phases`. What must wait:
    validation and the best responses need the principal; the IC best response plays against the first
    validation's agents and the proportion baseline matches its spend; the selfish and cooperative baselines need
    nothing. The list's order is the priority when phases run in parallel: the principal and the first validation
    first, then the two phases waiting on both (the proportion baseline before the IC best response: the best
    placement on two CPUs of docs/results/scale.md), the independent phases last to fill the gaps.

    :param config: the experiment
    :param context: the run's TensorBoard folder (one run per phase, named as the phase) and progress bars
    """
    context = context or RunContext()
    common = dict(config=config, tensorboard_log=context.tensorboard_log, progress_bar=context.progress_bar)
    first = f"validation_{config.algos[0]}"
    validations = [Phase(f"validation_{algo}", partial(validation_phase, algo=algo, **common), ("principal",))
                   for algo in config.algos]
    return [
        Phase("principal", partial(principal_phase, **common)),
        validations[0],
        Phase("baseline_proportion", partial(baseline_phase, kind="proportion", **common), (first,)),
        Phase("best_response_ic", partial(best_response_phase, kind="ic", **common), ("principal", first)),
        Phase("best_response_spe", partial(best_response_phase, kind="spe", **common), ("principal",)),
        *validations[1:],
        Phase("baseline_selfish", partial(baseline_phase, kind="selfish", **common)),
        Phase("baseline_cooperative", partial(baseline_phase, kind="cooperative", **common)),
    ]


def coin_results(config: CoinSettings, records: Mapping[str, PhaseRecord]) -> dict[str, Any]:
    """
    The experiment's results from its phases' records (what ``metrics.json`` holds).

    :param config: the experiment
    :param records: every phase of :func:`coin_phases`, finished
    """
    validation = {algo: records[f"validation_{algo}"].output["metrics"] for algo in config.algos}
    ratios = {**records["best_response_spe"].output, **records["best_response_ic"].output}
    baselines = {kind: records[f"baseline_{kind}"].output for kind in BASELINES}
    return {
        "config": asdict(config),
        "principal_follow": records["principal"].output["follow"],
        "validation": validation,
        "ratios": ratios,
        "baselines": baselines,
        "summary": summarize(validation, ratios, baselines, exact_optimum(config)),
    }


def summarize(validation: dict[str, dict[str, float]], ratios: dict[str, float],
              baselines: dict[str, dict[str, float]], optimum: float | None = None) -> dict[str, float]:
    """
    The benchmark's headline figures (first validation algorithm) from the phases' metrics.

    :param validation: metrics per validation algorithm
    :param ratios: the SPE and IC ratios (:func:`best_response_ratio` of each)
    :param baselines: metrics per baseline
    :param optimum: the game's optimal welfare per episode; adds ``optimal_welfare`` and every welfare over it
        (``*_optimal_ratio``)
    :return: the figures of the benchmark (a ratio to a welfare of 0 is NaN), with ``constant_proportion_margin``
        (validated welfare minus the budget-matched constant-proportion baseline's, per episode) and its standard
        error
    """
    headline = next(iter(validation.values()))
    cooperative, proportion = baselines["cooperative"]["welfare"], baselines["proportion"]
    # independent standard errors: conservative, as every method plays the same evaluation games
    margin_se = float(np.hypot(headline["welfare_se"], proportion["welfare_se"]))
    extra = {}
    if optimum is not None:
        extra = {"optimal_welfare": optimum, "optimal_ratio": ratio(headline["welfare"], optimum),
                 **{f"{kind}_optimal_ratio": ratio(baselines[kind]["welfare"], optimum) for kind in baselines}}
    return {
        "welfare": headline["welfare"],
        "welfare_ratio": ratio(headline["welfare"], cooperative),
        "payment_share": headline["payment_share"],
        "follow_rate": headline["follow_rate"],
        "spe_ratio": ratios["spe_ratio"],
        "ic_ratio": ratios["ic_ratio"],
        "constant_proportion_welfare_ratio": ratio(proportion["welfare"], cooperative),
        "constant_proportion_margin": headline["welfare"] - proportion["welfare"],
        "constant_proportion_margin_se": margin_se,
        "selfish_welfare_ratio": ratio(baselines["selfish"]["welfare"], cooperative),
        "cooperative_welfare": cooperative,
        **extra,
    }


def describe(config: CoinSettings) -> str:
    """The line logged at the start: budgets, game and what runs."""
    game = (f"on {config.preset} ({config.reward_rule} rule, contested: {config.contested})" if config.game is None
            else f"on {config.game}")
    return (f"principal: {config.principal_steps:,} game steps {game}; validation ({', '.join(config.algos)}), best "
            f"responses and baselines: {config.agent_steps:,} / {config.baseline_steps:,} agent-steps each")


def write_files(folder: Path, config: CoinSettings, records: Mapping[str, PhaseRecord],
                results: dict[str, Any]) -> None:
    """
    The principal as ``<folder>/principal.zip``, the final figures as TensorBoard scalars (:func:`log_summary`) and
    as ``<folder>/coin.png`` (:func:`~sb3_contracts.experiments.coin.plots.plot_figure2` of this run).
    """
    log_summary(results, str(folder / "tb"))
    (folder / "principal.zip").write_bytes(records["principal"].output["model"])
    plot_figure2([results], folder / "coin.png")


def exact_optimum(config: CoinSettings) -> float | None:
    """The game's exact cooperative optimum per episode, if known (the Coin Game's for two players only)."""
    return experiment_game(config).optimum()


def log_summary(results: dict[str, Any], tensorboard_log: str) -> None:
    """
    The experiment's final figures as TensorBoard scalars of a run ``summary``, under ``coin/``: the headline
    (``welfare``, ``welfare_ratio``, ``payment_share``, ``follow_rate``, ``spe_ratio``, ``ic_ratio``,
    ``optimal_ratio``, ``constant_proportion_margin``), the principal's recommendations followed exactly and
    every baseline's welfare.

    :param results: the experiment's results
    :param tensorboard_log: the experiment's TensorBoard folder
    """
    logger = configure(str(Path(tensorboard_log) / "summary"), ["tensorboard"])
    summary = results["summary"]
    for key in ("welfare", "welfare_ratio", "payment_share", "follow_rate", "spe_ratio", "ic_ratio", "optimal_ratio",
                "constant_proportion_margin", "selfish_welfare_ratio", "optimal_welfare"):
        if key in summary:
            logger.record(f"coin/{key}", summary[key])
    logger.record("coin/principal_followed_welfare", results["principal_follow"]["welfare"])
    for kind, metrics in results["baselines"].items():
        logger.record(f"coin/baseline_{kind}_welfare", metrics["welfare"])
    for algo, metrics in results["validation"].items():
        logger.record(f"coin/validation_{algo}_welfare", metrics["welfare"])
    logger.dump(step=0)
    logger.close()


def alternate(config: CoinSettings, rounds: int, algo: str = "dqn", tensorboard_log: str | None = None
              ) -> tuple[MultiAgentContractDQN, BaseAlgorithm, Coordinator]:
    """
    The meta-algorithm mode: the principal and shared-parameter SB3 agents learn in alternation on the same game,
    ``config.principal_steps`` and ``config.agent_steps`` per round, through
    :class:`~sb3_contracts.coordinator.Coordinator`. The agents face the principal's *current* contracts
    (:func:`~sb3_contracts.game.coin_agents_view.coin_principal` with ``live=True``); the principal learns from its
    own follow-bit
    rollouts (Algorithm 3), so each round's agents answer its latest contracts.

    :param config: the experiment
    :param rounds: alternation rounds
    :param algo: the agents' algorithm
    :param tensorboard_log: TensorBoard folder (runs ``principal`` and ``agents``, one each across rounds)
    :return: the principal, the agents and the coordinator (its ``history`` logs the rounds)
    """
    th.set_num_threads(config.threads)
    env = ContractCoinGameVecEnv(config.n_games, seed=config.seed, alpha=config.alpha, **config.game_kwargs())
    principal = MultiAgentContractDQN("MlpPolicy", env, seed=config.seed, tensorboard_log=tensorboard_log,
                                      **principal_kwargs(config))
    agents_env = ContractAgentsVecEnv(config.n_games, principal=coin_principal(principal, live=True),
                                      seed=config.seed + 1, **config.game_kwargs())
    agents = ALGOS[algo]("MlpPolicy", agents_env, seed=config.seed + 1, tensorboard_log=tensorboard_log,
                         **config.agent_hyperparams(algo))
    coordinator = Coordinator(principal, agents, None, config.principal_steps, config.agent_steps,
                              principal_log_name="principal", agent_log_name="agents")
    coordinator.run(rounds)
    return principal, agents, coordinator


EXPERIMENT = Experiment("coin", CoinSettings, coin_phases, coin_results, results_table, plot_figure2, write=write_files,
                        describe=describe, parallel_phases=True)

__all__ = [
    "ALGOS",
    "EXPERIMENT",
    "CoinSettings",
    "alternate",
    "baseline_phase",
    "best_response_phase",
    "best_response_ratio",
    "coin_phases",
    "coin_results",
    "evaluate_under_contracts",
    "log_summary",
    "player_return",
    "principal_phase",
    "run_baseline",
    "summarize",
    "train_agents",
    "train_principal",
    "validation_phase",
]
