"""One cell of the ATE table (:func:`etio.causal.estimate_cell`) in each of its three
outcomes, and how :func:`etio.causal.estimate_ates` seeds and checks its cells.

A cell is one row of the ATE table: the tests state each row's exact set of columns and every
value that is not an estimate (statuses, reasons, flags and how they are joined, defaults), typed
in here. The estimates are compared with the estimators they come from, called directly
(:mod:`etio.causal.estimators`, themselves checked against statsmodels and dowhy elsewhere), and
the robustness values with Cinelli & Hazlett's formula written out below.
"""

from __future__ import annotations

import math

import etio.causal.query
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from etio.causal.estimators.base import SIGNIFICANCE_LEVEL
from etio.causal.estimators.paper import backdoor_estimand, paper_estimate
from etio.causal.estimators.sound import sound_estimate
from etio.causal.graphs import read_attack_graph
from etio.causal.identify import identify
from etio.causal.overlap import overlap
from etio.causal.query import add_q_values, estimate_ates, estimate_cell, query_rows
from etio.core.errors import EtioInputError

#: The columns every cell has, whatever its outcome.
COMMON = {"backdoor_set", "n_rows", "reason", "flags", "effect_modifiers", "modifiers_left_out", "overlap_r2",
          "vif", "n_clusters", "status", "ate_paper", "p_value_paper",
          "ate", "p_value", "ci_low", "ci_high", "se", "p_value_rows_independent", "robustness_value",
          "robustness_value_alpha"}
#: The refuters' columns (``refuters=True``): for each refuter its new effect, p-value and verdict.
REFUTER_COLUMNS = {f"{name}_{part}" for name in ("placebo_treatment", "random_common_cause", "data_subset")
                   for part in ("new_effect", "p_value", "result")}


def _same(row: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(row[key], float) and math.isnan(row[key]), (key, row[key])
        else:
            assert row[key] == value, (key, row[key], value)


def _robustness_value(t_stat: float, dof: int, alpha: float | None = None) -> float:
    """Cinelli & Hazlett (2020), eq. 18 and its significance version (the non-extreme branch):
    f = |t| / sqrt(dof), less |t_{alpha/2, dof-1}| / sqrt(dof - 1) for alpha; RV = (sqrt(f^4 + 4 f^2) - f^2) / 2."""
    f = abs(t_stat) / math.sqrt(dof)
    if alpha is not None:
        f -= abs(stats.t.ppf(alpha / 2, dof - 1)) / math.sqrt(dof - 1)
    return 0.0 if f < 0 else 0.5 * (math.sqrt(f ** 4 + 4 * f ** 2) - f ** 2)


def test_a_cell_without_a_directed_path_reports_a_zero_effect_and_nothing_else():
    graph = nx.DiGraph([("Y", "X")])                      # the arc points the other way
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"X": rng.normal(size=12), "Y": rng.normal(size=12)})
    clusters = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3])
    row = estimate_cell(data, clusters, graph, identify(graph, "X", "Y"))
    assert set(row) == COMMON
    _same(row, {"status": "no causal path", "reason": "no directed path from X to Y in the graph",
                "backdoor_set": "", "n_rows": 12, "n_clusters": 4, "flags": "", "effect_modifiers": "",
                "modifiers_left_out": "", "ate_paper": 0.0, "p_value_paper": math.nan, "ate": 0.0, "ci_low": 0.0,
                "ci_high": 0.0, "p_value": math.nan, "se": math.nan, "p_value_rows_independent": math.nan,
                "robustness_value": math.nan, "robustness_value_alpha": math.nan, "overlap_r2": math.nan,
                "vif": math.nan})
    # without clusters every row is its own; with refuters, their columns are empty (none ran)
    row = estimate_cell(data, None, graph, identify(graph, "X", "Y"), refuters=True)
    assert set(row) == COMMON | REFUTER_COLUMNS and row["n_clusters"] == 12
    for name in ("placebo_treatment", "random_common_cause", "data_subset"):
        _same(row, {f"{name}_new_effect": math.nan, f"{name}_p_value": math.nan, f"{name}_result": ""})


