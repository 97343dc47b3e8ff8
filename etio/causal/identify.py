"""Identification: which adjustment identifies the effect of a treatment on an attack, from the graph alone.

dowhy's ``CausalModel(...).identify_effect(proceed_when_unidentifiable=True)`` picks the backdoor
adjustment set. Identification needs only the graph, so it runs once per (graph, treatment,
outcome) and is reused for every data set, weight decay and table. A treatment without a directed
path to the attack has no effect in the graph. Whether the *rows* then identify the effect is the
next step (:mod:`etio.causal.overlap`), estimation the one after (:mod:`etio.causal.estimators`).
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.core.schema import TableSchema, treatments_for

#: Identification from the graph alone (``etio identify``).
IDENTIFICATION_SCHEMA = TableSchema(
    name="identification table",
    required={
        "loss": "str", "attack": "str", "feature": "str", "has_directed_path": "bool",
        "backdoor_set": "str", "identified": "bool",
    },
)


def quiet_dowhy() -> None:
    """dowhy's log at ERROR and its warnings (its modules only) ignored: every call into dowhy goes through here."""
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"dowhy(\.|$)")


@dataclass(frozen=True)
class Identification:
    """dowhy's answer for one (graph, treatment, outcome)."""

    treatment: str
    outcome: str
    has_directed_path: bool
    identified: bool
    backdoor_set: tuple[str, ...]       # in graph node order
    effect_modifiers: tuple[str, ...]   # dowhy's effect modifiers, in graph node order

    def without(self, drop: Iterable[str]) -> Identification:
        """The same identification with the variables of ``drop`` left out of both sets (a stratum
        in which they are constant)."""
        drop = set(drop)
        return Identification(self.treatment, self.outcome, self.has_directed_path, self.identified,
                              tuple(n for n in self.backdoor_set if n not in drop),
                              tuple(n for n in self.effect_modifiers if n not in drop))


def plain_dag(graph: nx.DiGraph) -> nx.DiGraph:
    """The graph as dowhy takes it: nodes (isolated ones included) and arcs, no attributes."""
    plain = nx.DiGraph()
    plain.add_nodes_from(graph.nodes)
    plain.add_edges_from(graph.edges)
    return plain


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
    plain = nx.DiGraph()            # the graph as dowhy takes it (plain_dag): nodes and arcs only
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

    quiet_dowhy()
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
    plain = plain_dag(graph)
    return _preferred_set(plain, treatment, outcome, _dowhy_backdoor_sets(plain, treatment, outcome))


def _dowhy_backdoor_sets(plain: nx.DiGraph, treatment: str, outcome: str) -> list[frozenset[str]]:
    """The adjustment sets of dowhy's backdoor identification (default method, every node
    observed) on a plain DAG (:func:`plain_dag`)."""
    from dowhy.causal_identifier.auto_identifier import BackdoorAdjustment, identify_backdoor

    quiet_dowhy()
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
