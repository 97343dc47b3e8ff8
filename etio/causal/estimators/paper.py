"""The paper's estimator: dowhy's own ``estimate_effect`` with ``backdoor.linear_regression``.

dowhy's model is outcome ~ 1 + T + backdoor set + T x effect modifiers, *without* the
modifiers' main effects, and its p-value is the t-test of T's coefficient alone (the effect
where every modifier is 0, not the ATE). It is called with ``need_conditional_estimates=False``:
dowhy otherwise re-estimates the effect in every quantile bin of every modifier (half a second
per call) for numbers the ATE does not use; the estimate and the test are the same either way.
The paper computed it on every query with a path, identifiable or not; so does this estimator,
and it says which (the estimate's status).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import pandas as pd

from etio.causal.estimators.base import CONFIDENCE_LEVEL, Estimate, Estimator, Question, Status
from etio.causal.identify import quiet_dowhy


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


def paper_estimate(data: pd.DataFrame, estimand, treatment: str, effect_modifiers: Sequence[str]) -> Estimate:
    """dowhy's ``estimate_effect`` (``backdoor.linear_regression``, significance test on),
    control = min(T), treatment = max(T). The interval is the one its test inverts (t quantile x
    span x SE of T's coefficient; ``details["half_width"]``); ``fit`` is dowhy's CausalEstimate."""
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
    ate = float(result.value)
    return Estimate(Status.ESTIMATED, ate=ate, p_value=p_value, ci_low=ate - half, ci_high=ate + half,
                    details={"half_width": half}, fit=result)


class PaperEstimator(Estimator):
    """dowhy's backdoor linear regression and its test of T's coefficient (the paper's method)."""

    name = "paper"

    def estimate(self, question: Question) -> Estimate:
        ident = question.identification
        found = paper_estimate(question.data, backdoor_estimand(ident.treatment, ident.outcome, ident.backdoor_set),
                               ident.treatment, ident.effect_modifiers)
        if question.overlap.identifiable:
            return found
        return dataclasses.replace(found, status=Status.NOT_IDENTIFIABLE)
