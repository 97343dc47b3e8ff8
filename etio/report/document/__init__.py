"""The comparison report of a reproduction run: ``report.md`` and a self-contained ``report.html``.

For every paper table the report puts our value beside the paper's (rows joined on the table's
key columns) and marks the differences that change a conclusion. It opens with what the run is
against what the paper ran (and whether the comparison is like-for-like), then the agreement in
three numbers (Table 3 verdicts, ATE signs, graphs), then the tables, our graphs beside the
authors', the figures and the paper/code differences.

One module per part:

- :mod:`~etio.report.document.comparing`: the table types, the difference flags, the comparison;
- :mod:`~etio.report.document.formatting`: cells, Markdown tables, provenance lists, figures;
- :mod:`~etio.report.document.facts`: what the run is, against what the paper ran;
- :mod:`~etio.report.document.rendering`: the Jinja2 templates of ``etio/report/templates`` (the
  CSS is ``report.css`` there), Markdown to HTML, :func:`write_report`;
- :mod:`~etio.report.document.differences`: the paper/code differences section, whose one source
  is ``templates/differences.md.j2``.

The HTML embeds its figures (as base64 data: SVG when there is one, else PNG) and its CSS, so the
single file is complete. Both files are written atomically.
"""

from etio.report.document.comparing import (FLAG_CLASS, FLAGS, KINDS, LARGE, MISSING, NO_PATH_REASON,
                                            RELATIVE_TOLERANCE, SENTINELS, SIGN, SIGNIFICANCE, SIGNIFICANCE_LEVEL,
                                            VERDICT, ZERO, ZERO_TOLERANCE, ComparedCell, ComparedRow, ReportTable,
                                            TableComparison, Undefined, check_table, compare_cells, compare_table,
                                            defined, parse_number, parse_verdict)
from etio.report.document.differences import default_differences_md
from etio.report.document.facts import PAPER_FACTS, RunFacts
from etio.report.document.formatting import (RUN_ONLY_PROVENANCE, format_value, markdown_table,
                                             report_provenance)
from etio.report.document.rendering import ReportSection, markdown_to_html, render, write_report

__all__ = ["FLAG_CLASS", "FLAGS", "KINDS", "LARGE", "MISSING", "NO_PATH_REASON", "PAPER_FACTS", "RELATIVE_TOLERANCE",
           "RUN_ONLY_PROVENANCE", "SENTINELS", "SIGN", "SIGNIFICANCE", "SIGNIFICANCE_LEVEL", "VERDICT", "ZERO",
           "ZERO_TOLERANCE", "ComparedCell", "ComparedRow", "ReportSection", "ReportTable", "RunFacts",
           "TableComparison", "Undefined", "check_table", "compare_cells", "compare_table", "default_differences_md",
           "defined", "format_value", "markdown_table", "markdown_to_html", "parse_number", "parse_verdict",
           "render", "report_provenance", "write_report"]
