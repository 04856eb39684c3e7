"""The parallel paths on a local Ray of 2 CPUs (started once for the module): phases as Ray tasks, sweeps as Ray Tune
trials, and a sweep resumed after a trial crashed."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

from test_phases import MICRO, TREE, same_results  # noqa: E402

from sb3_contracts import experiments, sweeps  # noqa: E402
from sb3_contracts.cli import main  # noqa: E402
from sb3_contracts.experiments import Experiment, register_experiment, run_experiment, runner  # noqa: E402
from sb3_contracts.experiments.coin.experiment import EXPERIMENT, coin_phases  # noqa: E402
from sb3_contracts.experiments.coin.settings import CoinSettings  # noqa: E402
from sb3_contracts.experiments.runner import Phase  # noqa: E402
from sb3_contracts.sweeps import run_sweep  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the flaky experiment below lives in this test module, which Ray's workers cannot import: ship it by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


def test_parallel_phases_find_what_the_sequence_finds(tmp_path):
    config = CoinSettings(**{**MICRO, "algos": ("dqn", "ppo"), "agent_kwargs": {
        "dqn": {"learning_starts": 50}, "ppo": {"n_steps": 16, "batch_size": 32}}})
    sequence = run_experiment(EXPERIMENT, config, tmp_path / "sequence", parallel=False)
    lines = []
    parallel = run_experiment(EXPERIMENT, config, tmp_path / "parallel", parallel=True, progress_bar=True,
                              log=lines.append, progress_every=0.05)
    assert same_results(sequence, parallel)  # reporting progress changed no learner
    # the phases' learners report as they train: a line per running phase with its steps, rate and time left
    progress = [re.fullmatch(r"\[ *[\d.]+s\] (\w+): ([\d,]+)/([\d,]+) steps \(\d+%\), ([\d,]+) steps/s, .+", line)
                for line in lines if " steps/s, " in line]
    assert progress and all(match is not None and match[1] in sequence["timings"] for match in progress), lines
    assert {match[1] for match in progress} >= {"principal"}, lines
    assert any(int(match[4].replace(",", "")) > 0 for match in progress if match[1] == "principal"), lines
    assert parallel["timings"].keys() == sequence["timings"].keys()
    for folder in ("sequence", "parallel"):  # the same files: one TensorBoard run per phase, the principal
        runs = {path.name for path in (tmp_path / folder / "tb").iterdir()}
        assert runs == {f"{name}_1" for name in sequence["timings"]} | {"summary"}
    assert (tmp_path / "parallel" / "principal.zip").read_bytes()[:2] == b"PK"


def test_a_sweep_of_two_trials_runs_them_on_tune_and_the_cli_reads_it(tmp_path, capfd):
    out = tmp_path / "sweep"
    assert main(["sweep", "tree", "--seeds", "0", "1", "--set", *(f"{k}={v}" for k, v in TREE.items()),
                 "--out", str(out)]) == 0
    printed = "".join(capfd.readouterr())
    assert "2 of 2 trials finished (2 ran now)" in printed
    for notice in ("snapshotting", "tensorboard --logdir"):  # Tune's own notices, quiet unless asked for
        assert notice not in printed.lower(), printed
    for name in ("000_seed=0", "001_seed=1"):
        trial = out / name
        assert (trial / "metrics.json").is_file() and (trial / "tb").is_dir()
        assert list(trial.glob("checkpoint_*/principal.zip"))  # the trial's phase (its model), checkpointed
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert [row["phase"] for row in rows] == ["principal", "summary"]  # reported to Tune as each phase ends
        assert rows[-1]["utility_ratio"] == json.loads((trial / "metrics.json").read_text())["summary"]["utility_ratio"]
    assert main(["table", str(out)]) == 0
    assert capfd.readouterr().out.count("| 3 | 0 |") == 2


def test_an_address_where_no_cluster_answers_is_refused_at_once(tmp_path):
    with pytest.raises(SystemExit, match="no Ray cluster answers there"):
        main(["sweep", "tree", "--address", "127.0.0.1:1", "--out", str(tmp_path / "sweep")])
    assert not (tmp_path / "sweep").exists()


def _flaky_phases(config, context, log: Path):
    """The coin experiment's phases, each logged as it runs; seed 1's first phase after the principal crashes once."""

    def logged(phase):
        def run(*inputs):
            with log.open("a") as file:
                file.write(json.dumps({"seed": config.seed, "phase": phase.name}) + "\n")
            crashed = log.with_name("crashed")
            if config.seed == 1 and phase.name != "principal" and not crashed.exists():
                crashed.touch()
                raise RuntimeError("a crash on purpose")
            return phase.fn(*inputs)

        return Phase(phase.name, run, phase.needs)

    return [logged(phase) for phase in coin_phases(config, context)]


def test_a_crashed_trial_resumes_from_its_checkpoint_and_finished_ones_do_not_run_again(tmp_path):
    log = tmp_path / "calls.jsonl"
    register_experiment(dataclasses.replace(EXPERIMENT, name="flaky_coin", phases=partial(_flaky_phases, log=log)))
    try:
        out = tmp_path / "sweep"
        first = run_sweep("flaky_coin", seeds=[0, 1], settings=MICRO, out=out)
        assert [trial["status"] for trial in first["trials"]] == ["finished", "unfinished"]
        second = run_sweep("flaky_coin", seeds=[0, 1], settings=MICRO, out=out)
    finally:
        experiments._REGISTERED.pop("flaky_coin")
    assert second["ran"] == ["001_seed=1"] and {trial["status"] for trial in second["trials"]} == {"finished"}
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    principals = [call["seed"] for call in calls if call["phase"] == "principal"]
    assert sorted(principals) == [0, 1]  # neither principal trained twice: seed 1's resumed from its checkpoint
    assert len([call for call in calls if call["seed"] == 0]) == len(coin_phases(CoinSettings(**MICRO)))
    metrics = json.loads((out / "001_seed=1" / "metrics.json").read_text())
    assert metrics["summary"]["welfare"] > 0 and (out / "001_seed=1" / "principal.zip").is_file()


@dataclasses.dataclass(frozen=True)
class _Nothing:
    seed: int = 0
    threads: int = 1


def test_a_trial_marked_finished_in_the_sweep_folder_is_not_run_again(tmp_path, monkeypatch):
    # Tune restarts a trial its state file had not yet marked terminated when the sweep was killed; the trial runs
    # in a fresh staging folder, so only the sweep's folder tells that it had finished
    from ray import tune

    staging, sweep_folder = tmp_path / "staging", tmp_path / "sweep"
    staging.mkdir()
    (sweep_folder / "000_seed=0").mkdir(parents=True)
    (sweep_folder / "000_seed=0" / sweeps.FINISHED_FILE).touch()

    class Context:
        def get_trial_dir(self):
            return str(staging)

    monkeypatch.setattr(tune, "get_context", lambda: Context())
    experiment = Experiment("never", _Nothing, lambda *a: pytest.fail("a finished trial ran again"),
                            lambda *a: {"summary": {}}, lambda runs: "", lambda runs, png: png)
    params = {"trial": {"name": "000_seed=0", "settings": {}}}
    sweeps._tune_trial(params, experiment, 1, str(sweep_folder))
    with pytest.raises(AssertionError, match="not marked"):
        (sweep_folder / "000_seed=0" / sweeps.FINISHED_FILE).unlink()
        monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
        experiment = dataclasses.replace(experiment,
                                         phases=lambda *a: (_ for _ in ()).throw(AssertionError("not marked")))
        sweeps._tune_trial(params, experiment, 1, str(sweep_folder))


@pytest.mark.parametrize("verbose", ["1", "0"])
def test_ray_says_nothing_of_itself_unless_asked_for(verbose):
    # a fresh process: the notice comes from ray.init starting a new local Ray
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    code = ("from sb3_contracts.experiments.runner import init_ray; import ray; "
            "init_ray(num_cpus=1, include_dashboard=False); ray.shutdown()")
    result = subprocess.run([sys.executable, "-c", code], env={**env, runner.RAY_VERBOSE: verbose},
                            capture_output=True, text=True, timeout=300, check=True)
    assert ("Token authentication" in result.stdout + result.stderr) == (verbose == "1"), result.stderr