def test_a_cell_whose_treatment_the_adjustment_set_fixes_is_not_identifiable():
    rng = np.random.default_rng(1)
    z = rng.normal(size=30)
    data = pd.DataFrame({"Z": z, "X": 2 * z, "Y": z + rng.normal(size=30)})       # X = 2 Z exactly
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    row = estimate_cell(data, None, graph, identify(graph, "X", "Y"))
    assert set(row) == COMMON | {"paper_half_width"}
    _same(row, {"status": "not identifiable", "backdoor_set": "Z", "n_rows": 30, "n_clusters": 30, "flags": "",
                "reason": "X is a deterministic function of Z in the adjustment set: it cannot vary once they are "
                          "fixed (positivity fails), so no data identify the effect",
                "effect_modifiers": "", "modifiers_left_out": "", "ate": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "p_value": math.nan, "se": math.nan, "p_value_rows_independent": math.nan,
                "robustness_value": math.nan, "robustness_value_alpha": math.nan})
    # the overlap diagnostics are still reported: X on Z fits exactly
    assert row["overlap_r2"] == pytest.approx(1.0, abs=1e-12) and row["vif"] > 1e10
    # the paper's number is computed and labelled as such (it ignores positivity)
    paper = paper_estimate(data, backdoor_estimand("X", "Y", ["Z"]), "X", ())
    assert (row["ate_paper"], row["p_value_paper"]) == (paper.ate, paper.p_value)


def test_an_estimated_cell_joins_its_flags_and_left_out_modifiers_and_reports_the_sound_fit():
    rng = np.random.default_rng(3)
    n = 40
    z = rng.normal(size=n)
    x = z + 0.05 * rng.normal(size=n)                       # R² of X on Z about 0.998: weak overlap
    m1 = x - z                                              # with M1 (or M2 = 2 M1) adjusted for, X is fixed
    y = 0.5 * x + z + m1 + 0.3 * rng.normal(size=n)
    # Z2 and Z3 repeat Z: collinear adjustment columns, left out of the sound regression
    data = pd.DataFrame({"Z": z, "Z2": z, "Z3": z, "X": x, "M1": m1, "M2": 2 * m1, "Y": y})
    graph = nx.DiGraph([(c, t) for c in ("Z", "Z2", "Z3") for t in ("X", "Y")]
                       + [("X", "Y"), ("M1", "Y"), ("M2", "Y")])
    clusters = np.arange(n) % 5
    ident = identify(graph, "X", "Y")
    assert ident.backdoor_set == ("Z", "Z2", "Z3") and ident.effect_modifiers == ("M1", "M2")
    row = estimate_cell(data, clusters, graph, ident)
    assert set(row) == COMMON | {"paper_half_width"}
    sound = sound_estimate(data, "X", "Y", ["Z", "Z2", "Z3"], [], clusters)
    final = overlap(data, "X", ["Z", "Z2", "Z3"])
    fixes = "with it X would be a deterministic function of the adjustment set"
    _same(row, {"status": "estimated", "reason": "", "backdoor_set": "Z;Z2;Z3", "n_rows": 40, "n_clusters": 5,
                "flags": f"weak overlap (VIF {final.vif:.3g}); collinear adjustment column(s) left out: Z2, Z3",
                "effect_modifiers": "", "modifiers_left_out": f"M1 ({fixes}); M2 ({fixes})",
                "ate": sound.ate, "se": sound.se, "ci_low": sound.ci_low, "ci_high": sound.ci_high,
                "p_value": sound.p_value, "p_value_rows_independent": sound.p_value_rows_independent,
                "overlap_r2": final.r2, "vif": final.vif})
    assert row["p_value"] != row["p_value_rows_independent"]          # clustered vs row-wise inference
    assert row["robustness_value"] == pytest.approx(_robustness_value(sound.t_stat, sound.dof_resid), rel=1e-12)
    assert row["robustness_value_alpha"] == 0.0                       # not significant at 5 %


