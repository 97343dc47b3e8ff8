"""The prior-work hypotheses H1-H9 as ATE queries Q1-Q9 (paper §4.3, Table 3), and their verdicts.

Each query is a list of (attack, feature) ATE queries and the claim the prior work makes
about them:

* ``is a cause`` - the feature causes the attack (Q1-Q4, Q6, Q8, Q9);
* ``is not a cause`` - the feature does not influence the attack (Q5: the single shadow model
  attack does not depend on how close shadow and target are; Q7: the attack variants that see
  the top-3 predictions or the whole vector do not depend on the target's variance - the paper
  formalises "no difference between the variants" as "TrainVar and TestVar are not causes").

Verdict rule for one ATE query (the causal graph is the primary evidence, the significance
test only qualifies a claimed effect):

========================  ==================  =======================  =====================
claim                     no directed path    path, p <= 0.05          path, p > 0.05
========================  ==================  =======================  =====================
is a cause                x  (refuted)        ✓ (supported)            ◦ (not significant)
is not a cause            ✓ (supported)       x  (refuted)             x  (refuted)
========================  ==================  =======================  =====================

A claim of absence is refuted by the graph itself once it holds a directed path from the
feature to the attack: a non-significant linear estimate does not show that the effect the
graph encodes is absent. A claim of presence needs both the path and a significant estimate.
A query made of several ATE queries is ✓ only if all are ✓ (paper, Table 3 caption), x if any
is x, ◦ otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from etio.core.errors import EtioInputError
from etio.causal.effects import STATUS_NO_PATH
from etio.core.schema import LOSSES, centroid_for

SUPPORTED, REFUTED, NOT_SIGNIFICANT = "✓", "×", "◦"
IS_CAUSE, IS_NOT_CAUSE = "is a cause", "is not a cause"
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class Hypothesis:
    query: str                            # Q1 ... Q9
    statement: str                        # the prior work's hypothesis, in short
    claim: str                            # IS_CAUSE or IS_NOT_CAUSE
    ate_queries: tuple[tuple[str, str], ...]  # (attack, feature) pairs


HYPOTHESES: list[Hypothesis] = [
    Hypothesis("Q1", "the train-to-test accuracy gap causes the shadow model attack", IS_CAUSE,
               (("Oak17Acc", "AccDiff"),)),
    Hypothesis("Q2", "closeness of shadow and target models (variance) causes the shadow model attack", IS_CAUSE,
               (("Oak17Acc", "TrainVar"), ("Oak17Acc", "TestVar"))),
    Hypothesis("Q3", "model complexity causes the shadow model attack", IS_CAUSE,
               (("Oak17Acc", "NumParams"),)),
    Hypothesis("Q4", "the training set size causes the shadow model attack", IS_CAUSE,
               (("Oak17Acc", "TrainSize"),)),
    Hypothesis("Q5", "a single shadow model suffices: closeness does not cause the attack", IS_NOT_CAUSE,
               (("Top3MLLeakAcc", "TrainVar"), ("Top3MLLeakAcc", "TestVar"))),
    Hypothesis("Q6", "overfitting (accuracy gap) causes the single shadow model attack", IS_CAUSE,
               (("Top3MLLeakAcc", "AccDiff"),)),
    Hypothesis("Q7", "top-3 and whole-vector attacks do not differ: variance does not cause them", IS_NOT_CAUSE,
               tuple((attack, feature) for attack in ("MLLeakAcc", "MLLeakLAcc", "Top3MLLeakLAcc")
                     for feature in ("TrainVar", "TestVar"))),
    Hypothesis("Q8", "separation of members and non-members causes the single shadow model attack", IS_CAUSE,
               (("Top3MLLeakAcc", centroid_for("Top3MLLeakAcc")),)),
    Hypothesis("Q9", "the generalization error (loss gap) causes the threshold attack", IS_CAUSE,
               (("ThresholdAcc", "LossDiff"),)),
]

VERDICT_SCHEMA_COLUMNS = ["query", "loss", "claim", "mark", "evidence"]


def mark(claim: str, has_path: bool, p_value: float, alpha: float = SIGNIFICANCE_LEVEL) -> str:
    """Verdict of one ATE query (see the module table)."""
    if claim == IS_CAUSE:
        if not has_path:
            return REFUTED
        return NOT_SIGNIFICANT if not (p_value <= alpha) else SUPPORTED
    if claim == IS_NOT_CAUSE:
        return SUPPORTED if not has_path else REFUTED
    raise ValueError(f"unknown claim {claim!r}")


def combine(marks: list[str]) -> str:
    """A multi-ATE query: ✓ only if all support it, × if any refutes it, ◦ otherwise."""
    if REFUTED in marks:
        return REFUTED
    if NOT_SIGNIFICANT in marks:
        return NOT_SIGNIFICANT
    return SUPPORTED


def lookup(ates: pd.DataFrame, loss: str, attack: str, feature: str) -> pd.Series:
    row = ates[(ates["loss"] == loss) & (ates["attack"] == attack) & (ates["feature"] == feature)]
    if len(row) != 1:
        raise EtioInputError(f"the ATE table has {len(row)} row(s) for {loss} {attack} {feature}; Table 3 needs exactly one")
    return row.iloc[0]


def verdicts(ates: pd.DataFrame, alpha: float = SIGNIFICANCE_LEVEL) -> pd.DataFrame:
    """One row per (query, loss): the combined mark and the evidence it rests on."""
    rows = []
    for hyp in HYPOTHESES:
        for loss in LOSSES:
            marks, evidence = [], []
            for attack, feature in hyp.ate_queries:
                r = lookup(ates, loss, attack, feature)
                has_path = r["status"] != STATUS_NO_PATH
                marks.append(mark(hyp.claim, has_path, r["p_value"], alpha))
                p = "no path" if not has_path else f"p={r['p_value']:.2g}" if not math.isnan(r["p_value"]) else "p=n/a"
                evidence.append(f"{attack}/{feature}: {r['ate']:.4f} ({p}) {marks[-1]}")
            rows.append({"query": hyp.query, "loss": loss, "claim": hyp.claim, "mark": combine(marks),
                         "evidence": "; ".join(evidence)})
    return pd.DataFrame(rows, columns=VERDICT_SCHEMA_COLUMNS)
