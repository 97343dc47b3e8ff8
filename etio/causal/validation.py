"""Ground truth for the query stage (``etio validate``): learn -> identify -> estimate on trace
tables drawn from a known structural model, against that model's interventional effects.

The model is linear-Gaussian over one attack's 14 variables and keeps the domain knowledge the
learning stage imposes: NumParams and TrainSize are roots, the four whitelisted identities hold
exactly (AccDiff = TrainAcc - TestAcc, LossDiff = TestLoss - TrainLoss, Bias2 = Loss - Var), and
no arc is one the blacklist forbids (checked against ``r/etio.R``'s ``etio_constraints`` on every
run). Rows come as training runs: the configuration knobs are fixed per run, every other
variable's noise has a run component shared by the run's :data:`SNAPSHOTS` rows (its epoch
snapshots and schedule variants) and a row component, so rows of a run are dependent as in real
traces.

Each draw learns the graph (bnlearn's bootstrap averaging through the R layer, as ``etio learn``),
identifies every treatment's adjustment set with dowhy on the learned and on the true graph, and
estimates with both estimators. Reported: the structural Hamming distance of the learned graph
(its consistent extension) to the true one; the share of 95 % intervals that contain the truth
E[Y | do(T = max)] - E[Y | do(T = min)] = (max T - min T) x (total effect of T on Y), for the
sound estimator and for the paper estimator (its interval: its estimate ± the t interval its
test inverts, dowhy's own interval where there are no effect modifiers); the share of effects
the identities make non-identifiable that were flagged ``not identifiable`` (and flags where they
do not); and the largest difference between the paper estimator and dowhy's ``estimate_effect``
called through ``CausalModel``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.estimators import Status
from etio.causal.estimators.reference import dowhy_estimate
from etio.causal.identify import identify, is_valid_backdoor_set
from etio.causal.overlap import IDENTITIES, fixed_by_identities
from etio.causal.query import estimate_cell, query_rows
from etio.core.errors import EtioInputError
from etio.core.schema import centroid_for, from_r_name, to_r_name, treatments_for

ATTACK = "Oak17Acc"
_CENTROID = centroid_for(ATTACK)
#: Rows per training run (two epoch snapshots x with / without the schedule).
SNAPSHOTS = 4
#: Standard deviations of the run and row components of every non-root noise term.
RUN_SD, ROW_SD = 0.7, 0.6

#: The structural arcs (parent, child, coefficient); the identities are added with ±1.
STRUCTURAL_ARCS: tuple[tuple[str, str, float], ...] = (
    ("NumParams", "TrainAcc", 0.6), ("TrainSize", "TrainAcc", -0.4),
    ("NumParams", "TrainLoss", -0.5), ("TrainSize", "TrainLoss", 0.3),
    ("NumParams", "TrainVar", 0.5),
    ("NumParams", "TestVar", 0.4), ("TrainSize", "TestVar", -0.5),
    ("TrainAcc", "TestAcc", 0.5), ("TrainSize", "TestAcc", 0.6),
    ("TrainLoss", "TestLoss", 0.6), ("TrainVar", "TestLoss", 0.4), ("TrainSize", "TestLoss", -0.4),
    ("AccDiff", _CENTROID, 0.6), ("TestVar", _CENTROID, 0.4), ("TestBias2", _CENTROID, 0.3),
    ("AccDiff", ATTACK, 0.5), (_CENTROID, ATTACK, 0.4), ("TestVar", ATTACK, 0.3),
    ("NumParams", ATTACK, 0.3), ("LossDiff", ATTACK, 0.3),
)
IDENTITY_ARCS: tuple[tuple[str, str, float], ...] = tuple(
    (parent, derived, -coefficient)
    for relation in IDENTITIES
    for derived in [next(v for v, c in relation.items() if c == 1.0 and v.endswith(("Diff", "Bias2")))]
    for parent, coefficient in relation.items() if parent != derived
)
ROOTS = ("NumParams", "TrainSize")
NODES = [*treatments_for(ATTACK)[:-1], _CENTROID, ATTACK]


def true_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(NODES)
    for u, v, c in (*STRUCTURAL_ARCS, *IDENTITY_ARCS):
        graph.add_edge(u, v, coefficient=c)
    return graph


def total_effects(graph: nx.DiGraph) -> pd.DataFrame:
    """Total causal effect of every node on every node: (I - B)^-1, B the coefficient matrix."""
    index = {n: i for i, n in enumerate(NODES)}
    b = np.zeros((len(NODES), len(NODES)))
    for u, v, data in graph.edges(data=True):
        b[index[u], index[v]] = data["coefficient"]
    return pd.DataFrame(np.linalg.inv(np.eye(len(NODES)) - b), index=NODES, columns=NODES)


def simulate(graph: nx.DiGraph, runs: int, rng: np.random.Generator) -> pd.DataFrame:
    """A trace-like table of ``runs`` x :data:`SNAPSHOTS` rows (the columns the query stage reads)."""
    n = runs * SNAPSHOTS
    run = np.repeat(np.arange(runs), SNAPSHOTS)
    values: dict[str, np.ndarray] = {
        "NumParams": np.repeat(rng.normal(size=runs), SNAPSHOTS),
        "TrainSize": np.repeat(rng.choice([-1.0, 1.0], size=runs), SNAPSHOTS),
    }
    derived = {v for _, v, _ in IDENTITY_ARCS}
    for node in nx.topological_sort(graph):
        if node in ROOTS:
            continue
        value = sum(data["coefficient"] * values[parent] for parent, _, data in graph.in_edges(node, data=True))
        if node not in derived:
            value = value + RUN_SD * rng.normal(size=runs)[run] + ROW_SD * rng.normal(size=n)
        values[node] = np.asarray(value, dtype=float)
    table = pd.DataFrame({node: values[node] for node in NODES})
    table.insert(0, "WeightDecay", 0.0005)
    table.insert(1, "Loss", "ce")
    table.insert(2, "Dataset", "simulated")
    table.insert(3, "Arch", "scm")
    table.insert(4, "Width", run)
    table.insert(5, "lr", 0.1)
    table.insert(6, "EpochNum", np.tile([400, 500], n // 2))
    return table


def check_domain_knowledge(graph: nx.DiGraph) -> None:
    """The model's arcs against the learning stage's constraints (r/etio.R)."""
    from etio.causal import rbridge

    features = [n for n in NODES if n != ATTACK]
    constraints = rbridge.call("etio_constraints", [to_r_name(f) for f in features], ATTACK)
    banned = {(from_r_name(u), from_r_name(v)) for u, v in zip(constraints["blacklist"]["from"],
                                                                constraints["blacklist"]["to"])}
    bad = sorted(set(graph.edges) & banned)
    if bad:
        raise EtioInputError(f"the validation model has blacklisted arc(s): {bad}")
    whitelist = {(from_r_name(u), from_r_name(v)) for u, v in zip(constraints["whitelist"]["from"],
                                                                   constraints["whitelist"]["to"])}
    if whitelist != {(u, v) for u, v, _ in IDENTITY_ARCS}:
        raise EtioInputError("the validation model's identities differ from the learning stage's whitelist")


def learn(data: pd.DataFrame, replicates: int, seed: int) -> tuple[nx.DiGraph, int]:
    """The averaged network of ``etio learn`` (method boot) and its number of undirected arcs;
    undirected arcs are oriented by the consistent extension, as the queries do."""
    from etio.causal import rbridge
    from etio.causal.graphs import consistent_extension, undirected_arcs

    frame = data[NODES].rename(columns=to_r_name)
    learned = rbridge.call("etio_learn", frame, ATTACK, method="boot", R=int(replicates), seed=int(seed))
    graph = nx.DiGraph()
    graph.add_nodes_from(NODES)
    arcs = {(from_r_name(u), from_r_name(v)) for u, v in zip(learned["arcs"]["from"], learned["arcs"]["to"])}
    graph.add_edges_from((u, v, {"undirected": (v, u) in arcs}) for u, v in sorted(arcs))
    undirected = len(undirected_arcs(graph))
    if undirected:
        graph, _ = consistent_extension(graph, source="validation draw")
    return graph, undirected


def structural_hamming_distance(learned: nx.DiGraph, truth: nx.DiGraph) -> int:
    """Pairs of nodes whose arc differs: missing, extra or reversed (one each)."""
    pairs = {frozenset(e) for e in learned.edges} | {frozenset(e) for e in truth.edges}
    return sum(1 for pair in pairs
               if (tuple(sorted(pair)) in learned.edges) != (tuple(sorted(pair)) in truth.edges)
               or (tuple(sorted(pair))[::-1] in learned.edges) != (tuple(sorted(pair))[::-1] in truth.edges))


@dataclass
class Validation:
    cells: pd.DataFrame     # one row per (draw, graph, treatment)
    summary: dict
    seconds: float = math.nan   # wall time; in provenance.json, not in the results


def _cells_for(draw: int, which: str, graph: nx.DiGraph, truth_graph: nx.DiGraph, data: pd.DataFrame,
               runs: np.ndarray, effects: pd.DataFrame, reference: bool) -> list[dict]:
    rows = []
    for treatment in treatments_for(ATTACK):
        ident = identify(graph, treatment, ATTACK)
        cell = estimate_cell(data, runs, graph, ident)
        span = float(data[treatment].max() - data[treatment].min())
        truth = span * float(effects.loc[treatment, ATTACK])
        half = cell.get("paper_half_width", math.nan)
        row = {
            "draw": draw, "graph": which, "feature": treatment, "status": cell["status"], "truth": truth,
            "backdoor_set": cell["backdoor_set"],
            "valid_in_true_graph": bool(ident.has_directed_path
                                        and is_valid_backdoor_set(truth_graph, treatment, ATTACK, ident.backdoor_set)),
            "fixed_by_identities": bool(ident.has_directed_path
                                        and fixed_by_identities(treatment, ident.backdoor_set)),
            "ate": cell["ate"], "ci_low": cell["ci_low"], "ci_high": cell["ci_high"], "p_value": cell["p_value"],
            "ate_paper": cell["ate_paper"], "p_value_paper": cell["p_value_paper"],
            "ci_low_paper": cell["ate_paper"] - half, "ci_high_paper": cell["ate_paper"] + half,
            "dowhy_difference": math.nan,
        }
        if reference and ident.has_directed_path:
            ref = dowhy_estimate(data[list(graph.nodes)], graph, treatment, ATTACK, ident.backdoor_set)
            # The two fits agree to float precision; the last bits depend on the BLAS threads'
            # summation order, so the difference is written to DIFFERENCE_DECIMALS places.
            row["dowhy_difference"] = round(abs(float(ref.value) - cell["ate_paper"]), DIFFERENCE_DECIMALS)
        rows.append(row)
    return rows


#: Decimal places of the paper estimator's difference from dowhy's own estimate (float noise below).
DIFFERENCE_DECIMALS = 12


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else math.nan


def summarise(cells: pd.DataFrame, shd: list[int], undirected: list[int]) -> dict:
    out: dict = {"draws": int(cells["draw"].nunique()), "cells": int(len(cells)),
                 "shd_mean": float(np.mean(shd)), "shd": [int(v) for v in shd],
                 "undirected_arcs_mean": float(np.mean(undirected))}
    for which in ("true", "learned"):
        part = cells[cells["graph"] == which]
        estimated = part[part["status"] == Status.ESTIMATED]
        with_path = part[part["status"] != Status.NO_PATH]
        covered = (estimated["ci_low"] <= estimated["truth"]) & (estimated["truth"] <= estimated["ci_high"])
        paper_same = (estimated["ci_low_paper"] <= estimated["truth"]) & (estimated["truth"] <= estimated["ci_high_paper"])
        paper_all = (with_path["ci_low_paper"] <= with_path["truth"]) & (with_path["truth"] <= with_path["ci_high_paper"])
        decided = part[part["fixed_by_identities"]]
        flagged = part["status"] == Status.NOT_IDENTIFIABLE
        valid = estimated[estimated["valid_in_true_graph"]]
        covered_valid = (valid["ci_low"] <= valid["truth"]) & (valid["truth"] <= valid["ci_high"])
        out[which] = {
            "estimated_cells": int(len(estimated)),
            "sound_coverage": _share(covered),
            "paper_coverage": _share(paper_same),
            "paper_coverage_all_cells_with_a_path": _share(paper_all),
            "coverage_gap_sound_minus_paper": _share(covered) - _share(paper_same),
            "sound_coverage_valid_adjustment_sets": _share(covered_valid),
            "valid_adjustment_set_share": _share(estimated["valid_in_true_graph"]),
            "non_identifiable_by_identities": int(len(decided)),
            "non_identifiable_flagged_share": _share(decided["status"] == Status.NOT_IDENTIFIABLE),
            "flagged_without_identity": int((flagged & ~part["fixed_by_identities"]).sum()),
            "paper_vs_dowhy_max_abs_difference": float(part["dowhy_difference"].max(skipna=True))
            if part["dowhy_difference"].notna().any() else math.nan,
            "sound_mean_abs_error": float((estimated["ate"] - estimated["truth"]).abs().mean()),
            "paper_mean_abs_error": float((estimated["ate_paper"] - estimated["truth"]).abs().mean()),
        }
    return out


def validate(draws: int = 20, seed: int = 0, runs: int = 75, replicates: int = 50,
             progress=None) -> Validation:
    """``draws`` simulated trace tables of ``runs`` training runs each, learned and queried."""
    if draws < 1 or runs < 10 or replicates < 1:
        raise EtioInputError(f"validate needs draws ≥ 1, runs ≥ 10 and replicates ≥ 1 "
                             f"(got {draws}, {runs}, {replicates})")
    truth = true_graph()
    check_domain_knowledge(truth)
    effects = total_effects(truth)
    rng = np.random.default_rng(seed)
    cells: list[dict] = []
    shd, undirected = [], []
    for draw in range(draws):
        traces = simulate(truth, runs, rng)
        data, run_labels = query_rows(traces, 0.0005, "ce", ATTACK, NODES)
        learned, n_undirected = learn(data, replicates, seed + draw)
        shd.append(structural_hamming_distance(learned, truth))
        undirected.append(n_undirected)
        # dowhy's estimate_effect through CausalModel, the reference for the paper estimator, is
        # recomputed on the learned graphs (a new graph each draw; the true one is always the same).
        for which, graph in (("true", truth), ("learned", learned)):
            cells += _cells_for(draw, which, graph, truth, data, run_labels, effects, reference=which == "learned")
        if progress is not None:
            progress(draw + 1, draws)
    table = pd.DataFrame(cells)
    return Validation(table, summarise(table, shd, undirected))


def run_validation(out: Path, draws: int = 20, seed: int = 0, runs: int = 75, replicates: int = 50,
                   progress=None, draw=None) -> Validation:
    """:func:`validate`, written to ``out`` atomically: ``validate-cells.csv``, ``summary.json``,
    ``provenance.json`` and, when ``draw(cells, stem)`` is given (the report stage's
    :func:`etio.report.figures.validation_figure`), the estimates-vs-truth figure."""
    from etio.core.outputs import check_output_dir, output_dir
    from etio.core.provenance import provenance, write_json

    check_output_dir(Path(out), "validate")   # before the simulation, not after it

    start = time.perf_counter()
    result = validate(draws, seed, runs, replicates, progress)
    result.seconds = round(time.perf_counter() - start, 1)
    with output_dir(Path(out), "validate") as staging:
        result.cells.to_csv(staging / "validate-cells.csv", index=False)
        write_json(staging / "summary.json", result.summary)
        if draw is not None:
            draw(result.cells, staging / "estimates-vs-truth")
        write_json(staging / "provenance.json", provenance(
            "validate", config={"draws": draws, "runs": runs, "rows_per_run": SNAPSHOTS, "replicates": replicates,
                                "attack": ATTACK, "arcs": [list(a) for a in (*STRUCTURAL_ARCS, *IDENTITY_ARCS)]},
            seeds={"numpy": seed, "R set.seed per draw": f"{seed} + draw"}, seconds=result.seconds))
    return result
