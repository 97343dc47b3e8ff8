"""Query stage: average treatment effects of each feature on each attack (paper §4.3, §5.3).

The stage follows dowhy's model -> identify -> estimate -> refute sequence for every
(weight decay, loss, attack, treatment):

* **model** - the attack's graph (a DAG over the 13 features and the attack) and the rows of
  the trace table with that weight decay and loss;
* **identify** - dowhy's ``CausalModel(...).identify_effect(proceed_when_unidentifiable=True)``
  picks the backdoor adjustment set; identification needs only the graph, so it runs once per
  (graph, treatment) on a dummy data frame and is reused for every data set;
* **estimate** - dowhy's ``backdoor.linear_regression`` estimate of the effect of moving the
  treatment from its minimum to its maximum. dowhy spends about a second per call on
  bookkeeping (and a bootstrap of minutes when confidence intervals are requested), so the
  same regression is computed here directly with statsmodels: outcome ~ 1 + T + backdoor set +
  T x effect modifiers, the effect modifiers being dowhy's own choice from the graph. The
  equality with dowhy's ``estimate_effect`` is asserted in the tests;
* **refute** (optional) - random common cause, data subset (80 %) and placebo treatment,
  10 simulations each, with dowhy's significance test of the original estimate against the
  simulated ones.

A treatment without a directed path to the attack has no causal effect in the graph: its ATE
is 0 with status ``"no causal path"`` and p-value NaN (the authors' CSVs write p = 0 there).
"""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.core.errors import EtioInputError
from etio.causal.graphs import check_acyclic, consistent_extension, read_bnlearn_dot, undirected_arcs
from etio.core.schema import (
    LOSSES, TableSchema, check_attack, check_loss, check_trace_columns, select_slice, slice_mask,
    treatments_for,
)

STATUS_ESTIMATED = "estimated"
STATUS_NO_PATH = "no causal path"

#: The refuters run with ``refuters=True``: column prefix -> description.
REFUTERS = {
    "random_common_cause": "an independent N(0,1) variable added to the backdoor set",
    "data_subset": "the estimate on a random 80 % subset of the rows",
    "placebo_treatment": "the treatment column replaced by a permutation of itself",
}
REFUTER_SIMULATIONS = 10
SUBSET_FRACTION = 0.8
CONFIDENCE_LEVEL = 0.95

