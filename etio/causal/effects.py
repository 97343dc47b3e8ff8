"""Query stage: average treatment effects of each feature on each attack (paper §4.3, §5.3).

For every (weight decay, loss, attack, treatment) the stage goes model -> identify -> check
-> estimate -> (refute):

* **model** - the attack's graph (a DAG over the 13 features and the attack) and the rows of
  the trace table with that weight decay and loss;
* **identify** - dowhy's ``CausalModel(...).identify_effect(proceed_when_unidentifiable=True)``
  picks the backdoor adjustment set; identification needs only the graph, so it runs once per
  (graph, treatment) on a dummy data frame and is reused for every data set. A treatment
  without a directed path to the attack has no effect in the graph: status ``no causal path``,
  ATE 0, no p-value (the authors' CSVs write p = 0 there);
* **check** - whether the rows identify the effect at all: when the treatment is a
  deterministic function of its adjustment set (AccDiff given TrainAcc and TestAcc, ...) the
  status is ``not identifiable``, with no number and the defining variables as the reason;
* **estimate** - two estimators, both always computed (:mod:`etio.causal.estimation`):
  ``ate_paper``/``p_value_paper`` are dowhy's own ``estimate_effect`` (the paper's method, its
  p-value tests T's coefficient), ``ate``/``p_value``/``ci_low``/``ci_high`` the sound one (the
  modifiers' main effects in the model, the ATE's own delta-method test, standard errors
  robust to rows sharing a training run), ``q_value`` Benjamini-Hochberg within each loss;
  sensitivity to a hidden confounder as robustness values;
* **refute** (optional) - dowhy's placebo treatment, random common cause and data subset
  refuters on the paper estimate, each with a pass/fail column.

Rows that share a training run are clustered (:data:`RUN_COLUMNS`): the EpochNum snapshots
of one run, and also the runs with and without the learning-rate schedule, which start from
the same initial weights, see the same batches of the same training subset and follow the
same trajectory until the schedule's first step (``etio.traces.training``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal import estimation
from etio.causal.estimation import REFUTERS, WEAK_OVERLAP
from etio.causal.graphs import check_acyclic, consistent_extension, read_bnlearn_dot, undirected_arcs
from etio.core.errors import EtioInputError
from etio.core.schema import (
    LOSSES, ROBUST_ATTACK_COLUMNS, ROBUST_TRACE_COLUMNS, TRACE_COLUMNS, TableSchema, check_attack, check_loss,
    check_trace_columns, same_weight_decay, select_slice, slice_mask, treatments_for,
)

#: The variables a graph's nodes may be: the trace columns (the robust study's included).
_TRACE_VARIABLES = frozenset(TRACE_COLUMNS + ROBUST_TRACE_COLUMNS + ROBUST_ATTACK_COLUMNS)

STATUS_ESTIMATED = "estimated"
STATUS_NO_PATH = "no causal path"
STATUS_NOT_IDENTIFIABLE = "not identifiable"
STATUSES = (STATUS_ESTIMATED, STATUS_NO_PATH, STATUS_NOT_IDENTIFIABLE)

#: Trace columns that name a training run: rows equal in these (they differ only in EpochNum
#: or Scheduler?) are one cluster of the sound estimator's standard errors.
RUN_COLUMNS = ["WeightDecay", "Loss", "Dataset", "Arch", "Width", "TrainSize", "lr"]

_REFUTER_COLUMNS = {f"{name}_{part}": ("str" if part == "result" else "float")
                    for name in REFUTERS for part in ("new_effect", "p_value", "result")}

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
        **_REFUTER_COLUMNS,
    },
)

#: Identification from the graph alone (``etio identify``).
IDENTIFICATION_SCHEMA = TableSchema(
    name="identification table",
    required={
        "loss": "str", "attack": "str", "feature": "str", "has_directed_path": "bool",
        "backdoor_set": "str", "identified": "bool",
    },
)


# --------------------------------------------------------------------------------------
# Inputs: trace table and graphs (checked here, once)
# --------------------------------------------------------------------------------------

_GRAPH_FILE = re.compile(r"^(?P<loss>[^-]+)-(?P<attack>[^-]+?)(?:-cv_avg_net_discovery)?\.dot$")


def graph_files(graphs_dir: Path) -> dict[tuple[str, str], Path]:
    """``(loss, attack) -> path`` for every ``<loss>-<attack>.dot`` (or the authors'
    ``<loss>-<attack>-cv_avg_net_discovery.dot``) in ``graphs_dir``."""
    graphs_dir = Path(graphs_dir)
    if not graphs_dir.is_dir():
        what = "is not a directory" if graphs_dir.exists() else "does not exist"
        raise EtioInputError(f"graphs directory {graphs_dir} {what}")
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(graphs_dir.glob("*.dot")):
        m = _GRAPH_FILE.match(path.name)
        if not m:
            raise EtioInputError(f"{path}: graph file names must be <loss>-<attack>.dot")
        loss, attack = m.group("loss"), m.group("attack")
        check_loss(loss, where=str(path))
        check_attack(attack, where=str(path))
        if (loss, attack) in found:
            raise EtioInputError(f"{graphs_dir}: two graphs for {loss}-{attack}: {found[loss, attack].name}, {path.name}")
        found[loss, attack] = path
    if not found:
        raise EtioInputError(f"{graphs_dir}: no <loss>-<attack>.dot graph files")
    return found


def read_attack_graph(path: Path, attack: str) -> nx.DiGraph:
    """An attack's graph with trace (Python) node names, checked to be a DAG holding the
    attack and its 13 treatments."""
    graph = read_bnlearn_dot(path, python_names=True)
    if undirected_arcs(graph):
        # An averaged network may keep an arc undirected (both directions found equally often);
        # the queries use its consistent extension, and say which arcs that oriented.
        graph, oriented = consistent_extension(graph, source=str(path))
        arcs = ", ".join(f"{u} -> {v}" for u, v in oriented)
        warnings.warn(f"{path.name}: undirected arc(s) oriented by the consistent extension: {arcs}", stacklevel=2)
    check_acyclic(graph, source=str(path))
    unknown = [n for n in graph.nodes if n not in _TRACE_VARIABLES]
    if unknown:
        raise EtioInputError(f"{path}: node(s) {', '.join(map(repr, unknown))} are not trace columns; a graph's "
                             f"nodes are variables of the trace table")
    missing = [n for n in [attack] + treatments_for(attack) if n not in graph]
    if missing:
        raise EtioInputError(f"{path}: the graph lacks node(s) {', '.join(missing)} of attack {attack}")
    return graph


def read_graphs(graphs_dir: Path, losses: Iterable[str] = LOSSES) -> dict[tuple[str, str], nx.DiGraph]:
    """Every graph of ``graphs_dir``; each records where it came from and the weight decay it was
    learned at (``graph.graph["weight_decay"]``, from :func:`learned_weight_decay`), which
    :func:`estimate_ates` checks against the rows it queries."""
    learned_at = learned_weight_decay(graphs_dir)
    graphs = {key: read_attack_graph(path, key[1]) for key, path in graph_files(graphs_dir).items() if key[0] in losses}
    for graph in graphs.values():
        graph.graph.update(weight_decay=learned_at, source=str(graphs_dir))
    return graphs


#: The authors' graph directories name their weight decay as C's %f: ``graphs-...-wd_0.000500``.
_WD_SUFFIX = re.compile(r"wd_(\d+\.\d+)$")


def learned_weight_decay(graphs_dir: Path) -> float | None:
    """The weight decay the graphs of ``graphs_dir`` were learned at: ``etio learn``'s
    provenance.json, else the authors' ``wd_%f`` directory suffix; None when neither says."""
    import json

    try:
        record = json.loads((Path(graphs_dir) / "provenance.json").read_text())
        value = record["config"]["weight_decay"] if record.get("stage") == "learn" else None
        if value is not None:
            return float(value)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    match = _WD_SUFFIX.search(Path(graphs_dir).name)
    return float(match.group(1)) if match else None


