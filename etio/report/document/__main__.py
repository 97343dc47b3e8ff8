"""``python -m etio.report.document``: regenerate docs/differences.md's quotation of the report's section."""

from etio.report.document.differences import write_docs

print(write_docs())
