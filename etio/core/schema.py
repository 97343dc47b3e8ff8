"""Declared schemas of the tables passed between stages, and the trace vocabulary.

The trace table has one row per training configuration and the 53 columns of the
authors' ``full-summary.csv`` (same names, same order). Python uses the authors' column
names (``CentroidDistance(origin)``); R's ``read.csv`` turns ``(``, ``)`` and ``?`` into
``.`` (``CentroidDistance.origin.``). :func:`to_r_name` / :func:`from_r_name` are the one
place where the two spellings meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import pandas as pd

from etio.core.errors import EtioInputError, check_choice, read_error
from etio.core.vocabulary import (  # noqa: F401 - re-exported: the vocabulary is part of the schema
    ATTACK_BY_COLUMN, ATTACKS, LOWFPR_COLUMNS, ROBUST_ROC_COLUMNS, VARIABLES, check_attack, r_spelling,
)

# --------------------------------------------------------------------------------------
# Trace vocabulary
# --------------------------------------------------------------------------------------

IDENTITY_COLUMNS = [
    "WeightDecay", "EpochNum", "Dataset", "Arch", "Width", "TrainSize", "Loss", "Scheduler?", "lr",
]
GENERALIZATION_COLUMNS = [
    "TrainAcc", "TestAcc", "TrainLoss", "TestLoss", "TrainVar", "TestVar",
    "TrainBias2", "TestBias2", "AccDiff", "LossDiff",
]
CENTROID_COLUMNS = ["CentroidDistance(sorted_3)", "CentroidDistance(sorted_10)", "CentroidDistance(origin)"]
MLLEAK_COLUMNS = [
    f"{prefix}{variant}{part}"
    for prefix in ("", "Top3")
    for variant in ("MLLeak", "MLLeakL")
    for part in ("MemAcc", "NonmemAcc", "Acc")
]
OAK17_COLUMNS = ["Oak17MemAcc", "Oak17NonmemAcc", "Oak17Acc"]
THRESHOLD_COLUMNS = ["ThresholdMemAcc", "ThresholdNonMemAcc", "ThresholdAcc", "Threshold"]
MEMGUARD_STAT_COLUMNS = [
    "MemguardTrainAcc", "MemguardTestAcc", "MemguardTrainLoss", "MemguardTestLoss",
    "MemguardTestVar", "MemguardTestBias2", "MemguardAccDiff", "MemguardLossDiff",
]
MEMGUARD_ATTACK_COLUMNS = ["MemguardMemberAcc", "MemguardNonmemberAcc", "MemguardAcc"]

#: The 53 trace columns, in the authors' order (spec: upstream trace schema).
TRACE_COLUMNS: list[str] = (
    IDENTITY_COLUMNS + ["NumParams"] + GENERALIZATION_COLUMNS + CENTROID_COLUMNS + MLLEAK_COLUMNS
    + OAK17_COLUMNS + THRESHOLD_COLUMNS + MEMGUARD_STAT_COLUMNS + MEMGUARD_ATTACK_COLUMNS
)

LOSSES = ["ce", "mse"]
#: Weight decays of the paper: "normal" and "high" (the L2 defence).
WEIGHT_DECAYS = [0.0005, 0.005]
#: Two weight decays are the same when they differ by less than this fraction: the one
#: tolerance with which every stage selects the rows of one (loss, weight decay).
WEIGHT_DECAY_RTOL = 1e-9

#: The generalization features shared by every attack's graph (the centroid is added per attack).
BASE_FEATURES = [v.column for v in VARIABLES if v.node == "base"]
#: Nodes that can only be causes (no arcs into them from non-roots).
ROOT_CANDIDATES = [v.column for v in VARIABLES if v.root]

# --------------------------------------------------------------------------------------
# Robust models (Song et al., the related-work excerpt): PGD-trained models and the five
# class-label dependent inference strategies of its Table 7. Their variables and attacks are
# entries of etio.core.vocabulary (study "robust"); the column groups are kept here.
# --------------------------------------------------------------------------------------

#: Trace columns of a PGD-trained configuration: the l∞ budget of training (pixel units, a
#: fraction of the [0, 1] pixel range), PGD accuracy on members and on the test set at that
#: budget, and their difference (the robust gap). None of them is one of the authors' 53.
ROBUST_TRACE_COLUMNS = ["AdvEps", "AdvTrainAcc", "AdvTestAcc", "AdvAccDiff"]
#: The columns that name one configuration (``TrainConfig.identity()``): the authors' identity
#: columns plus the PGD budget, present only in robust trace tables.
ROW_IDENTITY_COLUMNS = IDENTITY_COLUMNS + ["AdvEps"]
#: Inference strategy (``etio attack`` name) -> (column prefix, name in the excerpt's Table 7).
ROBUST_STRATEGIES = {a.stage: (a.column[:-len("Acc")], a.display) for a in ATTACK_BY_COLUMN.values()
                     if a.study == "robust"}
ROBUST_ATTACK_COLUMNS = [f"{prefix}{part}" for prefix, _ in ROBUST_STRATEGIES.values()
                         for part in ("MemAcc", "NonmemAcc", "Acc")] + ROBUST_ROC_COLUMNS
#: ``ROBUST_ROC_COLUMNS`` (appended above): each strategy's AUC, TPR at 0.1 % / 1 % FPR and ε on its
#: evaluation sets, from its per-example scores (etio.attacks.robust).
#: Outcome nodes of the robust study's graphs.
ROBUST_ATTACKS = [f"{prefix}Acc" for prefix, _ in ROBUST_STRATEGIES.values()]
#: The nodes a graph gains when its rows vary the training budget (R: ETIO_ROBUST_NODES).
ROBUST_FEATURES = list(ROBUST_TRACE_COLUMNS)
#: Display names of the robust attacks (the excerpt's Table 7 headings).
ATTACK_PAPER_NAMES = {a.column: a.display for a in ATTACK_BY_COLUMN.values()}


def check_loss(loss: str, where: str = "") -> str:
    return check_choice("loss", loss, LOSSES, plural="losses", where=where)


def centroid_for(attack: str) -> str:
    """The centroid-distance variant the authors used for ``attack`` (or a low-FPR graph outcome's)."""
    from etio.core.vocabulary import check_outcome, entry

    return entry(check_outcome(attack)).centroid


def features_for(attack: str, weight_decay_fixed: bool = True) -> list[str]:
    """Nodes of ``attack``'s graph besides the attack itself (13, or 14 with WeightDecay)."""
    feats = BASE_FEATURES + [centroid_for(attack), "TrainSize"]
    if not weight_decay_fixed:
        feats.append("WeightDecay")
    return feats


def treatments_for(attack: str) -> list[str]:
    """The 13 treatments queried for ``attack`` (dowhy stage), in the authors' order."""
    order = [
        "TrainBias2", "TestBias2", "TrainAcc", "TestAcc", "TrainLoss", "TestLoss", "TrainVar", "TestVar",
        "LossDiff", "AccDiff", "NumParams", "TrainSize",
    ]
    return order + [centroid_for(attack)]


def same_weight_decay(a, b) -> bool:
    """``a`` and ``b`` (numbers or arrays) name the same weight decay (:data:`WEIGHT_DECAY_RTOL`)."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) <= WEIGHT_DECAY_RTOL * np.maximum(np.abs(a), np.abs(b))


def slice_mask(table: pd.DataFrame, loss: str | None, weight_decay: float | None, *,
               loss_column: str = "Loss", weight_decay_column: str = "WeightDecay") -> pd.Series:
    """Rows of ``table`` with ``loss`` and ``weight_decay`` (None: any): the one slice selector."""
    mask = pd.Series(True, index=table.index)
    if loss is not None:
        mask &= table[loss_column] == loss
    if weight_decay is not None:
        wd = pd.to_numeric(table[weight_decay_column], errors="coerce").to_numpy(float)
        mask &= pd.Series(same_weight_decay(wd, float(weight_decay)), index=table.index)
    return mask


def select_slice(table: pd.DataFrame, loss: str | None, weight_decay: float | None, **columns) -> pd.DataFrame:
    """The rows of one (loss, weight decay) slice (see :func:`slice_mask`)."""
    return table[slice_mask(table, loss, weight_decay, **columns)]


# --------------------------------------------------------------------------------------
# Python <-> R column names
# --------------------------------------------------------------------------------------

_KNOWN_BY_R_NAME = {to_r: c for c in TRACE_COLUMNS + LOWFPR_COLUMNS for to_r in (r_spelling(c),)}


def to_r_name(column: str) -> str:
    """R's ``make.names`` spelling of a trace column (``CentroidDistance(origin)`` -> ``CentroidDistance.origin.``)."""
    return r_spelling(column)


def from_r_name(column: str) -> str:
    """Inverse of :func:`to_r_name` for trace columns; other names pass through."""
    return _KNOWN_BY_R_NAME.get(column, column)


# --------------------------------------------------------------------------------------
# Typed tables
# --------------------------------------------------------------------------------------

_KINDS = {"float", "int", "str", "bool"}


@dataclass(frozen=True)
class TableSchema:
    """A declared table: column name -> kind ("float", "int", "str", "bool").

    ``required`` columns must be present; ``optional`` ones may be absent or empty.
    :meth:`validate` is the single check at a stage's edge: it names the first offending
    column and returns the table with columns coerced to their kinds.
    """

    name: str
    required: Mapping[str, str]
    optional: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {k for k in list(self.required.values()) + list(self.optional.values()) if k not in _KINDS}
        assert not bad, f"unknown column kinds {bad}"

    @property
    def columns(self) -> list[str]:
        return list(self.required) + list(self.optional)

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(k)) for c, k in {**self.required, **self.optional}.items()})

    def validate(self, df: pd.DataFrame, source: str = "") -> pd.DataFrame:
        where = f" in {source}" if source else ""
        missing = [c for c in self.required if c not in df.columns]
        if missing:
            raise EtioInputError(f"{self.name}{where}: missing column(s) {', '.join(map(repr, missing))}")
        out = df.copy()
        for col, kind in {**self.required, **self.optional}.items():
            if col not in out.columns:
                continue
            out[col] = _coerce(out[col], kind, f"{self.name}{where}", col, required=col in self.required)
        return out


