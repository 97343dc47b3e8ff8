"""The local executor: the units one after another in this process, or attack units in worker
processes of this machine. The first failure stops the run."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from etio.core import interrupts
from etio.core.errors import EtioError
from etio.core.provenance import available_cores
from etio.pipeline.executors.ledger import execute_unit
from etio.pipeline.executors.settings import ExecutorSettings
from etio.pipeline.executors.units import Outcome, Unit


def run_local(units: list[Unit], settings: ExecutorSettings, progress=None, on_done=None) -> Outcome:
    """``units`` here, or in worker processes (:func:`local_processes`); ``progress(key)`` after each
    configuration (in this process only), ``on_done(unit)`` after each unit."""
    processes = local_processes(units, settings)
    if processes > 1:
        return _run_pool(units, processes, on_done)
    return _run_here(units, progress, on_done)


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

def _run_here(units, progress, on_done) -> Outcome:
    outcome = Outcome()
    for unit in units:
        # the first failure stops the run
        outcome.finished(unit, execute_unit(unit, "local", progress), on_done)
    return outcome
