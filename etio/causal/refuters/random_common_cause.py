"""dowhy's random common cause refuter."""

from __future__ import annotations

from etio.causal.refuters.base import SIMULATIONS, Refuter


class RandomCommonCause(Refuter):
    name = "random_common_cause"
    description = ("an independent N(0,1) common cause added to the adjustment set; passes when the "
                   "estimate is plausible under the new estimates")

    def run(self, data, estimate, treatment, random_state):
        from dowhy.causal_refuters.random_common_cause import refute_random_common_cause

        return refute_random_common_cause(data, estimate.estimator._target_estimand, estimate,
                                          num_simulations=SIMULATIONS, random_state=random_state)
