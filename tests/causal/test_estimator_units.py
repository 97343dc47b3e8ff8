"""Unit checks of the query stage's check (:mod:`etio.causal.overlap`), estimators and refuters with hand-computed or independently computed answers.

They cover the corners the end-to-end estimation tests do not reach: how dowhy is silenced, the
identity relations when every other identity column is adjusted for, R² and the overlap check at
their boundaries (constant, binary, boolean and object-dtype treatments; R² exactly at
``DETERMINISTIC_R2``; regressors in wildly different units), the sound estimator's column
pruning, scaling, degenerate fits (exact fits, one cluster, a saturated model) and small-sample
inference (HC1 with n - p degrees of freedom, two clusters), the robustness value's extreme
branch, the configuration of dowhy's estimator and the refuters' seeds and pass/fail labels.
Expectations come from arithmetic stated in the comments or from numpy, statsmodels, scipy and
dowhy called directly, never from the code under test.
"""

from __future__ import annotations

import logging
import math
import types
import warnings
from decimal import Decimal

import dowhy  # noqa: F401  (its first import takes seconds: paid at collection, not by a test)
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from etio.causal.estimators.inference import robustness_value
from etio.causal.estimators.paper import backdoor_estimand, paper_estimate
from etio.causal.estimators.sound import sound_estimate
from etio.causal.identify import quiet_dowhy
from etio.causal.overlap import (
    DETERMINISTIC_R2, IDENTITIES, Overlap, defining_by_identities, fixed_by_identities, overlap, r_squared,
)
from etio.causal.refuters import SIMULATIONS, refute

# Three orthonormal contrasts of four rows, each orthogonal to the intercept; entries are ±0.5,
# so sums, norms and products of them are exact in floating point.
U = np.array([1.0, -1.0, 1.0, -1.0]) / 2
V = np.array([1.0, 1.0, -1.0, -1.0]) / 2
W = np.array([1.0, -1.0, -1.0, 1.0]) / 2


