"""Where the units of work run: in this process, on a Ray cluster, or as a Slurm job array.

The trace and attack stages cut their work into *units* and say how to run one
(:func:`etio.traces.stage.trace_units` / :func:`~etio.traces.stage.run_trace_unit`: a group of
configurations trained together; :func:`etio.attacks.stage.attack_units` /
:func:`~etio.attacks.stage.run_attack_unit`: one configuration's attacks). An executor runs a
list of units; every unit writes into the trace store through the store's API and skips what
is stored, so any mix of executors, retries and reruns converges to the same store and the
same ``traces.csv``.

Executors (``--executor``, or ``kind`` in the config's ``[executor]`` table):

- ``local`` (the default): the training units one after another in this process; the attack units
  too, or, from :data:`POOL_MIN_UNITS` units up, in ``processes`` worker processes of this machine
  (default: one per core on the CPU; attack models are tiny, so each worker runs one torch thread,
  as the in-process run does, and the results are the same bytes). The first failure stops the run.
- ``ray``: one Ray task per unit with the unit's CPU/GPU/memory request, retried ``retries``
  times (a killed worker as well as an exception); ``ray_address`` joins a running cluster,
  otherwise a local Ray is started for the run and stopped after it.
- ``slurm``: the units as a Slurm job array through submitit (partition, time, GPUs per job,
  array parallelism), failed units resubmitted ``retries`` times. ``slurm_cluster = "local"``
  runs the same array with submitit's local executor (processes on this machine).

With ray and slurm a failed unit does not stop the others: the run finishes every unit it
can, rewrites ``traces.csv`` from the store, reports each failed unit with its
configurations and exits non-zero. Each unit's state (queued, running, done, failed; host,
attempt, error) is kept in ``<store>/units/<stage>/<unit>.json``, which ``etio status`` reads.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from etio.core import interrupts
from etio.core.errors import EtioError, EtioInputError
from etio.core.provenance import available_cores, write_json

EXECUTORS = ("local", "ray", "slurm")
SLURM_CLUSTERS = ("slurm", "local")
Echo = Callable[[str], None]


class UnitsFailed(EtioError):
    """Some units failed after their retries; everything else was kept. Exit status 1."""

    exit_code = 1


# --------------------------------------------------------------------------------------
# Settings: the [executor] table and the command-line options
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "local"
    #: local: worker processes for the attack units (None: one per core on the CPU from
    #: POOL_MIN_UNITS units up, else this process); 1 runs them in this process.
    processes: int | None = None
    #: Further attempts of a failed unit (ray: max_retries; slurm: resubmissions).
    retries: int = 2
    #: Per unit; None: derived from the config and the device (:func:`unit_resources`).
    cpus: float | None = None
    gpus: float | None = None
    memory_gb: float | None = None
    ray_address: str | None = None
    #: CPUs of the local Ray started when no address is given (None: all of this machine's).
    ray_cpus: int | None = None
    slurm_partition: str | None = None
    slurm_time_min: int = 60
    #: GPUs per array job (default: the unit's GPU request rounded up).
    slurm_gpus: int | None = None
    #: How many array jobs run at once.
    slurm_array: int = 16
    slurm_cluster: str = "slurm"
    slurm_folder: str | None = None
    slurm_setup: tuple[str, ...] = ()

    def with_overrides(self, **overrides) -> "ExecutorSettings":
        given = {k: v for k, v in overrides.items() if v is not None}
        return _checked(replace(self, **given), "command line") if given else self


_KEYS = {f.name for f in fields(ExecutorSettings)}


def parse_executor_settings(table: dict | None, source: str = "config") -> ExecutorSettings:
    """The ``[executor]`` table; an unknown key or a bad value is one clear error."""
    table = dict(table or {})
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise EtioInputError(f"{source}: unknown key {unknown[0]!r} in [executor]; allowed keys: {', '.join(sorted(_KEYS))}")
    if "slurm_setup" in table:
        setup = table["slurm_setup"]
        if not (isinstance(setup, list) and all(isinstance(x, str) for x in setup)):
            raise EtioInputError(f"{source}: [executor] slurm_setup must be a list of shell lines")
        table["slurm_setup"] = tuple(setup)
    return _checked(ExecutorSettings(**table), source)


def _checked(s: ExecutorSettings, source: str) -> ExecutorSettings:
    def fail(message: str):
        raise EtioInputError(f"{source}: {message}")

    if s.kind not in EXECUTORS:
        fail(f"unknown executor {s.kind!r}; use one of {', '.join(EXECUTORS)}")
    if s.slurm_cluster not in SLURM_CLUSTERS:
        fail(f"slurm_cluster must be one of {', '.join(SLURM_CLUSTERS)}, got {s.slurm_cluster!r}")
    if not (isinstance(s.retries, int) and not isinstance(s.retries, bool) and s.retries >= 0):
        fail(f"retries must be a whole number ≥ 0, got {s.retries!r}")
    for name in ("cpus", "gpus", "memory_gb"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                  or not math.isfinite(value)):
            fail(f"{name} must be a number ≥ 0, got {value!r}")
    for name in ("slurm_time_min", "slurm_array", "processes"):
        value = getattr(s, name)
        if value is None and name == "processes":          # chosen per run (local_processes)
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{name} must be a whole number ≥ 1, got {value!r}")
    for name in ("ray_cpus", "slurm_gpus"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            fail(f"{name} must be a whole number ≥ 0, got {value!r}")
    return s


# --------------------------------------------------------------------------------------
# Units and their resource requests
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 1.0


@dataclass(frozen=True)
class Unit:
    """One unit of work of a stage: ``fn(*args, **kwargs)`` writes its results into the store."""

    stage: str                      # "traces" or "attacks"
    unit_id: str
    store: Path
    configurations: tuple[str, ...]
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    resources: Resources = Resources()
    #: Name of ``fn``'s per-configuration callback (in-process progress), if it has one.
    progress_arg: str | None = None

    @property
    def label(self) -> str:
        return f"{self.stage} unit {self.unit_id} ({', '.join(self.configurations)})"


#: (config, stage, configurations) -> Resources | None. `etio plan`'s cost model can register
#: itself here (:func:`set_resource_estimator`); the settings' explicit values win over it.
_estimator: Callable[..., Resources | None] | None = None


def set_resource_estimator(estimator: Callable[..., Resources | None] | None) -> None:
    global _estimator
    _estimator = estimator


def unit_resources(cfg, stage: str, job, settings: ExecutorSettings, device: str) -> Resources:
    """A unit's request: the settings' values, else the registered estimate, else a default from the config.

    The default: one CPU; one GPU on ``cuda``; memory for the unit's models (parameters,
    gradients, momentum and a snapshot copy, 4 bytes each) and the dataset, plus 1 GB for
    the interpreter, torch and R.
    """
    estimate = _estimator(cfg, stage, job) if _estimator is not None else None
    if estimate is None:
        estimate = Resources(1.0, 1.0 if str(device).startswith("cuda") else 0.0, _memory_gb(cfg, job))
    return Resources(cpus=settings.cpus if settings.cpus is not None else estimate.cpus,
                     gpus=settings.gpus if settings.gpus is not None else estimate.gpus,
                     memory_gb=settings.memory_gb if settings.memory_gb is not None else estimate.memory_gb)


def _memory_gb(cfg, job) -> float:
    from etio.traces.models import count_params

    parts = {part.dataset: part for part in cfg.dataset_grids()}
    if job is None:                       # an attack unit: one configuration's models are queried
        need = 0.0
        for part in parts.values():       # the largest over the study's datasets, at the sizes it uses
            info, g = part.info(), part.grid
            biggest = max(count_params(a, max(part.widths_of(a)), info.num_classes, info.input_shape)
                          for a in g["arch"])
            models = cfg.repeats * (info.pool_size // min(g["train_size"]))
            data = (info.pool_size + info.test_size) * math.prod(info.input_shape) * 4
            need = max(need, models * biggest * 4 + data)
        return round(1.0 + need / 2**30, 2)
    info = parts[job.dataset or cfg.dataset].info()
    models = cfg.repeats * (info.pool_size // job.train_size) * len(job.members)
    params = count_params(job.arch, max(job.widths), info.num_classes, info.input_shape)
    data = (info.pool_size + info.test_size) * math.prod(info.input_shape) * 4
    return round(1.0 + (models * params * 4 * 4 + data) / 2**30, 2)


def trace_units(cfg, out: Path, settings: ExecutorSettings, device: str, shard=(0, 1),
                data_dir: Path | None = None) -> list[Unit]:
    from etio.traces.stage import run_trace_unit, trace_units as plan
    from etio.traces.store import open_store

    out = Path(out).resolve()
    data_dir = Path(data_dir).resolve() if data_dir else None
    return [Unit("traces", u.unit_id, out, u.keys, run_trace_unit, (cfg, out, u.unit_id, device, data_dir),
                 resources=unit_resources(cfg, "traces", u.job, settings, device), progress_arg="on_written")
            for u in plan(cfg, open_store(out, data_dir), shard)]


def attack_units(cfg, store, attacks: Sequence[str], attack_settings, settings: ExecutorSettings, device: str,
                 threads: int = 1) -> list[Unit]:
    from etio.attacks.stage import attack_units as pending, run_attack_unit

    root = Path(store.root).resolve()
    resources = unit_resources(cfg, "attacks", None, settings, device) if cfg is not None else \
        Resources(settings.cpus or 1.0, settings.gpus if settings.gpus is not None else
                  (1.0 if str(device).startswith("cuda") else 0.0), settings.memory_gb or 2.0)
    return [Unit("attacks", key, root, (key,), run_attack_unit, (root, key, tuple(attacks), attack_settings, device,
                                                                  threads), resources=resources)
            for key in pending(store, attacks, attack_settings)]


# --------------------------------------------------------------------------------------
# The unit ledger: what etio status reads
# --------------------------------------------------------------------------------------

def ledger_dir(store: Path, stage: str) -> Path:
    return Path(store) / "units" / stage


def _entry_path(unit: Unit) -> Path:
    return ledger_dir(unit.store, unit.stage) / f"{unit.unit_id}.json"


def read_entry(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _record(unit: Unit, executor: str, state: str, **extra) -> dict:
    path = _entry_path(unit)
    previous = read_entry(path) or {}
    entry = {"stage": unit.stage, "unit": unit.unit_id, "configurations": list(unit.configurations),
             "executor": executor, "state": state, "attempt": previous.get("attempt", 0),
             "resources": unit.resources.__dict__, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    entry.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, entry)
    return entry


def execute_unit(unit: Unit, executor: str, progress: Callable[[str], None] | None = None):
    """Run one unit where this is called (this process, a Ray worker, a Slurm job), keeping its ledger entry."""
    attempt = (read_entry(_entry_path(unit)) or {}).get("attempt", 0) + 1
    _record(unit, executor, "running", attempt=attempt, host=socket.gethostname(), pid=os.getpid(),
            job=os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")))
    kwargs = dict(unit.kwargs)
    if progress is not None and unit.progress_arg:
        kwargs[unit.progress_arg] = progress
    try:
        result = unit.fn(*unit.args, **kwargs)
    except BaseException as exc:
        _record(unit, executor, "failed", host=socket.gethostname(), pid=os.getpid(), error=_one_line(exc))
        raise
    _record(unit, executor, "done", host=socket.gethostname(), pid=os.getpid())
    return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip()


# --------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    done: list[Unit] = field(default_factory=list)
    failed: list[tuple[Unit, str]] = field(default_factory=list)
    #: What each finished unit's function returned, by unit id.
    results: dict[str, Any] = field(default_factory=dict)

    def finished(self, unit: Unit, result, on_done) -> None:
        self.done.append(unit)
        self.results[unit.unit_id] = result
        if on_done is not None:
            on_done(unit)


def run_units(units: Sequence[Unit], settings: ExecutorSettings, echo: Echo | None = None,
              progress: Callable[[str], None] | None = None,
              on_done: Callable[[Unit], None] | None = None) -> Outcome:
    """Run ``units`` on the executor of ``settings``.

    ``progress(key)`` after each configuration (local only); ``on_done(unit)`` after each unit.
    """
    echo = echo or (lambda line: None)
    units = list(units)
    if not units:
        return Outcome()
    for unit in units:
        if (read_entry(_entry_path(unit)) or {}).get("state") != "running":
            _record(unit, settings.kind, "queued", error=None)
    if settings.kind == "local":
        processes = local_processes(units, settings)
        if processes > 1:
            return _run_pool(units, processes, on_done)
        return _run_local(units, progress, on_done)
    if settings.kind == "ray":
        return _run_ray(units, settings, echo, on_done)
    return _run_slurm(units, settings, echo, on_done)


#: Fewest attack units the local executor gives to worker processes by default: starting them
#: (a fork server that imports etio and torch) takes about 2 s, which a few units do not repay.
POOL_MIN_UNITS = 8


def local_processes(units: Sequence[Unit], settings: ExecutorSettings) -> int:
    """How many worker processes the local executor runs ``units`` in (1: this process).

    Only attack units go to workers: training units use every core in this process already.
    """
    if not units or any(unit.stage != "attacks" for unit in units):
        return 1
    return attack_processes(len(units), settings, gpu=any(unit.resources.gpus for unit in units))


def attack_processes(n_units: int, settings: ExecutorSettings, gpu: bool = False) -> int:
    """Worker processes of the local executor for ``n_units`` attack units (1: this process)."""
    if settings.kind != "local" or n_units < 2:
        return 1
    if settings.processes is not None:
        return min(settings.processes, n_units)
    if gpu or n_units < POOL_MIN_UNITS:
        return 1
    return min(available_cores(), n_units)


def _run_pool(units: list[Unit], processes: int, on_done) -> Outcome:
    """The units in ``processes`` fresh worker processes (a fork server: no state of this process,
    its threads or an embedded R, is inherited); the first failure stops the run, as in-process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted({unit.fn.__module__ for unit in units}))
    results: dict[str, Any] = {}
    # the workers print warnings as this process does (the command line's one-line messages)
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_worker_setup,
                               initargs=(_picklable(warnings.formatwarning),))
    stopped = False
    try:
        with interrupts.held():                   # a worker being started gets all of its start-up data
            futures = {pool.submit(execute_unit, unit, "local"): unit for unit in units}
        for future in as_completed(futures):
            unit = futures[future]
            try:
                results[unit.unit_id] = future.result()
            except BrokenProcessPool:
                # every unfinished unit fails with the pool, so which one was running is in the ledger
                raise EtioError(f"a worker process died (killed, or out of memory) in the {unit.stage} stage; "
                                f"what finished is stored (etio status --store {unit.store} names the unit it "
                                f"was running): rerun to resume") from None
            if on_done is not None:
                on_done(unit)                     # as each finishes: the progress display
    except BaseException as exc:
        if not isinstance(exc, Exception):        # Ctrl-C: the workers stop now, not after their unit
            interrupts.terminate_pool(pool)
            stopped = True
        raise
    finally:
        if not stopped:
            pool.shutdown(wait=True, cancel_futures=True)
    outcome = Outcome()
    for unit in units:                            # the run's order, whichever worker finished first
        outcome.finished(unit, results[unit.unit_id], None)
    return outcome


