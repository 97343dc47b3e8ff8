"""The comparison report: joins, highlighted differences, self-contained HTML, provenance."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from etio.report import figures
from etio.report import document as report
from etio.core.errors import EtioInputError
from etio.report.document import ReportTable

KEYS = ["Loss", "Attack", "Feature"]


def ate_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    paper = pd.DataFrame([
        ("ce", "Oak17Acc", "AccDiff", 0.2949, 1.54e-136),     # sign change in ours
        ("ce", "Oak17Acc", "LossDiff", 0.0, 0.0),             # zero (no path) in the paper only
        ("ce", "Oak17Acc", "TestVar", 0.9483, 1.40e-04),      # large difference
        ("ce", "Oak17Acc", "TrainSize", -0.1137, 2.03e-13),   # agrees
        ("ce", "Oak17Acc", "TrainVar", 0.0243, 3.20e-02),     # p crosses 0.05
        ("ce", "Oak17Acc", "TrainBias2", 0.0, 0.0),           # both zero
        ("ce", "Oak17Acc", "NumParams", 0.1536, 1.03e-05),    # only in the paper
    ], columns=[*KEYS, "ATE", "p-value"])
    ours = pd.DataFrame([
        ("ce", "Oak17Acc", "AccDiff", -0.2100, 1e-20),
        ("ce", "Oak17Acc", "LossDiff", 0.0812, 0.003),
        ("ce", "Oak17Acc", "TestVar", 0.3100, 2e-3),
        ("ce", "Oak17Acc", "TrainSize", -0.1010, 1e-9),
        ("ce", "Oak17Acc", "TrainVar", 0.0250, 0.40),
        ("ce", "Oak17Acc", "TrainBias2", 0.0, 0.0),
        ("ce", "Oak17Acc", "TestBias2", 2.5, 1e-4),            # only in ours
    ], columns=[*KEYS, "ATE", "p-value"])
    return ours, paper


def verdict_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    paper = pd.DataFrame({"Attack": ["ShadowAcc", "ShadowAcc", "ThreshAcc"],
                          "Feature": ["AccDiff", "NumParams", "LossDiff"],
                          "CE ATE": ["0.30", "0.15", "1.47 (∗)"],
                          "CE Result": ["Q1: ✓", "Q3: ✓", "Q9: ◦"]})
    ours = pd.DataFrame({"Attack": ["ShadowAcc", "ShadowAcc", "ThreshAcc"],
                         "Feature": ["AccDiff", "NumParams", "LossDiff"],
                         "CE ATE": ["0.28", "0", "1.2 (∗)"],
                         "CE Result": ["Q1: ✓", "Q3: ×", "Q9: ◦"]})
    return ours, paper


def predictive_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    paper = pd.DataFrame({"Loss": ["ce", "mse"], "Attack": ["Oak17Acc", "Oak17Acc"],
                          "PredCor": [0.9817, 0.9733], "MSE": [6.45e-4, 5.36e-4]})
    ours = pd.DataFrame({"Loss": ["ce", "mse"], "Attack": ["Oak17Acc", "Oak17Acc"],
                         "PredCor": [0.9700, 0.8000], "MSE": [6.60e-4, 5.30e-4]})
    return ours, paper


def all_tables() -> list[ReportTable]:
    ate_ours, ate_paper = ate_tables()
    v_ours, v_paper = verdict_tables()
    p_ours, p_paper = predictive_tables()
    return [
        ReportTable("Table 2", "Predictive power of the learned graphs", p_ours, p_paper,
                    ["Loss", "Attack"], ["PredCor", "MSE"], "predictive"),
        ReportTable("Table 3", "Prior hypotheses as ATE queries", v_ours, v_paper,
                    ["Attack", "Feature"], ["CE ATE", "CE Result"], "verdict"),
        ReportTable("Table 5", "ATEs, CE-trained models", ate_ours, ate_paper, KEYS, ["ATE", "p-value"], "ate"),
        ReportTable("Table 8", "ATEs, MSE + L2", None, ate_paper, KEYS, ["ATE", "p-value"], "ate"),
    ]


RUN_INFO = {"method": "cv", "backend": "r-compat", "seeds": {"learn": 1, "train": 0},
            "config": {"runs": 20, "k": 3}, "versions": {"pandas": pd.__version__},
            "timings": {"learn_s": 12.5}}


@pytest.fixture
def figure_paths(tmp_path):
    rng = np.random.default_rng(0)
    traces = pd.DataFrame({"Arch": np.repeat(["a", "b"], 6), "AccDiff": rng.uniform(0, 0.5, 12),
                           "Oak17Acc": rng.uniform(0.5, 1, 12)})
    return figures.figure1_gap_vs_attack(traces, tmp_path / "figures" / "fig1-gap-vs-Oak17Acc")


class _Cells(HTMLParser):
    """Collects the report's table cells with their row key and data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], dict[str, str]] = {}
        self.key = self.table = None
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.links.append(attrs[name])
        if tag == "tr":
            self.key, self.table = attrs.get("data-key"), attrs.get("data-table")
        if tag == "td" and "data-column" in attrs:
            self.cells[(self.table, self.key, attrs["data-column"], attrs["data-side"])] = attrs


