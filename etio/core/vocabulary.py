"""The vocabulary of the study: every variable and attack once, with all of its names.

Each entry gives

* ``column``  - the trace column (the authors' ``full-summary.csv`` spelling), used in every
  Python table and CSV written for Python readers;
* ``r_name``  - R's ``make.names`` spelling of the column (``CentroidDistance(origin)`` ->
  ``CentroidDistance.origin.``), used in R and in files written for R users (``.dot``);
* ``symbol``  - the paper's symbol (Table 1, Tables 2-8), the key a paper table is joined on;
* ``display`` - the name a reader sees in graphs, tables of the report and text. It is the
  paper's symbol, qualified only where the paper uses one symbol for two columns (the two
  centroid distances).

R reads the same entries from ``r/vocabulary.csv``, which :func:`write_r_vocabulary` generates
from this module (``python -m etio.core.vocabulary``); a test fails when the file is stale and
another proves that R and Python read the same vocabulary.

Adding a variable or an attack is one line in :data:`VARIABLES` or :data:`ATTACKS_VOCABULARY`
(its column must be a trace column, :data:`etio.core.schema.TRACE_COLUMNS`), followed by
``python -m etio.core.vocabulary`` to regenerate the R file. Every table, graph label, CSV, the
report and R then know it: e.g. ``Attack("RobustAcc", "robust", "RobustAcc", "RobustAcc",
"attack on adversarially trained models", "CentroidDistance(origin)", ("AccDiff",))``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from etio.core.errors import check_choice

_R_TRANSLATION = str.maketrans({"(": ".", ")": ".", "?": "."})


def r_spelling(column: str) -> str:
    """R's ``make.names`` spelling of a trace column name."""
    return column.translate(_R_TRANSLATION)


@dataclass(frozen=True)
class Variable:
    """A non-attack variable of the trace: a configuration knob or a generalization statistic.

    ``node``: ``"base"`` for the nodes every attack's graph has (in graph order), ``"centroid"``
    for the centroid distances (one per attack, see :attr:`Attack.centroid`), ``"root"`` for
    configuration knobs that can enter a graph only as causes, ``""`` for columns never in a graph.
    ``root``: nothing in a graph may cause it (the authors' blacklist).
    """

    column: str
    symbol: str
    display: str
    description: str
    node: str = ""
    root: bool = False

    @property
    def r_name(self) -> str:
        return r_spelling(self.column)


@dataclass(frozen=True)
class Attack:
    """A membership-inference attack: its accuracy column is an outcome node of the graphs.

    ``stage``: the name ``etio attack --attacks`` knows it by. ``centroid``: the centroid-distance
    column its graph uses (the authors' choice). ``hypothesis_variables``: the variables prior
    work names as its causes, the correlation baseline of Table 2. ``table2``: the paper's
    Table 2 has a row for it.
    """

    column: str
    stage: str
    symbol: str
    display: str
    description: str
    centroid: str
    hypothesis_variables: tuple[str, ...]
    table2: bool = True
    study: str = "paper"     # "paper": the CCS paper's attacks; "robust": the robust-models study's

    @property
    def r_name(self) -> str:
        return r_spelling(self.column)


_ORIGIN, _TOP3 = "CentroidDistance(origin)", "CentroidDistance(sorted_3)"

#: Variables: base graph nodes in the authors' graph order, then the centroids, then the roots
#: in the order of the authors' blacklist.
VARIABLES: tuple[Variable, ...] = (
    Variable("TrainAcc", "TrainAcc", "TrainAcc", "accuracy on the training set (members)", node="base"),
    Variable("TestAcc", "TestAcc", "TestAcc", "accuracy on the test set (non-members)", node="base"),
    Variable("AccDiff", "AccDiff", "AccDiff", "train-test accuracy gap", node="base"),
    Variable("TrainLoss", "TrainLoss", "TrainLoss", "loss on the training set", node="base"),
    Variable("TestLoss", "TestLoss", "TestLoss", "loss on the test set", node="base"),
    Variable("LossDiff", "LossDiff", "LossDiff", "test-train loss gap (generalization error)", node="base"),
    Variable("TrainVar", "TrainVar", "TrainVar", "variance of the models' predictions on members", node="base"),
    Variable("TestVar", "TestVar", "TestVar", "variance of the models' predictions on non-members", node="base"),
    Variable("TrainBias2", "TrainBias", "TrainBias", "squared bias on members (loss minus variance)", node="base"),
    Variable("TestBias2", "TestBias", "TestBias", "squared bias on non-members", node="base"),
    Variable("NumParams", "NumParams", "NumParams", "number of model parameters (model complexity)",
             node="base", root=True),
    Variable(_ORIGIN, "CentroidDist", "CentroidDist", "distance between member and non-member centroids of the "
             "prediction vectors", node="centroid"),
    Variable(_TOP3, "CentroidDist", "CentroidDist (top-3)", "centroid distance of the top-3 sorted prediction "
             "vectors", node="centroid"),
    Variable("CentroidDistance(sorted_10)", "CentroidDist", "CentroidDist (top-10)",
             "centroid distance of the top-10 sorted prediction vectors"),
    Variable("WeightDecay", "WeightDecay", "WeightDecay", "L2 weight decay (a node only when it varies)",
             node="root", root=True),
    Variable("TrainSize", "TrainSize", "TrainSize", "number of training points per model", node="root", root=True),
    Variable("Scheduler?", "Scheduler", "Scheduler", "learning-rate scheduler used or not", root=True),
    Variable("EpochNum", "EpochNum", "EpochNum", "training epochs", root=True),
    # Robust models (Song et al.; etio.traces.robust): nodes of a graph whose rows vary ε.
    Variable("AdvEps", "AdvEps", "ε (PGD budget)", "l∞ budget of PGD adversarial training, pixel units",
             node="root", root=True),
    Variable("AdvTrainAcc", "AdvTrainAcc", "AdvTrainAcc", "PGD accuracy on the training set at the model's ε"),
    Variable("AdvTestAcc", "AdvTestAcc", "AdvTestAcc", "PGD accuracy on the test set at the model's ε"),
    Variable("AdvAccDiff", "AdvAccDiff", "AdvAccDiff", "robust gap: AdvTrainAcc − AdvTestAcc"),
)

