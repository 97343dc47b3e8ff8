"""The check between identification and estimation: do the rows identify the effect at all?

The effect of T adjusted for a set S is estimable only if T still varies once S is fixed
(positivity). When T is a deterministic function of S (R² of T on S ≥ 1 - 1e-9; in traces
AccDiff = TrainAcc - TestAcc, LossDiff = TestLoss - TrainLoss and Bias2 = Loss - Var hold
exactly) no number is identified, and the reason names the defining variables. R² ≥ 0.99 is
estimated but flagged ``weak overlap`` with T's variance inflation factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

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


def standardised(columns: np.ndarray) -> np.ndarray:
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
    x = standardised(regressors)
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
