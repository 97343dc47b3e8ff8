"""``etio validate``: the query stage against a known structural model, K = 20 draws."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from etio.causal import validation
from etio.causal.estimators import Status
from etio.causal.overlap import fixed_by_identities
from etio.commands.app import app


@pytest.fixture(scope="module")
def validated(tmp_path_factory) -> tuple[Path, dict, pd.DataFrame]:
    out = tmp_path_factory.mktemp("validate") / "run"
    res = CliRunner().invoke(app, ["validate", "--out", str(out), "--draws", "20", "--seed", "0"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, pd.read_csv(out / "validate-cells.csv")


def test_model_respects_the_domain_knowledge():
    graph = validation.true_graph()
    assert nx.is_directed_acyclic_graph(graph) and graph.number_of_nodes() == 14
    assert all(graph.in_degree(r) == 0 for r in validation.ROOTS)
    validation.check_domain_knowledge(graph)     # no blacklisted arc; identities = the whitelist
    rows = validation.simulate(graph, 20, np.random.default_rng(0))
    assert np.allclose(rows["AccDiff"], rows["TrainAcc"] - rows["TestAcc"], atol=0, rtol=0)
    assert np.allclose(rows["TestBias2"], rows["TestLoss"] - rows["TestVar"], rtol=0, atol=1e-15)
    # total effects are sums over paths of products of coefficients
    total = validation.total_effects(graph)
    assert total.loc["TrainAcc", "AccDiff"] == pytest.approx(1 - 0.5)       # direct +1, via TestAcc -0.5
    assert total.loc["TrainBias2", "Oak17Acc"] == 0.0 and total.loc["TestBias2", "Oak17Acc"] == pytest.approx(0.3 * 0.4)


def test_structural_hamming_distance():
    truth = nx.DiGraph([("A", "B"), ("B", "C")])
    assert validation.structural_hamming_distance(truth, truth) == 0
    assert validation.structural_hamming_distance(nx.DiGraph([("B", "A"), ("B", "C"), ("A", "C")]), truth) == 2


@pytest.mark.slow
def test_validate_twenty_draws(validated):
    out, summary, cells = validated
    assert summary["draws"] == 20
    true = summary["true"]
    assert 0.90 <= true["sound_coverage"] <= 0.99
    assert true["non_identifiable_by_identities"] > 0 and true["non_identifiable_flagged_share"] == 1.0
    assert true["flagged_without_identity"] == 0
    assert summary["learned"]["non_identifiable_flagged_share"] == 1.0
    assert summary["learned"]["paper_vs_dowhy_max_abs_difference"] <= 1e-9
    # the paper estimator covers worse (rows of a run are dependent; its test is of T's coefficient)
    assert true["paper_coverage"] < true["sound_coverage"]
    # recomputed from the cells, independently of the summary
    t = cells[(cells["graph"] == "true") & (cells["status"] == Status.ESTIMATED)]
    assert ((t["ci_low"] <= t["truth"]) & (t["truth"] <= t["ci_high"])).mean() == pytest.approx(true["sound_coverage"])
    for _, part in cells.groupby("graph"):
        est = part[part["status"] == Status.ESTIMATED]
        assert ((est["p_value"] < 0.05) == ((est["ci_low"] > 0) | (est["ci_high"] < 0))).all()
        unidentified = part[part["status"] == Status.NOT_IDENTIFIABLE]
        assert unidentified["ate"].isna().all() and unidentified["p_value"].isna().all()
        decided = [fixed_by_identities(f, b.split(";") if isinstance(b, str) else [])
                   for f, b in zip(unidentified["feature"], unidentified["backdoor_set"])]
        assert all(decided)
    assert len(summary["shd"]) == 20 and all(v >= 0 for v in summary["shd"])
    for name in ("estimates-vs-truth.svg", "estimates-vs-truth.png", "provenance.json"):
        assert (out / name).stat().st_size > 0


def test_results_hold_no_timing_or_float_noise(tmp_path):
    # The wall time goes to provenance.json; dowhy's and the paper estimator's difference is written
    # to a fixed number of places (its last bits depend on the BLAS threads); the figure's bytes
    # do not depend on the run.
    from etio.report.figures import validation_figure

    out = tmp_path / "run"
    result = validation.run_validation(out, draws=1, runs=10, replicates=5, draw=validation_figure)
    summary = json.loads((out / "summary.json").read_text())
    assert "seconds" not in summary
    assert json.loads((out / "provenance.json").read_text())["seconds"] == result.seconds >= 0
    differences = pd.read_csv(out / "validate-cells.csv")["dowhy_difference"].dropna()
    assert len(differences) > 0
    assert all(round(d, validation.DIFFERENCE_DECIMALS) == d for d in differences)
    again = tmp_path / "again"
    validation_figure(result.cells, again)
    assert again.with_suffix(".svg").read_bytes() == (out / "estimates-vs-truth.svg").read_bytes()
