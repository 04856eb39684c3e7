"""What the contract learners share (as ``sb3_contrib/common/`` serves its algorithms).

:class:`ContractOffPolicyAlgorithm` is the part of :class:`~sb3_contracts.contract_dqn.ContractDQN` and
:class:`~sb3_contracts.contract_dqn_multiagent.MultiAgentContractDQN` that does not depend on the number of
agents: ε-greedy recommendations on a linear schedule, the nudge ``ξ`` (a float or a schedule, optionally raised
to Proposition 4.1's ``2E`` with ``E`` the agent model's running TD error), hard or soft target copies, the loss
(MSE or Huber) with gradient-norm clipping per network, an exponentially decaying learning rate, the principal's
rollout statistics for TensorBoard (``principal/``) and saving every network with the policy. Each learner adds
its own buffer, rollout and ``train()``, and uses all of this. Every override of SB3 here calls ``super()``.

A contract policy (see :class:`~sb3_contracts.contract_dqn.ContractDQNPolicy`) exposes ``margin`` (a buffer
holding ``ξ``), ``target_pairs()`` and ``trained_networks()``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule, polyak_update
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_contracts.common.safe_load import SAFE_KEY, ExponentialSchedule, describe, safe_replacements
from sb3_contracts.contracts import nudge_margin
from sb3_contracts.envs.checks import check_choice, check_int, check_real

SelfContractAlgorithm = TypeVar("SelfContractAlgorithm", bound="ContractOffPolicyAlgorithm")

LOSSES = ("mse", "huber")
#: The units of ``train_freq = (n, unit)`` SB3 knows.
TRAIN_FREQ_UNITS = ("step", "episode")


def exponential_schedule(initial_value: float, final_value: float) -> Schedule:
    """
    Exponential interpolation from ``initial_value`` (progress remaining 1) to ``final_value`` (0).

    :param initial_value: value at the start of training (> 0).
    :param final_value: value at the end of training (> 0).
    """
    return ExponentialSchedule(initial_value, final_value)


def registered_id(env: GymEnv | str | None) -> str | None:
    """
    The registered id of an env: the id itself, a Gymnasium env's or a VecEnv's first env's spec (``None``
    without one).

    :param env: an id, an env or a VecEnv
    """
    if env is None or isinstance(env, str):
        return env
    if isinstance(env, VecEnv):
        try:
            spec = env.get_attr("spec", indices=[0])[0]
        except AttributeError:
            spec = None
    else:
        spec = getattr(env, "spec", None)
    return None if spec is None else spec.id


def env_name(env: VecEnv | None) -> str:
    """The registered id of a VecEnv's envs if they have one, else the VecEnv's class name (for error messages)."""
    if env is None:
        return "no env"
    return registered_id(env) or type(env).__name__


class ContractOffPolicyAlgorithm(OffPolicyAlgorithm):
    """
    Base of the contract learners (see the module docstring). Subclasses give SB3 a replay buffer class that takes
    the env's action space (the contracts) and stores what the learner trains on, fill ``self._stats`` in
    ``_store_transition``, and implement ``train`` and ``predict_with_recommendation``. What ``_setup_learn`` changes
    in the training env (its agents during training), :meth:`_end_learn` undoes.

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
    The other arguments are SB3's (:class:`~stable_baselines3.common.off_policy_algorithm.OffPolicyAlgorithm`); all
    but the first three are keyword-only, and each learner chooses the learning ones (no defaults here).
    """

    #: What the learner needs of its env, for the error naming what it got instead: the rank of the env's action
    #: space (the contracts: a ``Box``), its description and the learner for the other kind.
    _contract_rank: ClassVar[int]
    _env_kind: ClassVar[str]
    _other_learner: ClassVar[str]

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule,
        *,
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
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        torch_threads: int | None = 1,
    ) -> None:
        if torch_threads is not None:
            check_int("torch_threads", torch_threads, 1)
        self._check_sb3_options(
            learning_rate=learning_rate, learning_rate_final=learning_rate_final, buffer_size=buffer_size,
            learning_starts=learning_starts, batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq,
            gradient_steps=gradient_steps,
            exploration_fraction=exploration_fraction, exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps, max_grad_norm=max_grad_norm,
        )
        if learning_rate_final is not None:
            # rl-zoo3 hands floats over as constant schedules: start from the schedule's initial value.
            initial = learning_rate(1.0) if callable(learning_rate) else learning_rate
            learning_rate = exponential_schedule(float(initial), float(learning_rate_final))
        super().__init__(
            policy, env, learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            action_noise=None, replay_buffer_class=replay_buffer_class, replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=False, policy_kwargs=policy_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, verbose=verbose, device=device, seed=seed, sde_support=False,
            supported_action_spaces=None, support_multi_env=True,  # checked below, with a clearer error
        )
        if self.env is not None:
            self._check_env_kind()
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
        self.torch_threads = torch_threads
        self._n_calls = 0
        self._agent_td_error = 0.0

    @staticmethod
    def _check_sb3_options(*, learning_rate: Any, learning_rate_final: Any, buffer_size: Any, learning_starts: Any,
                           batch_size: Any, tau: Any, gamma: Any, train_freq: Any, gradient_steps: Any,
                           exploration_fraction: Any, exploration_initial_eps: Any, exploration_final_eps: Any,
                           max_grad_norm: Any) -> None:
        """The options SB3 leaves unchecked or only asserts on (mid-``learn``), checked before anything is built."""
        if not callable(learning_rate):
            check_real("learning_rate", learning_rate, 0.0, low_open=True)
        if learning_rate_final is not None:
            check_real("learning_rate_final", learning_rate_final, 0.0, low_open=True)
        check_int("buffer_size", buffer_size, 1)
        check_int("learning_starts", learning_starts, 0)
        check_int("batch_size", batch_size, 1)
        check_real("tau", tau, 0.0, 1.0, low_open=True)
        check_real("gamma", gamma, 0.0, 1.0)
        if isinstance(train_freq, tuple) and len(train_freq) != 2:
            raise ValueError(f"train_freq must be an integer or a tuple (n, 'step' or 'episode'), got {train_freq!r}")
        frequency, unit = train_freq if isinstance(train_freq, tuple) else (train_freq, "step")
        check_int("train_freq", frequency, 1)
        check_choice("train_freq's unit", unit, TRAIN_FREQ_UNITS)
        if check_int("gradient_steps", gradient_steps, -1) == 0:
            raise ValueError("gradient_steps must be positive or -1 (as many as env steps collected), got 0")
        for name, value in (("exploration_fraction", exploration_fraction),
                            ("exploration_initial_eps", exploration_initial_eps),
                            ("exploration_final_eps", exploration_final_eps)):
            check_real(name, value, 0.0, 1.0)
        if max_grad_norm is not None:
            check_real("max_grad_norm", max_grad_norm, 0.0, low_open=True)

    def _check_env_kind(self) -> None:
        """Refuse an env of the other kind (e.g. the Coin Game for a one-agent learner), naming both learners."""
        space = self.action_space
        if isinstance(space, spaces.Box) and len(space.shape) == self._contract_rank:
            return
        if isinstance(space, spaces.Box) and len(space.shape) == 3 - self._contract_rank:
            got, advice = f"Box{space.shape}", f"use {self._other_learner}"
        else:  # not contracts at all, e.g. an agent's view
            got, advice = str(space), "an env whose actions are moves is for SB3's own algorithms (DQN, PPO...)"
        raise ValueError(f"{type(self).__name__} needs {self._env_kind}, got {env_name(self.env)} with action "
                         f"space {got}: {advice}")

    @staticmethod
    def _check_common_options(loss: str, nudge: float | Schedule, nudge_td_factor: float,
                              target_update_interval: int) -> None:
        check_choice("loss", loss, LOSSES)
        if not callable(nudge):
            check_real("nudge", nudge, 0.0)
        check_real("nudge_td_factor", nudge_td_factor, 0.0)
        check_int("target_update_interval", target_update_interval, 1)

    def _setup_model(self) -> None:
        """SB3's setup (seeds, buffer, policy), then the exploration schedule, rollout statistics and nudge."""
        super()._setup_model()
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
        if callable(self.nudge) and not (np.isfinite(base) and base >= 0):
            raise ValueError(f"nudge: the schedule gave {base!r} at progress remaining "
                             f"{self._current_progress_remaining:.3f}; the margin must be finite and non-negative")
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

    def _loss(self, prediction: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None,
              importance: th.Tensor | None = None) -> th.Tensor:
        """
        MSE or Huber, averaged: over the samples with ``weights`` > 0 (a 0/1 mask of usable samples: their
        weighted mean), each scaled by its importance-sampling weight ``importance`` (prioritized replay).
        """
        if self.loss == "huber":
            losses = F.smooth_l1_loss(prediction, target, reduction="none")
        else:
            losses = F.mse_loss(prediction, target, reduction="none")
        if importance is not None:
            losses = losses * importance.reshape(losses.shape)
        if weights is None:
            return losses.mean()
        return (losses * weights).sum() / weights.sum().clamp(min=1.0)

    def _gradient_step(self, loss: th.Tensor, parts: dict[str, th.Tensor] | None = None) -> None:
        """
        One optimiser step on ``loss``, with the gradient norm of each trained network clipped. A non-finite loss
        stops training with an error naming the update and, given ``parts`` (the loss of each network), the
        network: a diverged learner must not go on to offer contracts computed from NaN.
        """
        if not th.isfinite(loss):
            broken = [name for name, part in (parts or {}).items() if not th.isfinite(part)] or ["the total"]
            raise FloatingPointError(
                f"{type(self).__name__} diverged at update {self._n_updates} (after {self.num_timesteps} env steps): "
                f"the loss of {', '.join(broken)} is not finite; lower the learning rate, clip gradients "
                f"(max_grad_norm) or check the env's rewards")
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
        """
        SB3's ``learn`` on ``torch_threads`` torch threads (torch's own setting is restored after), then
        :meth:`_end_learn` however it ends.

        :param total_timesteps: env steps to train on (at least 1)
        :param callback: SB3 callback(s) called at every step
        :param log_interval: episodes between two log dumps
        :param tb_log_name: TensorBoard run name (default: the class's name)
        :param reset_num_timesteps: start counting env steps from 0 (``False``: continue, e.g. alternating learners)
        :param progress_bar: show SB3's progress bar
        """
        check_int("total_timesteps", total_timesteps, 1)
        threads = th.get_num_threads()
        # getattr: models saved before the option existed load without it
        if getattr(self, "torch_threads", None) is not None:
            th.set_num_threads(self.torch_threads)
        try:
            return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                                 tb_log_name=tb_log_name or type(self).__name__,
                                 reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)
        finally:
            th.set_num_threads(threads)
            self._end_learn()

    def _end_learn(self) -> None:
        """Undo what ``_setup_learn`` changed in the training env (e.g. the agents it plugged in)."""

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_stats", "_episode_utilities"]

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        """SB3's ``save``, plus a plain description of the pickled attributes so that :meth:`load` runs no code."""
        excluded = set(exclude or ()) | set(self._excluded_save_params()) | {
            name.split(".")[0] for name in self._get_torch_save_params()[0]}
        setattr(self, SAFE_KEY, describe(self, excluded))
        try:
            super().save(path, exclude, include)
        finally:
            delattr(self, SAFE_KEY)

    @classmethod
    def load(cls, path: Any, env: GymEnv | None = None, device: th.device | str = "auto",
             custom_objects: dict[str, Any] | None = None, print_system_info: bool = False,
             force_reset: bool = True, trusted: bool = False, **kwargs: Any) -> Any:
        """
        SB3's ``load``, without unpickling unless ``trusted``: the file's pickled attributes are rebuilt from the
        plain description saved with them (classes only from trusted packages). A file that needs unpickling (saved
        by another library, or holding e.g. a lambda) is refused with the entries named.

        :param path: the model file
        :param env: the env to run it on
        :param device: torch device
        :param custom_objects: replacements for saved attributes
        :param print_system_info: print the saved and current system info
        :param force_reset: reset the env before the next ``learn``
        :param trusted: allow unpickling (runs code from the file: only for files you trust)
        :param kwargs: attributes to set on the loaded model
        """
        if not trusted:
            custom_objects = safe_replacements(path, cls, custom_objects)
        model = super().load(path, env=env, device=device, custom_objects=custom_objects,
                             print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        model.__dict__.pop(SAFE_KEY, None)
        return model

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # All networks (online, target, outcome model) and the nudge live in the policy's state dict.
        return ["policy", "policy.optimizer"], []
