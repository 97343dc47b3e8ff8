"""dowhy's ``estimate_effect`` called the ordinary way, through ``CausalModel``: the reference the
paper estimator is checked against (``etio validate`` reports the largest difference)."""

from __future__ import annotations

from typing import Iterable

import networkx as nx
import pandas as pd

from etio.causal.estimators.paper import backdoor_estimand
from etio.causal.identify import default_adjustment_set, plain_dag, quiet_dowhy


def dowhy_estimate(data: pd.DataFrame, graph: nx.DiGraph, treatment: str, outcome: str,
                   backdoor_set: Iterable[str] | None = None):
    """Effect modifiers from the model's graph, the estimand from ``identify_effect``, or for
    exactly ``backdoor_set`` when given (dowhy's identification is then skipped: it is the slow
    part, and the set is the one under test)."""
    from dowhy import CausalModel

    quiet_dowhy()
    model = CausalModel(data, treatment=treatment, outcome=outcome, graph=plain_dag(graph))
    if backdoor_set is None:
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        if estimand.backdoor_variables and "backdoor" in estimand.backdoor_variables:
            # dowhy's own choice among equally good sets follows hash order; use the set of the
            # stated rule (default_adjustment_set), so the reference estimates the same regression.
            estimand.backdoor_variables["backdoor"] = list(default_adjustment_set(graph, treatment, outcome))
    else:
        estimand = backdoor_estimand(treatment, outcome, list(backdoor_set))
    return model.estimate_effect(
        estimand, method_name="backdoor.linear_regression",
        control_value=data[treatment].min(), treatment_value=data[treatment].max(),
        method_params={"init_params": {"need_conditional_estimates": False}},
    )
