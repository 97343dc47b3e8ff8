"""Tables 2, 3, 5-8 from the authors' artifacts: the paper's printed values and marks."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from etio.causal import hypotheses
from etio.report import paper
from etio.report import tables
from etio.commands.app import app
from etio.causal.estimators import Status
from tests.support.repo import REPO

EXAMPLE = REPO / "etio" / "data" / "example_traces.csv"

# Table 3 of the paper, typed in: query -> (CE mark, MSE mark).
PAPER_TABLE3 = {
    "Q1": ("✓", "×"), "Q2": ("✓", "◦"), "Q3": ("✓", "✓"), "Q4": ("✓", "✓"), "Q5": ("×", "×"),
    "Q6": ("✓", "×"), "Q7": ("×", "×"), "Q8": ("✓", "×"), "Q9": ("◦", "✓"),
}

# A sample of printed cells of Tables 5-8: (attack, feature) -> (ATE, p-value) as the paper prints them.
PAPER_CELLS = {
    5: {("ShadowAcc", "AccDiff"): ("0.2949", "1.54E-136"), ("ThreshAcc", "LossDiff"): ("1.4711", "2.48E-01"),
        ("MLLeakTop3Acc", "CentroidDist"): ("0.2741", "8.65E-21"), ("MemGuardAcc", "TestVar"): ("0.1690", "5.56E-02"),
        ("MLLeakAcc-l", "CentroidDist"): ("-0.2877", "1.53E-07")},
    6: {("ShadowAcc", "NumParams"): ("-0.0055", "9.43E-03"), ("ThreshAcc", "LossDiff"): ("-0.6702", "1.20E-12"),
        ("MLLeakAcc-l", "LossDiff"): ("0.3416", "1.25E-103"), ("MemGuardAcc", "CentroidDist"): ("0.0903", "9.28E-01")},
    7: {("MLLeakAcc", "TestBias"): ("-75.6790", "2.97E-01"), ("ShadowAcc", "AccDiff"): ("0.2873", "4.69E-178"),
        ("MLLeakTop3Acc-l", "TrainVar"): ("-0.3976", "2.50E-05"), ("ThreshAcc", "TestBias"): ("107.4913", "1.16E-01")},
    8: {("MLLeakAcc", "AccDiff"): ("-0.0951", "1.81E-02"), ("ShadowAcc", "TrainVar"): ("0.4038", "1.75E-29"),
        ("ThreshAcc", "AccDiff"): ("0.2069", "5.91E-129"), ("MLLeakAcc-l", "LossDiff"): ("0.6361", "4.58E-05")},
}
# Rows per table in the paper (7 attacks x 9 - 2 at 5e-4; 6 x 9 - 2 at 5e-3).
PAPER_ROWS = {5: 61, 6: 61, 7: 52, 8: 52}


def test_table3_paper_marks_all_18_cells():
    marks = tables.table3_marks(tables.table3(paper.ates(0.0005)))
    assert len(marks) == 18
    for query, (ce, mse) in PAPER_TABLE3.items():
        assert (marks[query, "ce"], marks[query, "mse"]) == (ce, mse), query


def test_verdict_rule():
    H = hypotheses
    assert H.mark(H.IS_CAUSE, False, float("nan")) == H.REFUTED
    assert H.mark(H.IS_CAUSE, True, 0.01) == H.SUPPORTED
    assert H.mark(H.IS_CAUSE, True, 0.2) == H.NOT_SIGNIFICANT
    assert H.mark(H.IS_NOT_CAUSE, False, float("nan")) == H.SUPPORTED
    assert H.mark(H.IS_NOT_CAUSE, True, 0.9) == H.REFUTED
    assert H.combine([H.SUPPORTED, H.NOT_SIGNIFICANT]) == H.NOT_SIGNIFICANT
    assert H.combine([H.NOT_SIGNIFICANT, H.REFUTED]) == H.REFUTED
    assert H.combine([H.SUPPORTED, H.SUPPORTED]) == H.SUPPORTED


@pytest.mark.parametrize("number", [5, 6, 7, 8])
def test_ate_tables_print_the_paper_values(number):
    loss, wd = tables.ATE_TABLES[number]
    table = getattr(tables, f"table{number}")(paper.ates(wd))
    assert len(table) == PAPER_ROWS[number]
    text = tables.formatted(table).set_index(["Attack", "Feature"])
    for key, (ate, p) in PAPER_CELLS[number].items():
        assert text.loc[key, tables.PAPER_ATE] == ate
        assert text.loc[key, tables.PAPER_P_VALUE] == p
    # the authors' numbers are the paper recipe's only: no sound column, no unlabelled number
    assert list(table.columns) == ["Attack", "Feature", "ATE (paper recipe)", "p-value (paper recipe)", "status",
                                   "flags"]
    # full equality with the authors' .ce/.mse CSV, row by row in their order
    ref = pd.read_csv(paper.query_csv(wd, loss), index_col=0, dtype=str)
    assert [float(v) for v in ref["ATE"]] == [float(f"{v:.4f}") for v in table[tables.PAPER_ATE]]
    ref_p = [float(v) for v in ref["p-value"]]
    ours_p = [0.0 if s == Status.NO_PATH else float(f"{p:.2E}")
              for p, s in zip(table[tables.PAPER_P_VALUE], table["status"])]
    assert ref_p == ours_p


def test_table2_matches_results_and_paper():
    t = tables.table2(paper.results(0.0005), paper.results(0.005)).set_index(["Loss", "Attack"])
    assert len(t) == 12
    assert t.loc[("ce", "ShadowAcc"), "Normal WD Best Corr. Value"] == pytest.approx(0.9752, abs=5e-5)
    assert t.loc[("ce", "ThreshAcc"), "Normal WD Etio Pred."] == pytest.approx(0.9739, abs=5e-5)
    assert t.loc[("ce", "MLLeakTop3Acc"), "Normal WD Best Corr. Variable"] == "CentroidDist"
    assert t.loc[("mse", "ThreshAcc"), "High WD Etio Pred."] == pytest.approx(0.9880, abs=5e-5)
    assert f'{t.loc[("ce", "MLLeakAcc"), "Normal WD Etio MSE"]:.2E}' == "2.31E-03"
    # the paper's count: the graph improves on the best correlation by >= 0.03 in 17 of 24 setups
    assert int(t["Normal WD improved"].sum() + t["High WD improved"].sum()) == 17


@pytest.mark.parametrize("name", ["table2", "table3", "table5", "table6", "table7", "table8"])
def test_cli_paper_tables(tmp_path, name):
    out = tmp_path / name
    res = CliRunner().invoke(app, [name, "--paper", "--compare-paper", "--out", str(out)])
    assert res.exit_code == 0, res.output
    from etio.commands.tables import build_table

    # Rows of each table in the paper: 12 setups in Table 2, the 16 ATE queries of Q1-Q9 in Table 3.
    rows = {"table2": 12, "table3": 16, **{f"table{n}": r for n, r in PAPER_ROWS.items()}}[name]
    expected = build_table(name, paper_data=True, compare_paper=True)
    # Read every cell as written: an empty text cell ("Notes", "status") stays an empty string;
    # only the numeric columns turn an empty cell into NaN.
    written = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
    assert len(written) == len(expected) == rows
    assert list(written.columns) == list(expected.columns)
    for column in expected.columns:
        ours, theirs = written[column], expected[column]
        if pd.api.types.is_numeric_dtype(theirs) and not pd.api.types.is_bool_dtype(theirs):
            ours = pd.to_numeric(ours.mask(ours == ""), errors="raise")
            assert ours.astype(float).tolist() == pytest.approx(theirs.astype(float).tolist(), nan_ok=True), column
        else:
            assert ours.astype(str).tolist() == theirs.astype(str).tolist(), column
    text = tables.formatted(expected)
    md = (out / f"{name}.md").read_text().splitlines()
    assert md[0] == f"# {tables.TITLES[name]}"
    assert md[4:] == ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False)]
    tex = [line for line in (out / f"{name}.tex").read_text().splitlines()
           if line.endswith(" \\\\") and "\\caption" not in line and "\\multicolumn" not in line]
    assert len([line for line in tex if line != tex[0]]) == rows       # one line per row besides the header(s)
    import json

    record = json.loads((out / "provenance.json").read_text())
    assert record["config"]["source"] == "authors' published artifacts" and record["config"]["compare_paper"]


def test_cli_table5_from_our_run(tmp_path):
    out = tmp_path / "t5"
    res = CliRunner().invoke(app, ["table5", "--traces", str(EXAMPLE), "--graphs", str(paper.graphs_dir(0.0005)),
                                   "--compare-paper", "--out", str(out)])
    assert res.exit_code == 0, res.output
    t = pd.read_csv(out / "table5.csv")
    assert len(t) == 61
    assert list(t.columns) == ["Attack", "Feature", "ATE (paper recipe)", "paper ATE (paper recipe)",
                               "p-value (paper recipe)", "paper p-value (paper recipe)", "ATE (sound)", "status"]
    # same graphs -> same rows without a causal path as in the paper
    assert ((t["ATE (paper recipe)"] == 0) == (t["paper ATE (paper recipe)"] == 0)).all()


def _run_like_ates(wd: float) -> pd.DataFrame:
    """The authors' ATEs as a run of ours has them: the sound estimator's numbers where estimated
    (here: the paper recipe's, shifted), none where the effect is not identifiable."""
    ates = paper.ates(wd).copy()
    estimated = ates["status"] == "estimated"
    ates.loc[estimated, "ate"] = ates.loc[estimated, "ate_paper"] + 0.01
    ates.loc[estimated, ["ci_low", "ci_high", "p_value"]] = [-1.0, 1.0, 0.5]
    return ates


def test_a_number_no_data_identifies_is_labelled_the_paper_recipes(tmp_path):
    # Table 6 of a run: where the treatment is fixed by its adjustment set, the paper recipe still
    # prints a number (as the paper did); every column says whose number it is, and the sound
    # estimator's cell beside it is empty, its reason in the status and flags. CSV, Markdown, LaTeX.
    table = tables.table6(_run_like_ates(0.0005))
    tables.write_table(table, tmp_path / "t6", "table6", tables.TITLES["table6"], {})
    t = pd.read_csv(tmp_path / "t6" / "table6.csv", keep_default_na=False, dtype=str).set_index(["Attack", "Feature"])
    assert list(t.columns) == ["ATE (paper recipe)", "p-value (paper recipe)", "ATE (sound)", "status", "flags"]
    cell = t.loc[("ShadowAcc", "TestBias")]
    assert cell["status"] == "not identifiable" and cell["flags"] == "fixed by TestLoss, TestVar"
    assert cell["ATE (paper recipe)"] != "" and cell["ATE (sound)"] == ""
    unidentified = t[t["status"] == "not identifiable"]
    assert len(unidentified) > 1 and (unidentified["ATE (sound)"] == "").all()
    assert (t.loc[t["status"] == "estimated", "ATE (sound)"] != "").all()
    md = (tmp_path / "t6" / "table6.md").read_text().splitlines()
    assert md[2] == "| Attack | Feature | ATE (paper recipe) | p-value (paper recipe) | ATE (sound) | status | flags |"
    tex = (tmp_path / "t6" / "table6.tex").read_text()
    assert "\\multicolumn{2}{c}{paper recipe} & sound" in tex
    # The sound table names its estimator in every number's column and prints no number there.
    sound = tables.table6(_run_like_ates(0.0005), estimator="sound").set_index(["Attack", "Feature"])
    assert [c for c in sound.columns if c not in ("status", "flags")] == [
        "ATE (sound)", "CI low (sound)", "CI high (sound)", "p-value (sound)", "q-value (sound)", "RV (sound)"]
    assert sound.loc[("ShadowAcc", "TestBias"), ["ATE (sound)", "p-value (sound)"]].isna().all()
    # Table 3 the same way: each loss's numbers and verdict name their estimator.
    t3 = tables.table3(_run_like_ates(0.0005))
    assert {"CE ATE (paper recipe)", "CE p-value (paper recipe)", "CE ATE (sound)", "CE Result (paper recipe)",
            "MSE ATE (sound)", "MSE Result (paper recipe)"} <= set(t3.columns)
    assert not any(c.endswith((" ATE", " p-value", " Result")) for c in t3.columns)
    assert "CE Result (sound)" in tables.table3(_run_like_ates(0.0005), estimator="sound").columns


def test_the_report_labels_the_paper_recipe_beside_the_empty_sound_cell(tmp_path):
    # The report's Table 6 of a run: headers name the estimator; a non-identifiable effect shows the
    # paper recipe's number, and the sound ATE's empty cell with its reason, on our side only.
    from etio.pipeline.reproduce import _report_table
    from etio.report.document import write_report

    ours = tables.table6(_run_like_ates(0.0005))
    theirs = tables.table6(paper.ates(0.0005))
    report_table = _report_table("table6", tables.TITLES["table6"], ours, theirs)
    md, _html = write_report(tmp_path, tables=[report_table], run_info={}, differences_md="")
    text = md.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Attack"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "Attack", "Feature", "ATE (paper recipe) ours", "ATE (paper recipe) paper", "ATE (sound) ours",
        "ATE (sound) paper", "p-value (paper recipe) ours", "p-value (paper recipe) paper", "status ours",
        "status paper"]
    row = next(line for line in text.splitlines() if line.startswith("| ShadowAcc") and "| TestBias " in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{ours.set_index(['Attack', 'Feature']).loc[('ShadowAcc', 'TestBias'), 'ATE (paper recipe)']:.4f}"
    assert cells[4] == "*(not identifiable: fixed by TestLoss, TestVar)*"
    assert cells[5].startswith("*(not published")
    assert "ATE ours" not in text


def test_unknown_table_name_is_a_clear_error(tmp_path, etio_cli):
    out = tmp_path / "t"
    proc = etio_cli("table", "table4", "--paper", "--out", out)
    assert proc.returncode == 2 and "unknown table 'table4'" in proc.stderr
    assert not out.exists()


def test_failed_table_keeps_previous_output(tmp_path):
    out = tmp_path / "t5"
    assert CliRunner().invoke(app, ["table5", "--paper", "--out", str(out)]).exit_code == 0
    before = (out / "table5.csv").read_text()
    res = CliRunner().invoke(app, ["table5", "--traces", str(EXAMPLE), "--graphs", str(tmp_path / "nope"),
                                   "--out", str(out)])
    assert res.exit_code != 0
    assert (out / "table5.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t5"]


# The identities, typed in: a treatment is fixed when its adjustment set holds both other columns of one.
DEFINING = {"AccDiff": {"TrainAcc", "TestAcc"}, "LossDiff": {"TrainLoss", "TestLoss"},
            "TrainBias2": {"TrainLoss", "TrainVar"}, "TestBias2": {"TestLoss", "TestVar"}}


@pytest.mark.parametrize("wd", [0.0005, 0.005])
def test_flagged_authors_cells_are_those_the_identities_decide(wd):
    ates = paper.ates(wd)
    expected = [s != Status.NO_PATH and f in DEFINING and DEFINING[f] <= set(b.split(";"))
                for s, f, b in zip(ates["status"], ates["feature"], ates["backdoor_set"])]
    flagged = ates["status"] == Status.NOT_IDENTIFIABLE
    assert list(flagged) == expected and flagged.sum() > 0
    # published numbers stay, labelled as the paper's; nothing sound is made up
    assert ates.loc[flagged, "ate_paper"].notna().all() and ates["ate"].isna().all()
    assert ates.loc[flagged, "reason"].str.contains("deterministic function").all()


def test_most_impossible_authors_ates_are_not_identifiable():
    # An accuracy cannot move by more than 1: 15 of the authors' 17 |ATE| > 1 cells are fixed cells.
    big = pd.concat([paper.ates(wd) for wd in (0.0005, 0.005)])
    big = big[big["ate_paper"].abs() > 1]
    assert len(big) == 17 and int((big["status"] == Status.NOT_IDENTIFIABLE).sum()) == 15


def test_table3_paper_shows_the_flags():
    ates = paper.ates(0.0005).set_index(["loss", "attack", "feature"])
    t3 = tables.table3(paper.ates(0.0005))
    pairs = [(hyp.query, attack, feature) for hyp in hypotheses.HYPOTHESES for attack, feature in hyp.ate_queries]
    assert len(t3) == len(pairs)
    for (_, row), (query, attack, feature) in zip(t3.iterrows(), pairs):
        assert row["Query"] == query
        for label, loss in (("CE", "ce"), ("MSE", "mse")):
            cell = ates.loc[(loss, attack, feature)]
            assert row[f"{label} status"] == cell["status"]
            assert row[f"{label} ATE (paper recipe)"] == cell["ate_paper"]
    # Q1 CE: AccDiff on the shadow-model attack, adjusted for TrainAcc and TestAcc
    assert t3.loc[t3["Query"] == "Q1", "CE status"].iloc[0] == Status.NOT_IDENTIFIABLE


def test_table2_mse_code_is_an_empty_value_with_a_reason():
    from etio.report.document import MISSING, SIGN, compare_cells

    normal = paper.results(0.0005).copy()
    hit = (normal["Loss"] == "ce") & (normal["Attack"] == "Oak17Acc")
    normal.loc[hit, "MSE-w_dk"] = -1.0
    t = tables.table2(normal, paper.results(0.005)).set_index(["Loss", "Attack"])
    cell = t.loc[("ce", "ShadowAcc")]
    assert pd.isna(cell["Normal WD Etio MSE"]) and "undirected arc" in cell["Notes"]
    assert t["Normal WD Etio MSE"].drop(("ce", "ShadowAcc")).gt(0).all()
    assert tables.formatted(t.reset_index()).loc[8, "Normal WD Etio MSE"] == "—"
    flags = compare_cells("Normal WD Etio MSE", cell["Normal WD Etio MSE"], 0.000645, 0.1)
    assert flags == (MISSING,) and SIGN not in flags


def test_table3_from_graphs_with_one_not_learned(tmp_path):
    """A slice whose attack column was constant has no graph; `etio table3` still writes the
    table, with that graph's cells marked and its queries ?, and the other cells unchanged."""
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    for dot in paper.graphs_dir(0.0005).glob("*.dot"):
        if not dot.name.startswith("ce-Oak17Acc"):
            (graphs / dot.name).write_text(dot.read_text())
    out = tmp_path / "t3"
    res = CliRunner().invoke(app, ["table3", "--traces", str(EXAMPLE), "--graphs", str(graphs), "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = pd.read_csv(out / "table3.csv", keep_default_na=False, na_values=[""])
    shadow = written[written["Attack"] == "ShadowAcc"]
    assert shadow["Query"].tolist() == ["Q1", "Q2", "Q2", "Q3", "Q4"]
    assert (shadow["CE status"] == Status.NOT_LEARNED).all() and shadow["CE ATE (paper recipe)"].isna().all()
    assert shadow["CE Result (paper recipe)"].tolist() == ["Q1: ?", "Q2: ?", "Q2: ?", "Q3: ?", "Q4: ?"]
    # the cells of the graphs that were learned are those of the full graph set
    from etio.causal.graphs import read_graphs
    from etio.causal.query import estimate_ates
    from etio.core.schema import read_traces

    full = tables.table3(estimate_ates(read_traces(EXAMPLE), read_graphs(paper.graphs_dir(0.0005)), 0.0005))
    others = written["Attack"] != "ShadowAcc"
    ate = "CE ATE (paper recipe)"
    assert written.loc[others, ate].to_numpy() == pytest.approx(full.loc[others.to_numpy(), ate].to_numpy())
    assert written["MSE Result (paper recipe)"].tolist() == full["MSE Result (paper recipe)"].tolist()

