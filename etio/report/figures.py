"""Figures of the reproduction: the causal graphs (paper App. D, Figs. 7-15), the accuracy gap
against attack accuracy (paper Fig. 1) and bias/variance against model width (paper §5.4).

Every function writes the figure twice, as ``<stem>.svg`` and ``<stem>.png``, and returns the
two paths. Figures are built on :class:`matplotlib.figure.Figure` directly, so no pyplot state
or interactive backend is involved. SVG text is kept as text (not outlines) so that node names
can be searched in the file.

Causal graphs are laid out by graphviz's ``dot`` program when it is on the PATH (the layout the
authors' ``graphviz.plot`` figures use) and otherwise by a layered layout drawn with matplotlib.
In both renderings the attack node is filled red, arcs into it are red, and, when arc strengths
are given, an arc's width and label show its strength (the fraction of learned networks that
contain it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from etio.core.errors import EtioInputError
from etio.core.schema import ATTACK_PAPER_NAMES, ATTACKS, ROOT_CANDIDATES, TableSchema, from_r_name

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

_RC = {"svg.fonttype": "none", "svg.hashsalt": "etio", "font.size": 9}


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
    with matplotlib.rc_context(_RC):
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return [svg, png]


def svg_id(node: str) -> str:
    """The element id a node gets in the SVG (``node-`` + the name with XML-unsafe characters as ``_``)."""
    return "node-" + re.sub(r"[^A-Za-z0-9_.-]", "_", node)


def svg_arc_id(u: str, v: str) -> str:
    """The element id an arc ``u -> v`` gets in the SVG."""
    return "arc-" + re.sub(r"[^A-Za-z0-9_.-]", "_", u) + "-" + re.sub(r"[^A-Za-z0-9_.-]", "_", v)


def paper_label(node: str) -> str:
    """Display label: the trace column name, with the paper's symbol under an attack name."""
    name = from_r_name(node)
    paper = ATTACK_PAPER_NAMES.get(name)
    return f"{name}\n({paper})" if paper and paper != name else name


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
    ``engine`` is ``"graphviz"`` or ``"matplotlib"``; by default graphviz when ``dot`` is installed.
    """
    graph = nx.relabel_nodes(graph, {n: from_r_name(n) for n in graph.nodes}, copy=True)
    attack = from_r_name(attack)
    if attack not in graph:
        raise EtioInputError(f"attack node {attack!r} is not in the graph (nodes: {', '.join(graph.nodes)})")
    if engine not in (None, "graphviz", "matplotlib"):
        raise EtioInputError(f"unknown graph drawing engine {engine!r}; use 'graphviz' or 'matplotlib'")
    arcs = _drawn_arcs(graph, _strength_lookup(strengths))
    stem = _stem(out_stem)
    if engine is None:
        engine = "graphviz" if shutil.which("dot") else "matplotlib"
    if engine == "graphviz":
        dot = shutil.which("dot")
        if dot is None:
            raise EtioInputError("graphviz's 'dot' program is not installed; use engine='matplotlib'")
        try:
            return _draw_with_graphviz(dot, graph, arcs, attack, stem, title)
        except (OSError, subprocess.SubprocessError) as exc:
            # A broken graphviz install must not cost the whole report: fall back, but say so.
            warnings.warn(f"graphviz failed ({exc}); drawing {stem.name} with matplotlib instead", stacklevel=2)
    return _draw_with_matplotlib(graph, arcs, attack, stem, title)


def _strength_lookup(strengths: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float, float]]:
    if strengths is None:
        return {}
    table = ARC_STRENGTH_SCHEMA.validate(strengths)
    direction = table["direction"] if "direction" in table else pd.Series(np.nan, index=table.index)
    return {
        (from_r_name(u), from_r_name(v)): (float(s), float(d))
        for u, v, s, d in zip(table["from"], table["to"], table["strength"], direction)
    }


def _drawn_arcs(graph: nx.DiGraph, lookup: Mapping[tuple[str, str], tuple[float, float]]) -> list[dict]:
    """One record per drawn arc: endpoints, directed or not, strength (None when unknown)."""
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


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graphviz_source(graph: nx.DiGraph, arcs: Sequence[dict], attack: str, title: str | None) -> str:
    """The DOT text handed to graphviz (node ids are the trace names; ``id`` is the SVG element id)."""
    lines = [
        "digraph etio {",
        '  graph [rankdir=TB, nodesep=0.25, ranksep=0.55, fontname="Helvetica", bgcolor="white", pad=0.2'
        + (f", label={_dot_quote(title)}, labelloc=t, fontsize=15" if title else "") + "];",
        f'  node [shape=ellipse, style=filled, fillcolor="{NODE_FILL}", color="{NODE_EDGE}", '
        'fontname="Helvetica", fontsize=11];',
        f'  edge [color="{ARC_COLOR}", arrowsize=0.7, fontname="Helvetica", fontsize=9, fontcolor="#333333"];',
    ]
    for node in graph.nodes:
        attrs = {"id": svg_id(node), "label": paper_label(node)}
        if node == attack:
            attrs.update(fillcolor=ATTACK_FILL, fontcolor=ATTACK_TEXT, color="#8b1a1a", penwidth="2")
        elif node in ROOT_CANDIDATES:
            attrs.update(shape="box", style="rounded,filled", fillcolor=ROOT_FILL)
        lines.append(f"  {_dot_quote(node)} [" + ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items()) + "];")
    for arc in arcs:
        attrs = {"id": svg_arc_id(arc["u"], arc["v"]), "penwidth": f"{_arc_width(arc['strength']):.2f}"}
        if not arc["directed"]:
            attrs["dir"] = "none"
        if arc["v"] == attack or arc["u"] == attack:
            attrs["color"] = ATTACK_FILL
        if arc["strength"] is not None:
            attrs["label"] = f"{arc['strength']:.2f}"
        lines.append(f"  {_dot_quote(arc['u'])} -> {_dot_quote(arc['v'])} ["
                     + ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items()) + "];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _draw_with_graphviz(dot: str, graph: nx.DiGraph, arcs: Sequence[dict], attack: str, stem: Path,
                        title: str | None) -> list[Path]:
    source = graphviz_source(graph, arcs, attack, title)
    svg, png = _outputs(stem)
    for fmt, path, extra in (("svg", svg, []), ("png", png, [f"-Gdpi={PNG_DPI}"])):
        subprocess.run([dot, f"-T{fmt}", *extra, "-o", str(path)], input=source.encode(), check=True,
                       capture_output=True, timeout=60)
    return [svg, png]


# Layered layout for the matplotlib rendering: nodes on horizontal layers by longest path from
# the sources (the attack node, which has no children, on the last layer), order within a layer
# by a few barycentre sweeps to reduce crossings. Coordinates are in inches.
_LAYER_GAP = 1.25
_NODE_GAP = 0.4
_NODE_HEIGHT = 0.36
_CHAR_WIDTH = 0.075


def _node_width(label: str) -> float:
    return max(len(line) for line in label.split("\n")) * _CHAR_WIDTH + 0.3


def layered_layout(graph: nx.DiGraph, sink: str | None = None, sweeps: int = 6) -> dict[str, tuple[float, float]]:
    """Node centres (inches, y grows upwards) of a top-to-bottom layered drawing of ``graph``."""
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    order = {n: i for i, n in enumerate(graph.nodes)}
    for u, v, data in graph.edges(data=True):
        if data.get("undirected") and order[u] > order[v]:
            continue
        dag.add_edge(u, v)
    while True:  # a drawing needs no acyclicity guarantee from the caller: drop back arcs
        try:
            cycle = nx.find_cycle(dag)
        except nx.NetworkXNoCycle:
            break
        dag.remove_edge(*cycle[-1][:2])
    layer: dict[str, int] = {}
    for node in nx.topological_sort(dag):
        layer[node] = max((layer[p] + 1 for p in dag.predecessors(node)), default=0)
    if sink is not None and dag.out_degree(sink) == 0 and dag.in_degree(sink) > 0:
        layer[sink] = max(layer.values())
    layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for node in graph.nodes:
        layers[layer[node]].append(node)

    undirected = dag.to_undirected(as_view=True)
    for sweep in range(sweeps):
        indices = range(1, len(layers)) if sweep % 2 == 0 else range(len(layers) - 2, -1, -1)
        for i in indices:
            ref = layers[i - 1] if sweep % 2 == 0 else layers[i + 1]
            pos_ref = {n: k for k, n in enumerate(ref)}
            current = {n: k for k, n in enumerate(layers[i])}

            def barycentre(n: str) -> float:
                ks = [pos_ref[m] for m in undirected.neighbors(n) if m in pos_ref]
                return sum(ks) / len(ks) if ks else current[n]

            layers[i].sort(key=lambda n: (barycentre(n), current[n]))

    widths = {n: _node_width(paper_label(n)) for n in graph.nodes}
    total = [sum(widths[n] for n in row) + _NODE_GAP * (len(row) - 1) for row in layers]
    span = max(total, default=0.0)
    pos = {}
    for i, row in enumerate(layers):
        x = (span - total[i]) / 2
        y = (len(layers) - 1 - i) * _LAYER_GAP
        for n in row:
            pos[n] = (x + widths[n] / 2, y)
            x += widths[n] + _NODE_GAP
    return pos


def _arc_ends(arcs: Sequence[dict], pos: Mapping[str, tuple[float, float]],
               size: Mapping[str, tuple[float, float]]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Start and end point of each arc: arcs leave a node's bottom and enter the next node's top
    at ports spread along the box (ordered by the other end's x), so arcs into the attack node
    do not pile up on one point; arcs within a layer join the boxes' sides."""
    ports: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for k, arc in enumerate(arcs):
        u, v = arc["u"], arc["v"]
        if pos[u][1] == pos[v][1]:
            continue
        upper, lower = (u, v) if pos[u][1] > pos[v][1] else (v, u)
        ports.setdefault((upper, "bottom"), []).append((pos[lower][0], k))
        ports.setdefault((lower, "top"), []).append((pos[upper][0], k))
    at: dict[tuple[int, str], tuple[float, float]] = {}
    for (node, side), items in ports.items():
        (x, y), (w, h) = pos[node], size[node]
        items.sort()
        for i, (_, k) in enumerate(items):
            offset = (i + 1) / (len(items) + 1) - 0.5
            at[(k, node)] = (x + 0.8 * w * offset, y - h / 2 if side == "bottom" else y + h / 2)
    ends = []
    for k, arc in enumerate(arcs):
        u, v = arc["u"], arc["v"]
        if pos[u][1] == pos[v][1]:
            sign = 1 if pos[v][0] > pos[u][0] else -1
            ends.append(((pos[u][0] + sign * size[u][0] / 2, pos[u][1]), (pos[v][0] - sign * size[v][0] / 2, pos[v][1])))
        else:
            ends.append((at[(k, u)], at[(k, v)]))
    return ends


