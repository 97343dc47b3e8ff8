"""The ``etio`` command line: one command per pipeline step, paper table and figure.

Each area of the pipeline registers its commands from ``etio.commands.<area>``; heavy
imports (torch, rpy2, dowhy) happen inside the commands, so ``etio --help`` stays fast.
Errors in user input arrive as :class:`etio.core.errors.EtioError` and are printed as one line
with exit code 2.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from etio.core.errors import EtioError

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


def _version(value: bool) -> None:
    if value:
        from etio import __version__

        typer.echo(f"etio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print etio's version and exit.")) -> None:
    """Membership inference attacks and generalization: the causal analysis of Baluta et al. (CCS 2022)."""

# Pipeline order (paper Fig. 4): traces -> attacks -> learn graph -> query -> tables -> reproduce.
_AREAS = ("traces", "attack", "learn", "query", "tables", "reproduce")
for _area in _AREAS:
    importlib.import_module(f"etio.commands.{_area}").register(app, bench_app)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main() -> None:
    warnings.formatwarning = _one_line_warning  # users read warnings as messages, not as code locations
    # Standalone mode lets click report usage errors itself; our own errors propagate out of
    # it and are printed here as one line.
    try:
        app()
    except EtioError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