#: One row per (loss, weight decay, attack, treatment) query.
ATE_SCHEMA = TableSchema(
    name="ATE table",
    required={
        "loss": "str", "weight_decay": "float", "attack": "str", "feature": "str",
        "ate": "float", "p_value": "float", "ci_low": "float", "ci_high": "float",
        "status": "str", "backdoor_set": "str",
    },
    optional={
        "n_rows": "int",
        **{f"{name}_{part}": "float" for name in REFUTERS for part in ("new_effect", "p_value")},
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
        raise EtioInputError(f"graphs directory {graphs_dir} does not exist")
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
    missing = [n for n in [attack] + treatments_for(attack) if n not in graph]
    if missing:
        raise EtioInputError(f"{path}: the graph lacks node(s) {', '.join(missing)} of attack {attack}")
    return graph


def read_graphs(graphs_dir: Path, losses: Iterable[str] = LOSSES) -> dict[tuple[str, str], nx.DiGraph]:
    return {key: read_attack_graph(path, key[1]) for key, path in graph_files(graphs_dir).items() if key[0] in losses}


def query_slice(traces: pd.DataFrame, weight_decay: float, loss: str, attack: str, nodes: Iterable[str]) -> pd.DataFrame:
    """The rows and columns one attack's queries use (authors' ``answer_queries`` preparation).

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
    data = traces[mask][nodes].copy()
    data = data.apply(pd.to_numeric, errors="raise").astype(float)
    complete = data.dropna()
    if len(complete) < len(data):
        warnings.warn(f"{loss}-{attack} at weight decay {weight_decay:g}: {len(data) - len(complete)} of {len(data)} "
                      f"rows have no {attack} value and are left out of its queries", stacklevel=2)
    return complete.reset_index(drop=True)


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

    CausalModel wants a data frame; identification reads only the graph, so a one-row dummy
    frame over the graph's nodes stands in.
    """
    from dowhy import CausalModel

    _quiet_dowhy()
    dummy = pd.DataFrame(np.zeros((1, graph.number_of_nodes())), columns=list(graph.nodes))
    model = CausalModel(dummy, treatment=treatment, outcome=outcome, graph=_plain_dag(graph))
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    order = {n: i for i, n in enumerate(graph.nodes)}
    directed = not estimand.no_directed_path
    backdoor = default_adjustment_set(graph, treatment, outcome) if directed else ()
    modifiers = tuple(sorted(model._graph.get_effect_modifiers([treatment], [outcome]), key=order.__getitem__)) if directed else ()
    return Identification(
        treatment=treatment, outcome=outcome, has_directed_path=directed,
        identified=directed and estimand.estimands.get("backdoor") is not None,
        backdoor_set=backdoor, effect_modifiers=modifiers,
    )


def default_adjustment_set(graph: nx.DiGraph, treatment: str, outcome: str) -> tuple[str, ...]:
    """dowhy's default backdoor set, chosen by a rule that does not depend on hash order.

    dowhy's ``identify_effect`` (method "default") collects the empty set, the maximal set and
    every valid set of the smallest size, then keeps one with the fewest instruments and, among
    those, the fewest variables; ties are left to the iteration order of Python sets, so the
    chosen set (and every ATE estimated with it) changed with ``PYTHONHASHSEED``. The same
    candidates and preferences are applied here with ties broken by graph node order: the
    first candidate whose nodes, in graph node order, come first lexicographically. Every node
    is observed, so the maximal set (all eligible non-descendants of the treatment) is always a
    valid backdoor set and the search always ends. Returns the set in graph node order.
    """
    import itertools

    from dowhy.graph import get_instruments

    nodes = list(graph.nodes)
    excluded = nx.descendants(graph, treatment) | {treatment, outcome}
    eligible = [n for n in nodes if n not in excluded
                and not (nx.is_d_separator(graph, {treatment}, {n}, set())
                         and nx.is_d_separator(graph, {outcome}, {n}, set()))]
    candidates: list[tuple[str, ...]] = []
    if is_valid_backdoor_set(graph, treatment, outcome, ()):
        candidates.append(())
    else:
        if is_valid_backdoor_set(graph, treatment, outcome, eligible):
            candidates.append(tuple(eligible))
        for size in range(1, len(eligible) + 1):
            smallest = [c for c in itertools.combinations(eligible, size)
                        if is_valid_backdoor_set(graph, treatment, outcome, c)]
            if smallest:
                candidates += smallest
                break
    if not candidates:                  # unreachable when every node is observed; kept as a guard
        return ()
    instruments = set(get_instruments(graph, [treatment], [outcome]))
    position = {n: i for i, n in enumerate(nodes)}
    return min(candidates, key=lambda c: (len(instruments.intersection(c)), len(c), [position[n] for n in c]))


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
# Estimate (dowhy's backdoor.linear_regression, computed directly)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    ate: float
    p_value: float
    ci_low: float
    ci_high: float


def backdoor_linear_regression(data: pd.DataFrame, ident: Identification,
                               treatment_values: np.ndarray | None = None,
                               extra_confounders: np.ndarray | None = None) -> Estimate:
    """dowhy's ``backdoor.linear_regression`` estimate, control = min(T), treatment = max(T).

    The regression is outcome ~ 1 + T + backdoor set + T x effect modifiers (dowhy's model);
    the ATE is the mean over the rows of the predicted change when T moves from its minimum to
    its maximum, i.e. (max T - min T) * (b_T + sum_k b_{T x M_k} mean(M_k)). The p-value is
    dowhy's: the two-sided t-test of T's coefficient. The confidence interval is the t interval
    of that linear combination of coefficients (dowhy uses the same interval without effect
    modifiers and falls back to a bootstrap with them).
    """
    import statsmodels.api as sm

    t = data[ident.treatment].to_numpy() if treatment_values is None else treatment_values
    y = data[ident.outcome].to_numpy()
    columns = [t[:, None]]
    if ident.backdoor_set:
        columns.append(data[list(ident.backdoor_set)].to_numpy())
    if extra_confounders is not None:
        columns.append(extra_confounders.reshape(len(t), -1))
    modifiers = data[list(ident.effect_modifiers)].to_numpy() if ident.effect_modifiers else np.empty((len(t), 0))
    columns.append(t[:, None] * modifiers)
    features = sm.add_constant(np.concatenate(columns, axis=1), has_constant="add")
    fit = sm.OLS(y, features).fit()
    span = float(t.max() - t.min())
    weights = np.zeros(features.shape[1])
    weights[1] = 1.0
    if modifiers.shape[1]:
        weights[-modifiers.shape[1]:] = modifiers.mean(axis=0)
    ate = span * float(weights @ fit.params)
    se = span * math.sqrt(max(float(weights @ fit.cov_params() @ weights), 0.0))
    from scipy import stats

    half = stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, fit.df_resid) * se
    return Estimate(ate=ate, p_value=float(fit.pvalues[1]), ci_low=ate - half, ci_high=ate + half)


def refute(data: pd.DataFrame, ident: Identification, estimate: Estimate, rng: np.random.Generator) -> dict[str, float]:
    """dowhy's three refuters (10 simulations each) on the direct estimator; the p-value is
    dowhy's test of the original estimate against the simulated estimates."""
    from types import SimpleNamespace

    from dowhy.causal_refuter import test_significance

    n = len(data)
    sims: dict[str, list[float]] = {name: [] for name in REFUTERS}
    for _ in range(REFUTER_SIMULATIONS):
        sims["random_common_cause"].append(
            backdoor_linear_regression(data, ident, extra_confounders=rng.standard_normal(n)).ate)
        subset = data.iloc[np.sort(rng.choice(n, size=int(SUBSET_FRACTION * n), replace=False))].reset_index(drop=True)
        sims["data_subset"].append(backdoor_linear_regression(subset, ident).ate)
        placebo = rng.permutation(data[ident.treatment].to_numpy())
        sims["placebo_treatment"].append(backdoor_linear_regression(data, ident, treatment_values=placebo).ate)
    out = {}
    for name, values in sims.items():
        # The placebo test asks whether the true placebo effect (0) is plausible under the
        # simulated distribution; the sensitivity refuters ask it of the original estimate.
        reference = 0.0 if name == "placebo_treatment" else estimate.ate
        result = test_significance(SimpleNamespace(value=reference), values)
        out[f"{name}_new_effect"] = float(np.mean(values))
        out[f"{name}_p_value"] = float(result["p_value"])
    return out


def estimate_ates(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float,
                  *, refuters: bool = False, seed: int = 0,
                  identifications: dict | None = None) -> pd.DataFrame:
    """All ATEs of one weight decay: for each (loss, attack) graph, each of the 13 treatments.

    ``identifications`` is a cache keyed by (loss, attack, treatment) that callers may share
    across weight decays; identification depends on the graph only.
    """
    if not slice_mask(traces, None, weight_decay).any():
        present = ", ".join(f"{v:g}" for v in sorted(traces["WeightDecay"].dropna().unique()))
        raise EtioInputError(f"the trace table has no rows with weight decay {weight_decay:g} (present: {present})")
    cache = {} if identifications is None else identifications
    rng = np.random.default_rng(seed)
    rows = []
    for (loss, attack), graph in sorted(graphs.items()):
        check_attack(attack)
        data = query_slice(traces, weight_decay, loss, attack, graph.nodes)
        if len(data) < 3:
            raise EtioInputError(
                f"{loss}-{attack}: only {len(data)} complete trace row(s) at weight decay {weight_decay:g}; "
                "a regression needs at least 3")
        for treatment in treatments_for(attack):
            key = (loss, attack, treatment, tuple(graph.edges))
            if key not in cache:
                cache[key] = identify(graph, treatment, attack)
            ident = cache[key]
            row = {"loss": loss, "weight_decay": weight_decay, "attack": attack, "feature": treatment,
                   "backdoor_set": ";".join(ident.backdoor_set), "n_rows": len(data)}
            if not ident.has_directed_path:
                row.update(ate=0.0, p_value=math.nan, ci_low=0.0, ci_high=0.0, status=STATUS_NO_PATH)
                if refuters:
                    row.update({f"{name}_{part}": math.nan for name in REFUTERS for part in ("new_effect", "p_value")})
            else:
                est = backdoor_linear_regression(data, ident)
                row.update(ate=est.ate, p_value=est.p_value, ci_low=est.ci_low, ci_high=est.ci_high,
                           status=STATUS_ESTIMATED)
                if refuters:
                    row.update(refute(data, ident, est, rng))
            rows.append(row)
    columns = ATE_SCHEMA.columns if refuters else list(ATE_SCHEMA.required) + ["n_rows"]
    return ATE_SCHEMA.validate(pd.DataFrame(rows, columns=columns))


def dowhy_estimate(data: pd.DataFrame, graph: nx.DiGraph, treatment: str, outcome: str):
    """dowhy's own ``estimate_effect`` for one query (the reference the direct estimator is
    checked against; about a second per call)."""
    from dowhy import CausalModel

    _quiet_dowhy()
    model = CausalModel(data, treatment=treatment, outcome=outcome, graph=_plain_dag(graph))
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    if estimand.backdoor_variables and "backdoor" in estimand.backdoor_variables:
        # dowhy's own choice among equally good sets follows hash order; use the set of the
        # stated rule (default_adjustment_set), so the reference estimates the same regression.
        estimand.backdoor_variables["backdoor"] = list(default_adjustment_set(graph, treatment, outcome))
    return model.estimate_effect(
        estimand, method_name="backdoor.linear_regression",
        control_value=data[treatment].min(), treatment_value=data[treatment].max(),
        test_significance=True,
    )


def time_ates(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float) -> tuple[int, float]:
    """(number of estimates, seconds) for all ATEs of one weight decay, identification included."""
    start = time.perf_counter()
    table = estimate_ates(traces, graphs, weight_decay)
    return len(table), time.perf_counter() - start
