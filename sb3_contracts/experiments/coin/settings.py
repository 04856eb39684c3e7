"""The Coin Game experiment's settings, in one home: the pipeline, the CLI, the benchmarks and ``zoo_configs/``.

The experiment runs the Coin Game by default, and any game the contract layer wraps with ``game`` (a registered
contract-game id such as ``ContractEscapeRoom-v0``, or a PettingZoo factory's ``"module:callable"``): its learners
then read the agents' rows with SB3's plain MLPs, and :data:`GAME_PRESETS` holds what was tuned per wrapped id.

:class:`CoinSettings` (one docstring per field, as CleanRL's ``Args``) says what an experiment runs; the
module-level tables hold the learners' hyperparameters. ``zoo_configs/contract_dqn_multiagent.yml``,
``zoo_configs/dqn.yml`` and ``zoo_configs/ppo.yml`` are generated from them (:func:`write_zoo_configs`; a test keeps
the files equal to what this module generates), and ``sb3-contracts coin --conf-file`` reads such files back
(:func:`read_zoo_overrides`). Why each value is what it is, with the measurements behind it, is in the README.

Step units: the principal learns on its view (``ContractCoinGame-v0``), where one step is one game step (all
agents move); the agents (validation, best responses, baselines) learn with one SB3 step per agent per game step.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule

from sb3_contracts.common.prioritized import PAPER_PER_KWARGS
from sb3_contracts.contract_dqn_multiagent import MultiAgentPrioritizedReplayBuffer
from sb3_contracts.contract_dqn_multiagent.encoders import CenteredCoinExtractor, CoinConvExtractor
from sb3_contracts.contract_dqn_multiagent.policies import CONTRACT_FORMS
from sb3_contracts.contract_dqn_multiagent.presets import (
    COIN_POLICY_KWARGS,
    DEFAULT_NUDGE,
    ENV_PRESETS,
    PRINCIPAL_HYPERPARAMS,
)
from sb3_contracts.contracts import DEFAULT_ALPHA
from sb3_contracts.envs.checks import check_int
from sb3_contracts.envs.coin_game import N_ACTIONS, CoinGameConfig
from sb3_contracts.experiments.coin.baselines import ALGOS
from sb3_contracts.experiments.zoo_files import write_zoo_file, zoo_entry
from sb3_contracts.game.contract_game import view_kwargs

#: The encoder of every learner of the experiment (the agent-centric grid re-centred on its observer) and its
#: optimiser, the principal's (one home: :mod:`~sb3_contracts.contract_dqn_multiagent.presets`).
POLICY_KWARGS: dict[str, Any] = COIN_POLICY_KWARGS
#: Encoders the experiment offers every learner (``CoinSettings.encoder``).
ENCODERS = {"centred": CenteredCoinExtractor, "conv": CoinConvExtractor}
#: The principal's replay (``CoinSettings.replay``).
REPLAYS = ("uniform", "prioritized")
#: Agents facing contracts also read their contract's recommendation as a one-hot (baselines see no contract).
CONTRACT_POLICY_KWARGS: dict[str, Any] = dict(POLICY_KWARGS, features_extractor_kwargs=dict(contract_dims=N_ACTIONS))
#: The agents' hyperparameters per algorithm (one shared-parameter model over every player of every game; DQN: one
#: gradient step per step of the games, as the principal). A learning rate ``"lin_<x>"`` decays linearly from x
#: to 0 (rl-zoo3's notation).
AGENT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "dqn": dict(learning_rate="lin_1e-3", buffer_size=100_000, learning_starts=2_000, batch_size=128, train_freq=1,
                gradient_steps=1, target_update_interval=4_000, exploration_fraction=0.2,
                exploration_final_eps=0.02, gamma=0.99, policy_kwargs=CONTRACT_POLICY_KWARGS),
    "ppo": dict(learning_rate=5e-4, n_steps=64, batch_size=256, n_epochs=4, gamma=0.99, ent_coef=0.01,
                policy_kwargs=CONTRACT_POLICY_KWARGS),
}
#: Per reward rule, overrides of :data:`AGENT_HYPERPARAMS` (a config's ``agent_kwargs`` override both): under
#: ``lola`` DQN agents keep a constant learning rate.
RULE_AGENT_KWARGS: dict[str, dict[str, dict[str, Any]]] = {"parl": {}, "lola": {"dqn": {"learning_rate": 1e-3}}}
#: Per preset: step budgets (principal: game steps; agents and baselines: agent-steps) and the nudge ξ paid on
#: every followed recommendation (the principal's preset on the preset's env id, its one home).
BUDGETS: dict[str, dict[str, Any]] = {
    "3x3": dict(principal_steps=150_000, agent_steps=300_000, baseline_steps=300_000),
    "7x7": dict(principal_steps=500_000, agent_steps=1_000_000, baseline_steps=1_000_000),
}
#: The registered ids of the principal's and the agents' views per preset (Gymnasium's convention for variants,
#: as ``FrozenLake8x8-v1``): the keys of the zoo files.
PRESET_ENV_IDS: dict[str, dict[str, str]] = {
    "3x3": {"principal": "ContractCoinGame-v0", "agents": "ContractCoinGameAgents-v0"},
    "7x7": {"principal": "ContractCoinGame7x7-v0", "agents": "ContractCoinGameAgents7x7-v0"},
}
for _preset, _ids in PRESET_ENV_IDS.items():
    BUDGETS[_preset]["nudge"] = ENV_PRESETS[_ids["principal"]]["nudge"]
#: Step budgets of a wrapped game (``CoinSettings.game``), with :data:`DEFAULT_NUDGE` unless its preset says.
GAME_BUDGETS: dict[str, Any] = dict(principal_steps=100_000, agent_steps=100_000, baseline_steps=100_000)
#: Per wrapped contract-game id, what differs from the defaults (``principal_kwargs`` and per algorithm
#: ``agent_kwargs``, which a config's own overrides beat; the id's nudge has its one home in ``ENV_PRESETS``, which
#: the learner built from the id reads too): the Escape Room's are those of docs/results/escape_room.md (every
#: recommendation followed in training for N = 3, three in four for N = 2, ξ = 0.25; small DQN agents that learn within
#: 100k steps). Its DQN
#: agents there played 4 rooms with one gradient step per step of the rooms; here they play ``n_games`` = 16, so four
#: gradient steps keep one per as many agent-steps (one per 8 for N = 2, per 12 for N = 3).
ESCAPE_ROOM_DQN: dict[str, Any] = dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=1_000, batch_size=64,
                                       train_freq=1, target_update_interval=500, exploration_fraction=0.3,
                                       exploration_final_eps=0.02, gamma=0.99)
_ESCAPE_ROOM_PRESET: dict[str, Any] = dict(
    principal_kwargs=dict(follow_prob=1.0, learning_starts=500, target_update_interval=500),
    agent_kwargs={"dqn": dict(ESCAPE_ROOM_DQN, gradient_steps=4)})
GAME_PRESETS: dict[str, dict[str, Any]] = {
    # N = 2: a principal that meets agents who ignore it (follow bit 0) in training prices what follows a deviation;
    # trained with followers only, it could send the deviator out through the door the partner then opens
    "ContractEscapeRoom-v0": dict(_ESCAPE_ROOM_PRESET,
                                  principal_kwargs=dict(_ESCAPE_ROOM_PRESET["principal_kwargs"], follow_prob=0.75)),
    "ContractEscapeRoom3-v0": _ESCAPE_ROOM_PRESET,
}


def game_budgets(config: dict[str, Any]) -> dict[str, Any]:
    """
    The default budgets and nudge of a run's game: its Coin Game preset's (:data:`BUDGETS`), or a wrapped game's
    (:data:`GAME_BUDGETS`, :data:`GAME_PRESETS`).

    :param config: the settings as a dict (``asdict`` of :class:`CoinSettings`, or a run's ``metrics["config"]``)
    """
    game = config.get("game")
    if game is None:
        return dict(BUDGETS.get(config.get("preset"), {}))
    return {**GAME_BUDGETS, "nudge": ENV_PRESETS.get(game, {}).get("nudge", DEFAULT_NUDGE)}


def learning_rate_schedule(value: float | str | Schedule) -> float | Schedule:
    """
    An SB3 learning rate from its zoo form: ``"lin_<x>"`` is rl-zoo3's linear decay from x to 0 over the
    training; numbers and schedules pass through.

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


#: The game's defaults, read once from :class:`~sb3_contracts.envs.coin_game.CoinGameConfig` (their one home).
_GAME = CoinGameConfig()
#: The experiment's fields that are the game's (:class:`~sb3_contracts.envs.coin_game.CoinGameConfig` fields).
GAME_FIELDS = ("preset", "reward_rule", "contested", "n_agents")
#: What ``CoinSettings.env_kwargs`` may set of a wrapped game's views (the principal's and the agents').
WRAPPED_VIEW_KWARGS = ("b_max", "agent_ids", "game_kwargs")
#: The fields that apply to the Coin Game only (a wrapped game keeps them at their defaults).
COIN_FIELDS = (*GAME_FIELDS, "encoder", "agent_encoder", "conf_file")


@dataclass(frozen=True)
class CoinSettings:
    """What the Coin Game experiment runs (units: the module docstring)."""

    preset: str = _GAME.preset
    """the Coin Game preset: ``"3x3"`` (3x3 grid, 20 steps: the paper's appendix) or ``"7x7"`` (7x7, 50 steps)"""
    seed: int = 0
    """seed of every phase (each phase adds its own offset, so phases see distinct games)"""
    reward_rule: str = _GAME.reward_rule
    """``"parl"`` (the paper's: +1 own coin, +0.2 another's) or ``"lola"`` (a taken coin costs its owner 2)"""
    contested: str = _GAME.contested
    """who collects a coin several players reach together: one of them at random (``"random"``, the public
    reproduction's rule and the paper's "grab each other's coins": the dilemma the experiment leads with) or
    ``"all"`` of them (rllib's default, where two players herding onto a coin earn 1.2 and selfish play is
    nearly optimal)"""
    n_agents: int = _GAME.n_agents
    """players (2 to 4); the exact optimum exists for 2 only"""
    game: str | None = None
    """the game: ``None`` for the Coin Game of the fields above, or any game the contract layer wraps: a registered
    contract-game id (``"ContractEscapeRoom-v0"``, ``"ContractEscapeRoom3-v0"``) or ``"module:callable"`` of a
    PettingZoo ``ParallelEnv`` factory. The Coin Game's fields then stay at their defaults; the budgets and the nudge
    default to :data:`GAME_BUDGETS` (and :data:`GAME_PRESETS` for the id)"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """with ``game``: arguments of its views over the id's: ``b_max``, ``agent_ids`` or ``game_kwargs`` (of
    ``ContractGameEnv``)"""
    alpha: float = DEFAULT_ALPHA
    """the principal's weight of welfare against payments: its utility is ``welfare / alpha - payments``"""
    n_games: int = 16
    """games stepped together in every training phase"""
    principal_steps: int | None = None
    """the principal's training budget, game steps (the preset's by default)"""
    agent_steps: int | None = None
    """each validation and best-response learner's budget, agent-steps (the preset's by default)"""
    baseline_steps: int | None = None
    """each baseline's budget, agent-steps (the preset's by default)"""
    nudge: float | None = None
    """ξ, added to every minimal payment (the preset's by default)"""
    algos: tuple[str, ...] = tuple(ALGOS)
    """validation algorithms (``"dqn"``, ``"ppo"``); the headline metrics use the first"""
    eval_games: int = 1024
    """games per evaluation round"""
    eval_episodes: int = 2
    """evaluation rounds (2 x 1024 episodes per method)"""
    principal_kwargs: dict[str, Any] = field(default_factory=dict)
    """overrides of :data:`PRINCIPAL_HYPERPARAMS`"""
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """overrides of :data:`AGENT_HYPERPARAMS`, per algorithm"""
    conf_file: tuple[str, ...] = ()
    """rl-zoo3 files whose hyperparameters the learners use (:func:`read_zoo_overrides`):
    ``contract_dqn_multiagent.yml`` (the principal), ``dqn.yml`` and ``ppo.yml`` (the agents); budgets stay this
    config's and ``principal_kwargs``/``agent_kwargs`` win over the files"""
    encoder: str = "centred"
    """the principal's encoder: ``"centred"`` (the grid re-centred on its observer, ``CenteredCoinExtractor``) or
    ``"conv"`` (the paper's 4x4 convolution, ``CoinConvExtractor``)"""
    agent_encoder: str = "conv"
    """every agent learner's encoder (validation, best responses, baselines), one of the same choices. The paper's
    convolution: on 3x3 under the dilemma rule, fresh DQN agents follow 92% of the recommendations with it against
    73% with the centred grid (seeds 0-2, docs/results/coin_game.md)"""
    contract_form: str = "paper"
    """how the principal prices a recommendation: ``"paper"`` (``max_a Q - Q(a*) + ξ``: at least ξ on every
    recommendation) or ``"minimal"`` (the minimal contract with margin ξ: nothing where the agent already prefers
    the move by ξ; see ``MultiAgentContractDQNPolicy``)"""
    replay: str = "uniform"
    """the principal's replay: ``"uniform"`` or ``"prioritized"`` (the paper's proportional PER,
    ``PAPER_PER_KWARGS``)"""
    threads: int = 1
    """torch threads (1 is fastest for these small networks)"""

    def __post_init__(self) -> None:
        self.game_config()  # the game's own checks (its one home), before any phase runs
        check_int("seed", self.seed, 0)
        if self.game is not None:
            self._check_wrapped_game()
        elif self.env_kwargs:
            raise ValueError(f"env_kwargs apply to a wrapped game (game=...), not the Coin Game, got "
                             f"{self.env_kwargs!r}")
        if self.conf_file:
            object.__setattr__(self, "conf_file", tuple(map(str, self.conf_file)))
            zoo = read_zoo_overrides(list(self.conf_file), self.preset)
            object.__setattr__(self, "principal_kwargs", {**zoo["principal_kwargs"], **self.principal_kwargs})
            object.__setattr__(self, "agent_kwargs", {algo: {**zoo["agent_kwargs"].get(algo, {}),
                                                             **self.agent_kwargs.get(algo, {})}
                                                      for algo in {*zoo["agent_kwargs"], *self.agent_kwargs}})
        defaults = game_budgets(asdict(self))
        for name in ("principal_steps", "agent_steps", "baseline_steps", "nudge"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        for name in ("n_games", "principal_steps", "agent_steps", "baseline_steps", "eval_games", "eval_episodes",
                     "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"alpha must be a positive finite number, got {self.alpha!r}")
        if not np.isfinite(self.nudge) or self.nudge < 0:
            raise ValueError(f"nudge must be a finite non-negative number, got {self.nudge!r}")
        for name in ("encoder", "agent_encoder"):
            if getattr(self, name) not in ENCODERS:
                raise ValueError(f"{name} must be one of {sorted(ENCODERS)}, got {getattr(self, name)!r}")
        if self.contract_form not in CONTRACT_FORMS:
            raise ValueError(f"contract_form must be one of {CONTRACT_FORMS}, got {self.contract_form!r}")
        if self.replay not in REPLAYS:
            raise ValueError(f"replay must be one of {REPLAYS}, got {self.replay!r}")
        object.__setattr__(self, "algos", tuple(self.algos))
        if not self.algos or any(algo not in ALGOS for algo in self.algos):
            raise ValueError(f"algos must be a non-empty subset of {sorted(ALGOS)}, got {self.algos!r}")
        if not set(self.agent_kwargs) <= set(ALGOS):
            raise ValueError(f"agent_kwargs keys must be among {sorted(ALGOS)}, got {sorted(self.agent_kwargs)}")
        for algo in ALGOS:
            self.agent_hyperparams(algo)  # a bad learning rate fails here, not after the principal's training

    def _check_wrapped_game(self) -> None:
        """A wrapped game: the Coin Game's fields at their defaults, and the game's view buildable (checked once)."""
        defaults = CoinSettings()
        for name in COIN_FIELDS:
            if getattr(self, name) != getattr(defaults, name):
                raise ValueError(f"{name} applies to the Coin Game only, not to game={self.game!r}: leave it at its "
                                 f"default ({getattr(defaults, name)!r}), got {getattr(self, name)!r}")
        unknown = sorted(set(self.env_kwargs) - set(WRAPPED_VIEW_KWARGS))
        if unknown:  # the agents' views take these too; alpha is a setting of its own
            raise ValueError(f"env_kwargs may set {WRAPPED_VIEW_KWARGS}, got {unknown}")
        view_kwargs(self.game, self.env_kwargs)

    def game_kwargs(self) -> dict[str, Any]:
        """The Coin Game arguments of every phase (:class:`~sb3_contracts.envs.coin_game.CoinGameConfig` fields)."""
        return {name: getattr(self, name) for name in GAME_FIELDS}

    def game_config(self) -> CoinGameConfig:
        """The game every phase plays."""
        return CoinGameConfig(**self.game_kwargs())

    def agent_hyperparams(self, algo: str, schedules: bool = True) -> dict[str, Any]:
        """
        SB3 keyword arguments of ``algo``'s agents: :data:`AGENT_HYPERPARAMS` with the reward rule's
        (:data:`RULE_AGENT_KWARGS`) and this config's overrides.

        :param algo: ``"dqn"`` or ``"ppo"``
        :param schedules: turn a ``"lin_<x>"`` learning rate into its schedule (else keep the zoo's string)
        """
        if self.game is None:
            base = {**_with_encoder(AGENT_HYPERPARAMS[algo], self.agent_encoder),
                    **RULE_AGENT_KWARGS.get(self.reward_rule, {}).get(algo, {})}
        else:  # SB3's own MLP over a row (and its contract): the Coin Game's encoders read its grid
            base = {key: value for key, value in AGENT_HYPERPARAMS[algo].items() if key != "policy_kwargs"}
            base.update(GAME_PRESETS.get(self.game, {}).get("agent_kwargs", {}).get(algo, {}))
        hyperparams = copy.deepcopy({**base, **self.agent_kwargs.get(algo, {})})
        if schedules and "learning_rate" in hyperparams:
            hyperparams["learning_rate"] = learning_rate_schedule(hyperparams["learning_rate"])
        return hyperparams

    def principal_hyperparams(self) -> dict[str, Any]:
        """The principal's hyperparameters with the preset's nudge, the encoder, the replay and the overrides."""
        if self.game is None:
            base = _with_encoder(PRINCIPAL_HYPERPARAMS, self.encoder)
        else:  # the learner's own MLP over the agents' rows
            preset = GAME_PRESETS.get(self.game, {}).get("principal_kwargs", {})
            base = {**copy.deepcopy(PRINCIPAL_HYPERPARAMS), **preset}
        base["policy_kwargs"]["contract_form"] = self.contract_form
        if self.replay == "prioritized":
            base.update(replay_buffer_class=MultiAgentPrioritizedReplayBuffer, replay_buffer_kwargs=PAPER_PER_KWARGS)
        return copy.deepcopy({**base, "nudge": self.nudge, **self.principal_kwargs})


def _with_encoder(hyperparams: dict[str, Any], encoder: str) -> dict[str, Any]:
    """``hyperparams`` (copied) whose policy reads the observations with ``encoder`` (a key of :data:`ENCODERS`)."""
    hyperparams = copy.deepcopy(hyperparams)
    hyperparams["policy_kwargs"]["features_extractor_class"] = ENCODERS[encoder]
    return hyperparams


#: The zoo files this module writes, one per algorithm (rl-zoo3's layout: env ids at the top level).
ZOO_FILES = ("contract_dqn_multiagent", "dqn", "ppo")


def zoo_hyperparams(reward_rule: str = "parl") -> dict[str, dict[str, dict[str, Any]]]:
    """
    The zoo files' contents, ``{algorithm: {env id: hyperparameters}}``, for both presets: the principal on the
    principal's view and the validation agents on the agents' view (one learning player; rl-zoo3 cannot express
    parameter sharing over all players, which ``sb3-contracts coin --conf-file`` does with the same values).

    :param reward_rule: the reward rule whose agent hyperparameters to write
    """
    files: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ZOO_FILES}
    for preset, ids in PRESET_ENV_IDS.items():
        config = CoinSettings(preset, reward_rule=reward_rule)
        principal = config.principal_hyperparams()
        principal["callback"] = "sb3_contracts.experiments.coin.metrics.CoinMetricsCallback"
        files["contract_dqn_multiagent"][ids["principal"]] = zoo_entry(
            principal, config.principal_steps, config.n_games,
            {"reward_rule": reward_rule, "contested": config.contested, "alpha": config.alpha})
        for algo in ALGOS:
            files[algo][ids["agents"]] = zoo_entry(config.agent_hyperparams(algo, schedules=False),
                                                    config.agent_steps, config.n_games,
                                                    {"reward_rule": reward_rule, "contested": config.contested})
    return files


def write_zoo_configs(folder: str | Path) -> list[Path]:
    """
    Write ``<folder>/{contract_dqn_multiagent,dqn,ppo}.yml`` from :func:`zoo_hyperparams`, keeping every other
    env id already in those files (e.g. ``ContractBinaryTree-v0`` in ``dqn.yml``).

    :param folder: the zoo configs folder
    :return: the files written
    """
    header = ("# rl-zoo3 hyperparameters of {name}, env ids at the top level. The Coin Game entries are\n"
              "# generated by sb3_contracts.experiments.coin.settings.write_zoo_configs\n"
              "# (a test keeps them equal).\n")
    return [write_zoo_file(Path(folder) / f"{name}.yml", entries, header.format(name=name))
            for name, entries in zoo_hyperparams().items()]


def read_zoo_overrides(paths: list[str | Path], preset: str) -> dict[str, Any]:
    """
    What zoo files say of the experiment's learners for ``preset``, as :class:`CoinSettings` overrides:
    ``principal_kwargs`` from ``contract_dqn_multiagent.yml`` and ``agent_kwargs`` from ``dqn.yml`` / ``ppo.yml``
    (the algorithm is the file's name, as in ``zoo_configs/``). Budgets and ``n_envs`` stay the config's.

    :param paths: zoo files
    :param preset: the preset whose env ids to read
    """
    import yaml

    overrides: dict[str, Any] = {"principal_kwargs": {}, "agent_kwargs": {}}
    for path in map(Path, paths):
        algo = path.stem
        if algo not in ZOO_FILES:
            raise ValueError(f"--conf-file {path}: the file's name must be one of {[f + '.yml' for f in ZOO_FILES]}")
        role = "principal" if algo == "contract_dqn_multiagent" else "agents"
        entries = yaml.safe_load(path.read_text()) or {}
        env_id = PRESET_ENV_IDS[preset][role]
        if env_id not in entries:
            raise ValueError(f"--conf-file {path} has no entry for {env_id}")
        entry = {key: value for key, value in entries[env_id].items()
                 if key not in ("env_kwargs", "n_envs", "n_timesteps", "policy", "callback", "alpha")}
        if "policy_kwargs" in entry:
            names = {extractor.__name__: extractor for extractor in ENCODERS.values()}
            entry["policy_kwargs"] = eval(entry["policy_kwargs"], names)  # noqa: S307  (as rl-zoo3 reads it)
        if role == "principal":
            overrides["principal_kwargs"] = entry
        else:
            overrides["agent_kwargs"][algo] = entry
    return overrides
