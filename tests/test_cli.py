import json
from pathlib import Path

import pytest

from sb3_contracts.cli import main


def test_solve_prints_summary_json(capsys):
    assert main(["solve", "--depth", "4", "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["decision_states"] == 15
    assert 0.0 <= summary["effort_share"] <= 1.0
    assert summary["principal_value"] >= 0.0  # the empty contract already earns something non-negative


def test_demo_plays_an_episode(capsys):
    assert main(["demo", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("state ") >= 3 and "Episode return" in out


def test_bad_depth_is_a_clear_error():
    with pytest.raises(SystemExit, match="depth must be in"):
        main(["solve", "--depth", "0"])


def test_tree_trains_and_scores_against_the_spe(tmp_path, capsys):
    out = tmp_path / "tree"
    assert main(["tree", "--depth", "3", "--iterations", "200", "--n-envs", "4", "--no-progress",
                 "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= result["accuracy"] <= 1.0 and result["utility_ratio"] <= 1.0 + 1e-9
    assert (out / "model.zip").exists() and any((out / "tb").iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["experiment"] == "tree" and metrics["config"]["depth"] == 3
    with pytest.raises(SystemExit, match="iterations"):
        main(["tree", "--iterations", "0"])


def test_zoo_config_matches_the_tree_presets():
    import yaml

    from sb3_contracts.contract_dqn import OneHotEmbedding  # noqa: F401  (named in the YAML's policy_kwargs)
    from sb3_contracts.contract_dqn.presets import (
        TREE_ITERATIONS,
        TREE_KEEP_BEST,
        TREE_N_ENVS,
        TREE_START_STATES,
        binary_tree_hyperparams,
    )

    with open("zoo_configs/contract_dqn.yml") as file:
        entry = yaml.safe_load(file)["ContractBinaryTree-v0"]
    assert entry["n_envs"] == TREE_N_ENVS and entry["n_timesteps"] == TREE_ITERATIONS * TREE_N_ENVS
    # start states are the learner's (training env only): rl-zoo3's evaluation and enjoy start at the root
    assert "start_states" not in entry["env_kwargs"] and entry["training_start_states"] == TREE_START_STATES
    assert "agent" not in entry["env_kwargs"]  # the training agent is the learner's too (training_agent)
    # the kept policy (issue 26): rl-zoo3 builds the callback from this entry and saves the kept model at the end
    (keeper,) = entry["callback"]
    arguments = keeper["sb3_contracts.evaluation.BestPolicyCallback"]
    assert arguments["eval_env"] == "ContractBinaryTree-v0" and arguments["env_kwargs"] == entry["env_kwargs"]
    assert arguments["n_eval_episodes"] == TREE_KEEP_BEST["episodes"]
    assert arguments["margins"] == TREE_KEEP_BEST["margins"]
    # the evaluations play the presets' own nudge first
    assert TREE_KEEP_BEST["margins"][0] == binary_tree_hyperparams(TREE_N_ENVS)["nudge"]
    first = TREE_KEEP_BEST["start"] * entry["n_timesteps"] + arguments["eval_freq"]
    assert arguments["start"] == first and arguments["eval_freq"] * TREE_KEEP_BEST["evaluations"] == pytest.approx(
        entry["n_timesteps"] * (1 - TREE_KEEP_BEST["start"]))
    for key, value in binary_tree_hyperparams(TREE_N_ENVS).items():
        if key == "policy_kwargs":
            assert eval(entry[key]) == value  # noqa: S307  (rl-zoo3 evaluates this string the same way)
        elif isinstance(value, str):
            assert entry[key] == value, key
        else:
            assert entry[key] == pytest.approx(value), key


def test_the_tree_zoo_file_is_what_the_presets_generate(tmp_path):
    pytest.importorskip("yaml")
    from sb3_contracts.experiments.tree import write_zoo_config

    written = write_zoo_config(tmp_path)
    assert written.read_text() == Path("zoo_configs/contract_dqn.yml").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["coin", "--seed", "-1"], "seed must be >= 0, got -1"),
    (["coin", "--out", "{file}"], "--out must be a folder, but .* is a file"),
    (["tree", "--depth", "3", "--out", "{file}"], "--out must be a folder, but .* is a file"),
    (["tree", "--depth", "0"], "depth must be a positive integer, got 0"),
    (["tree", "--tree-seed", "-2"], "tree_seed must be a non-negative integer, got -2"),
    (["two-phase", "--out", "{file}"], "--out must be a folder"),
    (["bandit", "--horizon", "0"], "horizon"),
    (["table", "{folder}/missing"], "no metrics.json at"),
])
def test_user_errors_are_one_line_naming_the_option_before_any_training(argv, message, tmp_path, monkeypatch):
    import sb3_contracts.experiments.runner as runner

    monkeypatch.setattr(runner, "run_phases", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "file").write_text("")
    argv = [arg.format(file=tmp_path / "file", folder=tmp_path) for arg in argv]
    with pytest.raises(SystemExit, match=message):
        main(argv)


@pytest.mark.parametrize(("command", "metrics", "entry"), [
    ("table", {"experiment": "coin", "config": {"seed": 0}, "validation": {}, "baselines": {}}, "summary"),
    ("plot", {"experiment": "coin", "config": {"seed": 0}, "validation": {}, "baselines": {}}, "baselines.proportion"),
    ("table", {"experiment": "tree", "config": {}}, "final"),
])
def test_table_and_plot_of_an_incomplete_run_name_the_file_and_the_entry(command, metrics, entry, tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match=f"{command}: .*metrics.json has no entry {entry}: the run did not finish"):
        main([command, str(tmp_path)])
