"""Estimation of one average treatment effect, two ways, and what a reviewer checks around it.

Both estimators take the backdoor adjustment set that identification chose from the graph
(:mod:`etio.causal.effects`) and contrast the treatment at its maximum with its minimum.

* **paper** - the paper's method exactly: dowhy's own ``estimate_effect`` with
  ``backdoor.linear_regression`` and its significance test. dowhy's model is
  outcome ~ 1 + T + backdoor set + T x effect modifiers, *without* the modifiers' main effects,
  and its p-value is the t-test of T's coefficient alone (the effect where every modifier is 0,
  not the ATE). It is called with ``need_conditional_estimates=False``: dowhy otherwise
  re-estimates the effect in every quantile bin of every modifier (half a second per call)
  for numbers the ATE does not use; the estimate and the test are the same either way.
* **sound** - the same backdoor adjustment with the modifiers' main effects in the model
  (each modifier only if the enlarged set still satisfies the backdoor criterion and leaves
  the treatment free to vary); the ATE as the linear combination
  ``span * (b_T + sum_k b_{T x M_k} * mean(M_k))``; its standard error by the delta method from
  the stacked influence functions of the coefficients and of the modifier means, summed within
  clusters of rows that share a training run (CR1 small-sample factor, t with G - 1 degrees of
  freedom). ``p_value`` tests that ATE with the same t quantile the 95 % interval uses, so
  ``p_value < 0.05`` exactly when the interval excludes 0.

Before either estimate the cell's *identifiability from data* is checked: the effect of T
adjusted for a set S is estimable only if T still varies once S is fixed (positivity). When T is
a deterministic function of S (R² of T on S ≥ 1 - 1e-9; in traces AccDiff = TrainAcc - TestAcc,
LossDiff = TestLoss - TrainLoss and Bias2 = Loss - Var hold exactly) no number is identified,
and the reason names the defining variables. R² ≥ 0.99 is estimated but flagged ``weak
overlap`` with T's variance inflation factor.

Around each estimate: the robustness value of Cinelli & Hazlett (2020) - the partial R² a
hidden confounder would need with both treatment and outcome to explain the effect away (or,
with alpha, to make it insignificant); Benjamini-Hochberg q-values; and dowhy's placebo,
random-common-cause and data-subset refuters on the paper estimate.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

CONFIDENCE_LEVEL = 0.95
SIGNIFICANCE_LEVEL = 0.05
#: T counts as a deterministic function of its adjustment set from this R² on.
DETERMINISTIC_R2 = 1 - 1e-9
#: Near-deterministic: estimated, flagged ``weak overlap``.
WEAK_OVERLAP_R2 = 0.99
WEAK_OVERLAP = "weak overlap"

#: The exact identities between trace columns (the learning stage's whitelist arcs): each
#: relation reads sum(coefficient * column) = 0.
IDENTITIES: tuple[dict[str, float], ...] = (
    {"AccDiff": 1.0, "TrainAcc": -1.0, "TestAcc": 1.0},       # AccDiff = TrainAcc - TestAcc
    {"LossDiff": 1.0, "TestLoss": -1.0, "TrainLoss": 1.0},    # LossDiff = TestLoss - TrainLoss
    {"TrainBias2": 1.0, "TrainLoss": -1.0, "TrainVar": 1.0},  # TrainBias2 = TrainLoss - TrainVar
    {"TestBias2": 1.0, "TestLoss": -1.0, "TestVar": 1.0},     # TestBias2 = TestLoss - TestVar
)

#: The refuters of ``--refuters`` (dowhy's), column prefix -> what it does.
REFUTERS = {
    "placebo_treatment": "the treatment replaced by a permutation of itself; passes when an effect of 0 is "
                         "plausible under the placebo estimates",
    "random_common_cause": "an independent N(0,1) common cause added to the adjustment set; passes when the "
                           "estimate is plausible under the new estimates",
    "data_subset": "the estimate on random 80 % subsets of the rows; passes when the estimate is plausible "
                   "under the subset estimates",
}
REFUTER_SIMULATIONS = 10
SUBSET_FRACTION = 0.8


def quiet_dowhy() -> None:
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"dowhy(\.|$)")


# --------------------------------------------------------------------------------------
# Identifiability: is the treatment free to vary once the adjustment set is fixed?
# --------------------------------------------------------------------------------------

def _relation_rank(columns: Sequence[str]) -> int:
    if not columns:
        return 0
    matrix = np.array([[rel.get(c, 0.0) for c in columns] for rel in IDENTITIES])
    return int(np.linalg.matrix_rank(matrix))


def fixed_by_identities(treatment: str, adjustment: Iterable[str]) -> bool:
    """Whether :data:`IDENTITIES` make ``treatment`` a function of ``adjustment``.

    T is determined when some combination of the relations involves T and, besides T, only
    variables of the set: i.e. when adding T's column to the columns outside the set raises the
    rank of the relation matrix.
    """
    inside = set(adjustment) | {treatment}
    outside = sorted({c for rel in IDENTITIES for c in rel} - inside)
    return _relation_rank(outside + [treatment]) > _relation_rank(outside)


def defining_by_identities(treatment: str, adjustment: Sequence[str]) -> tuple[str, ...]:
    """A minimal subset of ``adjustment`` that fixes ``treatment`` through the identities
    (empty when none does); variables are dropped in the given order while T stays fixed."""
    kept = list(adjustment)
    if not fixed_by_identities(treatment, kept):
        return ()
    for v in list(kept):
        trial = [k for k in kept if k != v]
        if fixed_by_identities(treatment, trial):
            kept = trial
    return tuple(kept)


def _standardised(columns: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm (constant columns become 0), so that rank and
    R² do not depend on units (NumParams is ~1e7, accuracies ~1)."""
    centred = columns - columns.mean(axis=0)
    # by the largest magnitude first: the norm of a column in units of 1e160 (or 1e-170) would
    # overflow (underflow to 0) and the column would be taken for a constant
    largest = np.abs(centred).max(axis=0) if len(centred) else np.zeros(centred.shape[1:])
    centred = centred / np.where(largest > 0, largest, 1.0)
    norms = np.linalg.norm(centred, axis=0)
    return centred / np.where(norms > 0, norms, 1.0)


