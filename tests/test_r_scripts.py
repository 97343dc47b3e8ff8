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
    result = rscript(REPO / "r" / "learn_graphs.R", bad, "--out", tmp_path / "graphs", "--weight-decay", "0.005",
                     "--method", "boot", "--replicates", "5", "--runs", "2", "--attacks", "Oak17Acc", "--losses", "ce")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.csv"]


def test_rscript_learn_graphs_has_the_options_of_etio_learn(rscript):
    import re

    import typer.main

    from etio.commands.app import app

    learn = typer.main.get_command(app).commands["learn"]
    cli_options = {name for param in learn.params for name in param.opts if name.startswith("--")}
    result = rscript(REPO / "r" / "learn_graphs.R", "--help")
    assert result.returncode == 0, result.stderr
    r_options = set(re.findall(r"(--[a-z][a-z-]*)=", result.stdout))
    # Python-only options: --workers (R learns the graphs serially) and --force (writing beside
    # other files follows etio.core.outputs' marker rule; the R script only replaces --out as a whole).
    python_only = {"--workers", "--force"}
    assert python_only <= cli_options
    assert r_options == cli_options - python_only, (r_options ^ (cli_options - python_only))


@pytest.mark.parametrize("args, message", [
    (["--out", "OUT", "--bogus", "1"], "no such option: --bogus"),
    (["--out", "OUT", "--method", "bayes"], "unknown method 'bayes'; known methods: boot, cv"),
    (["--out", "OUT", "--replicates", "abc"], "integer expected"),
    (["--out", "OUT", "--replicates", "0"], "replicates must be an integer >= 1"),
    ([], "--out DIR is required"),
])
def test_rscript_learn_graphs_rejects_bad_options(tmp_path, rscript, args, message):
    args = [str(tmp_path / "graphs") if a == "OUT" else a for a in args]
    result = rscript(REPO / "r" / "learn_graphs.R", EXAMPLE_TRACES_PATH, *args)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], result.stderr
    assert not list(tmp_path.iterdir())
