"""The verdict rule of Table 3 on every branch, and the verdicts of a hand-built ATE table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from etio.causal import hypotheses as H
from etio.causal.estimators import Status
from etio.core.errors import EtioInputError

NAN = float("nan")


@pytest.mark.parametrize("claim,has_path,p,expected", [
    (H.IS_CAUSE, False, NAN, H.REFUTED),
    (H.IS_CAUSE, True, 0.01, H.SUPPORTED),
    (H.IS_CAUSE, True, 0.05, H.SUPPORTED),            # p <= alpha counts as significant
    (H.IS_CAUSE, True, 0.0500001, H.NOT_SIGNIFICANT),
    (H.IS_CAUSE, True, NAN, H.NOT_SIGNIFICANT),       # no p-value: not shown significant
    (H.IS_NOT_CAUSE, False, NAN, H.SUPPORTED),
    (H.IS_NOT_CAUSE, True, 0.9, H.REFUTED),
    (H.IS_NOT_CAUSE, True, 0.001, H.REFUTED),
])
def test_mark(claim, has_path, p, expected):
    assert H.mark(claim, has_path, p) == expected


def test_mark_with_another_alpha_and_an_unknown_claim():
    assert H.mark(H.IS_CAUSE, True, 0.03, alpha=0.01) == H.NOT_SIGNIFICANT
    assert H.mark(H.IS_CAUSE, True, 0.03, alpha=0.05) == H.SUPPORTED
    with pytest.raises(ValueError, match="unknown claim 'may cause'"):
        H.mark("may cause", True, 0.01)


@pytest.mark.parametrize("marks,expected", [
    ([H.SUPPORTED], H.SUPPORTED), ([H.SUPPORTED, H.SUPPORTED], H.SUPPORTED),
    ([H.SUPPORTED, H.NOT_SIGNIFICANT], H.NOT_SIGNIFICANT), ([H.NOT_SIGNIFICANT, H.REFUTED], H.REFUTED),
    ([H.REFUTED, H.SUPPORTED], H.REFUTED), ([H.NOT_SIGNIFICANT, H.NOT_SIGNIFICANT], H.NOT_SIGNIFICANT),
])
def test_combine(marks, expected):
    assert H.combine(marks) == expected


def test_hypotheses_are_the_papers_queries():
    # Table 3 of the paper: the attack and feature(s) of each query, and Q5, Q7 claim absence.
    assert [h.query for h in H.HYPOTHESES] == [f"Q{i}" for i in range(1, 10)]
    assert [h.claim for h in H.HYPOTHESES].count(H.IS_NOT_CAUSE) == 2
    assert {h.query for h in H.HYPOTHESES if h.claim == H.IS_NOT_CAUSE} == {"Q5", "Q7"}
    assert sum(len(h.ate_queries) for h in H.HYPOTHESES) == 16
    assert H.HYPOTHESES[7].ate_queries == (("Top3MLLeakAcc", "CentroidDistance(sorted_3)"),)
    assert H.HYPOTHESES[8].ate_queries == (("ThresholdAcc", "LossDiff"),)


def _ates(overrides: dict) -> pd.DataFrame:
    """Every query of Table 3 for both losses: significant (p = 0.01, ATE 0.5) unless overridden
    by (loss, attack, feature) -> (status, ate, p)."""
    rows = []
    for hyp in H.HYPOTHESES:
        for attack, feature in hyp.ate_queries:
            for loss in ("ce", "mse"):
                status, ate, p = overrides.get((loss, attack, feature), (Status.ESTIMATED, 0.5, 0.01))
                # The merged ATE schema: the paper estimator's columns (which the verdicts read) and
                # the sound estimator's, here given the same numbers.
                rows.append({"loss": loss, "weight_decay": 0.0005, "attack": attack, "feature": feature,
                             "status": status, "ate_paper": ate, "p_value_paper": p,
                             "ate": ate, "p_value": p, "ci_low": ate, "ci_high": ate, "q_value": p,
                             "backdoor_set": ""})
    return pd.DataFrame(rows)


def test_verdicts_of_a_hand_built_table():
    no_path = (Status.NO_PATH, 0.0, NAN)
    table = H.verdicts(_ates({
        ("ce", "Oak17Acc", "AccDiff"): no_path,                                  # Q1 ce: refuted
        ("mse", "Oak17Acc", "TestVar"): (Status.ESTIMATED, 0.2, 0.3),            # Q2 mse: not significant
        ("ce", "Top3MLLeakAcc", "TrainVar"): no_path,                            # Q5 ce: one of two absent
        ("mse", "Top3MLLeakAcc", "TrainVar"): no_path,                           # Q5 mse: both absent
        ("mse", "Top3MLLeakAcc", "TestVar"): no_path,
        ("ce", "ThresholdAcc", "LossDiff"): (Status.ESTIMATED, 1.4711, NAN),     # Q9 ce: no p-value
    }))
    assert list(table.columns) == H.VERDICT_SCHEMA_COLUMNS and len(table) == 18
    marks = table.set_index(["query", "loss"])["mark"]
    assert marks["Q1", "ce"] == H.REFUTED and marks["Q1", "mse"] == H.SUPPORTED
    assert marks["Q2", "ce"] == H.SUPPORTED and marks["Q2", "mse"] == H.NOT_SIGNIFICANT
    assert marks["Q5", "ce"] == H.REFUTED and marks["Q5", "mse"] == H.SUPPORTED
    assert marks["Q7", "ce"] == H.REFUTED                                        # variance estimated: a cause
    assert marks["Q9", "ce"] == H.NOT_SIGNIFICANT and marks["Q9", "mse"] == H.SUPPORTED
    evidence = table.set_index(["query", "loss"])["evidence"]
    assert evidence["Q1", "ce"] == "Oak17Acc/AccDiff: no path ×"                 # merged: no ATE printed
    assert evidence["Q2", "mse"] == "Oak17Acc/TrainVar: 0.5000 (p=0.01) ✓; Oak17Acc/TestVar: 0.2000 (p=0.3) ◦"
    assert evidence["Q9", "ce"] == "ThresholdAcc/LossDiff: 1.4711 (p=n/a) ◦"
    assert table.set_index(["query", "loss"])["claim"]["Q5", "ce"] == H.IS_NOT_CAUSE
    stricter = H.verdicts(_ates({}), alpha=0.001).set_index(["query", "loss"])["mark"]
    assert stricter["Q1", "ce"] == H.NOT_SIGNIFICANT


def test_lookup_needs_exactly_one_row():
    ates = _ates({})
    assert H.lookup(ates, "ce", "Oak17Acc", "AccDiff")["ate"] == 0.5
    with pytest.raises(EtioInputError) as raised:
        H.lookup(ates, "ce", "Oak17Acc", "Width")
    assert str(raised.value) == "the ATE table has 0 row(s) for ce Oak17Acc Width; Table 3 needs exactly one"
    doubled = pd.concat([ates, ates.iloc[:1]])
    with pytest.raises(EtioInputError, match=r"has 2 row\(s\) for ce Oak17Acc AccDiff"):
        H.lookup(doubled, "ce", "Oak17Acc", "AccDiff")
    assert math.isnan(NAN)


def test_table3_q_values_adjust_the_estimated_cells_that_claim_a_cause():
    """Table 3's q-values: Benjamini-Hochberg over the estimated cells of the queries that claim
    a cause (both losses: 15 cells here, 14 with p = 0.01 and one with 0.04); cells without a
    path and the cells of Q5 and Q7 (which claim absence) get none."""
    ates = _ates({("ce", "Oak17Acc", "AccDiff"): (Status.NO_PATH, 0.0, NAN),
                  ("ce", "Oak17Acc", "NumParams"): (Status.ESTIMATED, 0.5, 0.04)})
    cells = H.table3_cells(ates)
    assert list(cells.columns) == [*ates.columns, "query", "claim", "q_value_table3"]
    q = cells.set_index(["query", "loss", "attack", "feature"])["q_value_table3"]
    # by hand: the 0.04 is ranked 15th of 15 (q = 0.04 x 15/15); the fourteen 0.01 get 0.01 x 15/14
    assert q["Q3", "ce", "Oak17Acc", "NumParams"] == pytest.approx(0.04)
    assert q["Q2", "mse", "Oak17Acc", "TrainVar"] == pytest.approx(0.01 * 15 / 14)
    assert q["Q1", "mse", "Oak17Acc", "AccDiff"] == pytest.approx(0.01 * 15 / 14)
    assert math.isnan(q["Q1", "ce", "Oak17Acc", "AccDiff"])
    assert q.xs("Q5").isna().all() and q.xs("Q7").isna().all()


def test_evidence_names_identification_and_the_number_each_estimator_rests_on():
    ates = _ates({("ce", "Oak17Acc", "AccDiff"): (Status.NOT_IDENTIFIABLE, 0.3, 0.2)})
    paper = H.verdicts(ates).set_index(["query", "loss"])["evidence"]
    sound = H.verdicts(ates, estimator="sound").set_index(["query", "loss"])["evidence"]
    # the paper's number is shown (it exists) and flagged; the sound estimator shows none
    assert paper["Q1", "ce"] == "Oak17Acc/AccDiff: 0.3000 (p=0.2) ◦ [not identifiable]"
    assert sound["Q1", "ce"] == "Oak17Acc/AccDiff: not identifiable ?"
    # a claimed cause rests on the q-value, a claimed absence on the p-value
    assert sound["Q3", "ce"] == "Oak17Acc/NumParams: 0.5000 [0.5000, 0.5000] (q=0.01) ✓"
    assert sound["Q5", "ce"] == ("Top3MLLeakAcc/TrainVar: 0.5000 [0.5000, 0.5000] (p=0.01) ×; "
                                 "Top3MLLeakAcc/TestVar: 0.5000 [0.5000, 0.5000] (p=0.01) ×")
    with pytest.raises(EtioInputError, match=r"^unknown estimator 'x'; use one of paper, sound"):
        H.verdicts(ates, estimator="x")


def test_verdict_changes_only_give_reasons_for_verdicts_that_change():
    ates = _ates({})
    ates["p_value_rows_independent"] = 0.3          # does not enter either verdict here
    changes = H.verdict_changes(ates)
    assert not changes["changed"].any() and (changes["reasons"] == "").all()
    assert changes["claim"].tolist() == [h.claim for h in H.HYPOTHESES for _ in ("ce", "mse")]
    ates["p_value_rows_independent"] = None          # an object column of None (not through the schema)
    assert len(H.verdict_changes(ates)) == 18


def test_a_graph_that_was_not_learned_makes_its_cells_unknown_not_an_error():
    """A tiny or degenerate study can have an attack column constant over a slice; its graph is
    then not learned and the ATE table has no rows of that (loss, attack). Table 3 must still be
    written: those cells read "graph not learned", without numbers, and their queries are ?."""
    ates = _ates({})
    ates = ates[~((ates["loss"] == "ce") & (ates["attack"] == "Oak17Acc"))]
    assert H.lookup(ates, "ce", "Oak17Acc", "AccDiff") is None
    cells = H.table3_cells(ates).set_index(["query", "loss", "attack", "feature"])
    lost = cells.xs("ce", level="loss").xs("Oak17Acc", level="attack")
    assert (lost["status"] == Status.NOT_LEARNED).all() and len(lost) == 5      # Q1, Q2 (two), Q3, Q4
    assert lost[["ate", "ate_paper", "p_value", "p_value_paper", "q_value_table3"]].isna().all().all()
    # the q-value family loses those 5 of its 16 cells (8 claims of a cause per loss): 11 remain,
    # all with p = 0.01, so each q-value is 0.01
    assert cells["q_value_table3"].dropna().tolist() == pytest.approx([0.01] * 11)
    for estimator in H.ESTIMATORS:
        table = H.verdicts(ates, estimator=estimator).set_index(["query", "loss"])
        assert [table.loc[(q, "ce"), "mark"] for q in ("Q1", "Q2", "Q3", "Q4")] == [H.NOT_IDENTIFIED] * 4
        assert table.loc[("Q1", "mse"), "mark"] == H.SUPPORTED and table.loc[("Q6", "ce"), "mark"] == H.SUPPORTED
        assert table.loc[("Q2", "ce"), "evidence"] == ("Oak17Acc/TrainVar: graph not learned ?; "
                                                         "Oak17Acc/TestVar: graph not learned ?")
    changes = H.verdict_changes(ates).set_index(["query", "loss"])
    assert changes.loc[("Q1", "ce"), "paper"] == changes.loc[("Q1", "ce"), "sound"] == H.NOT_IDENTIFIED
    assert not changes["changed"].any()
    # a graph whose rows lack one of Table 3's features is still a malformed table
    partial = ates[~((ates["loss"] == "mse") & (ates["attack"] == "ThresholdAcc"))]
    partial = pd.concat([partial, ates[(ates["loss"] == "mse") & (ates["attack"] == "ThresholdAcc")].assign(feature="Width")])
    with pytest.raises(EtioInputError, match=r"has 0 row\(s\) for mse ThresholdAcc LossDiff"):
        H.table3_cells(partial)