def r_squared(target: np.ndarray, regressors: np.ndarray) -> float:
    """R² of ``target`` on an intercept and ``regressors`` (0 without regressors)."""
    y = target - target.mean()
    total = float(y @ y)
    if total == 0.0:
        return 1.0
    if regressors.shape[1] == 0:
        return 0.0
    x = _standardised(regressors)
    coef, *_ = np.linalg.lstsq(x, y / math.sqrt(total), rcond=None)
    resid = y / math.sqrt(total) - x @ coef
    return float(max(0.0, 1.0 - resid @ resid))


@dataclass(frozen=True)
class Overlap:
    """How freely T varies given its adjustment set."""

    r2: float                       # R² of T on the set
    defining: tuple[str, ...] = ()  # a minimal subset that fixes T (deterministic cases)

    @property
    def identifiable(self) -> bool:
        return self.r2 < DETERMINISTIC_R2

    @property
    def weak(self) -> bool:
        return self.identifiable and self.r2 >= WEAK_OVERLAP_R2

    @property
    def vif(self) -> float:
        return math.inf if self.r2 >= 1.0 else 1.0 / (1.0 - self.r2)


def overlap(data: pd.DataFrame, treatment: str, adjustment: Sequence[str]) -> Overlap:
    """R² of T on the adjustment set and, when T is fixed by it, a minimal defining subset
    (variables dropped in the given order while R² stays ≥ :data:`DETERMINISTIC_R2`)."""
    t = data[treatment].to_numpy(float)
    if np.ptp(t) == 0:
        return Overlap(r2=1.0, defining=())
    r2 = r_squared(t, data[list(adjustment)].to_numpy(float))
    if r2 < DETERMINISTIC_R2:
        return Overlap(r2=r2)
    kept = list(adjustment)
    for v in list(kept):
        trial = [k for k in kept if k != v]
        if r_squared(t, data[trial].to_numpy(float)) >= DETERMINISTIC_R2:
            kept = trial
    return Overlap(r2=r2, defining=tuple(kept))


def not_identifiable_reason(treatment: str, defining: Sequence[str]) -> str:
    if not defining:
        return f"{treatment} is constant in these rows"
    return (f"{treatment} is a deterministic function of {', '.join(defining)} in the adjustment set: "
            "it cannot vary once they are fixed (positivity fails), so no data identify the effect")


# --------------------------------------------------------------------------------------
# The paper's estimator: dowhy's estimate_effect
# --------------------------------------------------------------------------------------

@dataclass
class PaperEstimate:
    ate: float
    p_value: float
    half_width: float   # t quantile x span x SE of T's coefficient (the interval its test inverts)
    estimate: object = field(repr=False)  # dowhy's CausalEstimate (for the refuters)


