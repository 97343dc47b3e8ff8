"""The Slurm executor: the units as a Slurm job array through submitit (partition, time, GPUs per
job, array parallelism), failed units resubmitted ``retries`` times. ``slurm_cluster = "local"``
runs the same array with submitit's local executor (processes on this machine)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from etio.core.errors import EtioInputError
from etio.core.provenance import write_json
from etio.pipeline.executors.ledger import execute_unit, ledger_dir, read_entry, record
from etio.pipeline.executors.resources import Resources, largest
from etio.pipeline.executors.settings import ExecutorSettings
from etio.pipeline.executors.units import Echo, Outcome, Unit


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



def _submitit_executor(settings: ExecutorSettings, units: list[Unit]):
    try:
        import submitit
    except ImportError:
        raise EtioInputError("--executor slurm needs submitit: pip install 'etio[slurm]'") from None
    folder = Path(settings.slurm_folder) if settings.slurm_folder else ledger_dir(units[0].store, "submitit")
    params = slurm_parameters(settings, largest(units), f"etio-{units[0].stage}")
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


def run_slurm(units: list[Unit], settings: ExecutorSettings, echo: Echo, on_done) -> Outcome:
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
                    record(unit, "slurm", "failed", error=message, job=str(job.job_id))
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
