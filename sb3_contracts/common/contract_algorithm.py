"""What the contract learners share (as ``sb3_contrib/common/`` serves its algorithms).

:class:`ContractOffPolicyAlgorithm` is the part of :class:`~sb3_contracts.contract_dqn.ContractDQN` and
:class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` that does not depend on the number of
agents: ε-greedy recommendations on a linear schedule, the nudge ``ξ`` (a float or a schedule, optionally raised
to Proposition 4.1's ``2E`` with ``E`` the agent model's running TD error), hard or soft target copies, the loss
(MSE or Huber) with gradient-norm clipping per network, an exponentially decaying learning rate, the principal's
rollout statistics for TensorBoard (``principal/``) and saving every network with the policy. Each learner adds
its own buffer, rollout and ``train()``, and uses all of this.

A contract policy (see :class:`~sb3_contracts.contract_dqn.ContractDQNPolicy`) exposes ``margin`` (a buffer
holding ``ξ``), ``target_pairs()`` and ``trained_networks()``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule, polyak_update
from torch.nn import functional as F

from sb3_contracts.contracts import nudge_margin

SelfContractAlgorithm = TypeVar("SelfContractAlgorithm", bound="ContractOffPolicyAlgorithm")

LOSSES = ("mse", "huber")


def exponential_schedule(initial_value: float, final_value: float) -> Schedule:
    """
    Exponential interpolation from ``initial_value`` (progress remaining 1) to ``final_value`` (0).

    :param initial_value: value at the start of training (> 0).
    :param final_value: value at the end of training (> 0).
    """
    if initial_value <= 0 or final_value <= 0:
        raise ValueError(f"exponential schedule values must be positive, got {initial_value}, {final_value}")
    ratio = initial_value / final_value

    def schedule(progress_remaining: float) -> float:
        return float(final_value * ratio**progress_remaining)

    return schedule


class ContractOffPolicyAlgorithm(OffPolicyAlgorithm):
    """
    Base of the contract learners (see the module docstring). Subclasses build their buffer and policy in
    ``_setup_model`` (calling :meth:`_setup_contract_learning` at its end), fill ``self._stats`` in
    ``_store_transition``, and implement ``train`` and ``predict_with_recommendation``.

    :param learning_rate_final: if given, the learning rate decays exponentially from ``learning_rate`` (its
        initial value, if a schedule) to this value over training (the paper: 1e-3 → 1e-4).
    :param target_update_interval: env steps between target network updates.
    :param exploration_fraction: fraction of training over which ε decays.
    :param exploration_initial_eps: initial ε of ε-greedy recommendations.
    :param exploration_final_eps: final ε.
    :param nudge: nudge margin ``ξ ≥ 0`` of the offered contracts: a float or a schedule of the progress remaining.
    :param nudge_td_factor: when ``> 0``, ``ξ`` is at least ``nudge_margin(E, nudge_td_factor)`` with ``E`` a
        running mean of the agent model's absolute TD error (Proposition 4.1: ``ξ = 2E``).
    :param double_q: choose the next recommendation with the online principal network (double DQN).
    :param loss: ``"mse"`` or ``"huber"`` (smooth L1) for every Q-network.
    :param max_grad_norm: gradient-norm clipping per network (``None``: none).
    The other arguments are SB3's (:class:`~stable_baselines3.common.off_policy_algorithm.OffPolicyAlgorithm`).
    """

    #: Action spaces of the envs it learns on (the principal's view: contracts).
    _env_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Box,)

    def __init__(
        self,
        policy: Any,
        env: GymEnv | str | None,
        learning_rate: float | Schedule,
        learning_rate_final: float | None,
        buffer_size: int,
        learning_starts: int,
        batch_size: int,
        tau: float,
        gamma: float,
        train_freq: int | tuple[int, str],
        gradient_steps: int,
        target_update_interval: int,
        exploration_fraction: float,
        exploration_initial_eps: float,
        exploration_final_eps: float,
        nudge: float | Schedule,
        nudge_td_factor: float,
        double_q: bool,
        loss: str,
        max_grad_norm: float | None,
        replay_buffer_class: type | None,
        replay_buffer_kwargs: dict[str, Any] | None,
        stats_window_size: int,
        tensorboard_log: str | None,
        policy_kwargs: dict[str, Any] | None,
        verbose: int,
        seed: int | None,
        device: th.device | str,
    ) -> None:
        if learning_rate_final is not None:
            # rl-zoo3 hands floats over as constant schedules: start from the schedule's initial value.
            initial = learning_rate(1.0) if callable(learning_rate) else learning_rate
            learning_rate = exponential_schedule(float(initial), float(learning_rate_final))
        super().__init__(
            policy, env, learning_rate, buffer_size, learning_starts, batch_size, tau, gamma, train_freq,
            gradient_steps, action_noise=None, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, optimize_memory_usage=False, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, device=device,
            seed=seed, sde_support=False, supported_action_spaces=self._env_action_spaces, support_multi_env=True,
        )
        self._check_common_options(loss, nudge, nudge_td_factor, target_update_interval)
        self.learning_rate_final = learning_rate_final
        self.target_update_interval = target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_rate = exploration_initial_eps
        self.nudge = nudge
        self.nudge_td_factor = nudge_td_factor
        self.double_q = double_q
        self.loss = loss
        self.max_grad_norm = max_grad_norm
        self._n_calls = 0
        self._agent_td_error = 0.0

    @staticmethod
    def _check_common_options(loss: str, nudge: float | Schedule, nudge_td_factor: float,
                              target_update_interval: int) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not callable(nudge) and (not np.isfinite(nudge) or nudge < 0):
            raise ValueError(f"nudge must be a finite non-negative float or a schedule, got {nudge!r}")
        if not np.isfinite(nudge_td_factor) or nudge_td_factor < 0:
            raise ValueError(f"nudge_td_factor must be finite and non-negative, got {nudge_td_factor!r}")
        if target_update_interval < 1:
            raise ValueError(f"target_update_interval must be positive, got {target_update_interval!r}")

    def _setup_contract_learning(self) -> None:
        """The shared end of ``_setup_model``: exploration schedule, rollout statistics, nudge."""
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )
        self._reset_rollout_stats()
        self._update_margin()

    def _reset_rollout_stats(self) -> None:
        self._stats = {"payment": 0.0, "gross": 0.0, "followed": 0, "steps": 0}
        self._episode_utilities: deque[float] = deque(maxlen=self._stats_window_size)

    # -- nudge ---------------------------------------------------------------------------------------------

    def current_margin(self) -> float:
        """The nudge ``ξ`` now: the schedule's value, raised to ``nudge_margin(E)`` when tied to the TD error."""
        base = self.nudge(self._current_progress_remaining) if callable(self.nudge) else self.nudge
        if self.nudge_td_factor > 0:
            base = max(base, nudge_margin(self._agent_td_error, self.nudge_td_factor))
        return float(base)

    def _update_margin(self) -> None:
        self.policy.margin.fill_(self.current_margin())

    # -- acting --------------------------------------------------------------------------------------------

    def predict_with_recommendation(self, observation: Any, deterministic: bool = True) -> tuple[Any, Any]:
        """The contracts (the env's action) and the recommendations they implement."""
        raise NotImplementedError

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        The principal's contracts (the env's action). Not deterministic: ε-greedy recommendations.

        :param observation: one observation or a batch.
        :param state: unused (no recurrent policy).
        :param episode_start: unused.
        :param deterministic: greedy contracts.
        :return: ``(contracts, None)``.
        """
        contracts, _ = self.predict_with_recommendation(observation, deterministic)
        return contracts, state

    def predict_recommendation(self, observation: Any, deterministic: bool = True) -> np.ndarray:
        """The recommended actions whose contracts :meth:`predict` offers."""
        return self.predict_with_recommendation(observation, deterministic)[1]

    # -- rollout bookkeeping ---------------------------------------------------------------------------

    def _target_copy_due(self) -> bool:
        """Whether this vec-env step ends a target update interval (checked in ``_on_step``)."""
        return self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0

    def _on_step(self) -> None:
        self._n_calls += 1
        if self._target_copy_due():
            for net, target in self.policy.target_pairs():
                polyak_update(net.parameters(), target.parameters(), self.tau)
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self._update_margin()

    def dump_logs(self) -> None:
        stats = self._stats
        if stats["steps"]:
            self.logger.record("principal/mean_payment", stats["payment"] / stats["steps"])
            self.logger.record("principal/follow_rate", stats["followed"] / stats["steps"])
            if stats["gross"] != 0:
                self.logger.record("principal/payment_share", stats["payment"] / stats["gross"])
        if self._episode_utilities:
            self.logger.record("principal/episode_utility", float(np.mean(self._episode_utilities)))
        self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self.logger.record("agent_model/margin", float(self.policy.margin))
        self._stats = {"payment": 0.0, "gross": 0.0, "followed": 0, "steps": 0}
        super().dump_logs()

    # -- learning ------------------------------------------------------------------------------------------

    def _loss(self, prediction: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None) -> th.Tensor:
        """MSE or Huber, averaged (with per-sample ``weights``: their weighted mean)."""
        if self.loss == "huber":
            losses = F.smooth_l1_loss(prediction, target, reduction="none")
        else:
            losses = F.mse_loss(prediction, target, reduction="none")
        if weights is None:
            return losses.mean()
        return (losses * weights).sum() / weights.sum().clamp(min=1.0)

    def _gradient_step(self, loss: th.Tensor) -> None:
        """One optimiser step on ``loss``, with the gradient norm of each trained network clipped."""
        self.policy.optimizer.zero_grad()
        loss.backward()
        if self.max_grad_norm is not None:
            for net in self.policy.trained_networks():
                th.nn.utils.clip_grad_norm_(net.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()

    def _track_td_error(self, td_error: float) -> None:
        # A slow running mean: the nudge should follow the model's error level, not one batch's noise.
        self._agent_td_error = td_error if self._n_updates == 0 else 0.99 * self._agent_td_error + 0.01 * td_error

    def learn(
        self: SelfContractAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfContractAlgorithm:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name or type(self).__name__, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_stats", "_episode_utilities"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # All networks (online, target, outcome model) and the nudge live in the policy's state dict.
        return ["policy", "policy.optimizer"], []
