"""One vocabulary: Python's entries, the generated R file, and R's reading of it agree."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.repo import REPO, requires_r
from etio.core import vocabulary as vocab
from etio.core.errors import EtioInputError, check_choice
from etio.core.schema import (
    ATTACKS, ROOT_CANDIDATES, TRACE_COLUMNS, WEIGHT_DECAY_RTOL, centroid_for, features_for, same_weight_decay,
    select_slice, to_r_name,
)


def test_generated_r_vocabulary_is_current():
    shipped = (REPO / "r" / "vocabulary.csv").read_text()
    assert shipped == vocab.r_vocabulary_text(), \
        "r/vocabulary.csv is stale: regenerate it with `python -m etio.core.vocabulary`"


def test_every_entry_is_a_trace_column_named_once():
    columns = [e.column for e in (*vocab.VARIABLES, *vocab.ATTACKS_VOCABULARY)]
    assert len(columns) == len(set(columns))
    from etio.core.schema import ROBUST_ATTACK_COLUMNS, ROBUST_TRACE_COLUMNS

    # the authors' 53 columns, and the robust study's (appended to a robust store's table)
    assert set(columns) <= set(TRACE_COLUMNS + ROBUST_TRACE_COLUMNS + ROBUST_ATTACK_COLUMNS)
    assert len({a.stage for a in vocab.ATTACKS_VOCABULARY}) == len(vocab.ATTACKS_VOCABULARY)
    assert len({a.symbol for a in vocab.ATTACKS_VOCABULARY}) == len(vocab.ATTACKS_VOCABULARY)
    # A reader never sees two nodes of one graph under one name.
    for attack in ATTACKS:
        shown = [vocab.display(n) for n in [*features_for(attack, weight_decay_fixed=False), attack]]
        assert len(shown) == len(set(shown)), attack


def test_names_the_paper_uses():
    assert vocab.symbol("Oak17Acc") == "ShadowAcc"
    assert vocab.symbol("TrainBias2") == "TrainBias"
    assert vocab.symbol("CentroidDistance.sorted_3.") == "CentroidDist"        # R spelling accepted
    assert vocab.display("CentroidDistance(sorted_3)") == "CentroidDist (top-3)"
    assert vocab.entry("Top3MLLeakLAcc").r_name == "Top3MLLeakLAcc"
    assert vocab.entry("Scheduler?").r_name == "Scheduler."
    assert centroid_for("MemguardAcc") == "CentroidDistance(sorted_3)"
    assert centroid_for("Oak17Acc") == "CentroidDistance(origin)"
    assert vocab.attack_of_stage("oak17").column == "Oak17Acc"


def test_one_message_for_an_unknown_choice():
    with pytest.raises(EtioInputError, match=r"^unknown attack 'Shadow'; known attacks: MLLeakAcc, MLLeakLAcc, "):
        vocab.check_attack("Shadow")
    with pytest.raises(EtioInputError, match=r"^x.csv: unknown loss 'hinge'; known losses: ce, mse$"):
        check_choice("loss", "hinge", ["ce", "mse"], plural="losses", where="x.csv")
    with pytest.raises(EtioInputError, match=r"known keys: a$"):
        check_choice("key", "b", ["a"])
    with pytest.raises(EtioInputError, match=r"known strategies: a$"):
        check_choice("strategy", "b", ["a"])


def test_one_slice_selector_with_one_tolerance():
    import pandas as pd

    table = pd.DataFrame({"Loss": ["ce", "ce", "mse", "ce"],
                          "WeightDecay": [0.0005, 0.0005 * (1 + WEIGHT_DECAY_RTOL / 2), 0.0005, 0.00051]})
    assert select_slice(table, "ce", 0.0005).index.tolist() == [0, 1]
    assert select_slice(table, None, 0.0005).index.tolist() == [0, 1, 2]
    assert bool(same_weight_decay(0.005, 0.005)) and not bool(same_weight_decay(0.005, 0.0051))


R_DUMP = r"""
source("r/etio.R")
features <- lapply(ETIO_OUTCOMES, function(a) etio_features(a, 5e-4))
names(features) <- ETIO_OUTCOMES
out <- list(attacks = ETIO_ATTACKS, outcomes = ETIO_OUTCOMES, top3 = ETIO_TOP3_ATTACKS, roots = ETIO_ROOT_CANDIDATES,
            features = features, hypotheses = ETIO_HYPOTHESES,
            make_names = stats::setNames(as.list(make.names(ETIO_VOCABULARY$column)), ETIO_VOCABULARY$column),
            r_names = stats::setNames(as.list(ETIO_VOCABULARY$r_name), ETIO_VOCABULARY$column))
q <- function(x) paste0('"', x, '"')
emit <- function(x) {
  if (is.list(x)) paste0("{", paste(q(names(x)), sapply(x, emit), sep = ": ", collapse = ", "), "}")
  else paste0("[", paste(q(x), collapse = ", "), "]")
}
cat(emit(out), "\n")
"""


@requires_r
def test_r_reads_the_same_vocabulary_as_python():
    result = subprocess.run(["Rscript", "--vanilla", "-e", R_DUMP], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    r = json.loads(result.stdout)
    assert r["attacks"] == [to_r_name(a) for a in ATTACKS]
    assert set(r["top3"]) == {to_r_name(a) for a in ATTACKS if centroid_for(a) == "CentroidDistance(sorted_3)"}
    assert r["roots"] == [to_r_name(c) for c in ROOT_CANDIDATES]
    assert r["outcomes"] == [to_r_name(a) for a in vocab.GRAPH_OUTCOMES]        # the attacks, then low-FPR TPRs
    assert r["outcomes"][len(ATTACKS):] == ["ThresholdTPR0.1", "ThresholdTPR1", "LiraOfflineTPR0.1", "LiraOfflineTPR1",
                                            "LiraOnlineTPR0.1", "LiraOnlineTPR1", "RmiaTPR0.1", "RmiaTPR1"]
    for attack in vocab.GRAPH_OUTCOMES:
        assert r["features"][attack] == [to_r_name(f) for f in features_for(attack)], attack
        assert r["hypotheses"][attack] == [to_r_name(v) for v in vocab.entry(attack).hypothesis_variables]
    # R's own make.names gives the spelling the vocabulary records.
    for column, spelled in r["make_names"].items():
        assert spelled == r["r_names"][column] == [vocab.entry(column).r_name]
