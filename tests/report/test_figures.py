"""Figures: causal graphs (both renderers), Fig. 1 and the bias/variance curves on synthetic traces."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from etio.report import figures
from etio.core.errors import EtioInputError
from etio.causal.graphs import parse_bnlearn_dot
from etio.core.schema import TRACE_COLUMNS

SVG_NS = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None
ENGINES = [pytest.param("graphviz", marks=pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")),
           "matplotlib"]

# A small learned graph in bnlearn write.dot form: R node names, one undirected arc.
GRAPH_DOT = """digraph {
  "NumParams" ;
  "TrainSize" ;
  "TrainAcc" ;
  "TestAcc" ;
  "AccDiff" ;
  "TrainVar" ;
  "CentroidDistance.origin." ;
  "Oak17Acc" ;
  edge [dir=forward] "NumParams" -> "TrainAcc" ;
  edge [dir=forward] "TrainSize" -> "TestAcc" ;
  edge [dir=forward] "TrainAcc" -> "AccDiff" ;
  edge [dir=forward] "TestAcc" -> "AccDiff" ;
  edge [dir=forward] "AccDiff" -> "Oak17Acc" ;
  edge [dir=forward] "NumParams" -> "Oak17Acc" ;
  edge [dir=forward] "TestAcc" -> "CentroidDistance.origin." ;
  edge [dir=forward] "CentroidDistance.origin." -> "Oak17Acc" ;
  edge [dir=none] "TrainVar" -> "TrainAcc" ;
}
"""


@pytest.fixture
def graph() -> nx.DiGraph:
    return parse_bnlearn_dot(GRAPH_DOT)


@pytest.fixture
def strengths(graph) -> pd.DataFrame:
    rows = [(u, v, 0.55, 1.0) for u, v in graph.edges]
    rows = [(u, v, 0.95 if (u, v) == ("AccDiff", "Oak17Acc") else s, d) for u, v, s, d in rows]
    return pd.DataFrame(rows, columns=["from", "to", "strength", "direction"])


def synthetic_traces(seed: int = 0) -> pd.DataFrame:
    """Three architectures x widths x losses x weight decays, with a planted Simpson's paradox:
    within each architecture the attack accuracy falls as AccDiff grows, across architectures it rises."""
    rng = np.random.default_rng(seed)
    archs = {"resnet34": [2, 4, 8, 16, 32], "densenet161": [2, 4, 8, 16, 32], "mlp_1hidden": [16, 32, 64, 128, 256]}
    base = {"resnet34": (0.10, 0.60), "densenet161": (0.30, 0.80), "mlp_1hidden": (0.50, 1.00)}
    rows = []
    for wd in (0.0005, 0.005):
        for loss in ("ce", "mse"):
            for arch, widths in archs.items():
                gap0, acc0 = base[arch]
                for i, width in enumerate(widths):
                    row = dict.fromkeys(TRACE_COLUMNS, np.nan)
                    gap = gap0 + 0.03 * i + rng.normal(0, 0.003)
                    row.update(WeightDecay=wd, Loss=loss, Arch=arch, Width=str(width), Dataset="cifar10",
                               AccDiff=gap, Oak17Acc=acc0 - 0.04 * i,
                               TrainBias2=0.5 / (i + 1), TestBias2=0.8 / (i + 1) + 0.1,
                               TrainVar=0.05 + 0.01 * i, TestVar=0.2 + 0.1 * i - 0.03 * i * i,
                               TrainAcc=0.99, TestAcc=0.99 - gap)
                    rows.append(row)
    return pd.DataFrame(rows, columns=TRACE_COLUMNS)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > 1024, f"{path} is suspiciously small ({len(data)} bytes)"
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200


def svg_root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def element_by_id(root: ET.Element, element_id: str) -> ET.Element:
    hits = [e for e in root.iter() if e.get("id") == element_id]
    assert len(hits) == 1, f"expected one element with id {element_id!r}, found {len(hits)}"
    return hits[0]


def _style(shape: ET.Element, prop: str) -> str | None:
    if shape.get(prop) is not None:
        return shape.get(prop)
    m = re.search(rf"(?:^|;)\s*{prop}:\s*([^;]+)", shape.get("style", ""))
    return m.group(1).strip() if m else None


def first_shape(group: ET.Element) -> ET.Element:
    return next(e for e in group.iter() if e.tag in {f"{SVG_NS}{t}" for t in ("ellipse", "polygon", "path", "rect")})


def node_fill(root: ET.Element, node: str) -> str:
    return _style(first_shape(element_by_id(root, figures.svg_id(node))), "fill")


def arc_width(root: ET.Element, u: str, v: str) -> float:
    return float(_style(first_shape(element_by_id(root, figures.svg_arc_id(u, v))), "stroke-width"))


def svg_text(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{SVG_NS}text"))


@pytest.mark.parametrize("engine", ENGINES)
def test_causal_graph_highlights_attack_and_shows_strengths(tmp_path, graph, strengths, engine):
    paths = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "g", strengths=strengths,
                                      title="ShadowAcc test graph", engine=engine)
    svg, png = paths
    assert [p.suffix for p in paths] == [".svg", ".png"]
    assert_png(png)
    root = svg_root(svg)
    text = svg_text(root)
    # Nodes are labelled with the vocabulary's display names (the paper's symbols); ids keep the column.
    assert "ShadowAcc" in text and "CentroidDist" in text and "Oak17Acc" not in text
    fills = {n: node_fill(root, n) for n in ["NumParams", "TrainSize", "TrainAcc", "TestAcc", "AccDiff",
                                             "TrainVar", "CentroidDistance(origin)", "Oak17Acc"]}
    assert fills["Oak17Acc"].lower() == figures.ATTACK_FILL
    assert all(f.lower() != figures.ATTACK_FILL for n, f in fills.items() if n != "Oak17Acc")
    # Arc width follows strength; the strength is printed on the arc.
    assert arc_width(root, "AccDiff", "Oak17Acc") > arc_width(root, "TrainAcc", "AccDiff") + 1.0
    assert "0.95" in text and "0.55" in text
    # The undirected arc is drawn once.
    ids = [e.get("id") for e in root.iter() if (e.get("id") or "").startswith("arc-")]
    assert len(ids) == 9 and len(set(ids)) == 9
    assert ("arc-TrainAcc-TrainVar" in ids) != ("arc-TrainVar-TrainAcc" in ids)


@pytest.mark.parametrize("engine", ENGINES)
def test_causal_graph_without_strengths(tmp_path, graph, engine):
    svg, png = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "plain", engine=engine)
    assert_png(png)
    root = svg_root(svg)
    assert not re.search(r"\b0\.\d\d\b", svg_text(root))
    assert arc_width(root, "AccDiff", "Oak17Acc") == pytest.approx(arc_width(root, "TrainAcc", "AccDiff"))


def test_default_engine_falls_back_to_matplotlib_without_dot(tmp_path, graph, monkeypatch):
    monkeypatch.setattr(figures.shutil, "which", lambda name: None)
    svg, _ = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "fallback")
    head = svg.read_text()[:2000]
    assert "Matplotlib" in head and "graphviz" not in head.lower()
    with pytest.raises(EtioInputError, match="dot"):
        figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "forced", engine="graphviz")


@pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")
def test_default_engine_is_graphviz_when_installed(tmp_path, graph):
    svg, _ = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "dot")
    assert "graphviz" in svg.read_text()[:2000].lower()


def test_causal_graph_rejects_unknown_attack(tmp_path, graph):
    with pytest.raises(EtioInputError, match="MemguardAcc"):
        figures.draw_causal_graph(graph, "MemguardAcc", tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_figure1_shows_pooled_and_within_architecture_trends(tmp_path):
    traces = synthetic_traces()
    svg, png = figures.figure1_gap_vs_attack(traces, tmp_path / "fig1")
    assert_png(png)
    text = svg_text(svg_root(svg))
    for arch in ("resnet34", "densenet161", "mlp_1hidden"):
        m = re.search(rf"Arch={arch} \(n=(\d+), r=([-+]\d\.\d\d)\)", text)
        assert m, f"no legend entry for {arch}"
        assert int(m.group(1)) == 20 and float(m.group(2)) < -0.9  # reversed within the architecture
    pooled = re.search(r"all architectures \(r=([-+]\d\.\d\d)\)", text)
    assert pooled and float(pooled.group(1)) > 0.5
    assert "ShadowAcc" in text


def test_figure1_needs_attack_values(tmp_path):
    traces = synthetic_traces()
    with pytest.raises(EtioInputError, match="MLLeakAcc"):
        figures.figure1_gap_vs_attack(traces, tmp_path / "f", attack="MLLeakAcc")
    with pytest.raises(EtioInputError, match="'AccDiff'"):
        figures.figure1_gap_vs_attack(traces.drop(columns="AccDiff"), tmp_path / "f")


def test_bias_variance_means_per_width():
    traces = synthetic_traces()
    traces.loc[0, "TestVar"] = 1.2  # ce, wd 5e-4, resnet34, width 2 (wd 5e-3 row has 0.2)
    means = figures.bias_variance_by_width(traces)
    assert len(means) == 2 * 3 * 5
    row = means[(means.Loss == "ce") & (means.Arch == "resnet34") & (means.Width == 2)].iloc[0]
    assert row.TestVar == pytest.approx((1.2 + 0.2) / 2)
    assert row.TrainBias2 == pytest.approx(0.5)
    assert means["Width"].dtype.kind == "f"


def test_bias_variance_figure(tmp_path):
    svg, png = figures.bias_variance_vs_width(synthetic_traces(), tmp_path / "bv")
    assert_png(png)
    text = svg_text(svg_root(svg))
    for label in ("CE loss: bias²", "CE loss: variance", "MSE loss: bias²", "MSE loss: variance",
                  "resnet34", "mlp_1hidden", "train (members)", "test (non-members)"):
        assert label in text


def test_non_numeric_width_is_rejected_when_the_traces_are_read(tmp_path):
    """Width (like TrainSize) is parsed once, by read_traces; the figures take numbers."""
    from etio.core.schema import read_traces

    traces = synthetic_traces()
    traces.loc[3, "Width"] = "wide"
    traces.to_csv(tmp_path / "traces.csv", index=False)
    with pytest.raises(EtioInputError, match="'Width' has non-numeric value 'wide'"):
        read_traces(tmp_path / "traces.csv")


def test_all_figures_writes_every_figure(tmp_path, graph, strengths):
    graphs = {(0.005, "mse", "Oak17Acc"): (graph, None), (0.0005, "ce", "Oak17Acc"): (graph, strengths)}
    paths = figures.all_figures(synthetic_traces(), graphs, tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert names == [
        "fig1-gap-vs-Oak17Acc.svg", "fig1-gap-vs-Oak17Acc.png",
        "bias-variance-vs-width.svg", "bias-variance-vs-width.png",
        "graphs/graph-wd_0.0005-ce-Oak17Acc.svg", "graphs/graph-wd_0.0005-ce-Oak17Acc.png",
        "graphs/graph-wd_0.005-mse-Oak17Acc.svg", "graphs/graph-wd_0.005-mse-Oak17Acc.png",
    ]
    for p in paths:                                    # every file is a readable image, not just present
        if p.suffix == ".png":
            assert_png(p)
        else:
            assert svg_root(p).tag == f"{SVG_NS}svg"
    assert "weight decay 0.0005" in figures.figure_caption(paths[4])
    assert "Fig. 1" in figures.figure_caption(paths[0])
    # Fig. 1 is drawn from CE models at the normal weight decay: 15 points.
    assert "n=5," in svg_text(svg_root(paths[0]))


def test_all_figures_skips_figures_without_data(tmp_path):
    traces = synthetic_traces()
    traces["Oak17Acc"] = np.nan
    traces["TrainVar"] = np.nan
    assert figures.all_figures(traces, {}, tmp_path) == []


@pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")
def test_broken_graphviz_falls_back_with_a_warning(tmp_path, graph, monkeypatch):
    import subprocess

    def broken(*args, **kwargs):
        raise subprocess.CalledProcessError(1, args[0], stderr=b"Error: layout failed")

    monkeypatch.setattr(figures.subprocess, "run", broken)
    with pytest.warns(UserWarning, match="graphviz failed"):
        svg, png = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "g")
    assert "Matplotlib" in svg.read_text()[:2000]
    assert_png(png)


def test_strength_table_is_checked(tmp_path, graph, strengths):
    with pytest.raises(EtioInputError, match="arc strength table: missing column.*'strength'"):
        figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "g", strengths=strengths.drop(columns="strength"))
    # R spelling in the strength table is matched to the graph's nodes.
    r_names = strengths.assign(strength=0.9)
    svg, _ = figures.draw_causal_graph(graph, "Oak17Acc", tmp_path / "r", strengths=r_names, engine="matplotlib")
    root = svg_root(svg)
    assert arc_width(root, "CentroidDistance(origin)", "Oak17Acc") == pytest.approx(arc_width(root, "AccDiff", "Oak17Acc"))


def test_drawings_run_two_at_a_time_with_graphviz_and_keep_their_order(monkeypatch):
    """The figures stage's graphviz drawings wait on `dot` processes, so they run on one thread per core;
    the results come back in the items' order however the threads finish."""
    import threading
    import time

    import etio.core.provenance as provenance

    monkeypatch.setattr(provenance, "available_cores", lambda: 2)
    threads = set()

    def draw(i):
        threads.add(threading.get_ident())
        time.sleep(0.02 * (5 - i))          # the first items finish last
        return i * i

    assert figures.draw_each(draw, list(range(5))) == [0, 1, 4, 9, 16]
    assert len(threads) == (2 if shutil.which("dot") else 1)
    monkeypatch.setattr(figures.shutil, "which", lambda name: None)      # without graphviz: in this thread
    threads.clear()
    assert figures.draw_each(draw, [3, 1]) == [9, 1] and threads == {threading.get_ident()}
