"""The Ray executor: one Ray task per unit with the unit's CPU/GPU/memory request, retried
``retries`` times (a killed worker as well as an exception); ``ray_address`` joins a running
cluster, otherwise a local Ray is started for the run and stopped after it."""

from __future__ import annotations

from typing import Any

from etio.core.errors import EtioInputError
from etio.pipeline.executors.ledger import execute_unit, one_line, record
from etio.pipeline.executors.settings import ExecutorSettings
from etio.pipeline.executors.units import Echo, Outcome, Unit


def run_ray(units: list[Unit], settings: ExecutorSettings, echo: Echo, on_done) -> Outcome:
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
                record(unit, "ray", "failed", error=message)
                outcome.failed.append((unit, message))
                continue
            outcome.finished(unit, result, on_done)
        return outcome
    finally:
        if started_here:
            ray.shutdown()


def _ray_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    return one_line(cause) if isinstance(cause, BaseException) else one_line(exc)


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
