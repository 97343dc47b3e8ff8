"""Tests, sensitivity and multiplicity around an estimate."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from etio.causal.estimators.base import CONFIDENCE_LEVEL


def t_test(estimate: float, se: float, dof: int) -> tuple[float, float]:
    """Two-sided p-value and the half width of the confidence interval, from one t quantile."""
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, dof)) * se
    if se <= 0:
        return (0.0 if estimate != 0 else 1.0), half
    return float(2 * stats.t.sf(abs(estimate / se), dof)), half


def robustness_value(t_stat: float, dof: int, alpha: float | None = None) -> float:
    """Cinelli & Hazlett's (2020) robustness value of an estimate with t-statistic ``t_stat``
    on ``dof`` residual degrees of freedom.

    The partial R² that an unobserved confounder would need with both the treatment and the
    outcome to bring the estimate to 0 (``alpha`` None), or to make it insignificant at level
    ``alpha``. Same formula as dowhy's ``LinearSensitivityAnalyzer.robustness_value_func``.
    """
    from scipy import stats

    f_q = abs(t_stat) / math.sqrt(dof)
    f_critical = 0.0 if alpha is None else abs(float(stats.t.ppf(alpha / 2, dof - 1))) / math.sqrt(dof - 1)
    f_adjusted = f_q - f_critical
    if f_adjusted < 0:
        return 0.0
    if f_critical > 0 and f_q > 1 / f_critical:
        return (f_q ** 2 - f_critical ** 2) / (1 + f_q ** 2)
    return 0.5 * (math.sqrt(f_adjusted ** 4 + 4 * f_adjusted ** 2) - f_adjusted ** 2)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries are not tests and stay NaN."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q