#: Attacks in the paper's order (Tables 1 and 2).
ATTACKS_VOCABULARY: tuple[Attack, ...] = (
    Attack("MLLeakAcc", "mlleak", "MLLeakAcc", "MLLeakAcc", "ML-Leaks, whole prediction vector", _ORIGIN,
           ("AccDiff", "NumParams", _ORIGIN)),
    Attack("MLLeakLAcc", "mlleak_l", "MLLeakAcc-l", "MLLeakAcc-l", "ML-Leaks with the label, whole vector", _ORIGIN,
           ("AccDiff", "NumParams", _ORIGIN)),
    Attack("Top3MLLeakAcc", "top3", "MLLeakTop3Acc", "MLLeakTop3Acc", "ML-Leaks, top-3 predictions", _TOP3,
           ("AccDiff", "NumParams", _TOP3)),
    Attack("Top3MLLeakLAcc", "top3_l", "MLLeakTop3Acc-l", "MLLeakTop3Acc-l", "ML-Leaks with the label, top-3 "
           "predictions", _TOP3, ("AccDiff", "NumParams", _TOP3)),
    Attack("Oak17Acc", "oak17", "ShadowAcc", "ShadowAcc", "Shokri et al. shadow-model attack", _ORIGIN,
           ("AccDiff", "TrainVar", "TestVar", "NumParams")),
    Attack("ThresholdAcc", "threshold", "ThreshAcc", "ThreshAcc", "loss-threshold attack", _ORIGIN, ("LossDiff",)),
    Attack("MemguardAcc", "memguard", "MemGuardAcc", "MemGuardAcc", "top-3 ML-Leaks against MemGuard-defended "
           "models", _TOP3, ("AccDiff", "NumParams", _TOP3), table2=False),
    # Robust models (Song et al., the excerpt's Table 7; etio.attacks.robust): class-label dependent.
    *(Attack(f"{prefix}Acc", stage, f"{prefix}Acc", paper, f"Song et al.'s {paper} inference", _ORIGIN,
             ("AccDiff", "NumParams", "AdvEps"), table2=False, study="robust")
      for stage, prefix, paper in (
          ("conf_benign", "ConfInferBenign", "confidence-infer (benign)"),
          ("conf_untargeted", "ConfInferUntargeted", "confidence-infer (untargeted)"),
          ("model_benign", "ModelInferBenign", "model-infer (benign)"),
          ("model_untargeted", "ModelInferUntargeted", "model-infer (untargeted)"),
          ("model_targeted", "ModelInferTargeted", "model-infer (targeted)"))),
)

VARIABLE_BY_COLUMN = {v.column: v for v in VARIABLES}


