"""What every estimator shares: the question it answers, the :class:`Estimate` it returns, the
:class:`Status` of a query, and the base class with its one method to override.

A new estimator is one file in this folder with one :class:`Estimator` subclass, and one entry
in :data:`etio.causal.estimators.ESTIMATORS`.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.identify import Identification
from etio.causal.overlap import Overlap, not_identifiable_reason, overlap

CONFIDENCE_LEVEL = 0.95
SIGNIFICANCE_LEVEL = 0.05


class Status(enum.StrEnum):
    """What a query came to; the value is the word written in the tables."""

    ESTIMATED = "estimated"
    NO_PATH = "no causal path"              # no directed path from the treatment to the attack: ATE 0
    NOT_IDENTIFIABLE = "not identifiable"   # the adjustment set fixes the treatment: no number
    #: A Table 3 cell whose (loss, attack) has no graph, hence no ATE row: its attack column was
    #: constant over the slice (an attack at chance everywhere), so no graph was learned
    #: (etio.causal.learning). Nothing can be said about the claim: ? under both estimators.
    NOT_LEARNED = "graph not learned"

    @classmethod
    def of_ates(cls) -> tuple[Status, ...]:
        """The statuses a row of an ATE table can have (a query that was asked)."""
        return (cls.ESTIMATED, cls.NO_PATH, cls.NOT_IDENTIFIABLE)


@dataclass(frozen=True, eq=False)
class Question:
    """One ATE query after identification: the rows, the training run of each row (``clusters``;
    None: every row its own), the graph and dowhy's identification of the effect in it."""

    data: pd.DataFrame
    clusters: np.ndarray | None
    graph: nx.DiGraph
    identification: Identification

    @cached_property
    def overlap(self) -> Overlap:
        """How freely the treatment varies given its backdoor set in these rows."""
        return overlap(self.data, self.identification.treatment, self.identification.backdoor_set)

    @property
    def status(self) -> Status:
        if not self.identification.has_directed_path:
            return Status.NO_PATH
        return Status.ESTIMATED if self.overlap.identifiable else Status.NOT_IDENTIFIABLE

    @property
    def reason(self) -> str:
        ident = self.identification
        if not ident.has_directed_path:
            return f"no directed path from {ident.treatment} to {ident.outcome} in the graph"
        return "" if self.overlap.identifiable else not_identifiable_reason(ident.treatment, self.overlap.defining)


@dataclass(frozen=True)
class Estimate:
    """One estimator's answer to one question: the ATE (control = min T, treatment = max T), its
    p-value and 95 % interval, and the estimator's own diagnostics (``details``, columns of the
    ATE table)."""

    status: Status
    ate: float = math.nan
    p_value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    details: Mapping[str, Any] = field(default_factory=dict)
    fit: Any = field(default=None, repr=False, compare=False)   # the fitted model, for the refuters

    @classmethod
    def no_path(cls) -> Estimate:
        """The effect of a treatment without a directed path to the attack: exactly 0, no test."""
        return cls(Status.NO_PATH, ate=0.0, ci_low=0.0, ci_high=0.0)


class Estimator(ABC):
    """An ATE estimator: ``estimate`` answers one identified question that has a directed path."""

    name: ClassVar[str]

    @abstractmethod
    def estimate(self, question: Question) -> Estimate:
        """The estimate for ``question`` (status ``not identifiable`` where the rows cannot give one)."""
