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

Two estimators decide the "p" of the rule (:mod:`etio.causal.estimators`):

* ``paper`` (the faithful reproduction): dowhy's p-value of T's coefficient, ``p_value_paper``,
  on every cell with a path - identifiable or not, as the paper did;
* ``sound``: a cell whose effect the data cannot identify is ``?`` (no test is possible; a
  claim of presence is then neither supported nor refuted, and ``?`` ranks between × and ◦
  when combining); otherwise the Benjamini-Hochberg q-value of the ATE's own clustered test,
  the family being the tested cells of the table (claims of presence that have a path).

:func:`verdict_changes` walks from one to the other one correction at a time - identifiability,
the p-value of the ATE instead of T's coefficient, clustering by training run, multiplicity -
and names the corrections at which a verdict changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from etio.causal.estimators.base import SIGNIFICANCE_LEVEL, Status
from etio.causal.estimators.inference import benjamini_hochberg
from etio.core.errors import EtioInputError
from etio.core.schema import LOSSES, centroid_for

SUPPORTED, REFUTED, NOT_SIGNIFICANT, NOT_IDENTIFIED = "✓", "×", "◦", "?"
ESTIMATORS = ("paper", "sound")
IS_CAUSE, IS_NOT_CAUSE = "is a cause", "is not a cause"


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


def mark(claim: str, has_path: bool, p_value: float, alpha: float = SIGNIFICANCE_LEVEL,
         identifiable: bool = True) -> str:
    """Verdict of one ATE query (see the module table)."""
    if claim == IS_CAUSE:
        if not has_path:
            return REFUTED
        if not identifiable:
            return NOT_IDENTIFIED
        return NOT_SIGNIFICANT if not (p_value <= alpha) else SUPPORTED
    if claim == IS_NOT_CAUSE:
        return SUPPORTED if not has_path else REFUTED
    raise ValueError(f"unknown claim {claim!r}")


def combine(marks: list[str]) -> str:
    """A multi-ATE query: ✓ only if all support it, × if any refutes it, then ? if any is not
    identifiable, ◦ otherwise."""
    for worst in (REFUTED, NOT_IDENTIFIED, NOT_SIGNIFICANT):
        if worst in marks:
            return worst
    return SUPPORTED


def lookup(ates: pd.DataFrame, loss: str, attack: str, feature: str) -> pd.Series | None:
    """The ATE row of one cell; None when the table has no row of that (loss, attack) at all (no
    graph was learned for it). A graph's rows that lack the feature, or repeat it, are an error."""
    graph_rows = ates[(ates["loss"] == loss) & (ates["attack"] == attack)]
    if graph_rows.empty:
        return None
    row = graph_rows[graph_rows["feature"] == feature]
    if len(row) != 1:
        raise EtioInputError(f"the ATE table has {len(row)} row(s) for {loss} {attack} {feature}; Table 3 needs exactly one")
    return row.iloc[0]


def table3_cells(ates: pd.DataFrame) -> pd.DataFrame:
    """The ATE rows Table 3 rests on, one per (loss, query, attack, feature), with
    ``q_value_table3``: Benjamini-Hochberg of ``p_value`` over the tested cells (claims of
    presence with an estimated effect)."""
    rows = []
    for hyp in HYPOTHESES:
        for loss in LOSSES:
            for attack, feature in hyp.ate_queries:
                r = lookup(ates, loss, attack, feature)
                found = r.to_dict() if r is not None else \
                    {"loss": loss, "attack": attack, "feature": feature, "status": Status.NOT_LEARNED}
                rows.append({**found, "query": hyp.query, "claim": hyp.claim})
    # every column of the ATE table, NaN in the cells without a graph
    cells = pd.DataFrame(rows, columns=list(dict.fromkeys([*ates.columns, "query", "claim"]))).reset_index(drop=True)
    tested = (cells["claim"] == IS_CAUSE) & (cells["status"] == Status.ESTIMATED)
    # One test per (loss, attack, feature), however many queries use it.
    unique = cells[tested].drop_duplicates(["loss", "attack", "feature"])
    q = dict(zip(zip(unique["loss"], unique["attack"], unique["feature"]),
                 benjamini_hochberg(unique["p_value"].to_numpy(float))))
    cells["q_value_table3"] = [q.get((l, a, f), math.nan) if t else math.nan
                               for l, a, f, t in zip(cells["loss"], cells["attack"], cells["feature"], tested)]
    return cells