@dataclass(frozen=True)
class Measure:
    """A result of the low-FPR attack stage (``etio attack --attacks lowfpr``; :mod:`etio.attacks.lowfpr`).

    ``method``: the scored attack (``threshold``, ``lira_offline``, ``lira_online``, ``rmia``, or a paper
    attack's stage);
    ``metric``: ``Acc`` (best balanced accuracy over thresholds), ``AUC``, ``TPR0.1`` / ``TPR1`` (TPR at
    0.1 % / 1 % FPR) or ``Eps`` (empirical ε lower bound). None of them is one of the authors' 53 columns;
    a store's trace table appends them once a configuration has low-FPR results. ``study``: ``"robust"``
    for the ROC of the robust study's inference strategies, columns of a robust store's trace table
    (:data:`etio.core.schema.ROBUST_ATTACK_COLUMNS`) rather than low-FPR columns.
    """

    column: str
    method: str
    metric: str
    symbol: str
    display: str
    description: str
    stage: str = "lowfpr"    # the attack (``etio attack --attacks``) whose result holds it
    #: A graph outcome (an attack node of its own causal graphs, :data:`GRAPH_MEASURES`) has the centroid
    #: distance its graph uses and the variables of its correlation baseline, as an :class:`Attack`.
    centroid: str = ""
    hypothesis_variables: tuple[str, ...] = ()
    study: str = "paper"

    @property
    def r_name(self) -> str:
        return r_spelling(self.column)


#: The stage name of the low-FPR attacks (LiRA, RMIA and every ROC metric).
LOWFPR_STAGE = "lowfpr"
_METRICS = (("Acc", "Acc", "balanced accuracy of the best threshold"), ("AUC", "AUC", "area under the ROC curve"),
            ("TPR0.1", "TPR@0.1%", "TPR at 0.1 % FPR"), ("TPR1", "TPR@1%", "TPR at 1 % FPR"),
            ("Eps", "ε", "empirical ε lower bound at δ (Clopper–Pearson)"))
_LOWFPR_METHODS = (("Threshold", "threshold", "Thresh", "loss-threshold attack"),
                   ("LiraOffline", "lira_offline", "LiRA-off", "LiRA offline"),
                   ("LiraOnline", "lira_online", "LiRA-on", "LiRA online"),
                   ("Rmia", "rmia", "RMIA", "RMIA (offline)"))
#: The low-FPR trace columns, method-major: the loss threshold, LiRA and RMIA (attack ``lowfpr``),
#: then the ROC of ML-Leaks, Oak17 and MemGuard's attack (their own attacks). ``ThresholdAcc`` and the paper's
#: accuracies are the paper's columns, so these attacks have no ``Acc`` measure here.
MEASURES: tuple[Measure, ...] = tuple(
    Measure(f"{prefix}{metric}", method, metric, f"{sym}{metric_symbol}", f"{sym} {metric_symbol}",
            f"{what}: {meaning}")
    for prefix, method, sym, what in _LOWFPR_METHODS
    for metric, metric_symbol, meaning in _METRICS
    if not (prefix == "Threshold" and metric == "Acc")) + tuple(
    # the ROC of the paper's attacks that score examples (their points: docs/lowfpr.md)
    Measure(f"{prefix}{metric}", stage, metric, f"{sym}{metric_symbol}", f"{sym} {metric_symbol}",
            f"{what}: {meaning}", stage)
    for prefix, stage, sym, what in (("MLLeak", "mlleak", "MLLeak", "ML-Leaks, whole vector"),
                                     ("MLLeakL", "mlleak_l", "MLLeak-l", "ML-Leaks with the label"),
                                     ("Top3MLLeak", "top3", "MLLeakTop3", "ML-Leaks, top-3"),
                                     ("Top3MLLeakL", "top3_l", "MLLeakTop3-l", "ML-Leaks with the label, top-3"),
                                     ("Oak17", "oak17", "Shadow", "Shokri et al. shadow models"),
                                     ("Memguard", "memguard", "MemGuard", "top-3 ML-Leaks against MemGuard"))
    for metric, metric_symbol, meaning in _METRICS if metric != "Acc") + tuple(
    # the ROC of the robust study's inference strategies on their evaluation sets (etio.attacks.robust)
    Measure(f"{a.column[:-len('Acc')]}{metric}", a.stage, metric, f"{a.symbol[:-len('Acc')]}{metric_symbol}",
            f"{a.display} {metric_symbol}", f"{a.description}: {meaning}", a.stage, study="robust")
    for a in ATTACKS_VOCABULARY if a.study == "robust"
    for metric, metric_symbol, meaning in _METRICS if metric != "Acc")
#: The low-FPR outcomes that are attack nodes of their own graphs (learned per loss x weight decay under the
#: paper's domain knowledge, with Table-2-style predictive power): the TPR at 0.1 % and 1 % FPR of the attacks
#: scored on every point. They threshold the true label's confidence, calibrated per example (LiRA, RMIA) or
#: not (the loss threshold), so their graphs use the loss threshold's centroid distance and correlation baseline.
GRAPH_METRICS = ("TPR0.1", "TPR1")
MEASURES = tuple(replace(m, centroid=_ORIGIN, hypothesis_variables=("LossDiff",))
                 if m.stage == "lowfpr" and m.metric in GRAPH_METRICS else m for m in MEASURES)
