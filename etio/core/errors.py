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
