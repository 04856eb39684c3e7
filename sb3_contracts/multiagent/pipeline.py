"""The Coin Game experiment end to end (the paper's Figure 2): training, validation, baselines, metrics.

Phases of :func:`run_pipeline`, each logged as its own TensorBoard run under ``<out>/tb``:

1. ``principal``: :class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` learns contracts on the
   principal's view ``ContractCoinGame-v0`` (Algorithm 3's training phase: VDN, follow bits).
2. ``validation_dqn`` / ``validation_ppo``: **fresh** shared-parameter SB3 DQN and PPO agents learn from
   scratch on the agents' view (:class:`~sb3_contracts.multiagent.agents_view.ContractAgentsVecEnv`) against
   the frozen principal, which they see only as contracts: the env holds a callable of observations built from
   a deep copy of the principal's policy (:func:`~sb3_contracts.multiagent.agents_view.coin_principal`).
3. ``best_response_spe`` / ``best_response_ic``: a fresh selfish DQN agent (player 0 of every game) learns a
   best response to the contracts while the other player follows exactly (SPE ratio) or plays the validated
   DQN policy (IC ratio); ratio = its return (game reward + payments) / its return when it follows instead.
4. ``baseline_selfish``, ``baseline_cooperative``, ``baseline_proportion``: independent DQN agents without a
   principal (:func:`~sb3_contracts.multiagent.baselines.train_baseline`), the last one budget-matched to the
   principal's validated spend per episode.

The summary also reports every welfare against the game's exact cooperative optimum
(:func:`~sb3_contracts.multiagent.optimum.optimal_welfare`, by dynamic programming): a learned cooperative
baseline can be undertrained, the optimum cannot, and it shows how much welfare any principal could add over
selfish play (little on 3x3, where selfish players already herd onto the coins together).

Every phase logs ``coin/welfare``, ``coin/payment_share`` and ``coin/follow_rate`` over training
(:class:`~sb3_contracts.multiagent.metrics.CoinMetricsCallback`); the run ``summary`` holds the final figures
(``coin/welfare_ratio``, ``coin/spe_ratio``, ``coin/ic_ratio``, every baseline's welfare...). Metrics (evaluated
greedily on ``eval_games x eval_episodes`` fresh episodes) go to ``<out>/metrics.json``, read by
:func:`~sb3_contracts.multiagent.plots.plot_figure2`. Settings: :mod:`sb3_contracts.multiagent.settings`. Example::

    from sb3_contracts.multiagent.pipeline import CoinExperimentConfig, run_pipeline

    results = run_pipeline(CoinExperimentConfig(preset="3x3", seed=0), "runs/coin")
    print(results["summary"])
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from sb3_contracts.contract_dqn_multiagent import MultiAgentContractDQN
from sb3_contracts.coordinator import Coordinator
from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.multiagent.agents_view import (
    ContractAgentsVecEnv,
    Principal,
    SoloContractVecEnv,
    coin_principal,
    make_principal,
)
from sb3_contracts.multiagent.baselines import ALGOS, collect_rollouts, evaluate_agents, train_baseline
from sb3_contracts.multiagent.metrics import CoinMetricsCallback, ic_ratio, rollout_metrics, spe_ratio
from sb3_contracts.multiagent.optimum import optimal_welfare
from sb3_contracts.multiagent.principal_view import ContractCoinGameVecEnv
from sb3_contracts.multiagent.responders import Responder, make_responder, mixed_responder
from sb3_contracts.multiagent.settings import CoinExperimentConfig
from sb3_contracts.multiagent.settlement import DEFAULT_B_MAX


def train_principal(config: CoinExperimentConfig, tensorboard_log: str | None = None,
                    progress_bar: bool = False) -> MultiAgentContractDQN:
    """
    Phase 1: the principal's training (Algorithm 3's training phase).

    :param config: the experiment
    :param tensorboard_log: TensorBoard folder (run ``principal``)
    :param progress_bar: show SB3's progress bar
    """
    env = ContractCoinGameVecEnv(config.n_games, seed=config.seed, alpha=config.alpha, **config.game_kwargs())
    model = MultiAgentContractDQN("MlpPolicy", env, seed=config.seed,
                                  tensorboard_log=tensorboard_log, **config.principal_hyperparams())
    return model.learn(config.principal_steps, callback=CoinMetricsCallback(), tb_log_name="principal",
                       progress_bar=progress_bar)


def train_agents(principal: Principal, config: CoinExperimentConfig, algo: str = "dqn", seed_offset: int = 1,
                 tensorboard_log: str | None = None, tb_log_name: str | None = None, partner: Any = None,
                 progress_bar: bool = False) -> BaseAlgorithm:
    """
    Fresh shared-parameter SB3 agents trained from scratch against fixed contracts (phases 2 and 3).

    The agents' env holds only ``principal``, a callable of observations: the agents' model gets no reference
    to the principal's networks.

    :param principal: the contracts, a callable ``(global_state, agent_obs) -> [N, n, 4]``
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
    if partner is None:
        env: VecEnv = ContractAgentsVecEnv(config.n_games, principal=principal, seed=seed, **config.game_kwargs())
        slots_per_game = config.n_agents
    else:
        # one learner per game: n_agents times the games for the same number of learner slots per step
        env = SoloContractVecEnv(config.n_agents * config.n_games, principal, partner, seed=seed,
                                 **config.game_kwargs())
        slots_per_game = 1
    model = ALGOS[algo]("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log,
                        **config.agent_hyperparams(algo))
    return model.learn(config.agent_steps, callback=CoinMetricsCallback(slots_per_game),
                       tb_log_name=tb_log_name or f"validation_{algo}", progress_bar=progress_bar)


