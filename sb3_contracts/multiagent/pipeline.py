"""The Coin Game experiment end to end (the paper's Figure 2): training, validation, baselines, metrics.

Phases of :func:`run_pipeline`, each logged as its own TensorBoard run under ``<out>/tb``:

1. ``principal``: :class:`~sb3_contracts.contract_dqn.multiagent.MultiAgentContractDQN` learns contracts
   (Algorithm 3's training phase: VDN, follow bits).
2. ``validation_dqn`` / ``validation_ppo``: **fresh** shared-parameter SB3 DQN and PPO agents learn from
   scratch on the agents' view (:class:`~sb3_contracts.multiagent.agents_view.ContractAgentsVecEnv`) against
   the frozen principal, which they see only as contracts: the env holds a callable of observations built from
   a deep copy of the principal's policy (:func:`~sb3_contracts.contract_dqn.multiagent.frozen_principal`).
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

Metrics (evaluated greedily on ``eval_games x eval_episodes`` fresh episodes) go to ``<out>/metrics.json``,
read by :func:`plot_figure2`. Example::

    from sb3_contracts.multiagent.pipeline import PipelineConfig, run_pipeline

    results = run_pipeline(PipelineConfig(preset="3x3", seed=0), "runs/coin")
    print(results["summary"])
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_contracts.coin_vec_env import CoinGameVecEnv
from sb3_contracts.contract_dqn.multiagent import MultiAgentContractDQN, frozen_principal, live_principal
from sb3_contracts.coordinator import Coordinator
from sb3_contracts.envs.coin_game import N_ACTIONS, CoinGameBatch, resolve_config
from sb3_contracts.multiagent.agents_view import ContractAgentsVecEnv
from sb3_contracts.multiagent.baselines import ALGOS, collect_rollouts, evaluate_agents, train_baseline
from sb3_contracts.multiagent.common import DEFAULT_B_MAX, Principal, make_principal
from sb3_contracts.multiagent.encoders import CenteredCoinExtractor
from sb3_contracts.multiagent.metrics import ic_ratio, rollout_metrics, spe_ratio
from sb3_contracts.multiagent.optimum import optimal_welfare
from sb3_contracts.multiagent.responders import Responder, make_responder

#: Every learner of the experiment (principal, validation and best-response agents, baselines) reads the grid
#: re-centred on the observing player (:class:`~sb3_contracts.multiagent.encoders.CenteredCoinExtractor`), the
#: same encoder for all, so that no method is compared with a handicap. It is what made 7x7 learnable on a CPU:
#: cooperative DQN agents reached 16.54 welfare per episode in 500k agent-steps with it (optimum 16.66) and
#: 13.61 without (seed 0; ``train_baseline("cooperative", 500_000, n_games=16, ...)``).
POLICY_KWARGS: dict[str, Any] = dict(net_arch=[64, 64], features_extractor_class=CenteredCoinExtractor)
#: Agents facing contracts (validation, best responses) also read their contract's recommendation as a one-hot:
#: against seed 0's 7x7 principal (ξ = 0.03, 1M agent-steps), fresh DQN agents followed 92.1% of the
#: recommendations with it (welfare 16.46) and 88.6% without (16.02). The baselines see no contract and drop it.
CONTRACT_POLICY_KWARGS: dict[str, Any] = dict(POLICY_KWARGS, features_extractor_kwargs=dict(contract_dims=N_ACTIONS))

#: Agents' hyperparameters per algorithm (shared parameters over 2 x n_games slots), as in ``zoo_configs/``: a
#: learning rate ``"lin_<x>"`` decays linearly from x to 0 over the training (rl-zoo3's convention).
#: DQN takes 4 gradient steps per step of the 2 x n_games slots: with 1, the cooperative baseline stayed below
#: selfish play on 3x3 (15.22 vs 15.61 welfare per episode at 300k agent-steps, seed 0; 15.67 with these values).
#: DQN's learning rate decays because on 7x7 the greedy action of an agent facing a contract is decided by Q
#: differences of about the nudge (0.035) on values near 10: against the three 7x7 principals of the previous
#: README table (commit 7f7a38c), fresh DQN agents followed 88.8 / 95.0 / 88.7% of the recommendations at a
#: constant 1e-3, 97.5 / 96.7 / 97.1% with a linear decay 1e-3 -> 1e-4 and 98.1 / 97.0 / 97.3% with this decay
#: to 0 (welfare 16.47 / 16.45 / 16.47; ``train_agents`` on each run's ``principal.zip``, agents' seed 1).
#: Under the ``lola`` rule the decay hurt (:data:`RULE_AGENT_KWARGS`).
AGENT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "dqn": dict(learning_rate="lin_1e-3", buffer_size=100_000, learning_starts=2_000, batch_size=128, train_freq=1,
                gradient_steps=4, target_update_interval=4_000, exploration_fraction=0.2,
                exploration_final_eps=0.02, gamma=0.99, policy_kwargs=CONTRACT_POLICY_KWARGS),
    "ppo": dict(learning_rate=5e-4, n_steps=64, batch_size=256, n_epochs=4, gamma=0.99, ent_coef=0.01,
                policy_kwargs=CONTRACT_POLICY_KWARGS),
}
#: Per reward rule, overrides of :data:`AGENT_HYPERPARAMS` (a config's ``agent_kwargs`` override both). Under
#: ``lola`` DQN agents keep a constant learning rate: against seed 0's 3x3 lola principal they followed 0.929 / 0.899
#: / 0.933 of the recommendations with it and 0.680 / 0.944 / 0.729 with the decay (agents' seed offsets 1 / 2 / 3);
#: in the full 3x3 lola runs of seeds 0 / 1 / 2, 0.929 / 0.886 / 0.901 with it and 0.680 / 0.843 / 0.842 with the
#: decay (README). Our guess at why: deviating pays the deviator about as much as the contract, and a decayed
#: learning rate leaves early deviations in place. The decay was measured under ``parl`` only on 7x7.
RULE_AGENT_KWARGS: dict[str, dict[str, dict[str, Any]]] = {"parl": {}, "lola": {"dqn": {"learning_rate": 1e-3}}}
#: The principal's hyperparameters (App. D.2 scaled down; Huber loss and grad-norm clipping 10 by default).
#: 4 gradient steps per step of the 2 x n_games slots (the paper takes one per env step): with 1, the principal's
#: own recommendations, followed exactly, were worth less than selfish play on 3x3 (15.33 vs 15.61 per episode at
#: 300k agent-steps, seed 0; 15.60 with 4). The nudge ξ is set per preset (:data:`PRESETS`).
PRINCIPAL_HYPERPARAMS: dict[str, Any] = dict(
    learning_rate=5e-4, learning_rate_final=1e-4, buffer_size=100_000, learning_starts=2_000, batch_size=128,
    train_freq=1, gradient_steps=4, target_update_interval=4_000, exploration_initial_eps=0.4,
    exploration_final_eps=0.0, gamma=0.99, policy_kwargs=POLICY_KWARGS)

#: Per preset: step budgets (agent-steps) and the nudge ξ, paid on every followed agent-step. ξ trades the
#: follow rate against the payments: on 3x3 (40 agent-steps per episode) ξ = 0.05 left fresh DQN agents following
#: 90-95% of the recommendations and ξ = 0.1 97-98%, for payments of about 4.0 per episode. 7x7 episodes have 100
#: agent-steps, so ξ = 0.1 alone would cost 10 per episode (60% of the optimal welfare). Against seed 0's 7x7
#: principal, fresh DQN agents (with the one-hot of :data:`CONTRACT_POLICY_KWARGS`, learning rate 1e-3) followed
#: 92.1% at ξ = 0.03 (payment share 0.21) and 94.6% at ξ = 0.04 (0.28): ξ = 0.035 sits between the follow and
#: payment bars.
PRESETS: dict[str, dict[str, Any]] = {
    "3x3": dict(principal_steps=300_000, agent_steps=300_000, baseline_steps=300_000, nudge=0.1),
    "7x7": dict(principal_steps=1_000_000, agent_steps=1_000_000, baseline_steps=1_000_000, nudge=0.035),
}


def learning_rate_schedule(value: float | str | Schedule) -> float | Schedule:
    """
    An SB3 learning rate from its zoo form: ``"lin_<x>"`` is rl-zoo3's linear decay from x to 0 over the
    training; numbers and schedules pass through. Keeping the string in the config keeps ``metrics.json`` and
    ``zoo_configs/`` readable.

    :param value: the learning rate as configured
    """
    if not isinstance(value, str):
        return value
    kind, _, initial = value.partition("_")
    try:
        start = float(initial)
    except ValueError:
        start = float("nan")
    if kind != "lin" or not start > 0:
        raise ValueError(f"learning_rate must be a number, a schedule or 'lin_<x>' with x > 0, got {value!r}")
    return LinearSchedule(start, 0.0, 1.0)


@dataclass
class PipelineConfig:
    """
    What :func:`run_pipeline` runs. Step budgets count agent-steps (SB3 timesteps: one per player per game).

    :param preset: Coin Game preset (``"3x3"``: 20 steps, ``"7x7"``: 50 steps)
    :param seed: seed of every phase (each phase offsets it)
    :param reward_rule: the Coin Game's reward rule: ``"parl"`` (the paper's) or ``"lola"`` (the classic one, where
        taking another's coin costs its owner 2: a sharper dilemma)
    :param n_games: games stepped together in every training phase
    :param principal_steps: the principal's training budget (the preset's, :data:`PRESETS`, by default)
    :param agent_steps: each validation and best-response agent's budget (the preset's by default)
    :param baseline_steps: each baseline's budget (the preset's by default)
    :param algos: validation algorithms (``"dqn"``, ``"ppo"``); the headline metrics use the first
    :param eval_games: games per evaluation round (2 x 1024 episodes: on 3x3 every method lies within 0.6
        welfare of the optimum, and 128 episodes left a standard error of about 0.14 on each mean)
    :param eval_episodes: evaluation rounds
    :param alpha: the principal's weight of welfare against payments
    :param principal_kwargs: overrides of :data:`PRINCIPAL_HYPERPARAMS` and of the preset's ``nudge``
    :param agent_kwargs: overrides of :data:`AGENT_HYPERPARAMS`, per algorithm
    :param threads: torch threads (1 is fastest for these small networks)
    """

    preset: str = "3x3"
    seed: int = 0
    reward_rule: str = "parl"
    n_games: int = 16
    principal_steps: int | None = None
    agent_steps: int | None = None
    baseline_steps: int | None = None
    algos: Sequence[str] = ("dqn", "ppo")
    eval_games: int = 1024
    eval_episodes: int = 2
    alpha: float = 0.1
    principal_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: int = 1

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        resolve_config(**self.game_kwargs())  # the game's own checks, before any phase runs
        for name in ("principal_steps", "agent_steps", "baseline_steps"):
            if getattr(self, name) is None:
                setattr(self, name, PRESETS[self.preset][name])
        for name in ("n_games", "principal_steps", "agent_steps", "baseline_steps", "eval_games", "eval_episodes",
                     "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.algos = tuple(self.algos)
        if not self.algos or any(algo not in ALGOS for algo in self.algos):
            raise ValueError(f"algos must be a non-empty subset of {sorted(ALGOS)}, got {self.algos!r}")
        if not set(self.agent_kwargs) <= set(ALGOS):
            raise ValueError(f"agent_kwargs keys must be among {sorted(ALGOS)}, got {sorted(self.agent_kwargs)}")
        for algo in ALGOS:
            self.agent_hyperparams(algo)  # a bad learning rate fails here, not after the principal's training

    def game_kwargs(self) -> dict[str, str]:
        """The Coin Game arguments of every phase."""
        return {"preset": self.preset, "reward_rule": self.reward_rule}

    def agent_hyperparams(self, algo: str) -> dict[str, Any]:
        """SB3 keyword arguments of ``algo``'s agents: :data:`AGENT_HYPERPARAMS` with the reward rule's
        (:data:`RULE_AGENT_KWARGS`) and this config's overrides, a ``"lin_<x>"`` learning rate as its schedule."""
        rule_kwargs = RULE_AGENT_KWARGS.get(self.reward_rule, {}).get(algo, {})
        hyperparams = copy.deepcopy({**AGENT_HYPERPARAMS[algo], **rule_kwargs, **self.agent_kwargs.get(algo, {})})
        if "learning_rate" in hyperparams:
            hyperparams["learning_rate"] = learning_rate_schedule(hyperparams["learning_rate"])
        return hyperparams

    def principal_hyperparams(self) -> dict[str, Any]:
        """The principal's hyperparameters with this config's overrides."""
        return copy.deepcopy({**PRINCIPAL_HYPERPARAMS, "nudge": PRESETS[self.preset]["nudge"],
                              **self.principal_kwargs})


