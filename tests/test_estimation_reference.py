"""The ATE table on hand-built graphs and studies against formula-built references (the
sound estimator's interval and test are checked against statsmodels in test_estimation.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from etio.causal import effects


def _linear_data(n=300, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    w = rng.normal(loc=1.5, size=n)            # a non-zero mean makes the modifier term matter
    x = 0.8 * z + 0.5 * w + rng.normal(size=n)
    m = 0.7 * x + rng.normal(size=n)
    y = 0.5 * x + 0.9 * z + 0.4 * m + 0.6 * w + 0.3 * x * w + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"Z": z, "W": w, "X": x, "M": m, "Y": y})


def _formula_interval(data: pd.DataFrame, treatment: str, outcome: str, backdoor, modifiers):
    """statsmodels' t interval of span * (b_T + sum_k mean(M_k) b_{T:M_k}) on a formula-built OLS."""
    import statsmodels.formula.api as smf

    terms = [treatment, *backdoor, *(f"{treatment}:{m}" for m in modifiers)]
    fit = smf.ols(f"{outcome} ~ " + " + ".join(terms), data=data).fit()
    weights = pd.Series(0.0, index=fit.params.index)
    weights[treatment] = 1.0
    for m in modifiers:
        weights[f"{treatment}:{m}"] = data[m].mean()
    test = fit.t_test(weights.to_numpy()[None, :])
    span = data[treatment].max() - data[treatment].min()
    low, high = np.asarray(test.conf_int(alpha=0.05)).ravel()
    return span * float(np.asarray(test.effect).ravel()[0]), span * low, span * high, float(fit.pvalues[treatment])


def _small_study(n=40, seed=0):
    """Trace rows of one attack whose graph is TrainSize -> AccDiff -> Oak17Acc <- TestVar, the
    other 10 treatments isolated; rows of a second weight decay and loss that must be left out."""
    from etio.core.schema import features_for

    rng = np.random.default_rng(seed)
    nodes = features_for("Oak17Acc") + ["Oak17Acc"]
    rows = pd.DataFrame(rng.normal(size=(n, len(nodes))), columns=nodes)
    rows["TrainSize"] = np.where(np.arange(n) % 2 == 0, 1000.0, 5000.0)     # read_traces has parsed 1k / 5k
    size = rows["TrainSize"]
    rows["AccDiff"] = 1e-4 * size + rng.normal(scale=0.1, size=n)
    rows["Oak17Acc"] = 0.5 * rows["AccDiff"] - 0.2 * rows["TestVar"] + rng.normal(scale=0.05, size=n)
    rows["WeightDecay"], rows["Loss"] = 0.0005, "ce"
    other = rows.copy()
    other["WeightDecay"] = 0.005
    third = rows.copy()
    third["Loss"] = "mse"
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from([("TrainSize", "AccDiff"), ("AccDiff", "Oak17Acc"), ("TestVar", "Oak17Acc")])
    return pd.concat([rows, other, third], ignore_index=True), graph, rows


def test_estimate_ates_on_a_hand_built_graph():
    traces, graph, rows = _small_study()
    table = effects.estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005)
    assert list(table.columns) == list(effects.ATE_SCHEMA.required) + ["n_rows"]
    assert len(table) == 13 and (table["n_rows"] == 40).all()
    assert table["feature"].tolist() == effects.treatments_for("Oak17Acc")
    estimated = table[table["status"] == effects.STATUS_ESTIMATED].set_index("feature")
    assert sorted(estimated.index) == ["AccDiff", "TestVar", "TrainSize"]      # the three with a directed path
    absent = table[table["status"] == effects.STATUS_NO_PATH]
    assert (absent["ate"] == 0).all() and absent["p_value"].isna().all()
    assert (absent["ci_low"] == 0).all() and (absent["ci_high"] == 0).all() and (absent["backdoor_set"] == "").all()
    data = rows
    for feature in ("AccDiff", "TestVar", "TrainSize"):
        row = estimated.loc[feature]
        ident = effects.identify(graph, feature, "Oak17Acc")
        assert row["backdoor_set"] == ";".join(ident.backdoor_set)
        # dowhy's effect modifiers: causes of the attack outside the treatment's own ancestry.
        assert "TestVar" in ident.effect_modifiers or feature == "TestVar"
        ate, low, high, p = _formula_interval(data, feature, "Oak17Acc", ident.backdoor_set, ident.effect_modifiers)
        assert (row["ate"], row["ci_low"], row["ci_high"]) == pytest.approx((ate, low, high), rel=1e-9), feature
        assert row["p_value"] == pytest.approx(p, rel=1e-6), feature
    # Through AccDiff: 0.5 x 1e-4 per unit of TrainSize over the 4000 between 1k and 5k.
    assert estimated.loc["TrainSize", "ate"] == pytest.approx(0.5 * 1e-4 * 4000, rel=0.2)
    assert (table["loss"] == "ce").all() and (table["weight_decay"] == 0.0005).all()


