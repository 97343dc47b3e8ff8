"""The paper's tables as data frames, and their CSV / Markdown / LaTeX renderings.

* Table 2 - predictive power of the learned graph vs the best single correlation, both weight decays;
* Table 3 - prior-work hypotheses Q1-Q9 and their verdicts (weight decay 5e-4);
* Tables 5-8 - ATEs of the queries of interest: CE / MSE at weight decay 5e-4, CE / MSE at 5e-3.

Tables 3 and 5-8 exist for both estimators (:mod:`etio.causal.estimators`): ``paper`` (the
default, the faithful reproduction: dowhy's estimate and its p-value of T's coefficient) and
``sound`` (the ATE with its clustered 95 % interval, p-value and Benjamini-Hochberg q-value over
the table's tested cells). Either way every row carries its status (``estimated``, ``no causal
path``, ``not identifiable``) and flags, and every number's column names the estimator that
filled it: ``ATE (paper recipe)``, ``ATE (sound)`` (:func:`estimated_by`). The paper's recipe
prints a number even where no data can identify the effect, as the paper did; a table of our
run puts the sound estimator's ATE beside it, empty there, with the status saying why.

Each ``tableN`` function takes the stage outputs (ATE tables, predictive-power results) and
returns the table in the paper's row order with the paper's names; :func:`write_table` renders it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from etio.causal.estimators import Status
from etio.causal.estimators.inference import benjamini_hochberg
from etio.causal.query import ATE_SCHEMA
from etio.causal.hypotheses import ESTIMATORS, HYPOTHESES, SIGNIFICANCE_LEVEL, table3_cells, verdicts
from etio.core import layout
from etio.core.errors import EtioInputError
from etio.core.outputs import output_dir
from etio.core.provenance import write_json
from etio.core.schema import centroid_for, from_r_name, select_slice, to_r_name
from etio.core.schema import ATTACK_PAPER_NAMES
from etio.core.vocabulary import ATTACKS_VOCABULARY, symbol
from etio.report.titles import EXTRA_TABLES, ROBUST_TITLE, TITLES  # noqa: F401 - read from here too

#: Features reported per attack in Tables 5-8 (the authors' QUERIES_OF_INTEREST); the centroid
#: distance is added for every attack except the two whose hypotheses do not mention it.
QUERY_FEATURES = ["AccDiff", "LossDiff", "TrainVar", "TestVar", "TrainBias2", "TestBias2", "TrainSize", "NumParams"]
_NO_CENTROID = {"Oak17Acc", "ThresholdAcc"}

#: Table number -> (loss, weight decay) of Tables 5-8.
ATE_TABLES = {5: ("ce", 0.0005), 6: ("mse", 0.0005), 7: ("ce", 0.005), 8: ("mse", 0.005)}
TABLE_NAMES = ["table2", "table3", "table5", "table6", "table7", "table8"]

#: Table 2 rows: the paper lists the six undefended attacks, CE then MSE for each.
TABLE2_ATTACKS = [a.column for a in ATTACKS_VOCABULARY if a.table2]
#: The paper's "normal" and "high" weight decay.
NORMAL_WD, HIGH_WD = 0.0005, 0.005
#: Table 2: predictive correlation counts as an improvement over the best correlation from this gap on.
IMPROVEMENT_GAP = 0.03


#: The label each estimator's columns carry (``"ATE (paper recipe)"``, ``"CE q-value (sound)"``).
ESTIMATOR_LABELS = {"paper": "paper recipe", "sound": "sound"}


def estimated_by(column: str, estimator: str) -> str:
    """``column`` with the estimator that fills it: ``estimated_by("ATE", "paper")`` is
    ``"ATE (paper recipe)"``."""
    return f"{column} ({ESTIMATOR_LABELS[_check_estimator(estimator)]})"


#: The paper recipe's ATE and p-value, and the sound ATE: the columns every reader joins on.
PAPER_ATE, PAPER_P_VALUE, SOUND_ATE = "ATE (paper recipe)", "p-value (paper recipe)", "ATE (sound)"


def _has_sound(ates: pd.DataFrame) -> bool:
    """Whether ``ates`` holds the sound estimator's numbers (a run of ours; the authors' published
    ATEs have the paper recipe's only)."""
    estimated = ates["status"] == Status.ESTIMATED
    return bool(estimated.any() and ates.loc[estimated, "ate"].notna().any())