def check_learned_at(graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float) -> None:
    """Graphs meet trace rows only at the weight decay they were learned at."""
    for (loss, attack), graph in sorted(graphs.items()):
        learned_at = graph.graph.get("weight_decay")
        if learned_at is not None and not same_weight_decay(learned_at, weight_decay):
            raise EtioInputError(f"the {loss}-{attack} graph in {graph.graph.get('source', 'the graphs')} was learned at "
                                 f"weight decay {learned_at:g}, but the rows queried are those at {weight_decay:g}: "
                                 f"give graphs learned at {weight_decay:g} (etio learn --weight-decay {weight_decay:g}), "
                                 f"or query weight decay {learned_at:g}")


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
    if all(c in rows.columns for c in RUN_COLUMNS):
        runs = rows[RUN_COLUMNS].astype(str).agg("|".join, axis=1).to_numpy()
    else:
        runs = np.array([str(i) for i in range(len(rows))])
    return data[complete].reset_index(drop=True), runs[complete]


def query_slice(traces: pd.DataFrame, weight_decay: float, loss: str, attack: str, nodes: Iterable[str]) -> pd.DataFrame:
    """The data of :func:`query_rows` without the run labels."""
    return query_rows(traces, weight_decay, loss, attack, nodes)[0]


# --------------------------------------------------------------------------------------
# Identify (dowhy, graph only)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identification:
    """dowhy's answer for one (graph, treatment, outcome)."""

    treatment: str
    outcome: str
    has_directed_path: bool
    identified: bool
    backdoor_set: tuple[str, ...]       # in graph node order
    effect_modifiers: tuple[str, ...]   # dowhy's effect modifiers, in graph node order


