"""MultiAgentContractDQN: the principal's learner for many agents (Algorithm 3 of Ivanov et al. 2024), an SB3 algorithm.

It learns on a multi-agent principal's view (``ContractCoinGame-v0``): observations ``[n, d]`` (one row per agent),
actions a contract per agent ``[n, A]`` paying on the recommended move (actions are observed), reward ``welfare /
α - payments``. Two networks shared by all agents (see :mod:`~sb3_contracts.contract_dqn_multiagent.policies`):
the principal's ``q_θ(o_i, ·)``, summed over agents (VDN), and the selfish agent model ``Q_φ((o_i, f_{-i}), ·)``.

Training phase of Algorithm 3: during :meth:`learn` the env's agents are :class:`FollowBitAgents` (its pluggable
responder): each episode draws follow bits ``f``; followers take the principal's ε-greedy recommendation, the
others act ε-greedily on ``Q_φ``. On a batch of joint transitions (one per game) the targets are::

    b_i   = max_a Q_φ((o_i, 1), a) - Q_φ((o_i, 1), a_i) + ξ                        (the minimal payment for a_i)
    y^p   = Σ_i [r_i - α b_i + γ (1 - done) q_θ'(o'_i, argmax_a q_θ(o'_i, a))]      (VDN: one loss on the sums)
    y^a_i = r_i + γ (1 - done) max_a Q_φ'((o'_i, f_{-i}), a)                        (selfish DQN, no payments)

The principal's value is measured in welfare units, ``q = α × utility``, which keeps the Huber loss's inputs of
order 1. Decision beyond the paper: every agent's transition trains the principal, with ``a*_i`` the move actually
played (the move is observed, so a non-follower's move is the outcome of recommending it) and ``b_i`` its minimal
payment recomputed with the current agent model. Exploration needs no generous contracts: the labels are exact.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnvWrapper

from sb3_contracts.common.contract_algorithm import ContractOffPolicyAlgorithm, registered_id
from sb3_contracts.common.vec_env import make_batched_vec_env
from sb3_contracts.contract_dqn_multiagent.agents import FollowBitAgents, others_follow
from sb3_contracts.contract_dqn_multiagent.buffers import MultiAgentPrioritizedReplayBuffer, MultiAgentReplayBuffer
from sb3_contracts.contract_dqn_multiagent.policies import MlpPolicy, MultiAgentContractDQNPolicy
from sb3_contracts.contract_dqn_multiagent.presets import DEFAULT_NUDGE, POLICY_KWARGS, env_preset
from sb3_contracts.contracts import DEFAULT_ALPHA
from sb3_contracts.envs.checks import check_real


class MultiAgentContractDQN(ContractOffPolicyAlgorithm):
    """
    The principal's learner for many agents (see the module docstring): VDN over agents, follow bits.

    :param policy: ``"MlpPolicy"`` or a policy class
    :param env: the principal's view: a registered id (e.g. ``"ContractCoinGame-v0"``; the learner builds the
        batched VecEnv registered with it, ``n_envs`` games, with ``env_kwargs``), a VecEnv of it (e.g. from
        ``make_vec_env``; in-process only, since the training agents read the learner's live networks) or an env
    :param learning_rate: learning rate (constant or schedule of the progress remaining)
    :param learning_rate_final: exponential decay of the learning rate to this value (``None``: constant)
    :param buffer_size: replay buffer size (joint transitions)
    :param learning_starts: env steps (game steps) of random recommendations before learning
    :param batch_size: minibatch size (joint transitions)
    :param tau: target update coefficient (1: hard copy)
    :param gamma: discount factor
    :param train_freq: update every ``train_freq`` vec-env steps
    :param gradient_steps: gradient steps per update
    :param target_update_interval: env steps between target network updates
    :param exploration_fraction: fraction of training over which ε decays
    :param exploration_initial_eps: initial ε (recommendations and the non-followers' moves)
    :param exploration_final_eps: final ε
    :param nudge: nudge ``ξ`` added to every minimal payment (float or schedule); by default the env's preset
        (:data:`~sb3_contracts.contract_dqn_multiagent.presets.ENV_PRESETS`, by registered id), else 0.05
    :param nudge_td_factor: raise ``ξ`` to ``nudge_margin(E, factor)`` with ``E`` the agent model's TD error
    :param double_q: choose ``a*'`` with the online principal network
    :param loss: ``"huber"`` (default, as the public reproduction needed) or ``"mse"``
    :param max_grad_norm: gradient-norm clipping per network
    :param alpha: weight of welfare against payments: the principal's utility is ``welfare / α - payments``; by
        default the env's own ``alpha`` (else 0.1, the paper's)
    :param follow_prob: probability of each follow bit ``f_i = 1`` at the start of an episode
    :param n_envs: games stepped together when ``env`` is an id
    :param env_kwargs: arguments of the env when ``env`` is an id
    :param replay_buffer_class: :class:`MultiAgentReplayBuffer` (uniform, the default) or
        :class:`MultiAgentPrioritizedReplayBuffer` (the paper's: sampled by the principal's TD error, losses weighted
        by the importance-sampling weights)
    :param replay_buffer_kwargs: extra arguments of the replay buffer
    :param stats_window_size: episodes averaged in the rollout statistics
    :param tensorboard_log: TensorBoard log directory
    :param policy_kwargs: arguments of the policy (``net_arch``, ``features_extractor_class``...); by default the
        env's preset, else two hidden layers of 64 with fused Adam
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param torch_threads: torch threads while learning (restored after); small networks train fastest on one, and
        on a busy machine more threads slow them down (``None``: torch's own setting)
    :param _init_setup_model: build the networks at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: MultiAgentContractDQNPolicy
    replay_buffer: MultiAgentReplayBuffer
    _contract_rank = 2
    _env_kind = ("a many-agent contract env (action space Box[n_agents, n_actions]: a contract per agent, e.g. "
                 "ContractCoinGame-v0)")
    _other_learner = "ContractDQN"

    def __init__(
        self,
        policy: str | type[MultiAgentContractDQNPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 5e-4,
        learning_rate_final: float | None = 1e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 128,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        target_update_interval: int = 2_000,
        exploration_fraction: float = 1.0,
        exploration_initial_eps: float = 0.4,
        exploration_final_eps: float = 0.0,
        nudge: float | Schedule | None = None,
        nudge_td_factor: float = 0.0,
        double_q: bool = True,
        loss: str = "huber",
        max_grad_norm: float | None = 10.0,
        alpha: float | None = None,
        follow_prob: float = 0.5,
        n_envs: int = 16,
        env_kwargs: dict[str, Any] | None = None,
        replay_buffer_class: type[MultiAgentReplayBuffer | MultiAgentPrioritizedReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        torch_threads: int | None = 1,
        _init_setup_model: bool = True,
    ) -> None:
        if alpha is not None:
            check_real("alpha", alpha, 0.0, low_open=True)
        check_real("follow_prob", follow_prob, 0.0, 1.0)
        preset = env_preset(registered_id(env))
        if nudge is None:
            nudge = preset.get("nudge", DEFAULT_NUDGE)
        if policy_kwargs is None:
            policy_kwargs = preset.get("policy_kwargs", copy.deepcopy(POLICY_KWARGS))
        if isinstance(env, str):
            env = make_batched_vec_env(env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
        super().__init__(
            policy, env, learning_rate, learning_rate_final=learning_rate_final, buffer_size=buffer_size,
            learning_starts=learning_starts, batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq,
            gradient_steps=gradient_steps, target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction, exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps, nudge=nudge, nudge_td_factor=nudge_td_factor,
            double_q=double_q, loss=loss, max_grad_norm=max_grad_norm,
            replay_buffer_class=replay_buffer_class or MultiAgentReplayBuffer,
            replay_buffer_kwargs=replay_buffer_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
            torch_threads=torch_threads,
        )
        self.alpha = float(self._env_alpha() if alpha is None else alpha)
        self.follow_prob = float(follow_prob)
        self._env_responders: list[Any] | None = None  # the env's own agents while learn() has plugged in its own
        if _init_setup_model:
            self._setup_model()

    def _env_alpha(self) -> float:
        """The env's own weight of welfare (its reward is ``welfare / alpha - payments``), else the paper's 0.1."""
        if self.env is not None:
            try:
                return float(self.env.get_attr("alpha", indices=[0])[0])
            except AttributeError:
                pass
        return DEFAULT_ALPHA

    def _setup_model(self) -> None:
        super()._setup_model()
        self.training_agents = FollowBitAgents(self, self.follow_prob)

    # -- the env's agents during learn() ---------------------------------------------------------------

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True,
                     tb_log_name: str = "run", progress_bar: bool = False) -> tuple[int, BaseCallback]:
        # Before SB3 resets the env, so that the reset starts the training agents' episodes (new follow bits).
        self._plug_training_agents()
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def _plug_training_agents(self) -> None:
        """Make the training agents the env's agents (:meth:`_end_learn` puts the env's own back)."""
        env = self.env
        if env is None:
            raise ValueError("learn() needs an env: pass one at creation or with set_env()")
        inner = env
        while isinstance(inner, VecEnvWrapper):
            inner = inner.venv
        if isinstance(inner, SubprocVecEnv):
            raise TypeError("MultiAgentContractDQN needs in-process envs (the batched VecEnv or a DummyVecEnv): "
                            "its training agents read the learner's live networks")
        if self._env_responders is None:
            self._env_responders = env.get_attr("responder")
        env.env_method("set_responder", self.training_agents)

    def _end_learn(self) -> None:
        super()._end_learn()
        if self._env_responders is not None and self.env is not None:
            for index, agents in enumerate(self._env_responders):
                self.env.env_method("set_responder", agents, indices=[index])
        self._env_responders = None

    # -- acting ---------------------------------------------------------------------------------------

    def _recommend(self, obs: th.Tensor, exploration_rate: float) -> tuple[np.ndarray, np.ndarray]:
        """ε-greedy recommendations ``[B, n]`` and their contracts ``[B, n, A]`` (float32)."""
        batch = obs.shape[0]
        explore = random_actions = None
        n_agents, n_actions = self.action_space.shape
        if exploration_rate > 0:
            # SB3 seeds the global NumPy generator (set_random_seed), so `seed=` reproduces exploration.
            explore = th.as_tensor(np.random.rand(batch, n_agents) < exploration_rate,  # noqa: NPY002
                                   device=self.device)
            random_actions = th.as_tensor(np.random.randint(n_actions, size=(batch, n_agents)),  # noqa: NPY002
                                          device=self.device)
        with th.no_grad():
            recommendation, contracts = self.policy.recommend_and_contract(obs, explore, random_actions)
        return recommendation.cpu().numpy(), contracts.cpu().numpy().astype(np.float32)

    def predict_with_recommendation(self, observation: np.ndarray, deterministic: bool = True
                                    ) -> tuple[np.ndarray, np.ndarray]:
        """
        Every agent's contract and recommendation.

        :param observation: ``[n, d]`` or a batch ``[B, n, d]``
        :param deterministic: greedy; otherwise ε-greedy recommendations
        :return: ``(contracts [B, n, A], recommendations [B, n])`` (without the batch axis for one observation)
        """
        self.policy.set_training_mode(False)
        obs, vectorized = self.policy.obs_to_tensor(observation)
        recommendations, contracts = self._recommend(obs, 0.0 if deterministic else self.exploration_rate)
        if not vectorized:
            return contracts[0], recommendations[0]
        return contracts, recommendations

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        rate = 1.0 if self.num_timesteps < learning_starts else self.exploration_rate
        self.policy.set_training_mode(False)
        _, contracts = self._recommend(th.as_tensor(self._last_obs, device=self.device), rate)
        return contracts, contracts

    # -- rollout bookkeeping --------------------------------------------------------------------------

    def _store_transition(self, replay_buffer: ReplayBuffer, buffer_action: np.ndarray, new_obs: np.ndarray,
                          reward: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        followed = np.stack([i["followed"] for i in infos])
        stats = self._stats
        stats["payment"] += float(sum(i["payments"].sum() for i in infos))
        stats["gross"] += float(np.stack([i["agent_rewards"] for i in infos]).sum())
        stats["followed"] += int((followed == 1).sum())
        stats["steps"] += int((followed >= 0).sum())
        self._episode_utilities.extend(i["episode"]["r"] for i in infos if "episode" in i)
        # The buffer stores the moves played (a follower's is its recommendation): known only after the step.
        moves = np.stack([i["actions"] for i in infos])
        super()._store_transition(replay_buffer, moves, new_obs, reward, dones, infos)

    # -- learning -------------------------------------------------------------------------------------

    def train(self, gradient_steps: int, batch_size: int = 128) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        policy, gamma, alpha = self.policy, self.gamma, self.alpha
        prioritized = isinstance(self.replay_buffer, MultiAgentPrioritizedReplayBuffer)
        if prioritized:
            # The last rollout may end past total_timesteps (whole vec-env steps): SB3's progress then dips below 0.
            self.replay_buffer.set_progress_remaining(max(self._current_progress_remaining, 0.0))
        losses, td_errors = [], []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size)
            batch, n = data.actions.shape
            rows = th.arange(batch * n, device=self.device)
            obs, next_obs = data.observations.reshape(batch * n, -1), data.next_observations.reshape(batch * n, -1)
            actions, rewards = data.actions.reshape(-1), data.rewards.reshape(-1)
            bits = others_follow(data.follow).reshape(batch * n, -1)
            continuation = gamma * (1.0 - data.dones).repeat_interleave(n)
            with th.no_grad():
                # b_i: the minimal payment for the move agent i took (the others following), capped at b_max
                cap = policy.b_max[rows % n, actions]
                payments = th.minimum(policy.following_payments(obs)[rows, actions], cap)
                next_q = policy.principal_net_target(next_obs)
                if self.double_q:
                    next_value = next_q[rows, policy.principal_net(next_obs).argmax(dim=1)]
                else:
                    next_value = next_q.max(dim=1).values
                # VDN: y^p = Σ_i [r_i - α b_i + γ (1 - done) q_θ'(o'_i, a*'_i)]
                y_p = (rewards - alpha * payments + continuation * next_value).view(batch, n).sum(dim=1)
                # selfish DQN: y^a_i = r_i + γ (1 - done) max_a Q_φ'((o'_i, f_{-i}), a)
                next_selfish = policy.agent_net_target(policy.with_bits(next_obs, bits)).max(dim=1).values
                y_a = rewards + continuation * next_selfish
            principal_pred = policy.principal_net(obs)[rows, actions].view(batch, n).sum(dim=1)
            agent_pred = policy.agent_net(policy.with_bits(obs, bits))[rows, actions]
            # importance-sampling weights of prioritized replay (per game; each agent's row shares its game's)
            weights = data.weights
            agent_weights = None if weights is None else weights.repeat_interleave(n)
            principal_loss = self._loss(principal_pred, y_p, importance=weights)
            agent_loss = self._loss(agent_pred, y_a, importance=agent_weights)
            self._gradient_step(principal_loss + agent_loss,
                                {"the principal network": principal_loss, "the agent model": agent_loss})
            if prioritized:
                self.replay_buffer.update_priorities(data.leaf_nodes_indices, (principal_pred - y_p).detach())
            td_errors.append((agent_pred.detach() - y_a).abs().mean().item())
            self._track_td_error(td_errors[-1])
            self._n_updates += 1
            losses.append((principal_loss.item(), agent_loss.item()))
        self._update_margin()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/principal_loss", float(np.mean([p for p, _ in losses])))
        self.logger.record("train/agent_loss", float(np.mean([a for _, a in losses])))
        self.logger.record("agent_model/td_error", float(np.mean(td_errors)))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "training_agents", "_env_responders"]
