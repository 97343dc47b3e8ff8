"""The one progress display of every stage.

On a terminal: a rich progress bar with the stage's name, items done of the total, elapsed time
and ETA. Elsewhere (a log file, CI, a pipe): plain lines, one per tenth of the stage's work and
one at its end (``traces: 3/8 configurations, 4 s elapsed, ETA 7 s``). A resumed stage starts
with "N of M already done" and its ETA counts only the work left.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

Echo = Callable[[str], None]


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


class StageProgress:
    """``with StageProgress("attacks", total, done=already, unit="configurations") as p: p.advance()``.

    ``echo`` (a print-like callable) forces plain lines through it; ``stream`` is where the bar
    or lines go otherwise (stderr); ``enabled=False`` shows nothing.
    """

    def __init__(self, label: str, total: int, done: int = 0, unit: str = "items", *, echo: Echo | None = None,
                 stream: TextIO | None = None, enabled: bool = True, force_terminal: bool | None = None):
        self.label, self.total, self.done, self.unit = label, int(total), int(done), unit
        self.first = self.done
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.echo = echo
        terminal = force_terminal if force_terminal is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.rich = enabled and echo is None and terminal
        self._bar = None
        self.note = ""
        self._start = time.monotonic()
        self._last_line = -1

    # -- plain lines --------------------------------------------------------------------
    def _line(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)
        else:
            print(text, file=self.stream, flush=True)

    def _status(self) -> str:
        elapsed = time.monotonic() - self._start
        new = self.done - self.first
        left = self.total - self.done
        eta = f", ETA {_seconds(elapsed / new * left)}" if new and left else ""
        last = f" (last: {self.note})" if self.note else ""
        return f"   {self.label}: {self.done}/{self.total} {self.unit}, {_seconds(elapsed)} elapsed{eta}{last}"

    # -- context ------------------------------------------------------------------------
    def __enter__(self) -> "StageProgress":
        self._start = time.monotonic()
        if not self.enabled:
            return self
        if self.first:
            self._line(f"   {self.label}: {self.first} of {self.total} {self.unit} already done")
        if self.rich:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TextColumn(self.unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
        return self

    def advance(self, n: int = 1, note: str = "") -> None:
        """``n`` more items done; ``note`` names the last one (shown with the next line)."""
        self.done += n
        self.note = note or self.note
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=f"{self.label} ({note})" if note else self.label)
            return
        todo = max(1, self.total - self.first)
        tenth = min(10, (self.done - self.first) * 10 // todo)
        if tenth > self._last_line or self.done >= self.total:
            self._last_line = tenth
            if self.done < self.total:
                self._line(self._status())

    def __exit__(self, *exc) -> bool:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif self.enabled and exc[0] is None:
            self._line(self._status())
        return False


def counted(label: str, unit: str = "items", echo: Echo | None = None) -> Callable[[int, int, str], None]:
    """A ``progress(done, total, name)`` callback (the learn stage's) shown as :class:`StageProgress`."""
    state: dict[str, StageProgress] = {}

    def progress(done: int, total: int, name: str) -> None:
        if "bar" not in state:
            state["bar"] = StageProgress(label, total, done=done - 1, unit=unit, echo=echo).__enter__()
        bar = state["bar"]
        bar.advance(done - bar.done, note=name)
        if done >= total:
            bar.__exit__(None, None, None)
            del state["bar"]

    return progress
