"""Escape Room under a learned principal (issue 24): principal, fresh DQN validation agents, selfish baseline.

For each seed: :class:`~sb3_contracts.MultiAgentContractDQN` learns on ``ContractEscapeRoom-v0`` (N = 2, M = 1) or
``ContractEscapeRoom3-v0`` (N = 3, M = 2) with nothing game-specific; fresh SB3 DQN agents (one network shared by the
agents, through SuperSuit) then learn against the frozen principal on
:class:`~sb3_contracts.ContractAgentsParallelEnv`; the same DQN learns without contracts (the selfish baseline).
Both are evaluated greedily on ``eval_episodes`` episodes. Printed per seed, then one JSON line last: validated
welfare and its ratio to the optimum (``10 (N - M) - M``), payment share (payments / welfare), follow rate
(share of recommendations followed), the selfish baseline's welfare, and wall and CPU seconds.

Usage::

    python benchmarks/escape_room.py --agents 2 --seeds 0 1 2
    python benchmarks/escape_room.py --agents 3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import supersuit as ss
from sb3_contracts.envs.escape_room import EscapeRoomConfig
from stable_baselines3 import DQN
from stable_baselines3.common.utils import set_random_seed

import sb3_contracts
from sb3_contracts import ContractAgentsParallelEnv, ContractGameVecEnv, MultiAgentContractDQN
from sb3_contracts.experiments.accounting import Accounting
from sb3_contracts.experiments.coin.settings import ESCAPE_ROOM_DQN, GAME_PRESETS

IDS = {2: "ContractEscapeRoom-v0", 3: "ContractEscapeRoom3-v0"}
#: The principal's learner settings besides the command's (the learner's defaults otherwise): the experiment's preset
#: for the Escape Room ids (its one home), but for the options below.
PRINCIPAL = {"n_envs": 16, **{key: value for key, value in GAME_PRESETS[IDS[2]]["principal_kwargs"].items()
                              if key != "follow_prob"}}
#: The validation agents' (and the selfish baseline's) DQN settings (one gradient step per step of the 4 rooms).
AGENTS = ESCAPE_ROOM_DQN


def train_agents(env_kwargs: dict[str, Any], principal: Any, steps: int, seed: int, copies: int) -> DQN:
    """
    Fresh DQN agents (one shared network) trained on the agents' view under ``principal`` (``None``: no contracts).

    :param env_kwargs: the id's arguments (``game``, ``game_kwargs``, ``agent_ids``, ``b_max``)
    :param principal: the principal, or ``None``
    :param steps: agent steps (summed over agents and copies)
    :param seed: seed of the DQN and of the games
    :param copies: games stepped together
    """
    agents_env = ContractAgentsParallelEnv(principal=principal, **env_kwargs)
    vec_env = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(agents_env), copies, num_cpus=0,
                                    base_class="stable_baselines3")
    # SuperSuit's ConcatVecEnv has no seed(), which DQN(seed=...) calls: seed the generators here instead (the
    # game has no randomness of its own)
    set_random_seed(seed)
    model = DQN("MlpPolicy", vec_env, **AGENTS)
    return model.learn(steps)


def evaluate(env_kwargs: dict[str, Any], principal: Any, agents: DQN, episodes: int, seed: int) -> dict[str, float]:
    """
    Greedy ``agents`` under ``principal`` (``None``: no contracts): welfare per episode, payment share, follow rate.

    :param env_kwargs: the id's arguments
    :param principal: the principal, or ``None``
    :param agents: the agents' shared model
    :param episodes: episodes to average over
    :param seed: seed of the games
    """
    vec_env = ContractGameVecEnv(n_envs=16, seed=seed, agents=agents, **env_kwargs)
    obs = vec_env.reset()
    welfare, payments, followed, recommended = [], [], 0, 0
    while len(welfare) < episodes:
        contracts = np.zeros(vec_env.action_space.shape) if principal is None else principal.predict(obs)[0]
        obs, _, _, infos = vec_env.step(np.broadcast_to(contracts, (vec_env.num_envs, *vec_env.action_space.shape)))
        for info in infos:
            followed += int((info["followed"] == 1).sum())
            recommended += int((info["followed"] >= 0).sum())
            if "episode_welfare" in info:
                welfare.append(info["episode_welfare"])
                payments.append(info["episode_payments"])
    welfare, payments = np.array(welfare[:episodes]), np.array(payments[:episodes])
    return {"welfare": float(welfare.mean()), "payments": float(payments.mean()),
            # payments over welfare; undefined (NaN) when the agents create no welfare
            "payment_share": float(payments.sum() / welfare.sum()) if welfare.sum() > 0 else float("nan"),
            "follow_rate": followed / recommended if recommended else float("nan")}


def run_seed(n_agents: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One seed: principal, validation, selfish baseline; their figures and timings."""
    env_id = IDS[n_agents]
    env_kwargs = dict(sb3_contracts.ENV_IDS[env_id][1]) | {"b_max": args.b_max}
    timings = {}
    start = time.perf_counter()
    principal = MultiAgentContractDQN("MlpPolicy", env_id, seed=seed, env_kwargs={"b_max": args.b_max},
                                      nudge=args.nudge, follow_prob=args.follow_prob,
                                      exploration_initial_eps=args.initial_eps, **PRINCIPAL)
    principal.learn(args.principal_steps)
    timings["principal_s"] = time.perf_counter() - start
    start = time.perf_counter()
    validation_agents = train_agents(env_kwargs, principal, args.agent_steps, seed, args.copies)
    validated = evaluate(env_kwargs, principal, validation_agents, args.eval_episodes, seed + 1000)
    timings["validation_s"] = time.perf_counter() - start
    start = time.perf_counter()
    selfish_agents = train_agents(env_kwargs, None, args.agent_steps, seed, args.copies)
    selfish = evaluate(env_kwargs, None, selfish_agents, args.eval_episodes, seed + 1000)
    timings["selfish_s"] = time.perf_counter() - start
    optimum = EscapeRoomConfig(**env_kwargs["game_kwargs"]).optimal_welfare
    return {"seed": seed, **validated, "optimal_welfare": optimum, "optimal_ratio": validated["welfare"] / optimum,
            "selfish_welfare": selfish["welfare"], "selfish_optimal_ratio": selfish["welfare"] / optimum,
            **{key: round(value, 1) for key, value in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, choices=sorted(IDS), default=2, help="N (2: M = 1; 3: M = 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--principal-steps", type=int, default=100_000, help="principal's env steps (game steps)")
    parser.add_argument("--follow-prob", type=float, default=1.0, help="the learner's follow_prob")
    parser.add_argument("--nudge", type=float, default=0.25, help="the learner's nudge ξ")
    parser.add_argument("--initial-eps", type=float, default=0.4, help="the learner's exploration_initial_eps")
    parser.add_argument("--b-max", type=float, default=2.0, help="the largest payment per action")
    parser.add_argument("--agent-steps", type=int, default=100_000, help="validation agents' steps (all agents)")
    parser.add_argument("--copies", type=int, default=4, help="games the validation agents play together")
    parser.add_argument("--eval-episodes", type=int, default=200)
    args = parser.parse_args()
    cost = Accounting()
    runs = []
    for seed in args.seeds:
        seed_start = time.perf_counter()
        runs.append(run_seed(args.agents, seed, args) | {"wall_s": round(time.perf_counter() - seed_start, 1)})
        print(json.dumps(runs[-1]), flush=True)
    keys = ("welfare", "optimal_ratio", "payment_share", "follow_rate", "selfish_welfare", "selfish_optimal_ratio")
    figures = {"env_id": IDS[args.agents], "seeds": args.seeds,
               **{f"mean_{key}": float(np.mean([run[key] for run in runs])) for key in keys},
               "min_optimal_ratio": float(min(run["optimal_ratio"] for run in runs)),
               **{key: value for key, value in vars(args).items() if key not in ("agents", "seeds")}, "runs": runs,
               **cost.figures()}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
