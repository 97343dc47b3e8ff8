"""Figures of the reproduction: the causal graphs (paper App. D, Figs. 7-15), the accuracy gap
against attack accuracy (paper Fig. 1) and bias/variance against model width (paper §5.4).

Every function writes the figure twice, as ``<stem>.svg`` and ``<stem>.png``, and returns the
two paths. Figures are built on :class:`matplotlib.figure.Figure` directly, so no pyplot state
or interactive backend is involved. SVG text is kept as text (not outlines) so that node names
can be searched in the file.

Causal graphs are laid out by graphviz (the ``graphviz`` package driving the ``dot`` program,
the layout the authors' ``graphviz.plot`` figures use); without graphviz installed a plain
matplotlib drawing (nodes on a circle) stands in. Nodes are labelled with the vocabulary's
display names (:mod:`etio.core.vocabulary`). In both renderings the attack node is filled red, arcs into it are red, and, when arc strengths
are given, an arc's width and label show its strength (the fraction of learned networks that
contain it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import graphviz
import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from etio.causal.estimators import Status
from etio.core import layout
from etio.core.errors import EtioInputError, check_choice
from etio.core.figure_files import save_figure
from etio.core.schema import ATTACKS, ROOT_CANDIDATES, TableSchema, from_r_name, select_slice
from etio.core.vocabulary import display

ATTACK_FILL = "#d62728"
ATTACK_TEXT = "#ffffff"
NODE_FILL = "#e8eef7"
NODE_EDGE = "#4a5a78"
ROOT_FILL = "#f2f2f2"
ARC_COLOR = "#555555"
PNG_DPI = 130

#: Arc strengths as produced by the learn stage (bnlearn ``custom.strength`` / ``boot.strength``).
ARC_STRENGTH_SCHEMA = TableSchema(
    name="arc strength table",
    required={"from": "str", "to": "str", "strength": "float"},
    optional={"direction": "float"},
)

_RC = {"font.size": 9}   # with etio.core.figure_files.FIGURE_RC: fixed SVG ids, no dates


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _stem(out_stem: Path | str) -> Path:
    stem = Path(out_stem)
    if stem.suffix.lower() in {".svg", ".png"}:
        stem = stem.parent / stem.stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem


def _outputs(stem: Path) -> tuple[Path, Path]:
    # Not with_suffix: stems such as "graph-wd_0.0005-ce-Oak17Acc" contain dots.
    return stem.parent / f"{stem.name}.svg", stem.parent / f"{stem.name}.png"


def _save(fig: Figure, stem: Path) -> list[Path]:
    svg, png = _outputs(stem)
    save_figure(fig, svg, rc=_RC)
    save_figure(fig, png, rc=_RC, dpi=PNG_DPI)
    return [svg, png]


def svg_id(node: str) -> str:
    """The element id a node gets in the SVG (``node-`` + the name with XML-unsafe characters as ``_``)."""
    return "node-" + re.sub(r"[^A-Za-z0-9_.-]", "_", node)


def svg_arc_id(u: str, v: str) -> str:
    """The element id an arc ``u -> v`` gets in the SVG."""
    return "arc-" + re.sub(r"[^A-Za-z0-9_.-]", "_", u) + "-" + re.sub(r"[^A-Za-z0-9_.-]", "_", v)


def paper_label(node: str) -> str:
    """A node's label: its name in the vocabulary (the paper's symbol; see etio.core.vocabulary)."""
    return display(node)


# --------------------------------------------------------------------------------------
# Causal graphs (paper App. D)
# --------------------------------------------------------------------------------------

def draw_causal_graph(graph: nx.DiGraph, attack: str, out_stem: Path | str,
                      strengths: pd.DataFrame | None = None, title: str | None = None,
                      engine: str | None = None) -> list[Path]:
    """Draw a learned causal graph with ``attack`` highlighted; returns ``[svg, png]``.

    ``graph`` may use R or Python node names; undirected arcs (both directions with
    ``undirected=True``) are drawn once without arrow heads. ``strengths`` (columns
    ``from, to, strength[, direction]``, R or Python names) sets each drawn arc's width and label.
    ``engine`` is ``"graphviz"`` (layout by graphviz's ``dot``) or ``"matplotlib"`` (the plain
    fallback for machines without graphviz); by default graphviz when ``dot`` is installed.
    """
    graph = _python_names(graph)
    attack = from_r_name(attack)
    if attack not in graph:
        raise EtioInputError(f"attack node {attack!r} is not in the graph (nodes: {', '.join(graph.nodes)})")
    engine = _engine(engine)
    arcs = _drawn_arcs(graph, _strength_lookup(strengths))
    stem = _stem(out_stem)
    if engine == "graphviz":
        try:
            return _render(graphviz_source(graph, arcs, attack, title), stem)
        except _GRAPHVIZ_FAILURES as exc:
            # A broken graphviz install must not cost the whole report: fall back, but say so.
            warnings.warn(f"graphviz failed ({_first_line(exc)}); drawing {stem.name} with matplotlib instead",
                          stacklevel=2)
    return _draw_with_matplotlib(graph, arcs, attack, stem, title)


def _python_names(graph: nx.DiGraph) -> nx.DiGraph:
    return nx.relabel_nodes(graph, {n: from_r_name(n) for n in graph.nodes}, copy=True)


def _engine(engine: str | None) -> str:
    if engine is None:
        return "graphviz" if shutil.which("dot") else "matplotlib"
    check_choice("graph drawing engine", engine, ("graphviz", "matplotlib"))
    if engine == "graphviz" and shutil.which("dot") is None:
        raise EtioInputError("graphviz's 'dot' program is not installed; use engine='matplotlib'")
    return engine


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "stderr", b"") or b"", "utf-8", "replace") if isinstance(getattr(exc, "stderr", None),
                                                                                     bytes) else ""
    return (text.strip().splitlines() or [str(exc)])[0]


_GRAPHVIZ_FAILURES = (OSError, subprocess.SubprocessError, graphviz.ExecutableNotFound)


def _strength_lookup(strengths: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float, float]]:
    if strengths is None:
        return {}
    table = ARC_STRENGTH_SCHEMA.validate(strengths)
    direction = table["direction"] if "direction" in table else pd.Series(np.nan, index=table.index)
    return {
        (from_r_name(u), from_r_name(v)): (float(s), float(d))
        for u, v, s, d in zip(table["from"], table["to"], table["strength"], direction)
    }


def _drawn_arcs(graph: nx.DiGraph, lookup: Mapping[tuple[str, str], tuple[float, float]] | None = None) -> list[dict]:
    """One record per drawn arc: endpoints, directed or not, strength (None when unknown)."""
    lookup = lookup or {}
    order = {n: i for i, n in enumerate(graph.nodes)}
    arcs = []
    for u, v, data in graph.edges(data=True):
        undirected = bool(data.get("undirected")) and graph.has_edge(v, u)
        if undirected and order[u] > order[v]:
            continue
        hit = lookup.get((u, v)) or (lookup.get((v, u)) if undirected else None)
        arcs.append({"u": u, "v": v, "directed": not undirected, "strength": hit[0] if hit else None})
    return arcs


def _arc_width(strength: float | None) -> float:
    return 1.2 if strength is None else 0.5 + 3.0 * max(0.0, min(1.0, strength))


def _node_attrs(node: str, attack: str, element_id: str) -> dict[str, str]:
    attrs = {"id": element_id, "label": paper_label(node), "tooltip": node}
    if node == attack:
        attrs.update(fillcolor=ATTACK_FILL, fontcolor=ATTACK_TEXT, color="#8b1a1a", penwidth="2")
    elif node in ROOT_CANDIDATES:
        attrs.update(shape="box", style="rounded,filled", fillcolor=ROOT_FILL)
    return attrs


def _digraph(title: str | None, **graph_attr: str) -> graphviz.Digraph:
    dot = graphviz.Digraph("etio", graph_attr={"rankdir": "TB", "nodesep": "0.25", "ranksep": "0.55",
                                               "fontname": "Helvetica", "bgcolor": "white", "pad": "0.2",
                                               **graph_attr})
    if title:
        dot.attr(label=title, labelloc="t", fontsize="15")
    dot.attr("node", shape="ellipse", style="filled", fillcolor=NODE_FILL, color=NODE_EDGE, fontname="Helvetica",
             fontsize="11")
    dot.attr("edge", color=ARC_COLOR, arrowsize="0.7", fontname="Helvetica", fontsize="9", fontcolor="#333333")
    return dot


def graphviz_source(graph: nx.DiGraph, arcs: Sequence[dict], attack: str, title: str | None) -> str:
    """The DOT text handed to graphviz (node ids are the trace names; ``id`` is the SVG element id)."""
    dot = _digraph(title)
    for node in graph.nodes:
        dot.node(node, **_node_attrs(node, attack, svg_id(node)))
    for arc in arcs:
        attrs = {"id": svg_arc_id(arc["u"], arc["v"]), "penwidth": f"{_arc_width(arc['strength']):.2f}"}
        if not arc["directed"]:
            attrs["dir"] = "none"
        if attack in (arc["u"], arc["v"]):
            attrs["color"] = ATTACK_FILL
        if arc["strength"] is not None:
            attrs["label"] = f"{arc['strength']:.2f}"
        dot.edge(arc["u"], arc["v"], **attrs)
    return dot.source


def _render(source: str, stem: Path, engine: str = "dot", neato_no_op: int | None = None) -> list[Path]:
    svg, png = _outputs(stem)
    for fmt, path, extra in (("svg", svg, source), ("png", png, source.replace("digraph etio {",
                                                                                f"digraph etio {{\n\tdpi={PNG_DPI}", 1))):
        path.write_bytes(graphviz.pipe(engine, fmt, extra.encode(), neato_no_op=neato_no_op, quiet=True))
    return [svg, png]


_Item = TypeVar("_Item")
_Drawn = TypeVar("_Drawn")
#: matplotlib's pyplot state is not thread-safe: its drawings take turns (see :func:`draw_each`)
_MATPLOTLIB = threading.Lock()


def draw_each(draw: Callable[[_Item], _Drawn], items: Sequence[_Item]) -> list[_Drawn]:
    """``[draw(item) for item in items]``, in that order, on as many threads as cores when graphviz draws:
    each drawing waits on its ``dot`` processes, so two run at once on two cores (the files are the
    same whatever the number); one after the other without graphviz."""
    from concurrent.futures import ThreadPoolExecutor

    from etio.core.provenance import available_cores

    threads = min(available_cores(), len(items)) if shutil.which("dot") else 1
    if threads <= 1:
        return [draw(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(draw, items))


def _draw_with_matplotlib(graph: nx.DiGraph, arcs: Sequence[dict], attack: str, stem: Path,
                          title: str | None) -> list[Path]:
    """The plain fallback without graphviz: nodes on a circle, straight arcs."""
    with _MATPLOTLIB:
        return _draw_circle(graph, arcs, attack, stem, title)


def _draw_circle(graph: nx.DiGraph, arcs: Sequence[dict], attack: str, stem: Path,
                 title: str | None) -> list[Path]:
    from matplotlib.patches import FancyArrowPatch

    nodes = list(graph.nodes)
    pos = {n: (3.2 * float(np.cos(2 * np.pi * i / len(nodes) + np.pi / 2)),
               3.2 * float(np.sin(2 * np.pi * i / len(nodes) + np.pi / 2))) for i, n in enumerate(nodes)}
    fig = Figure(figsize=(8.5, 8.5 if not title else 9.0))
    ax = fig.add_axes((0, 0, 1, 0.94 if title else 1))
    ax.set_xlim(-4.6, 4.6)
    ax.set_ylim(-4.3, 4.3)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=12)
    for node in nodes:
        x, y = pos[node]
        is_attack = node == attack
        fill = ATTACK_FILL if is_attack else (ROOT_FILL if node in ROOT_CANDIDATES else NODE_FILL)
        ax.text(x, y, paper_label(node), ha="center", va="center", fontsize=9, zorder=4,
                color=ATTACK_TEXT if is_attack else "#111111", gid=svg_id(node),
                bbox=dict(boxstyle="round,pad=0.3", facecolor=fill, edgecolor="#8b1a1a" if is_attack else NODE_EDGE,
                          linewidth=2.0 if is_attack else 1.0))
    for arc in arcs:
        u, v = arc["u"], arc["v"]
        patch = FancyArrowPatch(pos[u], pos[v], shrinkA=22, shrinkB=22,
                                arrowstyle="-|>" if arc["directed"] else "-", mutation_scale=11,
                                linewidth=_arc_width(arc["strength"]),
                                color=ATTACK_FILL if attack in (u, v) else ARC_COLOR, zorder=2)
        patch.set_gid(svg_arc_id(u, v))
        ax.add_patch(patch)
        if arc["strength"] is not None:
            (x0, y0), (x1, y1) = pos[u], pos[v]
            ax.text(0.6 * x0 + 0.4 * x1, 0.6 * y0 + 0.4 * y1, f"{arc['strength']:.2f}", ha="center", va="center",
                    fontsize=7, color="#333333", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    return _save(fig, stem)


# --------------------------------------------------------------------------------------
# Our graph beside the authors' (same node positions)
# --------------------------------------------------------------------------------------

ONLY_OURS_COLOR = "#e67e00"
ONLY_AUTHORS_COLOR = "#1f6fc5"


def _arc_keys(graph: nx.DiGraph) -> dict[frozenset | tuple, dict]:
    return {(a["u"], a["v"]) if a["directed"] else frozenset((a["u"], a["v"])): a for a in _drawn_arcs(graph)}


def shared_layout(graphs: Sequence[nx.DiGraph]) -> dict[str, tuple[float, float]]:
    """Node positions (points) of graphviz's ``dot`` layout of the union of ``graphs``, so that
    every graph can be drawn with each node at the same place."""
    union = nx.DiGraph()
    for g in graphs:
        union.add_nodes_from(g.nodes)
        union.add_edges_from((a["u"], a["v"]) for a in _drawn_arcs(g))
    dot = _digraph(None)
    for node in union.nodes:
        dot.node(node, label=paper_label(node))
    for u, v in union.edges:
        dot.edge(u, v)
    laid = json.loads(graphviz.pipe("dot", "json", dot.source.encode(), quiet=True))
    return {o["name"]: tuple(float(c) for c in o["pos"].split(",")) for o in laid.get("objects", []) if "pos" in o}


def draw_graph_comparison(ours: nx.DiGraph, authors: nx.DiGraph, attack: str, out_stem: Path | str,
                          titles: tuple[str, str] = ("this run", "authors' graph"),
                          title: str | None = None) -> list[Path]:
    """Our graph (left) beside the authors' (right), every node at the same position in both.

    Arcs in both graphs are grey (red into the attack); an arc only in ours is orange, one only
    in the authors' graph blue and dashed. Needs graphviz; returns ``[svg, png]``.
    """
    if shutil.which("dot") is None:
        raise EtioInputError("graphviz's 'dot' program is not installed; the side-by-side graph comparison needs it")
    ours, authors = _python_names(ours), _python_names(authors)
    attack = from_r_name(attack)
    for name, g in (("our", ours), ("the authors'", authors)):
        if attack not in g:
            raise EtioInputError(f"attack node {attack!r} is not in {name} graph")
    pos = shared_layout([ours, authors])
    width = max(x for x, _ in pos.values()) - min(x for x, _ in pos.values()) + 160
    top = max(y for _, y in pos.values()) + 40
    keys = {"ours": _arc_keys(ours), "authors": _arc_keys(authors)}
    dot = _digraph(title, splines="true")
    for panel, (graph, heading, offset) in enumerate(((ours, titles[0], 0.0), (authors, titles[1], width))):
        side = ("ours", "authors")[panel]
        other = keys[("authors", "ours")[panel]]
        xs = [pos[n][0] for n in graph.nodes]
        dot.node(f"{side}-heading", label=heading, shape="plaintext", style="", fontsize="14",
                 pos=f"{offset + (min(xs) + max(xs)) / 2:.1f},{top:.1f}!", id=f"{side}-heading")
        for node in graph.nodes:
            attrs = _node_attrs(node, attack, f"{side}-{svg_id(node)}")
            x, y = pos[node]
            dot.node(f"{side}__{node}", pos=f"{x + offset:.1f},{y:.1f}!", **attrs)
        for key, arc in keys[side].items():
            attrs = {"id": f"{side}-{svg_arc_id(arc['u'], arc['v'])}"}
            if not arc["directed"]:
                attrs["dir"] = "none"
            if key not in other:
                attrs.update(color=ONLY_OURS_COLOR if side == "ours" else ONLY_AUTHORS_COLOR, penwidth="2.4")
                if side == "authors":
                    attrs["style"] = "dashed"
            elif attack in (arc["u"], arc["v"]):
                attrs["color"] = ATTACK_FILL
            dot.edge(f"{side}__{arc['u']}", f"{side}__{arc['v']}", **attrs)
    return _render(dot.source, _stem(out_stem), engine="neato", neato_no_op=2)


# --------------------------------------------------------------------------------------
# Paper Fig. 1: accuracy gap vs attack accuracy, by architecture
# --------------------------------------------------------------------------------------

def _require(traces: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in traces.columns]
    if missing:
        raise EtioInputError(f"{what}: trace table has no column(s) {', '.join(map(repr, missing))}")


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def figure1_gap_vs_attack(traces: pd.DataFrame, out_stem: Path | str, attack: str = "Oak17Acc") -> list[Path]:
    """AccDiff against ``attack``'s accuracy, one colour per architecture (paper Fig. 1).

    A dashed black line is the least-squares trend over all points, a coloured line the trend
    within each architecture; the legend gives Pearson's r for each. The paper's point is that
    the pooled trend is positive while the within-architecture trends can be reversed.
    """
    _require(traces, ["Arch", "AccDiff", attack], "figure 1")
    data = traces[["Arch", "AccDiff", attack]].copy()
    data["AccDiff"] = pd.to_numeric(data["AccDiff"], errors="coerce")
    data[attack] = pd.to_numeric(data[attack], errors="coerce")
    data = data.dropna()
    if data.empty:
        raise EtioInputError(f"figure 1: no trace row has both AccDiff and {attack}")
    paper = display(attack)
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10"]
    x_all, y_all = data["AccDiff"].to_numpy(float), data[attack].to_numpy(float)
    grid = np.linspace(x_all.min(), x_all.max(), 50)
    for i, (arch, rows) in enumerate(data.groupby("Arch", sort=True)):
        x, y = rows["AccDiff"].to_numpy(float), rows[attack].to_numpy(float)
        color = colors(i % 10)
        ax.scatter(x, y, s=28, color=color, alpha=0.85, edgecolors="white", linewidths=0.5,
                   label=f"Arch={arch} (n={len(x)}, r={_pearson(x, y):+.2f})")
        line = _fit_line(x, y)
        if line:
            xs = np.linspace(x.min(), x.max(), 20)
            ax.plot(xs, line[0] * xs + line[1], color=color, linewidth=1.5)
    line = _fit_line(x_all, y_all)
    if line:
        ax.plot(grid, line[0] * grid + line[1], color="black", linestyle="--", linewidth=1.2,
                label=f"all architectures (r={_pearson(x_all, y_all):+.2f})")
    ax.set_xlabel("train-test accuracy gap (AccDiff)")
    ax.set_ylabel(f"attack accuracy: {paper}" + (f" ({attack})" if paper != attack else ""))
    ax.set_title("Accuracy gap vs. attack accuracy, by architecture")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", frameon=True)
    fig.tight_layout()
    return _save(fig, _stem(out_stem))


# --------------------------------------------------------------------------------------
# Paper §5.4: bias and variance against width
# --------------------------------------------------------------------------------------

BIAS_VARIANCE_COLUMNS = ["TrainBias2", "TestBias2", "TrainVar", "TestVar"]


def bias_variance_by_width(traces: pd.DataFrame) -> pd.DataFrame:
    """Mean of TrainBias2, TestBias2, TrainVar, TestVar per (Loss, Arch, Width).

    Averaging is over every other configuration dimension present (dataset, train size,
    weight decay, epochs, scheduler).
    """
    _require(traces, ["Loss", "Arch", "Width", *BIAS_VARIANCE_COLUMNS], "bias/variance figure")
    data = traces[["Loss", "Arch", "Width", *BIAS_VARIANCE_COLUMNS]].copy()
    data["Width"] = data["Width"].astype(float)  # a number since read_traces
    for col in BIAS_VARIANCE_COLUMNS:
        data[col] = pd.to_numeric(data[col], errors="coerce")
    data = data.dropna(subset=["Width"])
    means = data.groupby(["Loss", "Arch", "Width"], sort=True)[BIAS_VARIANCE_COLUMNS].mean().reset_index()
    return means.dropna(subset=BIAS_VARIANCE_COLUMNS, how="all")


def bias_variance_vs_width(traces: pd.DataFrame, out_stem: Path | str) -> list[Path]:
    """Bias² and variance (train dashed, test solid) against width: one row of panels per loss,
    one colour per architecture (paper §5.4)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import ScalarFormatter

    means = bias_variance_by_width(traces)
    if means.empty:
        raise EtioInputError("bias/variance figure: no trace row has a width and bias/variance values")
    losses = sorted(means["Loss"].unique(), key=lambda s: (s != "ce", s))
    archs = sorted(means["Arch"].unique())
    colors = {a: matplotlib.colormaps["tab10"](i % 10) for i, a in enumerate(archs)}
    fig = Figure(figsize=(9.0, 3.2 * len(losses) + 0.6))
    axes = fig.subplots(len(losses), 2, squeeze=False)
    for r, loss in enumerate(losses):
        rows = means[means["Loss"] == loss]
        for c, (quantity, train_col, test_col) in enumerate(
                (("bias²", "TrainBias2", "TestBias2"), ("variance", "TrainVar", "TestVar"))):
            ax = axes[r][c]
            for arch, sub in rows.groupby("Arch", sort=True):
                for col, style in ((train_col, "--"), (test_col, "-")):
                    ok = sub[col].notna()
                    ax.plot(sub["Width"][ok], sub[col][ok], style, marker="o", markersize=3.5,
                            color=colors[arch], linewidth=1.4)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())  # widths as 2, 4, 8, not 2^1, 2^2
            ax.set_title(f"{loss.upper()} loss: {quantity}")
            ax.set_xlabel("width")
            ax.set_ylabel(quantity)
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[a], marker="o", markersize=4, label=a) for a in archs]
    handles += [Line2D([], [], color="#333333", linestyle="-", label="test (non-members)"),
                Line2D([], [], color="#333333", linestyle="--", label="train (members)")]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return _save(fig, _stem(out_stem))