def _bezier_at_height(p0, p2, rad: float, y: float) -> tuple[float, float]:
    """The point of matplotlib's ``arc3`` curve from ``p0`` to ``p2`` closest to height ``y``."""
    (x0, y0), (x2, y2) = p0, p2
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)
    t = np.linspace(0, 1, 201)
    bx = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x2
    by = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y2
    i = int(np.argmin(np.abs(by - y)))
    return float(bx[i]), float(by[i])


def _draw_with_matplotlib(graph: nx.DiGraph, arcs: Sequence[dict], attack: str, stem: Path,
                          title: str | None) -> list[Path]:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pos = layered_layout(graph, sink=attack)
    labels = {n: paper_label(n) for n in graph.nodes}
    size = {n: (_node_width(labels[n]), _NODE_HEIGHT * (1 + 0.6 * labels[n].count("\n"))) for n in graph.nodes}
    margin, head = 0.4, (0.55 if title else 0.2)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    half = max(w for w, _ in size.values()) / 2
    x0, x1 = min(xs) - half - margin, max(xs) + half + margin
    x1 = max(x1, x0 + 3.0)
    y0, y1 = min(ys) - _NODE_HEIGHT - margin, max(ys) + _NODE_HEIGHT + margin + head
    fig = Figure(figsize=(x1 - x0, y1 - y0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_axis_off()
    if title:
        ax.text((x0 + x1) / 2, y1 - 0.3, title, ha="center", va="center", fontsize=12)

    for node in graph.nodes:
        (w, h), (x, y) = size[node], pos[node]
        is_attack = node == attack
        fill = ATTACK_FILL if is_attack else (ROOT_FILL if node in ROOT_CANDIDATES else NODE_FILL)
        box = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.12",
                             facecolor=fill, edgecolor="#8b1a1a" if is_attack else NODE_EDGE,
                             linewidth=2.0 if is_attack else 1.0, zorder=3)
        box.set_gid(svg_id(node))
        ax.add_patch(box)
        ax.text(x, y, labels[node], ha="center", va="center", fontsize=9, zorder=4,
                color=ATTACK_TEXT if is_attack else "#111111", gid=svg_id(node) + "-label")

    for k, (arc, (start, end)) in enumerate(zip(arcs, _arc_ends(arcs, pos, size))):
        u, v = arc["u"], arc["v"]
        layers_apart = abs(pos[u][1] - pos[v][1]) / _LAYER_GAP
        # Arcs that skip layers bend a little so they do not run straight through the boxes between.
        rad = 0.0 if layers_apart <= 1.01 else (0.12 if end[0] >= start[0] else -0.12)
        if layers_apart < 0.01:
            rad = -0.3
        color = ATTACK_FILL if attack in (u, v) else ARC_COLOR
        patch = FancyArrowPatch(start, end, shrinkA=0, shrinkB=0.5,
                                arrowstyle="-|>" if arc["directed"] else "-", mutation_scale=11,
                                connectionstyle=f"arc3,rad={rad}", linewidth=_arc_width(arc["strength"]),
                                color=color, zorder=2)
        patch.set_gid(svg_arc_id(u, v))
        ax.add_patch(patch)
        if arc["strength"] is not None:
            # In the gap just above the lower end, where no box can cover the label; alternate
            # heights so that labels of neighbouring arcs do not overwrite each other.
            gap = _LAYER_GAP - _NODE_HEIGHT
            lower_y = min(start[1], end[1])
            lx, ly = _bezier_at_height(start, end, rad, lower_y + gap * (0.3 + 0.4 * (k % 2))) \
                if layers_apart > 0.01 else ((start[0] + end[0]) / 2, start[1])
            ax.text(lx, ly, f"{arc['strength']:.2f}", ha="center", va="center", fontsize=7, color="#333333",
                    zorder=5, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    return _save(fig, stem)


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
    paper = ATTACK_PAPER_NAMES.get(attack, attack)
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
    """Mean of TrainBias2, TestBias2, TrainVar, TestVar per (Loss, Arch, Width), Width numeric.

    Averaging is over every other configuration dimension present (dataset, train size,
    weight decay, epochs, scheduler).
    """
    _require(traces, ["Loss", "Arch", "Width", *BIAS_VARIANCE_COLUMNS], "bias/variance figure")
    data = traces[["Loss", "Arch", "Width", *BIAS_VARIANCE_COLUMNS]].copy()
    width = pd.to_numeric(data["Width"], errors="coerce")
    bad = data["Width"][width.isna() & data["Width"].notna()]
    if len(bad):
        raise EtioInputError(f"bias/variance figure: column 'Width' has non-numeric value {bad.iloc[0]!r}")
    data["Width"] = width.astype(float)
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
    return Path(out_dir) / "graphs" / f"graph-wd_{weight_decay:g}-{loss}-{attack}"


def graph_title(weight_decay: float, loss: str, attack: str) -> str:
    paper = ATTACK_PAPER_NAMES.get(attack, attack)
    return f"{paper}: {loss.upper()}-trained models, weight decay {weight_decay:g}"


def figure_caption(path: Path | str) -> str:
    """A caption for a file written by :func:`all_figures`, from its name."""
    stem = Path(path).stem
    if m := re.fullmatch(r"graph-wd_([^-]+)-([a-z]+)-(.+)", stem):
        wd, loss, attack = m.groups()
        paper = ATTACK_PAPER_NAMES.get(attack, attack)
        name = paper if paper == attack else f"{paper} ({attack})"
        return f"Causal graph for {name}, {loss.upper()} loss, weight decay {wd} (paper App. D)."
    if m := re.fullmatch(r"fig1-gap-vs-(.+)", stem):
        attack = m.group(1)
        return f"Train-test accuracy gap vs. {ATTACK_PAPER_NAMES.get(attack, attack)} accuracy, " \
               "by architecture (paper Fig. 1)."
    if stem == "bias-variance-vs-width":
        return "Bias² and variance of members (train) and non-members (test) against width (paper §5.4)."
    return stem


def figure1_rows(traces: pd.DataFrame) -> pd.DataFrame:
    """The rows Fig. 1 is drawn from: CE models at the lowest ("normal") weight decay, as in the
    paper; all rows when the trace has none of those."""
    if "Loss" not in traces or "WeightDecay" not in traces:
        return traces
    wd = pd.to_numeric(traces["WeightDecay"], errors="coerce")
    rows = traces[(traces["Loss"] == "ce") & (wd == wd.min())]
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
        paths += figure1_gap_vs_attack(fig1_data, out_dir / f"fig1-gap-vs-{attack}", attack=attack)
    if all(_has_values(traces, c) for c in BIAS_VARIANCE_COLUMNS) and {"Arch", "Width", "Loss"} <= set(traces):
        paths += bias_variance_vs_width(traces, out_dir / "bias-variance-vs-width")
    for (wd, loss, attack_name) in sorted(graphs, key=lambda k: (float(k[0]), k[1], ATTACKS.index(k[2])
                                                                 if k[2] in ATTACKS else len(ATTACKS))):
        graph, strengths = graphs[(wd, loss, attack_name)]
        paths += draw_causal_graph(graph, attack_name, graph_figure_stem(out_dir, float(wd), loss, attack_name),
                                   strengths=strengths, title=graph_title(float(wd), loss, attack_name))
    return paths


def draw_learned_graph(graph, stem: Path) -> list[Path]:
    """The figures of a graph just learned (:class:`etio.causal.learning.LearnedGraph`), arc strengths shown."""
    return draw_causal_graph(graph.graph, graph.attack, stem, strengths=graph.strengths,
                             title=f"{graph.name} (wd {graph.weight_decay:g}, {graph.method}, "
                                   f"threshold {graph.threshold:.2f})")