def _picklable(fn):
    import pickle

    try:
        pickle.dumps(fn)
    except Exception:       # a formatter defined in a function: the workers keep Python's own
        return None
    return fn


def _worker_setup(formatwarning) -> None:
    interrupts.ignore_in_worker()                 # Ctrl-C is the parent's: it terminates the workers
    if formatwarning is not None:
        warnings.formatwarning = formatwarning


def _run_local(units, progress, on_done) -> Outcome:
    outcome = Outcome()
    for unit in units:
        # today's behaviour: the first failure stops the run
        outcome.finished(unit, execute_unit(unit, "local", progress), on_done)
    return outcome


def _run_ray(units: list[Unit], settings: ExecutorSettings, echo: Echo, on_done) -> Outcome:
    try:
        import ray
    except ImportError:
        raise EtioInputError("--executor ray needs Ray: pip install 'etio[ray]'") from None
    import logging

    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR, "configure_logging": True}
        if settings.ray_address:
            options["address"] = settings.ray_address
        else:
            options["num_cpus"] = settings.ray_cpus
        try:
            ray.init(**options)
        except ConnectionError as exc:
            raise EtioInputError(f"cannot join the Ray cluster at {settings.ray_address!r}: {exc}") from None
        started_here = True
    try:
        _check_feasible(units, ray.cluster_resources(), settings)
        task = ray.remote(execute_unit)
        refs = {}
        for unit in units:
            r = unit.resources
            refs[task.options(num_cpus=r.cpus, num_gpus=r.gpus, memory=int(r.memory_gb * 2**30),
                              max_retries=settings.retries, retry_exceptions=True,
                              name=f"etio-{unit.stage}-{unit.unit_id}").remote(unit, "ray")] = unit
        echo(f"   ray: {len(refs)} {units[0].stage} units on {_describe(ray.cluster_resources())}")
        outcome = Outcome()
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            unit = refs[ready[0]]
            try:
                result = ray.get(ready[0])
            except Exception as exc:            # RayTaskError (after retries) or a lost worker
                message = _ray_error(exc)
                _record(unit, "ray", "failed", error=message)
                outcome.failed.append((unit, message))
                continue
            outcome.finished(unit, result, on_done)
        return outcome
    finally:
        if started_here:
            ray.shutdown()


