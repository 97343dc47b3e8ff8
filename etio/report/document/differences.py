"""The report's section on where the paper and the authors' code disagree, and what etio does.

The text has one source, the template ``etio/report/templates/differences.md.j2``: every report
renders it for its run's structure-learning method, and ``docs/differences.md`` quotes it, rendered
for the default method, between two markers. ``python -m etio.report.document``
rewrites that quotation (a test fails while it is stale).
"""

from __future__ import annotations

from pathlib import Path

from etio.core.paths import PACKAGE_DIR

#: The page of the checkout that quotes the section, and the markers around the quotation.
DOCS_PAGE = PACKAGE_DIR.parent / "docs" / "differences.md"
BEGIN = "<!-- begin: the report's section, generated from etio/report/templates/differences.md.j2 -->"
END = "<!-- end: the report's section -->"


def default_differences_md(method: str) -> str:
    """The report section on where the paper and the authors' code disagree, and what this run did.

    ``method`` is the structure-learning scheme of the run: ``"boot"`` (bootstrap networks, as
    the paper describes) or ``"cv"`` (cross-validation networks, as the authors' code runs).
    """
    from etio.causal.settings import check_method
    from etio.report.document.rendering import environment

    check_method(method)
    text = environment().get_template("differences.md.j2").render(method=method)
    return text.rstrip() + "\n"


def docs_quotation(method: str = "boot") -> str:
    """The section as ``docs/differences.md`` quotes it (a Markdown block quote between the markers)."""
    quoted = "\n".join(f"> {line}".rstrip() for line in default_differences_md(method).splitlines())
    return f"{BEGIN}\n{quoted}\n{END}"


def docs_text(current: str) -> str:
    """``current`` (the text of ``docs/differences.md``) with its quotation of the section regenerated."""
    start, end = current.find(BEGIN), current.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOCS_PAGE.name} has no '{BEGIN}' ... '{END}' block")
    return current[:start] + docs_quotation() + current[end + len(END):]


def write_docs(page: Path = DOCS_PAGE) -> Path:
    """Regenerate the quotation in ``docs/differences.md``; returns the page's path."""
    page.write_text(docs_text(page.read_text()))
    return page

