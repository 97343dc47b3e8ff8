"""The run layout: the one owner of every file name a run writes.

Each entry of :data:`NAMES` is a file or folder of a run: its key, the folder it lies in
(``base``), its name pattern and what it holds. A pattern's fields are ``{loss}``, ``{attack}``,
``{metric}`` (a low-FPR outcome such as ``TPR0.1``), ``{table}``, ``{ext}``, ``{key}`` (a
configuration of the trace store) and ``{wd:g}`` / ``{wd:f}``, the weight decay. Code asks for a
path (:func:`path`, or :class:`RunLayout` for a run's folders) and reads a name back
(:func:`fields_of`, :func:`weight_decay_in`); no other module spells a name (a test checks it).

**Weight decays in names.** A weight decay is printed into a name only here, by the spelling its
pattern names. Two spellings are in use, each where today's files have it: etio's own folders,
ATE tables and figures print it shortest (C's ``%g``: ``graphs/wd_0.0005``); the three result tables
of the learning stage keep the authors' file names (C's ``%f``: ``results-cont-wd_0.000500.csv``),
so ``etio tables --results`` reads the authors' folder and ours alike. Readers accept both
(:func:`weight_decay_in`).

R writes the learning stage's files under the same names. It reads them from ``r/layout.csv``,
which :func:`write_r_layout` generates from this module (``python -m etio.core.layout``, ``make
layout``); a test fails while the file is stale. Adding a file to a run is one line in
:data:`NAMES`, followed by that command.
"""

from __future__ import annotations

import csv
import io
import re
import string
from dataclasses import dataclass
from pathlib import Path

#: The folders a pattern can be relative to: a run, its trace store, a folder of learned
#: graphs (``etio learn --out``), its figures folder, the authors' artifacts, a table's folder.
BASES = ("run", "store", "graphs", "figures", "paper", "table")


@dataclass(frozen=True)
class Name:
    """A file or folder of a run: ``pattern`` relative to the folder ``base`` (one of :data:`BASES`)."""

    key: str
    base: str
    pattern: str
    description: str


