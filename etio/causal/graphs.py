"""Causal graphs as networkx DiGraphs, read from and written to bnlearn's ``write.dot`` format.

bnlearn writes one line per node (``  "NAME" ;``) and one per arc
(``  edge [dir=forward] "U" -> "V" ;``; an undirected arc is ``edge [dir=none]``). The
authors' published graphs are in that format. An undirected arc is represented in the
DiGraph by both directions with the edge attribute ``undirected=True``; node names are kept
as written (R spelling, e.g. ``CentroidDistance.origin.``) unless ``python_names`` is set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import networkx as nx

from etio.core.errors import EtioInputError, read_error
from etio.core.schema import from_r_name, to_r_name

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
