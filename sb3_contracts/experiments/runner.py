"""An experiment's phases as a small DAG, run in sequence or as parallel Ray tasks.

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
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What to install for the parallel paths.
RAY_EXTRA = 'pip install "sb3-contracts[distributed]"'
#: Seconds to wait for a cluster's address to answer.
PROBE_TIMEOUT = 10.0
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+)$")


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
    :param seconds: its compute time (in the process that ran it)
    """

    output: Any
    seconds: float


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
        ray.init(address=address, runtime_env=same_priority(), **kwargs)
    except ConnectionError as error:
        raise ValueError(f"--address {address}: Ray could not connect ({error}). A cluster with token "
                         "authentication (Ray >= 2.59) needs RAY_AUTH_MODE=token and its token (ray get-auth-token) "
                         "here too") from error


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
               on_done: Callable[[str, PhaseRecord], None] | None = None, threads: int = 1) -> dict[str, PhaseRecord]:
    """
    Run every phase not in ``done``, each once its inputs exist.

    :param phases: the DAG; its order is the order in sequence and the priority in parallel
    :param parallel: Ray tasks (``True``), in sequence here (``False``) or Ray tasks when Ray is installed
        (``None``). Ray is started on this machine unless already connected (:func:`init_ray`).
    :param done: records of phases already run (e.g. restored from a checkpoint): not run again
    :param on_done: called with each phase's name and record as it finishes (in this process)
    :param threads: torch threads of each Ray task
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
        _run_on_ray(todo, records, on_done or (lambda name, record: None), threads)
        return records
    for phase in todo:
        start = time.perf_counter()
        output = phase.fn(*(records[name].output for name in phase.needs))
        records[phase.name] = PhaseRecord(output, time.perf_counter() - start)
        if on_done is not None:
            on_done(phase.name, records[phase.name])
    return records


def _call_phase(fn: Callable[..., Any], threads: int, *inputs: PhaseRecord) -> PhaseRecord:
    """The body of a phase's Ray task (inputs arrive as records of the phases it needs)."""
    import torch as th

    th.set_num_threads(threads)  # one CPU per task: more threads would fight over it
    start = time.perf_counter()
    output = fn(*(record.output for record in inputs))
    return PhaseRecord(output, time.perf_counter() - start)


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
                threads: int) -> None:
    init_ray()
    import ray

    task = ray.remote(_call_phase).options(**_task_options(ray))
    slots = _slots(ray)
    refs = {name: ray.put(record) for name, record in records.items()}
    waiting, running = list(todo), {}
    try:
        while waiting or running:
            # list scheduling: the first ready phase in the list's order takes the next free CPU
            while len(running) < slots:
                ready = next((phase for phase in waiting if all(name in refs for name in phase.needs)), None)
                if ready is None:
                    break
                waiting.remove(ready)
                running[task.remote(ready.fn, threads, *(refs[name] for name in ready.needs))] = ready.name
            finished, _ = ray.wait(list(running), num_returns=1)
            name = running.pop(finished[0])
            records[name] = ray.get(finished[0])
            refs[name] = finished[0]
            on_done(name, records[name])
    finally:
        for ref in running:  # a phase failed (or the caller was interrupted): stop the others
            ray.cancel(ref, force=True)


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
        (folder / f"{name}.json").write_text(json.dumps({"seconds": record.seconds, "output": output}, default=float))
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
        records[path.stem] = PhaseRecord(output, float(saved["seconds"]))
    return records
