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

Estimators: :data:`ESTIMATORS` maps a name to ``f(data, identification) -> Estimate`` (ATE,
p-value, confidence interval). It holds the two estimators of the query stage
(:mod:`etio.causal.estimation`): ``paper``, dowhy's backdoor linear regression and its test of
T's coefficient, and ``sound``, the same adjustment with the modifiers' main effects and the
ATE's own test. An effect whose treatment its adjustment set fixes (an exact identity) is not
identifiable: both estimators return no number for it. Every query is answered under each
estimator of the mapping, in its own columns of :func:`robust_verdicts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal import estimation
from etio.causal.effects import Identification, identify, query_slice
from etio.causal.hypotheses import NOT_SIGNIFICANT, REFUTED, SIGNIFICANCE_LEVEL, SUPPORTED, combine
from etio.core.errors import EtioInputError
from etio.core.schema import LOSSES, ROBUST_ATTACKS

INCREASES = "increases"
GROWS_WITH = "effect grows with"
EXCEEDS = "exceeds"

@dataclass(frozen=True)
class Estimate:
    """One estimator's answer: the ATE (control = min T, treatment = max T), its p-value and 95 % CI."""

    ate: float
    p_value: float
    ci_low: float
    ci_high: float


_NOT_IDENTIFIABLE = Estimate(math.nan, math.nan, math.nan, math.nan)


def _identifiable(data: pd.DataFrame, ident: Identification) -> bool:
    return not ident.backdoor_set or estimation.overlap(data, ident.treatment, ident.backdoor_set).identifiable


def paper_estimator(data: pd.DataFrame, ident: Identification) -> Estimate:
    """The paper's estimate: dowhy's estimate_effect (backdoor.linear_regression) and its test."""
    if not _identifiable(data, ident):
        return _NOT_IDENTIFIABLE
    paper = estimation.paper_estimate(
        data, estimation.backdoor_estimand(ident.treatment, ident.outcome, ident.backdoor_set),
        ident.treatment, ident.effect_modifiers)
    return Estimate(paper.ate, paper.p_value, paper.ate - paper.half_width, paper.ate + paper.half_width)


def sound_estimator(data: pd.DataFrame, ident: Identification) -> Estimate:
    """The sound estimate: modifiers' main effects in the model, the ATE's own (delta-method) test."""
    if not _identifiable(data, ident):
        return _NOT_IDENTIFIABLE
    sound = estimation.sound_estimate(data, ident.treatment, ident.outcome, ident.backdoor_set,
                                      ident.effect_modifiers)
    return Estimate(sound.ate, sound.p_value, sound.ci_low, sound.ci_high)


Estimator = Callable[[pd.DataFrame, Identification], Estimate]
#: name -> estimator; every robust query is answered under each of them.
ESTIMATORS: dict[str, Estimator] = {"paper": paper_estimator, "sound": sound_estimator}


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


def _without(ident: Identification, drop: set[str]) -> Identification:
    return Identification(ident.treatment, ident.outcome, ident.has_directed_path, ident.identified,
                          tuple(n for n in ident.backdoor_set if n not in drop),
                          tuple(n for n in ident.effect_modifiers if n not in drop))


def _answer(hyp: RobustHypothesis, attack: str, treatment: str, traces: pd.DataFrame, graph: nx.DiGraph | None,
            loss: str, weight_decay: float, estimator: Estimator) -> dict:
    """One ATE query of a hypothesis: effect, p-value, mark and what it rests on."""
    if hyp.claim == EXCEEDS:
        rows = traces[(traces["Loss"] == loss) & np.isclose(traces["WeightDecay"].astype(float), weight_decay)
                      & (pd.to_numeric(traces["AdvEps"], errors="coerce") > 0)]
        pair = rows[[attack, treatment]].apply(pd.to_numeric, errors="coerce").dropna()
        if len(pair) < 3:
            return {"status": f"only {len(pair)} robust row(s) with both attacks", "mark": NOT_SIGNIFICANT}
        stacked = pd.DataFrame({"Strategy": np.r_[np.ones(len(pair)), np.zeros(len(pair))],
                                "Acc": np.r_[pair[attack].to_numpy(), pair[treatment].to_numpy()]})
        ident = Identification("Strategy", "Acc", True, True, (), ())
        est = estimator(stacked, ident)
        return {"ATE": est.ate, "p-value": est.p_value, "rows": len(pair),
                "status": "strategy assigned by design (no confounder)",
                "mark": mark_sign(est.ate, est.p_value, True)}
    if graph is None:
        return {"status": f"no learned graph for {loss}-{attack}", "mark": NOT_SIGNIFICANT}
    if treatment not in graph or (hyp.modifier and hyp.modifier not in graph):
        missing = treatment if treatment not in graph else hyp.modifier
        return {"status": f"{missing} is not a node of the {loss}-{attack} graph (the rows do not vary it)",
                "mark": NOT_SIGNIFICANT}
    ident = identify(graph, treatment, attack)
    if not ident.has_directed_path:
        return {"ATE": 0.0, "status": "no causal path", "mark": REFUTED}
    data = query_slice(traces, weight_decay, loss, attack, graph.nodes)
    if hyp.claim == INCREASES:
        est = estimator(data, ident)
        return {"ATE": est.ate, "p-value": est.p_value, "rows": len(data), "status": "estimated",
                "backdoor": ";".join(ident.backdoor_set), "mark": mark_sign(est.ate, est.p_value, True)}
    # GROWS_WITH: the effect in the stratum of the largest modifier value minus that of the smallest.
    low, high = data[hyp.modifier].min(), data[hyp.modifier].max()
    stratum = _without(ident, {hyp.modifier})
    estimates = []
    for value in (low, high):
        part = data[np.isclose(data[hyp.modifier], value)].reset_index(drop=True)
        constant = {c for c in part.columns if part[c].nunique() < 2}
        if treatment in constant or len(part) < 3:
            return {"status": f"{treatment} does not vary at {hyp.modifier} = {value:g}", "mark": NOT_SIGNIFICANT}
        estimates.append(estimator(part, _without(stratum, constant)))
    diff = estimates[1].ate - estimates[0].ate
    se = math.hypot(_se(estimates[0]), _se(estimates[1]))
    p = _normal_p(diff, se)
    return {"ATE": diff, "p-value": p, "rows": len(data),
            "status": f"ATE at {hyp.modifier}={high:g} ({estimates[1].ate:.4f}) − at {low:g} ({estimates[0].ate:.4f})",
            "backdoor": ";".join(stratum.backdoor_set), "mark": mark_sign(diff, p, True)}


def robust_verdicts(traces: pd.DataFrame, graphs: Mapping[tuple[str, str], nx.DiGraph], weight_decay: float,
                    estimators: Mapping[str, Estimator] | None = None) -> pd.DataFrame:
    """One row per (query, loss, ATE query): per estimator the effect, its p-value, the mark and the
    query's combined verdict (``<estimator> Verdict``)."""
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
                for name, estimator in estimators.items():
                    answer = _answer(hyp, attack, treatment, traces, graphs.get((loss, attack)), loss, weight_decay,
                                     estimator)
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
