"""The query stage: average treatment effects of each feature on each attack (paper §4.3, §5.3).

Every query, of every table (``etio query``, ``reproduce``'s ATEs, the low-FPR ATEs, the robust
hypotheses), goes model -> identify -> check -> estimate -> (refute) through :func:`ask`:

* **model** - the attack's graph and the rows of the trace table with that weight decay and
  loss (:func:`query_rows`), each labelled with its training run;
* **identify** - dowhy's backdoor adjustment set from the graph (:mod:`etio.causal.identify`);
  a treatment without a directed path to the attack has no effect: status ``no causal path``,
  ATE 0, no p-value (the authors' CSVs write p = 0 there);
* **check** - whether the rows identify the effect at all (:mod:`etio.causal.overlap`): status
  ``not identifiable`` with the defining variables as the reason;
* **estimate** - every estimator of :data:`etio.causal.estimators.ESTIMATORS`: in the ATE table
  ``ate_paper``/``p_value_paper`` (dowhy's own ``estimate_effect``, the paper's method) and
  ``ate``/``p_value``/``ci_low``/``ci_high`` (the sound one), ``q_value`` Benjamini-Hochberg
  within each loss; sensitivity to a hidden confounder as robustness values;
* **refute** (optional) - dowhy's refuters on the paper estimate (:mod:`etio.causal.refuters`).

Rows that share a training run are clustered (:data:`RUN_COLUMNS`): the EpochNum snapshots
of one run, and also the runs with and without the learning-rate schedule, which start from
the same initial weights, see the same batches of the same training subset and follow the
same trajectory until the schedule's first step (``etio.traces.training``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.estimators import ESTIMATORS, Estimate, Estimator, Question, Status
from etio.causal.estimators.inference import benjamini_hochberg
from etio.causal.graphs import check_learned_at
from etio.causal.identify import Identification, identify
from etio.causal.refuters import REFUTER_COLUMNS, refute
from etio.core.errors import EtioInputError
from etio.core.schema import TableSchema, check_attack, check_trace_columns, slice_mask, treatments_for

#: Trace columns that name a training run: rows equal in these (they differ only in EpochNum
#: or Scheduler?) are one cluster of the sound estimator's standard errors.
RUN_COLUMNS = ["WeightDecay", "Loss", "Dataset", "Arch", "Width", "TrainSize", "lr"]

#: One row per (loss, weight decay, attack, treatment) query.
ATE_SCHEMA = TableSchema(
    name="ATE table",
    required={
        "loss": "str", "weight_decay": "float", "attack": "str", "feature": "str",
        "status": "str", "ate_paper": "float", "p_value_paper": "float",
        "ate": "float", "p_value": "float", "ci_low": "float", "ci_high": "float", "q_value": "float",
        "backdoor_set": "str",
    },
    optional={
        "reason": "str", "flags": "str", "se": "float", "p_value_rows_independent": "float",
        "overlap_r2": "float", "vif": "float", "robustness_value": "float", "robustness_value_alpha": "float",
        "effect_modifiers": "str", "modifiers_left_out": "str", "n_rows": "int", "n_clusters": "int",
        **REFUTER_COLUMNS,
    },
)


def query_rows(traces: pd.DataFrame, weight_decay: float, loss: str, attack: str,
               nodes: Iterable[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows and columns one attack's queries use (authors' ``answer_queries`` preparation),
    and each row's training run (:data:`RUN_COLUMNS` joined; the row's index when the trace
    table lacks them).

    Rows of that weight decay and loss (``TrainSize`` is a number since :func:`read_traces`); ``NumParams`` raw
    (not normalised: the ATE is invariant to rescaling a column). The slice passes the trace
    check of :func:`etio.core.schema.check_trace_columns`; only the attack column may miss
    values (an attack not run on some configurations - in the authors' traces ``MemguardAcc``),
    and those rows are dropped with a warning saying how many.
    """
    nodes = list(nodes)
    mask = slice_mask(traces, loss, weight_decay)
    check_trace_columns(traces, nodes, mask, what=f"the {loss}-{attack} slice at weight decay {weight_decay:g}",
                        may_be_missing=[attack])
    rows = traces[mask]
    data = rows[nodes].copy().apply(pd.to_numeric, errors="raise").astype(float)
    complete = data.notna().all(axis=1).to_numpy()
    if not complete.all():
        warnings.warn(f"{loss}-{attack} at weight decay {weight_decay:g}: {int((~complete).sum())} of {len(data)} "
                      f"rows have no {attack} value and are left out of its queries", stacklevel=2)
    return data[complete].reset_index(drop=True), run_labels(rows)[complete]


def run_labels(rows: pd.DataFrame) -> np.ndarray:
    """Each row's training run: :data:`RUN_COLUMNS` joined, or the row's position when the table lacks them."""
    if all(c in rows.columns for c in RUN_COLUMNS):
        return rows[RUN_COLUMNS].astype(str).agg("|".join, axis=1).to_numpy()
    return np.array([str(i) for i in range(len(rows))])


def query_slice(traces: pd.DataFrame, weight_decay: float, loss: str, attack: str, nodes: Iterable[str]) -> pd.DataFrame:
    """The data of :func:`query_rows` without the run labels."""
    return query_rows(traces, weight_decay, loss, attack, nodes)[0]


