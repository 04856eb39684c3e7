"""One interface for every experiment and one runner: an experiment's phases as a small DAG, run in sequence or as
parallel Ray tasks.

An :class:`Experiment` is a frozen settings dataclass (a docstring per field, a ``seed`` and a ``threads`` field) plus
its phases, how its results come from the phases' records, its table and its plot. :func:`run_experiment` owns what
every experiment shares: the output folder, torch threads, TensorBoard's folder, progress lines, ``metrics.json``,
resuming from finished phases and the choice of sequence or Ray tasks. Sweeps (:mod:`sb3_contracts.sweeps`) and the
command line drive any experiment by its name (:func:`sb3_contracts.experiments.get_experiment`); this module knows
none of them.

A :class:`Phase` is a function of the outputs of the phases it ``needs``. :func:`run_phases` runs them in the
list's order (sequentially, in this process) or, with Ray, as tasks of one CPU and ``threads`` torch threads each:
a phase starts as soon as its inputs exist and a CPU is free, the earliest in the list first, so the list's order
is the priority (put the critical path first). Results do not depend on the mode as long as every phase seeds
everything it uses, which the experiments' phases do (each builds its learners and games from its own seed).

Phase outputs must be picklable; to be checkpointed (:func:`save_phases`) they must be JSON-able dicts whose
``"model"`` entry, if any, holds a saved model's bytes (an SB3 ``.zip``). Ray is imported only when used: without
it (``pip install "sb3-contracts[distributed]"`` adds it) everything runs in sequence.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sb3_contracts.experiments.progress import Progress

#: What to install for the parallel paths.
RAY_EXTRA = 'pip install "sb3-contracts[distributed]"'
#: Seconds to wait for a cluster's address to answer.
PROBE_TIMEOUT = 10.0
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+)$")
#: Seconds between the progress lines of phases that run as Ray tasks.
PROGRESS_EVERY = 10.0
#: Set this environment variable to 1 for Ray's and Tune's own notices (:func:`quiet_ray`).
RAY_VERBOSE = "SB3_CONTRACTS_RAY_VERBOSE"


@dataclass(frozen=True)
class Phase:
    """
    One phase of an experiment.

    :param name: unique name (also its TensorBoard run's, by the experiments' convention)
    :param fn: called with the outputs of ``needs``, in that order; returns the phase's output
    :param needs: names of the phases whose outputs ``fn`` takes
    """

    name: str
    fn: Callable[..., Any]
    needs: tuple[str, ...] = ()


@dataclass
class PhaseRecord:
    """
    A finished phase.

    :param output: what the phase returned
    :param seconds: its wall time (in the process that ran it)
    :param cpu_seconds: the CPU time of the process that ran it, over the phase (Ray workers included: what a
        benchmark adds up; ``nan`` in records saved before it was measured)
    """

    output: Any
    seconds: float
    cpu_seconds: float = float("nan")


def ray_available() -> bool:
    """Whether Ray can be imported (the ``distributed`` extra)."""
    return importlib.util.find_spec("ray") is not None


def check_address(address: str | None) -> str | None:
    """
    Check the form of a Ray cluster address (``auto``, ``local``, ``host:port`` or ``ray://host:port``).

    :param address: the address, or ``None`` (a local Ray on this machine)
    :raise ValueError: naming ``--address`` when the form is wrong
    """
    if address is not None and not _ADDRESS.match(address):
        raise ValueError(f"--address must be 'auto', 'host:port' or 'ray://host:port' of a Ray cluster, "
                         f"got {address!r}")
    return address


def init_ray(address: str | None = None, **kwargs: Any) -> None:
    """
    Connect to Ray unless already connected: a local Ray on this machine (``address=None``) or an existing
    cluster (``ray start --head`` printed its address).

    :param address: see :func:`check_address`
    :param kwargs: more arguments of ``ray.init`` (e.g. ``num_cpus`` for a local Ray)
    :raise ImportError: without Ray
    :raise ValueError: naming ``--address`` when no cluster answers there or Ray cannot connect to it
    """
    check_address(address)
    if not ray_available():
        raise ImportError(f"Ray is not installed: {RAY_EXTRA}")
    import ray

    if address not in (None, "auto", "local"):
        _probe(address)
    if ray.is_initialized():
        return
    try:
        with quiet_ray():
            ray.init(address=address, runtime_env=same_priority(), **kwargs)
    except ConnectionError as error:
        raise ValueError(f"--address {address}: Ray could not connect ({error}). A cluster with token "
                         "authentication (Ray >= 2.59) needs RAY_AUTH_MODE=token and its token (ray get-auth-token) "
                         "here too") from error


#: Tune's own files and notices that :func:`quiet_ray` turns off, unless already set: warnings that it snapshots its
#: state often (a sweep's trials checkpoint every phase on purpose) and its TensorBoard logger, whose hint names
#: Tune's staging folder (the trials write their experiment's TensorBoard runs into the sweep's folder).
_QUIET_ENV = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
              "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
#: Loggers of Ray's notices that :func:`quiet_ray` keeps to errors: a new local Ray's token authentication.
_QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


def ray_verbose() -> bool:
    """Whether Ray's and Tune's own notices are wanted (the environment variable :data:`RAY_VERBOSE` set to 1)."""
    return os.environ.get(RAY_VERBOSE, "0") not in ("", "0")


@contextmanager
def quiet_ray() -> Iterator[None]:
    """
    Ray's and Tune's notices about themselves off in the block (not their errors, nor the trials' output), unless
    :func:`ray_verbose`: they point at Ray's folders rather than the run's and say nothing about the experiment.
    """
    if ray_verbose():
        yield
        return
    saved = {name: os.environ.get(name) for name in _QUIET_ENV}
    loggers = {logger: logger.level for logger in map(logging.getLogger, _QUIET_LOGGERS)}
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
        for logger, level in loggers.items():
            logger.setLevel(level)


def same_priority() -> dict[str, Any]:
    """
    A Ray runtime environment whose workers run at this process's niceness. Ray starts its workers at niceness 15
    (to keep its own daemons responsive), so that on a machine shared with other jobs the phases and trials would
    yield to all of them, even to the same experiment run in sequence at the command's own priority.
    """
    return {"env_vars": {"RAY_worker_niceness": str(os.nice(0))}}


def _probe(address: str) -> None:
    """Fail fast when nothing listens at ``address`` (``ray.init`` would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT).close()
    except OSError as error:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({error}); start one with "
                         "`ray start --head` and give the address it prints") from error


def experiment_folder(out: str | Path | None, argument: str = "out") -> Path | None:
    """
    An experiment's output folder as an absolute path (Ray tasks may run in another working directory).

    :param out: the folder, or ``None``
    :param argument: the argument's name in the error message
    :raise ValueError: naming ``argument`` when ``out`` is an existing file
    """
    if out is None:
        return None
    folder = Path(out).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{argument} must be a folder, but {out} is a file")
    return folder


def ordered(phases: Sequence[Phase]) -> list[Phase]:
    """
    The phases in an order that runs each after the phases it needs, as close to the list's order as possible.

    :param phases: the DAG
    :raise ValueError: on duplicate names, unknown needs or a cycle
    """
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    for phase in phases:
        unknown = set(phase.needs) - set(names)
        if unknown:
            raise ValueError(f"phase {phase.name!r} needs unknown phases {sorted(unknown)}")
    result: list[Phase] = []
    placed: set[str] = set()
    while len(result) < len(phases):
        ready = next((phase for phase in phases if phase.name not in placed and set(phase.needs) <= placed), None)
        if ready is None:
            raise ValueError(f"the phases' needs form a cycle among {sorted(set(names) - placed)}")
        result.append(ready)
        placed.add(ready.name)
    return result


def run_phases(phases: Sequence[Phase], parallel: bool | None = None, done: Mapping[str, PhaseRecord] | None = None,
               on_done: Callable[[str, PhaseRecord], None] | None = None, threads: int = 1,
               on_progress: Callable[[str, Progress], None] | None = None,
               progress_every: float = PROGRESS_EVERY) -> dict[str, PhaseRecord]:
    """
    Run every phase not in ``done``, each once its inputs exist.

    :param phases: the DAG; its order is the order in sequence and the priority in parallel
    :param parallel: Ray tasks (``True``), in sequence here (``False``) or Ray tasks when Ray is installed
        (``None``). Ray is started on this machine unless already connected (:func:`init_ray`).
    :param done: records of phases already run (e.g. restored from a checkpoint): not run again
    :param on_done: called with each phase's name and record as it finishes (in this process)
    :param threads: torch threads of each Ray task
    :param on_progress: as Ray tasks, called every ``progress_every`` seconds with each running phase's name and
        its learner's progress (those whose learners report it:
        :class:`~sb3_contracts.experiments.progress.PhaseProgress`)
    :param progress_every: seconds between calls of ``on_progress``
    :return: the record of every phase, ``done`` included
    """
    order = ordered(phases)
    records = dict(done or {})
    unknown = set(records) - {phase.name for phase in order}
    if unknown:
        raise ValueError(f"done names phases that are not in the DAG: {sorted(unknown)}")
    todo = [phase for phase in order if phase.name not in records]
    if parallel is None:
        parallel = ray_available()
    if parallel and todo:
        _run_on_ray(todo, records, on_done or (lambda name, record: None), threads, on_progress, progress_every)
        return records
    for phase in todo:
        start, cpu = time.perf_counter(), time.process_time()
        output = phase.fn(*(records[name].output for name in phase.needs))
        records[phase.name] = PhaseRecord(output, time.perf_counter() - start, time.process_time() - cpu)
        if on_done is not None:
            on_done(phase.name, records[phase.name])
    return records


def _call_phase(fn: Callable[..., Any], threads: int, progress_file: str | None, *inputs: PhaseRecord) -> PhaseRecord:
    """The body of a phase's Ray task (inputs arrive as records of the phases it needs; its learners report their
    progress to ``progress_file``)."""
    import torch as th

    from sb3_contracts.experiments.progress import reporting_to

    th.set_num_threads(threads)  # one CPU per task: more threads would fight over it
    start, cpu = time.perf_counter(), time.process_time()
    with reporting_to(progress_file):
        output = fn(*(record.output for record in inputs))
    return PhaseRecord(output, time.perf_counter() - start, time.process_time() - cpu)


def _slots(ray: Any) -> int:
    """The CPUs this process's tasks can use: its placement group's (in a Tune trial) or its node's."""
    from ray.util import get_current_placement_group

    group = get_current_placement_group()
    if group is not None:
        return max(1, int(sum(bundle.get("CPU", 0) for bundle in group.bundle_specs)))
    node = ray.get_runtime_context().get_node_id()
    cpus = next((info["Resources"].get("CPU", 0) for info in ray.nodes() if info["NodeID"] == node), 1)
    return max(1, int(cpus))


def _task_options(ray: Any) -> dict[str, Any]:
    """One CPU at this process's priority (:func:`same_priority`); on the driver's node (the phases write
    TensorBoard logs to local paths) unless in a placement group (a Tune trial's, STRICT_PACK: one node too), which
    captures the task by itself."""
    from ray.util import get_current_placement_group
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0, "runtime_env": same_priority()}
    if get_current_placement_group() is None:
        node = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    return options


