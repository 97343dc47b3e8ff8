"""Rendering the report: the Jinja2 templates in ``etio/report/templates`` (the page's CSS is
``report.css`` there), Markdown to HTML by markdown-it, and :func:`write_report`."""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from etio import __version__
from etio.core import layout
from etio.core.errors import EtioInputError, check_choice
from etio.core.provenance import atomic_write_text
from etio.core.vocabulary import display
from etio.report.comparison import Agreement, GraphComparison, agreement_summary, sign_agreement
from etio.report.document.comparing import FLAG_CLASS, FLAGS, ReportTable, TableComparison, compare_table
from etio.report.document.facts import RunFacts, headline
from etio.report.document.formatting import (LEGEND, both_sides, cell_text, column_headers, data_uri,
                                             figure_entries, flatten, md_cell, shown_sides, summary_rows,
                                             summary_text, markdown_table, report_provenance)


@dataclass(frozen=True)
class ReportSection:
    """A section another stage adds to the report (e.g. forest plots of the ATEs, a table of
    verdict changes): ``markdown`` body and figures, placed after the agreement summary."""

    anchor: str
    title: str
    markdown: str
    figures: tuple[Path | str | tuple[Path | str, str], ...] = ()


def _markdown_it():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    # Links out of the report are shown as text with their address: the report must not point
    # outside itself. Links to its own sections (#anchor) stay links.
    def link_open(renderer, tokens, idx, options, env):
        href = str(tokens[idx].attrGet("href") or "")
        env.setdefault("hrefs", []).append(href)
        return f'<a href="{html.escape(href)}">' if href.startswith("#") else ""

    def link_close(renderer, tokens, idx, options, env):
        href = env["hrefs"].pop()
        return "</a>" if href.startswith("#") else f" ({html.escape(href)})"

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("link_close", link_close)
    return md


def markdown_to_html(text: str) -> str:
    """Markdown (CommonMark with pipe tables, by markdown-it) to HTML; headings start at h2, the
    page's only h1 being its title; links become text; a table scrolls in its own box."""
    page = _markdown_it().render(text)
    page = page.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")
    return re.sub(r"<(/?)h1>", r"<\1h2>", page)


def environment():
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.PackageLoader("etio.report", "templates"),
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["md"] = lambda text: Markup(markdown_to_html(text))
    # One paragraph of Markdown inline (a list item, the legend): without its <p>.
    env.filters["inline_md"] = lambda text: Markup(re.sub(r"^<p>(.*)</p>\n?$", r"\1", markdown_to_html(text),
                                                          flags=re.S))
    return env


def _css(env) -> str:
    """The page's style sheet, ``templates/report.css``, embedded in the HTML."""
    return env.loader.get_source(env, "report.css")[0]


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _html_rows(comp: TableComparison) -> list[dict[str, Any]]:
    table = comp.table
    rows = []
    for row in comp.rows:
        cells = []
        for cell in row.cells:
            for side in shown_sides(table):
                text, reason = cell_text(cell, row, side)
                flags = cell.flags if side == "ours" else ()
                classes = ["num", side] + (["flag"] + [f"flag-{FLAG_CLASS[f]}" for f in flags] if flags else []) \
                    + (["undefined"] if reason else [])
                cells.append({"text": text, "reason": reason, "classes": " ".join(classes), "flags": flags,
                              "title": ", ".join(flags) or reason,
                              "column": cell.column, "side": side})
        only = row.side if row.side != "both" and both_sides(table) else None
        rows.append({"key": list(row.key), "data_key": "|".join(row.key), "cells": cells,
                     "only": {"ours": "ours", "paper": "the paper"}.get(only or "")})
    return rows


def _md_table(comp: TableComparison) -> str:
    table = comp.table
    body = []
    for row in comp.rows:
        cells = list(row.key)
        for cell in row.cells:
            cells += [md_cell(cell, row, side) for side in shown_sides(table)]
        if row.side != "both" and both_sides(table):
            cells[0] += f" (only in {'ours' if row.side == 'ours' else 'the paper'})"
        body.append(cells)
    return markdown_table(column_headers(table), body,
                          ["l"] * len(table.key_columns) + ["r"] * len(shown_sides(table)) * len(table.value_columns))


