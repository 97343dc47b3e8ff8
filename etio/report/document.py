"""The comparison report of a reproduction run: ``report.md`` and a self-contained ``report.html``.

For every paper table the report puts our value beside the paper's (rows joined on the table's
key columns) and marks the differences that change a conclusion:

- **sign change**: both values non-zero with opposite signs (an ATE that flips direction);
- **zero vs non-zero**: an ATE of exactly 0 on one side only; the query stage (like the
  authors' code) writes 0 when the graph has no directed path from the treatment to the attack,
  so this is a difference in the learned graph, not in an estimate;
- **verdict change**: a different ✓ / × / ◦ in Table 3;
- **significance change**: a p-value on different sides of 0.05 (zeros, the "no path" code, are skipped);
- **large difference**: same sign, but relative difference above the table kind's tolerance
  (:data:`RELATIVE_TOLERANCE`);
- **missing**: a row or value present on one side only.

The HTML embeds its figures (as base64 data: SVG when there is one, else PNG) and its CSS, so the single
file is complete. Both files are written atomically.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from etio import __version__
from etio.core.errors import EtioInputError
from etio.core.provenance import atomic_write_text

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

_P_VALUE_COLUMN = re.compile(r"p[-_ ]?val", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_VERDICTS = {"✓": "✓", "✔": "✓", "×": "×", "✗": "×", "✘": "×", "◦": "◦", "∘": "◦", "○": "◦"}
_VERDICT_WORDS = {"yes": "✓", "true": "✓", "supported": "✓", "no": "×", "false": "×", "refuted": "×",
                  "x": "×", "o": "◦", "inconclusive": "◦"}


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


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------

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


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in {"", "-", "NA", "nan"}


def compare_cells(column: str, ours: Any, paper: Any, rel_tol: float) -> tuple[str, ...]:
    """Flags for one value of ``column``: our value against the paper's."""
    if _is_missing(ours) and _is_missing(paper):
        return ()
    if _is_missing(ours) or _is_missing(paper):
        return (MISSING,)
    v_ours, v_paper = parse_verdict(ours), parse_verdict(paper)
    if v_ours is not None or v_paper is not None:
        return (VERDICT,) if v_ours != v_paper else ()
    a, b = parse_number(ours), parse_number(paper)
    if a is None or b is None:
        return () if str(ours).strip() == str(paper).strip() else (VERDICT,)
    if _P_VALUE_COLUMN.search(column):
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
        missing = [c for c in [*table.key_columns, *table.value_columns] if c not in df.columns]
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
            vo = o[col] if o is not None else None
            vp = p[col] if p is not None else None
            flags = compare_cells(col, vo, vp, rel_tol) if (o is not None and p is not None) else ()
            cells.append(ComparedCell(col, vo, vp, flags))
        side = "both" if (o is not None and p is not None) else ("ours" if o is not None else "paper")
        row = ComparedRow(key, cells, side)
        if side != "both" and table.ours is not None and table.paper is not None:
            row.cells[0].flags = (MISSING,)
        result.rows.append(row)
    return result


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------

def format_value(value: Any, column: str = "") -> str:
    if _is_missing(value):
        return "–"
    if isinstance(value, str):
        return value.strip()
    number = parse_number(value)
    if number is None:
        return str(value)
    number = number + 0.0  # no "-0.0000"
    if _P_VALUE_COLUMN.search(column):
        return f"{number:.2E}"
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e5):
        return f"{number:.2E}"
    if float(number).is_integer() and abs(number) >= 10:
        return f"{int(number)}"
    return f"{number:.4f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown pipe table (``align``: ``"l"`` or ``"r"`` per column)."""
    header = [_md_escape(str(h)) for h in header]
    body = [[_md_escape(str(c)) for c in row] for row in rows]
    align = list(align or ["l"] * len(header))
    widths = [max([len(header[i])] + [len(r[i]) for r in body] + [3]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w)
                                 for c, w, a in zip(cells, widths, align)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align)) + " |"
    return "\n".join([line(header), rule] + [line(r) for r in body])