def _rollouts(responder: Responder, principal: Principal | None, config: CoinExperimentConfig) -> dict[str, np.ndarray]:
    core = CoinGameBatch(config.eval_games, seed=10_000 + config.seed, **config.game_kwargs())
    offer = make_principal(principal, core.n_games, core.n_agents, DEFAULT_B_MAX)
    return collect_rollouts(responder, offer, core, config.eval_episodes)


def player_return(responder: Responder, principal: Principal, config: CoinExperimentConfig) -> float:
    """Player 0's mean episode return, game reward plus payments, under ``principal``'s contracts."""
    rollouts = _rollouts(responder, principal, config)
    return float((rollouts["rewards"] + rollouts["payments"])[:, :, 0].sum(axis=0).mean())


def evaluate_under_contracts(responder: Responder, principal: Principal,
                             config: CoinExperimentConfig) -> dict[str, float]:
    """Welfare, payments, payment share, follow rate and pick metrics of agents facing ``principal``."""
    return rollout_metrics(**_rollouts(responder, principal, config))


def equilibrium_ratios(principal: Principal, validated: BaseAlgorithm, config: CoinExperimentConfig,
                       tensorboard_log: str | None = None, progress_bar: bool = False) -> dict[str, float]:
    """
    Phase 3: SPE and IC ratios with freshly trained best responders (selfish DQN, player 0).

    :param principal: the frozen contracts
    :param validated: the validated agents' model (the other player's policy for the IC ratio)
    :param config: the experiment
    :param tensorboard_log: TensorBoard folder
    :param progress_bar: show SB3's progress bars
    :return: ``spe_ratio``, ``ic_ratio`` and the four returns behind them
    """
    results: dict[str, float] = {}
    follow = make_responder("follow")
    partners: dict[str, Responder] = {"spe": follow, "ic": make_responder(validated)}
    for offset, (name, partner) in enumerate(partners.items(), start=10):
        deviator = train_agents(principal, config, "dqn", offset, tensorboard_log, f"best_response_{name}",
                                partner=partner, progress_bar=progress_bar)
        deviating = player_return(mixed_responder(make_responder(deviator), partner), principal, config)
        following = player_return(mixed_responder(follow, partner), principal, config)
        ratio = spe_ratio if name == "spe" else ic_ratio
        results.update({f"{name}_ratio": ratio(deviating, following), f"{name}_deviating_return": deviating,
                        f"{name}_following_return": following})
    return results