def result_column(table: pd.DataFrame, label: str) -> str:
    """Table 3's verdict column of ``label`` (``"CE"``/``"MSE"``), whichever estimator decided it."""
    names = [c for c in table.columns if c == f"{label} Result" or c.startswith(f"{label} Result (")]
    if len(names) != 1:
        raise EtioInputError(f"Table 3 has {len(names)} verdict column(s) for {label}; expected one")
    return names[0]


def _check_ates(ates: pd.DataFrame) -> pd.DataFrame:
    return ATE_SCHEMA.validate(ates, source="tables")


# --------------------------------------------------------------------------------------
# Tables 5-8
# --------------------------------------------------------------------------------------

def _check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise EtioInputError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    return estimator


def _require_sound(ates: pd.DataFrame) -> None:
    estimated = ates["status"] == Status.ESTIMATED
    if estimated.any() and ates.loc[estimated, "ate"].isna().all():
        raise EtioInputError("the sound estimator needs the trace data: these ATEs (the authors' published "
                             "ones?) have only the paper estimator's numbers; use --estimator paper")


def _flags(rows: pd.DataFrame) -> list[str]:
    out = []
    for _, r in rows.iterrows():
        parts = []
        if r["status"] == Status.NOT_IDENTIFIABLE:
            # the defining columns only; the full reason is in the ATE CSV
            reason = str(r.get("reason", "") or "")
            defining = reason.split("function of ", 1)[1].split(" in the", 1)[0] if "function of " in reason else ""
            parts.append(f"fixed by {defining}" if defining else Status.NOT_IDENTIFIABLE)
        if isinstance(r.get("flags"), str) and r.get("flags"):
            parts.append(r["flags"])
        out.append("; ".join(parts))
    return out


def ate_table(ates: pd.DataFrame, loss: str, weight_decay: float, estimator: str = "paper") -> pd.DataFrame:
    """The queries of interest of one (loss, weight decay), sorted as the authors sorted them:
    by attack column name, then feature name in R spelling (ASCII order).

    ``paper``: ``ATE (paper recipe)`` and ``p-value (paper recipe)`` are dowhy's (the paper's),
    shown for every cell with a path as the paper did, with the status beside; when ``ates`` has
    the sound estimator's numbers (a run of ours), ``ATE (sound)`` stands beside them, empty where
    the effect is not identifiable. ``sound``: ATE, 95 % CI, p-value, the q-value over this
    table's estimated cells and the robustness value, each labelled ``(sound)``; empty where not
    identifiable.
    """
    _check_estimator(estimator)
    ates = _check_ates(ates)
    sel = select_slice(ates, loss, weight_decay, loss_column="loss", weight_decay_column="weight_decay")
    if sel.empty:
        raise EtioInputError(f"the ATE table has no {loss} rows at weight decay {weight_decay:g}")
    wanted = sel.apply(lambda r: r["feature"] in QUERY_FEATURES
                       or (r["attack"] not in _NO_CENTROID and r["feature"] == centroid_for(r["attack"])), axis=1)
    sel = sel[wanted].copy()
    sel["_feature_r"] = sel["feature"].map(to_r_name)
    sel = sel.sort_values(["attack", "_feature_r"]).reset_index(drop=True)
    keys = {"Attack": sel["attack"].map(symbol), "Feature": sel["feature"].map(symbol)}
    if estimator == "paper":
        sound = {SOUND_ATE: sel["ate"]} if _has_sound(sel) else {}
        return pd.DataFrame({**keys, PAPER_ATE: sel["ate_paper"], PAPER_P_VALUE: sel["p_value_paper"], **sound,
                             "status": sel["status"], "flags": _flags(sel)})
    _require_sound(sel)
    q = np.full(len(sel), np.nan)
    estimated = (sel["status"] == Status.ESTIMATED).to_numpy()
    q[estimated] = benjamini_hochberg(sel.loc[estimated, "p_value"].to_numpy(float))
    robustness = sel["robustness_value"] if "robustness_value" in sel else np.nan
    values = {"ATE": sel["ate"], "CI low": sel["ci_low"], "CI high": sel["ci_high"], "p-value": sel["p_value"],
              "q-value": q, "RV": robustness}
    return pd.DataFrame({**keys, **{estimated_by(c, "sound"): v for c, v in values.items()},
                         "status": sel["status"], "flags": _flags(sel)})


