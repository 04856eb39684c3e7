"""Sweeps: a grid of settings x seeds of an experiment, run as Ray Tune trials (in sequence without Ray).

Any experiment known by its name (:func:`sb3_contracts.experiments.get_experiment`: the built-in ``coin``, ``tree``,
``two_phase`` and ``bandit``, and those registered with :func:`~sb3_contracts.experiments.register_experiment`) can
be swept: a trial is one run of :func:`~sb3_contracts.experiments.runner.run_experiment` with its settings; nothing
here is written for one experiment. Example::

    from sb3_contracts.sweeps import run_sweep

    run_sweep("coin", grid={"reward_rule": ["parl", "lola"]}, seeds=[0, 1, 2], out="runs/sweep_rules")
    # sb3-contracts table runs/sweep_rules: a row per trial, the seeds pooled per setting

**Trials.** One per combination of the grid's values and seed, named after them (``003_reward_rule=lola_seed=1``).
Each trial asks Ray for one CPU, or with ``phase_cpus=k`` for k CPUs on one node (a ``STRICT_PACK`` placement group)
on which the experiment's phases run as parallel tasks. A trial writes its experiment's files (``metrics.json``,
models, TensorBoard) into its folder of the sweep, reports each finished phase's figures to Tune and, for
experiments whose phase outputs are checkpointable, checkpoints every finished phase, so that a resumed trial skips
them (the others restart).

**Resuming.** The sweep's folder holds Tune's state; running the same sweep again into it (or
:func:`resume_sweep`) restores it with ``Tuner.restore``: finished trials are not run again, unfinished and failed
ones resume from their latest checkpoint. Without Ray, trials run one after the other in this process, with the
same folders, files and resumption.

**Clusters.** ``address`` connects to a running cluster (``ray start --head`` prints it); with several machines the
sweep's folder must be storage that every node reaches: ``storage`` (a shared file system or a URI such as
``s3://bucket/sweeps``) under which the sweep is ``out``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_contracts.experiments import get_experiment
from sb3_contracts.experiments.runner import (
    RAY_EXTRA,
    Experiment,
    PhaseRecord,
    check_address,
    experiment_folder,
    init_ray,
    load_phases,
    quiet_ray,
    ray_available,
    run_experiment,
    save_phases,
)

#: Files of a sweep's folder: its specification; per trial Tune's parameters and reported results, and a mark
#: written once the trial's run returned (Tune keeps trial states in files of its own, not meant to be read).
SPEC_FILE, PARAMS_FILE, RESULT_FILE, FINISHED_FILE = "sweep.json", "params.json", "result.json", "finished"


@dataclass
class Trial:
    """
    What an experiment's ``run`` gets for one trial.

    :param folder: where the trial writes its files (they end up in its folder of the sweep)
    :param restored: the folder of its latest checkpoint when the trial resumes, else ``None``
    :param phase_cpus: the CPUs its phases may use in parallel (1: in sequence)
    :param report: ``report(metrics, checkpoint=None)`` sends metrics (and a checkpoint folder, copied) to Tune
    """

    folder: Path
    restored: Path | None
    phase_cpus: int
    report: Callable[..., None]


def _scalars(output: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a phase's output, flattened (``a/b`` for nested dicts): what a trial reports to Tune."""
    if isinstance(output, dict):
        return {key: value for name, item in output.items() if name != "model"
                for key, value in _scalars(item, f"{prefix}{name}/").items()}
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        return {prefix.rstrip("/"): float(output)}
    return {}


def _run_trial(entry: Experiment, config: Any, trial: Trial) -> None:
    """
    One trial: the experiment's run into the trial's folder, each finished phase reported (and checkpointed when
    the experiment's phase outputs allow it, so that a resumed trial skips them).
    """
    done = load_phases(trial.restored) if trial.restored is not None and entry.checkpoints else {}
    checkpoint = Path(tempfile.mkdtemp(prefix="phases_"))  # outside trial.folder: not synced twice
    if entry.checkpoints:
        save_phases(checkpoint, done)

    def on_phase(name: str, record: PhaseRecord) -> None:
        metrics = {"phase": name, name: _scalars(record.output)}
        if entry.checkpoints:
            save_phases(checkpoint, {name: record})
            trial.report({**metrics, "phases_done": len(list(checkpoint.glob("*.json")))}, checkpoint=checkpoint)
        else:
            trial.report(metrics)

    results = run_experiment(entry, config, trial.folder, parallel=trial.phase_cpus > 1, done=done,
                             on_phase=on_phase)
    trial.report({"phase": "summary", **_scalars(results["summary"])})
    shutil.rmtree(checkpoint, ignore_errors=True)