def _agreement_lines(agreement: Agreement | None, mode: str) -> list[str]:
    if mode == "paper":
        return ["This report rebuilds the paper's tables and graphs from the authors' published artifacts. "
                "It is the reference the runs are compared with, not a comparison: no run of ours is in it."]
    if agreement is None:
        return ["Nothing of this run could be compared with the paper."]
    lines = []
    if agreement.verdicts_agreeing is None:
        lines.append(f"Table 3 verdicts: not computed (this run has no weight decay 5e-4 ATEs); "
                     f"the paper has {agreement.verdicts_total}.")
    else:
        lines.append(f"Table 3 verdicts agreeing with the paper: **{agreement.verdicts_agreeing} of "
                     f"{agreement.verdicts_total}** (queries Q1-Q9 × CE/MSE).")
    if agreement.signs_compared is None:
        lines.append("Sign agreement of ATEs: not computed (no ATE table of this run).")
    elif agreement.signs_compared == 0:
        lines.append("Sign agreement of ATEs: no ATE is non-zero on both sides, so no sign can be compared.")
    else:
        lines.append(f"Sign agreement of the ATEs non-zero on both sides (Tables 5-8): **{agreement.signs_agreeing} of "
                     f"{agreement.signs_compared}**.")
    if agreement.graphs:
        lines.append(f"Graph agreement: **{agreement.graphs_with_same_parents} of {len(agreement.graphs)}** graphs give "
                     f"the attack the same parents as the authors' graph; median structural Hamming distance "
                     f"**{agreement.median_shd:g}** (see [Graphs against the authors' graphs](#graphs)).")
    else:
        lines.append("Graph agreement: not computed (no graph of this run).")
    return lines


def _names() -> list[list[str]]:
    """The vocabulary as the report's glossary: one row per variable and attack."""
    from etio.core.vocabulary import ATTACKS_VOCABULARY, VARIABLES

    return [[e.display, e.symbol, e.column, e.r_name, e.description] for e in (*ATTACKS_VOCABULARY, *VARIABLES)]


def render(comparisons: Sequence[TableComparison], run_info: Mapping[str, Any], differences_md: str,
           figures: Sequence[tuple[Path, Path | None, str]], out_dir: Path, *, facts: RunFacts | None = None,
           mode: str = "run", agreement: Agreement | None = None, graphs: Sequence[GraphComparison] = (),
           sections: Sequence[ReportSection] = ()) -> tuple[str, str]:
    """The Markdown and HTML text of the report."""
    def rel(path: Path | str) -> str:
        return os.path.relpath(path, out_dir)

    tables = [{
        "anchor": _anchor(c.table.name), "name": c.table.name, "title": c.table.title, "summary": summary_text(c),
        "heading": c.table.title if c.table.title.startswith("Table ") else f"{c.table.name}: {c.table.title}",
        "headers": column_headers(c.table), "key_count": len(c.table.key_columns), "rows": _html_rows(c),
        "markdown": _md_table(c) if c.rows else "", "empty": not c.rows,
    } for c in comparisons]
    figure_items = [{"caption": caption, "md_path": rel(main), "svg": rel(svg) if svg and svg != main else None,
                     "data_uri": data_uri(svg or main)} for main, svg, caption in figures]
    graph_items = [{
        "weight_decay": f"{g.weight_decay:g}", "loss": g.loss, "attack": display(g.attack), "shd": g.shd,
        "arcs": f"{g.arcs_ours} / {g.arcs_authors}",
        "missing": ", ".join(display(p) for p in g.missing_parents) or "none",
        "extra": ", ".join(display(p) for p in g.extra_parents) or "none",
        "figure_md": rel(g.figure) if g.figure else None,
        "data_uri": data_uri(Path(g.figure).with_suffix(".svg")) if g.figure else None,
    } for g in graphs]
    section_items = [{"anchor": s.anchor, "title": s.title, "markdown": s.markdown.strip(),
                      "figures": [{"caption": cap, "md_path": rel(m), "data_uri": data_uri(svg or m)}
                                  for m, svg, cap in figure_entries(s.figures)]} for s in sections]
    toc = [("what-this-run-is", "What this run is"), ("agreement", "Agreement with the paper")]
    toc += [(s["anchor"], s["title"]) for s in section_items]
    toc += [("summary", "Differences per table" if mode == "run" else "Tables")]
    toc += [(t["anchor"], t["heading"]) for t in tables]
    if graph_items:
        toc.append(("graphs", "Graphs against the authors' graphs"))
    if figure_items:
        toc.append(("figures", "Figures"))
    toc += [("differences", "Differences between the paper and the authors' code"), ("names", "Names"),
            ("provenance", "Provenance")]
    env = environment()
    context = {
        "version": __version__, "method": run_info.get("method"), "mode": mode,
        "data_notice": run_info.get("data_notice"),
        "headline": headline(facts, mode), "agreement": _agreement_lines(agreement, mode), "toc": toc,
        "legend": LEGEND, "flags": FLAGS, "summary_rows": summary_rows(comparisons),
        "summary_markdown": markdown_table(["table", "title", "rows compared", *FLAGS], summary_rows(comparisons),
                                           ["l", "l"] + ["r"] * (1 + len(FLAGS))),
        "tables": tables, "graphs": graph_items, "figures": figure_items, "sections": section_items,
        "differences_md": differences_md.strip(), "provenance": flatten(report_provenance(run_info)),
        "provenance_markdown": markdown_table(["item", "value"], flatten(report_provenance(run_info))),
        "css": _css(env), "markdown_table": markdown_table, "names": _names(),
        "names_markdown": markdown_table(["name in this report", "paper", "trace column", "R", "what it is"], _names()),
    }
    markdown = env.get_template("report.md.j2").render(context)
    page = env.get_template("report.html.j2").render(context)
    return re.sub(r"\n{3,}", "\n\n", markdown).rstrip() + "\n", page