NAMES: tuple[Name, ...] = (
    # The run folder (artifacts/README.md).
    Name("store", "run", "store", "trace store: trained models, attack results, per-example scores"),
    Name("traces", "run", "traces.csv", "trace table: one row per model configuration"),
    Name("graphs", "run", "graphs/wd_{wd:g}", "learned graphs of one weight decay"),
    Name("lowfpr_graphs", "run", "graphs/lowfpr-{metric}-wd_{wd:g}",
         "learned graphs with an attack's TPR at low FPR as its outcome"),
    Name("lowfpr_outcome_graphs", "run", "graphs/lowfpr-attacks-wd_{wd:g}",
         "learned graphs of LiRA, RMIA and the loss threshold with their TPR at low FPR as the attack node"),
    Name("ates", "run", "ates/ates-wd_{wd:g}.csv", "ATEs of one weight decay"),
    Name("lowfpr_ates", "run", "ates/ates-lowfpr-{metric}-wd_{wd:g}.csv", "ATEs of the low-FPR graphs"),
    Name("verdicts", "run", "ates/verdicts-both-estimators.csv", "Table 3 verdicts under both estimators"),
    Name("tables", "run", "tables", "the paper's tables from this run"),
    Name("table", "run", "tables/{table}", "one table: CSV, Markdown, LaTeX and provenance"),
    Name("figures", "run", "figures", "figures"),
    Name("report_md", "run", "report.md", "comparison report, Markdown"),
    Name("report_html", "run", "report.html", "comparison report, self-contained HTML"),
    Name("provenance", "run", "provenance.json", "versions, seeds, config, files read, timings"),
    # The trace store.
    Name("store_traces", "store", "traces.csv", "trace table of the store"),
    Name("scores", "store", "configs/{key}/attacks/{attack}-scores.npy.gz", "per-example scores of an attack"),
    # A folder of learned graphs (etio learn, r/learn_graphs.R).
    Name("graph", "graphs", "{loss}-{attack}.dot", "averaged network (bnlearn write.dot)"),
    Name("authors_graph", "graphs", "{loss}-{attack}-cv_avg_net_discovery.dot",
         "averaged network as the authors' code names it (read only)"),
    Name("strength", "graphs", "{loss}-{attack}-strength.csv", "every arc's strength and direction"),
    Name("graph_drawing", "graphs", "{loss}-{attack}", "drawing of a learned graph (.svg and .png)"),
    Name("predictive", "graphs", "results-w_dk-cont-wd_{wd:f}.csv", "Table-2 input: predictive correlation and MSE"),
    Name("comparison", "graphs", "results-cont-wd_{wd:f}.csv",
         "Table-2 input: predictive correlation beside the best correlation"),
    Name("correlation", "graphs", "corr_results-cont-wd_{wd:f}.csv",
         "Table-2 input: correlation of every hypothesis variable"),
    Name("learn_provenance", "graphs", "provenance.json", "how the graphs were learned"),
    # The figures folder (stems: each figure is an .svg and a .png).
    Name("graph_figure", "figures", "graphs/graph-wd_{wd:g}-{loss}-{attack}", "a learned graph (App. D)"),
    Name("compare_figure", "figures", "compare/compare-wd_{wd:g}-{loss}-{attack}",
         "a learned graph beside the authors'"),
    Name("ate_forest", "figures", "ates/ate-forest-wd_{wd:g}-{loss}", "ATEs with confidence intervals"),
    Name("roc_figure", "figures", "roc-lowfpr-wd_{wd:g}-{loss}", "ROC curves at low FPR"),
    Name("fig1", "figures", "fig1-gap-vs-{attack}", "Fig. 1: accuracy gap against an attack"),
    Name("bias_variance", "figures", "bias-variance-vs-width", "bias and variance against width"),
    # The authors' published artifacts that etio reads (etio/data/paper).
    Name("authors_graphs", "paper", "graphs-w_dk-cont-wd_{wd:f}", "the authors' averaged networks of one weight decay"),
    Name("authors_ates", "paper", "causal_estimates-wd_{wd:g}-scaler-w_dk-new-out.csv", "the authors' ATEs"),
    Name("authors_queries", "paper", "causal_estimates-wd_{wd:g}-scaler-w_dk-new-out.{loss}.csv",
         "the authors' ATEs of the paper's Tables 5-8"),
    # A table's folder.
    Name("table_file", "table", "{table}.{ext}", "a table as csv, md or tex"),
    Name("table_provenance", "table", "provenance.json", "how the table was made"),
)

_BY_KEY = {n.key: n for n in NAMES}
#: The spellings of a weight decay in a name (the pattern's format spec): C's %g and %f.
WEIGHT_DECAY_SPELLINGS = ("g", "f")
_FIELD_PATTERNS = {"loss": r"[^-/]+", "attack": r"[^-/]+", "metric": r"[A-Za-z0-9.]+", "table": r"[A-Za-z0-9_]+",
                   "ext": r"[a-z]+", "key": r"[^/]+", "wd": r"(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"}


def name(key: str) -> Name:
    """The layout's entry ``key``."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"the run layout has no file {key!r}") from None


def _fields(pattern: str) -> list[tuple[str, str]]:
    return [(f, spec) for _, f, spec, _ in string.Formatter().parse(pattern) if f is not None]


def format_name(key: str, /, **fields) -> str:
    """The name of ``key`` (relative to its base folder) with ``fields`` filled in."""
    entry = name(key)
    wanted = {f for f, _ in _fields(entry.pattern)}
    if missing := sorted(wanted - set(fields)):
        raise TypeError(f"{key}: missing field(s) {', '.join(missing)}")
    if "wd" in fields:
        fields["wd"] = float(fields["wd"])
    return entry.pattern.format(**{k: v for k, v in fields.items() if k in wanted})


def path(key: str, base: Path | str, /, **fields) -> Path:
    """The path of ``key`` in the folder ``base`` (of the entry's kind)."""
    return Path(base) / format_name(key, **fields)


def glob_pattern(key: str, /, **fields) -> str:
    """A ``Path.glob`` pattern for every name of ``key``; ``fields`` given fix their part."""
    entry = name(key)
    parts = []
    for literal, field, spec, _ in string.Formatter().parse(entry.pattern):
        parts.append(literal)
        if field is not None:
            parts.append(format(float(fields[field]) if field == "wd" else fields[field], spec or "")
                         if field in fields else "*")
    return "".join(parts)


def _regex(key: str, last: bool = False) -> re.Pattern:
    pattern = name(key).pattern
    parts = []
    for literal, field, _spec, _ in string.Formatter().parse(pattern.rsplit("/", 1)[-1] if last else pattern):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P<{field}>{_FIELD_PATTERNS[field]})")
    return re.compile("".join(parts))