def _plain_dag(graph: nx.DiGraph) -> nx.DiGraph:
    """The graph as dowhy takes it: nodes (isolated ones included) and arcs, no attributes."""
    plain = nx.DiGraph()
    plain.add_nodes_from(graph.nodes)
    plain.add_edges_from(graph.edges)
    return plain


def _quiet_dowhy():
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"dowhy(\.|$)")


def identify(graph: nx.DiGraph, treatment: str, outcome: str) -> Identification:
    """dowhy's identification of the effect of ``treatment`` on ``outcome`` in ``graph``.

    Identification reads the graph only (its nodes in order and its arcs), and dowhy's search
    is the slow part of every ATE table; so each (graph, treatment, outcome) is identified once
    per process, however many tables, weight decays or slices ask for it.
    """
    return _identification_of(tuple(graph.nodes), tuple(graph.edges), treatment, outcome)


@functools.lru_cache(maxsize=4096)
def _identification_of(nodes: tuple[str, ...], arcs: tuple[tuple[str, str], ...],
                       treatment: str, outcome: str) -> Identification:
    plain = nx.DiGraph()            # the graph as dowhy takes it (_plain_dag): nodes and arcs only
    plain.add_nodes_from(nodes)
    plain.add_edges_from(arcs)
    return _identified(plain, treatment, outcome)


def _identified(plain: nx.DiGraph, treatment: str, outcome: str) -> Identification:
    """``identify`` without its memory, on the graph's plain DAG: the steps of dowhy's ``identify_effect`` (its
    ``identify_effect_auto``, non-parametric ATE) that the ATE rests on, called directly.

    First the directed path (none: the effect is zero), then dowhy's backdoor identification
    (``identify_backdoor``, its default method; every node is observed): the effect is
    identified when it finds an adjustment set. ``identify_effect`` goes on to search
    instruments, frontdoor and mediation sets and generalised adjustment sets, which no
    estimator here uses, and which took half its time. The effect modifiers are those of
    dowhy's graph (``CausalGraph.get_effect_modifiers``); CausalModel wants a data frame, and a
    one-row dummy frame over the graph's nodes stands in, since all of this reads only the graph.
    """
    from dowhy import CausalModel
    from dowhy.graph import has_directed_path

    _quiet_dowhy()
    if not has_directed_path(plain, [treatment], [outcome]):
        return Identification(treatment=treatment, outcome=outcome, has_directed_path=False, identified=False,
                              backdoor_set=(), effect_modifiers=())
    found = _dowhy_backdoor_sets(plain, treatment, outcome)
    dummy = pd.DataFrame(np.zeros((1, plain.number_of_nodes())), columns=list(plain.nodes))
    model = CausalModel(dummy, treatment=treatment, outcome=outcome, graph=plain)
    order = {n: i for i, n in enumerate(plain.nodes)}
    modifiers = tuple(sorted(model._graph.get_effect_modifiers([treatment], [outcome]), key=order.__getitem__))
    return Identification(
        treatment=treatment, outcome=outcome, has_directed_path=True, identified=len(found) > 0,
        backdoor_set=_preferred_set(plain, treatment, outcome, found), effect_modifiers=modifiers,
    )


