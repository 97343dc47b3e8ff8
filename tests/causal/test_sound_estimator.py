"""The sound estimator and its checks: identifiability, the ATE's own clustered test, rescaling,
q-values, robustness values, refuters; and the tables that show them."""

from __future__ import annotations

import dataclasses
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from etio.causal.estimators import Status
from etio.causal.estimators.inference import benjamini_hochberg, robustness_value
from etio.causal.estimators.paper import backdoor_estimand, paper_estimate
from etio.causal.estimators.sound import SoundAdjustment, sound_adjustment, sound_estimate
from etio.causal.graphs import read_attack_graph, read_graphs
from etio.causal.identify import identify
from etio.causal.overlap import WEAK_OVERLAP, defining_by_identities, fixed_by_identities
from etio.causal.query import estimate_ates, estimate_cell
from etio.causal.refuters import REFUTERS
from etio.causal.hypotheses import verdict_changes
from etio.commands.app import app
from etio.core.schema import read_traces
from etio.report import paper, tables
from tests.support.repo import REPO

EXAMPLE = REPO / "etio" / "data" / "example_traces.csv"


def _exact_identities(traces: pd.DataFrame) -> pd.DataFrame:
    """The example traces with the identities that real traces satisfy by construction."""
    traces = traces.copy()
    traces["AccDiff"] = traces["TrainAcc"] - traces["TestAcc"]
    traces["LossDiff"] = traces["TestLoss"] - traces["TrainLoss"]
    traces["TrainBias2"] = traces["TrainLoss"] - traces["TrainVar"]
    traces["TestBias2"] = traces["TestLoss"] - traces["TestVar"]
    return traces


@pytest.fixture(scope="module")
def identity_traces() -> pd.DataFrame:
    return _exact_identities(read_traces(EXAMPLE))


@pytest.fixture(scope="module")
def oak17_graph() -> nx.DiGraph:
    return read_attack_graph(paper.graphs_dir(0.0005) / "ce-Oak17Acc-cv_avg_net_discovery.dot", "Oak17Acc")


@pytest.fixture(scope="module")
def identity_ates(identity_traces) -> pd.DataFrame:
    return estimate_ates(identity_traces, read_graphs(paper.graphs_dir(0.0005)), 0.0005)


# --------------------------------------------------------------------------------------
# Identifiability
# --------------------------------------------------------------------------------------

def _identity_data(n=200, seed=0) -> tuple[pd.DataFrame, nx.DiGraph]:
    rng = np.random.default_rng(seed)
    train = rng.normal(size=n)
    test = 0.5 * train + rng.normal(size=n)
    gap = train - test
    y = 0.4 * gap + 0.3 * train - 0.2 * test + 0.5 * rng.normal(size=n)
    data = pd.DataFrame({"TrainAcc": train, "TestAcc": test, "AccDiff": gap, "Oak17Acc": y})
    graph = nx.DiGraph([("TrainAcc", "AccDiff"), ("TestAcc", "AccDiff"), ("TrainAcc", "TestAcc"),
                        ("TrainAcc", "Oak17Acc"), ("TestAcc", "Oak17Acc"), ("AccDiff", "Oak17Acc")])
    return data, graph


def test_exact_identity_is_not_identifiable_and_has_no_number():
    data, graph = _identity_data()
    ident = identify(graph, "AccDiff", "Oak17Acc")
    assert set(ident.backdoor_set) == {"TrainAcc", "TestAcc"}      # both confound AccDiff -> attack
    row = estimate_cell(data, None, graph, ident)
    assert row["status"] == Status.NOT_IDENTIFIABLE
    assert all(math.isnan(row[c]) for c in ("ate", "p_value", "ci_low", "ci_high", "se"))
    assert "TrainAcc" in row["reason"] and "TestAcc" in row["reason"]
    # the paper's number is still computed (and labelled as the paper's): an arbitrary split
    assert math.isfinite(row["ate_paper"])
    # the same cells are decided from the identities alone
    assert fixed_by_identities("AccDiff", ["TrainAcc", "TestAcc"])
    # a treatment that still varies is estimated
    test_row = estimate_cell(data, None, graph, identify(graph, "TestAcc", "Oak17Acc"))
    assert test_row["status"] == Status.ESTIMATED