def _ray_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    return _one_line(cause) if isinstance(cause, BaseException) else _one_line(exc)


def _check_feasible(units: list[Unit], available: dict, settings: ExecutorSettings) -> None:
    """A request no node can meet would wait forever in Ray's queue: name it instead."""
    for unit in units:
        r = unit.resources
        needs = {"CPU": r.cpus, "GPU": r.gpus, "memory": r.memory_gb * 2**30}
        for name, amount in needs.items():
            if amount and amount > available.get(name, 0.0) + 1e-9:
                have = available.get(name, 0.0) / (2**30 if name == "memory" else 1)
                want = amount / (2**30 if name == "memory" else 1)
                raise EtioInputError(f"{unit.label} asks for {want:g} {name if name != 'memory' else 'GB memory'} "
                                     f"but the Ray cluster has {have:g}; lower [executor] cpus/gpus/memory_gb")


def _describe(resources: dict) -> str:
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    return f"{cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "")


# ---- Slurm through submitit --------------------------------------------------------------

def slurm_parameters(settings: ExecutorSettings, resources: Resources, name: str) -> dict:
    """sbatch parameters (submitit's SlurmExecutor names) for units with ``resources``."""
    params: dict[str, Any] = {"job_name": name, "time": settings.slurm_time_min,
                              "cpus_per_task": max(1, math.ceil(resources.cpus)),
                              "mem": f"{max(1, math.ceil(resources.memory_gb))}GB",
                              "array_parallelism": settings.slurm_array}
    gpus = settings.slurm_gpus if settings.slurm_gpus is not None else math.ceil(resources.gpus)
    if gpus:
        params["gpus_per_node"] = gpus
    if settings.slurm_partition:
        params["partition"] = settings.slurm_partition
    if settings.slurm_setup:
        params["setup"] = list(settings.slurm_setup)
    return params