def fields_of(key: str, text: str, last: bool = False) -> dict[str, str] | None:
    """The fields of a name of ``key`` (the whole of ``text``, relative to its base folder; with
    ``last``, the name's last part alone, e.g. a file name without its folder), as spelled in it;
    None when ``text`` is no name of ``key``."""
    m = _regex(key, last).fullmatch(str(text))
    return m.groupdict() if m else None


_WEIGHT_DECAY = re.compile(rf"wd_(?P<wd>{_FIELD_PATTERNS['wd']})(?=$|[-/]|\.[a-z])")


def weight_decay_in(text: str) -> float | None:
    """The weight decay a name spells (either spelling, e.g. ``wd_0.0005``, ``wd_0.000500``,
    ``wd_1e-05``); None when it spells none."""
    m = _WEIGHT_DECAY.search(str(text))
    return float(m.group("wd")) if m else None


@dataclass(frozen=True)
class RunLayout:
    """Where each stage of one run writes (see artifacts/README.md)."""

    root: Path

    @property
    def store(self) -> Path:
        return path("store", self.root)

    @property
    def traces(self) -> Path:
        return path("traces", self.root)

    def graphs(self, weight_decay: float) -> Path:
        return path("graphs", self.root, wd=weight_decay)

    def lowfpr_metric_graphs(self, metric: str, weight_decay: float) -> Path:
        """The Table-3 attacks' graphs with the TPR at ``metric`` as their outcome."""
        return path("lowfpr_graphs", self.root, metric=metric, wd=weight_decay)

    def low_fpr_graphs(self, weight_decay: float) -> Path:
        """The graphs of LiRA, RMIA and the loss threshold with their TPR at low FPR as the attack node."""
        return path("lowfpr_outcome_graphs", self.root, wd=weight_decay)

    def ates(self, weight_decay: float) -> Path:
        return path("ates", self.root, wd=weight_decay)

    def lowfpr_ates(self, metric: str, weight_decay: float) -> Path:
        return path("lowfpr_ates", self.root, metric=metric, wd=weight_decay)

    def results(self, weight_decay: float) -> Path:
        """Table 2's input of the graphs learned at ``weight_decay`` (the authors' ``results-cont``)."""
        return path("comparison", self.graphs(weight_decay), wd=weight_decay)

    @property
    def verdicts(self) -> Path:
        return path("verdicts", self.root)

    @property
    def tables(self) -> Path:
        return path("tables", self.root)

    def table(self, table: str) -> Path:
        return path("table", self.root, table=table)

    @property
    def figures(self) -> Path:
        return path("figures", self.root)

    @property
    def report(self) -> Path:
        return path("report_md", self.root)

    @property
    def provenance(self) -> Path:
        return path("provenance", self.root)


#: The top-level entries of a run folder (artifacts/README.md); the run folder's marker lists them.
RUN_ENTRIES = tuple(dict.fromkeys(n.pattern.split("/")[0] for n in NAMES if n.base == "run"))


# --------------------------------------------------------------------------------------
# R's copy
# --------------------------------------------------------------------------------------

R_COLUMNS = ("key", "base", "pattern", "description")


def r_layout_text() -> str:
    """The content of ``r/layout.csv``: one row per name, R filling in the fields (``{wd:f}``
    with ``sprintf("%f")``, ``{wd:g}`` with ``sprintf("%g")``, C's spellings as here)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(R_COLUMNS)
    for entry in NAMES:
        writer.writerow([entry.key, entry.base, entry.pattern, entry.description])
    return out.getvalue()


def write_r_layout(path: Path | None = None) -> Path:
    """Write ``r/layout.csv`` (the checkout's ``r/`` by default)."""
    from etio.core.paths import r_dir

    path = Path(path) if path else r_dir() / "layout.csv"
    path.write_text(r_layout_text())
    return path


if __name__ == "__main__":
    print(write_r_layout())
