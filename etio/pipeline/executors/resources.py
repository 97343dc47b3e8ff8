"""What one unit asks of the machine it runs on: CPUs, GPUs and memory."""

from __future__ import annotations

import math
from dataclasses import dataclass

from etio.pipeline.executors.settings import ExecutorSettings


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 1.0


def unit_resources(cfg, stage: str, job, settings: ExecutorSettings, device: str) -> Resources:
    """A unit's request: the settings' values, else a default from the config.

    The default: one CPU; one GPU on ``cuda``; memory for the unit's models (parameters,
    gradients, momentum and a snapshot copy, 4 bytes each) and the dataset, plus 1 GB for
    the interpreter, torch and R.
    """
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


def largest(units) -> Resources:
    """The largest request of ``units`` in each resource (one Slurm array asks for it per job)."""
    return Resources(max(u.resources.cpus for u in units), max(u.resources.gpus for u in units),
                     max(u.resources.memory_gb for u in units))