def _dtype(kind: str) -> str:
    return {"float": "float64", "int": "int64", "str": "object", "bool": "bool"}[kind]


def _coerce(series: pd.Series, kind: str, table: str, col: str, required: bool) -> pd.Series:
    if kind == "str":
        return series.astype("object")
    if kind == "bool":
        return series.astype(bool)
    numeric = pd.to_numeric(series, errors="coerce")
    bad = series[numeric.isna() & series.notna() & (series.astype(str).str.strip() != "")]
    if len(bad):
        raise EtioInputError(f"{table}: column {col!r} has non-numeric value {bad.iloc[0]!r} "
                             f"(CSV line {_lines([bad.index[0]])})")
    if kind == "int" and required:
        if numeric.isna().any():
            raise EtioInputError(f"{table}: column {col!r} has a missing value "
                                 f"(CSV line {_lines([numeric.index[numeric.isna()][0]])})")
        return numeric.astype("int64")
    return numeric.astype("float64")


def parse_train_size(value) -> float:
    """TrainSize as a number: the authors' traces write ``1k`` / ``5k``."""
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    text = str(value).strip().lower()
    try:
        if text.endswith("k"):
            return float(text[:-1]) * 1000.0
        return float(text)
    except ValueError:
        raise EtioInputError(f"TrainSize value {value!r} is neither a number nor of the form '1k'/'5k'") from None