def follow_exactly(agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch) -> np.ndarray:
    """Responder that takes every recommendation (the learned principal always recommends)."""
    return make_responder("follow")(agent_obs, contracts, core)


def mixed_responder(first: Responder, others: Responder) -> Responder:
    """
    Player 0 answers with ``first``, every other player with ``others`` (both see the whole batch).

    :param first: responder of player 0
    :param others: responder of the other players
    """

    def respond(agent_obs: np.ndarray, contracts: np.ndarray, core: CoinGameBatch) -> np.ndarray:
        own, rest = np.asarray(first(agent_obs, contracts, core)), np.asarray(others(agent_obs, contracts, core))
        rest[:, 0] = own[:, 0]
        return rest

    return respond


class SoloContractVecEnv(VecEnv):
    """
    The agents' view with one learner per game (player 0); the other players answer with a fixed responder.

    :param n_games: games (= slots of this VecEnv)
    :param principal: the contracts, as for :class:`ContractAgentsVecEnv`
    :param partner: responder of the other players (e.g. :func:`follow_exactly`, or an SB3 model)
    :param seed: seed of the games
    :param game_kwargs: Coin Game arguments
    """

    def __init__(self, n_games: int, principal: Principal, partner: Responder | Any, seed: int | None = None,
                 **game_kwargs: Any) -> None:
        self.inner = ContractAgentsVecEnv(n_games, principal=principal, seed=seed, **game_kwargs)
        self.partner = make_responder(partner)
        self.n_agents = self.inner.core.n_agents
        super().__init__(n_games, self.inner.observation_space, spaces.Discrete(N_ACTIONS))
        self._inner_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        self._inner_obs = self.inner.reset()
        return self._inner_obs[:: self.n_agents].copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        core, n = self.inner.core, self.n_agents
        grid = self._inner_obs.reshape(core.n_games, n, -1)[..., :-N_ACTIONS]
        joint = np.asarray(self.partner(grid, self.inner.contracts, core)).reshape(core.n_games, n).copy()
        joint[:, 0] = self._actions
        self._inner_obs, rewards, dones, infos = self.inner.step(joint.reshape(-1))
        return self._inner_obs[::n].copy(), rewards[::n], dones[::n], infos[::n]

    def close(self) -> None:
        self.inner.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self.inner.get_attr(attr_name, [0])[0] for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.inner.set_attr(attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = self.inner.env_method(method_name, *method_args, indices=[0], **method_kwargs)[0]
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def train_principal(config: PipelineConfig, tensorboard_log: str | None = None,
                    progress_bar: bool = False) -> MultiAgentContractDQN:
    """
    Phase 1: the principal's training (Algorithm 3's training phase).

    :param config: the experiment
    :param tensorboard_log: TensorBoard folder (run ``principal``)
    :param progress_bar: show SB3's progress bar
    """
    env = CoinGameVecEnv(config.n_games, obs_format="flat", seed=config.seed, **config.game_kwargs())
    model = MultiAgentContractDQN("MlpPolicy", env, alpha=config.alpha, seed=config.seed,
                                  tensorboard_log=tensorboard_log, **config.principal_hyperparams())
    return model.learn(config.principal_steps, tb_log_name="principal", progress_bar=progress_bar)


def train_agents(principal: Principal, config: PipelineConfig, algo: str = "dqn", seed_offset: int = 1,
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
    else:
        # one learner per game: twice the games for the same number of learner slots per step
        env = SoloContractVecEnv(2 * config.n_games, principal, partner, seed=seed, **config.game_kwargs())
    model = ALGOS[algo]("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log,
                        **config.agent_hyperparams(algo))
    return model.learn(config.agent_steps, tb_log_name=tb_log_name or f"validation_{algo}", progress_bar=progress_bar)


def _rollouts(responder: Responder, principal: Principal | None, config: PipelineConfig) -> dict[str, np.ndarray]:
    core = CoinGameBatch(config.eval_games, seed=10_000 + config.seed, **config.game_kwargs())
    offer = make_principal(principal, core.n_games, core.n_agents, DEFAULT_B_MAX)
    return collect_rollouts(responder, offer, core, config.eval_episodes)


def player_return(responder: Responder, principal: Principal, config: PipelineConfig) -> float:
    """Player 0's mean episode return, game reward plus payments, under ``principal``'s contracts."""
    rollouts = _rollouts(responder, principal, config)
    return float((rollouts["rewards"] + rollouts["payments"])[:, :, 0].sum(axis=0).mean())


def evaluate_under_contracts(responder: Responder, principal: Principal, config: PipelineConfig) -> dict[str, float]:
    """Welfare, payments, payment share, follow rate and pick metrics of agents facing ``principal``."""
    return rollout_metrics(**_rollouts(responder, principal, config))


def equilibrium_ratios(principal: Principal, validated: BaseAlgorithm, config: PipelineConfig,
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
    partners: dict[str, Responder] = {"spe": follow_exactly, "ic": make_responder(validated)}
    for offset, (name, partner) in enumerate(partners.items(), start=10):
        deviator = train_agents(principal, config, "dqn", offset, tensorboard_log, f"best_response_{name}",
                                partner=partner, progress_bar=progress_bar)
        deviating = player_return(mixed_responder(make_responder(deviator), partner), principal, config)
        following = player_return(mixed_responder(follow_exactly, partner), principal, config)
        ratio = spe_ratio if name == "spe" else ic_ratio
        results.update({f"{name}_ratio": ratio(deviating, following), f"{name}_deviating_return": deviating,
                        f"{name}_following_return": following})
    return results


def run_baselines(config: PipelineConfig, budget: float, tensorboard_log: str | None = None,
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


def run_pipeline(config: PipelineConfig, out: str | Path | None = None, progress_bar: bool = False,
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

    log(f"principal: {config.principal_steps:,} agent-steps on {config.preset} ({config.reward_rule} rule)")
    principal = train_principal(config, tb, progress_bar)
    offer = frozen_principal(principal)
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
        "principal_follow": evaluate_under_contracts(follow_exactly, offer, config),
        "validation": validation,
        "ratios": ratios,
        "baselines": baselines,
        "summary": summarize(validation, ratios, baselines, optimal_welfare(**config.game_kwargs())),
        "timings": timings,
    }
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        principal.save(folder / "principal.zip")
        (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=float))
    return results


def alternate(config: PipelineConfig, rounds: int, algo: str = "dqn", tensorboard_log: str | None = None
              ) -> tuple[MultiAgentContractDQN, BaseAlgorithm, Coordinator]:
    """
    The meta-algorithm mode: the principal and shared-parameter SB3 agents learn in alternation on the same game,
    ``config.principal_steps`` and ``config.agent_steps`` per round, through
    :class:`~sb3_contracts.coordinator.Coordinator`. The agents face the principal's *current* contracts
    (:func:`~sb3_contracts.contract_dqn.multiagent.live_principal`); the principal learns from its own follow-bit
    rollouts (Algorithm 3), so each round's agents answer its latest contracts.

    :param config: the experiment
    :param rounds: alternation rounds
    :param algo: the agents' algorithm
    :param tensorboard_log: TensorBoard folder (runs ``principal`` and ``agents``, one each across rounds)
    :return: the principal, the agents and the coordinator (its ``history`` logs the rounds)
    """
    th.set_num_threads(config.threads)
    env = CoinGameVecEnv(config.n_games, obs_format="flat", seed=config.seed, **config.game_kwargs())
    principal = MultiAgentContractDQN("MlpPolicy", env, alpha=config.alpha, seed=config.seed,
                                      tensorboard_log=tensorboard_log, **config.principal_hyperparams())
    agents_env = ContractAgentsVecEnv(config.n_games, principal=live_principal(principal), seed=config.seed + 1,
                                      **config.game_kwargs())
    agents = ALGOS[algo]("MlpPolicy", agents_env, seed=config.seed + 1, tensorboard_log=tensorboard_log,
                         **config.agent_hyperparams(algo))
    coordinator = Coordinator(principal, agents, None, config.principal_steps, config.agent_steps,
                              principal_log_name="principal", agent_log_name="agents")
    coordinator.run(rounds)
    return principal, agents, coordinator


__all__ = [
    "AGENT_HYPERPARAMS",
    "CONTRACT_POLICY_KWARGS",
    "POLICY_KWARGS",
    "PRESETS",
    "RULE_AGENT_KWARGS",
    "PRINCIPAL_HYPERPARAMS",
    "PipelineConfig",
    "SoloContractVecEnv",
    "alternate",
    "equilibrium_ratios",
    "evaluate_under_contracts",
    "follow_exactly",
    "mixed_responder",
    "player_return",
    "run_baselines",
    "run_pipeline",
    "summarize",
    "train_agents",
    "train_principal",
]
