"""The sound estimator: the paper's backdoor adjustment with the modifiers' main effects in the
model, and the ATE's own test.

The model is Y ~ 1 + T + S + M + T x M for the backdoor set S and the effect modifiers M, each
modifier only if the enlarged set still satisfies the backdoor criterion and leaves the treatment
free to vary (:func:`sound_adjustment`, :func:`positive_modifiers`). The ATE is the linear
combination ``span * (b_T + sum_k b_{T x M_k} * mean(M_k))``; its standard error comes by the delta
method from the stacked influence functions of the coefficients and of the modifier means, summed
within clusters of rows that share a training run (CR1 small-sample factor, t with G - 1 degrees
of freedom). ``p_value`` tests that ATE with the same t quantile the 95 % interval uses, so
``p_value < 0.05`` exactly when the interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.estimators.base import SIGNIFICANCE_LEVEL, Estimate, Estimator, Question, Status
from etio.causal.estimators.inference import robustness_value, t_test
from etio.causal.identify import Identification, is_valid_backdoor_set
from etio.causal.overlap import DETERMINISTIC_R2, WEAK_OVERLAP, overlap, standardised


@dataclass(frozen=True)
class SoundAdjustment:
    """The sound estimator's model terms for one query: the effect modifiers whose main effects
    (and interactions with T) may enter, and those left out with the reason."""

    modifiers: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()   # (modifier, why)


def sound_adjustment(graph: nx.DiGraph, ident: Identification) -> SoundAdjustment:
    """dowhy's effect modifiers, in graph order, each kept only if the backdoor set enlarged by
    it (and by those kept before it) still satisfies the backdoor criterion."""
    kept: list[str] = []
    left_out = []
    for m in ident.effect_modifiers:
        if is_valid_backdoor_set(graph, ident.treatment, ident.outcome, [*ident.backdoor_set, *kept, m]):
            kept.append(m)
        else:
            left_out.append((m, "adjusting for it would break the backdoor criterion"))
    return SoundAdjustment(tuple(kept), tuple(left_out))


def positive_modifiers(data: pd.DataFrame, ident: Identification,
                       adjustment: SoundAdjustment) -> SoundAdjustment:
    """Of ``adjustment``'s modifiers, those that keep T free to vary (each added main effect must not fix T)."""
    kept: list[str] = []
    left_out = list(adjustment.left_out)
    for m in adjustment.modifiers:
        if overlap(data, ident.treatment, [*ident.backdoor_set, *kept, m]).identifiable:
            kept.append(m)
        else:
            left_out.append((m, f"with it {ident.treatment} would be a deterministic function of the adjustment set"))
    return SoundAdjustment(tuple(kept), tuple(left_out))


@dataclass(frozen=True)
class SoundFit:
    """The regression behind a sound estimate, with what its diagnostics need."""

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
        z = standardised(col[:, None])[:, 0]
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


def sound_estimate(data: pd.DataFrame, treatment: str, outcome: str, adjustment: Sequence[str],
                   modifiers: Sequence[str], clusters: np.ndarray | None = None) -> SoundFit:
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
    p_rows, _ = t_test(ate, se_rows, n - p)
    labels = np.arange(n) if clusters is None else np.asarray(clusters)
    se, g = clustered(labels)
    dof = (g - 1) if clusters is not None else n - p
    p_value, half = t_test(ate, se, dof)
    return SoundFit(ate=ate, se=se, ci_low=ate - half, ci_high=ate + half, p_value=p_value,
                    p_value_rows_independent=p_rows, dof=int(dof), dof_resid=int(n - p), n_clusters=g,
                    modifiers=tuple(m for m in modifiers if f"{treatment}:{m}" in kept_names),
                    dropped_columns=tuple(d for d in dropped if ":" not in d))


class SoundEstimator(Estimator):
    """The modifiers' main effects in the model (pruned as above), the ATE's own clustered test."""

    name = "sound"

    def estimate(self, question: Question) -> Estimate:
        if not question.overlap.identifiable:
            return Estimate(Status.NOT_IDENTIFIABLE)
        data, ident = question.data, question.identification
        adjustment = positive_modifiers(data, ident, sound_adjustment(question.graph, ident))
        fit = sound_estimate(data, ident.treatment, ident.outcome, ident.backdoor_set, adjustment.modifiers,
                             question.clusters)
        final = overlap(data, ident.treatment,
                        [*ident.backdoor_set, *(m for m in adjustment.modifiers if m not in ident.backdoor_set)])
        flags = []
        if final.weak:
            flags.append(f"{WEAK_OVERLAP} (VIF {final.vif:.3g})")
        if fit.dropped_columns:
            flags.append("collinear adjustment column(s) left out: " + ", ".join(fit.dropped_columns))
        return Estimate(Status.ESTIMATED, ate=fit.ate, p_value=fit.p_value, ci_low=fit.ci_low, ci_high=fit.ci_high,
                        details={
                            "se": fit.se, "p_value_rows_independent": fit.p_value_rows_independent,
                            "overlap_r2": final.r2, "vif": final.vif,
                            "robustness_value": robustness_value(fit.t_stat, fit.dof_resid),
                            "robustness_value_alpha": robustness_value(fit.t_stat, fit.dof_resid, SIGNIFICANCE_LEVEL),
                            "effect_modifiers": ";".join(fit.modifiers), "flags": "; ".join(flags),
                            "modifiers_left_out": "; ".join(f"{m} ({why})" for m, why in adjustment.left_out),
                        }, fit=fit)