def _is_size(value) -> bool:
    try:
        parse_train_size(value)
    except EtioInputError:
        return False
    return True


#: The trace table as read from disk. Identity columns are required; measured columns may be
#: empty (attack columns stay empty until the attack stage fills them).
TRACE_SCHEMA = TableSchema(
    name="trace table",
    required={
        "WeightDecay": "float", "Loss": "str",
    },
    optional={
        **{c: "str" for c in ("EpochNum", "Dataset", "Arch", "Scheduler?")},
        "Width": "float",
        "lr": "float", "TrainSize": "float",
        **{c: "float" for c in TRACE_COLUMNS if c not in IDENTITY_COLUMNS},
        **{c: "float" for c in ROBUST_TRACE_COLUMNS + ROBUST_ATTACK_COLUMNS},
        **{c: "float" for c in LOWFPR_COLUMNS},
    },
)


def normalize_trace_columns(columns: Iterable[str]) -> list[str]:
    """Accept trace files written by R (``CentroidDistance.origin.``) as well as Python's spelling."""
    return [from_r_name(c) for c in columns]


def read_traces(path) -> pd.DataFrame:
    """Read a trace CSV: the one reader every stage uses.

    Either column spelling (authors' or R's) is accepted, the authors' ``-`` placeholders are
    missing values, and the table is checked against :data:`TRACE_SCHEMA`.
    """
    from pathlib import Path

    path = Path(path)
    try:
        table = pd.read_csv(path, na_values=["-"])
    except FileNotFoundError:
        raise EtioInputError(f"trace file not found: {path}") from None
    except (IsADirectoryError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EtioInputError(f"cannot read trace file {path}: {exc}") from None
    except OSError as exc:       # no permission, an I/O error: a filesystem fault, not bad input
        raise read_error(path, exc, "trace file") from None
    if table.empty:
        raise EtioInputError(f"trace file {path} has a header but no rows")
    table.columns = normalize_trace_columns(table.columns)
    if table.columns.duplicated().any():
        dup = sorted(set(table.columns[table.columns.duplicated()]))
        raise EtioInputError(f"trace table in {path}: column(s) {', '.join(map(repr, dup))} appear more than once")
    if "TrainSize" in table:  # parsed once, here: the authors write 1k / 5k
        bad = [label for label, v in table["TrainSize"].items() if not pd.isna(v) and not _is_size(v)]
        if bad:
            raise EtioInputError(f"{path}: column 'TrainSize' has a value that is not a size: "
                                 f"{str(table.loc[bad[0], 'TrainSize'])!r} (CSV line(s) {_lines(bad)})")
        table["TrainSize"] = table["TrainSize"].map(lambda v: v if pd.isna(v) else parse_train_size(v)).astype(float)
    table = TRACE_SCHEMA.validate(table, source=str(path))
    check_trace_rows(table, source=str(path))
    return table


# --------------------------------------------------------------------------------------
# The trace-table check every analysis runs at its edge
# --------------------------------------------------------------------------------------

def _lines(index: Iterable, limit: int = 5) -> str:
    """Row labels as the CSV line numbers a user sees (header = line 1)."""
    import numbers

    labels = [int(i) + 2 if isinstance(i, numbers.Integral) else i for i in index]
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(str(x) for x in labels[:limit]) + more


def check_trace_rows(table: pd.DataFrame, source: str = "trace table") -> None:
    """Whole-table checks: no ±inf in a numeric column, accuracies (``*Acc``) in [0, 1] and their
    differences (``*AccDiff``) in [-1, 1], only known losses, no configuration listed twice.

    Rows are named by their CSV line (header = line 1). Duplicates are rows that repeat every
    identity column present (:data:`IDENTITY_COLUMNS`, plus ``AdvEps``, the PGD budget of a
    robust trace table, as in ``TrainConfig.identity()``); the error names those columns.
    """
    for col in table.columns:
        if pd.api.types.is_numeric_dtype(table[col]) and not pd.api.types.is_bool_dtype(table[col]):
            values = table[col].astype(float)
            bad = values.index[values.isin([math.inf, -math.inf])]
            if len(bad):
                raise EtioInputError(f"{source}: column {col!r} has a non-finite value ({values[bad[0]]}) "
                                     f"at CSV line(s) {_lines(bad)}")
            low = -1.0 if col.endswith("AccDiff") else 0.0 if col.endswith("Acc") else None
            if low is not None:
                bad = values.index[(values < low) | (values > 1.0)]
                if len(bad):
                    kind = "a difference of accuracies" if low < 0 else "an accuracy"
                    raise EtioInputError(f"{source}: column {col!r} is {kind}, in [{low:g}, 1], but has "
                                         f"{values[bad[0]]:g} at CSV line(s) {_lines(bad)}")
    if "Loss" in table.columns:
        bad = table.index[table["Loss"].notna() & ~table["Loss"].isin(LOSSES)]
        if len(bad):
            raise EtioInputError(f"{source}: column 'Loss' has {table.loc[bad[0], 'Loss']!r} at CSV line(s) "
                                 f"{_lines(bad)}; known losses: {', '.join(LOSSES)}")
    identity = [c for c in ROW_IDENTITY_COLUMNS if c in table.columns]
    if identity and len(table):
        dup = table.duplicated(identity, keep=False)
        if dup.any():
            first = table.index[dup][0]
            ref = table.loc[first, identity]
            equal = (table[identity] == ref) | (table[identity].isna() & ref.isna())
            same = table.index[dup & equal.all(axis=1)]
            raise EtioInputError(
                f"{source}: {int(dup.sum())} rows repeat a configuration (identity columns "
                f"{', '.join(identity)}); e.g. CSV lines {_lines(same)} are the same configuration")


def check_trace_columns(table: pd.DataFrame, columns: Iterable[str], rows: pd.Series | None = None,
                        source: str = "trace table", what: str = "the analysis",
                        may_be_missing: Iterable[str] = ()) -> None:
    """The check at the edge of every analysis (learn, query, identify against data, pitfalls,
    tables): each column ``what`` uses exists, and within the analysed ``rows`` is numeric,
    finite, has no missing value (except the columns ``may_be_missing``: attack results that
    were not computed for some rows) and is not constant. Errors name the column and the
    CSV lines.
    """
    columns = list(dict.fromkeys(columns))
    may_be_missing = set(may_be_missing)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EtioInputError(f"{source}: no column {', '.join(map(repr, missing))} ({what} needs it)")
    part = table if rows is None else table[rows]
    for col in columns:
        raw = part[col]
        if col == "TrainSize":
            sizes = []
            for label, v in raw.items():
                try:
                    sizes.append(math.nan if pd.isna(v) else parse_train_size(v))  # pd.NA, NaT: missing
                except EtioInputError:
                    raise EtioInputError(f"{source}: column 'TrainSize' has a value that is not a size: {v!r} "
                                         f"(CSV line {_lines([label])})") from None
            raw = pd.Series(sizes, index=raw.index, dtype=float)
        values = pd.to_numeric(raw, errors="coerce")
        bad = raw.index[values.isna() & raw.notna()]
        if len(bad):
            raise EtioInputError(f"{source}: column {col!r} has non-numeric value {raw[bad[0]]!r} "
                                 f"at CSV line(s) {_lines(bad)}")
        values = values.astype(float)
        inf = values.index[values.isin([math.inf, -math.inf])]
        if len(inf):
            raise EtioInputError(f"{source}: column {col!r} has a non-finite value at CSV line(s) {_lines(inf)}")
        nan = values.index[values.isna()]
        if len(nan) and col not in may_be_missing:
            raise EtioInputError(f"{source}: column {col!r} has {len(nan)} row(s) with a missing value "
                                 f"(CSV line(s) {_lines(nan)}) in {what}")
        present = values.dropna()
        if len(present) > 1 and present.nunique() == 1:
            raise EtioInputError(f"{source}: column {col!r} is constant ({present.iloc[0]:g}) in the "
                                 f"{len(present)} rows of {what}; a constant column carries no effect")