def _fields(config: type) -> list[str]:
    return [item.name for item in dataclasses.fields(config)]


def _label(settings: Mapping[str, Any]) -> str:
    """Settings as a folder-safe label: ``key=value`` joined by ``_``."""
    text = "_".join(f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}"
                    for key, value in settings.items())
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "-", text)


def plan_trials(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None, seeds: Sequence[int] = (0,),
                settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """
    The sweep's trials, each checked by the experiment's settings dataclass (before anything runs).

    :param experiment: the experiment's name
    :param grid: settings and the values each takes (all combinations run)
    :param seeds: the seeds every combination runs with
    :param settings: settings shared by every trial
    :return: per trial its ``name`` and ``settings`` (``settings``, then the grid's values, then ``seed``)
    :raise ValueError: naming what is wrong (an unknown experiment or setting, a bad value...)
    """
    entry = get_experiment(experiment)
    grid, settings = dict(grid or {}), dict(settings or {})
    known = _fields(entry.settings)
    for source, keys in (("grid", grid), ("settings", settings)):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown settings {unknown} of the {experiment!r} experiment; its settings: "
                             f"{known}")
        if "seed" in keys:
            raise ValueError(f"{source}: give the seeds with seeds (--seeds), not as a setting")
    both = sorted(set(grid) & set(settings))
    if both:
        raise ValueError(f"settings {both} are both in the grid and fixed")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid: {key} must have a non-empty list of values, got {values!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(seed, bool) or not isinstance(seed, int) for seed in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {seeds!r}")
    trials = []
    for index, (values, seed) in enumerate(itertools.product(itertools.product(*grid.values()), seeds)):
        varied = {**dict(zip(grid, values, strict=True)), "seed": seed}
        trial_settings = {**settings, **varied}
        try:
            entry.settings(**trial_settings)
        except TypeError as error:  # a dataclass refusing an argument
            raise ValueError(f"{experiment} settings {trial_settings}: {error}") from error
        trials.append({"name": f"{index:03d}_{_label(varied)}", "settings": trial_settings})
    return trials


def _trial_name(trial: Any) -> str:
    """Tune's name and folder of a trial: the planned name."""
    return trial.config["trial"]["name"]


def _sweep_location(out: str | Path, storage: str | None) -> tuple[str, str, str]:
    """The sweep's folder (path or URI) and Tune's ``storage_path`` and ``name`` for it."""
    if storage is None:
        folder = experiment_folder(out, "--out")
        return str(folder), str(folder.parent), folder.name
    if Path(out).is_absolute() or "://" in str(out):
        raise ValueError(f"--out must be relative to --storage (the sweep is <storage>/<out>), got {out}")
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
        if Path(storage).exists() and not Path(storage).is_dir():
            raise ValueError(f"--storage must be a folder or a URI, but {storage} is a file")
    location = f"{storage.rstrip('/')}/{Path(out).as_posix()}"
    parent, _, name = location.rpartition("/")
    return location, parent, name


def _read_text(location: str) -> str | None:
    """A file's text from a path or a URI (``None`` when it does not exist)."""
    if "://" not in location:
        path = Path(location)
        return path.read_text() if path.is_file() else None
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(location)
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return stream.read().decode()


def _write_text(location: str, text: str) -> None:
    """Write a file at a path or a URI (folders created)."""
    if "://" not in location:
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        Path(location).write_text(text)
        return
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(location)
    filesystem.create_dir(path.rpartition("/")[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(text.encode())


def _check_spec(location: str, spec: dict[str, Any]) -> bool:
    """Whether the folder already holds this sweep (``False``: a new one); another sweep there is an error."""
    saved = _read_text(f"{location}/{SPEC_FILE}")
    if saved is None:
        return False
    previous = json.loads(saved)
    keys = ("experiment", "grid", "seeds", "settings")
    if {key: previous.get(key) for key in keys} != json.loads(json.dumps({key: spec[key] for key in keys})):
        raise ValueError(f"--out {location} holds another sweep ({previous['experiment']}, grid {previous['grid']}, "
                         f"seeds {previous['seeds']}, settings {previous['settings']}): choose another --out")
    return True


def _resources(phase_cpus: int) -> Any:
    """What each trial asks Ray for: one CPU, or ``phase_cpus`` CPUs on one node for its parallel phases."""
    from ray import tune

    if phase_cpus == 1:
        return tune.PlacementGroupFactory([{"CPU": 1}])
    # the trial's own process only waits on its phases' tasks: an empty head bundle, one CPU per phase task
    return tune.PlacementGroupFactory([{}] + [{"CPU": 1}] * phase_cpus, strategy="STRICT_PACK")


def _tune_trial(params: dict[str, Any], experiment: Experiment, phase_cpus: int, location: str) -> None:
    """The Tune trainable: one trial of ``experiment`` (``location``: the sweep's folder or URI)."""
    from ray import tune

    # A trial that finished just before the sweep was stopped, before Tune saved its state (every 10 s or more), is
    # restarted by Tune: its mark is in the sweep's folder (Tune runs a trial in a staging folder and copies it
    # there), or in the trial's own folder where both are one.
    marks = [Path(tune.get_context().get_trial_dir()) / FINISHED_FILE]
    if "://" not in location:
        marks.append(Path(location) / params["trial"]["name"] / FINISHED_FILE)
    if any(mark.is_file() for mark in marks):
        return
    config = experiment.settings(**params["trial"]["settings"])
    checkpoint = tune.get_checkpoint()
    restored = Path(checkpoint.to_directory()) if checkpoint is not None else None

    def report(metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint) if checkpoint else None)

    # Tune runs the trial in its own working directory and copies it into the sweep's folder (sync_artifacts)
    _run_trial(experiment, config, Trial(Path.cwd(), restored, phase_cpus, report))
    (Path.cwd() / FINISHED_FILE).touch()


def _run_tune(entry: Experiment, trials: list[dict[str, Any]], location: str, storage_path: str, name: str,
              resume: bool, phase_cpus: int, max_concurrent: int | None, max_failures: int) -> None:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    trainable = tune.with_resources(tune.with_parameters(_tune_trial, experiment=entry, phase_cpus=phase_cpus,
                                                         location=location), _resources(phase_cpus))
    if resume and tune.Tuner.can_restore(location):
        tuner = tune.Tuner.restore(location, trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(trials)},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name, reuse_actors=False),
            run_config=tune.RunConfig(
                name=name, storage_path=storage_path, checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                sync_config=tune.SyncConfig(sync_artifacts=True),
                failure_config=tune.FailureConfig(max_failures=max_failures), verbose=1,
                # the trials' reports (sweep_status reads them); Tune's TensorBoard logger only when Ray is verbose
                callbacks=[JsonLoggerCallback(), CSVLoggerCallback()]),
        )
    with quiet_ray():
        tuner.fit()


