"""The ATE estimators: one class per file over :class:`~etio.causal.estimators.base.Estimator`.

:data:`ESTIMATORS` is the registry every table answers its queries under (the ATE tables'
``*_paper`` and sound columns, the robust hypotheses' ``<name>`` columns).
"""

from __future__ import annotations

from etio.causal.estimators.base import Estimate, Estimator, Question, Status
from etio.causal.estimators.paper import PaperEstimator
from etio.causal.estimators.sound import SoundEstimator

#: name -> estimator; the paper's first.
ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (PaperEstimator(), SoundEstimator())}

__all__ = ["ESTIMATORS", "Estimate", "Estimator", "PaperEstimator", "Question", "SoundEstimator", "Status"]
