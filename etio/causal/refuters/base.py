"""What every refuter shares: the :class:`Refutation` it returns and the base class with its one method.

A refuter re-runs the paper estimate (dowhy's, :mod:`etio.causal.estimators.paper`) under a change
that should not move it, :data:`SIMULATIONS` times. dowhy marks a refutation
``is_statistically_significant`` when the reference (0 for a placebo, the original estimate
otherwise) is improbable under the simulated estimates: that is a failed refutation test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from etio.causal.estimators.base import Estimate

SIMULATIONS = 10


@dataclass(frozen=True)
class Refutation:
    new_effect: float   # the mean of the simulated estimates
    p_value: float
    passed: bool

    def columns(self, name: str) -> dict[str, float | str]:
        """The refutation as ``<name>_new_effect``, ``<name>_p_value``, ``<name>_result`` ATE-table columns."""
        return {f"{name}_new_effect": self.new_effect, f"{name}_p_value": self.p_value,
                f"{name}_result": "pass" if self.passed else "fail"}


class Refuter(ABC):
    """One of dowhy's refuters run on the paper estimate."""

    name: ClassVar[str]
    description: ClassVar[str]

    def refute(self, data: pd.DataFrame, estimate: Estimate, treatment: str,
               random_state: np.random.RandomState) -> Refutation:
        """The refutation of ``estimate`` (a paper estimate: its ``fit`` is dowhy's CausalEstimate)."""
        from etio.causal.identify import quiet_dowhy

        quiet_dowhy()
        result = self.run(data, estimate.fit, treatment, random_state)
        significance = result.refutation_result
        return Refutation(new_effect=float(result.new_effect), p_value=float(significance["p_value"]),
                          passed=not significance["is_statistically_significant"])

    @abstractmethod
    def run(self, data: pd.DataFrame, estimate, treatment: str, random_state: np.random.RandomState):
        """dowhy's refutation (a ``CausalRefutation``) of dowhy's ``estimate``."""
