"""bnlearn write.dot round trips and the consistent extension of averaged networks."""

from __future__ import annotations

import networkx as nx
import pytest

from etio.core.errors import EtioInputError
from etio.causal.graphs import (check_acyclic, consistent_extension, format_bnlearn_dot, parse_bnlearn_dot,
                         undirected_arcs)
from etio.report.paper import graphs_dir


def dot(nodes, directed=(), undirected=()):
    lines = ["digraph {"] + [f'  "{n}" ;' for n in nodes]
    lines += [f'  edge [dir=none] "{u}" -> "{v}" ;' for u, v in undirected]
    lines += [f'  edge [dir=forward] "{u}" -> "{v}" ;' for u, v in directed]
    return "\n".join(lines + ["}"]) + "\n"


def test_authors_graphs_round_trip_byte_for_byte():
    files = sorted(graphs_dir(0.0005).glob("*.dot")) + sorted(graphs_dir(0.005).glob("*.dot"))
    assert len(files) == 26
    for path in files:
        text = path.read_text()
        assert format_bnlearn_dot(parse_bnlearn_dot(text)) == text, path.name


def test_undirected_arc_is_read_as_both_directions_and_written_back():
    text = dot("ABC", directed=[("C", "B")], undirected=[("A", "B")])
    graph = parse_bnlearn_dot(text)
    assert graph.has_edge("A", "B") and graph.has_edge("B", "A")
    assert undirected_arcs(graph) == [("A", "B")]
    assert format_bnlearn_dot(graph) == text
    with pytest.raises(EtioInputError, match="undirected"):
        check_acyclic(graph)


def test_consistent_extension_creates_no_new_v_structure():
    # A - B <- C: A -> B would make the v-structure A -> B <- C, so the arc must point to A.
    dag, oriented = consistent_extension(parse_bnlearn_dot(dot("ABC", directed=[("C", "B")], undirected=[("A", "B")])))
    assert oriented == [("B", "A")]
    assert set(dag.edges) == {("C", "B"), ("B", "A")}


def test_consistent_extension_of_a_chain_and_a_clique_is_acyclic_with_the_same_skeleton():
    chain = parse_bnlearn_dot(dot("ABCD", undirected=[("A", "B"), ("B", "C"), ("C", "D")]))
    clique = parse_bnlearn_dot(dot("ABC", undirected=[("A", "B"), ("A", "C"), ("B", "C")]))
    for graph in (chain, clique):
        dag, oriented = consistent_extension(graph)
        assert nx.is_directed_acyclic_graph(dag)
        assert {frozenset(e) for e in dag.edges} == {frozenset(e) for e in graph.edges}
        assert len(oriented) == len(undirected_arcs(graph))
        # no v-structure: no node has two non-adjacent parents
        for node in dag:
            parents = list(dag.predecessors(node))
            for i, p in enumerate(parents):
                for q in parents[i + 1:]:
                    assert dag.has_edge(p, q) or dag.has_edge(q, p)


def test_no_consistent_extension_is_a_clear_error():
    # An undirected 4-cycle: every orientation without a directed cycle has a v-structure.
    cycle = parse_bnlearn_dot(dot("ABCD", undirected=[("A", "B"), ("B", "C"), ("C", "D"), ("A", "D")]))
    with pytest.raises(EtioInputError, match="cannot be oriented"):
        consistent_extension(cycle, source="cycle.dot")