def test_compare_table_flags_planted_differences():
    comparison = report.compare_table(all_tables()[2])
    flags = {row.key: {c.column: c.flags for c in row.cells} for row in comparison.rows}
    assert flags[("ce", "Oak17Acc", "AccDiff")]["ATE"] == (report.SIGN,)
    assert flags[("ce", "Oak17Acc", "LossDiff")]["ATE"] == (report.ZERO,)
    assert flags[("ce", "Oak17Acc", "LossDiff")]["p-value"] == ()  # p = 0 is the "no path" code
    assert flags[("ce", "Oak17Acc", "TestVar")]["ATE"] == (report.LARGE,)
    assert flags[("ce", "Oak17Acc", "TrainSize")] == {"ATE": (), "p-value": ()}
    assert flags[("ce", "Oak17Acc", "TrainVar")] == {"ATE": (), "p-value": (report.SIGNIFICANCE,)}
    assert flags[("ce", "Oak17Acc", "TrainBias2")] == {"ATE": (), "p-value": ()}
    sides = {row.key[2]: row.side for row in comparison.rows}
    assert sides["NumParams"] == "paper" and sides["TestBias2"] == "ours"
    # Paper order first, then the rows only we have.
    assert [row.key[2] for row in comparison.rows][-2:] == ["NumParams", "TestBias2"]
    counts = comparison.counts
    assert (counts[report.SIGN], counts[report.ZERO], counts[report.LARGE], counts[report.SIGNIFICANCE],
            counts[report.MISSING]) == (1, 1, 1, 1, 2)


def test_compare_verdicts_and_text_ates():
    comparison = report.compare_table(all_tables()[1])
    assert comparison.cell(["ShadowAcc", "NumParams"], "CE Result").flags == (report.VERDICT,)
    assert comparison.cell(["ShadowAcc", "NumParams"], "CE ATE").flags == (report.ZERO,)
    assert comparison.cell(["ShadowAcc", "AccDiff"], "CE Result").flags == ()
    assert comparison.cell(["ShadowAcc", "AccDiff"], "CE ATE").flags == ()
    assert comparison.cell(["ThreshAcc", "LossDiff"], "CE ATE").flags == ()  # "1.2 (∗)" vs "1.47 (∗)"


def test_predictive_tolerance_is_tighter():
    comparison = report.compare_table(all_tables()[0])
    assert comparison.cell(["ce", "Oak17Acc"], "PredCor").flags == ()
    assert comparison.cell(["mse", "Oak17Acc"], "PredCor").flags == (report.LARGE,)
    assert comparison.cell(["ce", "Oak17Acc"], "MSE").flags == ()


@pytest.mark.parametrize("ours, paper, expected", [
    (0.3, -0.3, (report.SIGN,)), (0.0, 0.2, (report.ZERO,)), (-0.2, 0.0, (report.ZERO,)),
    (0.0, 0.0, ()), (0.30, 0.29, ()), (1.0, 0.4, (report.LARGE,)), (np.nan, 0.2, (report.MISSING,)),
    ("✓", "×", (report.VERDICT,)), ("Q2: ◦", "Q2: ◦", ()), ("-0.05 (∗)", "0.06", (report.SIGN,)),
])
def test_compare_cells(ours, paper, expected):
    assert report.compare_cells("ATE", ours, paper, 0.5) == expected


