"""The paper's Table-3 hypotheses at low false-positive rates.

Each hypothesis names attacks by their accuracy column. Its low-FPR counterpart asks the same
question of the attack's true-positive rate at 0.1 % or 1 % FPR (:mod:`etio.attacks.roc`):
the trace table is copied with each Table-3 attack's accuracy column replaced by that TPR, and
its graphs are learned and queried exactly as the accuracy's are — the same nodes, centroid
distance and blacklist (the attack's vocabulary entry), the same learning method and ATE
estimators — so the verdict under accuracy and the verdict under TPR differ only in the outcome.

An attack whose TPR is missing in some configuration of a slice (too few non-members behind its
ROC: in the default study ML-Leaks and Oak17 have some 2 000 to 10 000 per configuration, enough
for 1 % FPR and not for 0.1 %) or constant over it gets no graph; its cells are "graph not
learned" (?), with the reason in :func:`learnable`.

LiRA, RMIA and the loss threshold at low FPR are attack nodes of their own graphs too
(:func:`outcome_graphs`): their TPR at 0.1 % and 1 % FPR are vocabulary outcomes (no substitution),
learned per loss x weight decay under the paper's whitelist and blacklist with the loss threshold's
nodes, and measured as Table 2 measures the paper's graphs (predictive correlation beside the best
single correlation). They are not in the paper's hypotheses, so they are not queried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from etio.core.schema import LOSSES, slice_mask
from etio.core.vocabulary import GRAPH_MEASURES

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


def _unlearnable(table: pd.DataFrame, column: str, name: str, weight_decay: float) -> str | None:
    """Why ``column`` (the trace column ``name``) cannot be a graph's attack node in some loss slice at
    ``weight_decay``, or None when it can in every slice with rows."""
    for loss in LOSSES:
        rows = table[slice_mask(table, loss, weight_decay)]
        if rows.empty:
            continue
        values = pd.to_numeric(rows[column], errors="coerce") if column in rows else pd.Series(float("nan"),
                                                                                               index=rows.index)
        if values.isna().any():
            return (f"{name} is missing in {int(values.isna().sum())} of {len(values)} "
                    f"{loss.upper()} configurations (too few non-members behind the ROC)")
        if values.nunique() < 2:
            return f"{name} is constant over the {loss.upper()} configurations"
    return None


def learnable(table: pd.DataFrame, weight_decay: float, metric: str) -> tuple[list[str], dict[str, str]]:
    """The attacks of ``table`` (substituted) whose graphs can be learned in every loss slice, and why the
    others cannot."""
    ok, reasons = [], {}
    for attack, prefix in LOW_FPR_PREFIX.items():
        reason = _unlearnable(table, attack, f"{prefix}{metric}", weight_decay)
        if reason:
            reasons[attack] = reason
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


# --------------------------------------------------------------------------------------
# LiRA, RMIA and the loss threshold at low FPR as attack nodes of their own graphs
# --------------------------------------------------------------------------------------

def learnable_outcomes(traces: pd.DataFrame, weight_decay: float) -> tuple[list[str], dict[str, str]]:
    """The low-FPR graph outcomes (:data:`etio.core.vocabulary.GRAPH_MEASURES`) that have a value and vary in
    every loss slice at ``weight_decay``, and why the others have no graph there."""
    ok, reasons = [], {}
    for column in GRAPH_MEASURES:
        reason = _unlearnable(traces, column, column, weight_decay)
        if reason:
            reasons[column] = reason
        else:
            ok.append(column)
    return ok, reasons


def outcome_graphs(traces: pd.DataFrame, graphs_dir: Path, weight_decay: float,
                   learn: Callable[[pd.DataFrame, Path, list[str]], Sequence]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Learn the graphs of the low-FPR outcomes at ``weight_decay`` into ``graphs_dir``, as the paper's attacks':
    the outcome is the attack node, with the loss threshold's nodes (its centroid distance) and the paper's
    whitelist and blacklist, and Table-2's predictive power and correlation baseline.

    ``learn(traces, graphs_dir, outcomes)`` is the run's own learning step (it returns the learned graphs,
    :class:`etio.causal.learning.LearnedGraph`). Returns one row per graph (:func:`graph_summary`) and the
    reasons of the outcomes without a graph; nothing is learned (or written) when no outcome can be.
    """
    outcomes, reasons = learnable_outcomes(traces, weight_decay)
    if not outcomes:
        return graph_summary([], graphs_dir, weight_decay), reasons
    return graph_summary(learn(traces, graphs_dir, outcomes), graphs_dir, weight_decay), reasons


#: Columns of :func:`graph_summary`.
GRAPH_SUMMARY_COLUMNS = ["weight_decay", "loss", "outcome", "parents", "max_corr_variable", "max_corr", "predcor",
                         "rows"]


def graph_summary(graphs: Sequence, graphs_dir: Path, weight_decay: float) -> pd.DataFrame:
    """One row per learned graph: its outcome's parents (``;``-separated, graph order), the best single
    correlation of Table 2 (from the directory's ``results-cont`` table) and the graph's predictive correlation."""
    from etio.core import layout
    from etio.core.schema import from_r_name

    best = {}
    results = layout.path("comparison", graphs_dir, wd=weight_decay)
    if graphs and results.is_file():
        for _, r in pd.read_csv(results).iterrows():
            best[(str(r["Loss"]), from_r_name(str(r["Attack"])))] = (from_r_name(str(r["Max Corr Var"])),
                                                                      float(r["Max Corr"]))
    rows = []
    for g in graphs:
        variable, corr = best.get((g.loss, g.attack), ("", float("nan")))
        parents = [n for n in g.graph.nodes if g.graph.has_edge(n, g.attack)]
        rows.append({"weight_decay": float(weight_decay), "loss": g.loss, "outcome": g.attack,
                     "parents": ";".join(parents), "max_corr_variable": variable, "max_corr": corr,
                     "predcor": g.predcor, "rows": g.rows})
    return pd.DataFrame(rows, columns=GRAPH_SUMMARY_COLUMNS)