def table5(ates: pd.DataFrame, estimator: str = "paper") -> pd.DataFrame:
    return ate_table(ates, *ATE_TABLES[5], estimator=estimator)


def table6(ates: pd.DataFrame, estimator: str = "paper") -> pd.DataFrame:
    return ate_table(ates, *ATE_TABLES[6], estimator=estimator)


def table7(ates: pd.DataFrame, estimator: str = "paper") -> pd.DataFrame:
    return ate_table(ates, *ATE_TABLES[7], estimator=estimator)


def table8(ates: pd.DataFrame, estimator: str = "paper") -> pd.DataFrame:
    return ate_table(ates, *ATE_TABLES[8], estimator=estimator)


def compare_ate_table(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """``ours`` with the paper's published ATE and p-value (``paper ATE (paper recipe)``, ``paper
    p-value (paper recipe)``) beside each row (matched on attack and feature)."""
    published = {PAPER_ATE: f"paper {PAPER_ATE}", PAPER_P_VALUE: f"paper {PAPER_P_VALUE}"}
    ref = paper[["Attack", "Feature", *published]].rename(columns=published)
    out = ours.merge(ref, on=["Attack", "Feature"], how="left")
    # status and flags in one column, so that the table beside the paper's still fits a page
    short = {Status.ESTIMATED: "", Status.NO_PATH: "no path", Status.NOT_IDENTIFIABLE: "n/i"}
    out["status"] = [f or short.get(s, s) for s, f in zip(out["status"], out["flags"])]
    values = [c for c in ours.columns if c not in ("Attack", "Feature", "status", "flags")]
    columns = ["Attack", "Feature"]
    for column in values:      # the paper's number right after ours of the same recipe
        columns.append(column)
        if column in published:
            columns.append(published[column])
    if PAPER_ATE not in values:  # the sound table: the paper's numbers after ours
        columns += list(published.values())
    return out[[*columns, "status"]]


# --------------------------------------------------------------------------------------
# Table 3
# --------------------------------------------------------------------------------------

def table3(ates: pd.DataFrame, alpha: float = SIGNIFICANCE_LEVEL, estimator: str = "paper") -> pd.DataFrame:
    """Hypothesis rows (attack, feature, query) with the CE and MSE ATE and the query's verdict.

    ``ates`` holds both losses at one weight decay (the paper uses 5e-4). ``paper``: dowhy's ATE
    and p-value, the paper's rule. ``sound``: the sound ATE, its 95 % CI and the q-value over
    Table 3's tested cells decide (:func:`etio.causal.hypotheses.verdicts`). Every number's and
    verdict's column names its estimator (``CE ATE (paper recipe)``, ``CE Result (sound)``); under
    ``paper``, a run of ours also shows ``CE ATE (sound)``, empty where not identifiable. Every
    cell carries its status; a non-identifiable one is flagged under both. A cell whose (loss, attack) has no
    graph, so no ATE rows (its attack column was constant over the slice), reads "graph not
    learned", has no numbers, and makes its query ? under both estimators.
    """
    _check_estimator(estimator)
    ates = _check_ates(ates)
    if estimator == "sound":
        _require_sound(ates)
    marks = verdicts(ates, alpha, estimator=estimator).set_index(["query", "loss"])["mark"]
    cells = table3_cells(ates).set_index(["query", "loss", "attack", "feature"])
    sound_beside = estimator == "paper" and _has_sound(ates)

    def by(column: str) -> str:
        return estimated_by(column, estimator)

    rows = []
    for hyp in HYPOTHESES:
        for attack, feature in hyp.ate_queries:
            row = {"Attack": symbol(attack), "Feature": symbol(feature), "Query": hyp.query}
            for loss, label in (("ce", "CE"), ("mse", "MSE")):
                r = cells.loc[(hyp.query, loss, attack, feature)]
                if estimator == "paper":
                    row[f"{label} {PAPER_ATE}"] = r["ate_paper"]
                    row[f"{label} {PAPER_P_VALUE}"] = r["p_value_paper"]
                    if sound_beside:
                        row[f"{label} {SOUND_ATE}"] = r["ate"]
                else:
                    row[f"{label} {by('ATE')}"] = r["ate"]
                    row[f"{label} {by('CI low')}"] = r["ci_low"]
                    row[f"{label} {by('CI high')}"] = r["ci_high"]
                    row[f"{label} {by('p-value')}"] = r["p_value"]
                    row[f"{label} {by('q-value')}"] = r["q_value_table3"]
                row[f"{label} no path"] = r["status"] == Status.NO_PATH
                row[f"{label} status"] = r["status"]
                row[f"{label} {by('Result')}"] = f"{hyp.query}: {marks[hyp.query, loss]}"
            rows.append(row)
    return pd.DataFrame(rows)


def table3_marks(table: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``(query, "ce"|"mse") -> mark`` from a :func:`table3` frame."""
    out = {}
    columns = {label: result_column(table, label) for label in ("CE", "MSE")}
    for _, r in table.iterrows():
        for loss, label in (("ce", "CE"), ("mse", "MSE")):
            out[r["Query"], loss] = r[columns[label]].split(": ", 1)[1]
    return out


# --------------------------------------------------------------------------------------
# Table 2
# --------------------------------------------------------------------------------------

RESULTS_COLUMNS = ["Loss", "Attack", "Max Corr Var", "Max Corr", "PredCor-w_dk", "MSE-w_dk"]


def check_results(results: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in RESULTS_COLUMNS if c not in results.columns]
    if missing:
        raise EtioInputError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    return results


#: bnlearn's code for an MSE it cannot compute (an averaged graph with an undirected arc has
#: no Gaussian fit); the authors' files and r/etio.R write it.
MSE_NOT_COMPUTED = -1.0
MSE_NOT_COMPUTED_REASON = "not computed: the averaged graph keeps an undirected arc (no Gaussian fit)"


def table2(normal: pd.DataFrame, high: pd.DataFrame) -> pd.DataFrame:
    """Best single correlation vs the graph's predictive correlation and MSE, per weight decay.

    ``normal``/``high`` are the ``results-cont-wd_*.csv`` tables of weight decay 5e-4 / 5e-3.
    The column ``improved`` says whether the predictive correlation beats the best correlation
    by at least 0.03 (the paper counts 17 of 24 setups). "Best Corr." is the hypothesis variable
    with the largest signed correlation, as in the authors' code (docs/differences.md). An MSE
    that bnlearn could not compute (its -1 code) is empty, with the reason in ``Notes``.
    A setup without a learned graph (see :func:`etio.causal.learning.learn_all`) reads "not learned"
    and has no numbers.
    """
    rows = []
    for attack in TABLE2_ATTACKS:
        for loss in ("ce", "mse"):
            row = {"Loss": loss, "Attack": symbol(attack)}
            notes: list[str] = []
            for label, res in (("Normal WD", normal), ("High WD", high)):
                hit = res[(res["Loss"] == loss) & (res["Attack"] == attack)]
                if len(hit) == 0:   # no graph learned (e.g. a constant attack column): a status, no numbers
                    row[f"{label} Best Corr. Variable"] = "not learned"
                    for column in ("Best Corr. Value", "Etio Pred.", "Etio MSE"):
                        row[f"{label} {column}"] = float("nan")
                    row[f"{label} improved"] = False
                    continue
                if len(hit) != 1:
                    raise EtioInputError(f"the {label} results have {len(hit)} row(s) for {loss} {attack}; expected 1")
                h = hit.iloc[0]
                variable = from_r_name(str(h["Max Corr Var"]))
                mse = float(h["MSE-w_dk"])
                row[f"{label} Best Corr. Variable"] = symbol(variable)
                row[f"{label} Best Corr. Value"] = float(h["Max Corr"])
                row[f"{label} Etio Pred."] = float(h["PredCor-w_dk"])
                row[f"{label} Etio MSE"] = math.nan if mse == MSE_NOT_COMPUTED else mse
                if mse == MSE_NOT_COMPUTED:
                    notes.append(f"{label} MSE {MSE_NOT_COMPUTED_REASON}")
                row[f"{label} improved"] = float(h["PredCor-w_dk"]) - float(h["Max Corr"]) >= IMPROVEMENT_GAP
            row["Notes"] = "; ".join(notes)
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

def robust_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The robust verdicts with the attacks' and treatments' display names (Table 7 names)."""
    table = verdicts.copy()
    table["Attack"] = table["Attack"].map(lambda a: ATTACK_PAPER_NAMES.get(a, a))
    table["Treatment"] = table["Treatment"].map(lambda a: ATTACK_PAPER_NAMES.get(a, a))
    return table


def _format_cell(column: str, value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "—"
        if "p-value" in column or "q-value" in column or column.endswith("Etio MSE"):
            return f"{value:.2E}"
        return f"{value:.4f}"
    return str(value)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Strings as the paper prints them: ATEs and correlations with 4 decimals, p-values and
    MSEs as ``1.23E-04``; a missing value (a p-value without a causal path) as ``—``."""
    return pd.DataFrame({c: [_format_cell(c, v) for v in table[c]] for c in table.columns})


def to_markdown(table: pd.DataFrame, title: str) -> str:
    text = formatted(table)
    lines = [f"# {title}", "", "| " + " | ".join(text.columns) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False)]
    return "\n".join(lines) + "\n"


#: Characters LaTeX treats specially, and the symbols of the tables that pdflatex cannot set as
#: they are, with what a plain ``article`` (plus the packages of :data:`LATEX_PACKAGES`) sets instead.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "✓": r"\checkmark{}", "×": r"$\times$", "◦": r"$\circ$", "∗": r"$\ast$", "—": "--", "–": "--", "−": "-",
    "²": r"\textsuperscript{2}", "<": r"\textless{}", ">": r"\textgreater{}",
}
#: What a document needs to \input a table written by :func:`to_latex`.
LATEX_PACKAGES = ("booktabs", "amssymb", "graphicx", "longtable")
#: Column groups the paper's tables put under one header: Table 2 by weight decay, Table 3 by loss.
_GROUPS = ("Normal WD", "High WD", "CE", "MSE")
#: Tables with more rows than this become a ``longtable`` that breaks across pages.
LONG_TABLE_ROWS = 30


def latex_escape(text: str) -> str:
    r"""``text`` with every LaTeX special character (``\ & % $ # _ { } ~ ^``) escaped."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


_BY_ESTIMATOR = re.compile(r"(.+) \((" + "|".join(map(re.escape, ESTIMATOR_LABELS.values())) + r")\)")


def _grouped_columns(columns) -> pd.MultiIndex:
    """("Normal WD", "Etio Pred.") for "Normal WD Etio Pred.": the paper's grouped headers; outside
    those groups, ("paper recipe", "ATE") for "ATE (paper recipe)": the estimator over its columns."""
    pairs = []
    for c in columns:
        group = next((g for g in _GROUPS if c.startswith(g + " ")), "")
        by = _BY_ESTIMATOR.fullmatch(c)
        if group:
            pairs.append((group, c[len(group) + 1:]))
        elif by:
            pairs.append((by.group(2), by.group(1)))
        else:
            pairs.append(("", c))
    return pd.MultiIndex.from_tuples(pairs)


def _caption(title: str) -> str:
    """The caption without its "Table N:" prefix: LaTeX numbers the table itself."""
    text = re.sub(r"^Table \d+:\s*", "", title)
    return text[:1].upper() + text[1:]


#: Font sizes a long table may take, with the rough width of a character in points, and the
#: text width of a plain article (points).
_FONT_WIDTHS = ((r"\small", 5.2), (r"\footnotesize", 4.7), (r"\scriptsize", 3.9), (r"\tiny", 3.2))
_TEXT_WIDTH_PT = 345.0


def _long_table_size(text: pd.DataFrame, headers=None) -> str:
    """The largest font size at which the widest row of a long table fits the text width."""
    headers = list(headers or text.columns)
    chars = sum(max([len(str(h))] + [len(v) for v in text[c]]) for h, c in zip(headers, text.columns))
    padding = 8.0 * len(text.columns)
    for size, width in _FONT_WIDTHS:
        if chars * width + padding <= _TEXT_WIDTH_PT:
            return size
    return _FONT_WIDTHS[-1][0]


#: How much wider than estimated a set column may come out (the character widths are rough);
#: applied when a column is wrapped, where nothing else absorbs the error.
_WIDTH_MARGIN = 1.15


def _long_table_layout(text: pd.DataFrame, spec: str, headers=None) -> tuple[str, str]:
    r"""Font size and column spec of a long table. At each size, largest first: the table as it
    is when it fits; else with its widest text column (a status or notes text) set as a wrapped
    ``p{}`` column in the width the others leave, when that still holds its longest word. When
    neither fits at any size: the smallest size, unwrapped (:func:`_long_table_size`). ``headers``:
    the column headers' bottom line, where a group header stands over them."""
    headers = list(headers or text.columns)
    widths = [max([len(str(h))] + [len(v) for v in text[c]]) for h, c in zip(headers, text.columns)]
    padding = 8.0 * len(text.columns)
    texts = [i for i, kind in enumerate(spec) if kind == "l"]
    wide = max(texts, key=lambda i: widths[i]) if texts else None
    for size, char in _FONT_WIDTHS:
        if sum(widths) * char + padding <= _TEXT_WIDTH_PT:
            return size, spec
        if wide is None:
            continue
        column = text[text.columns[wide]]
        word = max([len(w) for v in column for w in str(v).split()] + [len(str(headers[wide])), 8])
        rest = (sum(widths) - widths[wide]) * char * _WIDTH_MARGIN
        room = _TEXT_WIDTH_PT - padding - rest
        if room >= word * char * _WIDTH_MARGIN:
            return size, spec[:wide] + f"p{{{room:.0f}pt}}" + spec[wide + 1:]
    return _long_table_size(text, headers), spec


def to_latex(table: pd.DataFrame, caption: str, label: str | None = None) -> str:
    r"""A booktabs table that compiles in a plain ``article`` with :data:`LATEX_PACKAGES`: text
    columns left-aligned, numbers right-aligned, the paper's grouped headers, a ``\label``, and
    scaled down to the text width when wider (long tables break across pages instead)."""
    text = formatted(table)
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
               for c in table.columns]
    grouped = _grouped_columns(text.columns)
    shown = text.map(latex_escape)
    shown.columns = pd.MultiIndex.from_tuples([(latex_escape(g), latex_escape(c)) for g, c in grouped]) \
        if any(g for g, _ in grouped) else [latex_escape(c) for _, c in grouped]
    spec = "".join("r" if n else "l" for n in numeric)
    long = len(table) > LONG_TABLE_ROWS
    label = label or "tab:" + re.sub(r"[^a-z0-9]+", "-", caption.lower()).strip("-")[:40]
    size = None
    if long:
        # A long table breaks across pages and cannot be scaled: a smaller font, tighter columns
        # and, where needed, a wrapped text column keep it within the text width.
        size, spec = _long_table_layout(text, spec, [c for _, c in grouped])
    body = shown.style.hide(axis="index").to_latex(
        column_format=spec, hrules=True, multicol_align="c", environment="longtable" if long else None,
        caption=latex_escape(_caption(caption)) if long else None, label=label if long else None)
    header = ("% etio table; needs \\usepackage{" + ",".join(LATEX_PACKAGES) + "} in a plain article.\n")
    if long:
        return header + "{" + size + r"\setlength{\tabcolsep}{4pt}" + "\n" + body + "}\n"
    return "\n".join([
        header.rstrip("\n"), r"\begin{table}[htbp]", r"\centering",
        f"\\caption{{{latex_escape(_caption(caption))}}}", f"\\label{{{label}}}",
        # Scale to the text width only when wider than it.
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        body.rstrip("\n"), "}", r"\end{table}", ""])


def to_terminal(table: pd.DataFrame) -> str:
    return formatted(table).to_string(index=False)


def write_table(table: pd.DataFrame, out: Path, name: str, title: str, provenance: dict, *,
                force: bool = False, inputs=()) -> None:
    """``<out>/<name>.csv`` (full precision), ``.md``, ``.tex`` and ``provenance.json``, atomically:
    ``out`` is replaced only once all files exist, under the rules of :mod:`etio.core.outputs`."""
    with output_dir(Path(out), name, force=force, inputs=inputs) as staging:
        table.to_csv(layout.path("table_file", staging, table=name, ext="csv"), index=False)
        layout.path("table_file", staging, table=name, ext="md").write_text(to_markdown(table, title))
        layout.path("table_file", staging, table=name, ext="tex").write_text(to_latex(table, title,
                                                                                      label=f"tab:{name}"))
        write_json(layout.path("table_provenance", staging), provenance)
