"""Options several commands share, and the spellings earlier releases used.

One name per thing on every command: ``--traces`` for a trace table, ``--weight-decay`` for the
weight decay, ``--store`` for a trace store a command reads, ``--out`` for what it writes. The
old spellings (``learn``'s positional trace table, ``--wd``, ``--out`` for an input store) are
still accepted for one release, hidden from the help; :func:`given` merges each with its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

#: The weight decay a command analyses when none is given: the paper's normal one.
DEFAULT_WEIGHT_DECAY = 0.0005

WEIGHT_DECAY = typer.Option(None, "--weight-decay", show_default=False,
                            help=f"Weight decay whose rows are analysed (default {DEFAULT_WEIGHT_DECAY:g}).")
WD_ALIAS = typer.Option(None, "--wd", hidden=True, help="Old spelling of --weight-decay.")
STORE_ALIAS = typer.Option(None, "--out", hidden=True, help="Old spelling of --store.")


def store_option(help: str) -> Any:
    return typer.Option(None, "--store", show_default=False, help=help)


def given(option: str, value: Any, alias: str, alias_value: Any, default: Any = None, *, required: bool = False):
    """The value of ``option``, else of its old spelling ``alias``, else ``default``; both given
    with different values, or neither when ``required``, is one line naming the option."""
    from etio.core.errors import EtioInputError

    if value is not None and alias_value is not None and value != alias_value:
        raise EtioInputError(f"{option} {value} and {alias} {alias_value} disagree; give {option} only "
                             f"({alias} is its old spelling)")
    chosen = value if value is not None else alias_value
    if chosen is None:
        if required:
            raise EtioInputError(f"missing option {option}")
        return default
    return chosen


def weight_decay(value: Optional[float], alias: Optional[float]) -> float:
    return given("--weight-decay", value, "--wd", alias, DEFAULT_WEIGHT_DECAY)


def store(value: Optional[Path], alias: Optional[Path]) -> Path:
    return given("--store", value, "--out", alias, required=True)
