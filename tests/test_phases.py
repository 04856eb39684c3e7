"""Phases as a DAG and sweeps, in sequence (no Ray needed): order, checkpoints, resumption, errors, CLI."""

import dataclasses
import json

import numpy as np
import pytest

from sb3_contracts.cli import main
from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.coin.experiment import EXPERIMENT, coin_phases
from sb3_contracts.experiments.coin.settings import CoinSettings
from sb3_contracts.experiments.runner import (
    Phase,
    PhaseRecord,
    check_address,
    load_phases,
    ordered,
    run_phases,
    save_phases,
)
from sb3_contracts.sweeps import plan_trials, resume_sweep, run_sweep, sweep_status

TREE = {"depth": 3, "iterations": 100, "n_envs": 4, "n_evaluations": 2}
#: The Coin Game experiment at its smallest: every phase, a few hundred steps each.
MICRO = dict(preset="3x3", n_games=2, principal_steps=200, agent_steps=200, baseline_steps=200, eval_games=4,
             eval_episodes=1, algos=("dqn",), principal_kwargs={"learning_starts": 50},
             agent_kwargs={"dqn": {"learning_starts": 50}})


def same_results(first, second):
    """Whether two runs of the experiment found the same figures (NaN equal to NaN; timings aside)."""
    keys = ("config", "principal_follow", "validation", "ratios", "baselines", "summary")
    return all(json.dumps(first[key], sort_keys=True) == json.dumps(second[key], sort_keys=True) for key in keys)


def test_phases_run_after_what_they_need_in_the_lists_order():
    calls = []

    def step(name):
        def run(*inputs):
            calls.append(name)
            return {"name": name, "inputs": [value["name"] for value in inputs]}

        return run

    phases = [Phase("c", step("c"), ("a", "b")), Phase("a", step("a")), Phase("b", step("b"), ("a",)),
              Phase("d", step("d"))]
    assert [phase.name for phase in ordered(phases)] == ["a", "b", "c", "d"]
    records = run_phases(phases, parallel=False)
    assert calls == ["a", "b", "c", "d"] and records["c"].output["inputs"] == ["a", "b"]
    # finished phases are not run again; what they returned feeds the others
    calls.clear()
    seen = []
    again = run_phases(phases, parallel=False, done={"a": records["a"]}, on_done=lambda name, record: seen.append(name))
    assert calls == seen == ["b", "c", "d"] and again["a"] is records["a"]


@pytest.mark.parametrize(("phases", "message"), [
    ([Phase("a", print), Phase("a", print)], "unique"),
    ([Phase("a", print, ("z",))], "unknown phases"),
    ([Phase("a", print, ("b",)), Phase("b", print, ("a",))], "cycle"),
])
def test_bad_dags_raise(phases, message):
    with pytest.raises(ValueError, match=message):
        run_phases(phases, parallel=False)


def test_records_survive_a_checkpoint(tmp_path):
    records = {"principal": PhaseRecord({"model": b"PK\x03\x04zip", "follow": {"welfare": 15.5}}, 2.5, 2.4),
               "baseline_selfish": PhaseRecord({"welfare": 14.0, "p": float("nan")}, 1.0)}
    loaded = load_phases(save_phases(tmp_path / "checkpoint", records))
    assert loaded["principal"] == records["principal"] and (tmp_path / "checkpoint" / "principal.zip").is_file()
    assert loaded["baseline_selfish"].output["welfare"] == 14.0


def test_coin_dag_orders_what_must_wait():
    phases = {phase.name: phase for phase in coin_phases(CoinSettings(algos=("ppo", "dqn")))}
    assert phases["best_response_ic"].needs == ("principal", "validation_ppo")  # the first validation's agents
    assert phases["baseline_proportion"].needs == ("validation_ppo",)  # matches the first validation's spend
    assert phases["baseline_selfish"].needs == phases["baseline_cooperative"].needs == ()
    assert list(phases)[:2] == ["principal", "validation_ppo"]  # the critical path first


