"""The one exception type that crosses stage boundaries.

Every check on user input (a trace file, a config, an attack name, a graph) raises
:class:`EtioInputError` with a message naming the offending column, value or file. The CLI
turns it into one line on stderr and exit code 2; nothing else is caught there, so genuine
bugs keep their traceback.
"""


class EtioError(Exception):
    """Base class for errors etio reports to the user as one clear line."""


class EtioInputError(EtioError):
    """Bad input: a malformed trace file, an unknown attack, a cyclic graph, ..."""


class RBackendError(EtioError):
    """R failed (or is missing); the message carries R's own error text."""


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
