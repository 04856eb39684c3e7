"""Baselines without a principal: independent shared-parameter SB3 agents on a shaped Coin Game reward.

Kinds (:class:`RewardShapingVecEnv`), with ``r_i`` player ``i``'s game reward in a step:

- ``"selfish"``: ``r_i``.
- ``"cooperative"``: every player gets the welfare ``sum_j r_j``. The *sum* (not the mean) so that each
  agent's return is the social welfare the experiment reports, on the same scale as the principal's
  objective; the mean would only rescale the reward by ``1/n``.
- ``"proportion"`` (constant proportion, Christoffersen et al. 2023 style): ``(1 - p) r_i + p mean_j r_j``.

**Spend** of the proportion baseline (what it redistributes, to compare with a principal's payments): per
episode, ``sum_t sum_i max(0, p (mean_j r_j - r_i))``, the amount moved from the players above the mean to
those below it (the transfers sum to zero, so this is half of their absolute sum). With ``target_budget``
the baseline is **budget-matched**: ``p`` adapts online so that the spend per episode meets the target.
Since spend = ``p * D`` with ``D = sum_t sum_i max(0, mean_j r_j - r_i)`` (the episode's disparity, which does
not depend on ``p``), the controller sets ``p = clip((target + k * debt) / D_avg, 0, 1)`` after every batch of
finished episodes, ``D_avg`` being a running (exponential) mean of ``D`` that follows the agents as they learn
and ``debt`` the accumulated shortfall ``sum (target - spend)`` (an integral term, ``k = 1``), so that the
spend averages to the target even while ``D`` drifts. ``p`` stays 0 until the first episodes end.

Example::

    from sb3_contracts.experiments.coin.baselines import train_baseline, evaluate_agents

    model, stats = train_baseline("proportion", 50_000, target_budget=1.0, game_kwargs={"preset": "3x3"})
    evaluate_agents(model, n_games=64, preset="3x3")   # welfare, pick_speed, pick_own_color, ...
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_contracts.envs.coin_game import CoinGameBatch
from sb3_contracts.experiments.coin.metrics import CoinMetricsCallback, rollout_metrics
from sb3_contracts.experiments.progress import PhaseProgress
from sb3_contracts.game.coin_agents_view import Principal, make_principal
from sb3_contracts.game.coin_vec_env import CoinGameVecEnv
from sb3_contracts.game.responders import Responder, make_responder
from sb3_contracts.game.settlement import DEFAULT_B_MAX, settle

BASELINES = ("selfish", "cooperative", "proportion")
ALGOS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO}
#: Weight of the newest batch of episodes in the running mean disparity of the budget controller.
DISPARITY_RATE = 0.5
#: Share of the accumulated budget shortfall (or excess) the controller aims to repay in the next episodes.
DEBT_GAIN = 1.0


class RewardShapingVecEnv(VecEnvWrapper):
    """
    Replace each slot's reward of a game's VecEnv of one slot per player (slot ``g * n_agents + i``: the
    :class:`~sb3_contracts.game.coin_vec_env.CoinGameVecEnv`, or the bare
    :class:`~sb3_contracts.game.contract_agents.ContractGameAgentsVecEnv` of any wrapped game) by a shaped one.

    Episode infos keep the game's own ``episode`` return (the player's unshaped return) and gain
    ``shaping_spend`` (the game's spend in the episode) and ``shaping_p``.

    :param venv: the game's VecEnv (one slot per player per game; its ``core`` has ``n_games`` and ``n_agents``)
    :param kind: ``"selfish"``, ``"cooperative"`` or ``"proportion"``
    :param p: the proportion shared (``"proportion"`` only; the start value when budget-matched)
    :param target_budget: spend per episode to match by adapting ``p`` (``"proportion"`` only)
    """

    def __init__(self, venv: VecEnv, kind: str, p: float | None = None,
                 target_budget: float | None = None) -> None:
        core = getattr(venv, "core", None)
        if not isinstance(venv, VecEnv) or core is None or venv.num_envs != core.n_games * core.n_agents:
            raise TypeError(f"venv must be a game's VecEnv with one slot per player (a CoinGameVecEnv, say), "
                            f"got {type(venv).__name__}")
        if kind not in BASELINES:
            raise ValueError(f"kind must be one of {BASELINES}, got {kind!r}")
        if kind != "proportion" and (p is not None or target_budget is not None):
            raise ValueError(f"p and target_budget apply to the 'proportion' baseline only, not {kind!r}")
        if kind == "proportion" and p is None and target_budget is None:
            raise ValueError("the 'proportion' baseline needs p (fixed) or target_budget (budget-matched)")
        if p is not None and not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        if target_budget is not None and not (np.isfinite(target_budget) and target_budget >= 0):
            raise ValueError(f"target_budget must be a non-negative finite number, got {target_budget!r}")
        super().__init__(venv)
        self.kind = kind
        self.p = 0.0 if p is None else float(p)
        self.target_budget = target_budget
        self.shape = (venv.core.n_games, venv.core.n_agents)
        self._disparity = np.zeros(self.shape[0])  # this episode's D, per game
        self._spend = np.zeros(self.shape[0])
        self.mean_disparity: float | None = None
        self._debt = 0.0
        #: per batch of finished episodes: ``(p, mean spend per episode)``
        self.history: list[tuple[float, float]] = []

    def reset(self) -> VecEnvObs:
        self._disparity[:] = 0.0
        self._spend[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        shaped = self.shape_rewards(rewards.reshape(self.shape))
        if dones.any():
            self._end_episodes(dones.reshape(self.shape)[:, 0], infos)
        return obs, shaped.reshape(-1), dones, infos

    def shape_rewards(self, rewards: np.ndarray) -> np.ndarray:
        """
        Shape one step's rewards and account for the spend.

        :param rewards: ``[n_games, n_agents]`` game rewards
        :return: ``[n_games, n_agents]`` float32 shaped rewards
        """
        if self.kind == "selfish":
            return rewards
        if self.kind == "cooperative":
            return np.repeat(rewards.sum(axis=1, keepdims=True), self.shape[1], axis=1)
        mean = rewards.mean(axis=1, keepdims=True)
        disparity = np.maximum(0.0, mean - rewards).sum(axis=1)
        self._disparity += disparity
        self._spend += self.p * disparity
        return ((1.0 - self.p) * rewards + self.p * mean).astype(np.float32)

    def _end_episodes(self, finished: np.ndarray, infos: list[dict[str, Any]]) -> None:
        n_agents = self.shape[1]
        for slot in np.flatnonzero(np.repeat(finished, n_agents)):
            infos[slot].update(shaping_spend=float(self._spend[slot // n_agents]), shaping_p=self.p)
        if self.kind == "proportion":
            self.history.append((self.p, float(self._spend[finished].mean())))
            if self.target_budget is not None:
                self._adapt_p(float(self._disparity[finished].mean()))
        self._disparity[finished] = 0.0
        self._spend[finished] = 0.0

    def _adapt_p(self, disparity: float) -> None:
        # spend = p * D exactly, so p = target / E[D] meets the target in expectation; the debt (integral)
        # term repays what the lag of the running mean cost while the agents' disparity drifts
        if self.mean_disparity is None:
            self.mean_disparity = disparity
        else:
            self._debt += self.target_budget - self.history[-1][1]
            self.mean_disparity += DISPARITY_RATE * (disparity - self.mean_disparity)
        if self.mean_disparity > 0:
            aim = max(0.0, self.target_budget + DEBT_GAIN * self._debt)
            self.p = float(np.clip(aim / self.mean_disparity, 0.0, 1.0))

    def spend_per_episode(self) -> float:
        """
        Mean spend per episode over the finished episodes; when budget-matched, those played once the
        controller had its first estimate (all batches but the first, in which ``p`` was still 0).

        :return: the mean spend, NaN before any (counted) episode ended
        """
        spends = [spend for _, spend in self.history[1 if self.target_budget is not None else 0 :]]
        return float(np.mean(spends)) if spends else float("nan")


class ShapingLogCallback(BaseCallback):
    """Record the proportion baseline's ``baseline/p`` and ``baseline/spend`` (latest batch of episodes)."""

    def __init__(self, env: RewardShapingVecEnv, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.env = env
        self._logged = 0

    def _on_step(self) -> bool:
        if len(self.env.history) > self._logged:
            self._logged = len(self.env.history)
            p, spend = self.env.history[-1]
            self.logger.record("baseline/p", p)
            self.logger.record("baseline/spend", spend)
        return True


def train_baseline(
    kind: str,
    total_timesteps: int,
    n_games: int = 8,
    seed: int = 0,
    target_budget: float | None = None,
    algo: str = "dqn",
    tensorboard_log: str | None = None,
    p: float | None = None,
    game_kwargs: dict[str, Any] | None = None,
    progress_bar: bool = False,
    venv: VecEnv | None = None,
    **hyperparams: Any,
) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """
    Train shared-parameter agents on the shaped Coin Game (``MlpPolicy`` on flat observations).

    :param kind: ``"selfish"``, ``"cooperative"`` or ``"proportion"``
    :param total_timesteps: SB3 timesteps (one per slot: ``n_games * n_agents`` per game step)
    :param n_games: games played in parallel
    :param seed: seed of the games and of the model
    :param target_budget: spend per episode to match (budget-matched ``"proportion"``)
    :param algo: ``"dqn"`` or ``"ppo"``
    :param tensorboard_log: TensorBoard folder (``baseline/p`` and ``baseline/spend`` are logged there)
    :param p: fixed proportion for ``"proportion"`` without a target (the start value with one)
    :param game_kwargs: Coin Game arguments (``preset``, ``reward_rule``, ``n_agents``, ...)
    :param progress_bar: show SB3's progress bar
    :param venv: the game to shape, one slot per player (any game's, see :class:`RewardShapingVecEnv`); by default
        the Coin Game of ``n_games``, ``seed`` and ``game_kwargs``
    :param hyperparams: arguments of the SB3 algorithm (DQN's ``buffer_size`` defaults to 100k here)
    :return: the model and ``stats``: ``kind``, ``p`` (final), ``target_budget``, ``spend_per_episode``
        (see :meth:`RewardShapingVecEnv.spend_per_episode`; NaN unless ``"proportion"``) and ``history``
        (``(p, mean spend per episode)`` per batch of finished episodes)
    """
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    if venv is not None and game_kwargs:
        raise ValueError("give venv or game_kwargs (the Coin Game's), not both")
    if venv is None:
        venv = CoinGameVecEnv(n_games, obs_format="flat", seed=seed, **(game_kwargs or {}))
    env = RewardShapingVecEnv(venv, kind, p=p, target_budget=target_budget)
    if algo == "dqn":
        hyperparams.setdefault("buffer_size", 100_000)  # SB3's 1M default is far more than 3x3 games need
    model = ALGOS[algo]("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log, **hyperparams)
    callbacks = [ShapingLogCallback(env), CoinMetricsCallback(env.shape[1]), PhaseProgress()]
    model.learn(total_timesteps, callback=callbacks, tb_log_name=f"baseline_{kind}", progress_bar=progress_bar)
    stats = {"kind": kind, "p": env.p, "target_budget": target_budget, "spend_per_episode": env.spend_per_episode(),
             "history": list(env.history)}
    return model, stats


def collect_rollouts(
    responder: Responder,
    principal: Principal,
    core: CoinGameBatch,
    n_episodes: int,
) -> dict[str, np.ndarray]:
    """
    Play ``n_episodes`` rounds of whole episodes in every game of ``core``, with one responder call per step.

    :param responder: the agents, see :mod:`~sb3_contracts.game.responders`
    :param principal: validated principal from :func:`~sb3_contracts.game.coin_agents_view.make_principal`
    :param core: the batch of games (reset here)
    :param n_episodes: rounds
    :return: ``rewards``, ``payments``, ``followed`` ``[T, E, n]`` and ``pick_speed``, ``pick_own_color``
        ``[E, n]``, with ``E = n_episodes * n_games``
    """
    steps: dict[str, list[np.ndarray]] = {"rewards": [], "payments": [], "followed": []}
    episodes: dict[str, list[np.ndarray]] = {"pick_speed": [], "pick_own_color": []}
    for _ in range(n_episodes):
        core.reset()
        rounds: dict[str, list[np.ndarray]] = {key: [] for key in steps}
        for _ in range(core.max_steps):
            agent_obs = core.observe(flat=True)
            contracts = principal(core.global_state(), agent_obs)
            result = settle(core, contracts, np.asarray(responder(agent_obs, contracts, core)))
            for key in rounds:
                rounds[key].append(getattr(result, key))
        for key in steps:
            steps[key].append(np.stack(rounds[key]))
        stats = core.episode_stats()
        for key in episodes:
            episodes[key].append(stats[key])
    return {key: np.concatenate(value, axis=1) for key, value in steps.items()} | {
        key: np.concatenate(value) for key, value in episodes.items()
    }


def evaluate_agents(
    model_or_policy: Any,
    n_games: int = 64,
    n_episodes: int = 1,
    principal: Principal | np.ndarray | None = None,
    seed: int = 0,
    b_max: float = DEFAULT_B_MAX,
    **game_kwargs: Any,
) -> dict[str, float]:
    """
    Roll out agents in the batched Coin Game, optionally under a principal's contracts, and measure them.

    :param model_or_policy: a shared-parameter SB3 model (queried deterministically, one batched ``predict``
        per step; its input includes the contract when it was trained on the agents' view) or any responder
        accepted by :func:`~sb3_contracts.game.responders.make_responder`
    :param n_games: games played in parallel
    :param n_episodes: rounds of ``n_games`` episodes
    :param principal: contracts, as for :class:`~sb3_contracts.game.coin_agents_view.ContractAgentsVecEnv`
    :param seed: seed of the games (and of the scripted responders' tie-breaks)
    :param b_max: the largest payment allowed
    :param game_kwargs: Coin Game arguments (must match those the model was trained on)
    :return: the metrics of :func:`~sb3_contracts.experiments.coin.metrics.rollout_metrics`
    """
    core = CoinGameBatch(n_games=n_games, seed=seed, **game_kwargs)
    offer = make_principal(principal, core.n_games, core.n_agents, b_max)
    rollouts = collect_rollouts(make_responder(model_or_policy), offer, core, n_episodes)
    return rollout_metrics(**rollouts)