def default_adjustment_set(graph: nx.DiGraph, treatment: str, outcome: str) -> tuple[str, ...]:
    """dowhy's default backdoor set, chosen by a rule that does not depend on hash order.

    dowhy's backdoor identification (``identify_backdoor``, default method) finds the empty set
    when it is valid, and otherwise the maximal set and every valid set of the smallest size;
    ``identify_effect`` then keeps one with the fewest instruments and, among those, the fewest
    variables, leaving ties to the iteration order of Python sets, so the chosen set (and every
    ATE estimated with it) changed with ``PYTHONHASHSEED``. The same candidates, dowhy's own, and
    the same preferences are used here, with ties broken by graph node order: the first
    candidate whose nodes, in graph node order, come first lexicographically. Every node is
    observed, so the maximal set (all eligible non-descendants of the treatment) is always a
    valid backdoor set. Returns the set in graph node order.
    """
    plain = _plain_dag(graph)
    return _preferred_set(plain, treatment, outcome, _dowhy_backdoor_sets(plain, treatment, outcome))


def _dowhy_backdoor_sets(plain: nx.DiGraph, treatment: str, outcome: str) -> list[frozenset[str]]:
    """The adjustment sets of dowhy's backdoor identification (default method, every node
    observed) on a plain DAG (:func:`_plain_dag`)."""
    from dowhy.causal_identifier.auto_identifier import BackdoorAdjustment, identify_backdoor

    _quiet_dowhy()
    found = identify_backdoor(plain, [treatment], [outcome], list(plain.nodes), BackdoorAdjustment.BACKDOOR_DEFAULT)
    return [frozenset(s.get_adjustment_variables()) for s in found]


def _preferred_set(graph: nx.DiGraph, treatment: str, outcome: str,
                   candidates: list[frozenset[str]]) -> tuple[str, ...]:
    """:func:`default_adjustment_set`'s choice among ``candidates``, in graph node order."""
    from dowhy.graph import get_instruments

    if not candidates:                  # unreachable when every node is observed; kept as a guard
        return ()
    position = {n: i for i, n in enumerate(graph.nodes)}
    instruments = set(get_instruments(graph, [treatment], [outcome]))
    ordered = [tuple(sorted(c, key=position.__getitem__)) for c in candidates]
    return min(ordered, key=lambda c: (len(instruments.intersection(c)), len(c), [position[n] for n in c]))


def is_valid_backdoor_set(graph: nx.DiGraph, treatment: str, outcome: str, adjustment: Iterable[str]) -> bool:
    """Pearl's backdoor criterion: no descendant of the treatment, and the set d-separates
    treatment and outcome once the treatment's outgoing arcs are removed."""
    adjustment = set(adjustment)
    if adjustment & nx.descendants(graph, treatment):
        return False
    cut = nx.DiGraph(graph)
    cut.remove_edges_from(list(graph.out_edges(treatment)))
    return nx.is_d_separator(cut, {treatment}, {outcome}, adjustment)


