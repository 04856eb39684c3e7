"""The Coin Game pipeline: phases end to end, validation isolation, best-response envs, CLI and plot."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch as th
from sb3_contracts.envs.coin_game.optimum import optimal_welfare

from sb3_contracts.cli import main
from sb3_contracts.contract_dqn_multiagent import MultiAgentContractDQN
from sb3_contracts.contract_dqn_multiagent.encoders import CenteredCoinExtractor, CoinConvExtractor
from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.coin.experiment import EXPERIMENT, alternate, train_agents, train_principal
from sb3_contracts.experiments.coin.plots import _pooled_margin
from sb3_contracts.experiments.coin.settings import (
    AGENT_HYPERPARAMS,
    BUDGETS,
    RULE_AGENT_KWARGS,
    CoinSettings,
    read_zoo_overrides,
    zoo_hyperparams,
)
from sb3_contracts.game.coin_agents_view import SoloContractVecEnv, coin_principal
from sb3_contracts.game.responders import make_responder

TINY = dict(preset="3x3", n_games=4, principal_steps=800, agent_steps=800, baseline_steps=800, eval_games=8,
            eval_episodes=1, principal_kwargs={"learning_starts": 100}, agent_kwargs={
                "dqn": {"learning_starts": 100}, "ppo": {"n_steps": 16, "batch_size": 64}})


def test_pipeline_runs_end_to_end_and_writes_one_run_per_phase(tmp_path):
    results = run_experiment(EXPERIMENT, CoinSettings(**TINY), tmp_path, parallel=False)
    summary = results["summary"]
    for key in ("welfare_ratio", "payment_share", "follow_rate", "spe_ratio", "ic_ratio",
                "constant_proportion_welfare_ratio", "selfish_welfare_ratio"):
        assert np.isfinite(summary[key]), key
    assert 0.0 <= summary["follow_rate"] <= 1.0 and summary["payment_share"] >= 0.0
    # every welfare is also reported against the game's exact optimum, which no policy exceeds
    assert summary["optimal_welfare"] == pytest.approx(optimal_welfare("3x3", contested="random"))
    for key in ("optimal_ratio", "selfish_optimal_ratio", "cooperative_optimal_ratio", "proportion_optimal_ratio"):
        assert 0.0 <= summary[key] < 1.1, key
    assert summary["optimal_ratio"] == pytest.approx(summary["welfare"] / summary["optimal_welfare"])
    proportion = results["baselines"]["proportion"]
    assert summary["constant_proportion_margin"] == pytest.approx(summary["welfare"] - proportion["welfare"])
    assert summary["constant_proportion_margin_se"] > 0
    # agents that follow exactly under the principal follow every recommendation (all contracts recommend)
    assert results["principal_follow"]["follow_rate"] == 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["summary"] == pytest.approx(summary)
    runs = {path.name.rsplit("_", 1)[0] for path in (tmp_path / "tb").iterdir() if path.name != "summary"}
    assert runs == {"principal", "validation_dqn", "validation_ppo", "best_response_spe", "best_response_ic",
                    "baseline_selfish", "baseline_cooperative", "baseline_proportion"}
    assert MultiAgentContractDQN.load(tmp_path / "principal.zip").action_space.shape == (2, 4)
    assert {path.name for path in (tmp_path / "tb").iterdir()} >= {"summary"}


def test_validation_agents_never_read_the_principals_parameters():
    config = CoinSettings(**TINY, algos=("dqn",))
    principal = train_principal(config)
    offer = coin_principal(principal)
    parameters = {p.data_ptr() for p in principal.policy.parameters()}
    # the callable holds no reference to the learner (nor do the functions it closes over); sabotage the
    # learner's networks to prove it
    cells, functions = [], [offer]
    while functions:
        contents = [cell.cell_contents for cell in functions.pop().__closure__ or ()]
        cells += contents
        functions += [content for content in contents if callable(content) and hasattr(content, "__closure__")]
    assert not any(isinstance(content, MultiAgentContractDQN) for content in cells)
    assert not any(p.data_ptr() in parameters for content in cells if isinstance(content, th.nn.Module)
                   for p in content.parameters())
    networks = principal.policy  # kept alive, so that its memory cannot be reused by the agents' tensors
    for parameter in networks.parameters():
        parameter.data.fill_(float("nan"))
    principal.policy = None
    agents = train_agents(offer, config, "dqn")
    assert not any(p.data_ptr() in parameters for p in agents.policy.parameters())
    assert agents.env.principal is not offer  # validated wrapper around the callable, nothing else
    assert all(th.isnan(p).all() for p in networks.parameters())  # untouched since the sabotage
    contracts = agents.env.contracts
    assert np.isfinite(contracts).all() and (contracts >= 0).all()


def test_solo_env_lets_player_zero_learn_while_the_other_follows():
    offer = lambda state, obs: np.tile([0.0, 0.0, 0.5, 0.0], (obs.shape[0], 2, 1))  # noqa: E731
    env = SoloContractVecEnv(3, offer, make_responder("follow"), seed=0, preset="3x3")
    obs = env.reset()
    assert obs.shape == (3, 40) and env.num_envs == 3
    obs, rewards, dones, infos = env.step(np.zeros(3, dtype=np.int64))
    # player 1 followed (moved down, paid 0.5); player 0 moved right: not paid
    assert [info["followed"] for info in infos] == [0, 0, 0]
    assert env.inner.core.n_games == 3 and rewards.shape == (3,)


def test_alternation_runs_both_learners():
    config = CoinSettings(**{**TINY, "principal_steps": 400, "agent_steps": 400})
    principal, agents, coordinator = alternate(config, rounds=2)
    assert [log.round for log in coordinator.history] == [1, 2]
    assert principal.num_timesteps >= 800 and agents.num_timesteps >= 800


def test_the_zoo_files_are_what_the_settings_generate(tmp_path):
    yaml = pytest.importorskip("yaml")
    for name, entries in zoo_hyperparams().items():
        with open(f"zoo_configs/{name}.yml") as file:
            written = yaml.safe_load(file)
        for env_id, entry in entries.items():
            assert written[env_id].pop("env_kwargs") == entry.pop("env_kwargs")
            assert written[env_id] == pytest.approx(entry), (name, env_id)
    # and read back, they give the settings' own hyperparameters
    overrides = read_zoo_overrides(["zoo_configs/contract_dqn_multiagent.yml", "zoo_configs/dqn.yml",
                                    "zoo_configs/ppo.yml"], "7x7")
    config, default = CoinSettings("7x7", **overrides), CoinSettings("7x7")
    assert config.principal_hyperparams() == default.principal_hyperparams()
    for algo in AGENT_HYPERPARAMS:
        assert config.agent_hyperparams(algo, schedules=False) == default.agent_hyperparams(algo, schedules=False)
    with pytest.raises(ValueError, match="file's name must be one of"):
        read_zoo_overrides([tmp_path / "a2c.yml"], "3x3")


def test_bad_config_raises():
    with pytest.raises(ValueError, match="principal_steps must be a positive integer"):
        CoinSettings(principal_steps=0)
    with pytest.raises(ValueError, match="algos must be"):
        CoinSettings(algos=("a2c",))
    with pytest.raises(ValueError, match="preset must be one of"):
        CoinSettings(preset="5x5")
    with pytest.raises(ValueError, match="reward_rule must be one of"):
        CoinSettings(reward_rule="gift")
    with pytest.raises(ValueError, match="learning_rate must be"):
        CoinSettings(agent_kwargs={"dqn": {"learning_rate": "exp_1e-3"}})
    with pytest.raises(ValueError, match="agent_kwargs keys must be among"):
        CoinSettings(agent_kwargs={"a2c": {}})


def test_zoo_learning_rate_strings_become_linear_decays():
    config = CoinSettings(agent_kwargs={"ppo": {"learning_rate": "lin_2e-4"}})
    dqn, ppo = config.agent_hyperparams("dqn")["learning_rate"], config.agent_hyperparams("ppo")["learning_rate"]
    assert AGENT_HYPERPARAMS["dqn"]["learning_rate"] == "lin_1e-3"
    assert [dqn(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 5e-4, 0.0])
    assert ppo(0.25) == pytest.approx(5e-5)
    assert json.loads(json.dumps(asdict(config)))["agent_kwargs"] == {"ppo": {"learning_rate": "lin_2e-4"}}
    constant = CoinSettings(agent_kwargs={"dqn": {"learning_rate": 3e-4}})
    assert constant.agent_hyperparams("dqn")["learning_rate"] == 3e-4


def test_the_reward_rule_sets_the_agents_learning_rate_unless_overridden():
    lola = CoinSettings(reward_rule="lola")
    assert lola.agent_hyperparams("dqn")["learning_rate"] == RULE_AGENT_KWARGS["lola"]["dqn"]["learning_rate"]
    assert callable(CoinSettings(reward_rule="parl").agent_hyperparams("dqn")["learning_rate"])
    decayed = CoinSettings(reward_rule="lola", agent_kwargs={"dqn": {"learning_rate": "lin_1e-3"}})
    assert decayed.agent_hyperparams("dqn")["learning_rate"](0.5) == pytest.approx(5e-4)
    assert lola.agent_hyperparams("ppo")["learning_rate"] == AGENT_HYPERPARAMS["ppo"]["learning_rate"]


def test_presets_set_budgets_and_nudge_unless_overridden():
    small = CoinSettings("3x3")
    large = CoinSettings("7x7", agent_steps=5, principal_kwargs={"nudge": 0.2})
    assert small.principal_steps == BUDGETS["3x3"]["principal_steps"]
    assert small.principal_hyperparams()["nudge"] == BUDGETS["3x3"]["nudge"]
    assert large.baseline_steps == BUDGETS["7x7"]["baseline_steps"] and large.agent_steps == 5
    assert large.principal_hyperparams()["nudge"] == 0.2
    # the principal reads the centred grid; every agent learner (validated agents and baselines alike, so that no
    # method is compared with a handicap) reads the paper's convolution
    assert small.principal_hyperparams()["policy_kwargs"]["features_extractor_class"] is CenteredCoinExtractor
    for algo in AGENT_HYPERPARAMS:
        assert small.agent_hyperparams(algo)["policy_kwargs"]["features_extractor_class"] is CoinConvExtractor


def test_cli_coin_plot_and_table(tmp_path, capsys):
    out = tmp_path / "coin"
    assert main(["coin", "--preset", "3x3", "--seed", "1", "--out", str(out), "--n-games", "4", "--principal-steps",
                 "640", "--agent-steps", "640", "--baseline-steps", "640", "--algos", "dqn", "--no-progress",
                 "--reward-rule", "lola", "--sequential"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "welfare_ratio" in summary and (out / "metrics.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["config"]["reward_rule"] == "lola"
    assert summary["optimal_welfare"] == pytest.approx(optimal_welfare("3x3", reward_rule="lola"))
    png = out / "coin.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the run draws its figure itself
    png.unlink()
    assert main(["plot", str(out)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="preset must be one of"):
        main(["coin", "--preset", "5x5", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="no metrics.json"):
        main(["plot", str(tmp_path / "missing")])
    capsys.readouterr()
    assert main(["table", str(out), str(out / "metrics.json")]) == 0
    table, notes = capsys.readouterr().out.strip().split("\n\n")
    header, rule, *rows, mean = table.splitlines()
    assert header.count("|") == rule.count("|") == rows[0].count("|") == mean.count("|") == 14 and len(rows) == 2
    cpu_s = json.loads((out / "metrics.json").read_text())["cpu_s"]
    assert rows[0].endswith(f"min | {cpu_s:,.0f} s |")  # a run that was not resumed: no mark on its wall
    margin = f"{summary['constant_proportion_margin']:+.2f} ± {summary['constant_proportion_margin_se']:.2f}"
    # budgets far below the preset's: the rows say so, and the note under the table says which and why
    assert rows[0].startswith(f"| 1 † | {summary['welfare_ratio']:.3f} |") and margin in rows[0]
    pooled_se = summary["constant_proportion_margin_se"] * np.sqrt(2) / 2  # two copies of the same run
    mean_margin = f"{summary['constant_proportion_margin']:+.2f} ± {pooled_se:.2f} (± 0.00 over seeds)"
    assert mean.startswith("| mean † |") and mean_margin in mean
    assert notes.startswith("† seed 1: budget below the preset's (principal_steps 640 < 150,000; agent_steps 640 < ")
    with pytest.raises(SystemExit, match="no metrics.json"):
        main(["table", str(tmp_path / "missing")])
    (tmp_path / "run.log").write_text("principal: 640 agent-steps\n")
    with pytest.raises(SystemExit, match="run.log is not JSON"):
        main(["table", str(out), str(tmp_path / "run.log")])


def _capture_figure(monkeypatch, module):
    figures = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path, **kwargs: figures.append(fig) or path)
    return figures


def test_figure2_draws_ratios_around_1_with_words_and_names_the_rules_and_seeds(monkeypatch, tmp_path):
    import sb3_contracts.experiments.coin.plots as plots

    figures = _capture_figure(monkeypatch, plots)
    runs = [{"config": {"preset": "3x3", "reward_rule": "lola", "contested": "random", "seed": seed},
             "validation": {"dqn": {"welfare": 8.0, "payment_share": 0.4, "follow_rate": 0.9}},
             "baselines": {kind: {"welfare": 6.0} for kind in ("selfish", "cooperative")} | {
                 "proportion": {"welfare": 7.0, "spend_per_episode": 1.0}},
             "ratios": {"spe_ratio": 0.9995 + seed * 1e-4, "ic_ratio": 0.9993 + seed * 1e-4}, "summary": {}}
            for seed in (0, 1)]
    plots.plot_figure2(runs, tmp_path / "coin.png")
    fig = figures[0]
    follow, spe, ic = fig.axes[2:5]
    for ax in (follow, spe, ic):
        low, high = ax.get_ylim()
        assert low <= 0.95 and high >= 1.05  # a ratio of 0.9993 sits on its reference line, not far below it
    assert spe.get_legend().get_texts()[0].get_text().startswith("1 = deviating earns what following does")
    assert "every recommendation followed" in follow.get_legend().get_texts()[0].get_text()
    title = fig._suptitle.get_text()
    assert "reward rule lola" in title and "contested coins: random" in title and "2 seeds" in title


def test_the_two_phase_figure_has_panel_titles_units_and_one_legend_for_all(monkeypatch, tmp_path):
    from types import SimpleNamespace

    import sb3_contracts.experiments.two_phase_plots as two_phase_plots

    figures = _capture_figure(monkeypatch, two_phase_plots)
    episodes, runs = 20, 2
    record = SimpleNamespace(welfare=np.ones((episodes, runs)), optimal_welfare=1.0,
                             welfare_regret=np.ones((episodes, runs)), agent_regret=np.ones((episodes, runs)),
                             transfers=np.ones((episodes, runs)), principal_net=np.ones((episodes, runs)),
                             mean_state=np.ones((episodes, 3)))
    two_phase_plots.plot_runs({"two-phase": record, "none": record}, tmp_path / "two_phase.png")
    fig = figures[0]
    assert all(ax.get_title() for ax in fig.axes) and all(ax.get_legend() is None for ax in fig.axes)
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["two-phase", "none"]
    assert "reward units" in fig.axes[3].get_ylabel()


def test_mean_margin_errors_pool_the_evaluation_and_measure_the_seeds_spread():
    runs = [{"summary": {"constant_proportion_margin": margin, "constant_proportion_margin_se": 0.06}}
            for margin in (-0.13, 0.04, -0.07)]
    margin, evaluation_se, over_runs_se = _pooled_margin(runs)
    assert margin == pytest.approx(-0.16 / 3)
    assert evaluation_se == pytest.approx(0.06 / np.sqrt(3))
    assert over_runs_se == pytest.approx(np.std([-0.13, 0.04, -0.07], ddof=1) / np.sqrt(3))
    assert np.isnan(_pooled_margin(runs[:1])[2])


def test_the_encoder_and_the_replay_are_options_of_the_experiment():
    from sb3_contracts.contract_dqn_multiagent import MultiAgentPrioritizedReplayBuffer
    from sb3_contracts.contract_dqn_multiagent.encoders import CoinConvExtractor

    config = CoinSettings(encoder="conv", replay="prioritized")
    principal = config.principal_hyperparams()
    assert principal["policy_kwargs"]["features_extractor_class"] is CoinConvExtractor
    assert principal["replay_buffer_class"] is MultiAgentPrioritizedReplayBuffer
    assert principal["replay_buffer_kwargs"] == {"alpha": 0.4, "beta": 0.0, "final_beta": 0.0, "min_priority": 1e-7}
    assert config.agent_hyperparams("dqn")["policy_kwargs"]["features_extractor_class"] is CoinConvExtractor
    # an explicit override still wins over the encoder option
    custom = CoinSettings(encoder="conv", agent_kwargs={"ppo": {"policy_kwargs": {"net_arch": [8]}}})
    assert custom.agent_hyperparams("ppo")["policy_kwargs"] == {"net_arch": [8]}
    with pytest.raises(ValueError, match="encoder must be one of"):
        CoinSettings(encoder="resnet")
    with pytest.raises(ValueError, match="replay must be one of"):
        CoinSettings(replay="her")
    # the agents' encoder varies apart from the principal's
    split = CoinSettings(encoder="conv", agent_encoder="centred")
    assert split.principal_hyperparams()["policy_kwargs"]["features_extractor_class"] is CoinConvExtractor
    for algo in ("dqn", "ppo"):
        assert split.agent_hyperparams(algo)["policy_kwargs"]["features_extractor_class"] is CenteredCoinExtractor
    with pytest.raises(ValueError, match="agent_encoder must be one of"):
        CoinSettings(agent_encoder="resnet")
