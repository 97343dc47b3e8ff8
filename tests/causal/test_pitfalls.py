"""Pitfalls of §2 on a confounded linear model with known effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etio.causal.pitfalls import estimate_pitfalls, run_pitfalls
from etio.core.schema import read_traces
from tests.support.repo import REPO


def _confounded(n=4000, seed=0):
    """NumParams -> AccDiff -> attack, NumParams -> attack; W -> AccDiff, W -> Top3 attack."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, 1, n)                         # NumParams
    w = rng.uniform(0, 1, n)                         # separation (centroid distance)
    x = 0.6 * z + 0.3 * w + 0.1 * rng.normal(size=n)  # AccDiff
    y = 0.30 * x + 0.40 * z + 0.02 * rng.normal(size=n)
    y3 = 0.20 * x + 0.50 * z + 0.30 * w + 0.02 * rng.normal(size=n)
    return pd.DataFrame({"AccDiff": x, "NumParams": z, "Oak17Acc": y, "Top3MLLeakAcc": y3,
                         "CentroidDistance(sorted_3)": w})


def test_naive_is_biased_and_adjusted_recovers_the_truth():
    data = _confounded()
    effects = estimate_pitfalls(data).set_index("effect")["estimate"]
    span_x = data["AccDiff"].max() - data["AccDiff"].min()
    span_z = data["NumParams"].max() - data["NumParams"].min()
    true_e2 = 0.30 * span_x                 # direct effect of AccDiff, min -> max
    true_e3 = (0.40 + 0.6 * 0.30) * span_z  # total effect of NumParams
    assert effects["E2"] == pytest.approx(true_e2, rel=0.03)
    assert effects["E1"] > 1.5 * true_e2                         # naive: confounded upwards
    assert effects["E3"] == pytest.approx(true_e3, rel=0.05)
    assert effects["E4"] == pytest.approx(0.40 * span_z, rel=0.05)  # over-controlled: direct part only
    assert effects["Fig3a"] == pytest.approx(0.20 * span_x, rel=0.05)
    assert abs(effects["Fig3b"] - 0.20 * span_x) > 0.1 * 0.20 * span_x  # wrong assumption, W left out


def test_cli_output(tmp_path):
    traces = read_traces(REPO / "etio" / "data" / "example_traces.csv")
    out = tmp_path / "pitfalls"
    table = run_pitfalls(traces, out)
    assert list(table["effect"]) == ["E1", "E2", "E3", "E4", "Fig3a", "Fig3b"]
    assert table.loc[table.effect == "E2", "adjusted_for"].item() == "NumParams"
    assert table.loc[table.effect == "E4", "adjusted_for"].item() == "AccDiff"
    assert {p.name for p in out.iterdir()} >= {"pitfalls.csv", "E1.svg", "Fig3b.png", "provenance.json"}


def test_two_runs_write_the_same_bytes(tmp_path):
    # matplotlib would stamp each SVG with the time (dc:date) and draw its clip-path ids from a
    # random salt: every file but the provenance is the same bytes on a second run.
    from tests.support.repo import tree

    traces = read_traces(REPO / "etio" / "data" / "example_traces.csv")
    run_pitfalls(traces, tmp_path / "one")
    run_pitfalls(traces, tmp_path / "two")
    one, two = (
        {k: v for k, v in tree(tmp_path / d).items() if k != "provenance.json"} for d in ("one", "two"))
    assert one == two and sum(k.endswith(".svg") for k in one) == 6
    svg = (tmp_path / "one" / "E1.svg").read_text()
    assert "<dc:date>" not in svg and "<svg" in svg
