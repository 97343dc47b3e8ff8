"""The ``[executor]`` table and the command-line options: where and how the units run."""

from __future__ import annotations

from dataclasses import dataclass

from etio.core.settings import Choice, Integer, Items, Maybe, Number, Text, parse_table, setting, with_values

EXECUTORS = ("local", "ray", "slurm")
SLURM_CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = setting("local", Choice(EXECUTORS, "executor"))
    #: local: worker processes for the attack units (None: one per core on the CPU from
    #: POOL_MIN_UNITS units up, else this process); 1 runs them in this process.
    processes: int | None = setting(None, Maybe(Integer(1)))
    #: Further attempts of a failed unit (ray: max_retries; slurm: resubmissions).
    retries: int = setting(2, Integer(0))
    #: Per unit; None: derived from the config and the device (:func:`unit_resources`).
    cpus: float | None = setting(None, Maybe(Number(0.0)))
    gpus: float | None = setting(None, Maybe(Number(0.0)))
    memory_gb: float | None = setting(None, Maybe(Number(0.0)))
    ray_address: str | None = setting(None, Maybe(Text()))
    #: CPUs of the local Ray started when no address is given (None: all of this machine's).
    ray_cpus: int | None = setting(None, Maybe(Integer(0)))
    slurm_partition: str | None = setting(None, Maybe(Text()))
    slurm_time_min: int = setting(60, Integer(1))
    #: GPUs per array job (default: the unit's GPU request rounded up).
    slurm_gpus: int | None = setting(None, Maybe(Integer(0)))
    #: How many array jobs run at once.
    slurm_array: int = setting(16, Integer(1))
    slurm_cluster: str = setting("slurm", Choice(SLURM_CLUSTERS))
    slurm_folder: str | None = setting(None, Maybe(Text()))
    slurm_setup: tuple[str, ...] = setting((), Items(Text(what="a shell line"), nonempty=False))

    def with_overrides(self, **overrides) -> "ExecutorSettings":
        """These settings with the command line's values (``None``: not given), each checked."""
        return with_values(self, {k: v for k, v in overrides.items() if v is not None}, name="executor")


def parse_executor_settings(table: dict | None, source: str = "config") -> ExecutorSettings:
    """The ``[executor]`` table; an unknown key or a bad value is one clear error."""
    return parse_table(ExecutorSettings, table, name="executor", source=source)
