"""Query stage: identification on the authors' graphs, the direct estimator vs dowhy, bad input."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from etio.report import paper
from etio.causal.estimators import Status
from etio.causal.estimators.reference import dowhy_estimate
from etio.causal.graphs import read_attack_graph, read_graphs
from etio.causal.identify import (
    _dowhy_backdoor_sets, default_adjustment_set, identify, identify_graphs, is_valid_backdoor_set, quiet_dowhy,
)
from etio.causal.query import ATE_SCHEMA, estimate_ates, estimate_cell, query_rows
from etio.causal.refuters import REFUTERS, SIMULATIONS
from etio.commands.app import app
from etio.core.errors import EtioInputError
from etio.core.schema import read_traces
from etio.core.schema import TRACE_COLUMNS, from_r_name
from tests.support.repo import REPO

EXAMPLE = REPO / "etio" / "data" / "example_traces.csv"


@pytest.fixture(scope="module")
def identifications():
    return {wd: identify_graphs(read_graphs(paper.graphs_dir(wd))) for wd in (0.0005, 0.005)}


def test_directed_path_equals_nonzero_authors_ate(identifications):
    total = 0
    for wd, ident in identifications.items():
        ref = pd.read_csv(paper.ate_csv(wd))
        ref["Feature"] = ref["Feature"].map(from_r_name)
        merged = ident.merge(ref, left_on=["loss", "attack", "feature"], right_on=["Loss", "Attack", "Feature"],
                             how="outer", indicator=True)
        assert (merged["_merge"] == "both").all()
        assert (merged["has_directed_path"] == (merged["ATE Mean value"] != 0)).all()
        total += len(merged)
    assert total == 338


def test_every_backdoor_set_is_valid(identifications):
    checked = 0
    for wd, ident in identifications.items():
        graphs = read_graphs(paper.graphs_dir(wd))
        for r in ident.itertuples():
            if not r.has_directed_path:
                assert r.backdoor_set == ""
                continue
            graph = graphs[r.loss, r.attack]
            adjust = [v for v in r.backdoor_set.split(";") if v]
            assert not set(adjust) & nx.descendants(graph, r.feature)
            cut = nx.DiGraph(graph)
            cut.remove_edges_from(list(graph.out_edges(r.feature)))
            assert nx.is_d_separator(cut, {r.feature}, {r.attack}, set(adjust))
            checked += 1
    assert checked == 138 + 117


def test_validity_check_rejects_bad_sets():
    g = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "M"), ("M", "Y")])
    assert is_valid_backdoor_set(g, "X", "Y", ["Z"])
    assert not is_valid_backdoor_set(g, "X", "Y", [])          # open backdoor path via Z
    assert not is_valid_backdoor_set(g, "X", "Y", ["Z", "M"])  # M descends from X


def _linear_data(n=300, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    w = rng.normal(size=n)
    x = 0.8 * z + 0.5 * w + rng.normal(size=n)
    m = 0.7 * x + rng.normal(size=n)
    y = 0.5 * x + 0.9 * z + 0.4 * m + 0.6 * w + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"Z": z, "W": w, "X": x, "M": m, "Y": y})


@pytest.mark.parametrize("arcs,treatment", [
    ([("Z", "X"), ("Z", "Y"), ("X", "Y")], "X"),                                   # plain confounder
    ([("Z", "X"), ("Z", "Y"), ("X", "M"), ("M", "Y"), ("X", "Y")], "X"),           # mediator
    ([("Z", "X"), ("Z", "Y"), ("X", "Y"), ("W", "Y")], "X"),                       # effect modifier W
    # two minimal sets tie, {Z, W} and {X, W}; node order decides: {Z, W} here, {X, W} below,
    # while dowhy's own pick follows hash order (the same for both graphs in one process)
    ([("Z", "X"), ("Z", "Y"), ("X", "M"), ("M", "Y"), ("W", "Y"), ("W", "M")], "M"),
    ([("X", "M"), ("Z", "X"), ("Z", "Y"), ("M", "Y"), ("W", "Y"), ("W", "M")], "M"),
])
def test_paper_estimator_is_dowhys_estimate_effect(arcs, treatment):
    data = _linear_data()
    graph = nx.DiGraph(arcs)
    data = data[list(graph.nodes)]
    ident = identify(graph, treatment, "Y")
    row = estimate_cell(data, None, graph, ident)
    ref = dowhy_estimate(data, graph, treatment, "Y")   # CausalModel -> identify_effect -> estimate_effect
    assert row["ate_paper"] == pytest.approx(ref.value, rel=1e-9, abs=1e-12)
    # ties between equally good sets are broken by the stated rule, not by dowhy's hash order
    assert list(ref.target_estimand.backdoor_variables["backdoor"]) == \
        list(default_adjustment_set(graph, treatment, "Y"))
    # the reference estimates the ATE alone: dowhy's per-modifier-stratum estimates are not run
    assert ref.conditional_estimates is None
    assert row["p_value_paper"] == pytest.approx(ref.test_stat_significance()["p_value"][0], rel=1e-9)
    if not ident.effect_modifiers:
        lo, hi = ref.estimator._estimate_confidence_intervals(0.95).ravel()
        assert (row["ate_paper"] - row["paper_half_width"], row["ate_paper"] + row["paper_half_width"]) == \
            pytest.approx((lo, hi), rel=1e-9)
    assert row["status"] == Status.ESTIMATED and row["ci_low"] < row["ate"] < row["ci_high"]


def test_dowhy_is_quieted_and_nothing_else():
    """dowhy's INFO logging and its warnings are muted; the root logger and other modules'
    warnings are left alone."""
    import logging
    import warnings

    dowhy_logger, root = logging.getLogger("dowhy"), logging.getLogger()
    levels = dowhy_logger.level, root.level
    dowhy_logger.setLevel(logging.NOTSET)
    root.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            quiet_dowhy()
            for module in ("dowhy", "dowhy.causal_model", "dowhyish", "etio.causal.identify"):
                warnings.warn_explicit(f"from {module}", UserWarning, "module.py", 1, module=module)
        assert [str(w.message) for w in caught] == ["from dowhyish", "from etio.causal.identify"]
        assert (dowhy_logger.level, root.level) == (logging.ERROR, logging.WARNING)
    finally:
        dowhy_logger.setLevel(levels[0])
        root.setLevel(levels[1])


def test_adjustment_set_rule():
    """dowhy's candidate sets and preferences (fewest instruments, then fewest variables), ties
    broken by graph node order."""
    # Two minimal sets, {Z, W} and {X, W}, block M's backdoor paths; Z comes first in node order.
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "M"), ("M", "Y"), ("W", "Y"), ("W", "M")])
    assert default_adjustment_set(graph, "M", "Y") == ("Z", "W")
    reordered = nx.DiGraph()
    reordered.add_nodes_from(["X", "Z", "Y", "M", "W"])
    reordered.add_edges_from(graph.edges)
    assert default_adjustment_set(reordered, "M", "Y") == ("X", "W")
    # X <- I <- U -> Y: {I} and {U} both block the one backdoor path, and I comes first. I is no
    # instrument (dowhy's test: it is d-connected to Y once X's incoming arcs are cut), so the
    # tie goes to node order; counted as an instrument, I would lose to U.
    graph = nx.DiGraph([("I", "X"), ("U", "I"), ("U", "Y"), ("X", "Y")])
    assert sorted(_dowhy_backdoor_sets(graph, "X", "Y"), key=sorted) == \
        [frozenset({"I"}), frozenset({"I", "U"}), frozenset({"U"})]
    assert default_adjustment_set(graph, "X", "Y") == ("I",)


def test_paper_estimator_equals_dowhy_on_example_traces():
    traces = read_traces(EXAMPLE)
    graph = read_attack_graph(paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot", "Oak17Acc")
    data, runs = query_rows(traces, 0.0005, "ce", "Oak17Acc", graph.nodes)
    assert len(data) == 280 and len(set(runs)) == 70   # 2 epochs x 2 schedules per training run
    for treatment in ("TestAcc", "AccDiff", "NumParams"):
        ident = identify(graph, treatment, "Oak17Acc")
        row = estimate_cell(data, runs, graph, ident)
        ref = dowhy_estimate(data, graph, treatment, "Oak17Acc")
        # raw NumParams (~1e7) limits the conditioning; column order may differ from dowhy's own set
        assert row["ate_paper"] == pytest.approx(ref.value, rel=1e-6)
        assert row["p_value_paper"] == pytest.approx(ref.test_stat_significance()["p_value"][0], rel=1e-6)


def test_estimate_ates_table():
    traces = read_traces(EXAMPLE)
    graphs = read_graphs(paper.graphs_dir(0.0005))
    table = estimate_ates(traces, graphs, 0.0005)
    ATE_SCHEMA.validate(table)
    assert len(table) == 182
    no_path = table["status"] == Status.NO_PATH
    assert no_path.sum() == 182 - 138
    assert (table.loc[no_path, "ate"] == 0).all() and table.loc[no_path, "p_value"].isna().all()
    assert (table.loc[no_path, "ate_paper"] == 0).all() and table.loc[no_path, "p_value_paper"].isna().all()
    # the example traces are drawn without the exact identities: every cell with a path is estimated
    est = table[~no_path]
    assert (est["status"] == Status.ESTIMATED).all()
    assert est["p_value"].between(0, 1).all() and (est["ci_low"] <= est["ate"]).all()
    assert est["q_value"].between(0, 1).all() and (est["q_value"] >= est["p_value"]).all()
    assert est["robustness_value"].between(0, 1).all()
    assert (est["robustness_value_alpha"] <= est["robustness_value"]).all()
    memguard = table[table.attack == "MemguardAcc"].groupby("loss")["n_rows"].unique()
    assert list(memguard["ce"]) == [240] and list(memguard["mse"]) == [120]   # MNIST rows lack MemGuard
    assert set(table.loc[(table.attack == "Oak17Acc") & (table.loss == "ce"), "n_rows"]) == {280}
    assert set(table.loc[(table.attack == "Oak17Acc") & (table.loss == "mse"), "n_rows"]) == {160}
    assert set(table.loc[~no_path & (table.attack == "Oak17Acc") & (table.loss == "ce"), "n_clusters"]) == {70}


def test_refuters_on_a_known_model():
    data = _linear_data(n=400)[["Z", "X", "Y"]]
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    ident = identify(graph, "X", "Y")
    row = estimate_cell(data, None, graph, ident, refuters=True, seed=3)
    assert row["random_common_cause_new_effect"] == pytest.approx(row["ate_paper"], rel=0.05)
    assert row["data_subset_new_effect"] == pytest.approx(row["ate_paper"], rel=0.15)
    assert abs(row["placebo_treatment_new_effect"]) < 0.2 * abs(row["ate_paper"])
    # a correct model on clean data passes all three
    assert [row[f"{name}_result"] for name in REFUTERS] == ["pass", "pass", "pass"]
    assert row == estimate_cell(data, None, graph, ident, refuters=True, seed=3)   # seeded: same numbers


def _write_graph(path: Path, arcs, nodes):
    lines = ["digraph {"] + [f'  "{n}" ;' for n in nodes] + [f'  edge [dir=forward] "{u}" -> "{v}" ;' for u, v in arcs] + ["}"]
    path.write_text("\n".join(lines) + "\n")


def _authors_graph_copy(tmp_path: Path, mutate) -> Path:
    src = paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot"
    gdir = tmp_path / "graphs"
    gdir.mkdir()
    (gdir / "ce-Oak17Acc.dot").write_text(mutate(src.read_text()))
    return gdir


def test_cli_query_and_identify(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ates.csv"
    res = runner.invoke(app, ["query", "--traces", str(EXAMPLE), "--graphs", str(paper.graphs_dir(0.005)),
                              "--wd", "0.005", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert len(table) == 156 and (out.parent / "ates.csv.provenance.json").exists()
    assert {"ate_paper", "p_value_paper", "ate", "p_value", "ci_low", "ci_high", "q_value", "status"} <= set(table.columns)
    ident = tmp_path / "ident.csv"
    res = runner.invoke(app, ["identify", "--graphs", str(paper.graphs_dir(0.005)), "--out", str(ident)])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(ident)["has_directed_path"].sum() == 117


@pytest.mark.parametrize("case", ["missing_node", "cycle", "unknown_attack"])
def test_bad_input_clear_error_no_output(tmp_path, case, etio_cli):
    if case == "missing_node":
        gdir = _authors_graph_copy(tmp_path, lambda t: t.replace('"TrainSize" ;', '"TrainSize" ;\n  "Epochs" ;')
                                   .replace('edge [dir=forward] "TrainSize" -> "Oak17Acc" ;',
                                            'edge [dir=forward] "TrainSize" -> "Oak17Acc" ;\n  edge [dir=forward] "Epochs" -> "Oak17Acc" ;'))
        expected = "Epochs"
    elif case == "cycle":
        gdir = _authors_graph_copy(tmp_path, lambda t: t.replace("}", '  edge [dir=forward] "Oak17Acc" -> "TrainAcc" ;\n}'))
        expected = "cycle"
    else:
        gdir = tmp_path / "graphs"
        gdir.mkdir()
        _write_graph(gdir / "ce-FooAcc.dot", [("AccDiff", "FooAcc")], ["AccDiff", "FooAcc"])
        expected = "unknown attack 'FooAcc'"
    out = tmp_path / "ates.csv"
    proc = etio_cli("query", "--traces", EXAMPLE, "--graphs", gdir, "--out", out)
    assert proc.returncode == 2
    assert expected in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists()


def test_unknown_weight_decay_is_an_input_error():
    traces = read_traces(EXAMPLE)
    with pytest.raises(EtioInputError, match="weight decay 0.1"):
        estimate_ates(traces, read_graphs(paper.graphs_dir(0.0005)), 0.1)


def test_refuter_p_values_are_dowhys_tests_of_the_simulated_effects(monkeypatch):
    """Each ``<refuter>_p_value`` / ``_result`` is recomputed here from the simulated effects the
    refuter produced. With fewer than 100 simulations dowhy tests the reference value (0 for the
    placebo, the original estimate for the other two) against a normal fitted to the simulated
    effects: p = the normal's tail beyond the reference, on the reference's side (so p <= 0.5),
    and the refutation fails when p <= 0.05."""
    from scipy import stats
    import dowhy.causal_refuters.data_subset_refuter as subset_module
    import dowhy.causal_refuters.placebo_treatment_refuter as placebo_module
    import dowhy.causal_refuters.random_common_cause as common_cause_module

    seen: dict[str, tuple[float, np.ndarray]] = {}
    for name, module in (("placebo_treatment", placebo_module), ("random_common_cause", common_cause_module),
                         ("data_subset", subset_module)):
        original = module.test_significance

        def spy(estimate, simulations, *args, _name=name, _original=original, **kwargs):
            seen[_name] = (float(estimate.value), np.asarray(simulations, dtype=float))
            return _original(estimate, simulations, *args, **kwargs)

        monkeypatch.setattr(module, "test_significance", spy)

    data = _linear_data(n=400)[["Z", "X", "Y"]]
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    row = estimate_cell(data, None, graph, identify(graph, "X", "Y"), refuters=True, seed=3)
    assert sorted(seen) == sorted(REFUTERS)
    assert seen["placebo_treatment"][0] == 0.0                       # the placebo's reference is no effect
    assert seen["random_common_cause"][0] == pytest.approx(row["ate_paper"], rel=1e-12)
    for name, (reference, simulated) in seen.items():
        assert len(simulated) == SIMULATIONS
        z = (reference - simulated.mean()) / simulated.std()
        expected = float(stats.norm.sf(abs(z)))
        assert row[f"{name}_p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-15), name
        assert row[f"{name}_p_value"] <= 0.5
        assert row[f"{name}_result"] == ("fail" if expected <= 0.05 else "pass"), name
        assert row[f"{name}_new_effect"] == pytest.approx(simulated.mean(), rel=1e-9), name
