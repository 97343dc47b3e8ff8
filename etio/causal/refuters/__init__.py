"""dowhy's refuters of the paper estimate (``--refuters``): one class per file over
:class:`~etio.causal.refuters.base.Refuter`, listed in :data:`REFUTERS`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from etio.causal.estimators.base import Estimate
from etio.causal.refuters.base import SIMULATIONS, Refutation, Refuter
from etio.causal.refuters.data_subset import DataSubset
from etio.causal.refuters.placebo_treatment import PlaceboTreatment
from etio.causal.refuters.random_common_cause import RandomCommonCause

#: name -> refuter, in the order they run (and their columns appear).
REFUTERS: dict[str, Refuter] = {r.name: r for r in (PlaceboTreatment(), RandomCommonCause(), DataSubset())}

#: The ATE-table columns of the refuters.
REFUTER_COLUMNS = {f"{name}_{part}": ("str" if part == "result" else "float")
                   for name in REFUTERS for part in ("new_effect", "p_value", "result")}


def refute(data: pd.DataFrame, paper: Estimate, treatment: str, seed: int) -> dict[str, float | str]:
    """Every refuter on the paper estimate, the i-th seeded with ``seed + i``: their ATE-table columns."""
    out: dict[str, float | str] = {}
    for offset, refuter in enumerate(REFUTERS.values()):
        out.update(refuter.refute(data, paper, treatment, np.random.RandomState(seed + offset)).columns(refuter.name))
    return out


__all__ = ["REFUTERS", "REFUTER_COLUMNS", "SIMULATIONS", "Refutation", "Refuter", "refute"]