def test_write_report_markdown_marks_cells(tmp_path, figure_paths):
    md_path, _ = report.write_report(tmp_path, tables=all_tables(), run_info=RUN_INFO,
                                     differences_md=report.default_differences_md("cv"), figures=figure_paths)
    md = md_path.read_text()
    for name in ("Table 2", "Table 3", "Table 5", "Table 8"):
        assert f"## {name}: " in md
    table5 = md[md.index("## Table 5"):md.index("## Table 8")]
    lines = {line.split("|")[3].strip(): line for line in table5.splitlines()
             if line.startswith("| ce ") and "Oak17Acc" in line and len(line.split("|")) > 6}
    assert "**-0.2100** ⚠ sign change" in lines["AccDiff"]
    assert "**0.0812** ⚠ zero vs non-zero" in lines["LossDiff"]
    assert "**0.3100** ⚠ large difference" in lines["TestVar"]
    assert "⚠" not in lines["TrainSize"]
    assert "only in the paper" in lines["NumParams"] and "only in ours" in lines["TestBias2"]
    verdict = next(line for line in md.splitlines() if line.startswith("| ShadowAcc") and "NumParams" in line)
    assert "**Q3: ×** ⚠ verdict change" in verdict
    # Summary table at the top, with the per-table counts.
    summary = md[md.index("## Summary"):md.index("## Table 2")]
    row5 = next(line for line in summary.splitlines() if line.startswith("| Table 5"))
    assert [c.strip() for c in row5.split("|")[3:10]] == ["6", "1", "1", "0", "1", "1", "2"]
    row3 = next(line for line in summary.splitlines() if line.startswith("| Table 3"))
    assert [c.strip() for c in row3.split("|")[3:6]] == ["3", "0", "1"] and row3.split("|")[6].strip() == "1"
    assert "6 rows compared (1 only in ours, 1 only in the paper): 1 sign change, 1 zero vs non-zero" in md
    table8 = md[md.index("## Table 8"):md.index("## Figures")]
    assert "7 rows in the paper; this run did not produce the table." in table8 and "only in" not in table8
    # Figures, differences and provenance.
    assert "![" in md and "(figures/fig1-gap-vs-Oak17Acc.png)" in md
    assert "## Differences between the paper and the authors' code" in md
    assert "| seeds.learn" in md and "| method" in md
    # When and how long: provenance.json only, so that a rerun writes the same report bytes.
    assert "| timings.learn_s" not in md and "provenance.json" in md


def test_write_report_html_is_self_contained_and_marks_cells(tmp_path, figure_paths):
    _, html_path = report.write_report(tmp_path, tables=all_tables(), run_info=RUN_INFO,
                                       differences_md=report.default_differences_md("boot"),
                                       figures=figure_paths)
    page = html_path.read_text()
    parser = _Cells()
    parser.feed(page)
    assert not [u for u in parser.links if re.match(r"https?:", u)]
    assert "<link" not in page and "<script" not in page
    outside = [u for u in parser.links if not u.startswith("#")]   # in-page anchors of the contents
    images = [u for u in outside if u.startswith("data:image/svg+xml;base64,")]
    assert len(images) == 1 and len(outside) == 1
    assert base64.b64decode(images[0].split(",", 1)[1]) == figure_paths[0].read_bytes()
    cells = parser.cells
    assert "flag-sign" in cells[("Table 5", "ce|Oak17Acc|AccDiff", "ATE", "ours")]["class"]
    assert "flag" not in cells[("Table 5", "ce|Oak17Acc|AccDiff", "ATE", "paper")]["class"]
    assert "flag-zero" in cells[("Table 5", "ce|Oak17Acc|LossDiff", "ATE", "ours")]["class"]
    assert "flag-large" in cells[("Table 5", "ce|Oak17Acc|TestVar", "ATE", "ours")]["class"]
    assert "flag-signif" in cells[("Table 5", "ce|Oak17Acc|TrainVar", "p-value", "ours")]["class"]
    assert "flag" not in cells[("Table 5", "ce|Oak17Acc|TrainSize", "ATE", "ours")]["class"]
    assert "flag-verdict" in cells[("Table 3", "ShadowAcc|NumParams", "CE Result", "ours")]["class"]
    assert cells[("Table 3", "ShadowAcc|NumParams", "CE Result", "ours")]["data-flags"] == report.VERDICT
    for name in ("Table 2", "Table 3", "Table 5", "Table 8"):
        anchor = name.lower().replace(" ", "-")
        assert f'<h2 id="{anchor}">{name}: ' in page and f'<a href="#{anchor}">' in page
    assert "<h2>Differences between the paper and the authors&#x27; code</h2>" in page \
        or "<h2>Differences between the paper and the authors' code</h2>" in page
    assert '<h2 id="provenance">Provenance</h2>' in page and "r-compat" in page