GRAPH_MEASURES: list[str] = [m.column for m in MEASURES if m.centroid]
LOWFPR_COLUMNS: list[str] = [m.column for m in MEASURES if m.study == "paper"]
#: The ROC columns of the robust study's inference strategies, strategy-major (AUC, TPR0.1, TPR1, Eps).
ROBUST_ROC_COLUMNS: list[str] = [m.column for m in MEASURES if m.study == "robust"]
MEASURE_BY_COLUMN = {m.column: m for m in MEASURES}
ATTACK_BY_COLUMN = {a.column: a for a in ATTACKS_VOCABULARY}
ATTACK_BY_STAGE = {a.stage: a for a in ATTACKS_VOCABULARY}

#: Attack columns, in the paper's order.
ATTACKS: list[str] = [a.column for a in ATTACKS_VOCABULARY]
#: Every column that can be the attack node of a graph: the attacks, then the low-FPR graph outcomes.
GRAPH_OUTCOMES: list[str] = ATTACKS + GRAPH_MEASURES
#: Stage names of the attacks (``etio attack --attacks``), in the same order.
ATTACK_STAGES: tuple[str, ...] = tuple(a.stage for a in ATTACKS_VOCABULARY)
#: The paper's attacks only (what ``etio attack`` and ``etio reproduce`` run by default).
PAPER_ATTACKS: list[str] = [a.column for a in ATTACKS_VOCABULARY if a.study == "paper"]
PAPER_ATTACK_STAGES: tuple[str, ...] = tuple(a.stage for a in ATTACKS_VOCABULARY if a.study == "paper")


def entry(column: str) -> Variable | Attack | None:
    """The vocabulary entry of a trace column (either spelling), or None."""
    name = _BY_R_NAME.get(column, column)
    return ATTACK_BY_COLUMN.get(name) or VARIABLE_BY_COLUMN.get(name) or MEASURE_BY_COLUMN.get(name)


def symbol(column: str) -> str:
    """The paper's symbol of a column (either spelling); unknown names pass through."""
    found = entry(column)
    return found.symbol if found else column


def display(column: str) -> str:
    """The reader's name of a column (either spelling); unknown names pass through."""
    found = entry(column)
    return found.display if found else column


def check_attack(attack: str, where: str = "") -> str:
    """``attack`` if it is an attack column, else the one "unknown attack" error."""
    return check_choice("attack", attack, ATTACKS, where=where)


def check_outcome(column: str, where: str = "") -> str:
    """``column`` if it can be a graph's attack node (:data:`GRAPH_OUTCOMES`), else the "unknown attack" error
    (naming the attacks)."""
    return column if column in GRAPH_MEASURES else check_attack(column, where=where)


def attack_of_stage(stage: str) -> Attack:
    return ATTACK_BY_STAGE[check_choice("attack", stage, ATTACK_STAGES)]


#: R spelling -> column, for the lookups above (every trace column: etio.core.schema.from_r_name).
_BY_R_NAME = {e.r_name: e.column for e in (*VARIABLES, *ATTACKS_VOCABULARY, *MEASURES)}


# --------------------------------------------------------------------------------------
# The R copy: r/vocabulary.csv
# --------------------------------------------------------------------------------------

R_VOCABULARY_COLUMNS = ["kind", "column", "r_name", "symbol", "display", "node", "root", "stage", "centroid",
                        "hypothesis_variables", "table2"]


def r_vocabulary_text() -> str:
    """The text of ``r/vocabulary.csv``: one row per variable, one per attack, one per low-FPR measure; R spellings
    in ``centroid`` and ``hypothesis_variables`` (``;``-separated)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(R_VOCABULARY_COLUMNS)
    for v in VARIABLES:
        writer.writerow(["variable", v.column, v.r_name, v.symbol, v.display, v.node, str(v.root).upper(),
                         "", "", "", ""])
    for a in ATTACKS_VOCABULARY:
        writer.writerow(["attack", a.column, a.r_name, a.symbol, a.display, "outcome", "FALSE", a.stage,
                         r_spelling(a.centroid), ";".join(r_spelling(h) for h in a.hypothesis_variables),
                         str(a.table2).upper()])
    for m in MEASURES:
        writer.writerow(["measure", m.column, m.r_name, m.symbol, m.display, "outcome" if m.centroid else "",
                         "FALSE", m.stage, r_spelling(m.centroid),
                         ";".join(r_spelling(h) for h in m.hypothesis_variables), "FALSE"])
    return buffer.getvalue()


def r_vocabulary_path() -> Path:
    from etio.core.paths import r_dir

    return r_dir() / "vocabulary.csv"


def write_r_vocabulary(path: Path | None = None) -> Path:
    """Regenerate ``r/vocabulary.csv`` from this module."""
    from etio.core.provenance import atomic_write_text

    path = Path(path) if path else r_vocabulary_path()
    atomic_write_text(path, r_vocabulary_text())
    return path


if __name__ == "__main__":
    print(f"wrote {write_r_vocabulary()}")
