"""The trace and attack stages on an executor: what `etio traces`, `etio attack` and `etio reproduce` call.

Each stage lists its units and runs one (:func:`etio.traces.stage.trace_units` /
:func:`~etio.traces.stage.run_trace_unit` / :func:`~etio.traces.stage.finish_traces`;
:func:`etio.attacks.stage.attack_units` / :func:`~etio.attacks.stage.run_attack_unit` /
:func:`~etio.attacks.stage.finish_attacks`). Here they become executor units with their resource
requests (:func:`schedule_traces`, :func:`schedule_attacks`), run on the executor of the
settings (:mod:`etio.pipeline.executors`), and the stage is finished once, in this process.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from etio.pipeline.executors import (Echo, ExecutorSettings, Resources, Unit, largest, local_processes,
                                     raise_for_failures, run_units, unit_resources)


def schedule_traces(cfg, out: Path, settings: ExecutorSettings, device: str, shard=(0, 1),
                    data_dir: Path | None = None) -> list[Unit]:
    """The trace units of ``cfg`` (this shard) not all stored in the store at ``out``, as executor units."""
    from etio.traces.stage import run_trace_unit, trace_units
    from etio.traces.store import open_store

    out = Path(out).resolve()
    data_dir = Path(data_dir).resolve() if data_dir else None
    return [Unit("traces", u.unit_id, out, u.keys, run_trace_unit, (cfg, out, u.unit_id, device, data_dir),
                 resources=unit_resources(cfg, "traces", u.job, settings, device), progress_arg="on_written")
            for u in trace_units(cfg, open_store(out, data_dir), shard)]


def schedule_attacks(cfg, store, attacks: Sequence[str], attack_settings, settings: ExecutorSettings, device: str,
                     threads: int = 1) -> list[Unit]:
    """The attack units of ``store`` with a requested attack not stored under these settings, as executor units."""
    from etio.attacks.stage import attack_units, run_attack_unit

    root = Path(store.root).resolve()
    resources = unit_resources(cfg, "attacks", None, settings, device) if cfg is not None else \
        Resources(settings.cpus or 1.0, settings.gpus if settings.gpus is not None else
                  (1.0 if str(device).startswith("cuda") else 0.0), settings.memory_gb or 2.0)
    return [Unit("attacks", u.unit_id, root, u.keys, run_attack_unit,
                 (root, u.unit_id, tuple(attacks), attack_settings, device, threads), resources=resources)
            for u in attack_units(store, attacks, attack_settings)]


def traces_on(cfg, out: Path, settings: ExecutorSettings, device: str, shard=(0, 1), data_dir: Path | None = None,
              echo: Echo | None = None, progress: bool = False, progress_echo: Echo | None = None):
    """Train every configuration of ``cfg`` not yet stored, on the executor of ``settings``; write traces.csv.

    Local runs show their progress as a bar (``progress``) or as lines through ``progress_echo``;
    ``echo`` gets the executor's messages and the failed units.
    """
    from etio.core.progress import StageProgress
    from etio.traces.stage import finish_traces, trace_units, training_store

    echo_line = echo or (lambda line: None)
    started = time.time()
    # the driver holds the store's lock while its workers write (they are its own units)
    with training_store(cfg, out, device, shard, data_dir, echo, f"etio traces, {settings.kind} executor") as store:
        units = schedule_traces(cfg, out, settings, device, shard, data_dir)
        total = sum(len(u.keys) for u in trace_units(cfg, None, shard, pending_only=False))
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
        units = schedule_attacks(cfg, store, attacks, attack_settings, settings, device, threads)
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
        record["resources_per_unit"] = largest(units).__dict__
    if settings.kind == "ray":
        record["ray_address"] = settings.ray_address or "local (started for the run)"
    if settings.kind == "slurm":
        record["slurm"] = {"cluster": settings.slurm_cluster, "partition": settings.slurm_partition,
                           "time_min": settings.slurm_time_min, "array": settings.slurm_array}
    return record