def test_an_estimated_cell_with_a_kept_modifier_and_a_significant_effect():
    rng = np.random.default_rng(4)
    n = 60
    z, m = rng.normal(size=n), rng.normal(size=n)
    x = z + rng.normal(size=n)
    y = 2.0 * x + z + x * m + 0.5 * rng.normal(size=n)
    data = pd.DataFrame({"Z": z, "X": x, "M": m, "Y": y})
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y"), ("M", "Y")])
    row = estimate_cell(data, None, graph, identify(graph, "X", "Y"))
    sound = sound_estimate(data, "X", "Y", ["Z"], ["M"], None)
    final = overlap(data, "X", ["Z", "M"])                  # the modifier's main effect enters
    _same(row, {"status": "estimated", "effect_modifiers": "M", "modifiers_left_out": "", "flags": "",
                "ate": sound.ate, "p_value": sound.p_value, "n_clusters": n, "overlap_r2": final.r2,
                "vif": final.vif})
    assert row["p_value"] < 1e-6
    alpha = SIGNIFICANCE_LEVEL
    assert alpha == 0.05
    assert row["robustness_value_alpha"] == pytest.approx(_robustness_value(sound.t_stat, sound.dof_resid, alpha),
                                                          rel=1e-12)
    assert 0 < row["robustness_value_alpha"] < row["robustness_value"]


def test_refuters_default_to_seed_zero():
    rng = np.random.default_rng(5)
    z = rng.normal(size=40)
    x = z + rng.normal(size=40)
    data = pd.DataFrame({"Z": z, "X": x, "Y": x + z + rng.normal(size=40)})
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    ident = identify(graph, "X", "Y")
    row = estimate_cell(data, None, graph, ident, refuters=True)
    assert set(row) == COMMON | {"paper_half_width"} | REFUTER_COLUMNS
    assert row == estimate_cell(data, None, graph, ident, refuters=True, seed=0)
    assert row != estimate_cell(data, None, graph, ident, refuters=True, seed=1)


def _star_traces(n_rows: int):
    """``n_rows`` complete rows of one (loss, weight decay) slice and a graph in which every
    treatment of ``Oak17Acc`` causes it."""
    from etio.core.schema import TRACE_COLUMNS
    from etio.core.schema import treatments_for

    rng = np.random.default_rng(6)
    treatments = list(treatments_for("Oak17Acc"))
    table = pd.DataFrame({c: rng.uniform(0.1, 0.9, n_rows) for c in [*treatments, "Oak17Acc"]})
    for column, value in (("Loss", "ce"), ("WeightDecay", 0.0005), ("Dataset", "cifar10"), ("Arch", "resnet34"),
                          ("lr", 0.1)):
        table[column] = value
    table["Width"], table["TrainSize"] = np.arange(n_rows) + 1, 1000 * (1 + np.arange(n_rows) % 2)
    table = table.reindex(columns=[c for c in TRACE_COLUMNS if c in table.columns])
    return table, {("ce", "Oak17Acc"): nx.DiGraph([(t, "Oak17Acc") for t in treatments])}, treatments


def test_estimate_ates_seeds_each_cell_apart_and_needs_three_rows(monkeypatch):
    seeds = []

    def record(data, clusters, graph, ident, *, refuters=False, seed=0, adjustment=None):
        seeds.append(seed)
        row = {c: math.nan for c in COMMON | (REFUTER_COLUMNS if refuters else set())}
        row.update({c: "" for c in row if c.endswith("_result")})
        row.update(status="no causal path", backdoor_set="", reason="", flags="", effect_modifiers="",
                   modifiers_left_out="", n_rows=len(data), n_clusters=len(data))
        return row

    monkeypatch.setattr(etio.causal.query, "estimate_cell", record)
    traces, graphs, treatments = _star_traces(3)                      # three rows: the fewest a regression takes
    table = estimate_ates(traces, graphs, 0.0005)
    assert seeds == [10 * i for i in range(len(treatments))] and len(treatments) == 13
    assert table["q_value"].isna().all()                             # no estimated cell: none in the q-value family
    seeds.clear()
    estimate_ates(traces, graphs, 0.0005, refuters=True, seed=7)
    assert seeds == [7 + 10 * i for i in range(13)]
    traces, graphs, _ = _star_traces(2)
    with pytest.raises(EtioInputError, match=r"ce-Oak17Acc: only 2 complete trace row\(s\) at weight decay 0.0005; "
                                             r"a regression needs at least 3"):
        estimate_ates(traces, graphs, 0.0005)