def _run_on_ray(todo: list[Phase], records: dict[str, PhaseRecord], on_done: Callable[[str, PhaseRecord], None],
                threads: int, on_progress: Callable[[str, Progress], None] | None = None,
                progress_every: float = PROGRESS_EVERY) -> None:
    init_ray()
    import ray

    task = ray.remote(_call_phase).options(**_task_options(ray))
    slots = _slots(ray)
    refs = {name: ray.put(record) for name, record in records.items()}
    waiting, running = list(todo), {}
    reports = tempfile.TemporaryDirectory(prefix="phase_progress_")
    next_report = time.monotonic() + progress_every
    try:
        while waiting or running:
            # list scheduling: the first ready phase in the list's order takes the next free CPU
            while len(running) < slots:
                ready = next((phase for phase in waiting if all(name in refs for name in phase.needs)), None)
                if ready is None:
                    break
                waiting.remove(ready)
                report_to = f"{reports.name}/{ready.name}.json" if on_progress is not None else None
                running[task.remote(ready.fn, threads, report_to, *(refs[name] for name in ready.needs))] = ready.name
            timeout = max(next_report - time.monotonic(), 0.0) if on_progress is not None else None
            finished, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
            if not finished:
                next_report = time.monotonic() + progress_every
                _report_progress(running.values(), Path(reports.name), on_progress)
                continue
            name = running.pop(finished[0])
            records[name] = ray.get(finished[0])
            refs[name] = finished[0]
            on_done(name, records[name])
    finally:
        for ref in running:  # a phase failed (or the caller was interrupted): stop the others
            ray.cancel(ref, force=True)
        reports.cleanup()