# --------------------------------------------------------------------------------------
# All figures of a run
# --------------------------------------------------------------------------------------

def graph_figure_stem(out_dir: Path, weight_decay: float, loss: str, attack: str) -> Path:
    return layout.path("graph_figure", out_dir, wd=weight_decay, loss=loss, attack=attack)


def graph_title(weight_decay: float, loss: str, attack: str) -> str:
    paper = display(attack)
    return f"{paper}: {loss.upper()}-trained models, weight decay {weight_decay:g}"


def figure_caption(path: Path | str) -> str:
    """A caption for a file written by :func:`all_figures`, from its name."""
    stem = Path(path).stem
    if m := layout.fields_of("graph_figure", stem, last=True):
        wd, loss, attack = m["wd"], m["loss"], m["attack"]
        paper = display(attack)
        name = paper if paper == attack else f"{paper} ({attack})"
        return f"Causal graph for {name}, {loss.upper()} loss, weight decay {wd} (paper App. D)."
    if m := layout.fields_of("fig1", stem):
        attack = m["attack"]
        return f"Train-test accuracy gap vs. {display(attack)} accuracy, " \
               "by architecture (paper Fig. 1)."
    if m := layout.fields_of("ate_forest", stem, last=True):
        wd, loss = m["wd"], m["loss"]
        return (f"ATEs with 95 % confidence intervals and status, {loss.upper()} loss, weight decay {wd} "
                "(sound estimator; the paper estimator's value beside).")
    if layout.fields_of("bias_variance", stem) is not None:
        return "Bias² and variance of members (train) and non-members (test) against width (paper §5.4)."
    return stem