def test_identities_decide_by_hand():
    fixed = fixed_by_identities
    assert fixed("AccDiff", ["TrainAcc", "TestAcc", "NumParams"])
    assert not fixed("AccDiff", ["TrainAcc", "NumParams"])
    assert fixed("TrainAcc", ["AccDiff", "TestAcc"])
    assert fixed("TrainLoss", ["TestLoss", "LossDiff"])
    assert fixed("TrainBias2", ["TrainVar", "TestLoss", "LossDiff"])      # TrainLoss = TestLoss - LossDiff
    assert not fixed("TrainBias2", ["TrainVar", "TestLoss"])
    assert not fixed("NumParams", ["TrainAcc", "TestAcc"])
    assert defining_by_identities("AccDiff", ["NumParams", "TrainAcc", "TrainSize", "TestAcc"]) == \
        ("TrainAcc", "TestAcc")


def test_data_status_agrees_with_identities_on_exact_traces(identity_ates):
    t = identity_ates
    decided = [s != Status.NO_PATH and fixed_by_identities(f, [v for v in b.split(";") if v])
               for s, f, b in zip(t["status"], t["feature"], t["backdoor_set"])]
    assert ((t["status"] == Status.NOT_IDENTIFIABLE) == pd.Series(decided)).all()
    unidentified = t[t["status"] == Status.NOT_IDENTIFIABLE]
    assert len(unidentified) >= 10   # AccDiff and TestBias2 adjusted for their defining columns, at least
    assert unidentified["ate"].isna().all() and unidentified["p_value"].isna().all()
    assert unidentified["q_value"].isna().all()
    assert unidentified["ate_paper"].notna().all()


def test_rescaling_changes_no_status_and_no_p_value(identity_traces, oak17_graph):
    graphs = {("ce", "Oak17Acc"): oak17_graph}
    before = estimate_ates(identity_traces, graphs, 0.0005)
    scaled = identity_traces.copy()
    for column in ("TrainAcc", "TestAcc", "AccDiff"):        # accuracies in percent: the identity still holds
        scaled[column] = 100 * scaled[column]
    scaled["NumParams"] = scaled["NumParams"] / 1e6
    after = estimate_ates(scaled, graphs, 0.0005)
    assert list(before["status"]) == list(after["status"])
    est = before["status"] == Status.ESTIMATED
    assert est.sum() >= 8
    np.testing.assert_allclose(after.loc[est, "p_value"], before.loc[est, "p_value"], rtol=1e-6)
    np.testing.assert_allclose(after.loc[est, "q_value"], before.loc[est, "q_value"], rtol=1e-6)
    np.testing.assert_allclose(after.loc[est, "ate"], before.loc[est, "ate"], rtol=1e-6)   # min -> max contrasts
    np.testing.assert_allclose(after.loc[est, "p_value_paper"], before.loc[est, "p_value_paper"], rtol=1e-6)


# --------------------------------------------------------------------------------------
# The sound estimator
# --------------------------------------------------------------------------------------

def test_clustered_standard_error_equals_statsmodels_without_modifiers():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(60), 4)
    z = rng.normal(size=60)[g] + rng.normal(size=240)
    x = 0.7 * z + rng.normal(size=60)[g] + rng.normal(size=240)
    y = 0.5 * x + 0.8 * z + rng.normal(size=60)[g] + rng.normal(size=240)
    data = pd.DataFrame({"Z": z, "X": x, "Y": y})
    est = sound_estimate(data, "X", "Y", ["Z"], [], clusters=g)
    fit = sm.OLS(y, sm.add_constant(np.column_stack([x, z]))).fit(cov_type="cluster", cov_kwds={"groups": g})
    span = x.max() - x.min()
    assert est.ate == pytest.approx(span * fit.params[1], rel=1e-10)
    assert est.se == pytest.approx(span * fit.bse[1], rel=1e-8)
    assert est.n_clusters == 60 and est.dof == 59
    plain = sm.OLS(y, sm.add_constant(np.column_stack([x, z]))).fit(cov_type="HC1")
    assert sound_estimate(data, "X", "Y", ["Z"], []).se == pytest.approx(span * plain.bse[1], rel=1e-8)


def test_paper_p_value_tests_the_effect_where_the_modifier_is_zero():
    # The effect of T exists only through M (Y = 0.8 T M + M): at M = 0 it is 0, on average it is
    # 0.8 E[M] = 1.6 per unit of T. dowhy's p-value tests the former (it rejects at about the
    # nominal 5 % rate), the sound one the ATE (always significant, interval covering the truth).
    graph = nx.DiGraph([("T", "Y"), ("M", "Y")])
    ident = identify(graph, "T", "Y")
    assert ident.effect_modifiers == ("M",) and ident.backdoor_set == ()
    rng = np.random.default_rng(7)
    paper_rejects, sound_rejects, covered = [], [], []
    for _ in range(40):
        t = rng.normal(size=300)
        m = 2.0 + rng.normal(size=300)
        y = 0.8 * t * m + 1.0 * m + 0.5 * rng.normal(size=300)
        row = estimate_cell(pd.DataFrame({"T": t, "M": m, "Y": y}), None, graph, ident)
        truth = 0.8 * m.mean() * (t.max() - t.min())
        paper_rejects.append(row["p_value_paper"] < 0.05)
        sound_rejects.append(row["p_value"] < 0.05)
        covered.append(row["ci_low"] <= truth <= row["ci_high"])
        assert row["effect_modifiers"] == "M"
    assert np.mean(paper_rejects) < 0.2 and all(sound_rejects) and np.mean(covered) >= 0.85