def identify_graphs(graphs: Mapping[tuple[str, str], nx.DiGraph]) -> pd.DataFrame:
    """Identification of every treatment of every attack graph (``etio identify``)."""
    rows = []
    for (loss, attack), graph in sorted(graphs.items()):
        for treatment in treatments_for(attack):
            ident = identify(graph, treatment, attack)
            rows.append({
                "loss": loss, "attack": attack, "feature": treatment,
                "has_directed_path": ident.has_directed_path,
                "backdoor_set": ";".join(ident.backdoor_set), "identified": ident.identified,
            })
    return IDENTIFICATION_SCHEMA.validate(pd.DataFrame(rows, columns=IDENTIFICATION_SCHEMA.columns))


# --------------------------------------------------------------------------------------
# Check and estimate (etio.causal.estimation)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoundAdjustment:
    """The sound estimator's model terms for one query: the backdoor set, and the effect
    modifiers whose main effects (and interactions with T) may enter."""

    modifiers: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()   # (modifier, why)


def sound_adjustment(graph: nx.DiGraph, ident: Identification) -> SoundAdjustment:
    """dowhy's effect modifiers, in graph order, each kept only if the backdoor set enlarged by
    it (and by those kept before it) still satisfies the backdoor criterion."""
    kept: list[str] = []
    left_out = []
    for m in ident.effect_modifiers:
        if is_valid_backdoor_set(graph, ident.treatment, ident.outcome, [*ident.backdoor_set, *kept, m]):
            kept.append(m)
        else:
            left_out.append((m, "adjusting for it would break the backdoor criterion"))
    return SoundAdjustment(tuple(kept), tuple(left_out))


def _positive_modifiers(data: pd.DataFrame, ident: Identification,
                        adjustment: SoundAdjustment) -> tuple[list[str], list[tuple[str, str]]]:
    """The modifiers that keep T free to vary (each added main effect must not fix T)."""
    kept: list[str] = []
    left_out = list(adjustment.left_out)
    for m in adjustment.modifiers:
        check = estimation.overlap(data, ident.treatment, [*ident.backdoor_set, *kept, m])
        if check.identifiable:
            kept.append(m)
        else:
            left_out.append((m, f"with it {ident.treatment} would be a deterministic function of the adjustment set"))
    return kept, left_out


def _empty_estimate() -> dict:
    return {"ate": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan,
            "p_value_rows_independent": math.nan, "robustness_value": math.nan,
            "robustness_value_alpha": math.nan}


def estimate_cell(data: pd.DataFrame, clusters: np.ndarray | None, graph: nx.DiGraph, ident: Identification,
                  *, refuters: bool = False, seed: int = 0, adjustment: SoundAdjustment | None = None) -> dict:
    """Status, both estimates and the diagnostics of one query (one row of the ATE table, less
    its keys)."""
    row: dict = {"backdoor_set": ";".join(ident.backdoor_set), "n_rows": len(data), "reason": "", "flags": "",
                 "effect_modifiers": "", "modifiers_left_out": "", "overlap_r2": math.nan, "vif": math.nan,
                 "n_clusters": len(np.unique(clusters)) if clusters is not None else len(data)}
    if refuters:
        row.update({c: (math.nan if kind == "float" else "") for c, kind in _REFUTER_COLUMNS.items()})
    if not ident.has_directed_path:
        row.update(_empty_estimate())
        row.update(status=STATUS_NO_PATH, ate_paper=0.0, p_value_paper=math.nan, ate=0.0, ci_low=0.0, ci_high=0.0,
                   reason=f"no directed path from {ident.treatment} to {ident.outcome} in the graph")
        return row
    paper = estimation.paper_estimate(
        data, estimation.backdoor_estimand(ident.treatment, ident.outcome, ident.backdoor_set),
        ident.treatment, ident.effect_modifiers)
    row.update(ate_paper=paper.ate, p_value_paper=paper.p_value, paper_half_width=paper.half_width)
    check = estimation.overlap(data, ident.treatment, ident.backdoor_set)
    row["overlap_r2"] = check.r2
    row["vif"] = check.vif
    if not check.identifiable:
        row.update(_empty_estimate())
        row.update(status=STATUS_NOT_IDENTIFIABLE, reason=estimation.not_identifiable_reason(ident.treatment, check.defining))
        return row
    adjustment = adjustment or sound_adjustment(graph, ident)
    modifiers, left_out = _positive_modifiers(data, ident, adjustment)
    sound = estimation.sound_estimate(data, ident.treatment, ident.outcome, ident.backdoor_set, modifiers, clusters)
    final = estimation.overlap(data, ident.treatment, [*ident.backdoor_set, *(m for m in modifiers if m not in ident.backdoor_set)])
    flags = []
    if final.weak:
        flags.append(f"{WEAK_OVERLAP} (VIF {final.vif:.3g})")
    if sound.dropped_columns:
        flags.append("collinear adjustment column(s) left out: " + ", ".join(sound.dropped_columns))
    row.update(
        status=STATUS_ESTIMATED, ate=sound.ate, se=sound.se, ci_low=sound.ci_low, ci_high=sound.ci_high,
        p_value=sound.p_value, p_value_rows_independent=sound.p_value_rows_independent,
        overlap_r2=final.r2, vif=final.vif,
        robustness_value=estimation.robustness_value(sound.t_stat, sound.dof_resid),
        robustness_value_alpha=estimation.robustness_value(sound.t_stat, sound.dof_resid, estimation.SIGNIFICANCE_LEVEL),
        effect_modifiers=";".join(sound.modifiers), flags="; ".join(flags),
        modifiers_left_out="; ".join(f"{m} ({why})" for m, why in left_out),
    )
    if refuters:
        row.update(estimation.paper_refuters(data, paper, ident.treatment, seed))
    return row


