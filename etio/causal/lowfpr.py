"""The paper's Table-3 hypotheses at low false-positive rates.

Each hypothesis names attacks by their accuracy column. Its low-FPR counterpart asks the same
question of the attack's true-positive rate at 0.1 % or 1 % FPR (:mod:`etio.attacks.roc`):
the trace table is copied with each Table-3 attack's accuracy column replaced by that TPR, and
its graphs are learned and queried exactly as the accuracy's are — the same nodes, centroid
distance and blacklist (the attack's vocabulary entry), the same learning method and ATE
estimators — so the verdict under accuracy and the verdict under TPR differ only in the outcome.

An attack whose TPR is missing in some configuration of a slice (too few non-members in its
evaluation design: ML-Leaks and Oak17 score a few hundred non-members per configuration in the
default study) or constant over it gets no graph; its cells are "graph not learned" (?), with
the reason in :func:`learnable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from etio.core.schema import LOSSES, slice_mask

#: Table-3 attack column -> the prefix of its low-FPR trace columns.
LOW_FPR_PREFIX = {"MLLeakAcc": "MLLeak", "MLLeakLAcc": "MLLeakL", "Top3MLLeakAcc": "Top3MLLeak",
                  "Top3MLLeakLAcc": "Top3MLLeakL", "Oak17Acc": "Oak17", "ThresholdAcc": "Threshold"}
#: The two outcomes asked about: trace-column suffix -> reader's name.
LOW_FPR_METRICS = {"TPR0.1": "TPR at 0.1 % FPR", "TPR1": "TPR at 1 % FPR"}


def substituted(traces: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``traces`` with each Table-3 attack's accuracy column holding its ``metric`` (NaN where absent)."""
    table = traces.copy()
    for attack, prefix in LOW_FPR_PREFIX.items():
        column = f"{prefix}{metric}"
        table[attack] = pd.to_numeric(traces[column], errors="coerce") if column in traces else float("nan")
    return table


def learnable(table: pd.DataFrame, weight_decay: float, metric: str) -> tuple[list[str], dict[str, str]]:
    """The attacks of ``table`` (substituted) whose graphs can be learned in every loss slice, and why the
    others cannot."""
    ok, reasons = [], {}
    for attack, prefix in LOW_FPR_PREFIX.items():
        for loss in LOSSES:
            rows = table[slice_mask(table, loss, weight_decay)]
            if rows.empty:
                continue
            values = rows[attack]
            if values.isna().any():
                reasons[attack] = (f"{prefix}{metric} is missing in {int(values.isna().sum())} of {len(values)} "
                                   f"{loss.upper()} configurations (too few non-members behind the ROC)")
                break
            if values.nunique() < 2:
                reasons[attack] = f"{prefix}{metric} is constant over the {loss.upper()} configurations"
                break
        else:
            ok.append(attack)
    return ok, reasons


def low_fpr_ates(traces: pd.DataFrame, graphs_dir: Path, weight_decay: float, metric: str,
                 learn: Callable[[pd.DataFrame, Path, list[str]], object],
                 estimate: Callable[[pd.DataFrame, Path], pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Learn and query the Table-3 attacks with ``metric`` as their outcome at ``weight_decay``.

    ``learn(table, graphs_dir, attacks)`` and ``estimate(table, graphs_dir)`` are the run's own learning
    and ATE steps (the caller's settings); returns the ATE table (empty when no graph could be learned)
    and the reasons of the attacks left out.
    """
    table = substituted(traces, metric)
    attacks, reasons = learnable(table, weight_decay, metric)
    if not attacks:
        return pd.DataFrame(columns=["loss", "attack", "feature", "status"]), reasons
    learn(table, graphs_dir, attacks)
    return estimate(table, graphs_dir), reasons