def _both_sides(table: ReportTable) -> bool:
    return table.ours is not None and table.paper is not None


def _summary_text(comparison: TableComparison) -> str:
    rows = comparison.rows
    if comparison.table.note:
        return comparison.table.note
    if comparison.table.ours is None:
        return f"{len(rows)} rows in the paper; this run did not produce the table."
    if comparison.table.paper is None:
        return f"{len(rows)} rows; the paper has no values to compare with."
    both = sum(r.side == "both" for r in rows)
    only_ours = sum(r.side == "ours" for r in rows)
    only_paper = sum(r.side == "paper" for r in rows)
    counts = comparison.counts
    parts = [f"{counts[f]} {f}{'s' if counts[f] != 1 and f not in (MISSING, ZERO) else ''}" for f in FLAGS
             if counts[f] and f != MISSING]
    text = f"{both} rows compared"
    if only_ours or only_paper:
        text += f" ({only_ours} only in ours, {only_paper} only in the paper)"
    return text + (": " + ", ".join(parts) + "." if parts else ": no difference flagged.")


def _sides(table: ReportTable) -> tuple[str, ...]:
    """The value columns shown: ours beside the paper's, or the one side that exists."""
    if _both_sides(table):
        return ("ours", "paper")
    return ("ours",) if table.ours is not None else ("paper",)


def _column_headers(table: ReportTable) -> list[str]:
    sides = _sides(table)
    if len(sides) == 1:
        return [*table.key_columns, *table.value_columns]
    return [*table.key_columns] + [f"{c} {side}" for c in table.value_columns for side in sides]


def _md_cell(cell: ComparedCell, side: str) -> str:
    text = format_value(cell.ours if side == "ours" else cell.paper, cell.column)
    if side == "ours" and cell.flags and cell.flags != (MISSING,):
        return f"**{text}** ⚠ {', '.join(cell.flags)}"
    return text


def _summary_rows(comparisons: Sequence[TableComparison]) -> list[list[str]]:
    return [[c.table.name, c.table.title, str(sum(r.side == "both" for r in c.rows))]
            + [str(c.counts[f]) for f in FLAGS] for c in comparisons]


def _flatten(info: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(map(str, value))))
        else:
            out.append((name, str(value)))
    return out


# --------------------------------------------------------------------------------------
# Markdown report
# --------------------------------------------------------------------------------------

_LEGEND = (
    "Each table puts our value beside the paper's. A value of ours in **bold** with ⚠ differs "
    "in a way that matters: *sign change* (opposite signs), *zero vs non-zero* (an ATE of 0 — no "
    "causal path in the graph — on one side only), *verdict change* (✓/×/◦ of Table 3), "
    f"*significance change* (p-value on different sides of {SIGNIFICANCE_LEVEL}) or *large difference* "
    "(same sign, relative difference above "
    + ", ".join(f"{int(v * 100)} % for {k} tables" for k, v in RELATIVE_TOLERANCE.items()) + ")."
)


def _figure_entries(figures: Sequence[Path | str | tuple[Path | str, str]]) -> list[tuple[Path, Path | None, str]]:
    """``(PNG or other main file, SVG or None, caption)`` per figure; the SVG and PNG of one stem are
    one figure. Markdown links the PNG; the HTML embeds the SVG (a tenth of the PNG's size for a
    graph) and the PNG only when there is no SVG."""
    from etio.report.figures import figure_caption

    by_stem: dict[Path, dict[str, Any]] = {}
    for item in figures:
        path, caption = (item if isinstance(item, tuple) else (item, None))
        path = Path(path)
        if not path.is_file():
            raise EtioInputError(f"figure file {path} does not exist")
        entry = by_stem.setdefault(path.with_suffix(""), {"caption": None})
        entry[path.suffix.lower()] = path
        entry["caption"] = entry["caption"] or caption
    out = []
    for stem, entry in by_stem.items():
        main = entry.get(".png") or entry.get(".svg") or next(v for k, v in entry.items() if k != "caption")
        out.append((main, entry.get(".svg"), entry["caption"] or figure_caption(main)))
    return out