def add_q_values(table: pd.DataFrame, by: Iterable[str] = ("loss", "weight_decay")) -> pd.DataFrame:
    """``q_value``: Benjamini-Hochberg over the estimated cells of each group (a loss at one
    weight decay, the family an ATE table is drawn from)."""
    table = table.copy()
    table["q_value"] = math.nan
    estimated = table["status"] == STATUS_ESTIMATED
    for _, index in table[estimated].groupby(list(by), sort=True).groups.items():
        table.loc[index, "q_value"] = estimation.benjamini_hochberg(table.loc[index, "p_value"].to_numpy())
    return table


def estimate_ates(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float,
                  *, refuters: bool = False, seed: int = 0) -> pd.DataFrame:
    """All ATEs of one weight decay: for each (loss, attack) graph, each of the 13 treatments."""
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
    columns = [c for c in ATE_SCHEMA.columns if refuters or c not in _REFUTER_COLUMNS]
    return ATE_SCHEMA.validate(add_q_values(pd.DataFrame(rows))[columns])


def dowhy_estimate(data: pd.DataFrame, graph: nx.DiGraph, treatment: str, outcome: str,
                   backdoor_set: Iterable[str] | None = None):
    """dowhy's ``estimate_effect`` called the ordinary way, through ``CausalModel`` (the
    reference the paper estimator is checked against): effect modifiers from the model's graph,
    the estimand from ``identify_effect``, or for exactly ``backdoor_set`` when given (dowhy's
    identification is then skipped: it is the slow part, and the set is the one under test)."""
    from dowhy import CausalModel

    _quiet_dowhy()
    model = CausalModel(data, treatment=treatment, outcome=outcome, graph=_plain_dag(graph))
    if backdoor_set is None:
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        if estimand.backdoor_variables and "backdoor" in estimand.backdoor_variables:
            # dowhy's own choice among equally good sets follows hash order; use the set of the
            # stated rule (default_adjustment_set), so the reference estimates the same regression.
            estimand.backdoor_variables["backdoor"] = list(default_adjustment_set(graph, treatment, outcome))
    else:
        estimand = estimation.backdoor_estimand(treatment, outcome, list(backdoor_set))
    return model.estimate_effect(
        estimand, method_name="backdoor.linear_regression",
        control_value=data[treatment].min(), treatment_value=data[treatment].max(),
        method_params={"init_params": {"need_conditional_estimates": False}},
    )
