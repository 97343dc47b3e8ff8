"""The ``[analysis]`` table of a study config: how graphs are learned and effects queried.

    [analysis]
    method = "boot"      # boot: boot.strength, as the paper's text; cv: the authors' bn.cv path
    replicates = 200     # bootstrap replicates R of boot.strength
    runs = 20            # hold-out runs for predictive power (and the cv networks)
    seed = 1             # R's set.seed before each graph (the authors used set.seed(1))
    refuters = false     # dowhy refuters beside each ATE
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from etio.core.errors import EtioInputError, check_choice
from etio.core.settings import Choice, Flag, Integer, Invalid, parse_table, setting

#: The structure-learning methods: the paper's text (boot) and the authors' code (cv).
METHODS = ("boot", "cv")
#: R's largest integer: replicates, runs and seeds travel to R as integers.
R_INTEGER_MAX = 2**31 - 1


def check_r_integer(what: str, value: int, minimum: int) -> int:
    """``value`` if it is an integer in [minimum, R's largest integer], else one line naming ``what``."""
    try:
        return Integer(minimum, R_INTEGER_MAX)(value)
    except Invalid:
        raise EtioInputError(f"{what} must be an integer in [{minimum}, {R_INTEGER_MAX}] (R's integers), "
                             f"got {value!r}") from None


def check_method(method: str, where: str = "") -> str:
    """The one check of a structure-learning method (config, CLI, learn stage, report)."""
    return check_choice("method", method, METHODS, where=where)


@dataclass(frozen=True)
class Analysis:
    """Settings of graph learning and queries (``etio reproduce``)."""

    method: str = setting("boot", Choice(METHODS, "method"))
    #: Bootstrap replicates of boot.strength (bnlearn's ``R``).
    replicates: int = setting(200, Integer(1, R_INTEGER_MAX))
    runs: int = setting(20, Integer(1, R_INTEGER_MAX))
    seed: int = setting(1, Integer(0, R_INTEGER_MAX))
    refuters: bool = setting(False, Flag())


def parse_analysis(raw: Mapping[str, Any] | None, source: str = "config") -> Analysis:
    """The ``[analysis]`` table (absent table: the defaults above)."""
    return parse_table(Analysis, raw, name="analysis", source=source)
