"""The direct backdoor estimator and the refuters against independent references: statsmodels'
own interval for the same linear combination of coefficients (a formula-built model, not the
estimator's design matrix), and the refuters' simulations replayed with numpy least squares
and dowhy's normal test written out with scipy."""

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


@pytest.mark.parametrize("arcs,treatment,backdoor,modifiers", [
    ([("Z", "X"), ("Z", "Y"), ("X", "Y")], "X", ["Z"], []),
    ([("Z", "X"), ("Z", "Y"), ("X", "Y"), ("W", "Y")], "X", ["Z"], ["W"]),
    ([("Z", "X"), ("Z", "Y"), ("X", "M"), ("M", "Y"), ("W", "Y"), ("W", "M")], "M", ["W", "Z"], []),
])
def test_interval_is_statsmodels_interval_of_the_same_linear_combination(arcs, treatment, backdoor, modifiers):
    data = _linear_data()
    graph = nx.DiGraph(arcs)
    data = data[list(graph.nodes)]
    ident = effects.identify(graph, treatment, "Y")
    # The adjustment sets, by hand from the graph: Z confounds X; for M, Z blocks the path
    # M <- X <- Z -> Y and W is a common cause of M and Y. W is an effect modifier of X (a parent
    # of Y only).
    assert sorted(ident.backdoor_set) == sorted(backdoor) and list(ident.effect_modifiers) == modifiers
    est = effects.backdoor_linear_regression(data, ident)
    ate, low, high, p = _formula_interval(data, treatment, "Y", ident.backdoor_set, ident.effect_modifiers)
    assert est.ate == pytest.approx(ate, rel=1e-9)
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert est.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)


def test_interval_by_hand_for_a_single_regressor():
    # y = 2 x + e on x = 0..9: the 95 % interval is span * (b +- t_{0.975, n-2} se(b)).
    x = np.arange(10.0)
    e = np.array([0.3, -0.1, 0.2, -0.4, 0.1, 0.0, -0.2, 0.4, -0.3, 0.0])
    data = pd.DataFrame({"X": x, "Y": 2 * x + e})
    ident = effects.identify(nx.DiGraph([("X", "Y")]), "X", "Y")
    est = effects.backdoor_linear_regression(data, ident)
    xc = x - x.mean()
    b = (xc * (data["Y"] - data["Y"].mean())).sum() / (xc ** 2).sum()
    resid = data["Y"] - data["Y"].mean() - b * xc
    se = np.sqrt((resid ** 2).sum() / 8 / (xc ** 2).sum())
    half = stats.t.ppf(0.975, 8) * se
    assert est.ate == pytest.approx(9 * b, rel=1e-12)
    assert (est.ci_low, est.ci_high) == pytest.approx((9 * (b - half), 9 * (b + half)), rel=1e-10)
    assert est.p_value == pytest.approx(2 * stats.t.sf(abs(b / se), 8), rel=1e-6, abs=1e-300)


def _least_squares_ate(t, y, controls):
    design = np.column_stack([np.ones(len(t)), t, *controls]) if controls else np.column_stack([np.ones(len(t)), t])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return (t.max() - t.min()) * coef[1]


def _normal_test(value, simulations):
    """dowhy's test for fewer than 100 simulations: one tail of a normal fitted to them (population sd)."""
    z = (value - np.mean(simulations)) / np.std(simulations)
    return stats.norm.sf(abs(z))


def test_refuter_p_values_equal_a_replay_of_the_simulations():
    data = _linear_data(n=400)[["Z", "X", "Y"]]
    ident = effects.identify(nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")]), "X", "Y")
    est = effects.backdoor_linear_regression(data, ident)
    out = effects.refute(data, ident, est, np.random.default_rng(7))
    # Replay: per simulation, in this order, a N(0,1) common cause, an 80 % subset, a permuted treatment.
    rng = np.random.default_rng(7)
    t, y, z = (data[c].to_numpy() for c in ("X", "Y", "Z"))
    sims = {"random_common_cause": [], "data_subset": [], "placebo_treatment": []}
    n = len(data)
    for _ in range(effects.REFUTER_SIMULATIONS):
        sims["random_common_cause"].append(_least_squares_ate(t, y, [z, rng.standard_normal(n)]))
        rows = np.sort(rng.choice(n, size=int(0.8 * n), replace=False))
        sims["data_subset"].append(_least_squares_ate(t[rows], y[rows], [z[rows]]))
        sims["placebo_treatment"].append(_least_squares_ate(rng.permutation(t), y, [z]))
    assert effects.REFUTER_SIMULATIONS == 10
    for name, values in sims.items():
        reference = 0.0 if name == "placebo_treatment" else est.ate     # a placebo's true effect is 0
        assert out[f"{name}_new_effect"] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-12), name
        assert out[f"{name}_p_value"] == pytest.approx(_normal_test(reference, values), rel=1e-6, abs=1e-12), name
    # What the values say on this model: the placebo effect is near 0 and 0 is plausible under it,
    # while the original estimate lies far out in the placebo distribution.
    assert abs(out["placebo_treatment_new_effect"]) < 0.1 * abs(est.ate)
    assert out["placebo_treatment_p_value"] > 0.05
    assert _normal_test(est.ate, sims["placebo_treatment"]) < 1e-6
