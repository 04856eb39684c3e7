"""Exact evaluation of learned principals on tabular principal-agent MDPs.

A learned principal is judged the way the paper judges it: its contract in every state, computed in one
batched forward pass over all states, is paired with the *exact* best-responding agent
(:func:`~sb3_contracts.solvers.best_response`, ties to the recommendation), and compared with the SPE:

* ``utility_ratio``: the principal's value at ``s0`` under that play / the SPE value at ``s0``;
* ``accuracy``: share of decision (non-terminal) states whose recommendation is the SPE's.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from sb3_contracts.envs.checks import check_int, check_real
from sb3_contracts.envs.mdp import PrincipalAgentMDP
from sb3_contracts.game import StateEncoder
from sb3_contracts.solvers import SPESolution, best_response, solve_spe


@dataclass
class PrincipalEvaluation:
    """
    :param utility_ratio: principal value at ``s0`` against the exact agent / SPE value there.
    :param accuracy: share of decision states recommending the SPE action (``nan`` without recommendations).
    :param follow_rate: share of decision states where the exact agent takes the recommendation.
    :param principal_value: the principal's value at ``s0``.
    :param contracts: ``[S, O]`` the contracts evaluated.
    :param recommended: ``[S]`` the recommendations (``None`` for a direct-contract policy).
    """

    utility_ratio: float
    accuracy: float
    follow_rate: float
    principal_value: float
    contracts: np.ndarray
    recommended: np.ndarray | None

    def as_dict(self) -> dict[str, float]:
        return {"utility_ratio": self.utility_ratio, "accuracy": self.accuracy, "follow_rate": self.follow_rate,
                "principal_value": self.principal_value}


def all_state_observations(mdp: PrincipalAgentMDP, encoding: str = "auto") -> np.ndarray:
    """Observations ``[S, dim]`` of every state, in state order."""
    return StateEncoder(mdp, encoding)(np.arange(mdp.n_states))


def evaluate_policy_table(mdp: PrincipalAgentMDP, contracts: np.ndarray, recommended: np.ndarray | None,
                          spe: SPESolution | None = None) -> PrincipalEvaluation:
    """
    Judge a principal policy given as a table against the exact best-responding agent.

    :param mdp: the principal-agent MDP.
    :param contracts: ``[S, O]`` contracts per state.
    :param recommended: ``[S]`` recommended actions, or ``None`` (ties then go to the principal's best).
    :param spe: the MDP's SPE (solved when ``None``; pass it when evaluating repeatedly).
    """
    spe = solve_spe(mdp) if spe is None else spe
    contracts = np.asarray(contracts, dtype=np.float64)
    response = best_response(mdp, contracts, recommended)
    s0, decision = mdp.initial_state, ~mdp.terminal
    optimum = spe.principal_value[s0]
    if optimum == 0:
        raise ValueError("the SPE value at the initial state is 0: the utility ratio is undefined")
    accuracy = follow = float("nan")
    if recommended is not None:
        accuracy = float(np.mean(recommended[decision] == spe.recommended_action[decision]))
        follow = float(np.mean(response.action[decision] == recommended[decision]))
    value = float(response.principal_value[s0])
    return PrincipalEvaluation(value / optimum, accuracy, follow, value, contracts, recommended)


def evaluate_principal(model: Any, mdp: PrincipalAgentMDP, spe: SPESolution | None = None,
                       observations: np.ndarray | None = None) -> PrincipalEvaluation:
    """
    Evaluate a trained principal against the exact agent: ContractDQN (contracts and recommendations from
    ``predict_with_recommendation``) or any SB3 model whose action is the contract (``recommended=None``).

    :param model: the principal.
    :param mdp: the MDP it was trained on.
    :param spe: the MDP's SPE (solved when ``None``).
    :param observations: ``[S, dim]`` observations of all states (one-hot by default).
    """
    observations = all_state_observations(mdp) if observations is None else observations
    if hasattr(model, "predict_with_recommendation"):
        contracts, recommended = model.predict_with_recommendation(observations, deterministic=True)
        recommended = np.asarray(recommended, dtype=np.int64)
    else:
        contracts, _ = model.predict(observations, deterministic=True)
        recommended = None
    return evaluate_policy_table(mdp, contracts, recommended, spe)


class ExactEvaluationCallback(BaseCallback):
    """
    Evaluate the learner against the exact agent every ``eval_freq`` env steps and log
    ``exact/utility_ratio``, ``exact/accuracy`` and ``exact/follow_rate``; ``history`` keeps
    ``(num_timesteps, evaluation)`` pairs (e.g. for the minimum over the end of training).

    :param mdp: the MDP the learner trains on (its SPE is solved once).
    :param eval_freq: env steps between evaluations.
    :param on_evaluation: called with ``(num_timesteps, evaluation)`` after each evaluation (e.g. to report it to
        Ray Tune).
    :param verbose: verbosity.
    """

    def __init__(self, mdp: PrincipalAgentMDP, eval_freq: int = 10_000,
                 on_evaluation: Callable[[int, PrincipalEvaluation], None] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be positive, got {eval_freq!r}")
        self.mdp, self.eval_freq, self.on_evaluation = mdp, eval_freq, on_evaluation
        self.spe = solve_spe(mdp)
        self.observations = all_state_observations(mdp)
        self.history: list[tuple[int, PrincipalEvaluation]] = []
        self._next = eval_freq

    def evaluate(self) -> PrincipalEvaluation:
        result = evaluate_principal(self.model, self.mdp, self.spe, self.observations)
        self.history.append((self.num_timesteps, result))
        for name, value in result.as_dict().items():
            if name != "principal_value" and np.isfinite(value):
                self.logger.record(f"exact/{name}", value)
        if self.on_evaluation is not None:
            self.on_evaluation(self.num_timesteps, result)
        return result

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.eval_freq
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][0] != self.num_timesteps:
            self.evaluate()


class _StepCounter(VecEnvWrapper):
    """Counts the env steps taken through it (every env of every vec step), for an evaluation's budget."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.steps = 0

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        self.steps += self.num_envs
        return self.venv.step_wait()


def make_eval_env(env_id: str, n_envs: int, env_kwargs: dict[str, Any] | None = None) -> VecEnv:
    """
    An evaluation ``VecEnv`` of ``n_envs`` copies of a registered env: for a tabular principal's view (such as
    ``ContractBinaryTree-v0``) its batched :class:`~sb3_contracts.game.PrincipalVecEnv` over the same MDP, payment cap,
    encoding and episode limit (one NumPy batch, and one exact agent for all copies); for any other env SB3's
    ``make_vec_env``.

    :param env_id: the registered id.
    :param n_envs: number of copies.
    :param env_kwargs: the id's keyword arguments.
    """
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_contracts.game import PrincipalEnv, PrincipalVecEnv

    probe = gym.make(env_id, **(env_kwargs or {})).unwrapped
    if isinstance(probe, PrincipalEnv):
        return PrincipalVecEnv(probe.mdp, n_envs=n_envs, b_max=probe.b_max, encoding=probe.encoder.encoding,
                               max_episode_steps=probe.game.max_episode_steps)
    probe.close()
    return make_vec_env(env_id, n_envs=n_envs, env_kwargs=env_kwargs)


class BestPolicyCallback(BaseCallback):
    """
    Keep the best policy by periodic evaluation in rollouts, as SB3's ``EvalCallback`` keeps ``best_model``, made for
    contract learners (a learner's device: one run's result should not depend on where training happens to stop).

    Every ``eval_freq`` env steps from ``start`` on, the current deterministic policy plays ``n_eval_episodes`` episodes
    of ``eval_env``; if its mean return beats every earlier evaluation's, its weights are kept (in memory, and as
    ``best_model.zip`` with ``best_model_save_path``). At the end of training the kept weights are put back into the
    model (``restore_best``), so the model ``learn`` returns is the best evaluated one.

    Two choices make the comparisons between evaluations sharp:

    * **The agent answers the policy being evaluated.** A principal's view that offers ``respond_to_principal`` (the
      tabular views) gets, before each evaluation, the exact agent best-responding to the current policy: the agent
      the learned contracts will face, who deviates wherever they underpay. Any other env keeps its own agents.
    * **Common random numbers.** The env is reseeded with ``eval_seed`` before each evaluation, so every evaluation
      plays the same draws: two policies that act alike on an episode's path score alike on it, and the differences
      between evaluations come from where the policies differ, not from the draws (``None``: fresh draws).

    With ``margins``, each evaluation plays the current weights once per nudge ``ξ`` listed (the margin the contracts
    pay above the agent's indifference, the policy's ``margin``), and the best pair of weights and nudge is kept: a
    larger nudge costs a little on every contract and protects the ones the agent model prices a few thousandths short;
    the evaluation tells which is worth more for these weights. Training keeps its own nudge.

    The evaluation's env steps are counted (``eval_steps``, logged as ``eval/env_steps``): they are part of the run's
    budget. Logged at each evaluation: ``eval/mean_reward`` (the best of its nudges), ``eval/best_mean_reward``,
    ``eval/kept_at`` (the training step of the kept policy) and, with ``margins``, ``eval/kept_margin``.

    :param eval_env: the env of the evaluation episodes (its episodes must end): a ``VecEnv``, or a registered id made
        into ``n_eval_episodes`` copies by :func:`make_eval_env` (so that rl-zoo3's ``callback:`` entry can name it).
    :param env_kwargs: the id's keyword arguments (with an id only).
    :param n_eval_episodes: episodes per evaluation.
    :param eval_freq: env steps of training between evaluations.
    :param start: no evaluation before this many env steps of training.
    :param eval_seed: seed of the env before each evaluation (common random numbers); ``None`` leaves it running.
    :param respond: re-base the env's agent on the current policy before each evaluation (``None``: when the env
        offers ``respond_to_principal``; ``True`` requires it).
    :param restore_best: put the kept weights back into the model at the end of training.
    :param best_model_save_path: folder to save ``best_model.zip`` in at each new best (``None``: memory only).
    :param on_new_best: called with the training step after each new best is kept (the model then holds its weights
        and nudge).
    :param margins: nudges to evaluate the weights with (non-negative; ``None``: the policy's own); needs a policy with
        a ``margin`` buffer (``ContractDQN``, ``MultiAgentContractDQN``).
    :param verbose: verbosity.
    """

    def __init__(self, eval_env: VecEnv | str, n_eval_episodes: int = 128, eval_freq: int = 10_000, start: int = 0,
                 eval_seed: int | None = 0, respond: bool | None = None, restore_best: bool = True,
                 best_model_save_path: str | None = None, on_new_best: Callable[[int], None] | None = None,
                 env_kwargs: dict[str, Any] | None = None, margins: Sequence[float] | None = None,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        if margins is not None:
            if len(margins) == 0:
                raise ValueError("margins must be a non-empty list of finite nudges >= 0, got []")
            margins = [check_real("margins", value, 0.0) for value in margins]
        self.margins = margins
        n_eval_episodes = check_int("n_eval_episodes", n_eval_episodes, 1)
        eval_freq, start = check_int("eval_freq", eval_freq, 1), check_int("start", start, 0)
        if isinstance(eval_env, str):
            eval_env = make_eval_env(eval_env, n_eval_episodes, env_kwargs)
        elif env_kwargs is not None:
            raise ValueError("env_kwargs goes with an eval_env given as a registered id, not with a VecEnv")
        if not isinstance(eval_env, VecEnv):
            raise ValueError(f"eval_env must be an SB3 VecEnv or a registered env id, got {type(eval_env).__name__}")
        offers = hasattr(eval_env.unwrapped, "respond_to_principal")
        if respond and not offers:
            raise ValueError("respond=True needs an eval_env that offers respond_to_principal (a tabular principal's "
                             f"view such as PrincipalVecEnv); {type(eval_env).__name__} does not")
        self.eval_env = _StepCounter(eval_env)
        self.n_eval_episodes, self.eval_freq, self.start = int(n_eval_episodes), int(eval_freq), int(start)
        self.eval_seed, self.respond = eval_seed, offers if respond is None else respond
        self.restore_best, self.best_model_save_path, self.on_new_best = restore_best, best_model_save_path, on_new_best
        self.best_mean_reward = -np.inf
        self.best_state: dict[str, Any] | None = None
        self.kept_at: int | None = None
        self.kept_margin: float | None = None
        self.history: list[dict[str, float]] = []
        self._next = max(self.start, self.eval_freq)

    @property
    def eval_steps(self) -> int:
        """Env steps the evaluations have taken so far."""
        return self.eval_env.steps

    def _init_callback(self) -> None:
        if self.margins is not None and not isinstance(getattr(self.model.policy, "margin", None), th.Tensor):
            raise ValueError(f"margins needs a policy with a margin buffer (the nudge); "
                             f"{type(self.model.policy).__name__} has none")

    def evaluate(self) -> float:
        """
        One evaluation of the current weights, at each nudge of ``margins``; keeps the best pair so far.

        :return: the best mean return of this evaluation
        """
        margin = getattr(self.model.policy, "margin", None)
        training_margin = None if margin is None else margin.clone()
        best = -np.inf
        for value in self.margins or [None]:
            if value is not None:
                margin.fill_(value)
            mean = float(np.mean(self._rollouts()))
            best = max(best, mean)
            used = float("nan") if margin is None else float(margin)
            self.history.append({"steps": self.num_timesteps, "mean_reward": mean, "margin": used})
            if mean > self.best_mean_reward:
                self._keep(mean, used)
        if training_margin is not None:
            margin.copy_(training_margin)
        for name, value in (("mean_reward", best), ("best_mean_reward", self.best_mean_reward),
                            ("kept_at", self.kept_at), ("env_steps", self.eval_steps)):
            self.logger.record(f"eval/{name}", value)
        if self.margins is not None:
            self.logger.record("eval/kept_margin", self.kept_margin)
        return best

    def _rollouts(self) -> list[float]:
        """The returns of the current policy in the evaluation's episodes."""
        if self.respond:
            self.eval_env.env_method("respond_to_principal", self.model.predict_with_recommendation)
        if self.eval_seed is not None:
            self.eval_env.seed(self.eval_seed)
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes,
                                     deterministic=True, return_episode_rewards=True, warn=False)
        return [float(value) for value in returns]

    def _keep(self, mean: float, margin: float) -> None:
        """Keep the model's weights (and nudge) as the best."""
        self.best_mean_reward, self.kept_at, self.kept_margin = mean, self.num_timesteps, margin
        self.best_state = copy.deepcopy(self.model.policy.state_dict())
        if self.best_model_save_path is not None:
            self.model.save(os.path.join(self.best_model_save_path, "best_model"))
        if self.on_new_best is not None:
            self.on_new_best(self.num_timesteps)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            while self._next <= self.num_timesteps:
                self._next += self.eval_freq
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if self.restore_best and self.best_state is not None:
            self.model.policy.load_state_dict(self.best_state)