def _run_in_sequence(entry: Experiment, trials: list[dict[str, Any]], folder: Path) -> None:
    """Without Ray: the trials one after the other in this process, with Tune's files (and its resumption)."""
    for planned in trials:
        trial_folder = folder / planned["name"]
        if _status(trial_folder) == "finished":
            continue
        trial_folder.mkdir(parents=True, exist_ok=True)
        (trial_folder / PARAMS_FILE).write_text(json.dumps({"trial": planned}))
        saved = trial_folder / "checkpoint"

        def report(metrics: dict[str, Any], checkpoint: Path | None = None, into: Path = trial_folder) -> None:
            if checkpoint is not None:
                shutil.rmtree(into / "checkpoint", ignore_errors=True)
                shutil.copytree(checkpoint, into / "checkpoint")
            _append_row(into, metrics)

        restored = saved if saved.is_dir() else None
        _run_trial(entry, entry.settings(**planned["settings"]), Trial(trial_folder, restored, 1, report))
        (trial_folder / FINISHED_FILE).touch()


def _append_row(trial_folder: Path, row: dict[str, Any]) -> None:
    """One line of ``result.json``, as Tune writes it (with the time of the report)."""
    with (trial_folder / RESULT_FILE).open("a") as file:
        file.write(json.dumps({**row, "timestamp": int(time.time())}, default=float) + "\n")


