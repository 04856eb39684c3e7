"""``ContractCoinGame-v0``: the principal's view of one Coin Game (the paper's headline experiment).

Each step the principal sees the global grid and offers every agent a contract, four payments (one per
move, the action being observed); the agents (a :mod:`~sb3_contracts.multiagent.responders` responder)
move; agent ``i`` is paid ``contract[i, a_i]``. The principal's reward is ``(1/alpha) * welfare - sum of
payments``, welfare being the sum of the agents' game rewards this step. See
:mod:`sb3_contracts.multiagent.common` for the recommendation convention.

Example::

    import gymnasium as gym
    import sb3_contracts  # registers the env ids

    env = gym.make("ContractCoinGame-v0", preset="3x3", agents="threshold", alpha=0.1)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_contracts.contracts import check_b_max, check_contract
from sb3_contracts.envs.coin_game import N_ACTIONS, OBS_FORMATS, CoinGameBatch
from sb3_contracts.multiagent.common import DEFAULT_B_MAX, step_with_contracts
from sb3_contracts.multiagent.responders import DEFAULT_FOLLOW_PRICE, Responder, make_responder

DEFAULT_ALPHA = 0.1


class ContractCoinGameEnv(gym.Env):
    """
    The principal's view of one Coin Game.

    - Observation: the global state (one position channel per player, one coin channel per colour),
      float32, flat ``[2 n G G]`` (``obs_format="flat"``, for ``MlpPolicy``) or ``[2 n, G, G]`` (``"grid"``).
    - Action: the contracts ``Box(0, b_max, (n_agents, 4))``: ``action[i, a]`` is paid to agent ``i`` if it
      takes move ``a``. Invalid contracts (shape, NaN, negative, above ``b_max``) raise ``ValueError``.
    - Reward: ``welfare / alpha - sum_i action[i, a_i]``, welfare being ``sum_i r_i`` this step.
    - Episodes are truncated after ``max_steps``; the game never terminates.
    - ``info``: ``agent_rewards``, ``payments``, ``actions``, ``recommended`` (``-1`` = none) and
      ``followed`` (``1``/``0``, ``-1`` when undefined), arrays ``[n_agents]``, and ``welfare``; at the last
      step also ``episode_welfare``, ``episode_payments``, ``pick_speed`` (coins per step, mean over agents)
      and ``pick_own_color`` (mean over the agents that picked a coin; NaN if none did).

    :param agents: the responder, see :func:`~sb3_contracts.multiagent.responders.make_responder`
    :param alpha: weight of welfare against payments (the principal values welfare at ``1/alpha``)
    :param b_max: the largest payment per action
    :param follow_price: the ``"threshold"`` responder's price of following
    :param obs_format: ``"flat"`` or ``"grid"``
    :param render_mode: ``None`` or ``"ansi"``
    :param game_kwargs: Coin Game arguments: ``preset``, ``grid_size``, ``max_steps``, ``reward_rule``,
        ``n_agents``
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        agents: str | Responder | Any = "threshold",
        alpha: float = DEFAULT_ALPHA,
        b_max: float = DEFAULT_B_MAX,
        follow_price: float = DEFAULT_FOLLOW_PRICE,
        obs_format: str = "flat",
        render_mode: str | None = None,
        preset: str | None = None,
        grid_size: int | None = None,
        max_steps: int | None = None,
        reward_rule: str = "parl",
        n_agents: int = 2,
    ) -> None:
        if obs_format not in OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {OBS_FORMATS}, got {obs_format!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if not np.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
        self.core = CoinGameBatch(1, grid_size, max_steps, n_agents, reward_rule, preset)
        self.responder = make_responder(agents, follow_price)
        self.alpha = float(alpha)
        self.b_max = check_b_max(b_max)
        self.obs_format = obs_format
        self.render_mode = render_mode
        n, g = self.core.n_agents, self.core.grid_size
        shape = (2 * n * g * g,) if obs_format == "flat" else (2 * n, g, g)
        self.observation_space = spaces.Box(0.0, 1.0, shape, dtype=np.float32)
        self.action_space = spaces.Box(0.0, self.b_max, (n, N_ACTIONS), dtype=np.float32)
        self._episode_payments = 0.0

    def _observation(self) -> np.ndarray:
        return self.core.global_state()[0].reshape(self.observation_space.shape).copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        # the core's generator also breaks the scripted responders' ties: one seed fixes the whole episode
        self.core.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
        self._episode_payments = 0.0
        return self._observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        n = self.core.n_agents
        contracts = check_contract(action, (n, N_ACTIONS), self.b_max, "action",
                                   "one contract (a payment per move) per agent")[None]
        actions = np.asarray(self.responder(self.core.observe(flat=True), contracts, self.core))
        if actions.shape != (1, n):
            raise ValueError(f"the responder must return actions of shape (1, {n}), got {actions.shape}")
        result = step_with_contracts(self.core, contracts, actions)
        welfare = float(result.rewards.sum())
        payments = result.payments[0]
        self._episode_payments += float(payments.sum())
        info: dict[str, Any] = {
            "agent_rewards": result.rewards[0],
            "payments": payments,
            "actions": actions[0],
            "recommended": result.recommended[0],
            "followed": result.followed[0],
            "welfare": welfare,
        }
        truncated = bool(result.truncated[0])
        if truncated:
            info.update(self._episode_info())
        reward = welfare / self.alpha - float(payments.sum())
        return self._observation(), reward, False, truncated, info

    def _episode_info(self) -> dict[str, float]:
        stats = self.core.episode_stats()
        own = stats["pick_own_color"][0]
        return {
            "episode_welfare": float(stats["social_welfare"][0]),
            "episode_payments": self._episode_payments,
            "pick_speed": float(stats["pick_speed"][0].mean()),
            "pick_own_color": float(np.nanmean(own)) if np.isfinite(own).any() else float("nan"),
        }

    def render(self) -> str | None:
        return self.core.render_ansi(0) if self.render_mode == "ansi" else None