def figure1_rows(traces: pd.DataFrame) -> pd.DataFrame:
    """The rows Fig. 1 is drawn from: CE models at the lowest ("normal") weight decay, as in the
    paper; all rows when the trace has none of those."""
    if "Loss" not in traces or "WeightDecay" not in traces:
        return traces
    rows = select_slice(traces, "ce", pd.to_numeric(traces["WeightDecay"], errors="coerce").min())
    return rows if len(rows) else traces


def _has_values(traces: pd.DataFrame, column: str) -> bool:
    return column in traces and pd.to_numeric(traces[column], errors="coerce").notna().any()


def all_figures(traces: pd.DataFrame, graphs: Mapping[tuple[float, str, str], tuple[nx.DiGraph, pd.DataFrame | None]],
                out_dir: Path | str) -> list[Path]:
    """Every figure of a run under ``out_dir``; returns the written paths (SVG and PNG of each).

    Fig. 1 uses ShadowAcc (Oak17Acc), or the first attack with values when the trace has no
    Oak17Acc. Figures whose inputs are absent from the trace are skipped; graphs are drawn for
    every ``(weight decay, loss, attack)`` key, in sorted order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    fig1_data = figure1_rows(traces)
    attack = next((a for a in ["Oak17Acc", *ATTACKS] if _has_values(fig1_data, a)), None)
    if attack is not None and _has_values(fig1_data, "AccDiff") and "Arch" in fig1_data:
        paths += figure1_gap_vs_attack(fig1_data, layout.path("fig1", out_dir, attack=attack), attack=attack)
    if all(_has_values(traces, c) for c in BIAS_VARIANCE_COLUMNS) and {"Arch", "Width", "Loss"} <= set(traces):
        paths += bias_variance_vs_width(traces, layout.path("bias_variance", out_dir))

    def draw(key):
        wd, loss, attack_name = key
        graph, strengths = graphs[key]
        return draw_causal_graph(graph, attack_name, graph_figure_stem(out_dir, float(wd), loss, attack_name),
                                 strengths=strengths, title=graph_title(float(wd), loss, attack_name))

    for drawn in draw_each(draw, sorted(graphs, key=lambda k: (float(k[0]), k[1], ATTACKS.index(k[2])
                                                                if k[2] in ATTACKS else len(ATTACKS)))):
        paths += drawn
    return paths


def draw_learned_graph(graph, stem: Path) -> list[Path]:
    """The figures of a graph just learned (:class:`etio.causal.learning.LearnedGraph`), arc strengths shown."""
    return draw_causal_graph(graph.graph, graph.attack, stem, strengths=graph.strengths,
                             title=f"{graph.name} (wd {graph.weight_decay:g}, {graph.method}, "
                                   f"threshold {graph.threshold:.2f})")


# --------------------------------------------------------------------------------------
# ATE forest plot
# --------------------------------------------------------------------------------------

_STATUS_STYLE = {Status.ESTIMATED: ("#1f4e99", "o"), Status.NO_PATH: ("#999999", "|"),
                 Status.NOT_IDENTIFIABLE: ("#d62728", "x")}


def ate_forest_plot(ates: pd.DataFrame, loss: str, weight_decay: float, out_stem: Path | str) -> list[Path]:
    """The sound ATEs of one (loss, weight decay) with their 95 % intervals, one panel per attack.

    Estimated cells: point and interval (hollow when the interval contains 0); cells without a
    causal path: a grey tick at 0; cells that are not identifiable: a red cross in the margin and
    no number. The paper estimator's value is drawn as a small grey diamond beside each row.
    """

    sel = select_slice(ates, loss, weight_decay, loss_column="loss", weight_decay_column="weight_decay")
    if sel.empty:
        raise EtioInputError(f"no {loss} ATEs at weight decay {weight_decay:g} to plot")
    attacks = [a for a in ATTACKS if a in set(sel["attack"])]
    features = list(dict.fromkeys(sel["feature"]))
    estimated = sel[sel["status"] == Status.ESTIMATED]
    values = pd.concat([estimated["ci_low"], estimated["ci_high"]]).astype(float)
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if len(values) else (-1.0, 1.0)
    pad = 0.08 * max(high - low, 1e-6)
    low, high = min(low, 0.0) - pad, max(high, 0.0) + pad
    margin = low - 0.5 * pad
    fig = Figure(figsize=(2.3 * len(attacks) + 1.6, 0.28 * len(features) + 1.4))
    axes = fig.subplots(1, len(attacks), sharey=True, squeeze=False)[0]
    for ax, attack in zip(axes, attacks):
        rows = sel[sel["attack"] == attack].set_index("feature")
        ax.axvline(0.0, color="#bbbbbb", lw=0.8)
        for y, feature in enumerate(features):
            if feature not in rows.index:
                continue
            r = rows.loc[feature]
            colour, marker = _STATUS_STYLE[r["status"]]
            if r["status"] == Status.ESTIMATED:
                covers_zero = r["ci_low"] <= 0.0 <= r["ci_high"]
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, lw=1.4)
                ax.plot([r["ate"]], [y], marker=marker, color=colour, ms=4.5,
                        markerfacecolor="white" if covers_zero else colour)
                if np.isfinite(r["ate_paper"]):
                    ax.plot([r["ate_paper"]], [y + 0.25], marker="d", color="#888888", ms=3)
            elif r["status"] == Status.NO_PATH:
                ax.plot([0.0], [y], marker=marker, color=colour, ms=7)
            elif r["status"] == Status.NOT_IDENTIFIABLE:
                ax.plot([margin], [y], marker=marker, color=colour, ms=5)
        ax.set_xlim(margin - 0.5 * pad, high)
        ax.set_title(display(attack), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("ATE (min → max)", fontsize=7)
    axes[0].set_yticks(range(len(features)))
    axes[0].set_yticklabels([paper_label(f) for f in features], fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"ATEs with 95 % CIs (sound estimator), {loss.upper()} loss, weight decay {weight_decay:g}; "
                 "× not identifiable, | no causal path, hollow: CI contains 0, ◆ paper estimator", fontsize=8)
    fig.tight_layout()
    return _save(fig, _stem(out_stem))


def ate_forest_stem(out_dir: Path, weight_decay: float, loss: str) -> Path:
    return layout.path("ate_forest", out_dir, wd=weight_decay, loss=loss)


def validation_figure(cells: pd.DataFrame, out_stem: Path | str) -> list[Path]:
    """``etio validate``: estimates with 95 % intervals against the structural model's truth, the
    sound and the paper estimator side by side, on the true and on the learned graphs; intervals
    that miss the truth are red."""

    panels = [(graph, label, est, lo, hi) for graph in ("true", "learned")
              for label, est, lo, hi in (("sound", "ate", "ci_low", "ci_high"),
                                         ("paper", "ate_paper", "ci_low_paper", "ci_high_paper"))]
    fig = Figure(figsize=(10, 9))
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    for ax, (graph, label, est, lo, hi) in zip(axes, panels):
        rows = cells[(cells["graph"] == graph) & (cells["status"] == Status.ESTIMATED)]
        covered = (rows[lo] <= rows["truth"]) & (rows["truth"] <= rows[hi])
        for hit, colour in ((True, "#1f4e99"), (False, "#d62728")):
            part = rows[covered == hit]
            ax.errorbar(part["truth"], part[est], yerr=[part[est] - part[lo], part[hi] - part[est]],
                        fmt="o", ms=2.5, lw=0.7, color=colour, alpha=0.8,
                        label="interval contains the truth" if hit else "interval misses the truth")
        if len(rows):
            span = [float(rows["truth"].min()), float(rows["truth"].max())]
            ax.plot(span, span, color="#888888", lw=0.8)
        ax.set_title(f"{label} estimator, {graph} graph: coverage {covered.mean():.3f} ({len(rows)} effects)",
                     fontsize=8)
        ax.set_xlabel("true ATE (min → max)", fontsize=7)
        ax.set_ylabel("estimate and 95 % interval", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, _stem(out_stem))