@dataclass(frozen=True, eq=False)
class Answer:
    """A question and each estimator's estimate (none were asked without a directed path), with
    the refuters' ATE-table columns when they ran."""

    question: Question
    estimates: Mapping[str, Estimate]
    refutations: Mapping[str, float | str] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return self.question.status


def ask(data: pd.DataFrame, clusters: np.ndarray | None, graph: nx.DiGraph, ident: Identification, *,
        estimators: Mapping[str, Estimator] = ESTIMATORS, refuters: bool = False, seed: int = 0) -> Answer:
    """One query, checked, estimated under every estimator of ``estimators`` and, with ``refuters``, refuted
    (on the ``paper`` estimate of an estimated query, the refuters seeded from ``seed``)."""
    question = Question(data, clusters, graph, ident)
    if question.status is Status.NO_PATH:
        return Answer(question, {name: Estimate.no_path() for name in estimators})
    estimates = {name: estimator.estimate(question) for name, estimator in estimators.items()}
    refutations = {}
    if refuters and question.status is Status.ESTIMATED:
        refutations = refute(data, estimates["paper"], ident.treatment, seed)
    return Answer(question, estimates, refutations)


_NO_SOUND_ESTIMATE = {"ate": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan,
                      "p_value_rows_independent": math.nan, "robustness_value": math.nan,
                      "robustness_value_alpha": math.nan}


def estimate_cell(data: pd.DataFrame, clusters: np.ndarray | None, graph: nx.DiGraph, ident: Identification,
                  *, refuters: bool = False, seed: int = 0) -> dict:
    """Status, both estimates and the diagnostics of one query (one row of the ATE table, less its keys)."""
    answer = ask(data, clusters, graph, ident, refuters=refuters, seed=seed)
    question, status = answer.question, answer.status
    row: dict = {"backdoor_set": ";".join(ident.backdoor_set), "n_rows": len(data), "reason": question.reason,
                 "flags": "", "effect_modifiers": "", "modifiers_left_out": "", "overlap_r2": math.nan, "vif": math.nan,
                 "n_clusters": len(np.unique(clusters)) if clusters is not None else len(data), "status": status}
    if refuters:
        row.update({c: (math.nan if kind == "float" else "") for c, kind in REFUTER_COLUMNS.items()})
    paper, sound = answer.estimates["paper"], answer.estimates["sound"]
    if status is Status.NO_PATH:
        row.update(_NO_SOUND_ESTIMATE)
        row.update(ate_paper=paper.ate, p_value_paper=paper.p_value, ate=sound.ate, ci_low=sound.ci_low,
                   ci_high=sound.ci_high)
        return row
    row.update(ate_paper=paper.ate, p_value_paper=paper.p_value, paper_half_width=paper.details["half_width"],
               overlap_r2=question.overlap.r2, vif=question.overlap.vif)
    if status is Status.NOT_IDENTIFIABLE:
        row.update(_NO_SOUND_ESTIMATE)
        return row
    row.update(ate=sound.ate, p_value=sound.p_value, ci_low=sound.ci_low, ci_high=sound.ci_high, **sound.details)
    row.update(answer.refutations)
    return row


def add_q_values(table: pd.DataFrame, by: Iterable[str] = ("loss", "weight_decay")) -> pd.DataFrame:
    """``q_value``: Benjamini-Hochberg over the estimated cells of each group (a loss at one
    weight decay, the family an ATE table is drawn from)."""
    table = table.copy()
    table["q_value"] = math.nan
    estimated = table["status"] == Status.ESTIMATED
    for _, index in table[estimated].groupby(list(by), sort=True).groups.items():
        table.loc[index, "q_value"] = benjamini_hochberg(table.loc[index, "p_value"].to_numpy())
    return table


def estimate_ates(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float,
                  *, refuters: bool = False, seed: int = 0) -> pd.DataFrame:
    """The ATE table of one weight decay: for each (loss, attack) graph, each of the 13 treatments."""
    if not slice_mask(traces, None, weight_decay).any():
        present = ", ".join(f"{v:g}" for v in sorted(traces["WeightDecay"].dropna().unique()))
        raise EtioInputError(f"the trace table has no rows with weight decay {weight_decay:g} (present: {present})")
    check_learned_at(graphs, weight_decay)
    rows = []
    cell = 0
    for (loss, attack), graph in sorted(graphs.items()):
        check_attack(attack)
        data, runs = query_rows(traces, weight_decay, loss, attack, graph.nodes)
        if len(data) < 3:
            raise EtioInputError(
                f"{loss}-{attack}: only {len(data)} complete trace row(s) at weight decay {weight_decay:g}; "
                "a regression needs at least 3")
        for treatment in treatments_for(attack):
            row = {"loss": loss, "weight_decay": weight_decay, "attack": attack, "feature": treatment}
            row.update(estimate_cell(data, runs, graph, identify(graph, treatment, attack),
                                     refuters=refuters, seed=seed + 10 * cell))
            rows.append(row)
            cell += 1
    columns = [c for c in ATE_SCHEMA.columns if refuters or c not in REFUTER_COLUMNS]
    return ATE_SCHEMA.validate(add_q_values(pd.DataFrame(rows))[columns])
