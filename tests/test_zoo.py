"""rl-zoo3 trains ContractDQN from zoo_configs/contract_dqn.yml through ``python -m sb3_contracts.zoo``."""

import numpy as np
import pytest

from sb3_contracts.zoo import main, sample_contract_dqn_multiagent_params


def test_rl_zoo3_trains_contract_dqn_from_the_config(tmp_path):
    main(["train", "--algo", "contract_dqn", "--env", "ContractBinaryTree-v0", "--conf-file",
          "zoo_configs/contract_dqn.yml", "-f", str(tmp_path), "-n", "1200", "--eval-freq", "-1",
          "--env-kwargs", "depth:3", "--hyperparams", "learning_starts:100", "n_envs:2"])
    run = tmp_path / "contract_dqn" / "ContractBinaryTree-v0_1"
    assert (run / "ContractBinaryTree-v0.zip").exists()


def test_usage_error():
    with pytest.raises(SystemExit, match="usage"):
        main(["fly"])


def test_help_names_the_commands_and_how_to_get_their_options(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "train" in text and "enjoy" in text and "enjoy --help" in text and "--conf-file" in text


def test_rl_zoo3_trains_the_coin_games_principal_and_enjoy_plays_it(tmp_path, capsys):
    main(["train", "--algo", "contract_dqn_multiagent", "--env", "ContractCoinGame-v0", "--conf-file",
          "zoo_configs/contract_dqn_multiagent.yml", "-f", str(tmp_path), "-n", "400", "--eval-freq", "200",
          "--eval-episodes", "1", "--log-interval", "2", "--hyperparams", "learning_starts:50", "n_envs:2",
          "--tensorboard-log", str(tmp_path / "tb")])
    run = tmp_path / "contract_dqn_multiagent" / "ContractCoinGame-v0_1"
    assert (run / "ContractCoinGame-v0.zip").exists() and (run / "evaluations.npz").exists()
    capsys.readouterr()
    # as rl-zoo3 users type it: rendering on (render_mode="human"), which prints the game as text
    main(["enjoy", "--algo", "contract_dqn_multiagent", "--env", "ContractCoinGame-v0", "-f", str(tmp_path),
          "-n", "50"])
    assert "step 1/20" in capsys.readouterr().out
    scalars = set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events in (tmp_path / "tb").rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
    assert {"coin/welfare", "coin/follow_rate", "coin/payment_share", "principal/mean_payment"} <= scalars


def test_rl_zoo3_trains_an_agent_against_a_saved_principal(tmp_path):
    from sb3_contracts import MultiAgentContractDQN

    principal = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, learning_starts=20,
                                      policy_kwargs={"net_arch": [16]}).learn(60)
    principal.save(tmp_path / "principal.zip")
    main(["train", "--algo", "dqn", "--env", "ContractCoinGameAgents-v0", "--conf-file", "zoo_configs/dqn.yml",
          "-f", str(tmp_path), "-n", "200", "--eval-freq", "-1", "--hyperparams", "learning_starts:50", "n_envs:2",
          "--env-kwargs", f"principal:'{tmp_path / 'principal.zip'}'"])
    assert (tmp_path / "dqn" / "ContractCoinGameAgents-v0_1" / "ContractCoinGameAgents-v0.zip").exists()


def test_optuna_runs_a_small_search_on_the_principal(tmp_path):
    optuna = pytest.importorskip("optuna")
    pandas = pytest.importorskip("pandas")
    main(["train", "--algo", "contract_dqn_multiagent", "--env", "ContractCoinGame-v0", "--conf-file",
          "zoo_configs/contract_dqn_multiagent.yml", "-f", str(tmp_path), "-n", "200", "-optimize",
          "--n-trials", "2", "--n-jobs", "1", "--sampler", "random", "--pruner", "none", "--n-evaluations", "1",
          "--eval-episodes", "1", "--hyperparams", "learning_starts:20", "n_envs:2"])
    reports = list((tmp_path / "contract_dqn_multiagent").glob("report_ContractCoinGame-v0_2-trials-*.csv"))
    assert len(reports) == 1
    trials = pandas.read_csv(reports[0])
    # rl-zoo3 prunes a trial whose learner raised a ValueError, and scores -inf one that was never evaluated
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    assert np.isfinite(trials["value"]).all()
    # each trial drew every hyperparameter our sampler searches
    probe = optuna.create_study().ask()
    sample_contract_dqn_multiagent_params(probe, 4, 2, {})
    assert {column.removeprefix("params_") for column in trials.columns if column.startswith("params_")} == set(
        probe.params)
    assert trials.filter(like="params_").notna().all().all()
