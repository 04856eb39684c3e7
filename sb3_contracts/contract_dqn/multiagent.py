"""ContractDQN for many agents: VDN over agents and follow bits (Algorithm 3's training phase, Ivanov et al. 2024).

:class:`MultiAgentContractDQN` is :class:`~sb3_contracts.contract_dqn.ContractDQN` on the Coin Game
(:class:`~sb3_contracts.coin_vec_env.CoinGameVecEnv`: one slot per player per game, agent-centric flat
observations). It reuses the single-agent learner's machinery (optimiser, Huber/MSE loss, gradient clipping,
schedules, nudge, target updates, logging, save/load) and the policy's networks and closed-form minimal
contracts (observed action, so ``O = A`` and a contract pays only on the recommended move). What differs is
written here, top to bottom:

* **Networks** (shared by all agents, on agent-centric observations ``o_i``): the principal's
  ``q_θ(o_i, ·)`` and the selfish agent model ``Q_φ((o_i, f_{-i}), ·)``, whose input also holds the other
  agents' follow bits.
* **Rollouts**: at the start of every episode each game samples follow bits ``f ~ Bernoulli(follow_prob)``
  per agent. Followers play the principal's ε-greedy recommendation; the others play ε-greedy on
  ``Q_φ((o_i, f_{-i}), ·)``. The learner acts for every agent of every game in one batched forward pass.
* **Minimal payment** (observed-action closed form, in torch): ``b_i = max_a Q_φ((o_i, 1), a) -
  Q_φ((o_i, 1), a*_i) + ξ``, i.e. the agent's selfish value when the others follow.
* **Targets** on a batch of joint transitions (one per game)::

      y^p = Σ_i [r_i - α b_i(a_i) + γ (1 - done) q_θ'(o'_i, argmax q_θ(o'_i, ·))]    (VDN: loss on the sums)
      y^a_i = r_i + γ (1 - done) max_a Q_φ'((o'_i, f_{-i}), a)                        (selfish DQN, no payments)

  The principal's value is measured in welfare units, ``q = α x`` (the principal's utility ``welfare/α -
  payments``), which keeps rewards of order 1 for the Huber loss.

Decision beyond the paper: every agent's transition trains the principal, with ``a*_i`` taken to be the
action actually played (the action is observed, so a non-follower's move is the outcome of recommending that
move) and ``b_i`` its minimal payment recomputed with the current agent model. Exploration needs no generous
contracts: the action is observed, so the labels are exact.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.vec_env import VecNormalize

from sb3_contracts.contract_dqn.contract_dqn import ContractDQN
from sb3_contracts.contract_dqn.policies import ContractDQNPolicy
from sb3_contracts.contracts import observed_action_payments

#: Default largest payment per move: the Coin Game's ``DEFAULT_B_MAX`` (two coins' worth).
DEFAULT_B_MAX = 2.0
DEFAULT_ALPHA = 0.1


class MultiAgentReplayBufferSamples(NamedTuple):
    """A batch of joint transitions: ``observations`` ``[B, n, D]``, ``actions``/``rewards``/``follow`` ``[B, n]``."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    follow: th.Tensor