def _ols(columns: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Reference least squares (numpy's SVD solver) of y on an intercept and ``columns``."""
    x = np.column_stack([np.ones(len(y)), *columns])
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _r2_reference(target: np.ndarray, columns: list[np.ndarray]) -> float:
    resid = target - np.column_stack([np.ones(len(target)), *columns]) @ _ols(columns, target)
    centred = target - target.mean()
    return 1.0 - float(resid @ resid) / float(centred @ centred)


# --------------------------------------------------------------------------------------
# quiet_dowhy
# --------------------------------------------------------------------------------------

def test_quiet_dowhy_raises_dowhys_log_level_and_ignores_only_dowhys_warnings():
    dowhy_logger, root = logging.getLogger("dowhy"), logging.getLogger()
    saved = dowhy_logger.level, root.level
    try:
        dowhy_logger.setLevel(logging.NOTSET)   # an earlier test may have quietened it already
        root.setLevel(logging.WARNING)
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            quiet_dowhy()
            for module in ("dowhy", "dowhy.causal_estimator", "dowhyish", "etio.causal.identify"):
                warnings.warn_explicit(f"from {module}", UserWarning, "x.py", 1, module=module)
        assert dowhy_logger.level == logging.ERROR
        assert root.level == logging.WARNING      # only dowhy's logger is touched
        # the filter is the regex dowhy(\.|$): dowhy and its submodules, not a module that merely
        # starts with the same letters, nor anyone else
        assert [str(w.message) for w in shown] == ["from dowhyish", "from etio.causal.identify"]
    finally:
        dowhy_logger.setLevel(saved[0])
        root.setLevel(saved[1])


# --------------------------------------------------------------------------------------
# Identities, R² and overlap
# --------------------------------------------------------------------------------------

def test_identities_fix_the_treatment_when_every_other_identity_column_is_adjusted_for():
    # AccDiff = TrainAcc - TestAcc; with every other identity column in the set no column is
    # left outside it (rank of the empty relation matrix: 0), and adding AccDiff's column makes
    # the rank 1, so AccDiff is fixed.
    columns = sorted({c for rel in IDENTITIES for c in rel})
    others = [c for c in columns if c != "AccDiff"]
    assert fixed_by_identities("AccDiff", others)
    # and the two accuracies alone define it (in the given, alphabetical, order)
    assert defining_by_identities("AccDiff", others) == ("TestAcc", "TrainAcc")


def test_r_squared_of_a_constant_target_is_one_and_of_a_unit_variance_orthogonal_target_zero():
    # a constant target is perfectly "explained" by any regressors (the documented convention)
    assert r_squared(np.full(4, 3.0), V[:, None]) == 1.0
    # U has mean 0 and sum of squares 4 * 0.25 = 1 exactly; V is orthogonal to it: R² = 0
    assert r_squared(U, V[:, None]) == pytest.approx(0.0, abs=1e-12)
    assert r_squared(U, np.empty((4, 0))) == 0.0


def test_r_squared_does_not_depend_on_the_units_of_the_regressors():
    # The target is 2 b + 0.1 noise, the regressors a (irrelevant) and b, given in units 1e20 and
    # 1e-20 apart. R² is invariant to rescaling a regressor, so it must equal the R² on a and b
    # themselves (about 0.99 here); a solver that saw the raw scales would lose b entirely.
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(2, 25))
    target = 2 * b + 0.1 * rng.normal(size=25)
    expected = _r2_reference(target, [a, b])
    assert expected > 0.9
    got = r_squared(target, np.column_stack([1e20 * a, 1e-20 * b]))
    assert got == pytest.approx(expected, rel=1e-9)


def test_overlap_of_a_constant_treatment():
    data = pd.DataFrame({"T": [0.1] * 4, "S": U})
    assert overlap(data, "T", ["S"]) == Overlap(r2=1.0, defining=())


@pytest.mark.parametrize("dtype", [float, bool])
def test_overlap_of_a_binary_treatment_read_as_zero_one(dtype):
    # T = (0, 1, 0, 1) has range exactly 1 and centred values -U; S = 2 V is orthogonal: R² = 0.
    data = pd.DataFrame({"T": np.array([0, 1, 0, 1]).astype(dtype), "S": 2 * V})
    check = overlap(data, "T", ["S"])
    assert check.r2 == pytest.approx(0.0, abs=1e-12)
    assert check.defining == () and check.identifiable and not check.weak


def test_overlap_drops_every_variable_not_needed_to_fix_the_treatment():
    # T = A + B exactly, C is unrelated: dropping A or B frees T, dropping C does not, so the
    # minimal defining subset is (A, B) whatever the order.
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=(3, 20))
    data = pd.DataFrame({"T": a + b, "A": a, "B": b, "C": c})
    assert overlap(data, "T", ["A", "B", "C"]).defining == ("A", "B")
    assert overlap(data, "T", ["C", "B", "A"]).defining == ("B", "A")
    # the same columns stored as dtype object (Python floats, as pandas leaves a column that
    # once held text): read as floats all the same
    check = overlap(data.astype(object), "T", ["A", "B", "C"])
    assert check.defining == ("A", "B") and not check.identifiable


def test_r_squared_exactly_at_the_deterministic_threshold_counts_as_determined():
    # T = a U + b V with b² = 1 - DETERMINISTIC_R2 (about 1e-9) and a² = 1 - b²: R² of T on U is
    # a² = DETERMINISTIC_R2 up to ~1e-20, far inside the 5.5e-17 rounding interval of the double
    # DETERMINISTIC_R2, so the computed R² is that double exactly; W is orthogonal to both.
    # R² >= DETERMINISTIC_R2 means "T is a function of the set", and the defining subset is S.
    c = 1 - DETERMINISTIC_R2
    t = math.sqrt(1 - c) * U + math.sqrt(c) * V
    data = pd.DataFrame({"T": t, "S": U, "A": W})
    assert r_squared(t, U[:, None]) == DETERMINISTIC_R2
    only = overlap(data, "T", ["S"])
    assert only == Overlap(r2=DETERMINISTIC_R2, defining=("S",)) and not only.identifiable
    # with A in front: dropping A leaves R² (T on S) exactly at the threshold, so A goes
    assert overlap(data, "T", ["A", "S"]).defining == ("S",)


