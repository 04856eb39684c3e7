"""rl-zoo3 trains ContractDQN from zoo_configs/contract_dqn.yml through ``python -m sb3_contracts.zoo``."""

import pytest

from sb3_contracts.zoo import main


def test_rl_zoo3_trains_contract_dqn_from_the_config(tmp_path):
    main(["train", "--algo", "contract_dqn", "--env", "ContractBinaryTree-v0", "--conf-file",
          "zoo_configs/contract_dqn.yml", "-f", str(tmp_path), "-n", "1200", "--eval-freq", "-1",
          "--env-kwargs", "depth:3", "--hyperparams", "learning_starts:100", "n_envs:2"])
    run = tmp_path / "contract_dqn" / "ContractBinaryTree-v0_1"
    assert (run / "ContractBinaryTree-v0.zip").exists()


def test_usage_error():
    with pytest.raises(SystemExit, match="usage"):
        main(["fly"])
