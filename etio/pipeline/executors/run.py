"""Run a list of units on the executor the settings name; report the ones that failed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from etio.pipeline.executors.ledger import entry_path, read_entry, record
from etio.pipeline.executors.settings import ExecutorSettings
from etio.pipeline.executors.units import Echo, Outcome, Unit, UnitsFailed


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
        if (read_entry(entry_path(unit)) or {}).get("state") != "running":
            record(unit, settings.kind, "queued", error=None)
    if settings.kind == "local":
        from etio.pipeline.executors.local import run_local

        return run_local(units, settings, progress, on_done)
    if settings.kind == "ray":
        from etio.pipeline.executors.ray import run_ray

        return run_ray(units, settings, echo, on_done)
    from etio.pipeline.executors.slurm import run_slurm

    return run_slurm(units, settings, echo, on_done)


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