def render_markdown(comparisons: Sequence[TableComparison], run_info: Mapping[str, Any], differences_md: str,
                    figures: Sequence[tuple[Path, Path | None, str]], out_dir: Path) -> str:
    md = ["# etio reproduction report", ""]
    method = run_info.get("method")
    md.append(f"Generated by etio {__version__}" + (f"; structure-learning networks: **{method}**." if method else "."))
    md += ["", "## Summary", "", _LEGEND, ""]
    md.append(markdown_table(["table", "title", "rows compared", *FLAGS], _summary_rows(comparisons),
                             ["l", "l"] + ["r"] * (1 + len(FLAGS))))
    for comp in comparisons:
        table = comp.table
        md += ["", f"## {table.name}: {table.title}", "", _summary_text(comp), ""]
        if not comp.rows:
            md.append("(no rows)")
            continue
        body = []
        for row in comp.rows:
            cells = list(row.key)
            for cell in row.cells:
                cells += [_md_cell(cell, side) for side in _sides(table)]
            if row.side != "both" and _both_sides(table):
                cells[0] += f" (only in {'ours' if row.side == 'ours' else 'the paper'})"
            body.append(cells)
        md.append(markdown_table(_column_headers(table), body,
                                 ["l"] * len(table.key_columns)
                                 + ["r"] * len(_sides(table)) * len(table.value_columns)))
    if figures:
        md += ["", "## Figures", ""]
        for main, svg, caption in figures:
            rel = os.path.relpath(main, out_dir)
            md += [f"![{caption}]({rel})", "", f"*{caption}*" + (f" ([SVG]({os.path.relpath(svg, out_dir)}))"
                                                                  if svg and svg != main else ""), ""]
    md += ["", differences_md.strip(), "", "## Provenance", ""]
    md.append(markdown_table(["item", "value"], _flatten(run_info)))
    return "\n".join(md).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;
 color:#1b1b1b;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #d62728;padding-bottom:.2em}
