"""ContractDQN: the principal's deep contract learner (Algorithm 2 of Ivanov et al. 2024) as an SB3 algorithm.

The principal learns two Q-functions off-policy from the same replay buffer (each with a target copy):

* its contractual Q over recommended actions, ``q_θ(s, a*)``;
* a model of the agent's truncated Q, ``Q̄_φ(s, a)`` (the agent's value without this step's payment).

Knowing ``Q̄_φ(s, ·)`` and the outcome model ``𝒪(s, ·)``, the minimal contract ``b*(s, a*)`` that makes
``a*`` the agent's best reply is a closed form, computed in batch by
:func:`~sb3_contracts.contracts.minimal_contracts_torch`. The principal acts by offering
``b*(s, argmax_{a*} q_θ(s, a*))``. On a batch ``(s, a*, o, r(s, a), r^p(s, o), done, s')`` the targets are::

    a*' = argmax q_θ(s', ·)                    (double DQN; argmax q_θ'(s', ·) without it)
    b   = b*(s, a* | Q̄_φ(s, ·)),   b' = b*(s', a*' | Q̄_φ'(s', ·))
    y^p = r^p(s, o) - E_{o~𝒪(s,a*)} b(o) + γ (1 - done) q_θ'(s', a*')
    y^a = r(s, a) + γ (1 - done) [E_{o'~𝒪(s',a*')} b'(o') + Q̄_φ'(s', a*')]

Decisions beyond the paper (measured in the README's ContractDQN section):

* The payment term of ``y^p`` is the expected payment of the contract under ``𝒪(s, a*)`` rather than the
  sampled ``b(o)``: same expectation, less variance.
* ``b'`` comes from the agent model's target network, so ``E b' + Q̄_φ'(s', a*') = max_a Q̄_φ'(s', a)``
  (plus the nudge) as in the equilibrium: the agent's continuation is consistent with one network.
* Exploration recommends a random action and offers a *generous* contract for it (the minimal contract
  with ``exploration_margin`` extra, capped at ``b_max``): the agent then really takes the recommended
  action, so the ``(s, a*)`` samples used to learn ``Q̄_φ`` and ``𝒪`` are what they claim to be. With
  underpaying contracts a hidden-action agent deviates, and learning ``Q̄_φ(s, a*)`` from the deviation's
  reward is self-confirming (the model learns that ``a*`` is cheap, so it keeps underpaying).
* ``training_agent="follow"`` trains as the paper does: the training env's agent takes every recommendation,
  so every transition's action label is known (not only the exploratory ones), and the agent in the loop knows
  nothing of the equilibrium. The learned contracts are judged against an agent best-responding to them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import SubprocVecEnv
from torch.nn import functional as F

from sb3_contracts.common.contract_algorithm import ContractOffPolicyAlgorithm, env_name
from sb3_contracts.contract_dqn.buffers import ContractReplayBuffer, ContractReplayBufferSamples
from sb3_contracts.contract_dqn.policies import (
    OUTCOME_MODELS,
    CnnPolicy,
    ContractDQNPolicy,
    MlpPolicy,
    MultiInputPolicy,
)

AGENT_SAMPLES = ("auto", "trusted", "all")
#: Who plays the agent in the training env: its own embedded agent, one that follows the recommendations, or the
#: exact agent best-responding to the learner's current policy.
TRAINING_AGENTS = (None, "follow", "best_response")


def _concat_obs(first: th.Tensor | dict[str, th.Tensor], second: th.Tensor | dict[str, th.Tensor]
                ) -> th.Tensor | dict[str, th.Tensor]:
    if isinstance(first, dict):
        return {key: th.cat([first[key], second[key]]) for key in first}
    return th.cat([first, second])


class ContractDQN(ContractOffPolicyAlgorithm):
    """
    The principal's deep contract learner: DQN over recommended actions with minimal contracts.

    Works on any principal-view env (:class:`~sb3_contracts.game.PrincipalEnv`,
    :class:`~sb3_contracts.game.PrincipalVecEnv`, ``ContractBinaryTree-v0``): action = contract
    ``Box(0, b_max, (O,))``, ``info`` with ``outcome``, ``payment``, ``agent_reward`` and, for the known
    outcome model, ``outcome_probs`` / ``next_outcome_probs``. ``predict`` returns contracts;
    :meth:`predict_recommendation` the recommended actions.

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class.
    :param env: the principal's env (or its registered id).
    :param learning_rate: learning rate (constant or schedule of the progress remaining).
    :param learning_rate_final: if given, the learning rate decays exponentially from ``learning_rate`` (its
        initial value, if a schedule) to this value over training (the paper: 1e-3 → 1e-4).
    :param buffer_size: replay buffer size (transitions).
    :param learning_starts: env steps of random recommendations before learning.
    :param batch_size: minibatch size.
    :param tau: target update coefficient (1: hard copy).
    :param gamma: discount factor (the MDP's ``gamma``: 1 for the finite trees).
    :param train_freq: update every ``train_freq`` vec-env steps (or ``(n, "episode")``).
    :param gradient_steps: gradient steps per update (-1: as many as env steps collected).
    :param target_update_interval: env steps between target network updates.
    :param exploration_fraction: fraction of training over which ε decays.
    :param exploration_initial_eps: initial ε of ε-greedy recommendations.
    :param exploration_final_eps: final ε (0: greedy at the end).
    :param exploration_margin: extra margin of the contract offered with an exploratory recommendation
        (capped at ``b_max``); ``None`` pays ``b_max`` on the target's most telling outcome, ``0``
        offers the plain minimal contract.
    :param nudge: nudge margin ``ξ ≥ 0`` of the offered contracts and of the targets: a float or a
        schedule of the progress remaining (e.g. decaying).
    :param nudge_td_factor: when ``> 0``, ``ξ`` is at least ``nudge_margin(E, nudge_td_factor)`` with
        ``E`` a running mean of the agent model's absolute TD error (Proposition 4.1: ``ξ = 2E``).
        Note that TD errors include the outcome noise, so this bound is conservative.
    :param nudge_error_scale: ``σ ≥ 0``; when positive, the nudge of each state and recommendation is at least the
        margin worth paying against a gap error of scale ``σ`` given what a flip would cost the principal there
        (:func:`~sb3_contracts.contract_dqn.policies.stake_margin`): more where a deviation decides much, none where it
        decides little. Needs ``factorization="outcome"``.
    :param double_q: choose ``a*'`` with the online principal network (double DQN).
    :param loss: ``"mse"`` or ``"huber"`` (smooth L1) for both Q-networks.
    :param max_grad_norm: gradient-norm clipping per network (``None``: none).
    :param outcome_model: ``"known"``: the outcome model from the env (``info["outcome_probs"]`` in the
        targets, the MDP's table for acting); ``"learned"``: a classifier of ``o`` given ``(s, a)`` trained
        with cross-entropy on the buffer (Algorithm 2's option when the env does not expose ``𝒪``);
        ignored in observed-action games.
    :param factorization: ``"outcome"`` (default): the networks output per-outcome values and the
        Q-values are assembled with the outcome model (the outcome drives the transition, so per-outcome
        targets carry no outcome noise and need no action label); ``"action"``: one output per action,
        Algorithm 2 as written. See :class:`~sb3_contracts.contract_dqn.policies.ContractDQNPolicy`.
    :param agent_samples: which transitions train the agent model (and the outcome classifier):
        ``"trusted"``, only those whose action label is reliable (the env revealed the action, an exploratory
        recommendation came with a generous contract, see ``exploration_margin``, or the training agent follows
        every recommendation, see ``training_agent``); ``"all"``,
        every transition, assuming the agent took the recommendation; ``"auto"``: ``"trusted"`` in
        hidden-action games with generous exploration, else ``"all"``.
    :param outcome_probs: the known outcome model for acting, ``[A, O]`` or ``[S, A, O]`` (one-hot
        observations); by default taken from the env's ``mdp``.
    :param n_actions: number of agent actions ``A``; by default from the env's ``mdp``.
    :param observed_action: whether outcomes are actions; by default from the env's ``mdp``.
    :param training_agent: who plays the agent in the training env: ``None``, the env's own embedded agent;
        ``"follow"``, an agent that takes every recommendation, whatever the contract (the paper's training protocol:
        every action label is then known, see ``agent_samples``); ``"best_response"``, the exact agent
        best-responding to the learner's current policy, re-based at every target copy (an agent consistent with
        the learned principal). The env must offer them (:class:`~sb3_contracts.game.TrainingAgents`: the tabular
        principal's views) and, for ``"follow"``, live in this process. A learner's device: evaluation envs keep
        their own agent, and ``learn`` puts the training env's own agent back at the end.
    :param training_start_states: where the training env's episodes start (``"uniform"``: exploring starts; a share
        ``p`` in [0, 1]: that share at the initial state, the others uniform; see
        :func:`~sb3_contracts.game.batch.draw_start_states`); ``None`` leaves the env as it is. A learner's device:
        evaluation envs (rl-zoo3's, ``enjoy``) keep the game's own start at the initial state.
    :param replay_buffer_kwargs: extra arguments of :class:`ContractReplayBuffer`.
    :param stats_window_size: episodes averaged in the rollout statistics.
    :param tensorboard_log: TensorBoard log directory (``None``: no logging).
    :param policy_kwargs: extra arguments of the policy (``net_arch``, ``features_extractor_class``...).
    :param verbose: 0 silent, 1 info, 2 debug.
    :param seed: random seed.
    :param device: torch device.
    :param torch_threads: torch threads while learning (restored after); small networks train fastest on one, and
        on a busy machine more threads slow them down (``None``: torch's own setting).
    :param _init_setup_model: build the networks at creation.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: ContractDQNPolicy
    replay_buffer: ContractReplayBuffer
    _contract_rank = 1
    _env_kind = "a one-agent contract env (action space Box[n_outcomes]: one contract, e.g. ContractBinaryTree-v0)"
    _other_learner = "MultiAgentContractDQN"

    def __init__(
        self,
        policy: str | type[ContractDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        learning_rate_final: float | None = None,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 128,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        target_update_interval: int = 800,
        exploration_fraction: float = 1.0,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.0,
        exploration_margin: float | None = None,
        nudge: float | Schedule = 0.0,
        nudge_td_factor: float = 0.0,
        nudge_error_scale: float = 0.0,
        double_q: bool = True,
        loss: str = "mse",
        max_grad_norm: float | None = 10.0,
        outcome_model: str = "known",
        factorization: str = "outcome",
        agent_samples: str = "auto",
        outcome_probs: np.ndarray | None = None,
        n_actions: int | None = None,
        observed_action: bool | None = None,
        training_agent: str | None = None,
        training_start_states: str | float | None = None,
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
        super().__init__(
            policy, env, learning_rate, learning_rate_final=learning_rate_final, buffer_size=buffer_size,
            learning_starts=learning_starts, batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq,
            gradient_steps=gradient_steps, target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction, exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps, nudge=nudge, nudge_td_factor=nudge_td_factor,
            double_q=double_q, loss=loss, max_grad_norm=max_grad_norm, replay_buffer_class=ContractReplayBuffer,
            replay_buffer_kwargs=replay_buffer_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
            torch_threads=torch_threads,
        )
        self._check_options(agent_samples, outcome_model, exploration_margin, training_agent)
        self.exploration_margin = exploration_margin
        self.training_agent = training_agent
        self._recommendations: np.ndarray | None = None
        self.outcome_model = outcome_model
        self.factorization = factorization
        self.nudge_error_scale = nudge_error_scale  # the policy checks it and prices contracts with it
        self.agent_samples = agent_samples
        self.training_start_states = training_start_states  # the env checks it (set_start_states)
        self._outcome_table: np.ndarray | None = None
        # whether observations are one-hot states (the principal's view's default encoding): predict checks them
        encoder = self._env_attr("encoder")
        self.one_hot_observations = getattr(encoder, "encoding", None) == "onehot"
        # SB3's load() builds the model without an env and restores these attributes from the saved data.
        if env is not None or _init_setup_model:
            self._resolve_game(n_actions, observed_action, outcome_probs)
            if agent_samples == "auto":
                hidden = not self.observed_action
                self.agent_samples = "trusted" if (self.generous_exploration and hidden) else "all"
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _check_options(agent_samples: str, outcome_model: str, exploration_margin: float | None,
                       training_agent: str | None) -> None:
        if training_agent not in TRAINING_AGENTS:
            raise ValueError(f"training_agent must be one of {TRAINING_AGENTS}, got {training_agent!r}")
        if agent_samples not in AGENT_SAMPLES:
            raise ValueError(f"agent_samples must be one of {AGENT_SAMPLES}, got {agent_samples!r}")
        if outcome_model not in OUTCOME_MODELS:
            raise ValueError(f"outcome_model must be one of {OUTCOME_MODELS}, got {outcome_model!r}")
        if exploration_margin is not None and (not np.isfinite(exploration_margin) or exploration_margin < 0):
            raise ValueError(f"exploration_margin must be None or finite and non-negative, got {exploration_margin!r}")

    @property
    def contract_space(self) -> spaces.Box:
        """The space of one contract ``Box(0, b_max, (O,))`` (the env's action space in the single-agent case)."""
        return self.action_space

    @property
    def generous_exploration(self) -> bool:
        """Whether exploratory contracts carry extra margin (then the agent takes the recommendation)."""
        return self.exploration_margin is None or self.exploration_margin > 0

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True,
                     tb_log_name: str = "run", progress_bar: bool = False) -> tuple[int, BaseCallback]:
        if self.training_start_states is not None and self.env is not None:
            self.env.env_method("set_start_states", self.training_start_states)
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if self.training_agent == "follow":
            if isinstance(self.env, SubprocVecEnv):
                raise ValueError("training_agent='follow' hands the recommendations to the envs in this process: "
                                 "use a DummyVecEnv or a batched VecEnv, not a SubprocVecEnv")
            self._recommendations = None
            for index in range(self.n_envs):
                self.env.env_method("follow_recommendations", self._current_recommendations, index, indices=[index])
        elif self.training_agent == "best_response":
            self.env.env_method("respond_to_principal", self.predict_with_recommendation)
        return result

    def _current_recommendations(self) -> np.ndarray:
        """The recommendations of the step being played, for an env whose agent follows them."""
        if self._recommendations is None:
            raise RuntimeError("training_agent='follow': the env stepped before ContractDQN recommended anything "
                               "(step the training env through learn())")
        return self._recommendations

    def _end_learn(self) -> None:
        super()._end_learn()
        if self.training_agent is not None and self.env is not None:
            self.env.env_method("restore_agent")

    def _env_mdp(self) -> Any:
        return self._env_attr("mdp")

    def _env_attr(self, name: str) -> Any:
        """The training env's attribute ``name`` (its first env's), or ``None``."""
        if self.env is None:
            return None
        try:
            return self.env.get_attr(name, indices=[0])[0]
        except AttributeError:
            return None

    def _check_observation(self, observation: Any) -> None:
        """One-hot states must be one-hot: anything else would be priced as some state without a word."""
        if not getattr(self, "one_hot_observations", False):  # getattr: models saved before the check existed
            return
        rows = np.asarray(observation, dtype=np.float64).reshape(-1, self.observation_space.shape[0])
        valid = np.all((rows == 0) | (rows == 1), axis=1) & (rows.sum(axis=1) == 1)
        if not valid.all():
            row = int(np.argmin(valid))
            raise ValueError(f"observation must be a one-hot state encoding (a single 1, zeros elsewhere), as the "
                             f"principal's view gives; row {row} has values {np.unique(rows[row])[:4]} summing to "
                             f"{rows[row].sum():.6g}")

    def _resolve_game(self, n_actions: int | None, observed_action: bool | None,
                      outcome_probs: np.ndarray | None) -> None:
        """Fix ``A``, observed/hidden action and the known outcome table from the arguments or the env's MDP."""
        mdp = self._env_mdp()
        n_outcomes = self.action_space.shape[0]
        if n_actions is None:
            if mdp is None:
                raise ValueError(f"ContractDQN needs the agent's number of actions: pass n_actions=, or an env with "
                                 f"an `mdp` attribute (a PrincipalAgentMDP), not {env_name(self.env)}")
            n_actions = mdp.n_actions
        if observed_action is None:
            observed_action = bool(mdp.observed_action) if mdp is not None else False
        elif not isinstance(observed_action, (bool, np.bool_)):
            raise TypeError(f"observed_action must be a bool or None, got {observed_action!r}")
        elif mdp is not None and bool(observed_action) != mdp.observed_action:
            raise ValueError(f"observed_action={observed_action}, but the env's MDP "
                             f"{'reveals' if mdp.observed_action else 'hides'} the agent's actions")
        if observed_action and n_actions != n_outcomes:
            raise ValueError(f"observed_action=True needs one outcome per action: {n_actions} actions, "
                             f"{n_outcomes} outcomes")
        self.n_actions, self.observed_action = int(n_actions), bool(observed_action)
        if self.observed_action or self.outcome_model != "known":
            rows = 1
        else:
            if outcome_probs is None:
                if mdp is None:
                    raise ValueError("outcome_model='known' needs outcome_probs or an env with an `mdp`; "
                                     "otherwise use outcome_model='learned'")
                outcome_probs = mdp.outcome_probs
            table = np.asarray(outcome_probs, dtype=np.float64)
            if table.shape[-2:] != (self.n_actions, n_outcomes) or table.ndim not in (2, 3):
                raise ValueError(f"outcome_probs must be [A, O] or [S, A, O] with A={self.n_actions}, "
                                 f"O={n_outcomes}; got shape {table.shape}")
            if not np.all(np.isfinite(table)) or np.any(table < 0) or not np.allclose(table.sum(-1), 1.0):
                raise ValueError("outcome_probs rows must be probability distributions over outcomes (finite, "
                                 "non-negative, summing to 1)")
            table = table.reshape(-1, self.n_actions, n_outcomes)
            # One row suffices when every state has the same outcome model (e.g. the binary trees).
            self._outcome_table = table[:1] if np.allclose(table, table[:1]) else table
            rows = self._outcome_table.shape[0]
        self.policy_kwargs.update(n_actions=self.n_actions, observed_action=self.observed_action,
                                  outcome_model=self.outcome_model, outcome_table_rows=rows,
                                  factorization=self.factorization, nudge_error_scale=self.nudge_error_scale)

    def _setup_model(self) -> None:
        # The buffer stores the recommendations the contracts implement: the env's contract space does not say how
        # many there are. (Files saved by earlier versions hold n_outcomes, which the buffer now reads off the space.)
        self.replay_buffer_kwargs.pop("n_outcomes", None)
        self.replay_buffer_kwargs["n_actions"] = self.n_actions
        super()._setup_model()
        if self._outcome_table is not None:
            self.policy.set_outcome_table(self._outcome_table)
        # The factorisation fixes what the networks output, hence the losses that train them.
        self._q_losses = self._outcome_losses if self.factorization == "outcome" else self._action_losses

    # -- acting --------------------------------------------------------------------------------------------

    def predict_with_recommendation(
        self, observation: np.ndarray | dict[str, np.ndarray], deterministic: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """
        Contracts and the recommendations they implement.

        :param observation: one observation or a batch.
        :param deterministic: greedy; otherwise ε-greedy recommendations with generous exploration contracts.
        :return: ``(contracts [B, O], recommendations [B])`` (without the batch axis for one observation).
        """
        self.policy.set_training_mode(False)
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        self._check_observation(observation)
        rate = 0.0 if deterministic else self.exploration_rate
        with th.no_grad():
            recommendations, contracts, _ = self._act(obs_tensor, rate)
        if not vectorized:
            return contracts[0], recommendations[0]
        return contracts, recommendations

    def _act(self, obs: th.Tensor, exploration_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ε-greedy recommendations; exploratory ones come with generous contracts (see the module doc)."""
        batch = obs.shape[0] if isinstance(obs, th.Tensor) else next(iter(obs.values())).shape[0]
        explore = random_actions = None
        if exploration_rate > 0:
            # SB3 seeds the global NumPy generator (set_random_seed), so `seed=` reproduces exploration.
            explore = th.as_tensor(np.random.rand(batch) < exploration_rate, device=self.device)  # noqa: NPY002
            random_actions = th.as_tensor(np.random.randint(self.n_actions, size=batch),  # noqa: NPY002
                                          device=self.device)
        space = self.contract_space
        margin = float(space.high.max()) if self.exploration_margin is None else self.exploration_margin
        recommendation, contract = self.policy.recommend_and_contract(obs, explore, random_actions, margin)
        contracts = np.clip(contract.cpu().numpy(), space.low, space.high)
        explored = np.zeros(batch, dtype=bool) if explore is None else explore.cpu().numpy()
        return recommendation.cpu().numpy(), contracts, explored

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        # Warm-up recommends at random (ε = 1) rather than sampling raw contracts, so that the buffer holds
        # recommendations the contracts implement.
        rate = 1.0 if self.num_timesteps < learning_starts else self.exploration_rate
        self.policy.set_training_mode(False)
        obs_tensor, _ = self.policy.obs_to_tensor(self._last_obs)
        with th.no_grad():
            recommendations, contracts, self._last_explored = self._act(obs_tensor, rate)
        self._recommendations = recommendations
        return contracts, recommendations

    # -- rollout bookkeeping ---------------------------------------------------------------------------

    def _on_step(self) -> None:
        super()._on_step()
        # The consistent agent moves with the targets: it answers the policy as of the last target copy.
        if self.training_agent == "best_response" and self._target_copy_due():
            self.env.env_method("respond_to_principal", self.predict_with_recommendation)

    def _store_transition(self, replay_buffer: ReplayBuffer, buffer_action: np.ndarray, new_obs: Any,
                          reward: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        stats = self._stats
        for info, recommendation in zip(infos, buffer_action, strict=True):
            stats["payment"] += info["payment"]
            stats["steps"] += 1
            stats["followed"] += int(info.get("true_agent_action", -1) == recommendation)
            if "episode" in info:
                self._episode_utilities.append(info["episode"]["r"])
        stats["gross"] += float(np.sum(reward)) + sum(info["payment"] for info in infos)
        # A generous exploratory contract makes the agent take the recommendation: its label is reliable; so is
        # every label when the training agent follows the recommendations.
        if self.training_agent == "follow":
            replay_buffer.next_trusted = np.ones(len(infos), dtype=bool)
        else:
            replay_buffer.next_trusted = getattr(self, "_last_explored", None) if self.generous_exploration else None
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    # -- learning ------------------------------------------------------------------------------------------

    def _outcome_models(self, data: ContractReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        """``𝒪(s, ·)`` and ``𝒪(s', ·)`` ``[B, A, O]``: stored (known) or from the classifier (learned)."""
        if self.observed_action or self.outcome_model == "learned":
            with th.no_grad():
                return self.policy.outcome_probs(data.observations), self.policy.outcome_probs(data.next_observations)
        return data.outcome_probs, data.next_outcome_probs

    def _label_weights(self, data: ContractReplayBufferSamples) -> th.Tensor | None:
        """Which samples' action labels train the agent model (a 0/1 mask; ``None``: all of them)."""
        return data.trusted if self.agent_samples == "trusted" else None

    def _outcome_loss(self, data: ContractReplayBufferSamples) -> th.Tensor | None:
        """Cross-entropy of the learned outcome classifier on ``(s, a) -> o`` (``None`` when the model is known)."""
        if self.observed_action or self.outcome_model != "learned":
            return None
        rows = th.arange(data.outcomes.shape[0], device=self.device)
        logits = self.policy.outcome_logits(data.observations)[rows, data.agent_actions]
        losses = F.cross_entropy(logits, data.outcomes, reduction="none")
        weights = self._label_weights(data)
        return losses.mean() if weights is None else (losses * weights).sum() / weights.sum().clamp(min=1.0)

    def _outcome_losses(self, data: ContractReplayBufferSamples, principal_out: th.Tensor, agent_out: th.Tensor,
                        probs: th.Tensor, next_principal: th.Tensor, next_agent: th.Tensor
                        ) -> tuple[th.Tensor, th.Tensor, float]:
        """
        The losses of ``factorization="outcome"``, per outcome ``o`` (no action label needed): ``G(s, o) <- r^p(s, o)
        + γ q_θ'(s', a*')`` and ``W(s, o) <- γ V(s')``; the agent's reward head learns ``r(s, a)`` from the samples
        whose action label it may use.

        :return: the principal's loss, the agent model's loss and the agent model's mean absolute TD error
        """
        rows = th.arange(principal_out.shape[0], device=self.device)
        principal_loss = self._loss(principal_out[rows, data.outcomes], data.principal_rewards + next_principal)
        agent_pred = agent_out[:, self.policy.n_actions :][rows, data.outcomes]
        agent_loss = self._loss(agent_pred, next_agent) + self._loss(agent_out[rows, data.agent_actions],
                                                                     data.agent_rewards, self._label_weights(data))
        return principal_loss, agent_loss, (agent_pred.detach() - next_agent).abs().mean().item()

    def _action_losses(self, data: ContractReplayBufferSamples, principal_out: th.Tensor, agent_out: th.Tensor,
                       probs: th.Tensor, next_principal: th.Tensor, next_agent: th.Tensor
                       ) -> tuple[th.Tensor, th.Tensor, float]:
        """
        The losses of ``factorization="action"``, Algorithm 2 as written: ``y^p = r^p(s, o) - E b(o) + γ q_θ'(s',
        a*')`` and ``y^a = r(s, a) + γ [E b'(o') + Q̄_φ'(s', a*')]``.

        :return: the principal's loss, the agent model's loss and the agent model's mean absolute TD error
        """
        rows = th.arange(principal_out.shape[0], device=self.device)
        with th.no_grad():
            contract, _ = self.policy.minimal_contracts(agent_out.detach(), probs, data.actions)
            cost = (probs[rows, data.actions] * contract).sum(dim=1)
            y_p = data.principal_rewards - cost + next_principal
            y_a = data.agent_rewards + next_agent
        principal_loss = self._loss(principal_out[rows, data.actions], y_p)
        agent_pred = agent_out[rows, data.agent_actions]
        agent_loss = self._loss(agent_pred, y_a, self._label_weights(data))
        return principal_loss, agent_loss, (agent_pred.detach() - y_a).abs().mean().item()

    def train(self, gradient_steps: int, batch_size: int = 128) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        policy = self.policy
        logs: dict[str, list[float]] = {"principal_loss": [], "agent_loss": [], "agent_td_error": [],
                                        "outcome_loss": []}
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            batch = data.actions.shape[0]
            rows = th.arange(batch, device=self.device)
            probs, next_probs = self._outcome_models(data)
            # One pass of the online principal over s and s' (the latter picks a*' for double DQN).
            principal_all = policy.principal_net(_concat_obs(data.observations, data.next_observations))
            principal_out, next_online = principal_all[:batch], principal_all[batch:].detach()
            agent_out = policy.agent_net(data.observations)
            with th.no_grad():
                # The continuation at s' under the target networks: a*' = argmax q(s', ·), b' its minimal contract.
                next_agent_q = policy.agent_q(policy.agent_net_target(data.next_observations), next_probs)
                next_target = policy.principal_net_target(data.next_observations)
                next_contracts, feasible = policy.priced_contracts(next_agent_q, next_probs, next_target)
                next_q = policy.principal_q(next_target, next_probs, next_contracts)
                selector = policy.principal_q(next_online, next_probs, next_contracts) if self.double_q else next_q
                next_rec = policy.greedy(selector, feasible)
                continuation = (1.0 - data.dones) * self.gamma
                next_payment = (next_probs[rows, next_rec] * next_contracts[rows, next_rec]).sum(dim=1)
                next_principal = continuation * next_q[rows, next_rec]  # γ q_θ'(s', a*')
                next_agent = continuation * (next_payment + next_agent_q[rows, next_rec])  # γ [E b' + Q̄_φ'(s', a*')]
            # The losses of the factorisation chosen at setup (_outcome_losses or _action_losses).
            principal_loss, agent_loss, td_error = self._q_losses(data, principal_out, agent_out, probs,
                                                                  next_principal, next_agent)
            loss = principal_loss + agent_loss
            outcome_loss = self._outcome_loss(data)
            if outcome_loss is not None:
                loss = loss + outcome_loss
                logs["outcome_loss"].append(outcome_loss.item())
            self._gradient_step(loss)
            self._track_td_error(td_error)
            self._n_updates += 1
            logs["principal_loss"].append(principal_loss.item())
            logs["agent_loss"].append(agent_loss.item())
            logs["agent_td_error"].append(td_error)
        self._update_margin()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/principal_loss", float(np.mean(logs["principal_loss"])))
        self.logger.record("train/agent_loss", float(np.mean(logs["agent_loss"])))
        self.logger.record("agent_model/td_error", float(np.mean(logs["agent_td_error"])))
        if logs["outcome_loss"]:
            self.logger.record("agent_model/outcome_loss", float(np.mean(logs["outcome_loss"])))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_outcome_table", "_recommendations", "_q_losses"]
