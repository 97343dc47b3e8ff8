"""The embedded R session that learns the graphs (``r/etio.R``), reached through rpy2.

R is started once per process, in rpy2's ABI mode, and ``r/etio.R`` is sourced into its
global environment. :func:`call` is the only way Python calls R: arguments are converted
with a local pandas converter (never a global one), R warnings come back as Python
warnings, and R errors become :class:`~etio.core.errors.EtioInputError` when ``r/etio.R``
rejected the input (its messages start with ``etio input error:``) or
:class:`~etio.core.errors.RBackendError` otherwise. R's console output is swallowed: results
travel as values, not as printed text.

The ``r/`` directory is found next to the package (``<repo>/r``); ``ETIO_R_DIR`` points
elsewhere.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from etio.core import interrupts
from etio.core.errors import EtioFileError, EtioInputError, RBackendError

INPUT_ERROR_PREFIX = "etio input error:"
_SETUP_HINT = "run `make setup`"

_lock = threading.Lock()
_session: "_RSession | None" = None
_session_error: RBackendError | None = None


class RWarning(UserWarning):
    """A warning raised by R code (its message is R's)."""


class RFileError(EtioFileError):
    """R could not write a file (full disk, read-only or forbidden path); the message is the cause.
    R's connection errors do not name the file: the caller, which knows where R writes, does."""


#: The operating system's words for a write that failed, as R's connection errors carry them.
_FILESYSTEM_CAUSES = ("No space left on device", "File too large", "Disk quota exceeded", "Read-only file system",
                      "Permission denied")


def _filesystem_cause(message: str) -> str | None:
    for cause in _FILESYSTEM_CAUSES:
        if cause in message:
            return cause
    if "cannot open the connection" in message or "Error writing to connection" in message:
        return "a file could not be written"
    return None


from etio.core.paths import r_dir  # noqa: E402  (re-exported: the directory of etio.R and compat/)


# The R side of :func:`call`: run one function, collect its warnings instead of printing
# them, and turn an error into a value so that its message survives the trip to Python.
_CALL_WRAPPER = r"""
function(.etio_fname, ...) {
  warned <- character()
  value <- tryCatch(
    withCallingHandlers(
      do.call(.etio_fname, list(...), envir = globalenv()),
      warning = function(w) {
        warned <<- c(warned, conditionMessage(w))
        invokeRestart("muffleWarning")
      },
      message = function(m) invokeRestart("muffleMessage")
    ),
    error = function(e) structure(list(message = conditionMessage(e)), class = "etio_bridge_error")
  )
  list(value = value, warnings = warned)
}
"""


# An R closure around a Python callback (:func:`callback`): a Python exception inside it
# stops the R code that called it, and call() re-raises the exception itself.
_CALLBACK_WRAPPER = r"""
function(python_function, failed) {
  function(...) {
    if (identical(python_function(...), failed)) stop("a Python callback raised an exception", call. = FALSE)
    invisible(NULL)
  }
}
"""
_CALLBACK_FAILED = "etio python callback failed"


class _RSession:
    """The started embedded R with ``etio.R`` sourced."""

    def __init__(self) -> None:
        if shutil.which("R") is None and shutil.which("Rscript") is None:
            raise RBackendError(f"R is not available: neither R nor Rscript is on PATH; {_SETUP_HINT}")
        # ABI mode needs no compiler and no build-time match with R's headers.
        os.environ.setdefault("RPY2_CFFI_MODE", "ABI")
        library_path = os.environ.get("LD_LIBRARY_PATH")
        try:
            from rpy2.rinterface_lib import callbacks

            # R's console chatter (sourcing, printing, error echoes) goes nowhere; values and
            # conditions are what matter, and they are caught by _CALL_WRAPPER.
            callbacks.consolewrite_print = lambda text: None
            callbacks.consolewrite_warnerror = lambda text: None
            callbacks.showmessage = lambda text: None
            import rpy2.robjects as ro
            from rpy2.robjects import pandas2ri
            from rpy2.robjects.conversion import localconverter
        except Exception as exc:  # ImportError, or rpy2 failing to start R
            raise RBackendError(f"R is not available: rpy2 could not start R ({exc}); {_SETUP_HINT}") from None
        finally:
            # Starting R prepends R's library directories (system ones among them) to
            # LD_LIBRARY_PATH. This process has loaded its libraries already; a Python started
            # from it (a learning worker, a command) would load the system's libpython instead
            # of its own with that path, so children get the path this process started with.
            _restore("LD_LIBRARY_PATH", library_path)
            interrupts.reinstall()      # rpy2 took SIGINT over when it started R
        # R removes its temporary directory when it ends; a Ctrl-C ends this process without ending R
        # (registered at once: sourcing etio.R takes long enough to be interrupted)
        interrupts.at_fast_exit(functools.partial(shutil.rmtree, os.path.abspath(str(ro.r("tempdir()")[0])),
                                                  ignore_errors=True))
        self.ro = ro
        self.converter = ro.default_converter + pandas2ri.converter
        self.localconverter = localconverter
        directory = r_dir()
        script = directory / "etio.R"
        if not script.is_file():
            raise RBackendError(f"R is not available: {script} not found (set ETIO_R_DIR); {_SETUP_HINT}")
        try:
            ro.r["source"](str(script), chdir=True)
        except Exception as exc:
            raise RBackendError(f"sourcing {script} failed: {_r_message(exc)}") from None
        self.wrapper = ro.r(_CALL_WRAPPER)
        self.callback_wrapper = ro.r(_CALLBACK_WRAPPER)
        self.callback_error: BaseException | None = None
        # Load the backend (bnlearn, or the compatible implementation) once, up front, so every
        # etio.R function and the bnlearn verbs are callable whatever is called first.
        if "etio_backend" in ro.globalenv:
            self.call("etio_backend", (), {})

    def call(self, fname, args: tuple, kwargs: dict) -> Any:
        ro = self.ro
        with self.localconverter(self.converter):
            r_args = [_to_r(a) for a in args]
            r_kwargs = {k: _to_r(v) for k, v in kwargs.items()}
        # Converted arguments are passed as R objects, so the wrapper call needs no converter.
        self.callback_error = None
        with interrupts.deferred(_stop_r):     # Ctrl-C makes R unwind; Interrupted is raised here
            outcome = self.wrapper(fname, *r_args, **r_kwargs)
        failed, self.callback_error = self.callback_error, None
        if failed is not None:
            raise failed
        value, warned = outcome[0], outcome[1]
        for message in (list(warned) if warned is not ro.NULL else []):
            warnings.warn(str(message), RWarning, stacklevel=4)
        if "etio_bridge_error" in _classes(value):
            message = str(value[0][0])
            if message.startswith(INPUT_ERROR_PREFIX):
                raise EtioInputError(message[len(INPUT_ERROR_PREFIX):].strip())
            cause = _filesystem_cause(message)
            if cause is not None:
                raise RFileError(cause)
            raise RBackendError(f"R error in {fname if isinstance(fname, str) else 'an R function'}(): {message}")
        return value


def _stop_r() -> None:
    """Ask the embedded R to stop: it unwinds at its next interrupt check (as on Ctrl-C in R)."""
    from rpy2.rinterface_lib import openrlib

    openrlib.rlib.R_interrupts_pending = 1


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _classes(obj) -> list[str]:
    try:
        return list(obj.rclass)
    except Exception:
        return []


def _r_message(exc: BaseException) -> str:
    return str(exc).strip().removeprefix("Error in").strip()


def session() -> _RSession:
    """The process's R session, started on first use (a failed start is remembered)."""
    global _session, _session_error
    with _lock:
        if _session is None:
            if _session_error is not None:
                raise _session_error
            try:
                _session = _RSession()
            except RBackendError as exc:
                _session_error = exc
                raise
        return _session


def available() -> bool:
    """True when R starts and ``etio.R`` sources."""
    try:
        session()
    except RBackendError:
        return False
    return True


def call_raw(fname, *args, **kwargs):
    """Call the R function ``fname`` (a name, or an R function object) and return its value
    as an rpy2 object (unconverted)."""
    return session().call(fname, args, kwargs)


def call(fname, *args, **kwargs) -> Any:
    """Call the R function ``fname`` (defined by ``etio.R``) and convert its value to Python.

    Arguments may be pandas DataFrames, numpy arrays, scalars, lists, dicts (named R lists),
    None (NULL), or R objects returned by an earlier call. See :func:`to_python` for results.
    """
    return to_python(call_raw(fname, *args, **kwargs))


def function(code: str):
    """An R function object from its source text (for :func:`call`)."""
    return session().ro.r(code)


def callback(fn: Callable[..., Any]):
    """An R function that calls the Python function ``fn`` (for :func:`call`).

    ``fn`` receives its arguments converted by :func:`to_python`; its return value is dropped.
    An exception raised by ``fn`` stops the R code that called it, and the :func:`call` that
    ran that code raises the exception itself.
    """
    import rpy2.rinterface as ri

    s = session()

    def run(*args):
        try:
            # as robjects, the level every other value reaches Python at (held until exit, rinterface-level
            # objects make rpy2 print errors as the interpreter shuts down)
            fn(*[to_python(s.ro.default_converter.rpy2py(a)) for a in args])
        except BaseException as exc:  # KeyboardInterrupt too: R unwinds, then call() re-raises
            s.callback_error = exc
            return ri.StrSexpVector([_CALLBACK_FAILED])
        return ri.BoolSexpVector([True])

    python_function = ri.rternalize(run)
    wrapped = s.callback_wrapper(python_function, _CALLBACK_FAILED)
    # R holds only a handle on the Python function: it must live as long as the R closure.
    wrapped._etio_python_function = (python_function, run)
    return wrapped


def backend() -> str:
    """The structure-learning backend: bnlearn with its version, or the compatible implementation."""
    return str(call("etio_backend"))


def to_r(obj) -> Any:
    """Convert a Python value to an R object (exposed for callers building R arguments)."""
    s = session()
    with s.localconverter(s.converter):
        return _to_r(obj)


def _to_r(obj):
    """Python -> R under the active local converter."""
    from rpy2.rinterface import Sexp
    import rpy2.robjects as ro

    if obj is None:
        return ro.NULL
    if isinstance(obj, Sexp):
        return obj
    if isinstance(obj, dict):
        return ro.vectors.ListVector({k: _to_r(v) for k, v in obj.items()}) if obj else ro.r("list()")
    if isinstance(obj, pd.DataFrame):
        return ro.conversion.get_conversion().py2rpy(obj)
    if isinstance(obj, (list, tuple, np.ndarray, pd.Series)):
        values = list(obj)
        if values and all(isinstance(v, str) for v in values):
            return ro.StrVector(values)
        if values and all(isinstance(v, (bool, np.bool_)) for v in values):
            return ro.BoolVector(values)
        if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            return ro.IntVector([int(v) for v in values])
        if not values:
            return ro.NULL
        return ro.FloatVector([float(v) for v in values])
    if isinstance(obj, (bool, np.bool_)):
        return ro.BoolVector([bool(obj)])
    if isinstance(obj, (int, np.integer)):
        return ro.IntVector([int(obj)])
    if isinstance(obj, (float, np.floating)):
        return ro.FloatVector([float(obj)])
    if isinstance(obj, (str, os.PathLike)):
        return ro.StrVector([os.fspath(obj)])
    return ro.conversion.get_conversion().py2rpy(obj)


def to_python(obj) -> Any:
    """R -> Python: data.frame -> DataFrame, plain (named) list -> dict (or list),
    atomic vector -> scalar (length 1, unnamed) / list, NULL -> None, NA -> None/NaN.
    Other classed objects (a ``bn`` network, say) stay R objects that :func:`call` accepts back.
    """
    import rpy2.rinterface as ri
    import rpy2.robjects as ro

    s = session()
    if obj is ro.NULL or isinstance(obj, ri.NULLType):
        return None
    classes = _classes(obj)
    if "data.frame" in classes:
        with s.localconverter(s.converter):
            df = ro.conversion.get_conversion().rpy2py(obj)
        if isinstance(df, pd.DataFrame):
            for column in df.columns[df.dtypes == object]:  # R's NA_character_ -> None
                df[column] = [None if v is ri.NA_Character else v for v in df[column]]
            return df.reset_index(drop=True)
        return df
    if isinstance(obj, ri.ListSexpVector):
        if classes and classes != ["list"]:
            return obj
        names = list(obj.names) if obj.names is not ro.NULL and obj.names is not ri.NULL else None
        items = [to_python(obj[i]) for i in range(len(obj))]
        if names and all(n for n in names):
            return dict(zip(map(str, names), items))
        return items
    if isinstance(obj, (ri.FloatSexpVector, ri.IntSexpVector, ri.BoolSexpVector, ri.StrSexpVector)):
        if "factor" in classes:
            levels = list(obj.do_slot("levels"))
            values = [None if v == ri.NA_Integer else levels[v - 1] for v in obj]
        else:
            values = [_scalar(v) for v in obj]
        has_names = obj.names is not ri.NULL and obj.names is not ro.NULL
        if len(values) == 1 and not has_names:
            return values[0]
        if has_names:
            return dict(zip(map(str, obj.names), values))
        return values
    return obj


def _scalar(value):
    import rpy2.rinterface as ri

    if value is ri.NA_Logical or value is ri.NA_Integer or value is ri.NA_Character:
        return None
    if isinstance(value, float):
        return value  # NA_real_ arrives as nan
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    return str(value)
