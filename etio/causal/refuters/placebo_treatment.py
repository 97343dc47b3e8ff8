"""dowhy's placebo treatment refuter."""

from __future__ import annotations

from etio.causal.refuters.base import SIMULATIONS, Refuter


class PlaceboTreatment(Refuter):
    name = "placebo_treatment"
    description = ("the treatment replaced by a permutation of itself; passes when an effect of 0 is "
                   "plausible under the placebo estimates")

    def run(self, data, estimate, treatment, random_state):
        from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType, refute_placebo_treatment

        return refute_placebo_treatment(data, estimate.estimator._target_estimand, estimate, [treatment],
                                        num_simulations=SIMULATIONS, placebo_type=PlaceboType.PERMUTE,
                                        random_state=random_state)
