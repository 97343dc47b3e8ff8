"""Comparing a table of this run with the paper's: the report's table types, the difference flags
and the cell-by-cell comparison of rows joined on the table's key columns.

The flags mark differences that change a conclusion:

- **sign change**: both values non-zero with opposite signs (an ATE that flips direction);
- **zero vs non-zero**: an ATE of exactly 0 on one side only; the query stage (like the
  authors' code) writes 0 when the graph has no directed path from the treatment to the attack,
  so this is a difference in the learned graph, not in an estimate;
- **verdict change**: a different ✓ / × / ◦ in Table 3;
- **significance change**: a p-value on different sides of 0.05 (zeros, the "no path" code, are skipped);
- **large difference**: same sign, but relative difference above the table kind's tolerance
  (:data:`RELATIVE_TOLERANCE`);
- **missing**: a row or value present on one side only.

A value that is undefined (a p-value without a causal path, the MSE of a graph with an
undirected arc) is :class:`Undefined` with its reason, never a placeholder number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

from etio.causal.estimators import Status
from etio.core.errors import EtioInputError

KINDS = ("ate", "verdict", "predictive")

SIGN = "sign change"
ZERO = "zero vs non-zero"
VERDICT = "verdict change"
SIGNIFICANCE = "significance change"
LARGE = "large difference"
MISSING = "missing"
#: Flag kinds in the order the report lists them.
FLAGS = (SIGN, ZERO, VERDICT, SIGNIFICANCE, LARGE, MISSING)
FLAG_CLASS = {SIGN: "sign", ZERO: "zero", VERDICT: "verdict", SIGNIFICANCE: "signif", LARGE: "large",
              MISSING: "missing"}

#: Relative difference |ours - paper| / max(|ours|, |paper|) above which same-sign values are
#: flagged. ATEs are noisy (a factor of two is the threshold); predictive correlations and MSEs
#: are compared more tightly.
RELATIVE_TOLERANCE = {"ate": 0.5, "verdict": 0.5, "predictive": 0.10}
#: A value this close to 0 counts as zero (the "no causal path" ATE is written as exactly 0).
ZERO_TOLERANCE = 1e-12
SIGNIFICANCE_LEVEL = 0.05

P_VALUE_COLUMN = re.compile(r"p[-_ ]?val", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_VERDICTS = {"✓": "✓", "✔": "✓", "×": "×", "✗": "×", "✘": "×", "◦": "◦", "∘": "◦", "○": "◦"}
_VERDICT_WORDS = {"yes": "✓", "true": "✓", "supported": "✓", "no": "×", "false": "×", "refuted": "×",
                  "x": "×", "o": "◦", "inconclusive": "◦"}


@dataclass(frozen=True)
class Undefined:
    """A value that does not exist, with the reason the report prints in its place."""

    reason: str

    def __str__(self) -> str:
        return ""


#: Values that stand for "undefined" in stage outputs: column suffix -> (value, reason).
SENTINELS = {"MSE": (-1.0, "averaged graph keeps an undirected arc")}
#: Reason for a missing value of a row with status "no causal path".
NO_PATH_REASON = str(Status.NO_PATH)


def defined(column: str, value: Any, row: Mapping[str, Any] | None = None) -> Any:
    """``value``, or :class:`Undefined` with its reason when it is a sentinel or missing."""
    for suffix, (sentinel, reason) in SENTINELS.items():
        if column.endswith(suffix) and parse_number(value) == sentinel:
            return Undefined(reason)
    if isinstance(value, Undefined) or not is_missing(value):
        return value
    status, detail = "", ""
    if row is not None and hasattr(row, "get"):
        # Table 3 keeps one status per loss ("CE status"); the others one per row.
        group = column.split(" ", 1)[0]
        status = str(row.get(f"{group} status", row.get("status", "")))
        flags = row.get("flags", "")
        detail = flags if isinstance(flags, str) and flags.startswith("fixed by") else ""
    if status and status != Status.ESTIMATED and status != "nan":
        return Undefined(f"{status}: {detail}" if detail else status)
    return Undefined("not computed")


@dataclass(frozen=True)
class ReportTable:
    """One paper table: our rows and the paper's, joined on ``key_columns``.

    ``kind`` is ``"ate"`` (Tables 5-8), ``"verdict"`` (Table 3: ATEs and ✓/×/◦ verdicts) or
    ``"predictive"`` (Table 2). Either side may be ``None`` (not computed / not in the paper).
    """

    name: str
    title: str
    ours: pd.DataFrame | None
    paper: pd.DataFrame | None
    key_columns: list[str]
    value_columns: list[str]
    kind: str
    rel_tol: float | None = None
    note: str = ""              # replaces the one-line summary above the table when given
    #: Value columns only our side can have (the sound estimator's, where the paper published the
    #: paper recipe's numbers only): shown, never compared; the paper's cell gives the reason.
    ours_only: tuple[str, ...] = ()
    ours_only_reason: str = "not published"


@dataclass
class ComparedCell:
    column: str
    ours: Any
    paper: Any
    flags: tuple[str, ...] = ()


@dataclass
class ComparedRow:
    key: tuple[str, ...]
    cells: list[ComparedCell]
    side: str = "both"  # "both", "ours" (only in ours) or "paper" (only in the paper)

    @property
    def flags(self) -> list[str]:
        return [f for c in self.cells for f in c.flags]


@dataclass
class TableComparison:
    table: ReportTable
    rows: list[ComparedRow] = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        return Counter(f for row in self.rows for f in row.flags)

    def cell(self, key: Sequence[str], column: str) -> ComparedCell:
        """The compared cell of row ``key`` (key column values as strings) and value ``column``."""
        key = tuple(str(k) for k in key)
        for row in self.rows:
            if row.key == key:
                return next(c for c in row.cells if c.column == column)
        raise KeyError(key)


def parse_number(value: Any) -> float | None:
    """A cell as a number: numbers as they are, text by its leading number (``"0.20 (∗)"``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else float(value)
    m = _NUMBER.match(str(value))
    return float(m.group(1).replace("−", "-")) if m else None


def parse_verdict(value: Any) -> str | None:
    """✓, × or ◦ from a verdict cell (``"Q1: ✓"``, ``"×"``, ``"o"``), else None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or isinstance(value, (int, float)):
        return None
    text = str(value)
    for symbol, verdict in _VERDICTS.items():
        if symbol in text:
            return verdict
    word = re.sub(r"^q\d+\s*:\s*", "", text.strip().lower())
    return _VERDICT_WORDS.get(word)


def is_missing(value: Any) -> bool:
    if value is None or isinstance(value, Undefined):
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in {"", "-", "NA", "nan"}


def compare_cells(column: str, ours: Any, paper: Any, rel_tol: float) -> tuple[str, ...]:
    """Flags for one value of ``column``: our value against the paper's."""
    if is_missing(ours) and is_missing(paper):
        return ()
    if is_missing(ours) or is_missing(paper):
        return (MISSING,)
    v_ours, v_paper = parse_verdict(ours), parse_verdict(paper)
    if v_ours is not None or v_paper is not None:
        return (VERDICT,) if v_ours != v_paper else ()
    a, b = parse_number(ours), parse_number(paper)
    if a is None or b is None:
        return () if str(ours).strip() == str(paper).strip() else (VERDICT,)
    if P_VALUE_COLUMN.search(column):
        if a == 0 or b == 0:
            return ()
        return (SIGNIFICANCE,) if (a <= SIGNIFICANCE_LEVEL) != (b <= SIGNIFICANCE_LEVEL) else ()
    zero_a, zero_b = abs(a) <= ZERO_TOLERANCE, abs(b) <= ZERO_TOLERANCE
    if zero_a != zero_b:
        return (ZERO,)
    if zero_a:
        return ()
    if (a > 0) != (b > 0):
        return (SIGN,)
    if abs(a - b) / max(abs(a), abs(b)) > rel_tol:
        return (LARGE,)
    return ()


def _keyed(df: pd.DataFrame, table: ReportTable, side: str) -> dict[tuple[str, ...], pd.Series]:
    keys = [tuple(str(v).strip() for v in row) for row in df[table.key_columns].itertuples(index=False)]
    seen: dict[tuple[str, ...], pd.Series] = {}
    for key, (_, row) in zip(keys, df.iterrows()):
        if key in seen:
            raise EtioInputError(f"{table.name}: {side} table has two rows with key "
                                 f"{dict(zip(table.key_columns, key))}")
        seen[key] = row
    return seen


def check_table(table: ReportTable) -> None:
    """The one check of a report table at the edge of the report stage."""
    if table.kind not in KINDS:
        raise EtioInputError(f"{table.name}: unknown table kind {table.kind!r}; use one of {', '.join(KINDS)}")
    if table.ours is None and table.paper is None:
        raise EtioInputError(f"{table.name}: neither our table nor the paper's is given")
    for side, df in (("our", table.ours), ("paper", table.paper)):
        if df is None:
            continue
        missing = [c for c in [*table.key_columns, *table.value_columns] if c not in df.columns
                   and not (side == "paper" and c in table.ours_only)]
        if missing:
            raise EtioInputError(f"{table.name}: {side} table has no column(s) {', '.join(map(repr, missing))}")


def compare_table(table: ReportTable) -> TableComparison:
    """Join our rows with the paper's on the key columns and flag every value column."""
    check_table(table)
    rel_tol = table.rel_tol if table.rel_tol is not None else RELATIVE_TOLERANCE[table.kind]
    ours = _keyed(table.ours, table, "our") if table.ours is not None else {}
    paper = _keyed(table.paper, table, "paper") if table.paper is not None else {}
    # Paper order first (the reader follows the paper), then rows only we have.
    order = list(paper) + [k for k in ours if k not in paper]
    result = TableComparison(table)
    for key in order:
        o, p = ours.get(key), paper.get(key)
        cells = []
        for col in table.value_columns:
            vo = defined(col, o[col], o) if o is not None else None
            if col in table.ours_only:
                vp = Undefined(table.ours_only_reason) if p is not None else None
                cells.append(ComparedCell(col, vo, vp, ()))
                continue
            vp = defined(col, p[col], p) if p is not None else None
            flags = compare_cells(col, vo, vp, rel_tol) if (o is not None and p is not None) else ()
            cells.append(ComparedCell(col, vo, vp, flags))
        side = "both" if (o is not None and p is not None) else ("ours" if o is not None else "paper")
        row = ComparedRow(key, cells, side)
        if side != "both" and table.ours is not None and table.paper is not None:
            row.cells[0].flags = (MISSING,)
        result.rows.append(row)
    return result

