"""The exceptions that cross stage boundaries, and what an interrupted run keeps.

Every check on user input (a trace file, a config, an attack name, a graph) raises
:class:`EtioInputError` with a message naming the offending column, value or file; a
filesystem fault (full disk, read-only path, unreadable file) raises :class:`EtioFileError`
naming the path and the cause. The CLI (:mod:`etio.commands.app`) prints every failure as one
line on stderr with a non-zero exit; the traceback only with ``etio --debug``.
"""

from __future__ import annotations

import os
from typing import Callable


class EtioError(Exception):
    """Base class for errors etio reports to the user as one clear line."""


class EtioInputError(EtioError):
    """Bad input: a malformed trace file, an unknown attack, a cyclic graph, ..."""


class EtioFileError(EtioError):
    """A file could not be read or written: the message names the path and the cause."""


class RBackendError(EtioError):
    """R failed (or is missing); the message carries R's own error text."""


class Interrupted(BaseException):
    """Ctrl-C, raised by the CLI's SIGINT handler (a BaseException, so that no ``except
    Exception`` swallows it and every staging directory is cleaned up on the way out)."""


def file_error(path, exc: BaseException, doing: str = "write") -> EtioFileError:
    """One line for a filesystem fault: ``cannot write PATH: No space left on device``."""
    cause = getattr(exc, "strerror", None) or (os.strerror(exc.errno) if getattr(exc, "errno", None) else str(exc))
    return EtioFileError(f"cannot {doing} {path}: {cause}")


def read_error(path, exc: OSError, what: str) -> EtioError:
    """One line for an input that could not be read: absent or a directory is bad input
    (:class:`EtioInputError`, exit 2); a fault of the filesystem (no permission, an I/O error)
    is :class:`EtioFileError` (exit 1), as for writing."""
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        cause = "does not exist" if isinstance(exc, FileNotFoundError) else "is a directory" \
            if isinstance(exc, IsADirectoryError) else "is not a file"
        return EtioInputError(f"{what} {path} {cause}")
    return file_error(path, exc, "read")


#: What a running command has kept so far, for the message printed on Ctrl-C.
_interrupt_note: Callable[[], str] | None = None


def on_interrupt(note: Callable[[], str] | None) -> None:
    """Register ``note()``: the line saying what an interrupted run kept and how to resume."""
    global _interrupt_note
    _interrupt_note = note


def interrupt_note() -> str:
    if _interrupt_note is not None:
        try:
            return _interrupt_note()
        except Exception:  # the note is best effort; never mask the interruption itself
            pass
    return "nothing was changed (outputs appear only once complete); rerun the command to start again"


def check_choice(what: str, value, known, plural: str | None = None, where: str = ""):
    """``value`` if it is one of ``known``, else the one error for a wrong choice:
    ``unknown <what> 'value'; known <plural>: a, b, c`` (prefixed by ``where: `` when given).

    Every command, config table and stage reports a wrong name (attack, loss, method, table,
    dataset, ...) through this helper, so the message reads the same everywhere.
    """
    known = list(known)
    if value in known:
        return value
    if plural is None:
        plural = what[:-1] + "ies" if what.endswith("y") and what[-2:-1] not in "aeiou" else what + "s"
    prefix = f"{where}: " if where else ""
    raise EtioInputError(f"{prefix}unknown {what} {value!r}; known {plural}: {', '.join(map(str, known))}")