def test_q_values_of_a_table_without_estimated_cells_are_missing():
    table = pd.DataFrame({"loss": ["ce", "ce"], "weight_decay": [0.0005] * 2, "status": ["no causal path"] * 2,
                          "p_value": [math.nan] * 2})
    out = add_q_values(table)
    assert list(out.columns) == ["loss", "weight_decay", "status", "p_value", "q_value"]
    assert out["q_value"].isna().all() and "q_value" not in table.columns       # a copy: the input is left alone


def test_identification_names_its_query_and_orders_modifiers_as_the_graph_does():
    no_path = identify(nx.DiGraph([("Y", "X")]), "X", "Y")
    assert (no_path.treatment, no_path.outcome, no_path.has_directed_path, no_path.identified) == ("X", "Y", False,
                                                                                                  False)
    plain = identify(nx.DiGraph([("X", "Y")]), "X", "Y")
    assert (plain.has_directed_path, plain.identified, plain.backdoor_set) == (True, True, ())
    # modifiers in the graph's node order (B was added before A), not alphabetically
    graph = nx.DiGraph()
    graph.add_nodes_from(["X", "B", "A", "Y"])
    graph.add_edges_from([("X", "Y"), ("B", "Y"), ("A", "Y")])
    assert identify(graph, "X", "Y").effect_modifiers == ("B", "A")


def test_query_rows_checks_only_its_slice_labels_runs_and_warns_of_rows_left_out():
    traces, graphs, treatments = _star_traces(5)
    other = traces.iloc[[0]].assign(Loss="mse")
    other[treatments[0]] = math.nan                   # a gap in another slice is not this slice's problem
    gappy = traces.copy()
    gappy.loc[4, "Oak17Acc"] = math.nan                # an attack not run on one configuration
    with pytest.warns(UserWarning) as caught:
        data, runs = query_rows(pd.concat([gappy, other], ignore_index=True), 0.0005, "ce", "Oak17Acc",
                                        graphs[("ce", "Oak17Acc")].nodes)
    assert [str(w.message) for w in caught] == [
        "ce-Oak17Acc at weight decay 0.0005: 1 of 5 rows have no Oak17Acc value and are left out of its queries"]
    assert len(data) == 4 and all(data.dtypes == "float64")
    # a row's run: WeightDecay, Loss, Dataset, Arch, Width, TrainSize and lr, joined by "|"
    assert list(runs) == [f"0.0005|ce|cifar10|resnet34|{w}|{s}|0.1" for w, s in ((1, 1000), (2, 2000), (3, 1000),
                                                                                 (4, 2000))]


def test_undirected_arcs_are_named_in_order_when_oriented_and_when_they_cannot_be(tmp_path):
    from etio.report import paper

    authors = (paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot").read_text()
    arcs = ['  edge [dir=forward] "NumParams" -> "TrainVar" ;', '  edge [dir=forward] "NumParams" -> "TestVar" ;']
    assert all(a in authors for a in arcs)
    text = authors
    for arc in arcs:
        text = text.replace(arc, arc.replace("dir=forward", "dir=none"))
    path = tmp_path / "ce-Oak17Acc.dot"
    path.write_text(text)
    with pytest.warns(UserWarning) as caught:
        read_attack_graph(path, "Oak17Acc")
    assert [str(w.message) for w in caught] == ["ce-Oak17Acc.dot: undirected arc(s) oriented by the consistent "
                                                "extension: NumParams -> TrainVar, TestVar -> NumParams"]
    # a chordless undirected 4-cycle has no extension without a new v-structure
    square = "".join(f'  edge [dir=none] "{u}" -> "{v}" ;\n' for u, v in (("D", "C"), ("C", "B"), ("B", "A"),
                                                                          ("A", "D")))
    path.write_text("digraph {\n" + square + "}\n")
    with pytest.raises(EtioInputError) as raised:
        read_attack_graph(path, "Oak17Acc")
    assert str(raised.value) == (f"{path}: the undirected arc A - B cannot be oriented without creating a cycle or "
                                 "a new v-structure")