def backdoor_estimand(treatment: str, outcome: str, backdoor_set: Sequence[str]):
    """dowhy's identified estimand of a backdoor adjustment for exactly ``backdoor_set`` (in
    that order): the set that identification reported, whichever way it was chosen."""
    from dowhy.causal_identifier.auto_identifier import EstimandType, construct_adjustment_estimand
    from dowhy.causal_identifier.identified_estimand import IdentifiedEstimand

    return IdentifiedEstimand(
        None, treatment_variable=[treatment], outcome_variable=[outcome],
        estimand_type=EstimandType.NONPARAMETRIC_ATE,
        # dowhy's own expression and assumptions, so that the estimand (and an estimate made with
        # it) prints as dowhy's do
        estimands={"backdoor": construct_adjustment_estimand([treatment], [outcome], list(backdoor_set))},
        backdoor_variables={"backdoor": list(backdoor_set)}, default_backdoor_id="backdoor",
        identifier_method="backdoor")


def paper_estimate(data: pd.DataFrame, estimand, treatment: str, effect_modifiers: Sequence[str]) -> PaperEstimate:
    """dowhy's ``estimate_effect`` (``backdoor.linear_regression``, significance test on),
    control = min(T), treatment = max(T)."""
    from dowhy.causal_estimator import estimate_effect
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator
    from scipy import stats

    quiet_dowhy()
    estimator = LinearRegressionEstimator(estimand, test_significance=True, need_conditional_estimates=False)
    t = data[treatment]
    result = estimate_effect(data, treatment, estimand.outcome_variable[0], "backdoor", estimator,
                             control_value=t.min(), treatment_value=t.max(),
                             effect_modifiers=list(effect_modifiers), method_params={})
    p_value = float(result.test_stat_significance()["p_value"][0])
    model = estimator.model
    half = (float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, model.df_resid)) * float(t.max() - t.min())
            * float(model.bse.iloc[1]))
    return PaperEstimate(ate=float(result.value), p_value=p_value, half_width=half, estimate=result)


def paper_refuters(data: pd.DataFrame, paper: PaperEstimate, treatment: str, seed: int) -> dict[str, float | str]:
    """dowhy's three refuters on the paper estimate, :data:`REFUTER_SIMULATIONS` simulations each.

    dowhy marks a refutation ``is_statistically_significant`` when the reference (0 for the
    placebo, the original estimate otherwise) is improbable under the simulated estimates:
    that is a failed refutation test.
    """
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset
    from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType, refute_placebo_treatment
    from dowhy.causal_refuters.random_common_cause import refute_random_common_cause

    quiet_dowhy()
    estimate = paper.estimate
    estimand = estimate.estimator._target_estimand
    runs = {
        "placebo_treatment": lambda rs: refute_placebo_treatment(
            data, estimand, estimate, [treatment], num_simulations=REFUTER_SIMULATIONS,
            placebo_type=PlaceboType.PERMUTE, random_state=rs),
        "random_common_cause": lambda rs: refute_random_common_cause(
            data, estimand, estimate, num_simulations=REFUTER_SIMULATIONS, random_state=rs),
        "data_subset": lambda rs: refute_data_subset(
            data, estimand, estimate, subset_fraction=SUBSET_FRACTION, num_simulations=REFUTER_SIMULATIONS,
            random_state=rs),
    }
    out: dict[str, float | str] = {}
    for offset, (name, run) in enumerate(runs.items()):
        refutation = run(np.random.RandomState(seed + offset))
        significance = refutation.refutation_result
        out[f"{name}_new_effect"] = float(refutation.new_effect)
        out[f"{name}_p_value"] = float(significance["p_value"])
        out[f"{name}_result"] = "fail" if significance["is_statistically_significant"] else "pass"
    return out


# --------------------------------------------------------------------------------------
# The sound estimator
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoundEstimate:
    ate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float                   # test of the ATE, clustered
    p_value_rows_independent: float  # the same test with every row its own cluster
    dof: int                         # degrees of freedom of the clustered t (clusters - 1)
    dof_resid: int                   # residual degrees of freedom of the regression
    n_clusters: int
    modifiers: tuple[str, ...]       # modifiers whose main effects and interactions are in the model
    dropped_columns: tuple[str, ...] = ()  # adjustment columns left out as exact linear combinations

    @property
    def t_stat(self) -> float:
        return self.ate / self.se if self.se > 0 else math.copysign(math.inf, self.ate)


