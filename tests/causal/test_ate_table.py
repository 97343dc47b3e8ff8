"""The ATE table on hand-built graphs and studies against formula-built references (the
sound estimator's interval and test are checked against statsmodels in test_sound_estimator.py)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from etio.causal.estimators import Status
from etio.causal.estimators.reference import dowhy_estimate
from etio.causal.identify import IDENTIFICATION_SCHEMA, identify, identify_graphs, is_valid_backdoor_set
from etio.causal.query import ATE_SCHEMA, add_q_values, estimate_ates, estimate_cell, query_slice
from etio.causal.refuters import REFUTERS
from etio.core.errors import EtioInputError
from etio.core.schema import treatments_for

#: The columns one refuter adds to the ATE table (``<refuter>_new_effect`` / ``_p_value`` / ``_result``).
_REFUTER_SUFFIXES = ("_new_effect", "_p_value", "_result")

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


def _formula_sound(data: pd.DataFrame, treatment: str, outcome: str, backdoor, modifiers):
    """The sound ATE span * (b_T + sum_k mean(M_k) b_{T:M_k}) of a formula-built OLS with the
    modifiers' main effects, and its standard error from each row's influence (through the
    coefficients and through the modifier means), every row its own cluster."""
    import statsmodels.formula.api as smf

    mains = list(dict.fromkeys([*backdoor, *modifiers]))
    terms = [treatment, *mains, *(f"{treatment}:{m}" for m in modifiers)]
    fit = smf.ols(f"{outcome} ~ " + " + ".join(terms), data=data).fit()
    weights = pd.Series(0.0, index=fit.params.index)
    weights[treatment] = 1.0
    for m in modifiers:
        weights[f"{treatment}:{m}"] = data[m].mean()
    span = data[treatment].max() - data[treatment].min()
    x = fit.model.exog
    n, p = x.shape
    influence = span * (x * fit.resid.to_numpy()[:, None]) @ np.linalg.inv(x.T @ x) @ weights.to_numpy()
    for m in modifiers:
        influence += span * fit.params[f"{treatment}:{m}"] * (data[m] - data[m].mean()).to_numpy() / n
    factor = n / (n - 1) * (n - 1) / (n - p)
    return span * float(weights @ fit.params), float(np.sqrt(factor * influence @ influence))


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
    table = estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005)
    refuter_columns = [c for c in ATE_SCHEMA.optional if c.endswith(_REFUTER_SUFFIXES)]
    assert len(refuter_columns) == 3 * len(REFUTERS)
    # Without refuters: every column of the schema, in its order, except the refuters' ones.
    assert list(table.columns) == [c for c in ATE_SCHEMA.columns if c not in refuter_columns]
    assert list(table.columns)[:len(ATE_SCHEMA.required)] == list(ATE_SCHEMA.required)
    assert len(table) == 13 and (table["n_rows"] == 40).all()
    assert table["feature"].tolist() == treatments_for("Oak17Acc")
    estimated = table[table["status"] == Status.ESTIMATED].set_index("feature")
    assert sorted(estimated.index) == ["AccDiff", "TestVar", "TrainSize"]      # the three with a directed path
    absent = table[table["status"] == Status.NO_PATH]
    assert (absent["ate"] == 0).all() and absent["p_value"].isna().all()
    assert (absent["ci_low"] == 0).all() and (absent["ci_high"] == 0).all() and (absent["backdoor_set"] == "").all()
    data = rows
    for feature in ("AccDiff", "TestVar", "TrainSize"):
        row = estimated.loc[feature]
        ident = identify(graph, feature, "Oak17Acc")
        assert row["backdoor_set"] == ";".join(ident.backdoor_set)
        # dowhy's effect modifiers: causes of the attack outside the treatment's own ancestry.
        assert "TestVar" in ident.effect_modifiers or feature == "TestVar"
        # The paper estimator (dowhy's regression: no main effects of the modifiers, the
        # treatment coefficient's test).
        ate, low, high, p = _formula_interval(data, feature, "Oak17Acc", ident.backdoor_set, ident.effect_modifiers)
        assert row["ate_paper"] == pytest.approx(ate, rel=1e-9), feature
        assert row["p_value_paper"] == pytest.approx(p, rel=1e-6), feature
        # The sound estimator: the modifiers' main effects enter, the ATE's own clustered test
        # (every row its own run here), the interval on 40 - 1 degrees of freedom.
        modifiers = row["effect_modifiers"].split(";") if row["effect_modifiers"] else []
        ate, se = _formula_sound(data, feature, "Oak17Acc", ident.backdoor_set, modifiers)
        assert (row["ate"], row["se"]) == pytest.approx((ate, se), rel=1e-9), feature
        half = stats.t.ppf(0.975, 39) * se
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ate - half, ate + half), rel=1e-9), feature
        assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(ate / se), 39), rel=1e-6), feature
    assert estimated.loc["TestVar", "effect_modifiers"] == "AccDiff;TrainSize"
    # Through AccDiff: 0.5 x 1e-4 per unit of TrainSize over the 4000 between 1k and 5k.
    assert estimated.loc["TrainSize", "ate"] == pytest.approx(0.5 * 1e-4 * 4000, rel=0.2)
    assert estimated.loc["TrainSize", "ate_paper"] == pytest.approx(0.5 * 1e-4 * 4000, rel=0.2)
    assert (table["loss"] == "ce").all() and (table["weight_decay"] == 0.0005).all()


def test_estimate_ates_with_refuters_and_on_bad_input():
    traces, graph, rows = _small_study()
    table = estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005, refuters=True, seed=3)
    assert list(table.columns) == ATE_SCHEMA.columns
    no_path = table["status"] == Status.NO_PATH
    refuter_columns = [c for c in ATE_SCHEMA.optional if c.endswith(_REFUTER_SUFFIXES)]
    assert len(refuter_columns) == 3 * len(REFUTERS)
    numbers = [c for c in refuter_columns if not c.endswith("_result")]
    results = [c for c in refuter_columns if c.endswith("_result")]
    # Queries without a causal path are not refuted: no number, an empty verdict.
    assert table.loc[no_path, numbers].isna().all().all()
    assert (table.loc[no_path, results] == "").all().all()
    assert table.loc[~no_path, numbers].notna().all().all()
    assert table.loc[~no_path, results].isin(["pass", "fail"]).all().all()
    again = estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.0005, refuters=True, seed=3)
    pd.testing.assert_frame_equal(table, again)                                   # seeded
    with pytest.raises(EtioInputError) as raised:
        estimate_ates(traces, {("ce", "Oak17Acc"): graph}, 0.05)
    assert str(raised.value) == "the trace table has no rows with weight decay 0.05 (present: 0.0005, 0.005)"
    few = pd.concat([rows.iloc[:2], rows.iloc[:2].assign(WeightDecay=0.005)])
    with pytest.raises(EtioInputError) as raised:
        estimate_ates(few, {("ce", "Oak17Acc"): graph}, 0.0005)
    assert str(raised.value) == ("ce-Oak17Acc: only 2 complete trace row(s) at weight decay 0.0005; "
                                 "a regression needs at least 3")
    with pytest.raises(EtioInputError) as raised:
        estimate_ates(traces.drop(columns=["TestVar", "TrainVar"]), {("ce", "Oak17Acc"): graph}, 0.0005)
    assert str(raised.value) == ("trace table: no column 'TrainVar', 'TestVar' "
                                 "(the ce-Oak17Acc slice at weight decay 0.0005 needs it)")


def test_query_slice_drops_incomplete_rows():
    traces, graph, rows = _small_study()
    nodes = ["TrainSize", "TestVar", "Oak17Acc"]
    # A gap in a feature column is an error naming the column and the CSV line (row 3 -> line 5).
    gap = traces.copy()
    gap.loc[3, "TestVar"] = np.nan
    with pytest.raises(EtioInputError) as raised:
        query_slice(gap, 0.0005, "ce", "Oak17Acc", nodes)
    assert str(raised.value) == ("trace table: column 'TestVar' has 1 row(s) with a missing value (CSV line(s) 5) "
                                 "in the ce-Oak17Acc slice at weight decay 0.0005")
    # Only the attack column may have gaps: those rows are dropped, with a warning saying how many.
    traces.loc[3, "Oak17Acc"] = np.nan
    with pytest.warns(UserWarning) as caught:
        data = query_slice(traces, 0.0005, "ce", "Oak17Acc", nodes)
    assert [str(w.message) for w in caught] == [
        "ce-Oak17Acc at weight decay 0.0005: 1 of 40 rows have no Oak17Acc value and are left out of its queries"]
    assert list(data.columns) == nodes and len(data) == 39
    assert set(data["TrainSize"]) == {1000.0, 5000.0} and data.index.tolist() == list(range(39))
    assert (data.dtypes == "float64").all()
    expected = rows.drop(index=3)[nodes].reset_index(drop=True)
    pd.testing.assert_frame_equal(data, expected)


def test_identify_graphs_and_the_backdoor_criterion():
    _, graph, _ = _small_study()
    table = identify_graphs({("ce", "Oak17Acc"): graph})
    assert list(table.columns) == list(IDENTIFICATION_SCHEMA.required)
    assert table.set_index("feature")["has_directed_path"].to_dict() == {
        t: t in ("AccDiff", "TestVar", "TrainSize") for t in treatments_for("Oak17Acc")}
    assert table["identified"].tolist() == table["has_directed_path"].tolist()
    g = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    assert is_valid_backdoor_set(g, "X", "Y", ["Z"]) and not is_valid_backdoor_set(g, "X", "Y", [])
    ident = identify(nx.DiGraph([("Y", "X")]), "X", "Y")
    assert (ident.has_directed_path, ident.identified, ident.backdoor_set, ident.effect_modifiers) == (
        False, False, (), ())


def test_q_values_are_benjamini_hochberg_within_each_loss_and_weight_decay():
    """q-values adjust the p-values of the estimated cells of one (loss, weight decay) family,
    independently of the other families and of the cells that have no estimate."""
    from statsmodels.stats.multitest import multipletests

    rows = [("ce", 5e-4, Status.ESTIMATED, 0.01), ("ce", 5e-4, Status.ESTIMATED, 0.04),
            ("ce", 5e-4, Status.NO_PATH, math.nan), ("ce", 5e-4, Status.ESTIMATED, 0.03),
            ("mse", 5e-4, Status.ESTIMATED, 0.01), ("mse", 5e-4, Status.ESTIMATED, 0.5),
            ("ce", 5e-3, Status.ESTIMATED, 0.02), ("ce", 5e-3, Status.NOT_IDENTIFIABLE, math.nan),
            ("ce", 5e-3, Status.ESTIMATED, 0.2)]
    table = pd.DataFrame(rows, columns=["loss", "weight_decay", "status", "p_value"])
    out = add_q_values(table)
    assert "q_value" not in table.columns                                  # the input is not changed
    expected = [math.nan] * len(rows)
    for family in ([0, 1, 3], [4, 5], [6, 8]):
        for i, q in zip(family, multipletests([rows[i][3] for i in family], method="fdr_bh")[1]):
            expected[i] = q
    np.testing.assert_allclose(out["q_value"].to_numpy(), expected, rtol=1e-12)
    assert math.isnan(out.loc[2, "q_value"]) and math.isnan(out.loc[7, "q_value"])
    # by hand: 0.01 x 3/1 = 0.03; 0.03 x 3/2 = 0.045 capped by 0.04 x 3/3; 0.01 x 2/1 = 0.02
    assert out["q_value"][[0, 3, 1, 4]].tolist() == pytest.approx([0.03, 0.04, 0.04, 0.02])


def test_dowhy_reference_is_the_ols_coefficient_over_the_treatments_range():
    """The dowhy reference (CausalModel -> identify -> estimate, linear regression) equals
    statsmodels' OLS of Y on X and the backdoor set: ATE = coefficient of X x (max X - min X), and
    its p-value is the coefficient's t-test; an explicit backdoor set is used as given."""
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    z = rng.normal(size=200)
    x = 0.8 * z + rng.normal(size=200)
    y = 0.5 * x + 0.9 * z + 0.3 * rng.normal(size=200)
    data = pd.DataFrame({"Z": z, "X": x, "Y": y})
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    span = x.max() - x.min()
    adjusted = sm.OLS(y, sm.add_constant(np.column_stack([x, z]))).fit()
    plain = sm.OLS(y, sm.add_constant(x)).fit()
    for backdoor, fit in ((None, adjusted), (["Z"], adjusted), ([], plain)):
        ref = dowhy_estimate(data, graph, "X", "Y", backdoor)
        assert ref.value == pytest.approx(fit.params[1] * span, rel=1e-9), backdoor
        assert ref.test_stat_significance()["p_value"][0] == pytest.approx(fit.pvalues[1], rel=1e-6, abs=1e-300)
    assert abs(plain.params[1] - adjusted.params[1]) > 0.1      # the adjustment matters in this case


