"""Cells, Markdown tables, provenance lists and figures as the report shows them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from etio.core.errors import EtioInputError
from etio.report.document.comparing import (P_VALUE_COLUMN, FLAGS, MISSING, RELATIVE_TOLERANCE, SIGNIFICANCE_LEVEL,
                                            ZERO, ComparedCell, ComparedRow, ReportTable, TableComparison, Undefined,
                                            is_missing, parse_number)


def format_value(value: Any, column: str = "") -> str:
    """A cell as the paper prints it; an undefined or missing value is an empty string (the
    reason is shown beside it, never a placeholder number)."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value.strip()
    number = parse_number(value)
    if number is None:
        return str(value)
    number = number + 0.0  # no "-0.0000"
    if P_VALUE_COLUMN.search(column) or column.endswith("MSE"):
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


def both_sides(table: ReportTable) -> bool:
    return table.ours is not None and table.paper is not None


def summary_text(comparison: TableComparison) -> str:
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


def shown_sides(table: ReportTable) -> tuple[str, ...]:
    """The value columns shown: ours beside the paper's, or the one side that exists."""
    if both_sides(table):
        return ("ours", "paper")
    return ("ours",) if table.ours is not None else ("paper",)


def column_headers(table: ReportTable) -> list[str]:
    sides = shown_sides(table)
    if len(sides) == 1:
        return [*table.key_columns, *table.value_columns]
    return [*table.key_columns] + [f"{c} {side}" for c in table.value_columns for side in sides]


def _reason(value: Any, row: ComparedRow, side: str) -> str:
    """Why a cell is empty: the value's own reason, or the row's absence on that side."""
    if isinstance(value, Undefined):
        return value.reason
    if side == "ours" and row.side == "paper":
        return "not in this run"
    if side == "paper" and row.side == "ours":
        return "not in the paper"
    return "not computed"


def cell_text(cell: ComparedCell, row: ComparedRow, side: str) -> tuple[str, str]:
    """(shown text, reason when the cell is empty)."""
    value = cell.ours if side == "ours" else cell.paper
    text = format_value(value, cell.column)
    return (text, "") if text else ("", _reason(value, row, side))


def md_cell(cell: ComparedCell, row: ComparedRow, side: str) -> str:
    text, reason = cell_text(cell, row, side)
    if not text:
        return f"*({reason})*"
    if side == "ours" and cell.flags and cell.flags != (MISSING,):
        return f"**{text}** ⚠ {', '.join(cell.flags)}"
    return text


def summary_rows(comparisons: Sequence[TableComparison]) -> list[list[str]]:
    return [[c.table.name, c.table.title, str(sum(r.side == "both" for r in c.rows))]
            + [str(c.counts[f]) for f in FLAGS] for c in comparisons]


#: Provenance that changes from one run to the next although the results do not (when, on which
#: machine, with which command line, how long each stage took): kept in ``provenance.json`` only, so
#: that the same inputs give the same report bytes.
RUN_ONLY_PROVENANCE = ("created", "command", "platform", "timings")


def report_provenance(run_info: Mapping[str, Any]) -> dict[str, Any]:
    """``run_info`` as the report lists it: without :data:`RUN_ONLY_PROVENANCE`."""
    return {k: v for k, v in run_info.items() if k not in RUN_ONLY_PROVENANCE}


def flatten(info: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(map(str, value))))
        else:
            out.append((name, str(value)))
    return out


LEGEND = (
    "Each table puts our value beside the paper's. A value of ours in **bold** with ⚠ differs "
    "in a way that matters: *sign change* (opposite signs), *zero vs non-zero* (an ATE of 0 — no "
    "causal path in the graph — on one side only), *verdict change* (✓/×/◦ of Table 3), "
    f"*significance change* (p-value on different sides of {SIGNIFICANCE_LEVEL}) or *large difference* "
    "(same sign, relative difference above "
    + ", ".join(f"{int(v * 100)} % for {k} tables" for k, v in RELATIVE_TOLERANCE.items()) + "). "
    "An empty cell gives the reason it has no value."
)


def figure_entries(figures: Sequence[Path | str | tuple[Path | str, str]]) -> list[tuple[Path, Path | None, str]]:
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


def data_uri(path: Path) -> str:
    kinds = {".png": "image/png", ".svg": "image/svg+xml"}
    kind = kinds.get(path.suffix.lower())
    if kind is None:
        raise EtioInputError(f"figure file {path} is neither PNG nor SVG")
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")