def run_baselines(config: CoinExperimentConfig, budget: float, tensorboard_log: str | None = None,
                  progress_bar: bool = False) -> dict[str, dict[str, float]]:
    """
    Phase 4: selfish, cooperative and budget-matched constant-proportion DQN agents, evaluated.

    :param config: the experiment
    :param budget: the principal's validated payments per episode (the proportion baseline's target spend)
    :param tensorboard_log: TensorBoard folder
    :param progress_bar: show SB3's progress bars
    """
    results = {}
    hyperparams = config.agent_hyperparams("dqn")
    hyperparams["policy_kwargs"].get("features_extractor_kwargs", {}).pop("contract_dims", None)  # no contract here
    for offset, kind in enumerate(("selfish", "cooperative", "proportion"), start=20):
        model, stats = train_baseline(kind, config.baseline_steps, n_games=config.n_games, seed=config.seed + offset,
                                      target_budget=budget if kind == "proportion" else None,
                                      tensorboard_log=tensorboard_log, game_kwargs=config.game_kwargs(),
                                      progress_bar=progress_bar, **hyperparams)
        metrics = evaluate_agents(model, n_games=config.eval_games, n_episodes=config.eval_episodes,
                                  seed=10_000 + config.seed, **config.game_kwargs())
        results[kind] = {**metrics, "spend_per_episode": stats["spend_per_episode"], "p": stats["p"]}
    return results


def summarize(validation: dict[str, dict[str, float]], ratios: dict[str, float],
              baselines: dict[str, dict[str, float]], optimum: float | None = None) -> dict[str, float]:
    """
    The benchmark's headline figures (first validation algorithm) from the phases' metrics.

    :param validation: metrics per validation algorithm
    :param ratios: from :func:`equilibrium_ratios`
    :param baselines: metrics per baseline
    :param optimum: the game's optimal welfare per episode; adds ``optimal_welfare`` and every welfare over it
        (``*_optimal_ratio``)
    :return: the figures of the benchmark, with ``constant_proportion_margin`` (validated welfare minus the
        budget-matched constant-proportion baseline's, per episode) and its standard error
    """
    headline = next(iter(validation.values()))
    cooperative, proportion = baselines["cooperative"]["welfare"], baselines["proportion"]
    # independent standard errors: conservative, as every method plays the same evaluation games
    margin_se = float(np.hypot(headline["welfare_se"], proportion["welfare_se"]))
    extra = {}
    if optimum is not None:
        extra = {"optimal_welfare": optimum, "optimal_ratio": headline["welfare"] / optimum,
                 **{f"{kind}_optimal_ratio": baselines[kind]["welfare"] / optimum for kind in baselines}}
    return {
        "welfare": headline["welfare"],
        "welfare_ratio": headline["welfare"] / cooperative,
        "payment_share": headline["payment_share"],
        "follow_rate": headline["follow_rate"],
        "spe_ratio": ratios["spe_ratio"],
        "ic_ratio": ratios["ic_ratio"],
        "constant_proportion_welfare_ratio": proportion["welfare"] / cooperative,
        "constant_proportion_margin": headline["welfare"] - proportion["welfare"],
        "constant_proportion_margin_se": margin_se,
        "selfish_welfare_ratio": baselines["selfish"]["welfare"] / cooperative,
        "cooperative_welfare": cooperative,
        **extra,
    }


