"""Our graphs against the authors': SHD, missing/extra parents, side-by-side drawing on fixed positions."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

from etio.causal.graphs import graph_files
from etio.causal.graphs import read_bnlearn_dot
from etio.core.schema import WEIGHT_DECAYS
from etio.report import figures, paper
from etio.report.comparison import compare_graphs, parents

HAS_DOT = shutil.which("dot") is not None


def _authors_graphs():
    return [(wd, key, path) for wd in WEIGHT_DECAYS for key, path in sorted(graph_files(paper.graphs_dir(wd)).items())]


@pytest.mark.parametrize("wd, key, path", _authors_graphs(), ids=lambda v: str(v) if not hasattr(v, "name") else "")
def test_the_authors_graph_against_itself_has_shd_0(wd, key, path):
    graph = read_bnlearn_dot(path)
    result = compare_graphs(graph, graph, key[1], weight_decay=wd, loss=key[0])
    assert result.shd == 0 and result.parents_agree
    assert result.arcs_ours == result.arcs_authors > 0


def test_shd_counts_missing_extra_and_reversed_arcs():
    authors = nx.DiGraph([("A", "B"), ("B", "Oak17Acc"), ("C", "Oak17Acc"), ("D", "C")])
    ours = nx.DiGraph([("B", "A"), ("B", "Oak17Acc"), ("E", "Oak17Acc"), ("D", "C"), ("D", "E")])
    ours.add_edge("C", "D", undirected=True)
    ours.add_edge("D", "C", undirected=True)     # D - C undirected: a different orientation
    result = compare_graphs(ours, authors, "Oak17Acc")
    # reversed A-B, undirected D-C, missing C->Oak17Acc, extra E->Oak17Acc and D->E
    assert (len(result.reversed_arcs), len(result.missing_arcs), len(result.extra_arcs)) == (2, 1, 2)
    assert result.shd == 5
    assert result.missing_parents == ("C",) and result.extra_parents == ("E",)
    assert parents(ours, "Oak17Acc") == {"B", "E"}


def test_r_and_python_spellings_compare_equal():
    r_graph = nx.DiGraph([("CentroidDistance.origin.", "Oak17Acc")])
    py_graph = nx.DiGraph([("CentroidDistance(origin)", "Oak17Acc")])
    assert compare_graphs(r_graph, py_graph, "Oak17Acc").shd == 0


def _positions(svg_path):
    """Centre of each node ellipse/polygon by SVG element id."""
    ns = "{http://www.w3.org/2000/svg}"
    out = {}
    for g in ET.parse(svg_path).getroot().iter(f"{ns}g"):
        gid = g.get("id") or ""
        if gid.startswith(("ours-node-", "authors-node-")):
            text = next(g.iter(f"{ns}text"))
            out[gid] = (round(float(text.get("x")), 1), round(float(text.get("y")), 1))
    return out


@pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")
def test_side_by_side_drawing_puts_every_node_at_the_same_place(tmp_path):
    ours = read_bnlearn_dot(paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot")
    authors = read_bnlearn_dot(paper.graphs_dir(0.005) / "ce-Oak17Acc-cv_avg_net_discovery.dot")
    svg, png = figures.draw_graph_comparison(ours, authors, "Oak17Acc", tmp_path / "cmp")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pos = _positions(svg)
    nodes = [re.sub(r"^ours-", "", k) for k in pos if k.startswith("ours-")]
    assert len(nodes) == ours.number_of_nodes()
    shifts = {(pos["authors-" + n][0] - pos["ours-" + n][0], pos["authors-" + n][1] - pos["ours-" + n][1])
              for n in nodes}
    assert len(shifts) == 1 and next(iter(shifts))[1] == 0 and next(iter(shifts))[0] > 0
    text = svg.read_text()
    # Arcs only in one graph are marked: ours in orange, the authors' in blue.
    assert figures.ONLY_OURS_COLOR in text and figures.ONLY_AUTHORS_COLOR in text