def test_report_embeds_png_when_no_svg(tmp_path, figure_paths):
    md_path, html_path = report.write_report(tmp_path, tables=all_tables()[:1], run_info={}, differences_md="",
                                             figures=[(figure_paths[1], "my caption")])
    parser = _Cells()
    parser.feed(html_path.read_text())
    links = [u for u in parser.links if not u.startswith("#")]
    assert len(links) == 1 and links[0].startswith("data:image/png;base64,")
    assert base64.b64decode(links[0].split(",", 1)[1]) == figure_paths[1].read_bytes()
    assert "my caption" in html_path.read_text() and "![my caption](figures/" in md_path.read_text()


def test_bad_input_writes_nothing(tmp_path, figure_paths):
    ours, paper = ate_tables()
    bad = ReportTable("Table 5", "ATEs", ours.drop(columns="p-value"), paper, KEYS, ["ATE", "p-value"], "ate")
    with pytest.raises(EtioInputError, match="Table 5: our table has no column.*'p-value'"):
        report.write_report(tmp_path / "r", tables=[bad], run_info={}, differences_md="")
    duplicated = ReportTable("Table 5", "ATEs", pd.concat([ours, ours.iloc[:1]]), paper, KEYS, ["ATE"], "ate")
    with pytest.raises(EtioInputError, match="two rows with key"):
        report.write_report(tmp_path / "r", tables=[duplicated], run_info={}, differences_md="")
    with pytest.raises(EtioInputError, match="unknown table kind"):
        report.write_report(tmp_path / "r", tables=[ReportTable("T", "t", ours, paper, KEYS, ["ATE"], "x")],
                            run_info={}, differences_md="")
    with pytest.raises(EtioInputError, match="does not exist"):
        report.write_report(tmp_path / "r", tables=all_tables(), run_info={}, differences_md="",
                            figures=[tmp_path / "nope.png"])
    assert not (tmp_path / "r").exists()


def test_default_differences_cover_every_known_difference():
    text = report.default_differences_md("cv")
    for topic in ("bootstrap", "Predictive power", "MemGuard", "Variance estimator", "fraction of finite",
                  "constraints", "Oak17", "29 of the 30", "repeat_0", "dowhy"):
        assert topic.lower() in text.lower(), topic
    assert text.count("- **etio:**") == 11
    assert "**cv**" in text and "**boot**" in report.default_differences_md("boot")
    with pytest.raises(EtioInputError, match="'bootstrap'"):
        report.default_differences_md("bootstrap")


def test_markdown_table_formatter():
    text = report.markdown_table(["a", "value"], [["x|y", "1.0"], ["long text", "22"]], ["l", "r"])
    lines = text.splitlines()
    assert lines[0] == "| a         | value |"
    assert lines[1] == "| --------- | ----: |"
    assert lines[2] == "| x\\|y      |   1.0 |"
    assert len({len(line) for line in lines}) == 1


