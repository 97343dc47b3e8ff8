"""The R side on its own: the self-checking R test scripts, and the Rscript command line's
handling of bad input (one ``error:`` line, non-zero exit status, nothing written)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import REPO, requires_r
from etio.traces.example import EXAMPLE_TRACES_PATH

pytestmark = requires_r


@pytest.mark.parametrize("script", ["test_compat_core.R", "test_compat_strength.R", "test_etio.R"])
def test_r_self_checks_pass(script, rscript):
    path = REPO / "tests" / "r" / script
    if not path.is_file():
        pytest.skip(f"{script} is not in this checkout")
    result = rscript(path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "FAIL" not in output, output[-3000:]
    assert "ok" in output  # the script reported its checks


@pytest.mark.parametrize("column, value, message", [
    ("TrainSize", "abc", "'TrainSize' has a value that is not a size: 'abc'"),
    ("TestVar", None, "no column 'TestVar'"),
])
def test_rscript_learn_graphs_rejects_bad_input(tmp_path, rscript, column, value, message):
    table = pd.read_csv(EXAMPLE_TRACES_PATH)
    if value is None:
        table = table.drop(columns=[column])
    else:
        table.loc[0, column] = value
    bad = tmp_path / "traces.csv"
    table.to_csv(bad, index=False)
    result = rscript(REPO / "r" / "learn_graphs.R", bad, tmp_path / "graphs", "--weight-decay", "0.005",
                     "--method", "boot", "--R", "5", "--runs", "2", "--attacks", "Oak17Acc", "--loss", "ce")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.csv"]
