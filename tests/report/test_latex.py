"""LaTeX tables: every paper table compiles with pdflatex in a plain article and fits the page;
every special character is escaped."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from etio.report import paper, tables

#: The test set-up (scripts/setup-r.sh) installs texlive, so CI compiles; a bare machine skips.
requires_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")

SPECIALS = "$ { } ~ ^ \\ & % _ #"


def _paper_tables() -> dict[str, pd.DataFrame]:
    return {
        "table2": tables.table2(paper.results(tables.NORMAL_WD), paper.results(tables.HIGH_WD)),
        "table3": tables.table3(paper.ates(tables.NORMAL_WD)),
        **{f"table{n}": tables.ate_table(paper.ates(wd), loss, wd) for n, (loss, wd) in tables.ATE_TABLES.items()},
    }


def _compile(tmp_path, body: str) -> str:
    """pdflatex on a plain article holding ``body``; returns the log (fails the test on error)."""
    (tmp_path / "t.tex").write_text(body)
    packages = ",".join(tables.LATEX_PACKAGES)
    (tmp_path / "doc.tex").write_text(
        f"\\documentclass{{article}}\n\\usepackage{{{packages}}}\n\\begin{{document}}\n\\input{{t}}\n\\end{{document}}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace") if (tmp_path / "doc.log").is_file() else result.stdout
    assert result.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
    return log


def test_latex_escape_covers_every_special_character():
    escaped = tables.latex_escape(SPECIALS)
    assert escaped == (r"\$ \{ \} \textasciitilde{} \textasciicircum{} \textbackslash{} \& \% \_ \#")
    assert tables.latex_escape("Q1: ✓") == r"Q1: \checkmark{}"


def test_tex_carries_packages_label_grouped_headers_and_right_aligned_numbers():
    t2 = _paper_tables()["table2"]
    tex = tables.to_latex(t2, tables.TITLES["table2"], label="tab:table2")
    assert tex.startswith("% etio table; needs \\usepackage{booktabs,amssymb,graphicx,longtable}")
    assert r"\label{tab:table2}" in tex
    assert r"\caption{Predictive power" in tex          # LaTeX numbers the table: no "Table 2:" twice
    assert r"\multicolumn{5}{c}{Normal WD}" in tex and r"\multicolumn{5}{c}{High WD}" in tex
    # Loss, Attack and the variable are text; the correlations and MSE are numbers.
    assert r"\begin{tabular}{lllrrrllrrrll}" in tex   # ... and the Notes column


@requires_pdflatex
@pytest.mark.parametrize("name", tables.TABLE_NAMES)
def test_every_paper_table_compiles_and_fits_the_page(tmp_path, name):
    log = _compile(tmp_path, tables.to_latex(_paper_tables()[name], tables.TITLES[name], label=f"tab:{name}"))
    assert "Overfull \\hbox" not in log, "the table runs off the page"


@requires_pdflatex
@pytest.mark.parametrize("name", tables.TABLE_NAMES)
def test_tables_beside_the_papers_fit_the_page(tmp_path, name):
    from etio.commands.tables import build_table

    table = build_table(name, paper_data=True, compare_paper=True)
    log = _compile(tmp_path, tables.to_latex(table, tables.TITLES[name], label=f"tab:{name}"))
    assert "Overfull \\hbox" not in log, "the table runs off the page"


@requires_pdflatex
def test_special_characters_compile(tmp_path):
    table = pd.DataFrame({f"col {SPECIALS}": [f"value {SPECIALS}", "✓ × ◦ — ²"], "number": [1.5, -0.25]})
    _compile(tmp_path, tables.to_latex(table, f"caption {SPECIALS}", label="tab:specials"))
