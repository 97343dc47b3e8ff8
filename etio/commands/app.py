"""The ``etio`` command line: one command per pipeline step, paper table and figure.

Each area of the pipeline registers its commands from ``etio.commands.<area>``; heavy
imports (torch, rpy2, dowhy) happen inside the commands, so ``etio --help`` stays fast.

There is one error path: every failure - bad input (:class:`EtioError`, exit 2), a usage
error (exit 2), a filesystem fault (exit 1), an unexpected error (exit 1), Ctrl-C (exit 130,
with what was kept and how to resume) - is one line on stderr. ``etio --debug CMD`` shows
the traceback instead.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import warnings

import typer
from typer import _click as click  # typer's own copy of click: its exceptions are the ones raised
from typer.exceptions import Abort

from etio.core import interrupts
from etio.core.errors import EtioError, EtioFileError, Interrupted, interrupt_note

#: Every command takes -h as well as --help.
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="etio",
    help="Membership inference attacks and generalization: the causal analysis of Baluta et al. (CCS 2022).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: "[analysis]" is a config table, not rich markup to be swallowed.
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
bench_app = typer.Typer(help="Benchmarks that print measured speed figures.", no_args_is_help=True,
                        rich_markup_mode=None, context_settings=CONTEXT)
app.add_typer(bench_app, name="bench")

#: Set by ``--debug``: failures show their traceback.
DEBUG = False


def _version(value: bool) -> None:
    if value:
        from etio import __version__

        typer.echo(f"etio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of a failure."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print etio's version and exit.")) -> None:
    """Membership inference attacks and generalization: the causal analysis of Baluta et al. (CCS 2022)."""
    global DEBUG
    DEBUG = debug


# Pipeline order (paper Fig. 4): traces -> attacks -> learn graph -> query -> tables -> reproduce;
# executor reports on units run elsewhere; validate checks learn -> query against a known
# structural model.
_AREAS = ("traces", "attack", "learn", "query", "tables", "reproduce", "executor", "validate", "plan")
for _area in _AREAS:
    importlib.import_module(f"etio.commands.{_area}").register(app, bench_app)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _error(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(code)


def _os_message(exc: OSError) -> str:
    path = exc.filename if exc.filename is not None else ""
    cause = exc.strerror or str(exc)
    return f"{path}: {cause}" if path else cause


def main() -> None:
    warnings.formatwarning = _one_line_warning  # users read warnings as messages, not as code locations
    previous = interrupts.install()     # whatever the launcher left SIGINT as
    try:
        _run()
    except SystemExit as exc:
        if exc.code == 130 and _is_the_program():
            # Interrupted: everything was cleaned up on the way here and the line is printed; the
            # interpreter's own shutdown (torch, R, thread pools) would add seconds to Ctrl-C.
            interrupts.release_process_resources()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise
    finally:
        interrupts.uninstall(previous)      # main() may run inside another program (tests)


def _is_the_program() -> bool:
    """True when main() is the process's entry point (the ``etio`` script, ``python -m etio``)."""
    return getattr(sys.modules.get("__main__"), "main", None) is main


def _run() -> None:
    debug = "--debug" in sys.argv[1:2]  # the option of the root command; known before it is parsed
    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(2)
    except click.exceptions.ClickException as exc:     # usage errors: one line, no usage box
        _error(exc.format_message().replace("\n", " "), exc.exit_code)
    except Abort:
        _error("aborted", 1)
    except Interrupted:
        typer.secho(f"interrupted: {interrupt_note()}", fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
    except EtioError as exc:
        if debug:
            raise
        _error(str(exc), 1 if isinstance(exc, EtioFileError) else 2)   # a filesystem fault is not bad input
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            sys.exit(1)
        if debug:
            raise
        _error(_os_message(exc), 1)
    except MemoryError:
        if debug:
            raise
        _error("out of memory", 1)
    except Exception as exc:  # noqa: BLE001 - the one place where any failure becomes one line
        if debug:
            raise
        _error(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
               f"(run with --debug for the traceback)", 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