def test_a_restored_pipeline_skips_its_finished_phases(tmp_path):
    config = CoinSettings(**MICRO)
    saved = {}
    first = run_experiment(EXPERIMENT, config, tmp_path / "first", parallel=False, on_phase=saved.__setitem__)
    assert len(saved) == 7
    # resume with the principal and the first validation done (through a checkpoint): the rest runs, same results
    checkpoint = {name: saved[name] for name in ("principal", "validation_dqn")}
    ran = []
    again = run_experiment(EXPERIMENT, config, tmp_path / "again", parallel=False,
                         done=load_phases(save_phases(tmp_path / "checkpoint", checkpoint)),
                         on_phase=lambda name, record: ran.append(name))
    assert sorted(ran) == sorted(set(saved) - set(checkpoint))
    assert same_results(again, first)
    # its wall time covers only this call: the results say which phases came from the checkpoint
    assert first["resumed_phases"] == [] and again["resumed_phases"] == ["principal", "validation_dqn"]
    assert (tmp_path / "again" / "principal.zip").read_bytes() == checkpoint["principal"].output["model"]


def test_a_sweep_without_ray_runs_its_trials_once_and_the_cli_reads_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "tree", "--no-ray", "--seeds", "0", "1", "--set", *(f"{k}={v}" for k, v in TREE.items()),
                 "--out", str(out)]) == 0
    assert "2 of 2 trials finished (2 ran now)" in capsys.readouterr().out
    trials = sorted(path.name for path in out.iterdir() if path.is_dir())
    assert trials == ["000_seed=0", "001_seed=1"]
    assert all((out / name / "metrics.json").is_file() and (out / name / "checkpoint" / "principal.zip").is_file()
               for name in trials)
    rows = [json.loads(line) for line in (out / trials[0] / "result.json").read_text().splitlines()]
    assert [row["phase"] for row in rows] == ["principal", "summary"] and "utility_ratio" in rows[-1]
    # the same sweep again runs nothing; another sweep in the same folder is refused
    status = run_sweep("tree", seeds=[0, 1], settings=TREE, out=out, use_ray=False)
    assert status["ran"] == [] and {trial["status"] for trial in status["trials"]} == {"finished"}
    assert resume_sweep(out, use_ray=False)["ran"] == []
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep("tree", seeds=[0, 1, 2], settings=TREE, out=out, use_ray=False)
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("**tree** (2 runs)") and table.count("| 3 | 0 |") == 2 and "mean ± std" in table
    assert main(["plot", str(out)]) == 0
    assert (out / "plots" / "tree.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sweep_resumes_an_unfinished_trial_from_its_folder(tmp_path):
    out = tmp_path / "sweep"
    run_sweep("tree", seeds=[0, 1], settings=TREE, out=out, use_ray=False)
    (out / "001_seed=1" / "finished").unlink()  # as if stopped before its end
    status = run_sweep("tree", seeds=[0, 1], settings=TREE, out=out, use_ray=False)
    assert status["ran"] == ["001_seed=1"] and sweep_status(out)["trials"][1]["status"] == "finished"


def test_grids_name_their_trials_and_check_every_setting():
    trials = plan_trials("coin", {"reward_rule": ["parl", "lola"]}, [0, 1], {"preset": "3x3"})
    assert [trial["name"] for trial in trials] == ["000_reward_rule=parl_seed=0", "001_reward_rule=parl_seed=1",
                                                   "002_reward_rule=lola_seed=0", "003_reward_rule=lola_seed=1"]
    assert trials[3]["settings"] == {"preset": "3x3", "reward_rule": "lola", "seed": 1}


@pytest.mark.parametrize(("argv", "message"), [
    (["sweep", "pong"], "experiment must be one of"),
    (["sweep", "coin", "--grid", "colour=red,blue"], "unknown settings \\['colour'\\]"),
    (["sweep", "coin", "--grid", "alpha=0.1,-1"], "alpha must be a positive"),
    (["sweep", "coin", "--grid", "reward_rule"], "--grid expects KEY=V1,V2"),
    (["sweep", "coin", "--set", "seed=3"], "give the seeds with seeds"),
    (["sweep", "tree", "--phase-cpus", "2"], "has no phases to run in parallel"),
    (["sweep", "coin", "--address", "not an address"], "--address must be"),
])
def test_bad_sweeps_are_refused_before_anything_runs(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        main([*argv, "--out", str(tmp_path / "sweep")])
    assert not (tmp_path / "sweep").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(SystemExit, match="--out must be a folder"):
        main(["sweep", "tree", "--no-ray", "--out", str(tmp_path / "taken")])
    with pytest.raises(ValueError, match="out must be a folder"):
        run_experiment(EXPERIMENT, CoinSettings(), tmp_path / "taken", parallel=False)
    assert check_address("10.0.0.1:6379") and check_address("ray://head:10001") and check_address("auto")


def test_a_two_phase_sweep_runs_its_grid_and_the_cli_reads_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "two_phase", "--no-ray", "--grid", "damage=linear,quadratic", "--set", "episodes=200",
                 "n_runs=2", "max_stock=10", "principals=[\"two_phase\", \"none\"]", "--out", str(out)]) == 0
    assert "2 of 2 trials finished" in capsys.readouterr().out
    rows = json.loads((out / "000_damage=linear_seed=0" / "result.json").read_text().splitlines()[-1])
    assert 0 < rows["two_phase/final_welfare_ratio"] <= 1 + 1e-9 and "none/final_welfare_ratio" in rows
    assert main(["table", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("| 0 | two_phase |") == 2 and table.count("mean ± std | none") == 2
    assert main(["plot", str(out)]) == 0
    assert len(list((out / "plots").glob("*.png"))) == 2
    with pytest.raises(SystemExit, match="damage"):
        main(["sweep", "two_phase", "--no-ray", "--grid", "damage=cubic", "--out", str(tmp_path / "bad")])


def test_a_phase_task_reports_its_learners_progress_without_changing_its_training(tmp_path):
    import torch as th

    from sb3_contracts.experiments.coin.experiment import train_principal
    from sb3_contracts.experiments.progress import read_progress, reporting_to

    config = CoinSettings(**MICRO)
    report = tmp_path / "principal.json"
    quiet = train_principal(config)  # outside a Ray task: no report
    assert not list(tmp_path.iterdir())
    with reporting_to(report):
        reported = train_principal(config)
    progress = read_progress(report)
    assert progress.total > 0 and progress.steps >= progress.total and progress.rate > 0
    assert f"{progress.steps:,}/{progress.total:,} steps (100%)" in str(progress) and "steps/s" in str(progress)
    for name, weights in quiet.policy.state_dict().items():  # the same learner, step for step
        assert th.equal(weights, reported.policy.state_dict()[name]), name


@dataclasses.dataclass(frozen=True)
class _Tiny:
    seed: int = 0
    threads: int = 1


def test_metrics_json_holds_what_json_has_no_form_for(tmp_path):
    # a zoo file's policy_kwargs hold classes (features extractors): the run's metrics.json names them
    from sb3_contracts.contract_dqn_multiagent.encoders import CoinConvExtractor
    from sb3_contracts.experiments import Experiment, load_metrics

    tiny = Experiment("tiny", _Tiny, lambda settings, context: [Phase("only", lambda: {"x": np.float32(0.5)})],
                      lambda settings, records: {"summary": {"x": records["only"].output["x"]},
                                                 "config": {"policy_kwargs": {"cls": CoinConvExtractor}}},
                      lambda runs: "", lambda runs, png: png)
    run_experiment(tiny, _Tiny(), tmp_path / "run")
    metrics = load_metrics(tmp_path / "run", "tiny")
    assert metrics["config"]["policy_kwargs"]["cls"].endswith("encoders.CoinConvExtractor")
    assert metrics["summary"]["x"] == 0.5