class MultiAgentReplayBuffer(ReplayBuffer):
    """
    SB3's ``ReplayBuffer`` over games: each entry is one game's joint transition (every agent's observation,
    action and own reward) plus the episode's follow bits.

    :param buffer_size: max number of transitions per game slot times games (as in SB3)
    :param observation_space: one agent's observation space ``Box(D)``
    :param n_agents: agents per game
    :param device: torch device of the samples
    :param n_games: games stepped together (SB3's ``n_envs``)
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Box, n_agents: int,
                 device: th.device | str = "auto", n_games: int = 1) -> None:
        joint_obs = spaces.Box(np.repeat(observation_space.low[None], n_agents, 0),
                               np.repeat(observation_space.high[None], n_agents, 0), dtype=np.float32)
        joint_actions = spaces.MultiDiscrete([4] * n_agents)
        super().__init__(buffer_size, joint_obs, joint_actions, device, n_games, handle_timeout_termination=True)
        self.n_agents = n_agents
        self.agent_rewards = np.zeros((self.buffer_size, self.n_envs, n_agents), dtype=np.float32)
        self.follow = np.zeros((self.buffer_size, self.n_envs, n_agents), dtype=np.float32)

    def add_joint(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                  follow: np.ndarray, dones: np.ndarray, truncated: np.ndarray) -> None:
        """
        Store one step of every game.

        :param obs: ``[N, n, D]`` observations
        :param next_obs: ``[N, n, D]`` next observations (the terminal ones where a game ended)
        :param actions: ``[N, n]`` actions taken
        :param rewards: ``[N, n]`` the agents' own game rewards (no payments)
        :param follow: ``[N, n]`` follow bits of the episode
        :param dones: ``[N]`` episode ends
        :param truncated: ``[N]`` ends by time limit (bootstrapped, as SB3 does)
        """
        self.agent_rewards[self.pos] = rewards
        self.follow[self.pos] = follow
        infos = [{"TimeLimit.truncated": bool(flag)} for flag in truncated]
        super().add(obs, next_obs, actions, rewards.sum(axis=1), dones, infos)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None
                     ) -> MultiAgentReplayBufferSamples:
        # SB3's buffers draw from the global NumPy generator, which SB3 seeds.
        games = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        index = (batch_inds, games)
        data = (self.observations[index], self.actions[index].astype(np.int64), self.next_observations[index],
                self.dones[index] * (1 - self.timeouts[index]), self.agent_rewards[index], self.follow[index])
        return MultiAgentReplayBufferSamples(*tuple(map(self.to_torch, data)))


class MultiAgentContractDQNPolicy(ContractDQNPolicy):
    """
    Shared-parameter networks of :class:`MultiAgentContractDQN`: ``q_θ(o_i, ·)`` on an agent's observation
    and ``Q_φ((o_i, f_{-i}), ·)`` on the observation followed by the other agents' follow bits.

    :param observation_space: one agent's observation space ``Box(D)``
    :param action_space: one agent's contract ``Box(0, b_max, (4,))``
    :param lr_schedule: learning-rate schedule
    :param n_agents: agents per game
    :param kwargs: other arguments of :class:`~sb3_contracts.contract_dqn.ContractDQNPolicy` (``net_arch``...)
    """

    def __init__(self, observation_space: spaces.Box, action_space: spaces.Box, lr_schedule: Schedule,
                 n_agents: int = 2, **kwargs: Any) -> None:
        self.n_agents = int(n_agents)
        kwargs.update(n_actions=action_space.shape[0], observed_action=True, factorization="action")
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        # Replace the agent model by one that also reads f_{-i}; the principal's networks stay as built.
        dim = self.observation_space.shape[0] + self.n_agents - 1
        agent_space = spaces.Box(0.0, 1.0, (dim,), dtype=np.float32)
        self.agent_net = self._make_net(self.n_actions, agent_space)
        self.agent_net_target = self._make_net(self.n_actions, agent_space)
        self.agent_net_target.load_state_dict(self.agent_net.state_dict())
        self.agent_net_target.set_training_mode(False)
        trained = [*self.principal_net.parameters(), *self.agent_net.parameters()]
        self.optimizer = self.optimizer_class(trained, lr=lr_schedule(1), **self.optimizer_kwargs)

    @staticmethod
    def with_bits(obs: th.Tensor, others_follow: th.Tensor) -> th.Tensor:
        """The agent model's input: observations ``[B, D]`` and the others' follow bits ``[B, n-1]``."""
        return th.cat([obs, others_follow.to(obs.dtype)], dim=1)

    def following_q(self, obs: th.Tensor, target: bool = False) -> th.Tensor:
        """``Q_φ((o_i, f_{-i} = 1), ·)`` ``[B, A]``: the agent's selfish value when the others follow."""
        ones = th.ones((obs.shape[0], self.n_agents - 1), device=obs.device)
        net = self.agent_net_target if target else self.agent_net
        return net(self.with_bits(obs, ones))

    def following_payments(self, obs: th.Tensor, margin: th.Tensor | float | None = None) -> th.Tensor:
        """
        Payment implementing each move ``[B, A]``: ``max_a Q_φ((o_i, 1), a) - Q_φ((o_i, 1), a*) + ξ``, the
        observed-action closed form with every contract carrying a recommendation
        (:func:`~sb3_contracts.contracts.observed_action_payments` with ``always_recommend=True``).

        :param obs: ``[B, D]`` agent observations
        :param margin: nudge ``ξ`` (the policy's by default), a float or ``[B, 1]``
        """
        margin = self.margin if margin is None else margin
        return observed_action_payments(self.following_q(obs), margin, always_recommend=True)

    def contract_menu(self, obs: th.Tensor, margin: th.Tensor | float | None = None
                      ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        payments = self.following_payments(obs, margin)
        contracts = th.diag_embed(payments)  # contract for a*: its payment on a*, zero on every other move
        return self.principal_net(obs), contracts, th.ones_like(payments, dtype=th.bool)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("n_actions", "observed_action", "factorization", "outcome_model", "outcome_table_rows"):
            data.pop(key)
        data["n_agents"] = self.n_agents
        return data


class MultiAgentContractDQN(ContractDQN):
    """
    The principal's learner for many agents (see the module docstring): VDN over agents, follow bits.

    ``env`` is a :class:`~sb3_contracts.coin_vec_env.CoinGameVecEnv` with ``obs_format="flat"``; SB3's
    timesteps count agent-steps (``n_games * n_agents`` per game step), so ``target_update_interval`` is in
    agent-steps too. ``predict`` takes agent observations ``[B, 4 G G]`` and returns each agent's contract
    ``[B, 4]``, paying ``b_i`` (with the nudge) on the recommended move only. The single-agent arguments
    ``outcome_model``, ``factorization``, ``agent_samples``, ``outcome_probs``, ``n_actions`` and
    ``observed_action`` are fixed by the game.

    :param policy: ``"MlpPolicy"`` or a policy class
    :param env: the Coin Game VecEnv
    :param alpha: weight of welfare against payments: the principal's utility is ``welfare / α - payments``
    :param b_max: the largest payment per move
    :param follow_prob: probability of each follow bit ``f_i = 1`` at the start of an episode
    :param nudge: nudge ``ξ`` added to every minimal payment (needed on 3x3 in the paper)
    :param kwargs: other arguments of :class:`~sb3_contracts.contract_dqn.ContractDQN` (learning rate, buffer,
        exploration, ``loss``, ``max_grad_norm``, ``tensorboard_log``, ``seed``...)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MultiAgentContractDQNPolicy}
    policy: MultiAgentContractDQNPolicy
    replay_buffer: MultiAgentReplayBuffer
    _env_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Discrete,)

    def __init__(self, policy: str | type[MultiAgentContractDQNPolicy], env: GymEnv | None,
                 alpha: float = DEFAULT_ALPHA, b_max: float = DEFAULT_B_MAX, follow_prob: float = 0.5,
                 nudge: float | Schedule = 0.05, loss: str = "huber", exploration_initial_eps: float = 0.4,
                 exploration_margin: float | None = 0.0, _init_setup_model: bool = True, **kwargs: Any) -> None:
        if not np.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
        if not np.isfinite(b_max) or b_max <= 0:
            raise ValueError(f"b_max must be a positive finite number, got {b_max!r}")
        if not 0.0 <= follow_prob <= 1.0:
            raise ValueError(f"follow_prob must be in [0, 1], got {follow_prob!r}")
        if env is not None and not hasattr(env, "core"):
            raise TypeError(f"env must be a CoinGameVecEnv (one slot per player per game), got {type(env).__name__}")
        self.alpha, self.b_max, self.follow_prob = float(alpha), float(b_max), float(follow_prob)
        # a copy: the learner adds its own entries (n_agents...) and the caller's dict may be a shared default
        kwargs["policy_kwargs"] = dict(kwargs.get("policy_kwargs") or {})
        self.n_agents = env.core.n_agents if env is not None else 2
        self.n_games = env.core.n_games if env is not None else 1
        super().__init__(policy, env, nudge=nudge, loss=loss, exploration_initial_eps=exploration_initial_eps,
                         exploration_margin=exploration_margin, factorization="action",
                         _init_setup_model=_init_setup_model, **kwargs)

    @property
    def contract_space(self) -> spaces.Box:
        return spaces.Box(0.0, self.b_max, (self.action_space.n,), dtype=np.float32)

    def _resolve_game(self, n_actions: int | None, observed_action: bool | None,
                      outcome_probs: np.ndarray | None) -> None:
        # The Coin Game fixes everything: 4 observed moves, contracts pay on the move.
        self.n_actions, self.observed_action = int(self.action_space.n), True
        self.policy_kwargs.update(n_agents=self.n_agents)

    def _setup_model(self) -> None:
        self.replay_buffer = MultiAgentReplayBuffer(max(self.buffer_size // self.n_games, 1) * self.n_games,
                                                    self.observation_space, self.n_agents, self.device,
                                                    self.n_games)
        super()._setup_model()
        others = np.array([[j for j in range(self.n_agents) if j != i] for i in range(self.n_agents)])
        self._others = others.reshape(self.n_agents, self.n_agents - 1)
        self._follow = np.zeros((self.n_games, self.n_agents), dtype=np.float32)
        self._resample_follow(np.ones(self.n_games, dtype=bool))

    def _resample_follow(self, games: np.ndarray) -> None:
        # SB3 seeds the global NumPy generator (set_random_seed), so `seed=` reproduces the bits.
        draw = np.random.rand(int(games.sum()), self.n_agents) < self.follow_prob  # noqa: NPY002
        self._follow[games] = draw

    def others_follow(self, follow: np.ndarray | th.Tensor) -> np.ndarray | th.Tensor:
        """``f_{-i}`` for every agent: ``[..., n]`` follow bits → ``[..., n, n-1]``."""
        return follow[..., self._others]

    # -- acting in the training phase -------------------------------------------------------------------

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        rate = 1.0 if self.num_timesteps < learning_starts else self.exploration_rate
        self.policy.set_training_mode(False)
        n_slots = self.n_games * self.n_agents
        obs = th.as_tensor(self._last_obs, device=self.device)
        follow = self._follow.reshape(-1).astype(bool)
        bits = th.as_tensor(self.others_follow(self._follow).reshape(n_slots, -1), device=self.device)
        with th.no_grad():
            recommended = self.policy.principal_net(obs).argmax(dim=1).cpu().numpy()
            selfish = self.policy.agent_net(self.policy.with_bits(obs, bits)).argmax(dim=1).cpu().numpy()
        greedy = np.where(follow, recommended, selfish)
        explore = np.random.rand(n_slots) < rate  # noqa: NPY002
        actions = np.where(explore, np.random.randint(self.n_actions, size=n_slots), greedy)  # noqa: NPY002
        return actions, actions

    def _store_transition(self, replay_buffer: ReplayBuffer, buffer_action: np.ndarray, new_obs: np.ndarray,
                          reward: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        shape = (self.n_games, self.n_agents)
        next_obs = new_obs.copy()
        ended = np.flatnonzero(dones)
        if ended.size:  # once per episode: the auto-reset replaced the last observations
            next_obs[ended] = np.stack([infos[slot]["terminal_observation"] for slot in ended])
        truncated = np.array([infos[slot].get("TimeLimit.truncated", False) for slot in ended], dtype=bool)
        game_dones = dones.reshape(shape)[:, 0]
        game_truncated = np.zeros(self.n_games, dtype=bool)
        game_truncated[ended[::self.n_agents] // self.n_agents] = truncated[::self.n_agents]
        replay_buffer.add_joint(self._last_obs.reshape(*shape, -1), next_obs.reshape(*shape, -1),
                                buffer_action.reshape(shape), reward.reshape(shape), self._follow.copy(),
                                game_dones, game_truncated)
        self._stats["gross"] += float(reward.sum())
        self._stats["followed"] += int(self._follow.sum())
        self._stats["steps"] += reward.size
        if game_dones.any():
            self._resample_follow(game_dones)
        self._last_obs = new_obs

    # -- learning -----------------------------------------------------------------------------------------

    def minimal_payments(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """
        Payment (with the nudge) for each agent to take ``actions``, the others following, capped at ``b_max``.

        :param obs: ``[B, D]`` agent observations
        :param actions: ``[B]`` target moves
        :return: ``[B]`` payments
        """
        payments = self.policy.following_payments(obs)
        return payments[th.arange(actions.shape[0], device=actions.device), actions].clamp(max=self.b_max)

    def _losses(self, data: Any) -> tuple[th.Tensor, th.Tensor, float]:
        policy = self.policy
        batch, n = data.actions.shape
        obs, next_obs = data.observations.reshape(batch * n, -1), data.next_observations.reshape(batch * n, -1)
        actions, rewards = data.actions.reshape(-1), data.rewards.reshape(-1)
        rows = th.arange(batch * n, device=self.device)
        continuation = self.gamma * (1.0 - data.dones).repeat_interleave(n)
        bits = self.others_follow(data.follow).reshape(batch * n, -1)
        with th.no_grad():
            payments = self.minimal_payments(obs, actions)
            next_rec = policy.principal_net(next_obs).argmax(dim=1) if self.double_q else None
            next_q = policy.principal_net_target(next_obs)
            next_value = next_q[rows, next_rec] if next_rec is not None else next_q.max(dim=1).values
            principal_target = (rewards - self.alpha * payments + continuation * next_value).view(batch, n).sum(1)
            next_selfish = policy.agent_net_target(policy.with_bits(next_obs, bits)).max(dim=1).values
            agent_target = rewards + continuation * next_selfish
        principal_pred = policy.principal_net(obs)[rows, actions].view(batch, n).sum(1)
        agent_pred = policy.agent_net(policy.with_bits(obs, bits))[rows, actions]
        td_error = (agent_pred.detach() - agent_target).abs().mean().item()
        return self._loss(principal_pred, principal_target), self._loss(agent_pred, agent_target), td_error

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_follow", "_others"]


def frozen_principal(model: MultiAgentContractDQN) -> Any:
    """
    The principal as a callable of observations only, for the agents' view and validation: built from a frozen
    deep copy of the policy, so later training of ``model`` does not change it, and nothing it returns gives a
    handle on the networks.

    :param model: a trained principal
    :return: ``(global_state [N, 2n, G, G], agent_obs [N, n, D]) -> contracts [N, n, 4]`` (float64), greedy
    """
    policy = copy.deepcopy(model.policy).to("cpu")
    policy.set_training_mode(False)
    for parameter in policy.parameters():
        parameter.requires_grad_(False)
    b_max = float(model.b_max)

    def offer(global_state: np.ndarray, agent_obs: np.ndarray) -> np.ndarray:
        games, agents = agent_obs.shape[:2]
        with th.no_grad():
            _, contracts = policy.recommend_and_contract(th.as_tensor(agent_obs.reshape(games * agents, -1)))
        return np.clip(contracts.numpy().astype(np.float64), 0.0, b_max).reshape(games, agents, -1)

    return offer


def live_principal(model: MultiAgentContractDQN) -> Any:
    """
    Like :func:`frozen_principal` but reading ``model``'s current networks (the meta-algorithm's alternation,
    where the agents must face the principal's latest contracts).

    :param model: the principal being trained
    :return: the callable ``(global_state, agent_obs) -> contracts [N, n, 4]``
    """

    def offer(global_state: np.ndarray, agent_obs: np.ndarray) -> np.ndarray:
        games, agents = agent_obs.shape[:2]
        contracts, _ = model.predict(agent_obs.reshape(games * agents, -1), deterministic=True)
        return np.asarray(contracts, dtype=np.float64).reshape(games, agents, -1)

    return offer