#: The corrections from the paper's verdict to the sound one, in the order they are applied:
#: name -> (which p decides, whether non-identifiable cells count as such).
STEPS = {
    "paper": ("p_value_paper", False),
    Status.NOT_IDENTIFIABLE: ("p_value_paper", True),
    "p of the wrong quantity": ("p_value_rows_independent", True),
    "clustering by training run": ("p_value", True),
    "multiplicity": ("q_value_table3", True),
}


def _cell_mark(cell: pd.Series, step: str, alpha: float) -> str:
    if cell["status"] == Status.NOT_LEARNED:
        return NOT_IDENTIFIED
    column, check_identifiable = STEPS[step]
    has_path = cell["status"] != Status.NO_PATH
    identifiable = not (check_identifiable and cell["status"] == Status.NOT_IDENTIFIABLE)
    p = cell.get(column, math.nan)
    return mark(cell["claim"], has_path, float(p) if p is not None else math.nan, alpha, identifiable)


def _evidence(cell: pd.Series, estimator: str, cell_mark: str) -> str:
    name = f"{cell['attack']}/{cell['feature']}"
    if cell["status"] == Status.NOT_LEARNED:
        return f"{name}: {Status.NOT_LEARNED} {cell_mark}"
    if cell["status"] == Status.NO_PATH:
        return f"{name}: no path {cell_mark}"
    if estimator == "paper":
        p = cell["p_value_paper"]
        text = f"{name}: {cell['ate_paper']:.4f} (p={p:.2g}) {cell_mark}" if not math.isnan(p) else \
            f"{name}: {cell['ate_paper']:.4f} (p=n/a) {cell_mark}"
        return text + (f" [{Status.NOT_IDENTIFIABLE}]" if cell["status"] == Status.NOT_IDENTIFIABLE else "")
    if cell["status"] == Status.NOT_IDENTIFIABLE:
        return f"{name}: {Status.NOT_IDENTIFIABLE} {cell_mark}"
    q = cell["q_value_table3"]
    test = f"q={q:.2g}" if not math.isnan(q) else f"p={cell['p_value']:.2g}"
    return f"{name}: {cell['ate']:.4f} [{cell['ci_low']:.4f}, {cell['ci_high']:.4f}] ({test}) {cell_mark}"


def verdicts(ates: pd.DataFrame, alpha: float = SIGNIFICANCE_LEVEL, estimator: str = "paper") -> pd.DataFrame:
    """One row per (query, loss): the combined mark and the evidence it rests on."""
    if estimator not in ESTIMATORS:
        raise EtioInputError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    step = "paper" if estimator == "paper" else "multiplicity"
    cells = table3_cells(ates)
    rows = []
    for hyp in HYPOTHESES:
        for loss in LOSSES:
            mine = cells[(cells["query"] == hyp.query) & (cells["loss"] == loss)]
            marks = [_cell_mark(c, step, alpha) for _, c in mine.iterrows()]
            evidence = [_evidence(c, estimator, m) for (_, c), m in zip(mine.iterrows(), marks)]
            rows.append({"query": hyp.query, "loss": loss, "claim": hyp.claim, "mark": combine(marks),
                         "evidence": "; ".join(evidence)})
    return pd.DataFrame(rows, columns=VERDICT_SCHEMA_COLUMNS)


CHANGE_COLUMNS = ["query", "loss", "claim", "paper", "sound", "changed", "reasons"]


def verdict_changes(ates: pd.DataFrame, alpha: float = SIGNIFICANCE_LEVEL) -> pd.DataFrame:
    """Both verdicts of every (query, loss) side by side; for a verdict that differs, ``reasons``
    names each correction (:data:`STEPS`) at which the combined verdict changed on the way from
    paper to sound."""
    cells = table3_cells(ates)
    rows = []
    for hyp in HYPOTHESES:
        for loss in LOSSES:
            mine = cells[(cells["query"] == hyp.query) & (cells["loss"] == loss)]
            by_step = {step: combine([_cell_mark(c, step, alpha) for _, c in mine.iterrows()]) for step in STEPS}
            names = list(STEPS)
            changed = by_step["paper"] != by_step["multiplicity"]
            # Only verdicts that end up different get reasons; a flip undone by a later
            # correction (a p-value crossing 0.05 and back) changes no conclusion.
            reasons = [f"{step} ({by_step[prev]} → {by_step[step]})"
                       for prev, step in zip(names, names[1:]) if changed and by_step[prev] != by_step[step]]
            rows.append({"query": hyp.query, "loss": loss, "claim": hyp.claim, "paper": by_step["paper"],
                         "sound": by_step["multiplicity"], "changed": changed,
                         "reasons": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)
