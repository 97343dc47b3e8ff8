"""The R side on its own: the self-checking R test scripts, and the Rscript command line's
handling of bad input (one ``error:`` line, non-zero exit status, nothing written)."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from tests.support.repo import REPO, requires_r
from etio.core.outputs import MARKER
from etio.traces.example import EXAMPLE_TRACES_PATH

pytestmark = requires_r


@pytest.mark.parametrize("script", ["test_compat_core.R", "test_compat_strength.R", "test_etio.R", "test_backend.R"])
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
    # Old spellings (--wd) are hidden; the R script takes the trace table as its positional
    # argument, which etio learn still accepts beside --traces.
    cli_options = {name for param in learn.params if not getattr(param, "hidden", False)
                   for name in param.opts if name.startswith("--")} - {"--traces"}
    result = rscript(REPO / "r" / "learn_graphs.R", "--help")
    assert result.returncode == 0, result.stderr
    # optparse lists each option at the start of a tab-indented line: "--out=OUT", "--force"
    r_options = set(re.findall(r"^\t(--[a-z][a-z-]*)(?:=|$)", result.stdout, re.M)) - {"--help"}
    assert r_options == cli_options, r_options ^ cli_options


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


FAST = ["--weight-decay", "0.005", "--replicates", "5", "--runs", "2"]


def _learn_graphs(rscript, traces, out, *args):
    return rscript(REPO / "r" / "learn_graphs.R", traces, "--out", out, *FAST, *args)


def test_rscript_learn_graphs_writes_only_where_etio_may(tmp_path, rscript):
    """etio's output rules (etio.core.outputs) from R: a directory with files etio did not write
    is refused without --force and, with it, only written beside; its own output is replaced."""
    out = tmp_path / "graphs"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    refused = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, out, "--attacks", "ThresholdAcc", "--losses", "ce")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --out {out} is not empty and holds files etio did not write (notes.txt); choose a "
                      "new or empty directory, or add --force to write the graphs beside them"], refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    beside = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, out, "--attacks", "ThresholdAcc,Oak17Acc", "--losses", "ce",
                           "--force")
    assert beside.returncode == 0, beside.stderr
    assert (out / "notes.txt").read_text() == "mine\n"
    marker = json.loads((out / MARKER).read_text())
    assert "notes.txt" not in marker["entries"] and marker["entries"]["ce-Oak17Acc.dot"] == "learn"
    # again with --force and one attack: the stale Oak17Acc graph (etio's) goes, the notes stay
    again = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, out, "--attacks", "ThresholdAcc", "--losses", "ce", "--force")
    assert again.returncode == 0, again.stderr
    assert not (out / "ce-Oak17Acc.dot").exists() and (out / "notes.txt").exists()
    assert sorted(json.loads((out / MARKER).read_text())["entries"]) == sorted(
        p.name for p in out.iterdir() if p.name not in (MARKER, "notes.txt"))
    # a directory holding only etio's graphs is replaced as a whole, without --force, by either front end
    own = tmp_path / "own"
    first = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, own, "--attacks", "ThresholdAcc,Oak17Acc", "--losses", "ce")
    assert first.returncode == 0, first.stderr
    second = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, own, "--attacks", "ThresholdAcc", "--losses", "ce")
    assert second.returncode == 0, second.stderr
    assert not (own / "ce-Oak17Acc.dot").exists() and (own / "ce-ThresholdAcc.dot").exists()
    from etio.core.outputs import check_output_dir

    check_output_dir(own, "learn")            # `etio learn` may replace what the R script wrote
    # the input inside --out is a file etio did not write: kept as it is, beside the new graphs
    inside = own / "traces.csv"
    inside.write_bytes(EXAMPLE_TRACES_PATH.read_bytes())
    result = _learn_graphs(rscript, inside, own, "--attacks", "Oak17Acc", "--losses", "ce", "--force")
    assert result.returncode == 0, result.stderr
    assert inside.read_bytes() == EXAMPLE_TRACES_PATH.read_bytes() and (own / "ce-Oak17Acc.dot").exists()
    # a file where DIR is wanted
    (out / "file").write_text("")
    result = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, out / "file")
    assert result.returncode == 1 and f"error: --out {out / 'file'}: {out / 'file'} is a file, not a directory" \
        in result.stderr.splitlines()


def test_rscript_learn_graphs_writes_through_no_link_and_never_renames_a_directory_it_did_not_make(tmp_path, rscript):
    """As etio.core.outputs: --out as a symbolic link is refused; an empty directory etio did not make is
    filled in place (same inode, its mode kept, no `created` in the marker), while one etio made is replaced."""
    import os

    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    refused = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, link, "--attacks", "Oak17Acc", "--losses", "ce")
    assert refused.returncode == 1 and link.is_symlink() and list(real.iterdir()) == []
    assert [x for x in refused.stderr.splitlines() if x.startswith("error:")] == [
        f"error: --out {link} is a symbolic link (to {real}); etio writes through no link it did not create: "
        "give the directory itself, or a new one"]
    real.chmod(0o750)
    inode = real.stat().st_ino
    filled = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, real, "--attacks", "Oak17Acc", "--losses", "ce")
    assert filled.returncode == 0, filled.stderr
    assert real.stat().st_ino == inode and (real.stat().st_mode & 0o777) == 0o750
    assert (real / "ce-Oak17Acc.dot").exists() and "created" not in json.loads((real / MARKER).read_text())
    made = tmp_path / "made"
    assert _learn_graphs(rscript, EXAMPLE_TRACES_PATH, made, "--attacks", "Oak17Acc", "--losses", "ce").returncode == 0
    assert json.loads((made / MARKER).read_text())["created"] is True
    inode = made.stat().st_ino
    assert _learn_graphs(rscript, EXAMPLE_TRACES_PATH, made, "--attacks", "Oak17Acc", "--losses", "ce").returncode == 0
    assert made.stat().st_ino != inode           # etio's own directory is replaced as a whole
    assert os.path.isdir(made)


def test_rscript_learn_graphs_workers_write_the_same_bytes(tmp_path, rscript):
    args = ["--attacks", "ThresholdAcc,Oak17Acc"]
    serial = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, tmp_path / "one", *args)
    parallel = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, tmp_path / "two", *args, "--workers", "2")
    assert serial.returncode == parallel.returncode == 0, serial.stderr + parallel.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(names) == 2 * 2 * 2 + 3 + 2
    for name in names:
        if name != "provenance.json":
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    record = json.loads((tmp_path / "two" / "provenance.json").read_text())
    assert record["config"]["workers"] == 2 and record["skipped"] == []
    bad = _learn_graphs(rscript, EXAMPLE_TRACES_PATH, tmp_path / "three", *args, "--workers", "0")
    assert bad.returncode == 1 and "workers must be an integer >= 1" in bad.stderr
    assert not (tmp_path / "three").exists()


def test_rscript_learn_graphs_skips_a_constant_attack_as_etio_learn_does(tmp_path, rscript):
    from etio.causal.learning import learn_all
    from etio.core.schema import read_traces

    table = pd.read_csv(EXAMPLE_TRACES_PATH)
    table = table[table["WeightDecay"] == 0.005].drop(columns=["MLLeakAcc", "MLLeakLAcc", "Top3MLLeakAcc",
                                                               "Top3MLLeakLAcc"])
    table.loc[table["Loss"] == "mse", "ThresholdAcc"] = 0.5          # at chance on every mse configuration
    traces = tmp_path / "traces.csv"
    table.to_csv(traces, index=False)
    result = _learn_graphs(rscript, traces, tmp_path / "r")
    assert result.returncode == 0, result.stderr
    reason = f"ThresholdAcc is constant (0.5) over the {int((table['Loss'] == 'mse').sum())} rows of loss mse: " \
             "not a node of a Gaussian network"
    assert f"mse-ThresholdAcc not learned: {reason}" in result.stderr.splitlines()
    assert not (tmp_path / "r" / "mse-ThresholdAcc.dot").exists() and (tmp_path / "r" / "ce-ThresholdAcc.dot").exists()
    record = json.loads((tmp_path / "r" / "provenance.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn_all(read_traces(traces), tmp_path / "py", 0.005, replicates=5, runs=2)
    # each graph left out is a warning (not a passing progress line): the constant column, and
    # MemGuard's, which has no value at this weight decay
    said = [str(w.message) for w in caught if " skipped, its graph is not learned: " in str(w.message)]
    assert said == [f"mse-ThresholdAcc skipped, its graph is not learned: {reason}",
                    *[f"{loss}-MemguardAcc skipped, its graph is not learned: its column has no value in the "
                      f"{loss} rows at weight decay 0.005" for loss in ("ce", "mse")]]
    python_record = json.loads((tmp_path / "py" / "provenance.json").read_text())
    assert record["skipped"] == python_record["skipped"] == [{"name": "mse-ThresholdAcc", "reason": reason}]
    for name in ("ce-ThresholdAcc.dot", "mse-Oak17Acc.dot", "results-cont-wd_0.005000.csv"):
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name
