"""The ``[analysis]`` table of a study config: how graphs are learned and effects queried.

    [analysis]
    method = "boot"      # boot: boot.strength, as the paper's text; cv: the authors' bn.cv path
    replicates = 200     # bootstrap replicates R of boot.strength
    runs = 20            # hold-out runs for predictive power (and the cv networks)
    seed = 1             # R's set.seed before each graph (the authors used set.seed(1))
    refuters = false     # dowhy refuters beside each ATE
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from etio.core.errors import EtioInputError, check_choice

#: The structure-learning methods: the paper's text (boot) and the authors' code (cv).
METHODS = ("boot", "cv")
#: R's largest integer: replicates, runs and seeds travel to R as integers.
R_INTEGER_MAX = 2**31 - 1


def check_r_integer(what: str, value: int, minimum: int) -> int:
    """``value`` if it is an integer in [minimum, R's largest integer], else one line naming ``what``."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= R_INTEGER_MAX:
        raise EtioInputError(f"{what} must be an integer in [{minimum}, {R_INTEGER_MAX}] (R's integers), "
                             f"got {value!r}")
    return value


def check_method(method: str, where: str = "") -> str:
    """The one check of a structure-learning method (config, CLI, learn stage, report)."""
    return check_choice("method", method, METHODS, where=where)


@dataclass(frozen=True)
class Analysis:
    """Settings of graph learning and queries (``etio reproduce``)."""

    method: str = "boot"
    replicates: int = 200
    runs: int = 20
    seed: int = 1
    refuters: bool = False


def parse_analysis(raw: Mapping[str, Any] | None, source: str = "config") -> Analysis:
    """Validate the ``[analysis]`` table (absent table: the defaults above)."""
    raw = dict(raw or {})

    def fail(msg: str):
        raise EtioInputError(f"{source}: {msg}")

    allowed = {f.name for f in fields(Analysis)}
    for key in raw:
        if key not in allowed:
            fail(f"unknown key {key!r} in [analysis]; allowed keys: {', '.join(sorted(allowed))}")

    def as_int(key: str, minimum: int) -> int:
        v = raw.get(key, getattr(Analysis, key))
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            fail(f"analysis.{key} must be an integer ≥ {minimum}, got {v!r}")
        if v > R_INTEGER_MAX:
            fail(f"analysis.{key} must be at most {R_INTEGER_MAX} (R's largest integer), got {v!r}")
        return v

    method = check_method(raw.get("method", Analysis.method), where=f"{source}: analysis.method")
    refuters = raw.get("refuters", Analysis.refuters)
    if not isinstance(refuters, bool):
        fail(f"analysis.refuters must be true or false, got {refuters!r}")
    return Analysis(method=method, replicates=as_int("replicates", 1), runs=as_int("runs", 1),
                    seed=as_int("seed", 0), refuters=refuters)