def test_backdoor_sets_are_written_in_graph_node_order_and_unestimated_cells_have_every_column():
    # AccDiff is confounded by TrainAcc and TestAcc: its set is both, in the graph's node order
    graph = nx.DiGraph()
    graph.add_nodes_from(["TrainAcc", "TestAcc", "AccDiff"])
    graph.add_nodes_from([*treatments_for("Oak17Acc"), "Oak17Acc"])
    graph.add_edges_from([("TrainAcc", "AccDiff"), ("TestAcc", "AccDiff"), ("TrainAcc", "Oak17Acc"),
                          ("TestAcc", "Oak17Acc"), ("AccDiff", "Oak17Acc")])
    table = identify_graphs({("ce", "Oak17Acc"): graph}).set_index("feature")
    assert table.loc["AccDiff", "backdoor_set"] == "TrainAcc;TestAcc"
    assert table.loc["NumParams", "backdoor_set"] == "" and not table.loc["NumParams", "has_directed_path"]
    assert list(identify_graphs({}).columns) == list(IDENTIFICATION_SCHEMA.required)
    # a cell without a path has every estimate column; nothing but the ATE is a number
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"X": rng.normal(size=30), "Y": rng.normal(size=30)})
    g = nx.DiGraph([("Y", "X")])
    row = estimate_cell(data, None, g, identify(g, "X", "Y"))
    # no directed path: the effect is exactly zero (a point interval), with nothing to test
    assert (row["ate"], row["ci_low"], row["ci_high"], row["ate_paper"]) == (0.0, 0.0, 0.0, 0.0)
    for column in ("p_value", "se", "p_value_paper", "p_value_rows_independent", "robustness_value",
                   "robustness_value_alpha"):
        assert math.isnan(row[column]), column