def write_report(out_dir: Path | str, *, tables: Sequence[ReportTable], run_info: Mapping[str, Any],
                 differences_md: str, figures: Sequence[Path | str | tuple[Path | str, str]] = (),
                 facts: RunFacts | None = None, mode: str = "run", graphs: Sequence[GraphComparison] = (),
                 sections: Sequence[ReportSection] = ()) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` to ``out_dir``; returns their paths.

    ``figures`` are paths written by :mod:`etio.report.figures` (the SVG and PNG of a figure count as
    one) or ``(path, caption)`` pairs. ``facts`` says what the run is (the headline compares it with
    :data:`PAPER_FACTS`); ``mode="paper"`` marks a report rebuilt from the authors' artifacts.
    ``graphs`` are the comparisons of our graphs with the authors' (their ``figure``: the side-by-side
    drawing's PNG); ``sections`` are further sections placed after the agreement summary. Every input
    is checked before anything is written.
    """
    check_choice("report mode", mode, ("run", "paper"))
    out_dir = Path(out_dir)
    names = [t.name for t in tables]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise EtioInputError(f"report: table name(s) {', '.join(dup)} given twice")
    comparisons = [compare_table(t) for t in tables]
    entries = figure_entries(figures)
    agreement = _agreement(comparisons, graphs) if mode == "run" else None
    markdown, page = render(comparisons, run_info, differences_md, entries, out_dir, facts=facts, mode=mode,
                            agreement=agreement, graphs=graphs, sections=sections)
    md_path, html_path = layout.path("report_md", out_dir), layout.path("report_html", out_dir)
    atomic_write_text(md_path, markdown)
    atomic_write_text(html_path, page)
    return md_path, html_path


def _agreement(comparisons: Sequence[TableComparison], graphs: Sequence[GraphComparison]) -> Agreement | None:
    """The agreement summary from the report's tables (named table3, table5 ... as the pipeline names them)."""
    by_name = {c.table.name: c.table for c in comparisons}
    t3 = by_name.get("table3")
    ates = {n: (t.ours, t.paper) for n, t in by_name.items() if t.kind == "ate" and t.paper is not None}
    from etio.report.tables import PAPER_ATE

    def has_verdicts(table: pd.DataFrame) -> bool:
        return "Query" in table.columns and all(
            any(c == f"{label} Result" or c.startswith(f"{label} Result (") for c in table.columns)
            for label in ("CE", "MSE"))

    if t3 is None or t3.paper is None or not has_verdicts(t3.paper):
        verdicts = (None, None)
        agreement = Agreement(graphs=list(graphs))
    else:
        agreement = agreement_summary(t3.ours, t3.paper, {}, graphs)
        verdicts = (agreement.verdicts_agreeing, agreement.verdicts_total)
    signs = [sign_agreement(o, p) for o, p in ates.values()
             if {"Attack", "Feature", PAPER_ATE} <= set(p.columns) and (o is None or {"Attack", "Feature", PAPER_ATE}
                                                                        <= set(o.columns))]
    compared = [s for s in signs if s[1] is not None]
    agreement.verdicts_agreeing, agreement.verdicts_total = verdicts
    agreement.signs_agreeing = sum(s for s, _ in compared) if compared else None
    agreement.signs_compared = sum(c for _, c in compared) if compared else None
    return agreement
