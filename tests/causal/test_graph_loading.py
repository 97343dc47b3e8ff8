"""Loading the attack graphs a query runs on: every error branch names its problem, and an
undirected arc is oriented by the consistent extension with a warning that says which."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from etio.causal.graphs import (
    check_acyclic, graph_files, parse_bnlearn_dot, read_attack_graph, read_bnlearn_dot, read_graphs,
)
from etio.core.errors import EtioInputError
from etio.report import paper

AUTHORS = paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot"


def _graph_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    gdir = tmp_path / "graphs"
    gdir.mkdir()
    for name, text in files.items():
        (gdir / name).write_text(text)
    return gdir


def test_graph_files_accepts_both_spellings_of_the_file_name(tmp_path):
    text = AUTHORS.read_text()
    gdir = _graph_dir(tmp_path, {"ce-Oak17Acc.dot": text, "mse-Top3MLLeakLAcc-cv_avg_net_discovery.dot": text,
                                 "notes.txt": "not a graph"})
    assert graph_files(gdir) == {("ce", "Oak17Acc"): gdir / "ce-Oak17Acc.dot",
                                         ("mse", "Top3MLLeakLAcc"): gdir / "mse-Top3MLLeakLAcc-cv_avg_net_discovery.dot"}


@pytest.mark.parametrize("files,message", [
    (None, "graphs directory {dir} does not exist"),
    ({}, "{dir}: no <loss>-<attack>.dot graph files"),
    ({"oak17.dot": ""}, "{dir}/oak17.dot: graph file names must be <loss>-<attack>.dot"),
    ({"hinge-Oak17Acc.dot": ""}, "{dir}/hinge-Oak17Acc.dot: unknown loss 'hinge'; known losses: ce, mse"),
    ({"ce-ShadowAcc.dot": ""}, "{dir}/ce-ShadowAcc.dot: unknown attack 'ShadowAcc'; known attacks: MLLeakAcc, "
                               "MLLeakLAcc, Top3MLLeakAcc, Top3MLLeakLAcc, Oak17Acc, ThresholdAcc, MemguardAcc, "
                               "ConfInferBenignAcc, ConfInferUntargetedAcc, ModelInferBenignAcc, "
                               "ModelInferUntargetedAcc, ModelInferTargetedAcc"),
    ({"ce-Oak17Acc.dot": "", "ce-Oak17Acc-cv_avg_net_discovery.dot": ""},
     "{dir}: two graphs for ce-Oak17Acc: ce-Oak17Acc-cv_avg_net_discovery.dot, ce-Oak17Acc.dot"),
])
def test_graph_directory_errors_name_the_problem(tmp_path, files, message):
    gdir = tmp_path / "graphs" if files is None else _graph_dir(tmp_path, files)
    with pytest.raises(EtioInputError) as raised:
        graph_files(gdir)
    assert str(raised.value) == message.format(dir=gdir)


def test_graph_file_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(EtioInputError, match=r"^graph file .*missing.dot does not exist$"):
        read_bnlearn_dot(tmp_path / "missing.dot")
    with pytest.raises(EtioInputError, match=r"^graph file .* is a directory$"):
        read_bnlearn_dot(tmp_path)
    with pytest.raises(EtioInputError, match=r"x.dot: not a bnlearn write.dot graph \(expected 'digraph \{' ... '\}'\)"):
        parse_bnlearn_dot("strict digraph {\n}\n", source="x.dot")
    with pytest.raises(EtioInputError, match="not a bnlearn write.dot graph"):
        parse_bnlearn_dot("digraph {\n  \"A\" ;\n", source="x.dot")              # no closing brace
    with pytest.raises(EtioInputError, match="not a bnlearn write.dot graph"):
        parse_bnlearn_dot("", source="x.dot")
    with pytest.raises(EtioInputError, match=r"x.dot: line 3 is neither a node nor an edge: 'A -> B'"):
        parse_bnlearn_dot('digraph {\n  "A" ;\n\n  A -> B\n}\n', source="x.dot")   # blank lines are not counted


def test_attack_graph_lacking_nodes_or_acyclicity_is_rejected(tmp_path):
    text = AUTHORS.read_text()
    without = text.replace('  "TrainSize" ;\n', "").replace('  "NumParams" ;\n', "")
    without = "\n".join(line for line in without.splitlines() if '"TrainSize"' not in line and '"NumParams"' not in line)
    path = tmp_path / "ce-Oak17Acc.dot"
    path.write_text(without + "\n")
    with pytest.raises(EtioInputError) as raised:
        read_attack_graph(path, "Oak17Acc")
    assert str(raised.value) == f"{path}: the graph lacks node(s) NumParams, TrainSize of attack Oak17Acc"
    path.write_text(text.replace("}", '  edge [dir=forward] "Oak17Acc" -> "TrainAcc" ;\n}'))
    with pytest.raises(EtioInputError, match=r"ce-Oak17Acc.dot: the graph has a directed cycle "
                                             r"TrainAcc -> AccDiff -> Oak17Acc -> TrainAcc$"):
        read_attack_graph(path, "Oak17Acc")
    with pytest.raises(EtioInputError, match="g.dot: arc A - B is undirected; a DAG is required"):
        check_acyclic(parse_bnlearn_dot('digraph {\n  edge [dir=none] "A" -> "B" ;\n}\n'), source="g.dot")


def test_undirected_arc_is_oriented_with_a_warning_naming_it(tmp_path):
    arc = '  edge [dir=forward] "NumParams" -> "TrainVar" ;'
    text = AUTHORS.read_text()
    assert arc in text
    path = tmp_path / "ce-Oak17Acc.dot"
    path.write_text(text.replace(arc, arc.replace("dir=forward", "dir=none")))
    with pytest.warns(UserWarning) as caught:
        graph = read_attack_graph(path, "Oak17Acc")
    assert [str(w.message) for w in caught] == [
        "ce-Oak17Acc.dot: undirected arc(s) oriented by the consistent extension: NumParams -> TrainVar"]
    assert graph.has_edge("NumParams", "TrainVar") and not graph.has_edge("TrainVar", "NumParams")
    authors = read_attack_graph(AUTHORS, "Oak17Acc")
    assert set(graph.edges) == set(authors.edges)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # a fully directed graph warns of nothing
        read_attack_graph(AUTHORS, "Oak17Acc")


def test_read_graphs_keeps_the_requested_losses():
    graphs = read_graphs(paper.graphs_dir(0.0005), losses=["mse"])
    assert sorted(graphs) == [("mse", a) for a in sorted(["MLLeakAcc", "MLLeakLAcc", "Top3MLLeakLAcc",
                                                          "Top3MLLeakAcc", "Oak17Acc", "ThresholdAcc",
                                                          "MemguardAcc"])]