h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d5d5;padding:.25em .55em;vertical-align:top}
th{background:#f3f5f8;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.paper{color:#555}
tr.only td{background:#fafafa;color:#888}
td.flag{font-weight:600}
td.flag-sign{background:#fdd9d7}
td.flag-zero{background:#ffe8c2}
td.flag-verdict{background:#e9d8fd}
td.flag-signif{background:#fff6bf}
td.flag-large{background:#fff2d6}
td.flag-missing{background:#eee}
.tag{display:inline-block;font-size:.75em;font-weight:400;margin-left:.4em;padding:0 .3em;border-radius:3px;
 background:#fff;border:1px solid #bbb}
.summary{font-style:italic}
figure{margin:1.2em 0;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}
code{background:#f3f3f3;padding:0 .2em;border-radius:2px}
"""


def _inline(text: str) -> str:
    """Inline Markdown (code, bold, italic, links as text) to HTML; the text is escaped first."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        s = html.escape(part, quote=False)
        # Links are shown as text with their address: the report must not point outside itself.
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """The subset of Markdown the report's sections use: headings, paragraphs, bullet and numbered
    lists (one level), pipe tables, inline code/bold/italic."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    list_tag: str | None = None

    def flush_para() -> None:
        if para:
            out.append("<p>" + _inline(" ".join(s.strip() for s in para)) + "</p>")
            para.clear()

    def close_list() -> None:
        nonlocal list_tag
        if list_tag:
            out.append(f"</{list_tag}>")
            list_tag = None

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        bullet = re.match(r"^\s*[-*+]\s+(.*)$", line)
        numbered = re.match(r"^\s*\d+[.)]\s+(.*)$", line)
        if not stripped:
            flush_para()
            close_list()
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush_para()
            close_list()
            level = max(2, len(m.group(1)))  # the page's only h1 is its title
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            flush_para()
            close_list()
            rows = [lines[i]]
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            cells = [[c.strip() for c in re.split(r"(?<!\\)\|", r.strip())[1:-1]] for r in rows]
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in cells[0]) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
                       + "</table>")
            continue
        elif bullet or numbered:
            flush_para()
            tag = "ul" if bullet else "ol"
            if list_tag != tag:
                close_list()
                out.append(f"<{tag}>")
                list_tag = tag
            item = (bullet or numbered).group(1)
            # Continuation lines (indented, not a new item) belong to this item.
            while i + 1 < len(lines) and lines[i + 1].startswith(("  ", "\t")) and lines[i + 1].strip() \
                    and not re.match(r"^\s*([-*+]|\d+[.)])\s+", lines[i + 1]):
                i += 1
                item += " " + lines[i].strip()
            out.append(f"<li>{_inline(item)}</li>")
        else:
            if list_tag:
                close_list()
            para.append(line)
        i += 1
    flush_para()
    close_list()
    return "\n".join(out)


def _html_table(comp: TableComparison) -> str:
    table = comp.table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _column_headers(table))
    body = []
    for row in comp.rows:
        key = "|".join(row.key)
        tds = [f"<td>{html.escape(k)}</td>" for k in row.key]
        if row.side != "both" and _both_sides(table):
            tds[0] = (f"<td>{html.escape(row.key[0])}<span class=\"tag\">only in "
                      f"{'ours' if row.side == 'ours' else 'the paper'}</span></td>")
        for cell in row.cells:
            for side in _sides(table):
                value = cell.ours if side == "ours" else cell.paper
                text = html.escape(format_value(value, cell.column))
                classes = ["num", side]
                extra = ""
                if side == "ours" and cell.flags:
                    classes += ["flag"] + [f"flag-{FLAG_CLASS[f]}" for f in cell.flags]
                    extra = f' title="{html.escape(", ".join(cell.flags))}" data-flags="{html.escape(";".join(cell.flags))}"'
                    text += "".join(f'<span class="tag">{html.escape(f)}</span>' for f in cell.flags)
                tds.append(f'<td class="{" ".join(classes)}" data-column="{html.escape(cell.column)}" '
                           f'data-side="{side}"{extra}>{text}</td>')
        cls = ' class="only"' if row.side != "both" and _both_sides(table) else ""
        body.append(f'<tr{cls} data-table="{html.escape(table.name)}" data-key="{html.escape(key)}">'
                    + "".join(tds) + "</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def _embedded_figure(main: Path, caption: str) -> str:
    data = main.read_bytes()
    if main.suffix.lower() == ".png":
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    elif main.suffix.lower() == ".svg":
        src = "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
    else:
        raise EtioInputError(f"figure file {main} is neither PNG nor SVG")
    return (f'<figure><img src="{src}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_html(comparisons: Sequence[TableComparison], run_info: Mapping[str, Any], differences_md: str,
                figures: Sequence[tuple[Path, Path | None, str]]) -> str:
    method = run_info.get("method")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>etio reproduction report</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>etio reproduction report</h1>",
        f"<p>Generated by etio {html.escape(__version__)}"
        + (f"; structure-learning networks: <strong>{html.escape(str(method))}</strong>." if method else ".") + "</p>",
        "<h2>Summary</h2>", f"<p>{_inline(_LEGEND)}</p>",
        "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in ["table", "title", "rows compared", *FLAGS])
        + "</tr>"
        + "".join("<tr>" + "".join(f'<td{" class=num" if i >= 2 else ""}>{html.escape(v)}</td>'
                                   for i, v in enumerate(r)) + "</tr>" for r in _summary_rows(comparisons))
        + "</table>",
    ]
    for comp in comparisons:
        parts += [f'<h2 id="{html.escape(comp.table.name)}">{html.escape(comp.table.name)}: '
                  f"{html.escape(comp.table.title)}</h2>",
                  f'<p class="summary">{html.escape(_summary_text(comp))}</p>',
                  _html_table(comp) if comp.rows else "<p>(no rows)</p>"]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_embedded_figure(svg or main, caption) for main, svg, caption in figures]
    parts.append(markdown_to_html(differences_md))
    parts.append("<h2>Provenance</h2>")
    parts.append("<table><tr><th>item</th><th>value</th></tr>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in _flatten(run_info)) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out_dir: Path | str, *, tables: Sequence[ReportTable], run_info: Mapping[str, Any],
                 differences_md: str, figures: Sequence[Path | str | tuple[Path | str, str]] = ()
                 ) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` to ``out_dir``; returns their paths.

    ``figures`` are paths written by :mod:`etio.report.figures` (the SVG and PNG of a figure count as
    one) or ``(path, caption)`` pairs. Every input is checked before anything is written.
    """
    out_dir = Path(out_dir)
    names = [t.name for t in tables]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise EtioInputError(f"report: table name(s) {', '.join(dup)} given twice")
    comparisons = [compare_table(t) for t in tables]
    figure_entries = _figure_entries(figures)
    markdown = render_markdown(comparisons, run_info, differences_md, figure_entries, out_dir)
    page = render_html(comparisons, run_info, differences_md, figure_entries)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, markdown)
    atomic_write_text(html_path, page)
    return md_path, html_path


# --------------------------------------------------------------------------------------
# Paper <-> code differences
# --------------------------------------------------------------------------------------

def default_differences_md(method: str) -> str:
    """The report section on where the paper and the authors' code disagree, and what this run did.

    ``method`` is the structure-learning scheme of the run: ``"boot"`` (bootstrap networks, as
    the paper describes) or ``"cv"`` (cross-validation networks, as the authors' code runs).
    """
    from etio.causal.settings import check_method

    check_method(method)
    if method == "boot":
        networks = ("This run follows the paper: arc strengths are counted over networks learned on "
                    "bootstrap resamples of the trace, then averaged with the L1-estimated threshold. "
                    "Method `cv` selects the authors' scheme instead.")
    else:
        networks = ("This run follows the authors' code: arc strengths are counted over the "
                    "cross-validation networks (CPDAGs), then averaged with the L1-estimated threshold. "
                    "Method `boot` selects the paper's bootstrap scheme instead.")
    items = [
        ("Networks behind the averaged graph",
         "The paper learns one network per bootstrap resample (rows drawn with replacement) and keeps "
         "the arcs whose frequency passes an L1-estimated threshold. The published code never "
         "bootstraps: it reuses the 60 networks fitted during hold-out cross-validation (20 runs × 3 "
         "draws, each on 80 % of the rows without replacement), reduced to CPDAGs before counting.",
         networks),
        ("Predictive power (Table 2)",
         "The paper speaks of 20 cross-validation runs with an 80/20 split. The code draws, per run, "
         "three hold-out sets of ⌊0.2 n⌋ rows, predicts the attack from its parents only, pools the "
         "three sets into one correlation, and averages the 20 run correlations; its MSE column "
         "refits parameters of the averaged graph, which was itself learned from all rows.",
         "Computes predictive correlation with the code's protocol (hill climbing relearned on every "
         "training part) whichever networks the graph was averaged from, so Table 2 is comparable "
         "with the published numbers; MSE is measured on this run's averaged graph. When that graph "
         "keeps an undirected arc, MSE is −1 as in the code, but the measured correlation is kept "
         "(the code overwrote it with −1)."),
        ("Best-correlation baseline (Table 2)",
         "The code picks the hypothesis variable with the largest correlation by comparing the "
         "correlations as character strings, so a value such as 9.1e-05 can beat 0.8; its "
         "correlation file is overwritten by each weight-decay run.",
         "Compares the correlations as numbers (signed, largest wins) and keeps one correlation "
         "file per weight decay."),
        ("MemGuard",
         "The paper defends six target models, takes the target's test set and the shadow's test set "
         "as non-members and builds the MemGuardAcc graph on defended bias/variance. The code takes "
         "non-members from another model's training subset, averages the two ML-Leaks variants, uses "
         "the undefended bias/variance columns as the graph's nodes and has no MemGuard run for MNIST. "
         "Its MemGuardAcc graphs predict poorly (0.66 CE, 0.71 MSE), which is why Table 2 has no "
         "MemGuard rows although the paper's text claims above 0.90 for all attacks.",
         "Defends one target per repeat against both top-3 attack variants (six defended output sets, "
         "as the paper's appendix), with seeded, disjoint non-member sets for attacker and defender, "
         "for every architecture including the MLP, at weight decay 5e-4 as the authors' trace; builds "
         "the MemGuardAcc graph on the undefended columns, as the published graphs and Tables 5/6 were; "
         "like the paper, Table 2 has no MemGuard rows."),
        ("Variance estimator",
         "The paper's appendix uses the unbiased 1/(n−1) estimator per split, averaged over the three "
         "splits. The code does so for the test-set MSE variance only; the train-set MSE variance "
         "uses the biased estimator over the models covering each training point, pooled across "
         "repeats, and the CE centres are pooled across repeats as well.",
         "Keeps the code's estimators, so traces stay comparable with the authors': the test-set MSE "
         "variance is unbiased per repeat; with one model per repeat on each training point no "
         "per-split train variance exists, so the train-set variance is pooled over the repeats "
         "(biased), and the CE centres are pooled. Bias² + variance = loss holds exactly for both."),
        ("Centroid distance",
         "The paper defines the distance between the member and non-member centroids of the "
         "prediction vectors. The code's aggregation line returns the fraction of finite distances "
         "instead of their mean, uses logits for CE models and softmax outputs for MSE models, and "
         "the top-3 sorted vector for the Top-3 and MemGuard attacks.",
         "Averages the distances over the models (the evident intent) and keeps the code's "
         "choice of logits/softmax and of the sorted top-3 variant per attack."),
        ("Domain-knowledge constraints",
         "The paper lists 19 forbid/enforce constraints with 4 enforced arcs. The code enforces 8 arcs "
         "(adding the train/test loss and variance arcs into the two bias terms) and forbids arcs "
         "through 12 blacklist rules (99 rows, 98 distinct), including rules that allow only root "
         "causes into TrainLoss and TrainAcc.",
         "Uses the code's 8 whitelist arcs and 12 blacklist rules: the published graphs were "
         "learned under them."),
        ("ShadowAcc (Oak17) columns",
         "The paper's ShadowAcc is an expectation over training sets; the code attacks target model 1 "
         "only (two seeds) and writes member accuracy under the non-member column name and vice versa.",
         "Writes each accuracy under its own name (Oak17MemAcc = accuracy on members); Oak17Acc, "
         "the only column the analysis uses, is unaffected."),
        ("ML-Leaks repetitions",
         "The paper runs each ML-Leaks attack 30 times; the code's parser averages 29 of the 30 runs "
         "(the first log file read starts the running record but is never added to it).",
         "Averages all runs of each attack."),
        ("Threshold attack repeats",
         "The code stores the threshold attack's results under keys repeat_0 to repeat_2 and reads "
         "them back as repeat_1 to repeat_3, which fails as written.",
         "Reads all three repeats and averages them."),
        ("dowhy version",
         "The paper names dowhy 0.7.0 and the code pins 0.7.1.",
         "Identifies with dowhy 0.14 and estimates the same backdoor linear regression (minimum to "
         "maximum treatment value, including the treatment × effect-modifier terms dowhy adds); a "
         "treatment without a directed path to the attack is reported as \"no causal path\" with "
         "ATE 0 and no p-value, where the code wrote p = 0. Averaged networks that keep an "
         "undirected arc are queried through their consistent extension."),
    ]
    lines = ["## Differences between the paper and the authors' code", "",
             f"Structure-learning networks of this run: **{method}**. {networks}", ""]
    for title, difference, choice in items:
        lines += [f"### {title}", "", f"- **Paper and authors' code:** {difference}", f"- **etio:** {choice}", ""]
    return "\n".join(lines).rstrip() + "\n"