# --------------------------------------------------------------------------------------
# The sound estimator: columns, scaling, degenerate fits
# --------------------------------------------------------------------------------------

def _confounded(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, c = rng.normal(size=(2, n))
    t = 0.5 * a + 0.5 * c + rng.normal(size=n)
    y = 1.5 * t + 2.0 * a - 1.0 * c + rng.normal(size=n)
    return {"T": t, "A": a, "C": c, "Y": y}


def test_constant_and_collinear_adjustment_columns_are_dropped_and_later_ones_still_enter():
    # K is constant and B = 2 A - 3: both add nothing to the intercept and A, so the model is
    # Y ~ 1 + T + A + C, and C (after them) must still be adjusted for.
    cols = _confounded(30, 3)
    data = pd.DataFrame({"T": cols["T"], "K": 7.0, "A": cols["A"], "B": 2 * cols["A"] - 3,
                         "C": cols["C"], "Y": cols["Y"]})
    est = sound_estimate(data, "T", "Y", ["K", "A", "B", "C"], [])
    span = np.ptp(cols["T"])
    assert est.ate == pytest.approx(span * _ols([cols["T"], cols["A"], cols["C"]], cols["Y"])[1], rel=1e-9)
    assert est.dropped_columns == ("K", "B")
    assert est.dof_resid == 30 - 4     # four coefficients: 1, T, A, C


def test_an_adjustment_column_in_tiny_units_is_not_mistaken_for_a_collinear_one():
    # S in units of 1e-6 (a learning rate, say) is an ordinary confounder: collinearity is judged
    # on standardised columns, so it is kept.
    cols = _confounded(20, 8)
    data = pd.DataFrame({"T": cols["T"], "S": 1e-6 * cols["A"], "Y": cols["Y"]})
    est = sound_estimate(data, "T", "Y", ["S"], [])
    assert est.dropped_columns == ()
    assert est.ate == pytest.approx(np.ptp(cols["T"]) * _ols([cols["T"], cols["A"]], cols["Y"])[1], rel=1e-9)


@pytest.mark.parametrize("t_unit, s_unit", [(1e-10, 1e10), (1e-160, 1.0)])
def test_sound_estimate_does_not_depend_on_the_units_of_the_columns(t_unit, s_unit):
    # The ATE over T's range is unit-free, so it equals the ATE computed from the columns in unit
    # scale: with T in units of 1e-10 and S of 1e10 (NumParams-like), and with T in units of
    # 1e-160, whose squares (~1e-320) fall below the smallest normal double: a solver that
    # formed X'X from the raw columns would lose T there.
    cols = _confounded(40, 0)
    data = pd.DataFrame({"T": t_unit * cols["T"], "S": s_unit * cols["A"], "Y": cols["Y"]})
    est = sound_estimate(data, "T", "Y", ["S"], [])
    expected = np.ptp(cols["T"]) * _ols([cols["T"], cols["A"]], cols["Y"])[1]
    assert est.ate == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("value", [0.0, 5.0])
def test_a_constant_treatment_is_a_singular_design_whatever_its_value(value):
    data = pd.DataFrame({"T": [value] * 4, "Y": [0.0, 1.0, 2.0, 4.0]})
    with pytest.raises(np.linalg.LinAlgError):
        sound_estimate(data, "T", "Y", [], [])


def test_a_constant_modifier_is_dropped_and_its_interaction_is_not_reported():
    # M = 2 everywhere: its main effect is the intercept again and T x M = 2 T is T again, so
    # both are dropped, only the main effect is named, and the ATE is the plain OLS one.
    cols = _confounded(25, 4)
    data = pd.DataFrame({"T": cols["T"], "A": cols["A"], "M": 2.0, "Y": cols["Y"]})
    est = sound_estimate(data, "T", "Y", ["A"], ["M"])
    assert est.dropped_columns == ("M",)
    assert est.modifiers == ()
    assert est.ate == pytest.approx(np.ptp(cols["T"]) * _ols([cols["T"], cols["A"]], cols["Y"])[1], rel=1e-9)


def test_exact_fits_have_zero_standard_error_and_the_p_value_follows_the_estimate():
    # T = (-1, 1, -1, 1): X = [1, T] has X'X = diag(4, 4), so every step is exact.
    # Y = T: slope 1, residuals exactly 0, ATE = range 2 x 1 = 2, SE 0: the effect is certain,
    # p = 0 and the interval is the point 2.
    data = pd.DataFrame({"T": [-1.0, 1.0, -1.0, 1.0], "Y": [-1.0, 1.0, -1.0, 1.0]})
    est = sound_estimate(data, "T", "Y", [], [])
    assert (est.ate, est.se, est.p_value, est.p_value_rows_independent) == (2.0, 0.0, 0.0, 0.0)
    assert (est.ci_low, est.ci_high) == (2.0, 2.0)
    # Y = 0: ATE 0 with SE 0: nothing to reject, p = 1
    data["Y"] = 0.0
    est = sound_estimate(data, "T", "Y", [], [])
    assert (est.ate, est.se, est.p_value, est.p_value_rows_independent) == (0.0, 0.0, 1.0, 1.0)


def test_a_saturated_fit_or_a_single_cluster_has_no_standard_error():
    # Three rows, three coefficients (1, T, S): Y = 2 T + 5 S is fitted exactly, ATE = 1 x 2,
    # and with n - p = 0 there is no CR1/HC1 factor: SE and p-values are NaN, not an error.
    data = pd.DataFrame({"T": [0.0, 1.0, 0.0], "S": [0.0, 0.0, 1.0], "Y": [0.0, 2.0, 5.0]})
    est = sound_estimate(data, "T", "Y", ["S"], [])
    assert est.ate == pytest.approx(2.0, rel=1e-12)
    assert math.isnan(est.se) and math.isnan(est.p_value) and math.isnan(est.p_value_rows_independent)
    assert est.dof_resid == 0
    # All rows in one cluster: G - 1 = 0 degrees of freedom, no clustered SE; the rows-independent
    # test still exists.
    cols = _confounded(12, 6)
    data = pd.DataFrame({k: cols[k] for k in ("T", "A", "Y")})
    est = sound_estimate(data, "T", "Y", ["A"], [], clusters=np.full(12, "run-1"))
    assert est.ate == pytest.approx(np.ptp(cols["T"]) * _ols([cols["T"], cols["A"]], cols["Y"])[1], rel=1e-9)
    assert math.isnan(est.se) and math.isnan(est.p_value) and est.n_clusters == 1 and est.dof == 0
    assert 0.0 <= est.p_value_rows_independent <= 1.0


def test_rows_independent_inference_is_hc1_with_n_minus_p_degrees_of_freedom():
    import statsmodels.api as sm

    # Twelve rows, three coefficients: HC1 standard error and a t test on 12 - 3 = 9 degrees of
    # freedom (statsmodels: OLS with cov_type HC1, use_t); the interval inverts the same t.
    cols = _confounded(12, 1)
    data = pd.DataFrame({k: cols[k] for k in ("T", "A", "Y")})
    est = sound_estimate(data, "T", "Y", ["A"], [])
    fit = sm.OLS(cols["Y"], sm.add_constant(np.column_stack([cols["T"], cols["A"]]))).fit(
        cov_type="HC1", use_t=True)
    span = np.ptp(cols["T"])
    assert est.ate == pytest.approx(span * fit.params[1], rel=1e-10)
    assert est.se == pytest.approx(span * fit.bse[1], rel=1e-8)
    assert est.p_value == pytest.approx(fit.pvalues[1], rel=1e-8)
    assert est.p_value_rows_independent == pytest.approx(fit.pvalues[1], rel=1e-8)
    low, high = fit.conf_int(alpha=0.05)[1]
    assert (est.ci_low, est.ci_high) == (pytest.approx(span * low, rel=1e-8), pytest.approx(span * high, rel=1e-8))
    assert (est.dof, est.dof_resid, est.n_clusters) == (9, 9, 12)
    assert est.dropped_columns == () and est.modifiers == ()


def test_two_clusters_give_a_clustered_standard_error_on_one_degree_of_freedom():
    import statsmodels.api as sm

    cols = _confounded(16, 2)
    groups = np.repeat([0, 1], 8)
    data = pd.DataFrame({k: cols[k] for k in ("T", "A", "Y")})
    est = sound_estimate(data, "T", "Y", ["A"], [], clusters=groups)
    # statsmodels' cluster-robust covariance with its default small-sample correction
    # G/(G-1) x (N-1)/(N-K) is CR1
    fit = sm.OLS(cols["Y"], sm.add_constant(np.column_stack([cols["T"], cols["A"]]))).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    span = np.ptp(cols["T"])
    assert est.se == pytest.approx(span * fit.bse[1], rel=1e-8)
    assert (est.n_clusters, est.dof) == (2, 1)
    assert est.p_value == pytest.approx(2 * stats.t.sf(abs(fit.params[1] / fit.bse[1]), 1), rel=1e-8)


def test_numeric_columns_of_dtype_object_are_read_as_floats():
    # Decimal values (as a database driver returns them) in every column: the estimate is that of
    # the same numbers as floats, span x (b_T + b_TM x mean(M)) from Y ~ 1 + T + S + M + T M.
    rng = np.random.default_rng(12)
    s, m = rng.normal(size=(2, 20))
    t = 0.4 * s + rng.normal(size=20)
    y = t + 0.5 * t * m + s + m + 0.3 * rng.normal(size=20)
    b = _ols([t, s, m, t * m], y)
    expected = np.ptp(t) * (b[1] + b[4] * m.mean())
    data = pd.DataFrame({"T": t, "S": s, "M": m, "Y": y}).map(lambda v: Decimal(float(v)))
    assert data["T"].dtype == object
    est = sound_estimate(data, "T", "Y", ["S"], ["M"])
    assert est.ate == pytest.approx(expected, rel=1e-9)
    assert est.modifiers == ("M",)


def test_a_boolean_treatment_is_read_as_zero_one():
    # T boolean: its range is 1 (True - False), the ATE the OLS coefficient of T as 0/1.
    rng = np.random.default_rng(13)
    t = rng.random(20) < 0.5
    s = rng.normal(size=20)
    y = 2.0 * t + s + 0.5 * rng.normal(size=20)
    est = sound_estimate(pd.DataFrame({"T": t, "S": s, "Y": y}), "T", "Y", ["S"], [])
    assert est.ate == pytest.approx(_ols([t.astype(float), s], y)[1], rel=1e-9)


# --------------------------------------------------------------------------------------
# Robustness value
# --------------------------------------------------------------------------------------

def _dowhy_robustness_value(t_stat: float, dof: int, alpha: float) -> float:
    """dowhy's ``LinearSensitivityAnalyzer.robustness_value_func`` fed t and dof directly."""
    from dowhy.causal_refuters.linear_sensitivity_analyzer import LinearSensitivityAnalyzer

    analyser = LinearSensitivityAnalyzer(estimator=types.SimpleNamespace(model=None), treatment_name=["T"],
                                         common_causes_order=[])
    analyser.t_stats, analyser.degree_of_freedom = t_stat, dof
    return float(analyser.robustness_value_func(alpha=alpha))


def test_robustness_value_of_an_overwhelming_estimate_uses_the_extreme_formula():
    # dof = 100, alpha = 0.05: f_crit = |t_0.025(99)| / sqrt(99) = 0.19942, so 1/f_crit = 5.01
    # and 2/f_crit = 10.03. t = 70 gives f_q = 7 > 1/f_crit: the value is
    # (f_q² - f_crit²) / (1 + f_q²) = (49 - 0.03977) / 50 = 0.979205, not the interior formula's
    # 0.979265.
    f_crit = abs(stats.t.ppf(0.025, 99)) / math.sqrt(99)
    by_hand = (49 - f_crit ** 2) / 50
    assert by_hand == pytest.approx(0.979205, abs=1e-6)
    for t_stat in (70.0, -70.0):
        got = robustness_value(t_stat, 100, 0.05)
        assert got == pytest.approx(by_hand, rel=1e-12)
        assert got == pytest.approx(_dowhy_robustness_value(t_stat, 100, 0.05), rel=1e-12)


# --------------------------------------------------------------------------------------
# The paper estimator and dowhy's refuters
# --------------------------------------------------------------------------------------

def test_paper_estimator_runs_its_significance_test_and_no_conditional_estimates():
    rng = np.random.default_rng(14)
    t, m = rng.normal(size=(2, 30))
    data = pd.DataFrame({"T": t, "M": m, "Y": t + t * m + rng.normal(size=30)})
    paper = paper_estimate(data, backdoor_estimand("T", "Y", []), "T", ["M"])
    # what dowhy records on the estimate handed to the refuters, as the module text describes
    assert paper.fit.params["test_significance"] is True
    assert paper.fit.estimator.need_conditional_estimates is False
    assert paper.fit.conditional_estimates is None
    # the estimand is dowhy's own (expression and assumptions), so the estimate prints as dowhy's
    # do; a plain string there made str() raise TypeError inside dowhy
    printed = str(paper.fit)
    assert "Estimand name: backdoor" in printed and "Estimand expression" in printed and "b: Y~T+T*M" in printed


@pytest.mark.parametrize("unit", [1e160, 1e-170])
def test_columns_in_extreme_units_are_not_taken_for_constants(unit):
    # the norm of a column in units of 1e160 overflows to inf (1e-170: underflows to 0) if taken
    # before scaling; the column must still explain T as in its own units (R² of T = 2 A + noise)
    rng = np.random.default_rng(15)
    a = rng.normal(size=30)
    t = 2 * a + 0.1 * rng.normal(size=30)
    expected = _r2_reference(t, [a])
    assert expected > 0.9
    assert r_squared(t, np.column_stack([unit * a])) == pytest.approx(expected, rel=1e-9)
    check = overlap(pd.DataFrame({"T": t, "S": unit * a}), "T", ["S"])
    assert check.r2 == pytest.approx(expected, rel=1e-9)


def test_refuters_use_seed_plus_offset_and_label_a_significant_refutation_fail():
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset
    from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType, refute_placebo_treatment
    from dowhy.causal_refuters.random_common_cause import refute_random_common_cause

    # One treated row of ten and Y = T. A permutation that moves the 1 to another row gives the
    # placebo estimate mean(Y | placebo 1) - mean(Y | placebo 0) = 0 - 1/9; with seed 0 all ten
    # permutations do, so the placebo estimates are all -1/9, 0 is improbable under them and the
    # placebo refutation fails. Every number is checked against dowhy's refuters called directly
    # with the random states seed + 0, + 1, + 2 (placebo, random common cause, data subset).
    t = np.zeros(10)
    t[-1] = 1.0
    data = pd.DataFrame({"T": t, "Y": t.copy()})
    paper = paper_estimate(data, backdoor_estimand("T", "Y", []), "T", [])
    out = refute(data, paper, "T", seed=0)
    estimate = paper.fit
    estimand = estimate.estimator._target_estimand
    n = SIMULATIONS
    reference = {
        "placebo_treatment": refute_placebo_treatment(data, estimand, estimate, ["T"], num_simulations=n,
                                                      placebo_type=PlaceboType.PERMUTE,
                                                      random_state=np.random.RandomState(0)),
        "random_common_cause": refute_random_common_cause(data, estimand, estimate, num_simulations=n,
                                                          random_state=np.random.RandomState(1)),
        "data_subset": refute_data_subset(data, estimand, estimate, subset_fraction=0.8, num_simulations=n,
                                          random_state=np.random.RandomState(2)),
    }
    assert out["placebo_treatment_new_effect"] == pytest.approx(-1 / 9, rel=1e-9)
    assert out["placebo_treatment_result"] == "fail"
    for name, refutation in reference.items():
        assert out[f"{name}_new_effect"] == pytest.approx(float(refutation.new_effect), rel=1e-12, abs=1e-15)
        assert out[f"{name}_p_value"] == pytest.approx(float(refutation.refutation_result["p_value"]), abs=1e-12)
        significant = refutation.refutation_result["is_statistically_significant"]
        assert out[f"{name}_result"] == ("fail" if significant else "pass")
