"""The two-phase mechanism, learners, baselines, coarse designs and the bandit reproduction (tiny sizes)."""

import json

import numpy as np
import pytest
from sb3_contracts.envs.pollution import PollutionConfig, pollution_model

from sb3_contracts.cli import main
from sb3_contracts.incentives import transfer_best_response, welfare, welfare_optimum
from sb3_contracts.incentives.agents import ExactAgent, make_agent
from sb3_contracts.incentives.bandit import BanditSetup, run_ipa, run_two_phase
from sb3_contracts.incentives.designs import best_flat_subsidy
from sb3_contracts.incentives.mechanism import TwoPhaseConfig, TwoPhaseMechanism
from sb3_contracts.incentives.metrics import loglog_slope, summarize
from sb3_contracts.incentives.principals import FixedSchedule
from sb3_contracts.incentives.schedules import oracle_transfers, spe_transfers
from sb3_contracts.incentives.simulate import run_game
from sb3_contracts.incentives.transfers import minimal_transfers

SMALL = PollutionConfig(horizon=3, max_stock=8, initial_max_stock=4)


def test_phase1_recovers_tau_star_against_an_exact_agent():
    model = pollution_model(SMALL)
    targets = welfare_optimum(model).policy
    config = TwoPhaseConfig(min_step_episodes=400)
    mechanism = TwoPhaseMechanism(model.shape, 2, 400, targets, config, seed=0)
    record = run_game(model, ExactAgent(model, 2), mechanism, 3 * 400 + 50, seed=0)
    assert mechanism.phase == "steer" and record.estimating.sum() == mechanism.phase1_episodes
    exact = np.take_along_axis(minimal_transfers(model.transitions, model.agent_reward, targets),
                               targets[..., None], -1)[..., 0]
    index = np.broadcast_to(targets[None, ..., None], (2, *targets.shape, 1))
    estimate = np.take_along_axis(mechanism.estimates, index, -1)[..., 0]
    finished = np.take_along_axis(mechanism.accepted, index, -1)[..., 0]
    assert finished[:, 0, :5].all()  # every initial stock is visited
    assert np.all(np.abs(estimate - exact)[finished] <= config.margin)
    # Phase 2 steers the exact agent to the welfare optimum.
    np.testing.assert_allclose(record.welfare[-10:], record.optimal_welfare)


def test_oracle_and_first_system_spe_contracts_coincide_and_implement_the_optimum():
    model = pollution_model(SMALL)
    np.testing.assert_allclose(spe_transfers(model), oracle_transfers(model), atol=1e-9)
    response = transfer_best_response(model, oracle_transfers(model, margin=0.1))
    np.testing.assert_array_equal(response.policy, welfare_optimum(model).policy)


@pytest.mark.parametrize("agent", ["optimistic_q", "epsilon_greedy_q"])
def test_learners_regret_is_exact_and_shrinks_under_fixed_transfers(agent):
    model = pollution_model(SMALL)
    learner = make_agent(agent, model, 3, seed=0)
    record = run_game(model, learner, FixedSchedule(oracle_transfers(model, 0.2), 3), 1500, seed=1)
    assert np.all(record.agent_regret >= -1e-9)
    assert record.agent_regret[-100:].mean() < 0.5 * record.agent_regret[:100].mean()
    assert record.welfare[-100:].mean() > record.welfare[:100].mean()


def test_summary_and_slope():
    t = np.arange(1, 10_001, dtype=float)
    assert loglog_slope(np.sqrt(t)) == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="start"):
        loglog_slope(t, start=20_000)
    model = pollution_model(SMALL)
    record = run_game(model, ExactAgent(model, 2), FixedSchedule(np.zeros(model.shape), 2), 1200)
    summary = summarize(record)
    selfish = welfare(model, transfer_best_response(model, np.zeros(model.shape)).policy)
    assert summary["final_welfare_ratio"] == pytest.approx(selfish / record.optimal_welfare)
    assert summary["welfare_regret_slope"] == pytest.approx(1.0, abs=1e-6)


def test_flat_subsidy_closes_part_of_the_gap():
    model = pollution_model(SMALL)
    result = best_flat_subsidy(model, SMALL.max_emission - np.arange(SMALL.n_actions))
    assert 0 < result.gap_closed <= 1 + 1e-9 and result.expected_payment >= 0


def test_bandit_reproduction_small():
    setup = BanditSetup(horizon=400, n_runs=4)
    for curve in (run_ipa(setup), run_two_phase(setup)):
        assert curve.shape == (400, 4)
        assert curve[-1].mean() / 400 < 0.3  # both learn: average regret well under a wrong arm's


def test_mechanism_rejects_bad_input():
    with pytest.raises(ValueError, match="order"):
        TwoPhaseConfig(order="sideways")
    with pytest.raises(ValueError, match="max_transfer"):
        TwoPhaseConfig(max_transfer=0.05)
    with pytest.raises(TypeError, match="ratchet must be a bool"):
        TwoPhaseConfig(ratchet="yes")
    with pytest.raises(ValueError, match="targets"):
        TwoPhaseMechanism((2, 3, 2), 1, 100, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="n_runs"):
        TwoPhaseMechanism((2, 3, 2), True, 100)


def test_cli_two_phase_writes_metrics_plots_and_tensorboard(tmp_path, capsys):
    out = tmp_path / "tp"
    assert main(["two-phase", "--episodes", "200", "--n-runs", "2", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["summaries"]) == {"two_phase", "none", "oracle"}
    assert (out / "two_phase.png").exists() and any((out / "tb").iterdir())
    with pytest.raises(SystemExit, match="episodes"):
        main(["two-phase", "--episodes", "1", "--out", str(out)])


def test_dqn_firm_trains_on_the_agent_view_and_is_scored_exactly():
    pytest.importorskip("stable_baselines3")
    from sb3_contracts.incentives.sb3_agents import train_dqn_firm

    ratio = train_dqn_firm(SMALL, None, 1_200, seed=0)
    assert 0 < ratio <= 1 + 1e-9  # an exact score of a real policy: never above the optimum


def test_the_finite_horizon_pigouvian_subsidy_closes_the_whole_gap_under_linear_damage():
    from sb3_contracts.envs.pollution import linear_marginal_damage

    from sb3_contracts.incentives.designs import time_subsidy

    world = PollutionConfig(horizon=3, initial_max_stock=4)  # the stock never reaches the grid's cap
    model = pollution_model(world)
    result = time_subsidy(model, world.max_emission - np.arange(world.n_actions), linear_marginal_damage(world))
    assert result.gap_closed == pytest.approx(1.0)


def test_two_firms_one_regulated_the_mechanism_runs_and_steers():
    from sb3_contracts.experiments import run_experiment
    from sb3_contracts.experiments.two_phase import EXPERIMENT, TwoPhaseSettings

    settings = TwoPhaseSettings(max_stock=26, n_firms=2, world_kwargs={"horizon": 4, "initial_max_stock": 4},
                                agent="exact", principals=("two_phase", "none"), episodes=1500, n_runs=2,
                                mechanism_kwargs={"visit_scale": 0.0, "min_step_episodes": 300})
    metrics = run_experiment(EXPERIMENT, settings)
    summaries = metrics["summaries"]
    assert summaries["none"]["final_welfare_ratio"] < 0.99
    assert summaries["two_phase"]["final_welfare_ratio"] > summaries["none"]["final_welfare_ratio"]