def _report_progress(names: Iterable[str], folder: Path, on_progress: Callable[[str, Progress], None]) -> None:
    """Pass on the latest report of each running phase that has one (one still building its learner has none)."""
    from sb3_contracts.experiments.progress import read_progress

    for name in names:
        progress = read_progress(folder / f"{name}.json")
        if progress is not None:
            on_progress(name, progress)


def save_phases(folder: str | Path, records: Mapping[str, PhaseRecord]) -> Path:
    """
    Write phase records as files: ``<phase>.json`` (the output without its model, and the seconds) and
    ``<phase>.zip`` (the output's ``"model"`` bytes, if any).

    :param folder: where to write (created)
    :param records: the records (outputs: JSON-able dicts)
    :return: the folder
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, record in records.items():
        output = dict(record.output)
        model = output.pop("model", None)
        if model is not None:
            (folder / f"{name}.zip").write_bytes(model)
        (folder / f"{name}.json").write_text(json.dumps({"seconds": record.seconds, "cpu_seconds": record.cpu_seconds,
                                                         "output": output}, default=float))
    return folder


def load_phases(folder: str | Path) -> dict[str, PhaseRecord]:
    """
    Read what :func:`save_phases` wrote.

    :param folder: the folder
    """
    records = {}
    for path in sorted(Path(folder).glob("*.json")):
        saved = json.loads(path.read_text())
        output = saved["output"]
        if path.with_suffix(".zip").is_file():
            output["model"] = path.with_suffix(".zip").read_bytes()
        records[path.stem] = PhaseRecord(output, float(saved["seconds"]), float(saved.get("cpu_seconds", "nan")))
    return records


@dataclass(frozen=True)
class RunContext:
    """
    What an experiment's phases get from the runner besides the settings.

    :param folder: the run's folder (``None``: no files)
    :param tensorboard_log: TensorBoard's folder (``<folder>/tb``; ``None``: no TensorBoard)
    :param progress_bar: show SB3's progress bars (in sequence only)
    """

    folder: Path | None = None
    tensorboard_log: str | None = None
    progress_bar: bool = False


@dataclass(frozen=True)
class Experiment:
    """
    An experiment the runner, the command line and sweeps know by its name.

    :param name: its name (``sb3-contracts <name>``, ``sb3-contracts sweep <name>``)
    :param settings: its frozen settings dataclass, a docstring per field, with ``seed`` and ``threads`` fields;
        calling it validates the settings
    :param phases: ``phases(settings, context)``: the DAG of :class:`Phase` (:class:`RunContext`)
    :param results: ``results(settings, records)``: what ``metrics.json`` holds, from the finished phases'
        records; its ``"summary"`` is a flat dict of the headline figures (printed, reported to sweeps)
    :param table: ``table(runs)``: a Markdown table of run folders (the seeds of one setting pooled)
    :param plot: ``plot(runs, png)``: the figure of run folders; returns the file written
    :param write: ``write(folder, settings, records, results)``: files beyond ``metrics.json`` (models,
        TensorBoard summaries, figures); it may add entries to ``results`` before they are written
    :param describe: ``describe(settings)``: the line logged at the start
    :param checkpoints: its phases' outputs are JSON-able dicts (a ``"model"`` entry: an SB3 ``.zip``'s bytes), so
        a sweep checkpoints each finished phase and a resumed trial skips them
    :param parallel_phases: its phases can use several CPUs at once (a sweep's ``phase_cpus``)
    """

    name: str
    settings: type
    phases: Callable[[Any, RunContext], list[Phase]]
    results: Callable[[Any, Mapping[str, PhaseRecord]], dict[str, Any]]
    table: Callable[[Sequence[Path]], str]
    plot: Callable[[Sequence[Path], Path], Path]
    write: Callable[[Path, Any, Mapping[str, PhaseRecord], dict[str, Any]], None] | None = None
    describe: Callable[[Any], str] | None = None
    checkpoints: bool = True
    parallel_phases: bool = False

    def __post_init__(self) -> None:
        names = {item.name for item in fields(self.settings)} if is_dataclass(self.settings) else set()
        if not {"seed", "threads"} <= names:
            raise ValueError(f"experiment {self.name!r}: settings must be a dataclass with 'seed' and 'threads' "
                             "fields")


def run_experiment(experiment: Experiment, settings: Any, out: str | Path | None = None, parallel: bool | None = False,
                   progress_bar: bool = False, log: Callable[[str], None] | None = None,
                   done: Mapping[str, PhaseRecord] | None = None,
                   on_phase: Callable[[str, PhaseRecord], None] | None = None,
                   progress_every: float = PROGRESS_EVERY) -> dict[str, Any]:
    """
    Run an experiment's phases not in ``done`` and write ``<out>/metrics.json`` (with the experiment's own files).

    :param experiment: the experiment
    :param settings: its settings (an instance of ``experiment.settings``)
    :param out: the run's folder (``None``: no files, no TensorBoard)
    :param parallel: phases as Ray tasks (``True``), in sequence (``False``), or as Ray tasks when Ray is installed
        (``None``); the results are the same either way (every phase seeds its own learners and games)
    :param progress_bar: show SB3's progress bars in sequence; as Ray tasks, log a line per running phase every
        ``progress_every`` seconds: its learner's steps, rate and time left
    :param log: called with a line of text at the start, as each phase ends and with progress (e.g. ``print``)
    :param done: records of phases already run (a checkpoint's, :func:`load_phases`)
    :param on_phase: called with each phase's name and record as it finishes (e.g. to checkpoint it)
    :param progress_every: seconds between progress lines as Ray tasks
    :return: the experiment's results, with ``experiment`` (its name), ``timings`` (wall seconds per phase),
        ``cpu_timings`` and ``cpu_s`` (CPU seconds per phase and their sum, in whichever process ran each phase) and
        ``wall_s`` (this call's wall time) and ``resumed_phases`` (the phases restored from ``done``, not run)
    """
    import torch as th

    if not isinstance(settings, experiment.settings):
        raise ValueError(f"settings must be a {experiment.settings.__name__} for the {experiment.name!r} experiment, "
                         f"got {type(settings).__name__}")
    log = log or (lambda line: None)
    th.set_num_threads(settings.threads)  # small networks train fastest on one thread; more only synchronise
    folder = experiment_folder(out)
    parallel = ray_available() if parallel is None else parallel
    context = RunContext(folder, str(folder / "tb") if folder is not None else None, progress_bar and not parallel)
    start = time.perf_counter()

    def finished(name: str, record: PhaseRecord) -> None:
        log(f"[{time.perf_counter() - start:7.1f}s] {name} done ({record.seconds:.1f} s)")
        if on_phase is not None:
            on_phase(name, record)

    def progress(name: str, learner: Progress) -> None:
        log(f"[{time.perf_counter() - start:7.1f}s] {name}: {learner}")

    if experiment.describe is not None:
        log(f"{experiment.describe(settings)}; {'parallel Ray tasks' if parallel else 'in sequence'}")
    phases = experiment.phases(settings, context)
    records = run_phases(phases, parallel, done, finished, settings.threads, progress if progress_bar else None,
                         progress_every)
    results = {"experiment": experiment.name, **experiment.results(settings, records),
               "timings": {phase.name: records[phase.name].seconds for phase in phases},
               "cpu_timings": {phase.name: records[phase.name].cpu_seconds for phase in phases},
               "cpu_s": sum(records[phase.name].cpu_seconds for phase in phases),
               "wall_s": time.perf_counter() - start, "resumed_phases": sorted(done or {})}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        if experiment.write is not None:
            experiment.write(folder, settings, records, results)
        (folder / METRICS_FILE).write_text(json.dumps(results, indent=2, default=_json_value))
    return results


def _json_value(value: Any) -> Any:
    """What ``metrics.json`` writes for a value JSON has no form for: a class (e.g. a features extractor in
    ``policy_kwargs``, read from a zoo file) by its import path, NumPy scalars as numbers, anything else as text."""
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


#: The file every run writes into its folder.
METRICS_FILE = "metrics.json"


class MissingMetricError(KeyError, ValueError):
    """An entry a table or plot reads is missing from a run's ``metrics.json`` (a ``ValueError`` too: bad input)."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError's own would quote the message


class Metrics(dict):
    """
    A run's metrics, or one section of them, as read from its file: a missing entry raises
    :class:`MissingMetricError` naming the file and the entry (e.g. ``summary.ic_ratio``), not a bare ``KeyError``.

    :param entries: the entries
    :param source: the file they come from
    :param where: the section's place in the file (``""`` at the top, else e.g. ``"summary."``)
    """

    def __init__(self, entries: Mapping[str, Any], source: Path, where: str = "") -> None:
        super().__init__(entries)
        self.source = source
        self.where = where

    def __missing__(self, key: Any) -> Any:
        raise MissingMetricError(f"{self.source} has no entry {self.where}{key}: the run did not finish or an "
                                 f"older version wrote it; run the experiment again into that folder")


def _as_metrics(value: Any, source: Path, where: str = "") -> Any:
    """``value`` with every dict in it a :class:`Metrics` that knows its place in ``source``."""
    if isinstance(value, dict):
        return Metrics({key: _as_metrics(item, source, f"{where}{key}.") for key, item in value.items()}, source,
                       where)
    if isinstance(value, list):
        return [_as_metrics(item, source, f"{where}{index}.") for index, item in enumerate(value)]
    return value


def load_metrics(path: str | Path, experiment: str | None = None) -> dict[str, Any]:
    """
    One run's ``metrics.json``, as :class:`Metrics`: reading an entry it lacks raises :class:`MissingMetricError`,
    naming the file and the entry.

    :param path: the file or the run's folder
    :param experiment: the experiment it must be a run of (``None``: any)
    :raise FileNotFoundError: naming the path
    :raise ValueError: when the file is not a run's metrics (or not of ``experiment``)
    """
    path = Path(path)
    path = path / METRICS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no {METRICS_FILE} at {path}: run an experiment with --out <folder> first")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error})") from error
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} is not an experiment's {METRICS_FILE}")
    name = metrics.get("experiment") or _legacy_name(metrics)
    if name is None or (experiment is not None and name != experiment):
        expected = f"the {experiment!r} experiment's" if experiment else "an experiment's"
        raise ValueError(f"{path} is not {expected} {METRICS_FILE} (it is {name or 'of no known experiment'})")
    metrics.setdefault("experiment", name)
    return _as_metrics(metrics, path)


def _legacy_name(metrics: dict[str, Any]) -> str | None:
    """The experiment of a ``metrics.json`` written before runs named their experiment, by its keys."""
    if {"validation", "baselines", "summary"} <= metrics.keys():
        return "coin"
    if {"config", "final", "history"} <= metrics.keys():
        return "tree"
    if {"settings", "summaries"} <= metrics.keys():
        return "two_phase"
    return None