def test_p_value_tests_the_ate_and_agrees_with_the_interval(identity_ates):
    est = identity_ates[identity_ates["status"] == Status.ESTIMATED]
    excludes_zero = (est["ci_low"] > 0) | (est["ci_high"] < 0)
    assert ((est["p_value"] < 0.05) == excludes_zero).all()
    # and the paper's p-value does not: it tests T's coefficient where the modifiers are 0
    paper_excl = (est["p_value_paper"] < 0.05) != excludes_zero
    assert paper_excl.any()


def test_modifier_that_would_break_the_backdoor_criterion_is_left_out():
    # W is a collider of X <- A -> W <- B -> Y: the empty backdoor set is valid, and adjusting
    # for W would open that path. dowhy never proposes such a modifier (its modifiers are
    # ancestors of Y), so the guard is checked on an identification that names W among them.
    graph = nx.DiGraph([("A", "X"), ("A", "W"), ("B", "W"), ("B", "Y"), ("X", "Y")])
    ident = identify(graph, "X", "Y")
    assert ident.backdoor_set == () and ident.effect_modifiers == ("B",)
    named = dataclasses.replace(ident, effect_modifiers=("W", "B"))
    assert sound_adjustment(graph, named) == SoundAdjustment(
        modifiers=("B",), left_out=(("W", "adjusting for it would break the backdoor criterion"),))
    # a modifier kept first enlarges the set the next one is checked with: with B adjusted for,
    # the path through W is blocked
    named = dataclasses.replace(ident, effect_modifiers=("B", "W"))
    assert sound_adjustment(graph, named) == SoundAdjustment(modifiers=("B", "W"))


# --------------------------------------------------------------------------------------
# Sensitivity and multiplicity
# --------------------------------------------------------------------------------------

def test_robustness_value_equals_dowhys_linear_sensitivity_analyser():
    from dowhy.causal_refuters.linear_sensitivity_analyzer import LinearSensitivityAnalyzer

    rng = np.random.default_rng(2)
    z = rng.normal(size=300)
    x = 0.6 * z + rng.normal(size=300)
    y = 0.25 * x + 0.5 * z + rng.normal(size=300)
    data = pd.DataFrame({"Z": z, "X": x, "Y": y})
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    ident = identify(graph, "X", "Y")
    paper_est = paper_estimate(data, backdoor_estimand("X", "Y", ident.backdoor_set), "X", ())
    analyser = LinearSensitivityAnalyzer(estimator=paper_est.fit.estimator, data=data, treatment_name=["X"],
                                         significance_level=0.05, common_causes_order=list(ident.backdoor_set))
    model = paper_est.fit.estimator.model
    # dowhy's formula, fed the t-statistic and residual degrees of freedom as its check_sensitivity does
    analyser.t_stats = float(model.tvalues.iloc[1])
    analyser.degree_of_freedom = int(model.df_resid)
    for t in (analyser.t_stats, 0.7, -3.0, 40.0):
        analyser.t_stats = t
        assert robustness_value(t, analyser.degree_of_freedom) == \
            pytest.approx(analyser.robustness_value_func(), rel=1e-12, abs=1e-15)
        assert robustness_value(t, analyser.degree_of_freedom, 0.05) == \
            pytest.approx(analyser.robustness_value_func(alpha=0.05), rel=1e-12, abs=1e-15)


def test_benjamini_hochberg_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.001, 0.04, 0.03, np.nan, 0.5, 0.0002, 0.049, 0.2])
    q = benjamini_hochberg(p)
    tested = ~np.isnan(p)
    assert np.isnan(q[~tested]).all()
    np.testing.assert_allclose(q[tested], multipletests(p[tested], method="fdr_bh")[1], rtol=1e-12)


