"""Causal graphs as networkx DiGraphs, read from and written to bnlearn's ``write.dot`` format.

bnlearn writes one line per node (``  "NAME" ;``) and one per arc
(``  edge [dir=forward] "U" -> "V" ;``; an undirected arc is ``edge [dir=none]``). The
authors' published graphs are in that format. An undirected arc is represented in the
DiGraph by both directions with the edge attribute ``undirected=True``; node names are kept
as written (R spelling, e.g. ``CentroidDistance.origin.``) unless ``python_names`` is set.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import networkx as nx

from etio.core import layout
from etio.core.errors import EtioInputError, read_error
from etio.core.schema import (
    LOSSES, ROBUST_ATTACK_COLUMNS, ROBUST_TRACE_COLUMNS, TRACE_COLUMNS, check_attack, check_loss, from_r_name,
    same_weight_decay, to_r_name, treatments_for,
)

_NODE = re.compile(r'^\s*"([^"]+)"\s*;\s*$')
_EDGE = re.compile(r'^\s*edge\s*\[dir=(forward|none)\]\s*"([^"]+)"\s*(->|--)\s*"([^"]+)"\s*;\s*$')
_HEADER = re.compile(r"^\s*(digraph|graph)\s*\{\s*$")


def parse_bnlearn_dot(text: str, source: str = "<string>", python_names: bool = False) -> nx.DiGraph:
    """Parse bnlearn ``write.dot`` output into a DiGraph (node order preserved)."""
    rename = from_r_name if python_names else (lambda s: s)
    graph = nx.DiGraph()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not _HEADER.match(lines[0]) or lines[-1].strip() != "}":
        raise EtioInputError(f"{source}: not a bnlearn write.dot graph (expected 'digraph {{' ... '}}')")
    for number, line in enumerate(lines[1:-1], start=2):
        if m := _NODE.match(line):
            graph.add_node(rename(m.group(1)))
        elif m := _EDGE.match(line):
            kind, u, _, v = m.groups()
            u, v = rename(u), rename(v)
            if kind == "none":
                graph.add_edge(u, v, undirected=True)
                graph.add_edge(v, u, undirected=True)
            else:
                graph.add_edge(u, v, undirected=False)
        else:
            raise EtioInputError(f"{source}: line {number} is neither a node nor an edge: {line.strip()!r}")
    return graph


def read_bnlearn_dot(path: Path, python_names: bool = False) -> nx.DiGraph:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise read_error(path, exc, "graph file") from None
    except UnicodeDecodeError:
        raise EtioInputError(f"{path}: not a bnlearn write.dot graph (the file is not text)") from None
    if "\x00" in text:
        raise EtioInputError(f"{path}: not a bnlearn write.dot graph (the file is binary)")
    return parse_bnlearn_dot(text, source=str(path), python_names=python_names)


def format_bnlearn_dot(graph: nx.DiGraph, arc_order: Iterable[tuple[str, str]] | None = None) -> str:
    """bnlearn's ``write.dot`` text for ``graph`` (node names converted to R spelling).

    Arcs come in ``arc_order`` when given (bnlearn's stored order), else in row-major node order,
    which is the order of an averaged network.
    """
    nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    arcs = list(arc_order) if arc_order is not None else sorted(graph.edges, key=lambda e: (index[e[0]], index[e[1]]))
    undirected = [(u, v) for u, v in arcs if graph.has_edge(v, u)]
    directed = [(u, v) for u, v in arcs if not graph.has_edge(v, u)]
    # bnlearn writes an empty "digraph {}" for a graph without arcs; we keep the node lines so
    # the file still says which nodes were learned over.
    all_undirected = bool(arcs) and not directed
    out = ["graph {" if all_undirected else "digraph {"]
    out += [f'  "{to_r_name(n)}" ;' for n in nodes]
    connector = "--" if all_undirected else "->"
    out += [f'  edge [dir=none] "{to_r_name(u)}" {connector} "{to_r_name(v)}" ;'
            for u, v in undirected if index[u] < index[v]]
    out += [f'  edge [dir=forward] "{to_r_name(u)}" -> "{to_r_name(v)}" ;' for u, v in directed]
    out.append("}")
    return "\n".join(out) + "\n"


def undirected_arcs(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """Each undirected arc once, as (u, v) with u before v in node order."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    return [(u, v) for u, v, d in graph.edges(data=True) if d.get("undirected") and order[u] < order[v]]


def consistent_extension(graph: nx.DiGraph, source: str = "graph") -> tuple[nx.DiGraph, list[tuple[str, str]]]:
    """Orient the undirected arcs of an averaged network into a DAG without new v-structures.

    An averaged network keeps an arc undirected when the bootstrap found both directions
    equally often. Queries need a DAG, so we take the consistent extension bnlearn itself
    uses when it must fit such a network (Dor and Tarsi's algorithm, as in bnlearn's
    ``cextend``): repeatedly remove a node that has no outgoing directed arc and whose
    undirected neighbours are adjacent to all its other neighbours, orienting its undirected
    arcs towards it. Returns the DAG and the arcs it oriented, as (from, to).
    """
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    undirected = {frozenset(e) for e in undirected_arcs(graph)}
    dag.add_edges_from((u, v) for u, v in graph.edges if frozenset((u, v)) not in undirected)
    remaining = list(graph.nodes)
    oriented: list[tuple[str, str]] = []

    def neighbours(v: str) -> set[str]:
        return {u for u in remaining if u != v and (graph.has_edge(u, v) or graph.has_edge(v, u))}

    changed = True
    while changed and remaining:
        changed = False
        for v in list(remaining):
            if any(dag.has_edge(v, u) for u in remaining):
                continue
            around = neighbours(v)
            loose = [u for u in around if frozenset((u, v)) in undirected]
            if not all(around - {u} <= (neighbours(u) | {u}) for u in loose):
                continue
            for u in loose:
                dag.add_edge(u, v, undirected=False)
                oriented.append((u, v))
                undirected.discard(frozenset((u, v)))
            remaining.remove(v)
            changed = True
    if undirected:
        u, v = min(sorted(arc) for arc in undirected)      # the first by name, not by hash order
        raise EtioInputError(f"{source}: the undirected arc {u} - {v} cannot be oriented without creating a cycle "
                             "or a new v-structure")
    return dag, oriented


def check_acyclic(graph: nx.DiGraph, source: str = "graph") -> None:
    """Reject graphs with a directed cycle or undirected arcs (queries need a DAG)."""
    und = [(u, v) for u, v, d in graph.edges(data=True) if d.get("undirected")]
    if und:
        raise EtioInputError(f"{source}: arc {und[0][0]} - {und[0][1]} is undirected; a DAG is required")
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
    raise EtioInputError(f"{source}: the graph has a directed cycle {path}")


def check_graphs_against_traces(traces, graphs, source="trace table") -> None:
    """Every graph's nodes are usable trace columns in the rows of its loss (the trace check of
    :func:`etio.core.schema.check_trace_columns`); ``graphs`` maps (loss, attack) to a graph."""
    from etio.core.schema import check_trace_columns

    for (loss, attack), graph in sorted(graphs.items()):
        rows = traces["Loss"] == loss
        if not rows.any():
            raise EtioInputError(f"{source}: no rows with loss {loss!r}, which the {loss}-{attack} graph is for")
        check_trace_columns(traces, list(graph.nodes), rows, source=str(source), what=f"the {loss}-{attack} graph",
                            may_be_missing=[attack])


# --------------------------------------------------------------------------------------
# A directory of attack graphs, as the query stage reads it (checked here, once)
# --------------------------------------------------------------------------------------

#: The variables a graph's nodes may be: the trace columns (the robust study's included).
_TRACE_VARIABLES = frozenset(TRACE_COLUMNS + ROBUST_TRACE_COLUMNS + ROBUST_ATTACK_COLUMNS)

def graph_files(graphs_dir: Path) -> dict[tuple[str, str], Path]:
    """``(loss, attack) -> path`` for every ``<loss>-<attack>.dot`` (or the authors'
    ``<loss>-<attack>-cv_avg_net_discovery.dot``) in ``graphs_dir``."""
    graphs_dir = Path(graphs_dir)
    if not graphs_dir.is_dir():
        what = "is not a directory" if graphs_dir.exists() else "does not exist"
        raise EtioInputError(f"graphs directory {graphs_dir} {what}")
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(graphs_dir.glob("*.dot")):
        m = layout.fields_of("graph", path.name) or layout.fields_of("authors_graph", path.name)
        if not m:
            raise EtioInputError(f"{path}: graph file names must be <loss>-<attack>.dot")
        loss, attack = m["loss"], m["attack"]
        check_loss(loss, where=str(path))
        check_attack(attack, where=str(path))
        if (loss, attack) in found:
            raise EtioInputError(f"{graphs_dir}: two graphs for {loss}-{attack}: {found[loss, attack].name}, {path.name}")
        found[loss, attack] = path
    if not found:
        raise EtioInputError(f"{graphs_dir}: no <loss>-<attack>.dot graph files")
    return found


def read_attack_graph(path: Path, attack: str) -> nx.DiGraph:
    """An attack's graph with trace (Python) node names, checked to be a DAG holding the
    attack and its 13 treatments."""
    return attack_graph(read_bnlearn_dot(path, python_names=True), attack, Path(path))


def attack_graph(graph: nx.DiGraph, attack: str, path: Path) -> nx.DiGraph:
    """:func:`read_attack_graph` of the graph its file ``path`` holds (parsed, with trace names)."""
    path = Path(path)
    if undirected_arcs(graph):
        # An averaged network may keep an arc undirected (both directions found equally often);
        # the queries use its consistent extension, and say which arcs that oriented.
        graph, oriented = consistent_extension(graph, source=str(path))
        arcs = ", ".join(f"{u} -> {v}" for u, v in oriented)
        warnings.warn(f"{path.name}: undirected arc(s) oriented by the consistent extension: {arcs}", stacklevel=3)
    check_acyclic(graph, source=str(path))
    unknown = [n for n in graph.nodes if n not in _TRACE_VARIABLES]
    if unknown:
        raise EtioInputError(f"{path}: node(s) {', '.join(map(repr, unknown))} are not trace columns; a graph's "
                             f"nodes are variables of the trace table")
    missing = [n for n in [attack] + treatments_for(attack) if n not in graph]
    if missing:
        raise EtioInputError(f"{path}: the graph lacks node(s) {', '.join(missing)} of attack {attack}")
    return graph


def read_graphs(graphs_dir: Path, losses: Iterable[str] = LOSSES) -> dict[tuple[str, str], nx.DiGraph]:
    """Every graph of ``graphs_dir``; each records where it came from and the weight decay it was
    learned at (``graph.graph["weight_decay"]``, from :func:`learned_weight_decay`), which
    :func:`check_learned_at` checks against the rows queried."""
    learned_at = learned_weight_decay(graphs_dir)
    graphs = {key: read_attack_graph(path, key[1]) for key, path in graph_files(graphs_dir).items() if key[0] in losses}
    for graph in graphs.values():
        graph.graph.update(weight_decay=learned_at, source=str(graphs_dir))
    return graphs


def learned_weight_decay(graphs_dir: Path) -> float | None:
    """The weight decay the graphs of ``graphs_dir`` were learned at: ``etio learn``'s
    provenance.json, else the weight decay the directory's name spells (``wd_0.0005``, the authors'
    ``wd_0.000500``); None when neither says."""
    try:
        record = json.loads(layout.path("learn_provenance", graphs_dir).read_text())
        value = record["config"]["weight_decay"] if record.get("stage") == "learn" else None
        if value is not None:
            return float(value)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return layout.weight_decay_in(Path(graphs_dir).name)


def check_learned_at(graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float) -> None:
    """Graphs meet trace rows only at the weight decay they were learned at."""
    for (loss, attack), graph in sorted(graphs.items()):
        learned_at = graph.graph.get("weight_decay")
        if learned_at is not None and not same_weight_decay(learned_at, weight_decay):
            raise EtioInputError(f"the {loss}-{attack} graph in {graph.graph.get('source', 'the graphs')} was learned at "
                                 f"weight decay {learned_at:g}, but the rows queried are those at {weight_decay:g}: "
                                 f"give graphs learned at {weight_decay:g} (etio learn --weight-decay {weight_decay:g}), "
                                 f"or query weight decay {learned_at:g}")
