"""A unit of work as the executors see it, and what a run of units comes to.

A stage (:mod:`etio.traces.stage`, :mod:`etio.attacks.stage`) lists its units and runs one;
:mod:`etio.pipeline.stages` wraps each as a :class:`Unit`: the function that runs it, its
arguments and its resource request. Every unit writes into the trace store through the
store's API and skips what is stored, so any mix of executors, retries and reruns converges
to the same store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from etio.core.errors import EtioError
from etio.pipeline.executors.resources import Resources

Echo = Callable[[str], None]


class UnitsFailed(EtioError):
    """Some units failed after their retries; everything else was kept. Exit status 1."""

    exit_code = 1


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