def test_markdown_to_html_by_markdown_it():
    page = report.markdown_to_html(
        "# Top\n\n## Head\n\nSome *it* and **bold** `x<y` [site](https://example.org).\n\n"
        "- one\n  continued\n- two\n\n1. first\n2. second\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h1>" not in page and "<h2>Top</h2>" in page and "<h2>Head</h2>" in page  # the title is the only h1
    assert "<em>it</em>" in page and "<strong>bold</strong>" in page and "<code>x&lt;y</code>" in page
    assert "href" not in page and "site (https://example.org)" in page       # no link out of the report
    assert report.markdown_to_html("see [the graphs](#graphs)").strip() == '<p>see <a href="#graphs">the graphs</a></p>'
    assert re.search(r"<ul>\s*<li>one\s+continued</li>\s*<li>two</li>\s*</ul>", page)
    assert re.search(r"<ol>\s*<li>first</li>\s*<li>second</li>\s*</ol>", page)
    assert re.search(r"<th>a</th>\s*<th>b</th>.*<td>1</td>\s*<td>2</td>", page, re.S)


def test_format_value():
    assert report.format_value(0.29494, "ATE") == "0.2949"
    assert report.format_value(1.54e-136, "p-value") == "1.54E-136"
    assert report.format_value(6.45e-4, "MSE") == "6.45E-04"
    assert report.format_value(0.0, "ATE") == "0.0000"
    assert report.format_value(-0.0, "ATE") == "0.0000"
    assert report.format_value(np.nan, "ATE") == ""          # empty; the report prints the reason beside it
    assert report.format_value("Q1: ✓", "CE Result") == "Q1: ✓"


# --------------------------------------------------------------------------------------
# The headline, the agreement summary and undefined values
# --------------------------------------------------------------------------------------

def _run_tables():
    """Tables named as the pipeline names them, with the undefined values a run produces:
    a p-value without a causal path (NaN) and the MSE of a graph with an undirected arc (-1)."""
    from etio.report import paper, tables

    paper_t3 = tables.table3(paper.ates(0.0005))
    paper_t5 = tables.table5(paper.ates(0.0005))
    ours_t5 = paper_t5.copy()
    ate, p = tables.PAPER_ATE, tables.PAPER_P_VALUE
    ours_t5.loc[0, [ate, p, "status"]] = [0.0, np.nan, "no causal path"]
    flipped = next(i for i in ours_t5.index[1:] if ours_t5.loc[i, ate] != 0)
    ours_t5.loc[flipped, ate] = -ours_t5.loc[flipped, ate]
    p2 = pd.DataFrame({"Loss": ["ce"], "Attack": ["ShadowAcc"], "Normal WD Etio MSE": [6.45e-4]})
    o2 = pd.DataFrame({"Loss": ["ce"], "Attack": ["ShadowAcc"], "Normal WD Etio MSE": [-1.0]})
    return [
        ReportTable("table2", "Table 2: predictive power", o2, p2, ["Loss", "Attack"], ["Normal WD Etio MSE"],
                    "predictive"),
        ReportTable("table3", "Table 3: hypotheses", paper_t3, paper_t3, ["Query", "Attack", "Feature"],
                    [f"CE {ate}", "CE Result (paper recipe)", f"MSE {ate}", "MSE Result (paper recipe)"], "verdict"),
        ReportTable("table5", "Table 5: ATEs", ours_t5, paper_t5, ["Attack", "Feature"], [ate, p], "ate"),
    ]


DIGITS = report.RunFacts(datasets=("digits",), architectures=("mlp_1hidden",),
                         rows_per_slice={"ce wd=0.0005": 108, "mse wd=0.0005": 108}, backend="bnlearn-compat 4.7 (etio r/compat), results as bnlearn 4.7",
                         method="boot")


def test_report_of_a_run_states_its_dataset_and_the_papers_and_has_no_sentinel(tmp_path):
    md_path, html_path = report.write_report(tmp_path, tables=_run_tables(), run_info=RUN_INFO,
                                             differences_md=report.default_differences_md("boot"), facts=DIGITS)
    md, page = md_path.read_text(), html_path.read_text()
    head = md[:md.index("## Summary")]
    assert "Not like-for-like with the paper" in head
    assert "| dataset " in head and "digits" in head and "cifar10, cifar100, mnist" in head
    assert "ce wd=0.0005: 108" in head and "ce wd=0.0005: 280" in head
    assert "Not like-for-like" in page and "cifar10, cifar100, mnist" in page
    # The agreement summary: Table 3 against itself agrees in all 18 cells; one of the ATE signs flipped.
    assert "Table 3 verdicts agreeing with the paper: **18 of 18**" in head
    signs = re.search(r"Tables 5-8\): \*\*(\d+) of (\d+)\*\*", head)
    assert signs and int(signs.group(2)) - int(signs.group(1)) == 1
    # Undefined values are empty cells with their reason; no placeholder number or "nan" anywhere.
    for text in (md, page):
        assert not re.search(r"\bnan\b", text, re.IGNORECASE)
        assert "-1.0000" not in text and "-1.00E+00" not in text
    assert "*(no causal path)*" in md and "*(averaged graph keeps an undirected arc)*" in md
    # No table can push the page wider than the window: each scrolls in its own box.
    assert page.count("<table") == page.count('<div class="scroll"><table') > 3
    assert '<span class="reason">averaged graph keeps an undirected arc</span>' in page
    # The glossary gives each variable's names once: report, paper, trace column, R.
    names = md[md.index("## Names"):md.index("## Provenance")]
    assert re.search(r"\| TrainBias +\| TrainBias +\| TrainBias2 +\| TrainBias2 +\|", names)
    assert re.search(r"\| CentroidDist \(top-3\) +\| CentroidDist +\| CentroidDistance\(sorted_3\) +\| "
                     r"CentroidDistance\.sorted_3\. +\|", names)
    # Contents first; every table reachable from it.
    assert md.index("## Contents") < md.index("## What this run is") < md.index("## Agreement with the paper")
    for anchor in ("table2", "table3", "table5", "provenance"):
        assert f"](#{anchor})" in md and f'<a href="#{anchor}">' in page


def test_like_for_like_run(tmp_path):
    same = report.RunFacts(datasets=("mnist", "cifar10", "cifar100"), architectures=report.PAPER_FACTS.architectures,
                           rows_per_slice=report.PAPER_FACTS.rows_per_slice, method="cv")
    md_path, _ = report.write_report(tmp_path, tables=_run_tables(), run_info={}, differences_md="", facts=same)
    assert "**Like-for-like with the paper:**" in md_path.read_text()


def test_paper_mode_says_what_it_is_and_claims_no_comparison(tmp_path):
    from dataclasses import replace

    only_paper = [replace(t, ours=None, note="the paper's values") for t in _run_tables()]
    md_path, html_path = report.write_report(tmp_path, tables=only_paper, run_info={}, differences_md="", mode="paper")
    md = md_path.read_text()
    assert "This report is the paper itself" in md and "nothing is compared" in md
    assert "rows compared" not in md and "sign change" not in md.split("## Table 2")[0]
    assert "Agreement with the paper" in md and "not a comparison" in md


def test_graph_section_lists_shd_and_parents(tmp_path):
    from etio.report.comparison import compare_graphs

    authors = nx_graph([("A", "Oak17Acc"), ("B", "Oak17Acc")])
    ours = nx_graph([("A", "Oak17Acc"), ("C", "Oak17Acc")])
    comparison = compare_graphs(ours, authors, "Oak17Acc", weight_decay=0.0005, loss="ce")
    md_path, html_path = report.write_report(tmp_path, tables=_run_tables(), run_info={}, differences_md="",
                                             facts=DIGITS, graphs=[comparison])
    md = md_path.read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 0.0005 ") and "ShadowAcc" in line)
    assert [c.strip() for c in row.split("|")[1:8]] == ["0.0005", "ce", "ShadowAcc", "2", "2 / 2", "B", "C"]
    assert "**0 of 1** graphs give the attack the same parents" in md


def nx_graph(arcs):
    import networkx as nx

    return nx.DiGraph(arcs)


def test_report_sections_slot(tmp_path, figure_paths):
    section = report.ReportSection("forest", "ATEs with intervals", "Some **text**.", tuple(figure_paths))
    md_path, html_path = report.write_report(tmp_path, tables=_run_tables(), run_info={}, differences_md="",
                                             facts=DIGITS, sections=[section])
    md, page = md_path.read_text(), html_path.read_text()
    assert md.index("## Agreement with the paper") < md.index("## ATEs with intervals") < md.index("## Summary")
    assert '<h2 id="forest">ATEs with intervals</h2>' in page and "<strong>text</strong>" in page
    assert "](#forest)" in md


def test_docs_quote_the_report_differences_section_as_rendered():
    from etio.report.document import differences

    page = differences.DOCS_PAGE.read_text()
    assert differences.docs_text(page) == page, \
        "docs/differences.md's quotation is stale: regenerate it with `python -m etio.report.document`"
    quoted = page[page.index(differences.BEGIN):page.index(differences.END)]
    assert "> ### MemGuard" in quoted and "> Structure-learning networks of this run: **boot**." in quoted


def test_a_stale_quotation_of_the_differences_is_found():
    from etio.report.document import differences

    page = differences.DOCS_PAGE.read_text()
    stale = page.replace("> ### Variance estimator", "> ### Variance estimators", 1)
    assert stale != page and differences.docs_text(stale) == page
    with pytest.raises(ValueError, match="no '<!-- begin"):
        differences.docs_text("# a page without the markers\n")


def test_the_differences_text_has_one_source():
    from etio.core.paths import PACKAGE_DIR

    template = (PACKAGE_DIR / "report" / "templates" / "differences.md.j2").read_text()
    sentence = "reuses the 60 networks fitted during hold-out cross-validation"
    assert sentence in template and sentence in report.default_differences_md("cv")
    assert not [p for p in PACKAGE_DIR.rglob("*.py") if sentence in p.read_text()]


def test_the_page_embeds_the_css_file(tmp_path):
    from etio.core.paths import PACKAGE_DIR

    css = (PACKAGE_DIR / "report" / "templates" / "report.css").read_text()
    assert "td.flag-sign{background:#fdd9d7}" in css
    _md_path, html_path = report.write_report(tmp_path, tables=all_tables()[:1], run_info={}, differences_md="")
    assert f"<style>{css}</style>" in html_path.read_text()