def sbatch_script(settings: ExecutorSettings, units: Sequence[Unit], folder: Path) -> str:
    """The sbatch script submitit submits for ``units`` as one array (written without calling sbatch)."""
    executor = _script_writer()(folder)
    executor.update_parameters(**slurm_parameters(settings, _largest(units), f"etio-{units[0].stage}"))
    if len(units) > 1:
        executor.parameters["map_count"] = len(units)
    return executor._make_submission_file_text(executor._submitit_command_str, "array")


def _script_writer():
    import submitit

    class ScriptWriter(submitit.SlurmExecutor):
        """A SlurmExecutor that writes scripts only, so it needs no srun on this machine."""

        @classmethod
        def affinity(cls) -> int:
            return 1

    return ScriptWriter


def _largest(units: Sequence[Unit]) -> Resources:
    return Resources(max(u.resources.cpus for u in units), max(u.resources.gpus for u in units),
                     max(u.resources.memory_gb for u in units))


def _submitit_executor(settings: ExecutorSettings, units: list[Unit]):
    try:
        import submitit
    except ImportError:
        raise EtioInputError("--executor slurm needs submitit: pip install 'etio[slurm]'") from None
    folder = Path(settings.slurm_folder) if settings.slurm_folder else ledger_dir(units[0].store, "submitit")
    params = slurm_parameters(settings, _largest(units), f"etio-{units[0].stage}")
    if settings.slurm_cluster == "local":
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(timeout_min=params["time"], gpus_per_node=params.get("gpus_per_node", 0),
                                   setup=params.get("setup", []))
    else:
        try:
            executor = submitit.SlurmExecutor(folder)
        except RuntimeError as exc:                    # no srun: not on a Slurm cluster
            raise EtioInputError(f"--executor slurm: {exc}; set slurm_cluster = \"local\" to test the array "
                                 f"on this machine") from None
        executor.update_parameters(**params)
    return executor