def run_pipeline(config: CoinExperimentConfig, out: str | Path | None = None, progress_bar: bool = False,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """
    Run every phase (module docstring) and write ``<out>/metrics.json`` and the principal ``<out>/principal.zip``.

    :param config: the experiment
    :param out: experiment folder (``None``: no files, no TensorBoard)
    :param progress_bar: show SB3's progress bars
    :param log: called with a line of text at each phase (e.g. ``print``)
    :return: ``config``, ``principal_follow`` (the frozen principal with agents that follow exactly),
        ``validation`` (per algorithm), ``ratios``, ``baselines``, ``summary``, ``timings`` (s per phase)
    """
    log = log or (lambda line: None)
    th.set_num_threads(config.threads)
    folder = Path(out) if out is not None else None
    tb = str(folder / "tb") if folder is not None else None
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def phase(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - start - sum(timings.values())
        log(f"[{now - start:7.1f}s] {name} done")

    log(f"principal: {config.principal_steps:,} game steps on {config.preset} ({config.reward_rule} rule)")
    principal = train_principal(config, tb, progress_bar)
    offer = coin_principal(principal)
    phase("principal")
    validation, models = {}, {}
    for algo in config.algos:
        log(f"validation: fresh {algo.upper()} agents, {config.agent_steps:,} agent-steps")
        models[algo] = train_agents(offer, config, algo, tensorboard_log=tb, progress_bar=progress_bar)
        validation[algo] = evaluate_under_contracts(make_responder(models[algo]), offer, config)
        phase(f"validation_{algo}")
    log("best responses for the SPE and IC ratios")
    ratios = equilibrium_ratios(offer, models[config.algos[0]], config, tb, progress_bar)
    phase("ratios")
    budget = next(iter(validation.values()))["payments"]
    log(f"baselines (proportion budget-matched to {budget:.3f} per episode)")
    baselines = run_baselines(config, budget, tb, progress_bar)
    phase("baselines")
    results = {
        "config": asdict(config),
        "principal_follow": evaluate_under_contracts(make_responder("follow"), offer, config),
        "validation": validation,
        "ratios": ratios,
        "baselines": baselines,
        "summary": summarize(validation, ratios, baselines, exact_optimum(config)),
        "timings": timings,
    }
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        log_summary(results, str(folder / "tb"))
        principal.save(folder / "principal.zip")
        (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=float))
    return results


def exact_optimum(config: CoinExperimentConfig) -> float | None:
    """The exact cooperative optimum (known for two players only)."""
    if config.n_agents != 2:
        return None
    return optimal_welfare(config.preset, config.reward_rule, contested=config.contested)


def log_summary(results: dict[str, Any], tensorboard_log: str) -> None:
    """
    The experiment's final figures as TensorBoard scalars of a run ``summary``, under ``coin/``: the headline
    (``welfare``, ``welfare_ratio``, ``payment_share``, ``follow_rate``, ``spe_ratio``, ``ic_ratio``,
    ``optimal_ratio``, ``constant_proportion_margin``), the principal's recommendations followed exactly and
    every baseline's welfare.

    :param results: what :func:`run_pipeline` returns
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


def alternate(config: CoinExperimentConfig, rounds: int, algo: str = "dqn", tensorboard_log: str | None = None
              ) -> tuple[MultiAgentContractDQN, BaseAlgorithm, Coordinator]:
    """
    The meta-algorithm mode: the principal and shared-parameter SB3 agents learn in alternation on the same game,
    ``config.principal_steps`` and ``config.agent_steps`` per round, through
    :class:`~sb3_contracts.coordinator.Coordinator`. The agents face the principal's *current* contracts
    (:func:`~sb3_contracts.multiagent.agents_view.coin_principal` with ``live=True``); the principal learns from its
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
    principal = MultiAgentContractDQN("MlpPolicy", env, seed=config.seed,
                                      tensorboard_log=tensorboard_log, **config.principal_hyperparams())
    agents_env = ContractAgentsVecEnv(config.n_games, principal=coin_principal(principal, live=True),
                                      seed=config.seed + 1, **config.game_kwargs())
    agents = ALGOS[algo]("MlpPolicy", agents_env, seed=config.seed + 1, tensorboard_log=tensorboard_log,
                         **config.agent_hyperparams(algo))
    coordinator = Coordinator(principal, agents, None, config.principal_steps, config.agent_steps,
                              principal_log_name="principal", agent_log_name="agents")
    coordinator.run(rounds)
    return principal, agents, coordinator


__all__ = [
    "ALGOS",
    "CoinExperimentConfig",
    "alternate",
    "equilibrium_ratios",
    "evaluate_under_contracts",
    "log_summary",
    "player_return",
    "run_baselines",
    "run_pipeline",
    "summarize",
    "train_agents",
    "train_principal",
]
