"""dowhy's data subset refuter."""

from __future__ import annotations

from etio.causal.refuters.base import SIMULATIONS, Refuter

SUBSET_FRACTION = 0.8


class DataSubset(Refuter):
    name = "data_subset"
    description = ("the estimate on random 80 % subsets of the rows; passes when the estimate is plausible "
                   "under the subset estimates")

    def run(self, data, estimate, treatment, random_state):
        from dowhy.causal_refuters.data_subset_refuter import refute_data_subset

        return refute_data_subset(data, estimate.estimator._target_estimand, estimate,
                                  subset_fraction=SUBSET_FRACTION, num_simulations=SIMULATIONS,
                                  random_state=random_state)