def _run_slurm(units: list[Unit], settings: ExecutorSettings, echo: Echo, on_done) -> Outcome:
    outcome = Outcome()
    todo = list(units)
    for attempt in range(settings.retries + 1):
        executor = _submitit_executor(settings, todo)
        # submitit's local executor starts every job at once; run it in waves of the array size.
        waves = [todo[i:i + settings.slurm_array] for i in range(0, len(todo), settings.slurm_array)] \
            if settings.slurm_cluster == "local" else [todo]
        failed: list[tuple[Unit, str]] = []
        for wave in waves:
            jobs = executor.map_array(execute_unit, wave, ["slurm"] * len(wave))
            _write_submissions(wave, jobs, settings)
            echo(f"   slurm ({settings.slurm_cluster}): {len(wave)} {wave[0].stage} units submitted as job "
                 f"{_array_id(jobs)}" + (f", attempt {attempt + 1}" if attempt else ""))
            for unit, job in zip(wave, jobs):
                try:
                    result = job.result()
                except Exception as exc:        # FailedJobError, UncompletedJobError (killed, timed out)
                    message = _submitit_error(exc)
                    _record(unit, "slurm", "failed", error=message, job=str(job.job_id))
                    failed.append((unit, message))
                    continue
                outcome.finished(unit, result, on_done)
        if not failed:
            break
        todo = [u for u, _ in failed]
        if attempt == settings.retries:
            outcome.failed = failed
        else:
            echo(f"   slurm: {len(todo)} units failed; resubmitting")
    return outcome