def test_refuter_columns_with_pass_fail(tmp_path, identity_traces):
    gdir = tmp_path / "graphs"
    gdir.mkdir()
    src = paper.graphs_dir(0.0005) / "mse-ThresholdAcc-cv_avg_net_discovery.dot"
    (gdir / "mse-ThresholdAcc.dot").write_text(src.read_text())
    out = tmp_path / "ates.csv"
    csv = tmp_path / "traces.csv"
    identity_traces.to_csv(csv, index=False)
    res = CliRunner().invoke(app, ["query", "--traces", str(csv), "--graphs", str(gdir), "--out", str(out),
                                   "--refuters", "--seed", "1"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    est = table["status"] == Status.ESTIMATED
    for name in REFUTERS:
        assert set(table.loc[est, f"{name}_result"]) <= {"pass", "fail"}
        assert table.loc[est, f"{name}_p_value"].between(0, 1).all()
        assert table.loc[~est, f"{name}_result"].isna().all()
    assert (table.loc[est, "placebo_treatment_result"] == "pass").mean() > 0.5


# --------------------------------------------------------------------------------------
# Tables and verdicts under both estimators
# --------------------------------------------------------------------------------------

def test_sound_tables_keep_p_and_interval_in_step(identity_ates):
    for table in (tables.table5(identity_ates, estimator="sound"),):
        est = table["status"] == Status.ESTIMATED
        excludes = (table.loc[est, "CI low (sound)"] > 0) | (table.loc[est, "CI high (sound)"] < 0)
        assert ((table.loc[est, "p-value (sound)"] < 0.05) == excludes).all()
        assert table.loc[~est & (table["status"] == Status.NOT_IDENTIFIABLE), "ATE (sound)"].isna().all()
        assert (table.loc[est, "q-value (sound)"] >= table.loc[est, "p-value (sound)"]).all()


def test_verdict_changes_name_their_reasons(identity_ates):
    ates = identity_ates
    changes = verdict_changes(ates)
    assert len(changes) == 18
    paper_marks = tables.table3_marks(tables.table3(ates))
    sound_marks = tables.table3_marks(tables.table3(ates, estimator="sound"))
    for r in changes.itertuples():
        assert (r.paper, r.sound) == (paper_marks[r.query, r.loss], sound_marks[r.query, r.loss])
        assert bool(r.reasons) == r.changed
    # Q1 (AccDiff on the shadow-model attack, CE) is adjusted for TrainAcc and TestAcc: not identifiable
    q1 = changes[(changes["query"] == "Q1") & (changes["loss"] == "ce")].iloc[0]
    assert q1["sound"] == "?" and q1["reasons"].startswith("not identifiable")


def test_cli_sound_table_needs_data(tmp_path, etio_cli):
    out = tmp_path / "t3"
    proc = etio_cli("table3", "--paper", "--estimator", "sound", "--out", out)
    assert proc.returncode == 2 and "needs the trace data" in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists()
    res = CliRunner().invoke(app, ["table3", "--traces", str(EXAMPLE), "--graphs", str(paper.graphs_dir(0.0005)),
                                   "--estimator", "sound", "--out", str(out)])
    assert res.exit_code == 0, res.output
    t3 = pd.read_csv(out / "table3.csv")
    assert {"CE CI low (sound)", "CE q-value (sound)", "CE status", "MSE Result (sound)"} <= set(t3.columns)
    for label in ("CE", "MSE"):
        est = t3[t3[f"{label} status"] == Status.ESTIMATED]
        excludes = (est[f"{label} CI low (sound)"] > 0) | (est[f"{label} CI high (sound)"] < 0)
        assert ((est[f"{label} p-value (sound)"] < 0.05) == excludes).all()


def test_near_deterministic_treatment_is_estimated_with_a_weak_overlap_flag():
    rng = np.random.default_rng(5)
    z = rng.normal(size=300)
    x = z + 0.05 * rng.normal(size=300)          # R² of X on Z about 0.9975
    y = 0.5 * x + z + 0.2 * rng.normal(size=300)
    data = pd.DataFrame({"Z": z, "X": x, "Y": y})
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    row = estimate_cell(data, None, graph, identify(graph, "X", "Y"))
    assert row["status"] == Status.ESTIMATED
    assert 0.99 <= row["overlap_r2"] < 1 - 1e-9
    assert row["vif"] == pytest.approx(1 / (1 - row["overlap_r2"]))
    assert row["flags"].startswith(WEAK_OVERLAP) and "VIF" in row["flags"]
    table = tables.ate_table(pd.DataFrame([{**row, "loss": "ce", "weight_decay": 0.0005, "attack": "Oak17Acc",
                                            "feature": "AccDiff", "q_value": row["p_value"]}]), "ce", 0.0005)
    assert table["flags"].iloc[0].startswith(WEAK_OVERLAP)


def test_bench_ate_prints_the_figure():
    res = CliRunner().invoke(app, ["bench", "ate", "--wd", "0.005"])
    assert res.exit_code == 0, res.output
    assert "ates 156 queries (paper + sound estimators)" in res.output and "of the 60 s budget" in res.output
