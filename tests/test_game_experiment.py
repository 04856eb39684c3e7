"""The Coin Game experiment on any game the contract layer wraps: Escape Room from its registered id, through the
CLI, with the same metrics.json, table and TensorBoard runs; settings that do not apply are refused."""

import json

import numpy as np
import pytest

from sb3_contracts import MultiAgentContractDQN
from sb3_contracts.cli import main
from sb3_contracts.experiments.coin.games import WrappedExperimentGame
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.game.contract_agents import ContractGameAgentsVecEnv

ROOM = "ContractEscapeRoom-v0"
MICRO = ["--n-games", "4", "--principal-steps", "300", "--agent-steps", "300", "--baseline-steps", "300",
         "--eval-games", "8", "--eval-episodes", "2", "--principal-kwargs", '{"learning_starts": 50}',
         "--agent-kwargs", '{"dqn": {"learning_starts": 50}, "ppo": {"n_steps": 16, "batch_size": 32}}']


def test_escape_room_runs_through_the_cli_with_the_coin_games_outputs(tmp_path, capsys):
    assert main(["coin", "--game", ROOM, *MICRO, "--out", str(tmp_path), "--no-progress", "--sequential"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    summary = metrics["summary"]
    assert summary["optimal_welfare"] == 9.0  # the game's own optimum, 10 (N - M) - M
    assert summary["optimal_ratio"] == pytest.approx(summary["welfare"] / 9.0)
    assert metrics["validation"]["dqn"]["episodes"] == 16  # 8 games x 2 episodes
    for key in ("spe_ratio", "ic_ratio", "selfish_welfare_ratio", "constant_proportion_margin"):
        assert key in summary
    runs = {path.name.rsplit("_", 1)[0] for path in (tmp_path / "tb").iterdir()}
    assert runs == {"principal", "validation_dqn", "validation_ppo", "best_response_spe", "best_response_ic",
                    "baseline_selfish", "baseline_cooperative", "baseline_proportion", "summary"}
    assert (tmp_path / "coin.png").is_file() and (tmp_path / "principal.zip").is_file()
    capsys.readouterr()
    assert main(["table", str(tmp_path)]) == 0
    assert "| 0 †" in capsys.readouterr().out  # below the wrapped game's default budgets


def test_wrapped_rollouts_score_a_principal_that_buys_the_optimum():
    # agent 0 paid 2 for the lever (it costs 1), agent 1 free: followers open the door in one step, 9 per episode
    game = WrappedExperimentGame(CoinSettings(game=ROOM, eval_games=3, eval_episodes=2))
    contracts = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    rollouts = game.rollouts(game.responder("follow"), lambda rows: np.broadcast_to(contracts, (3, 2, 3)))
    assert rollouts["rewards"].shape == (1, 6, 2)
    assert rollouts["rewards"].sum(axis=(0, 2)).tolist() == [9.0] * 6
    assert rollouts["payments"][0, 0].tolist() == [2.0, 0.5]
    # no contracts: random agents wander until the door opens or time runs out; steps after an end count nothing
    free = game.rollouts(game.responder("random"), None)
    assert free["payments"].sum() == 0.0 and (free["followed"] == -1).all()


def test_the_agents_view_lets_agent_zero_learn_alone_against_a_partner():
    contracts = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    env = ContractGameAgentsVecEnv("sb3_contracts.envs.escape_room.escape_room_v0:parallel_env", 3, contracts,
                                   partner="follow", b_max=2.0)
    env.reset()
    _, rewards, dones, infos = env.step(np.zeros(3, dtype=np.int64))  # agent 0 pulls, the partner walks out
    assert rewards.tolist() == [1.0] * 3 and dones.all()
    assert infos[0]["episode_welfare"] == 9.0 and infos[0]["episode_payments"] == 2.0


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(game="NoSuchGame-v0"), "registered contract-game id"),
    (dict(game="ContractCoinGame-v0"), "registered contract-game id"),
    (dict(game=ROOM, reward_rule="lola"), "reward_rule applies to the Coin Game only"),
    (dict(env_kwargs={"b_max": 3.0}), "env_kwargs apply to a wrapped game"),
    (dict(game=ROOM, env_kwargs={"alpha": 0.5}), "env_kwargs may set"),
])
def test_settings_that_do_not_apply_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CoinSettings(**kwargs)


def test_a_wrapped_game_takes_its_presets_and_plain_networks():
    room = CoinSettings(game=ROOM)
    assert (room.principal_steps, room.nudge) == (100_000, 0.25)
    # the nudge's one home is the id's preset: the learner built from the id alone pays the experiment's
    assert MultiAgentContractDQN("MlpPolicy", ROOM, n_envs=2).nudge == room.nudge
    assert "features_extractor_class" not in room.principal_hyperparams()["policy_kwargs"]
    assert room.principal_hyperparams()["follow_prob"] == 0.75  # N = 2 meets deviators in training; N = 3 does not
    assert CoinSettings(game="ContractEscapeRoom3-v0").principal_hyperparams()["follow_prob"] == 1.0
    assert "policy_kwargs" not in room.agent_hyperparams("dqn")
    assert room.agent_hyperparams("dqn")["batch_size"] == 64
    factory = CoinSettings(game="sb3_contracts.envs.escape_room.escape_room_v0:parallel_env",
                           env_kwargs={"game_kwargs": {"n_agents": 3, "min_at_lever": 2}})
    assert WrappedExperimentGame(factory).optimum() == 8.0
