"""Our learned graphs against the authors' published graphs, and the run against the paper.

:func:`compare_graphs` counts the structural Hamming distance (SHD) between two graphs over
the same nodes: one for every pair of nodes whose connection differs - an arc present in one
graph only, or present in both with a different orientation (an undirected arc against a
directed one counts as a different orientation). It also lists the attack's parents that one
graph has and the other lacks, the part of the graph the ATEs of Tables 3, 5-8 depend on most.

:func:`agreement_summary` condenses a run's comparison with the paper into the three
numbers a reader looks for first: Table 3 verdicts that agree, the sign agreement of the
ATEs both sides estimate as non-zero, and how close the graphs are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import networkx as nx
import pandas as pd

from etio.core.schema import from_r_name


@dataclass(frozen=True)
class GraphComparison:
    """One (weight decay, loss, attack) graph of ours against the authors' graph."""

    weight_decay: float
    loss: str
    attack: str
    shd: int
    arcs_ours: int
    arcs_authors: int
    missing_arcs: tuple[tuple[str, str], ...]      # in the authors' graph only
    extra_arcs: tuple[tuple[str, str], ...]        # in ours only
    reversed_arcs: tuple[tuple[str, str], ...]     # both, with a different orientation (ours shown)
    missing_parents: tuple[str, ...]               # of the attack: authors' only
    extra_parents: tuple[str, ...]                 # of the attack: ours only
    figure: str | None = None                      # side-by-side drawing, relative to the report

    @property
    def parents_agree(self) -> bool:
        return not self.missing_parents and not self.extra_parents


def _connections(graph: nx.DiGraph) -> dict[frozenset, tuple[str, str] | None]:
    """Each connected pair of nodes (trace names) -> its orientation ``(u, v)``, or None when undirected."""
    out: dict[frozenset, tuple[str, str] | None] = {}
    for u, v, data in graph.edges(data=True):
        undirected = bool(data.get("undirected")) or graph.has_edge(v, u)
        u, v = from_r_name(u), from_r_name(v)
        out[frozenset((u, v))] = None if undirected else (u, v)
    return out


def parents(graph: nx.DiGraph, node: str) -> set[str]:
    """Nodes with an arc into ``node`` (undirected arcs count: they may point either way)."""
    return {p for pair, arc in _connections(graph).items() if node in pair
            for p in pair - {node} if arc is None or arc[1] == node}


def _edge_text(pair: frozenset, arc: tuple[str, str] | None) -> tuple[str, str]:
    return arc if arc is not None else tuple(sorted(pair))


def compare_graphs(ours: nx.DiGraph, authors: nx.DiGraph, attack: str, weight_decay: float = math.nan,
                   loss: str = "") -> GraphComparison:
    """SHD and the attack's missing/extra parents of ``ours`` against ``authors`` (either spelling)."""
    attack = from_r_name(attack)
    a, b = _connections(ours), _connections(authors)
    missing = sorted(_edge_text(p, b[p]) for p in b.keys() - a.keys())
    extra = sorted(_edge_text(p, a[p]) for p in a.keys() - b.keys())
    reversed_ = sorted(_edge_text(p, a[p]) for p in a.keys() & b.keys() if a[p] != b[p])
    ours_parents, authors_parents = parents(ours, attack), parents(authors, attack)
    return GraphComparison(
        weight_decay=weight_decay, loss=loss, attack=attack,
        shd=len(missing) + len(extra) + len(reversed_),
        arcs_ours=len(a), arcs_authors=len(b),
        missing_arcs=tuple(missing), extra_arcs=tuple(extra), reversed_arcs=tuple(reversed_),
        missing_parents=tuple(sorted(authors_parents - ours_parents)),
        extra_parents=tuple(sorted(ours_parents - authors_parents)),
    )


# --------------------------------------------------------------------------------------
# Agreement of a run with the paper
# --------------------------------------------------------------------------------------

@dataclass
class Agreement:
    """The report's first numbers; ``None`` where this run has nothing to compare."""

    verdicts_agreeing: int | None = None
    verdicts_total: int | None = None
    signs_agreeing: int | None = None
    signs_compared: int | None = None
    graphs: list[GraphComparison] = field(default_factory=list)

    @property
    def graphs_with_same_parents(self) -> int:
        return sum(g.parents_agree for g in self.graphs)

    @property
    def median_shd(self) -> float | None:
        if not self.graphs:
            return None
        return float(pd.Series([g.shd for g in self.graphs]).median())


def verdict_agreement(ours: pd.DataFrame | None, paper: pd.DataFrame) -> tuple[int | None, int]:
    """Table 3 verdict cells (query x loss) that agree, of the paper's (18: Q1-Q9 x CE/MSE)."""
    from etio.report.tables import table3_marks

    theirs = table3_marks(paper)
    if ours is None:
        return None, len(theirs)
    mine = table3_marks(ours)
    return sum(mine.get(k) == v for k, v in theirs.items()), len(theirs)


def sign_agreement(ours: pd.DataFrame | None, paper: pd.DataFrame, zero: float = 1e-12) -> tuple[int | None, int | None]:
    """Of the ATEs (attack, feature) non-zero on both sides, how many have the same sign: the paper
    recipe's on both sides, the one estimator the paper's numbers come from."""
    from etio.report.tables import PAPER_ATE

    if ours is None:
        return None, None
    joined = ours[["Attack", "Feature", PAPER_ATE]].merge(paper[["Attack", "Feature", PAPER_ATE]],
                                                          on=["Attack", "Feature"], suffixes=(" ours", " paper"))
    a = pd.to_numeric(joined[f"{PAPER_ATE} ours"], errors="coerce")
    b = pd.to_numeric(joined[f"{PAPER_ATE} paper"], errors="coerce")
    both = (a.abs() > zero) & (b.abs() > zero)
    return int(((a > 0) == (b > 0))[both].sum()), int(both.sum())


def agreement_summary(table3_ours: pd.DataFrame | None, table3_paper: pd.DataFrame,
                      ate_tables: Mapping[str, tuple[pd.DataFrame | None, pd.DataFrame]],
                      graphs: Sequence[GraphComparison]) -> Agreement:
    """Verdicts, signs (over Tables 5-8) and graphs of a run against the paper."""
    agreeing, total = verdict_agreement(table3_ours, table3_paper)
    signs, compared, any_ours = 0, 0, False
    for ours, paper in ate_tables.values():
        s, c = sign_agreement(ours, paper)
        if c is not None:
            any_ours = True
            signs, compared = signs + s, compared + c
    return Agreement(verdicts_agreeing=agreeing, verdicts_total=total,
                     signs_agreeing=signs if any_ours else None, signs_compared=compared if any_ours else None,
                     graphs=list(graphs))
