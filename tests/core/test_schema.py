"""The trace schema and its checks: the authors' 53 columns, the R spellings, the per-attack
features and treatments, typed tables and the trace reader's errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etio.core import schema
from etio.core.errors import EtioInputError
from etio.core.schema import TableSchema
from etio.core.vocabulary import PAPER_ATTACKS

ROBUST = ["ConfInferBenignAcc", "ConfInferUntargetedAcc", "ModelInferBenignAcc", "ModelInferUntargetedAcc",
          "ModelInferTargetedAcc"]

#: The header of the authors' full-summary.csv (trace schema of their repository), typed in.
AUTHORS_HEADER = (
    "WeightDecay,EpochNum,Dataset,Arch,Width,TrainSize,Loss,Scheduler?,lr,NumParams,TrainAcc,TestAcc,TrainLoss,"
    "TestLoss,TrainVar,TestVar,TrainBias2,TestBias2,AccDiff,LossDiff,CentroidDistance(sorted_3),"
    "CentroidDistance(sorted_10),CentroidDistance(origin),MLLeakMemAcc,MLLeakNonmemAcc,MLLeakAcc,MLLeakLMemAcc,"
    "MLLeakLNonmemAcc,MLLeakLAcc,Top3MLLeakMemAcc,Top3MLLeakNonmemAcc,Top3MLLeakAcc,Top3MLLeakLMemAcc,"
    "Top3MLLeakLNonmemAcc,Top3MLLeakLAcc,Oak17MemAcc,Oak17NonmemAcc,Oak17Acc,ThresholdMemAcc,ThresholdNonMemAcc,"
    "ThresholdAcc,Threshold,MemguardTrainAcc,MemguardTestAcc,MemguardTrainLoss,MemguardTestLoss,MemguardTestVar,"
    "MemguardTestBias2,MemguardAccDiff,MemguardLossDiff,MemguardMemberAcc,MemguardNonmemberAcc,MemguardAcc"
).split(",")


def test_trace_columns_are_the_authors_header():
    assert schema.TRACE_COLUMNS == AUTHORS_HEADER and len(AUTHORS_HEADER) == 53


def test_r_names_round_trip():
    assert schema.to_r_name("CentroidDistance(origin)") == "CentroidDistance.origin."
    assert schema.to_r_name("Scheduler?") == "Scheduler."
    assert schema.to_r_name("TrainAcc") == "TrainAcc"
    for column in AUTHORS_HEADER:
        assert schema.from_r_name(schema.to_r_name(column)) == column
    assert schema.from_r_name("Something.else.") == "Something.else."
    assert schema.normalize_trace_columns(["CentroidDistance.sorted_3.", "Loss"]) == ["CentroidDistance(sorted_3)",
                                                                                       "Loss"]


def test_features_and_treatments_per_attack():
    # The authors' graphs: 11 shared features, the centroid variant of the attack, TrainSize.
    base = ["TrainAcc", "TestAcc", "AccDiff", "TrainLoss", "TestLoss", "LossDiff", "TrainVar", "TestVar",
            "TrainBias2", "TestBias2", "NumParams"]
    assert schema.features_for("Oak17Acc") == base + ["CentroidDistance(origin)", "TrainSize"]
    assert schema.features_for("Top3MLLeakAcc") == base + ["CentroidDistance(sorted_3)", "TrainSize"]
    assert schema.features_for("MemguardAcc", weight_decay_fixed=False)[-1] == "WeightDecay"
    assert len(schema.features_for("MLLeakAcc", weight_decay_fixed=False)) == 14
    assert {a: schema.centroid_for(a) for a in PAPER_ATTACKS} == {
        "MLLeakAcc": "CentroidDistance(origin)", "MLLeakLAcc": "CentroidDistance(origin)",
        "Top3MLLeakAcc": "CentroidDistance(sorted_3)", "Top3MLLeakLAcc": "CentroidDistance(sorted_3)",
        "Oak17Acc": "CentroidDistance(origin)", "ThresholdAcc": "CentroidDistance(origin)",
        "MemguardAcc": "CentroidDistance(sorted_3)"}
    # The robust-model attacks (Song et al.) use the whole prediction vector's centroid.
    assert {a: schema.centroid_for(a) for a in schema.ATTACKS if a not in PAPER_ATTACKS} == {
        a: "CentroidDistance(origin)" for a in ROBUST}
    assert schema.treatments_for("ThresholdAcc") == [
        "TrainBias2", "TestBias2", "TrainAcc", "TestAcc", "TrainLoss", "TestLoss", "TrainVar", "TestVar",
        "LossDiff", "AccDiff", "NumParams", "TrainSize", "CentroidDistance(origin)"]
    with pytest.raises(EtioInputError) as raised:
        schema.centroid_for("ShadowAcc")
    assert str(raised.value) == ("unknown attack 'ShadowAcc'; known attacks: MLLeakAcc, MLLeakLAcc, Top3MLLeakAcc, "
                                 "Top3MLLeakLAcc, Oak17Acc, ThresholdAcc, MemguardAcc, " + ", ".join(ROBUST))
    assert schema.check_attack("Oak17Acc") == "Oak17Acc"


@pytest.mark.parametrize("value,expected", [("1k", 1000.0), ("5K", 5000.0), (" 2.5k ", 2500.0), ("200", 200.0),
                                            (300, 300.0), (1.5, 1.5)])
def test_train_size_values(value, expected):
    assert schema.parse_train_size(value) == expected


@pytest.mark.parametrize("value", ["abc", "k", "1m", None])
def test_train_size_errors(value):
    assert math.isnan(schema.parse_train_size(float("nan")))       # a missing size stays missing
    with pytest.raises(EtioInputError) as raised:
        schema.parse_train_size(value)
    assert str(raised.value) == f"TrainSize value {value!r} is neither a number nor of the form '1k'/'5k'"


TABLE = TableSchema("demo table", required={"a": "float", "n": "int", "s": "str"}, optional={"b": "bool", "o": "int",
                                                                                              "f": "float"})


def test_table_schema_coerces_every_kind():
    df = pd.DataFrame({"a": ["1.5", "2"], "n": ["3", 4], "s": [1, "x"], "b": [1, 0], "o": [None, "7"], "f": ["", " "]})
    out = TABLE.validate(df)
    assert out["a"].tolist() == [1.5, 2.0] and out["a"].dtype == "float64"
    assert out["n"].tolist() == [3, 4] and out["n"].dtype == "int64"
    assert out["s"].tolist() == [1, "x"] and out["s"].dtype == object
    assert out["b"].tolist() == [True, False] and out["b"].dtype == bool
    assert out["o"].isna().tolist() == [True, False] and out["o"].dtype == "float64"   # optional int may be empty
    assert out["f"].isna().all()                                                       # blanks are missing values
    assert TABLE.columns == ["a", "n", "s", "b", "o", "f"]
    assert df["a"].tolist() == ["1.5", "2"]                                            # the input is not modified
    assert TABLE.validate(pd.DataFrame({"a": [1.0], "n": [1], "s": ["x"]})).columns.tolist() == ["a", "n", "s"]


def test_table_schema_errors_name_the_column_and_row():
    with pytest.raises(EtioInputError) as raised:
        TABLE.validate(pd.DataFrame({"a": [1.0]}), source="f.csv")
    assert str(raised.value) == "demo table in f.csv: missing column(s) 'n', 's'"
    with pytest.raises(EtioInputError) as raised:
        TABLE.validate(pd.DataFrame({"a": [1.0, "x?"], "n": [1, 2], "s": ["", ""]}))
    # rows counted as the CSV lines a user sees (header = line 1), as every other message counts them
    assert str(raised.value) == "demo table: column 'a' has non-numeric value 'x?' (CSV line 3)"
    with pytest.raises(EtioInputError) as raised:
        TABLE.validate(pd.DataFrame({"a": [1.0, 2.0], "n": [1, None], "s": ["", ""]}), source="g")
    assert str(raised.value) == "demo table in g: column 'n' has a missing value (CSV line 3)"
    with pytest.raises(AssertionError, match="unknown column kinds"):
        TableSchema("bad", required={"x": "complex"})


def test_empty_table_has_the_declared_dtypes():
    empty = TABLE.empty()
    assert list(empty.columns) == TABLE.columns and len(empty) == 0
    assert [str(empty[c].dtype) for c in TABLE.columns] == ["float64", "int64", "object", "bool", "int64", "float64"]


def test_read_traces_accepts_r_names_and_placeholders(tmp_path):
    path = tmp_path / "traces.csv"
    path.write_text("WeightDecay,Loss,CentroidDistance.origin.,MemguardAcc,TrainSize\n"
                    "0.0005,ce,0.25,-,1k\n0.005,mse,0.5,0.61,5k\n")
    table = schema.read_traces(path)
    assert list(table.columns) == ["WeightDecay", "Loss", "CentroidDistance(origin)", "MemguardAcc", "TrainSize"]
    assert math.isnan(table["MemguardAcc"][0]) and table["MemguardAcc"][1] == 0.61
    assert table["CentroidDistance(origin)"].tolist() == [0.25, 0.5] and table["TrainSize"].tolist() == [1000.0, 5000.0]


def test_read_traces_errors(tmp_path):
    with pytest.raises(EtioInputError) as raised:
        schema.read_traces(tmp_path / "none.csv")
    assert str(raised.value) == f"trace file not found: {tmp_path / 'none.csv'}"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EtioInputError, match=r"^cannot read trace file .*empty.csv: No columns to parse"):
        schema.read_traces(empty)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(EtioInputError, match=r"^cannot read trace file .*dir.csv: "):
        schema.read_traces(tmp_path / "dir.csv")
    missing = tmp_path / "missing.csv"
    missing.write_text("Loss,TrainAcc\nce,0.5\n")
    with pytest.raises(EtioInputError) as raised:
        schema.read_traces(missing)
    assert str(raised.value) == f"trace table in {missing}: missing column(s) 'WeightDecay'"
    bad = tmp_path / "bad.csv"
    bad.write_text("WeightDecay,Loss,TrainAcc\n0.0005,ce,high\n")
    with pytest.raises(EtioInputError, match=r"column 'TrainAcc' has non-numeric value 'high' \(CSV line 2\)"):
        schema.read_traces(bad)


def test_vocabulary_of_the_paper():
    assert schema.LOSSES == ["ce", "mse"] and schema.WEIGHT_DECAYS == [0.0005, 0.005]
    assert len(PAPER_ATTACKS) == 7 and set(PAPER_ATTACKS) == {a for a in AUTHORS_HEADER if a.endswith("Acc")
                                                               and a[:-3] + "MemAcc" in AUTHORS_HEADER
                                                               or a == "MemguardAcc"}
    # ATTACKS: the paper's seven, in order, then the five robust-model attacks (none an authors' column).
    assert schema.ATTACKS == PAPER_ATTACKS + ROBUST
    assert schema.ROBUST_ATTACKS == ROBUST and not set(ROBUST) & set(AUTHORS_HEADER)
    assert np.all([c in schema.TRACE_SCHEMA.columns for c in AUTHORS_HEADER])


def _rows(**columns) -> pd.DataFrame:
    base = {"WeightDecay": [5e-4] * 4, "EpochNum": [400] * 4, "Dataset": ["cifar10"] * 4, "Arch": ["resnet34"] * 4,
            "Width": [2, 4, 8, 16], "TrainSize": [1000.0] * 4, "Loss": ["ce"] * 4, "Scheduler?": [True] * 4,
            "lr": [0.1] * 4, "TrainAcc": [0.9, 0.8, 0.7, 0.6]}
    return pd.DataFrame({**base, **columns})


def test_check_trace_rows_names_the_value_and_the_csv_lines():
    schema.check_trace_rows(_rows())                                      # a clean table passes
    schema.check_trace_rows(_rows(**{"Scheduler?": [True, False, True, False]}))   # a bool column is no number
    with pytest.raises(EtioInputError) as raised:
        schema.check_trace_rows(_rows(TrainAcc=[0.9, -math.inf, 0.7, math.inf]), source="t.csv")
    # index 1 and 3 are CSV lines 3 and 5 (the header is line 1)
    assert str(raised.value) == "t.csv: column 'TrainAcc' has a non-finite value (-inf) at CSV line(s) 3, 5"
    with pytest.raises(EtioInputError) as raised:
        schema.check_trace_rows(_rows(Width=[2, 8, 4, 8]))
    assert str(raised.value) == (
        "trace table: 2 rows repeat a configuration (identity columns WeightDecay, EpochNum, Dataset, Arch, Width, "
        "TrainSize, Loss, Scheduler?, lr); e.g. CSV lines 3, 5 are the same configuration")
    # two repeated configurations: the example names the lines of the first one only
    with pytest.raises(EtioInputError) as raised:
        schema.check_trace_rows(_rows(Width=[8, 2, 8, 2]))
    assert str(raised.value).startswith("trace table: 4 rows repeat") and "CSV lines 2, 4 are" in str(raised.value)
    # missing identity values are equal to each other (two robust rows without a budget)
    robust = _rows(Width=[2, 2, 4, 4], AdvEps=[np.nan, np.nan, 0.1, 0.2])
    with pytest.raises(EtioInputError, match=r"2 rows repeat .*AdvEps\); e\.g\. CSV lines 2, 3 are"):
        schema.check_trace_rows(robust)
    schema.check_trace_rows(_rows(Width=[2, 2, 4, 4], AdvEps=[0.0, 0.1, 0.0, 0.1]))    # the budget tells them apart
    schema.check_trace_rows(_rows().iloc[:0])                             # an empty table has no repeats
    assert schema._lines(range(8)) == "2, 3, 4, 5, 6 and 3 more"
    assert schema._lines(["a", "b"]) == "a, b" and schema._lines(range(5)) == "2, 3, 4, 5, 6"


def _read_error(path, text: str) -> str:
    """The one-line error of reading ``text`` as a trace CSV at ``path``."""
    path.write_text(text)
    with pytest.raises(EtioInputError) as raised:
        schema.read_traces(path)
    return str(raised.value)


def test_read_traces_rejects_repeated_columns_and_bad_sizes_by_line(tmp_path):
    # one column under its authors' and its R spelling
    both = tmp_path / "both.csv"
    assert _read_error(both, "WeightDecay,Loss,CentroidDistance(origin),CentroidDistance.origin.\n0.0005,ce,0.1,0.2\n") \
        == f"trace table in {both}: column(s) 'CentroidDistance(origin)' appear more than once"
    sizes = tmp_path / "sizes.csv"
    assert _read_error(sizes, "WeightDecay,Loss,TrainSize\n0.0005,ce,1k\n0.0005,ce,-\n0.0005,ce,lots\n0.0005,ce,many\n") \
        == f"{sizes}: column 'TrainSize' has a value that is not a size: 'lots' (CSV line(s) 4, 5)"
    ok = tmp_path / "ok.csv"
    ok.write_text("WeightDecay,Loss,TrainSize,TrainAcc\n0.0005,ce,1k,0.5\n0.0005,ce,-,0.6\n0.005,mse,5000,0.7\n")
    table = schema.read_traces(ok)
    assert table["TrainSize"].tolist()[0::2] == [1000.0, 5000.0] and math.isnan(table["TrainSize"][1])
    assert table["TrainSize"].dtype == float
    dup_rows = tmp_path / "dup.csv"
    message = _read_error(dup_rows, "WeightDecay,Loss,TrainSize\n0.0005,ce,1k\n0.0005,ce,1000\n")
    assert message.startswith(f"{dup_rows}: 2 rows repeat a configuration ") and "CSV lines 2, 3 are" in message
    infinite = tmp_path / "inf.csv"
    assert _read_error(infinite, "WeightDecay,Loss,TrainAcc\n0.0005,ce,0.5\n0.005,ce,inf\n") \
        == f"{infinite}: column 'TrainAcc' has a non-finite value (inf) at CSV line(s) 3"


# --- survivors of make mutation ---

def _columns_error(table: pd.DataFrame, columns, **kwargs) -> str:
    """The one-line error of :func:`schema.check_trace_columns` on ``table``."""
    with pytest.raises(EtioInputError) as raised:
        schema.check_trace_columns(table, columns, **kwargs)
    return str(raised.value)


def test_check_trace_columns_parses_sizes_of_the_whole_table_by_default():
    # No ``rows``: the whole table is analysed. TrainSize is read as a size ("1k" = 1000, "5k" =
    # 5000, "2k" = 2000); a missing size (None, kept as None by an object column) stays missing,
    # allowed here by ``may_be_missing``.
    table = pd.DataFrame({"TrainSize": pd.Series(["1k", "5k", None, "2k"], dtype=object),
                          "TrainAcc": [0.9, 0.8, 0.7, 0.6]})
    assert schema.check_trace_columns(table, ["TrainSize", "TrainAcc", "TrainSize"],
                                      may_be_missing=["TrainSize"]) is None
    # a one-row slice has a single value, which is not "constant"
    assert schema.check_trace_columns(table.iloc[:1], ["TrainSize", "TrainAcc"]) is None
    # the missing size, when not allowed, is named by its CSV line (index 2 -> line 4)
    assert _columns_error(table, ["TrainSize"]) == (
        "trace table: column 'TrainSize' has 1 row(s) with a missing value (CSV line(s) 4) in the analysis")


def test_check_trace_columns_checks_only_the_analysed_rows_by_their_csv_lines():
    table = pd.DataFrame({"TrainSize": ["1k", "5k", "2k", np.nan], "TrainAcc": [np.nan, 0.8, 0.7, 0.6]},
                         index=[0, 1, 2, 3])
    rows = pd.Series([False, True, True, True], index=table.index)
    # row 0 (missing TrainAcc) is outside the analysed rows: TrainAcc is fine there
    assert schema.check_trace_columns(table, ["TrainAcc"], rows) is None
    # ... but not in the whole table
    assert _columns_error(table, ["TrainAcc"]) == (
        "trace table: column 'TrainAcc' has 1 row(s) with a missing value (CSV line(s) 2) in the analysis")
    # the missing size is the table's row label 3, i.e. CSV line 5 (not its position 2 among the rows)
    assert _columns_error(table, ["TrainSize"], rows=rows, source="t.csv", what="the ce-Oak17Acc graph") == (
        "t.csv: column 'TrainSize' has 1 row(s) with a missing value (CSV line(s) 5) in the ce-Oak17Acc graph")


def test_check_trace_columns_error_messages_name_the_value_and_lines():
    def table(values):
        return pd.DataFrame({"TrainAcc": values, "TrainSize": ["1k", "2k", "lots", "3k"]})

    # a size that is no size: the first offender, at index 2 = CSV line 4
    assert _columns_error(table([0.9, 0.8, 0.7, 0.6]), ["TrainSize"]) == (
        "trace table: column 'TrainSize' has a value that is not a size: 'lots' (CSV line 4)")
    # non-numeric values: the first one ('high') is shown, every line is listed (indices 1, 2)
    assert _columns_error(table([0.9, "high", "low", 0.6]), ["TrainAcc"], source="t.csv") == (
        "t.csv: column 'TrainAcc' has non-numeric value 'high' at CSV line(s) 3, 4")
    # -inf and +inf are both non-finite
    assert _columns_error(table([0.9, -math.inf, 0.7, math.inf]), ["TrainAcc"]) == (
        "trace table: column 'TrainAcc' has a non-finite value at CSV line(s) 3, 5")
    assert _columns_error(table([0.9, 0.8, -math.inf, 0.6]), ["TrainAcc"]) == (
        "trace table: column 'TrainAcc' has a non-finite value at CSV line(s) 4")
    # a constant column, already with two rows; the value is the first one's (0.0, not -0.0)
    two = pd.DataFrame({"TrainAcc": [0.5, 0.5]})
    assert _columns_error(two, ["TrainAcc"]) == (
        "trace table: column 'TrainAcc' is constant (0.5) in the 2 rows of the analysis; "
        "a constant column carries no effect")
    signed_zero = pd.DataFrame({"TrainAcc": [0.0, -0.0, np.nan]})
    assert _columns_error(signed_zero, ["TrainAcc"], may_be_missing=["TrainAcc"], what="the slice") == (
        "trace table: column 'TrainAcc' is constant (0) in the 2 rows of the slice; "
        "a constant column carries no effect")


def test_check_trace_rows_without_identity_columns_has_no_repeats():
    # no identity column at all: two equal rows are not "the same configuration"
    assert schema.check_trace_rows(pd.DataFrame({"TrainAcc": [0.5, 0.5]})) is None


def test_check_trace_rows_example_is_one_configuration_when_a_budget_is_missing():
    # rows 0, 1 (no budget) repeat one configuration and rows 2, 3 (budget 0.1) another; the
    # example is the first one only: CSV lines 2, 3, not the rows with a budget.
    table = _rows(Width=[2, 2, 2, 2], AdvEps=[np.nan, np.nan, 0.1, 0.1])
    with pytest.raises(EtioInputError) as raised:
        schema.check_trace_rows(table)
    assert str(raised.value) == (
        "trace table: 4 rows repeat a configuration (identity columns WeightDecay, EpochNum, Dataset, Arch, Width, "
        "TrainSize, Loss, Scheduler?, lr, AdvEps); e.g. CSV lines 2, 3 are the same configuration")


def test_read_traces_names_every_repeated_column(tmp_path):
    path = tmp_path / "twice.csv"
    assert _read_error(path, "WeightDecay,Loss,Scheduler?,CentroidDistance.origin.,Scheduler.,"
                             "CentroidDistance(origin)\n0.0005,ce,True,0.1,True,0.1\n") \
        == f"trace table in {path}: column(s) 'CentroidDistance(origin)', 'Scheduler?' appear more than once"


def test_select_slice_selects_the_weight_decay():
    table = pd.DataFrame({"Loss": ["ce", "ce", "mse", "ce"], "WeightDecay": [0.0005, 0.005, 0.005, 0.005]})
    assert schema.select_slice(table, "ce", 0.005).index.tolist() == [1, 3]
    assert schema.select_slice(table, None, 0.0005).index.tolist() == [0]
    assert schema.select_slice(table, "mse", None).index.tolist() == [2]


@pytest.mark.parametrize("missing", [pd.NA, pd.NaT, None], ids=["NA", "NaT", "None"])
def test_check_trace_columns_reads_any_missing_size_as_missing(missing):
    # a table built in Python (not read from CSV) may mark a missing size with pd.NA or NaT; it is
    # a missing value like NaN (CSV line 3 = index 1), not a crash in float()
    table = pd.DataFrame({"TrainSize": pd.Series(["1k", missing, "5k"], dtype=object)})
    assert _columns_error(table, ["TrainSize"]) == (
        "trace table: column 'TrainSize' has 1 row(s) with a missing value (CSV line(s) 3) in the analysis")
    assert schema.check_trace_columns(table, ["TrainSize"], may_be_missing=["TrainSize"]) is None
