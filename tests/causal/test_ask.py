"""The query stage's one road (:func:`etio.causal.query.ask`), its Status words, the Estimate every
estimator returns and the registries of estimators and refuters."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd

from etio.causal.estimators import ESTIMATORS, Estimate, Estimator, PaperEstimator, SoundEstimator, Status
from etio.causal.identify import identify
from etio.causal.query import ask
from etio.causal.refuters import REFUTER_COLUMNS, REFUTERS


class Counting(Estimator):
    """An estimator that records the questions it was asked and answers with the mean outcome."""

    name = "counting"

    def __init__(self):
        self.asked = []

    def estimate(self, question):
        self.asked.append(question.identification.treatment)
        return Estimate(Status.ESTIMATED, ate=float(question.data[question.identification.outcome].mean()))


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x = z + rng.normal(size=n)
    return pd.DataFrame({"Z": z, "X": x, "S": x + z, "Y": 2 * x + z + rng.normal(size=n)})


def test_status_words_are_the_tables_words_in_one_order():
    assert [str(s) for s in Status.of_ates()] == ["estimated", "no causal path", "not identifiable"]
    assert str(Status.NOT_LEARNED) == "graph not learned" and Status.NOT_LEARNED not in Status.of_ates()
    # written into a table and read back, a status is its word
    text = pd.DataFrame({"status": list(Status.of_ates())}).to_csv(index=False)
    assert text == "status\nestimated\nno causal path\nnot identifiable\n"
    assert (pd.read_csv(pd.io.common.StringIO(text))["status"] == list(Status.of_ates())).all()


def test_the_registries_name_each_class_once_in_order():
    assert list(ESTIMATORS) == ["paper", "sound"]
    assert [type(e) for e in ESTIMATORS.values()] == [PaperEstimator, SoundEstimator]
    assert list(REFUTERS) == ["placebo_treatment", "random_common_cause", "data_subset"]
    assert all(r.name == key and r.description for key, r in REFUTERS.items())
    assert list(REFUTER_COLUMNS)[:3] == ["placebo_treatment_new_effect", "placebo_treatment_p_value",
                                         "placebo_treatment_result"]
    assert len(REFUTER_COLUMNS) == 9 and REFUTER_COLUMNS["data_subset_result"] == "str"


def test_a_query_without_a_path_asks_no_estimator():
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y")])
    counting = Counting()
    answer = ask(_data(), None, graph, identify(graph, "X", "Y"), estimators={"counting": counting, **ESTIMATORS})
    assert answer.status is Status.NO_PATH and counting.asked == []
    assert answer.question.reason == "no directed path from X to Y in the graph"
    for estimate in answer.estimates.values():
        assert (estimate.status, estimate.ate, estimate.ci_low, estimate.ci_high) == (Status.NO_PATH, 0.0, 0.0, 0.0)
        assert math.isnan(estimate.p_value)


def test_every_registered_estimator_answers_an_identified_query():
    graph = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
    data = _data()
    counting = Counting()
    answer = ask(data, None, graph, identify(graph, "X", "Y"), estimators={**ESTIMATORS, "counting": counting})
    assert answer.status is Status.ESTIMATED and answer.question.reason == "" and counting.asked == ["X"]
    assert answer.estimates["counting"].ate == data["Y"].mean()
    # Y = 2 X + Z + noise, adjusted for Z: the X range times 2, within noise, under both estimators
    span = data["X"].max() - data["X"].min()
    for name in ESTIMATORS:
        estimate = answer.estimates[name]
        assert estimate.status is Status.ESTIMATED
        assert estimate.ci_low < estimate.ate < estimate.ci_high
        assert abs(estimate.ate / span - 2) < 0.2
    assert answer.refutations == {}


def test_a_query_the_rows_do_not_identify_keeps_the_papers_number_and_gives_no_sound_one():
    # S = X + Z exactly and S is a backdoor variable of X: X is fixed by the adjustment set
    graph = nx.DiGraph([("Z", "X"), ("S", "X"), ("Z", "Y"), ("S", "Y"), ("X", "Y")])
    answer = ask(_data(), None, graph, identify(graph, "X", "Y"), refuters=True)
    assert answer.status is Status.NOT_IDENTIFIABLE
    assert answer.question.reason.startswith("X is a deterministic function of Z, S in the adjustment set")
    paper, sound = answer.estimates["paper"], answer.estimates["sound"]
    assert paper.status is Status.NOT_IDENTIFIABLE and not math.isnan(paper.ate) and paper.fit is not None
    assert sound.status is Status.NOT_IDENTIFIABLE and math.isnan(sound.ate) and math.isnan(sound.p_value)
    assert answer.refutations == {}          # nothing identified, nothing to refute


def test_no_module_spells_a_status_word_but_the_enum():
    """Every status is written as a :class:`Status` member: no string constant equal to a status word
    stands anywhere in the package but in the enum's own module."""
    import ast

    from tests.support.repo import REPO

    words = {str(s) for s in Status}
    home = REPO / "etio" / "causal" / "estimators" / "base.py"
    spelled = []
    for path in sorted((REPO / "etio").rglob("*.py")):
        if path == home:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words:
                spelled.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert spelled == []
    assert len(words) == 4      # the enum itself is seen: the check is not vacuous