def test_estimate_ates_with_refuters_and_on_bad_input():
    traces, graph, rows = _small_study()
    table = effects.estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005, refuters=True, seed=3)
    assert list(table.columns) == effects.ATE_SCHEMA.columns
    no_path = table["status"] == effects.STATUS_NO_PATH
    refuter_columns = [c for c in effects.ATE_SCHEMA.optional if c != "n_rows"]
    assert table.loc[no_path, refuter_columns].isna().all().all()
    assert table.loc[~no_path, refuter_columns].notna().all().all()
    again = effects.estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005, refuters=True, seed=3)
    pd.testing.assert_frame_equal(table, again)                                   # seeded
    with pytest.raises(effects.EtioInputError) as raised:
        effects.estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.05)
    assert str(raised.value) == "the trace table has no rows with weight decay 0.05 (present: 0.0005, 0.005)"
    few = pd.concat([rows.iloc[:2], rows.iloc[:2].assign(WeightDecay=0.005)])
    with pytest.raises(effects.EtioInputError) as raised:
        effects.estimate_ates(few, {("ce", "Oak17Acc"): graph}, 0.0005)
    assert str(raised.value) == ("ce-Oak17Acc: only 2 complete trace row(s) at weight decay 0.0005; "
                                 "a regression needs at least 3")
    with pytest.raises(effects.EtioInputError) as raised:
        effects.estimate_ates(traces.drop(columns=["TestVar", "TrainVar"]), {("ce", "Oak17Acc"): graph}, 0.0005)
    assert str(raised.value) == "the ce-Oak17Acc graph has node(s) TrainVar, TestVar that the trace table lacks"


def test_query_slice_drops_incomplete_rows():
    traces, graph, rows = _small_study()
    traces.loc[3, "TestVar"] = np.nan
    data = effects.query_slice(traces, 0.0005, "ce", "Oak17Acc", ["TrainSize", "TestVar", "Oak17Acc"])
    assert list(data.columns) == ["TrainSize", "TestVar", "Oak17Acc"] and len(data) == 39
    assert set(data["TrainSize"]) == {1000.0, 5000.0} and data.index.tolist() == list(range(39))
    assert (data.dtypes == "float64").all()


def test_identify_graphs_and_the_backdoor_criterion():
    _, graph, _ = _small_study()
    table = effects.identify_graphs({("ce", "Oak17Acc"): graph})
    assert list(table.columns) == list(effects.IDENTIFICATION_SCHEMA.required)
    assert table.set_index("feature")["has_directed_path"].to_dict() == {
        t: t in ("AccDiff", "TestVar", "TrainSize") for t in effects.treatments_for("Oak17Acc")}
    assert table["identified"].tolist() == table["has_directed_path"].tolist()
    g = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    assert effects.is_valid_backdoor_set(g, "X", "Y", ["Z"]) and not effects.is_valid_backdoor_set(g, "X", "Y", [])
    ident = effects.identify(nx.DiGraph([("Y", "X")]), "X", "Y")
    assert (ident.has_directed_path, ident.identified, ident.backdoor_set, ident.effect_modifiers) == (
        False, False, (), ())