def _rows(trial_folder: Path) -> list[dict[str, Any]]:
    path = trial_folder / RESULT_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _status(trial_folder: Path) -> str:
    """A trial's status: ``finished``, ``unfinished`` or ``not started``."""
    if (trial_folder / FINISHED_FILE).is_file():
        return "finished"
    return "unfinished" if (trial_folder / RESULT_FILE).is_file() else "not started"


def run_sweep(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None, seeds: Sequence[int] = (0,),
              settings: Mapping[str, Any] | None = None, out: str | Path = "runs/sweep", address: str | None = None,
              storage: str | None = None, phase_cpus: int = 1, max_concurrent: int | None = None,
              max_failures: int = 0, use_ray: bool | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """
    Run every trial of the grid x seeds (:func:`plan_trials`) that has not finished yet.

    :param experiment: the experiment's name (:func:`experiments`)
    :param grid: settings and the values each takes, e.g. ``{"reward_rule": ["parl", "lola"]}``
    :param seeds: the seeds of every combination
    :param settings: settings shared by every trial, e.g. ``{"preset": "7x7"}``
    :param out: the sweep's folder (with ``storage``: its path under ``storage``); the same sweep there resumes
    :param address: a Ray cluster's address (``ray start --head`` prints it); ``None``: Ray on this machine
    :param storage: storage every node of a cluster reaches (a shared folder or a URI such as ``s3://bucket/x``)
    :param phase_cpus: CPUs per trial, on one node, for its phases in parallel (experiments with phases only)
    :param max_concurrent: the most trials at once (``None``: as many as the CPUs allow)
    :param max_failures: times Tune retries a failed trial (from its checkpoint) before giving up on it
    :param use_ray: Ray Tune (``True``), trials in sequence here (``False``) or Ray when installed (``None``)
    :param log: called with lines of text (e.g. ``print``)
    :return: ``folder`` (the sweep's), ``trials`` (per trial: ``name``, ``settings``, ``status``) and ``ran`` (the
        trials that ran in this call)
    :raise ValueError: naming the argument, before anything runs
    """
    log = log or (lambda line: None)
    entry = get_experiment(experiment)
    trials = plan_trials(experiment, grid, seeds, settings)
    for argument, value, low in (("phase_cpus", phase_cpus, 1), ("max_concurrent", max_concurrent, 1),
                                 ("max_failures", max_failures, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{argument} must be an integer >= {low}, got {value!r}")
    if phase_cpus > 1 and not entry.parallel_phases:
        raise ValueError(f"phase_cpus: the {experiment!r} experiment has no phases to run in parallel")
    check_address(address)
    use_ray = ray_available() if use_ray is None else use_ray
    if not use_ray and (address is not None or storage is not None or phase_cpus > 1):
        raise ValueError(f"--address, --storage and --phase-cpus need Ray Tune: {RAY_EXTRA}")
    location, storage_path, name = _sweep_location(out, storage)
    spec = {"experiment": experiment, "grid": dict(grid or {}), "seeds": list(seeds), "settings": dict(settings or {}),
            "phase_cpus": phase_cpus, "trials": trials}
    resume = _check_spec(location, spec)
    if use_ray:
        init_ray(address)
    before = report_counts(location)
    resources = f"{phase_cpus} CPU{'s' if phase_cpus > 1 else ''} each" if use_ray else "in sequence"
    log(f"sweep of {experiment}: {len(trials)} trials ({resources}) into {location}"
        + (" (resuming)" if resume else ""))
    _write_text(f"{location}/{SPEC_FILE}", json.dumps(spec, indent=2, default=str))
    if use_ray:
        _run_tune(entry, trials, location, storage_path, name, resume, phase_cpus, max_concurrent, max_failures)
    else:
        _run_in_sequence(entry, trials, Path(location))
    return sweep_status(location, before)


def resume_sweep(out: str | Path, address: str | None = None, storage: str | None = None,
                 **kwargs: Any) -> dict[str, Any]:
    """
    Run the unfinished trials of the sweep in ``out`` (its ``sweep.json`` says what it is).

    :param out: the sweep's folder (with ``storage``: its path under ``storage``)
    :param address: see :func:`run_sweep`
    :param storage: see :func:`run_sweep`
    :param kwargs: more arguments of :func:`run_sweep` (``phase_cpus``, ``max_concurrent``, ``log``...)
    """
    location = _sweep_location(out, storage)[0]
    saved = _read_text(f"{location}/{SPEC_FILE}")
    if saved is None:
        raise ValueError(f"--out {location} holds no sweep (no {SPEC_FILE})")
    spec = json.loads(saved)
    kwargs.setdefault("phase_cpus", spec.get("phase_cpus", 1))
    return run_sweep(spec["experiment"], spec["grid"], spec["seeds"], spec["settings"], out, address, storage,
                     **kwargs)


def report_counts(location: str) -> dict[str, int]:
    """How many reports each trial of the sweep in ``location`` has made so far."""
    if "://" in location or not (Path(location) / SPEC_FILE).is_file():
        return {}
    spec = json.loads((Path(location) / SPEC_FILE).read_text())
    return {planned["name"]: len(_rows(Path(location) / planned["name"])) for planned in spec["trials"]}


def sweep_status(location: str | Path, before: Mapping[str, int] | None = None) -> dict[str, Any]:
    """
    The trials of a sweep (a local folder) and where each stands.

    :param location: the sweep's folder
    :param before: reports per trial at some earlier time (:func:`report_counts`): ``ran`` lists the trials that
        reported since then
    :return: ``folder``, ``trials`` (``name``, ``settings``, ``status``) and ``ran``
    """
    if "://" in str(location):
        return {"folder": str(location), "trials": [], "ran": []}  # remote storage: Tune's own summary tells
    folder = Path(str(location))
    spec = json.loads((folder / SPEC_FILE).read_text()) if (folder / SPEC_FILE).is_file() else {"trials": []}
    after = report_counts(str(folder))
    trials = [{**planned, "status": _status(folder / planned["name"])} for planned in spec["trials"]]
    ran = [name for name, count in after.items() if before is not None and count > before.get(name, 0)]
    return {"folder": str(folder), "trials": trials, "ran": ran}


def is_sweep(path: str | Path) -> bool:
    """Whether ``path`` is a sweep's folder."""
    return (Path(path) / SPEC_FILE).is_file()


def sweep_groups(folder: str | Path) -> tuple[Experiment, dict[str, list[Path]]]:
    """
    A sweep's finished runs, grouped by setting (everything but the seed), in the grid's order.

    :param folder: the sweep's folder
    :return: the experiment and, per setting's label, the folders of its runs
    :raise ValueError: when no trial has finished
    """
    folder = Path(folder)
    spec = json.loads((folder / SPEC_FILE).read_text())
    entry = get_experiment(spec["experiment"])
    groups: dict[str, list[Path]] = {}
    for planned in spec["trials"]:
        run = folder / planned["name"]
        if (run / "metrics.json").is_file():
            varied = {key: planned["settings"][key] for key in spec["grid"]}
            groups.setdefault(_label(varied) or spec["experiment"], []).append(run)
    if not groups:
        raise ValueError(f"no trial of the sweep in {folder} has finished yet")
    return entry, groups


def sweep_table(folder: str | Path) -> str:
    """
    A sweep's results: per setting, the experiment's table of its trials (a row per trial, the seeds pooled).

    :param folder: the sweep's folder
    """
    entry, groups = sweep_groups(folder)
    return "\n\n".join(f"**{label}** ({len(runs)} run{'s' if len(runs) > 1 else ''})\n\n{entry.table(runs)}"
                       for label, runs in groups.items())


def sweep_plots(folder: str | Path, out: str | Path | None = None) -> list[Path]:
    """
    A sweep's figures: per setting, the experiment's figure of its trials (the seeds pooled).

    :param folder: the sweep's folder
    :param out: the folder for the PNG files (default ``<folder>/plots``)
    :return: the files written
    """
    entry, groups = sweep_groups(folder)
    target = Path(out) if out is not None else Path(folder) / "plots"
    return [entry.plot(runs, target / f"{label}.png") for label, runs in groups.items()]