def _array_id(jobs) -> str:
    first = str(jobs[0].job_id)
    return first.split("_")[0] if "_" in first else ",".join(str(j.job_id) for j in jobs)


def _write_submissions(units: list[Unit], jobs, settings: ExecutorSettings) -> None:
    path = ledger_dir(units[0].store, units[0].stage) / "submissions.json"
    known = read_entry(path) or {}
    known.update({u.unit_id: {"job": str(j.job_id), "cluster": settings.slurm_cluster,
                              "folder": str(j.paths.folder)} for u, j in zip(units, jobs)})
    write_json(path, dict(sorted(known.items())))


def _submitit_error(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    # submitit puts the job's traceback in the message; its last line is the exception
    return lines[-1] if lines else type(exc).__name__


def raise_for_failures(outcome: Outcome, store: Path, echo: Echo) -> None:
    """Name every failed unit and its configurations; then fail the run (what finished stays stored)."""
    if not outcome.failed:
        return
    for unit, message in outcome.failed:
        echo(f"failed: {unit.label}: {message}")
    n = len(outcome.failed)
    total = n + len(outcome.done)
    raise UnitsFailed(f"{n} of {total} {outcome.failed[0][0].stage} units failed (listed above) after their "
                      f"retries; everything else is stored in {store}; rerun the same command to retry them")


# --------------------------------------------------------------------------------------
# The stages on an executor (what `etio traces`, `etio attack` and `etio reproduce` call)
# --------------------------------------------------------------------------------------

def traces_on(cfg, out: Path, settings: ExecutorSettings, device: str, shard=(0, 1), data_dir: Path | None = None,
              echo: Echo | None = None, progress: bool = False, progress_echo: Echo | None = None):
    """Train every configuration of ``cfg`` not yet stored, on the executor of ``settings``; write traces.csv.

    Local runs show their progress as a bar (``progress``) or as lines through ``progress_echo``;
    ``echo`` gets the executor's messages and the failed units.
    """
    from etio.core.progress import StageProgress
    from etio.traces.stage import finish_traces, trace_units as plan, training_store

    echo_line = echo or (lambda line: None)
    started = time.time()
    # the driver holds the store's lock while its workers write (they are its own units)
    with training_store(cfg, out, device, shard, data_dir, echo, f"etio traces, {settings.kind} executor") as store:
        units = trace_units(cfg, out, settings, device, shard, data_dir)
        total = sum(len(u.keys) for u in plan(cfg, None, shard, pending_only=False))
        done_before = total - sum(sum(not store.is_done(k) for k in u.configurations) for u in units)
        local = settings.kind == "local"
        with StageProgress("traces", total, done=done_before, unit="configurations",
                           echo=progress_echo if local else None,
                           enabled=local and (progress or progress_echo is not None)) as bar:
            outcome = run_units(units, settings, echo_line, progress=lambda key: bar.advance())
        finish_traces(store, device, shard, started, extra={"executor": _provenance(settings, units)})
    raise_for_failures(outcome, store.root, echo_line)
    return store


def attacks_on(store, attacks: Sequence[str], attack_settings, settings: ExecutorSettings, device: str,
               threads: int = 1, echo: Echo | None = None, cfg=None, progress: Callable[[str], None] | None = None):
    """Every requested attack on every stored configuration, on the executor of ``settings``; rewrite traces.csv.

    Returns the attack stage's summary (configurations, results computed and reused, seconds,
    seconds per attack). ``progress(key)`` after each configuration attacked.
    """
    from etio.attacks.stage import check_attack_inputs, finish_attacks

    echo_line = echo or (lambda line: None)
    started = time.perf_counter()
    keys = check_attack_inputs(store, attacks, attack_settings)
    if threads != 1 and settings.kind == "local" and settings.processes is None:
        settings = replace(settings, processes=1)     # units of several threads share this process's cores
    with store.lock(f"etio attack, {settings.kind} executor"):     # held while the workers write
        units = attack_units(cfg, store, attacks, attack_settings, settings, device, threads)
        pending = {u.unit_id for u in units}
        if progress:
            for key in keys:
                if key not in pending:
                    progress(key)
        outcome = run_units(units, settings, echo_line, on_done=lambda unit: progress and progress(unit.unit_id))
        finish_attacks(store, attacks, attack_settings, device, extra={"executor": _provenance(settings, units)})
    raise_for_failures(outcome, store.root, echo_line)
    timing: dict[str, float] = {}
    for seconds in outcome.results.values():
        for name, value in (seconds or {}).items():
            timing[name] = timing.get(name, 0.0) + value
    computed = sum(len(r or {}) for r in outcome.results.values())
    return {"configurations": len(keys), "computed": computed, "reused": len(keys) * len(attacks) - computed,
            "units": len(units), "seconds": time.perf_counter() - started, "seconds_by_attack": timing}


def _provenance(settings: ExecutorSettings, units: Sequence[Unit]) -> dict:
    record = {"kind": settings.kind, "units_this_run": len(units), "retries": settings.retries}
    if settings.kind == "local":
        record["processes"] = local_processes(units, settings)
    if units:
        record["resources_per_unit"] = _largest(units).__dict__
    if settings.kind == "ray":
        record["ray_address"] = settings.ray_address or "local (started for the run)"
    if settings.kind == "slurm":
        record["slurm"] = {"cluster": settings.slurm_cluster, "partition": settings.slurm_partition,
                           "time_min": settings.slurm_time_min, "array": settings.slurm_array}
    return record


# --------------------------------------------------------------------------------------
# Status of a store, whatever ran it
# --------------------------------------------------------------------------------------

@dataclass
class StageStatus:
    stage: str
    units: int
    done: int
    running: list[dict]
    failed: list[dict]
    queued: int
    configurations: int = 0
    configurations_done: int = 0


def store_status(out: Path) -> list[StageStatus]:
    """Done, running, failed and queued units of each stage of the store at ``out``.

    Trace units are counted from the config's plan, done when all their configurations are
    stored; running and failed come from the unit ledger. Attack units are those the ledger
    knows of (one per configuration and run).
    """
    from etio.traces.stage import trace_units as plan
    from etio.traces.store import open_store

    store = open_store(out)
    cfg = experiment_of(store, check_models=False)   # checked when the store was made; no torch for a status
    result = []
    entries = _entries(Path(out), "traces")
    units = plan(cfg, None, pending_only=False)
    done = [u for u in units if all(store.is_done(k) for k in u.keys)]
    result.append(_stage_status("traces", [u.unit_id for u in units], {u.unit_id for u in done}, entries,
                                configurations=sum(len(u.keys) for u in units),
                                configurations_done=len(store.keys())))
    attack_entries = _entries(Path(out), "attacks")
    if attack_entries:
        ids = sorted(attack_entries)
        result.append(_stage_status("attacks", ids, {i for i, e in attack_entries.items() if e["state"] == "done"},
                                    attack_entries, configurations=len(ids)))
    return result


def experiment_of(store, check_models: bool = True):
    """The experiment config a store was made from (its store.json holds it as written by ``to_dict``);
    ``check_models``: see :func:`etio.traces.config.parse_config`."""
    from etio.traces.config import parse_config

    def given(table: dict) -> dict:       # unset optional values are stored as null
        return {k: given(v) if isinstance(v, dict) else v for k, v in table.items() if v is not None}

    return parse_config(given(store.meta["config"]), f"{store.root}/store.json", check_models=check_models)


def _entries(root: Path, stage: str) -> dict[str, dict]:
    directory = ledger_dir(root, stage)
    if not directory.is_dir():
        return {}
    entries = {}
    submissions = read_entry(directory / "submissions.json") or {}
    for path in sorted(directory.glob("*.json")):
        if path.name == "submissions.json":
            continue
        entry = read_entry(path)
        if entry:
            entry.setdefault("job", (submissions.get(entry["unit"]) or {}).get("job"))
            entries[entry["unit"]] = entry
    return entries


def _stage_status(stage, ids, done_ids, entries, configurations=0, configurations_done=0) -> StageStatus:
    running, failed, queued = [], [], 0
    for unit_id in ids:
        if unit_id in done_ids:
            continue
        entry = entries.get(unit_id)
        state = entry["state"] if entry else "pending"
        if state == "running":
            running.append({**entry, "lost": _lost(entry)})
        elif state == "failed":
            failed.append(entry)
        else:
            queued += 1
    return StageStatus(stage, len(ids), len(done_ids), running, failed, queued, configurations,
                       configurations_done)


def _lost(entry: dict) -> bool:
    """A unit recorded as running in a process of this host that no longer exists."""
    if entry.get("host") != socket.gethostname() or not entry.get("pid"):
        return False
    try:
        os.kill(int(entry["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------

def benchmark_executors(study, other: ExecutorSettings, device: str = "cpu") -> dict:
    """Wall seconds of traces + attacks of ``study`` on the local executor and on ``other``.

    The other executor's time includes starting it (a local Ray, or submitit's processes),
    which is its overhead on a small config; both runs' traces.csv are compared byte for byte.
    """
    import tempfile

    from etio.attacks.settings import ATTACK_NAMES

    seconds, tables = {}, {}
    with tempfile.TemporaryDirectory(prefix="etio-bench-executors-") as tmp:
        for name, settings in (("local", ExecutorSettings()), ("other", other)):
            out = Path(tmp) / name
            start = time.perf_counter()
            store = traces_on(study.experiment, out, settings, device)
            attacks_on(store, ATTACK_NAMES, study.attacks, settings, device, cfg=study.experiment)
            seconds[name] = time.perf_counter() - start
            tables[name] = (out / "traces.csv").read_bytes()
            configurations = len(store.keys())
    return {"configurations": configurations, "local_s": seconds["local"], "other_s": seconds["other"],
            "overhead_s": seconds["other"] - seconds["local"], "ratio": seconds["other"] / seconds["local"],
            "identical": tables["local"] == tables["other"]}