def _independent_columns(columns: list[np.ndarray], names: list[str], keep_first: int) -> tuple[list[int], list[str]]:
    """Indices of columns that are not exact linear combinations of earlier ones (the first
    ``keep_first`` are always kept), and the names of those dropped."""
    kept: list[int] = []
    dropped: list[str] = []
    basis = np.empty((len(columns[0]), 0))
    for i, col in enumerate(columns):
        z = _standardised(col[:, None])[:, 0]
        if i >= keep_first:
            if not z.any():
                dropped.append(names[i])
                continue
            if basis.shape[1]:
                coef, *_ = np.linalg.lstsq(basis, z, rcond=None)
                resid = z - basis @ coef
                if float(resid @ resid) < 1 - DETERMINISTIC_R2:
                    dropped.append(names[i])
                    continue
        kept.append(i)
        if z.any():
            basis = np.column_stack([basis, z])
    return kept, dropped


def _t_test(estimate: float, se: float, dof: int) -> tuple[float, float]:
    """Two-sided p-value and the half width of the confidence interval, from one t quantile."""
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, dof)) * se
    if se <= 0:
        return (0.0 if estimate != 0 else 1.0), half
    return float(2 * stats.t.sf(abs(estimate / se), dof)), half


def sound_estimate(data: pd.DataFrame, treatment: str, outcome: str, adjustment: Sequence[str],
                   modifiers: Sequence[str], clusters: np.ndarray | None = None) -> SoundEstimate:
    """The ATE of moving T from min to max under Y ~ 1 + T + S + M + T x M (see the module text).

    ``adjustment`` is the backdoor set S, ``modifiers`` the effect modifiers M that may enter
    (already checked against the backdoor criterion and positivity); ``clusters`` labels the
    rows that share a training run (None: every row on its own).
    """
    t = data[treatment].to_numpy(float)
    y = data[outcome].to_numpy(float)
    n = len(t)
    extra_mods = [m for m in modifiers if m not in adjustment]
    mains = list(adjustment) + extra_mods
    columns = [np.ones(n), t] + [data[c].to_numpy(float) for c in mains]
    names = ["const", treatment] + mains
    mod_values = data[list(modifiers)].to_numpy(float) if modifiers else np.empty((n, 0))
    columns += [t * mod_values[:, k] for k in range(mod_values.shape[1])]
    names += [f"{treatment}:{m}" for m in modifiers]
    kept, dropped = _independent_columns(columns, names, keep_first=2)
    x = np.column_stack([columns[i] for i in kept])
    kept_names = [names[i] for i in kept]
    interaction_index = [(kept_names.index(f"{treatment}:{m}"), k) for k, m in enumerate(modifiers)
                         if f"{treatment}:{m}" in kept_names]
    # Solve on standardised columns (scales differ by 1e7), then map back.
    scale = np.where(np.abs(x).max(axis=0) > 0, np.abs(x).max(axis=0), 1.0)
    xs = x / scale
    xtx_inv = np.linalg.inv(xs.T @ xs)
    beta = (xtx_inv @ xs.T @ y) / scale
    resid = y - x @ beta
    span = float(t.max() - t.min())
    means = mod_values.mean(axis=0)
    weights = np.zeros(x.shape[1])
    weights[1] = 1.0
    for j, k in interaction_index:
        weights[j] = means[k]
    ate = span * float(weights @ beta)
    # Influence of each row on the ATE: through the coefficients and through the modifier means.
    influence_beta = (xs * resid[:, None]) @ xtx_inv / scale            # row i: (X'X)^-1 x_i u_i
    influence = span * (influence_beta @ weights)
    for j, k in interaction_index:
        influence += span * beta[j] * (mod_values[:, k] - means[k]) / n
    p = x.shape[1]

    def clustered(labels: np.ndarray) -> tuple[float, int]:
        codes, groups = pd.factorize(pd.Series(labels), sort=True)
        g = len(groups)
        sums = np.bincount(codes, weights=influence, minlength=g)
        factor = (g / (g - 1)) * ((n - 1) / (n - p)) if g > 1 and n > p else math.nan
        return math.sqrt(max(factor * float(sums @ sums), 0.0)), g

    se_rows, _ = clustered(np.arange(n))
    p_rows, _ = _t_test(ate, se_rows, n - p)
    labels = np.arange(n) if clusters is None else np.asarray(clusters)
    se, g = clustered(labels)
    dof = (g - 1) if clusters is not None else n - p
    p_value, half = _t_test(ate, se, dof)
    return SoundEstimate(ate=ate, se=se, ci_low=ate - half, ci_high=ate + half, p_value=p_value,
                         p_value_rows_independent=p_rows, dof=int(dof), dof_resid=int(n - p), n_clusters=g,
                         modifiers=tuple(m for m in modifiers if f"{treatment}:{m}" in kept_names),
                         dropped_columns=tuple(d for d in dropped if ":" not in d))


# --------------------------------------------------------------------------------------
# Sensitivity and multiplicity
# --------------------------------------------------------------------------------------

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
