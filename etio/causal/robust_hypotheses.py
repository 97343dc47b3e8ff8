"""The robust-models excerpt's findings (Song et al.) as causal queries R1-R3, in the form of H1-H9.

* R1 - "a larger ε causes a higher MI accuracy" (the excerpt's Table 6): for each inference
  strategy, the ATE of ``AdvEps`` on its accuracy must be positive and significant.
* R2 - "the effect of capacity on MI accuracy grows with ε" (its Figure 3, strategy IB =
  confidence-infer benign): the ATE of ``NumParams`` estimated in the rows of the largest ε
  minus the ATE in the rows of the smallest ε must be positive and significant (stratified on
  the modifier; within a stratum ``AdvEps`` is constant and leaves the adjustment set).
* R3 - "targeted-adversarial inference leaks more than benign" (its Table 7): the inference
  strategy is the treatment, applied by design to every robust configuration (rows with
  ε > 0), so nothing confounds it; the ATE of model-infer (targeted) over model-infer
  (benign) on the accuracy must be positive and significant.

Verdict of one query under one estimator (✓ supported, × refuted, ◦ not significant): no
directed path from the treatment to the attack in the learned graph → ×; an estimate with
p > 0.05 → ◦; otherwise ✓ when the effect (or the difference of effects) is positive, ×
when it is negative. A query over several attacks combines as in Table 3.

Estimators: every query is answered through the query stage's :func:`etio.causal.query.ask`
under each estimator of :data:`etio.causal.estimators.ESTIMATORS` (``paper``, dowhy's backdoor
linear regression and its test of T's coefficient; ``sound``, the same adjustment with the
modifiers' main effects, pruned as in the ATE tables, and the ATE's own test clustered by
training run), in its own columns of :func:`robust_verdicts`. An effect whose treatment its
adjustment set fixes (an exact identity) is not identifiable: no estimator gives a number for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.estimators import ESTIMATORS, Estimate, Estimator, Status
from etio.causal.hypotheses import NOT_SIGNIFICANT, REFUTED, SIGNIFICANCE_LEVEL, SUPPORTED, combine
from etio.causal.identify import Identification, identify
from etio.causal.query import ask, query_rows, run_labels
from etio.core.errors import EtioInputError
from etio.core.schema import LOSSES, ROBUST_ATTACKS

INCREASES = "increases"
GROWS_WITH = "effect grows with"
EXCEEDS = "exceeds"


@dataclass(frozen=True)
class RobustHypothesis:
    query: str
    statement: str
    claim: str                                  # INCREASES, GROWS_WITH or EXCEEDS
    ate_queries: tuple[tuple[str, str], ...]    # (attack, treatment); EXCEEDS: (attack, baseline attack)
    modifier: str | None = None                 # GROWS_WITH: the variable the effect grows with


ROBUST_HYPOTHESES: list[RobustHypothesis] = [
    RobustHypothesis("R1", "a larger PGD budget ε causes a higher MI accuracy", INCREASES,
                     tuple((attack, "AdvEps") for attack in ROBUST_ATTACKS)),
    RobustHypothesis("R2", "the effect of capacity on MI accuracy grows with ε", GROWS_WITH,
                     (("ConfInferBenignAcc", "NumParams"),), modifier="AdvEps"),
    RobustHypothesis("R3", "targeted-adversarial inference leaks more than benign inference", EXCEEDS,
                     (("ModelInferTargetedAcc", "ModelInferBenignAcc"),)),
]

ROBUST_TABLE_KEYS = ["Query", "Hypothesis", "Loss", "Attack", "Treatment"]


def mark_sign(effect: float, p_value: float, has_path: bool, alpha: float = SIGNIFICANCE_LEVEL) -> str:
    if not has_path:
        return REFUTED
    if not (p_value <= alpha):
        return NOT_SIGNIFICANT
    return SUPPORTED if effect > 0 else REFUTED


def _normal_p(diff: float, se: float) -> float:
    from scipy import stats

    if not se > 0:
        return math.nan
    return float(2 * stats.norm.sf(abs(diff) / se))


def _se(est: Estimate) -> float:
    from scipy import stats

    return (est.ci_high - est.ci_low) / (2 * stats.norm.ppf(0.975))


def _number(est: Estimate) -> tuple[float, float]:
    """The effect and p-value of an estimate; none for a query the rows do not identify."""
    return (est.ate, est.p_value) if est.status is Status.ESTIMATED else (math.nan, math.nan)


def _answer(hyp: RobustHypothesis, attack: str, treatment: str, traces: pd.DataFrame, graph: nx.DiGraph | None,
            loss: str, weight_decay: float, estimators: Mapping[str, Estimator]) -> dict[str, dict]:
    """One ATE query of a hypothesis under each estimator: effect, p-value, mark and what it rests on."""
    def each(answer: dict) -> dict[str, dict]:
        return {name: answer for name in estimators}

    if hyp.claim == EXCEEDS:
        rows = traces[(traces["Loss"] == loss) & np.isclose(traces["WeightDecay"].astype(float), weight_decay)
                      & (pd.to_numeric(traces["AdvEps"], errors="coerce") > 0)]
        values = rows[[attack, treatment]].apply(pd.to_numeric, errors="coerce")
        complete = values.notna().all(axis=1).to_numpy()
        pair = values[complete]
        if len(pair) < 3:
            return each({"status": f"only {len(pair)} robust row(s) with both attacks", "mark": NOT_SIGNIFICANT})
        stacked = pd.DataFrame({"Strategy": np.r_[np.ones(len(pair)), np.zeros(len(pair))],
                                "Acc": np.r_[pair[attack].to_numpy(), pair[treatment].to_numpy()]})
        runs = run_labels(rows)[complete]      # both strategies of a row attack the same model
        answer = ask(stacked, np.r_[runs, runs], nx.DiGraph([("Strategy", "Acc")]),
                     Identification("Strategy", "Acc", True, True, (), ()), estimators=estimators)
        out = {}
        for name, est in answer.estimates.items():
            ate, p = _number(est)
            out[name] = {"ATE": ate, "p-value": p, "rows": len(pair), "mark": mark_sign(ate, p, True),
                         "status": "strategy assigned by design (no confounder)"}
        return out
    if graph is None:
        return each({"status": f"no learned graph for {loss}-{attack}", "mark": NOT_SIGNIFICANT})
    if treatment not in graph or (hyp.modifier and hyp.modifier not in graph):
        missing = treatment if treatment not in graph else hyp.modifier
        return each({"status": f"{missing} is not a node of the {loss}-{attack} graph (the rows do not vary it)",
                     "mark": NOT_SIGNIFICANT})
    ident = identify(graph, treatment, attack)
    if not ident.has_directed_path:
        return each({"ATE": 0.0, "status": Status.NO_PATH, "mark": REFUTED})
    data, runs = query_rows(traces, weight_decay, loss, attack, graph.nodes)
    if hyp.claim == INCREASES:
        out = {}
        for name, est in ask(data, runs, graph, ident, estimators=estimators).estimates.items():
            ate, p = _number(est)
            out[name] = {"ATE": ate, "p-value": p, "rows": len(data), "status": est.status,
                         "backdoor": ";".join(ident.backdoor_set), "mark": mark_sign(ate, p, True)}
        return out
    # GROWS_WITH: the effect in the stratum of the largest modifier value minus that of the smallest.
    low, high = data[hyp.modifier].min(), data[hyp.modifier].max()
    stratum = ident.without({hyp.modifier})
    strata = []
    for value in (low, high):
        inside = np.isclose(data[hyp.modifier], value)
        part = data[inside].reset_index(drop=True)
        constant = {c for c in part.columns if part[c].nunique() < 2}
        if treatment in constant or len(part) < 3:
            return each({"status": f"{treatment} does not vary at {hyp.modifier} = {value:g}", "mark": NOT_SIGNIFICANT})
        strata.append(ask(part, runs[inside], graph, stratum.without(constant), estimators=estimators).estimates)
    out = {}
    for name in estimators:
        (ate_low, _), (ate_high, _) = _number(strata[0][name]), _number(strata[1][name])
        diff = ate_high - ate_low
        p = _normal_p(diff, math.hypot(_se(strata[0][name]), _se(strata[1][name])))
        out[name] = {"ATE": diff, "p-value": p, "rows": len(data),
                     "status": f"ATE at {hyp.modifier}={high:g} ({ate_high:.4f}) − at {low:g} ({ate_low:.4f})",
                     "backdoor": ";".join(stratum.backdoor_set), "mark": mark_sign(diff, p, True)}
    return out


def robust_verdicts(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float,
                    estimators: Mapping[str, Estimator] | None = None) -> pd.DataFrame:
    """One row per (query, loss, ATE query): per estimator (default :data:`ESTIMATORS`) the effect, its
    p-value, the mark and the query's combined verdict (``<estimator> Verdict``)."""
    estimators = dict(ESTIMATORS if estimators is None else estimators)
    if "AdvEps" not in traces.columns:
        raise EtioInputError("the trace table has no AdvEps column: it is not from a robust study (grid.adv_eps)")
    losses = [loss for loss in LOSSES if ((traces["Loss"] == loss)
                                          & np.isclose(traces["WeightDecay"].astype(float), weight_decay)).any()]
    if not losses:
        raise EtioInputError(f"the trace table has no rows with weight decay {weight_decay:g}")
    rows = []
    for hyp in ROBUST_HYPOTHESES:
        for loss in losses:
            block = []
            for attack, treatment in hyp.ate_queries:
                row = {"Query": hyp.query, "Hypothesis": hyp.statement, "Loss": loss, "Attack": attack,
                       "Treatment": treatment}
                answers = _answer(hyp, attack, treatment, traces, graphs.get((loss, attack)), loss, weight_decay,
                                  estimators)
                for name, answer in answers.items():
                    row[f"{name} ATE"] = answer.get("ATE", math.nan)
                    row[f"{name} p-value"] = answer.get("p-value", math.nan)
                    row[f"{name} Result"] = answer["mark"]
                    row[f"{name} Evidence"] = answer["status"]
                block.append(row)
            for name in estimators:
                verdict = combine([r[f"{name} Result"] for r in block])
                for r in block:
                    r[f"{name} Verdict"] = verdict
            rows += block
    return pd.DataFrame(rows)
