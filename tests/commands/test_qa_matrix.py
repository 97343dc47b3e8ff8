"""The bad-input and fault matrix: every command, fed what a new user feeds it, keeps its promises.

Each case runs one ``etio`` command (in this process: the imports are shared, so the whole
module stays fast) on a damaged input, a wrong option or a fault, and checks the promise of
the README: one line on stderr naming the problem, the documented exit code (2 bad input,
1 filesystem fault, 130 interrupted), no traceback, and no file created, changed or lost.
``make qa`` runs this module alone and ends with the line ``qa matrix: N held, M failed``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etio.report import paper
from tests.support.cli import one_error_line as _one_error_line, run_etio, run_main as _main
from tests.support.repo import MINI, REPO, tree as _tree

EXAMPLE = REPO / "etio" / "data" / "example_traces.csv"
GRAPHS = {wd: paper.graphs_dir(wd) for wd in (0.0005, 0.005)}


# --------------------------------------------------------------------------------------
# A file where a directory is wanted
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["pitfalls", "table5", "learn", "query", "identify", "merge", "reproduce"])
def test_a_file_where_a_directory_is_wanted_is_an_error(tmp_path, monkeypatch, capsys, command):
    target = tmp_path / "results"
    target.write_text("a file of mine\n")
    args = {
        "pitfalls": ("pitfalls", "--traces", EXAMPLE, "--out", target),
        "table5": ("table5", "--traces", EXAMPLE, "--graphs", GRAPHS[0.0005], "--out", target),
        "learn": ("learn", EXAMPLE, "--out", target),
        "query": ("query", "--traces", EXAMPLE, "--graphs", GRAPHS[0.0005], "--out", target / "ates.csv"),
        "identify": ("identify", "--graphs", GRAPHS[0.0005], "--out", target / "ident.csv"),
        "merge": ("traces", "merge", tmp_path, "--out", target),
        "reproduce": ("reproduce", "--config", MINI, "--out", target),
    }[command]
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *args)
    assert code != 0 and str(target) in _one_error_line(err)
    assert _tree(tmp_path) == before



# --------------------------------------------------------------------------------------
# The bad-input matrix
# --------------------------------------------------------------------------------------

def _traces(tmp_path: Path, case: str) -> Path:
    table = pd.read_csv(EXAMPLE, na_values=["-"])
    ce = table.index[(table["Loss"] == "ce") & (table["WeightDecay"] == 0.0005)]
    path = tmp_path / "bad.csv"
    if case == "nan":
        table.loc[ce[3], "AccDiff"] = np.nan
    elif case == "inf":
        table["NumParams"] = table["NumParams"].astype(float)
        table.loc[ce[3], "NumParams"] = np.inf
    elif case == "-inf":
        table.loc[ce[5], "Oak17Acc"] = -np.inf
    elif case == "non-numeric":
        table["TestLoss"] = table["TestLoss"].astype(object)
        table.loc[ce[2], "TestLoss"] = "abc"
    elif case == "constant":
        table["NumParams"] = 1000
    elif case == "unknown loss":
        table.loc[ce[4], "Loss"] = "hinge"
    elif case == "accuracy above 1":
        table.loc[ce[5], "Oak17Acc"] = 1.7
    elif case == "accuracy below 0":
        table.loc[ce[6], "TestAcc"] = -0.5
    elif case == "duplicate rows":
        table = pd.concat([table, table.loc[[ce[0], ce[1]]]], ignore_index=True)
    elif case == "missing column":
        table = table.drop(columns=["AccDiff"])
    elif case == "empty file":
        path.write_text("")
        return path
    elif case == "binary file":
        path.write_bytes(bytes(range(256)) * 8)
        return path
    elif case == "directory":
        path.mkdir()
        return path
    table.to_csv(path, index=False)
    return path


#: case -> what the one line must name.
TRACE_CASES = {
    "nan": "'AccDiff'", "inf": "'NumParams'", "-inf": "'Oak17Acc'", "non-numeric": "'TestLoss'",
    "constant": "'NumParams' is constant", "duplicate rows": "repeat a configuration",
    "missing column": "'AccDiff'", "empty file": "bad.csv", "binary file": "bad.csv", "directory": "bad.csv",
    "unknown loss": "'Loss' has 'hinge'", "accuracy above 1": "'Oak17Acc' is an accuracy, in [0, 1], but has 1.7",
    "accuracy below 0": "'TestAcc' is an accuracy, in [0, 1], but has -0.5",
}
TRACE_COMMANDS = {
    "query": lambda t, o: ("query", "--traces", t, "--graphs", GRAPHS[0.0005], "--out", o / "ates.csv"),
    "identify": lambda t, o: ("identify", "--traces", t, "--graphs", GRAPHS[0.0005], "--out", o / "ident.csv"),
    "pitfalls": lambda t, o: ("pitfalls", "--traces", t, "--out", o / "pitfalls"),
    "table5": lambda t, o: ("table5", "--traces", t, "--graphs", GRAPHS[0.0005], "--out", o / "t5"),
    "table3": lambda t, o: ("table", "table3", "--traces", t, "--graphs", GRAPHS[0.0005], "--out", o / "t3"),
    "learn": lambda t, o: ("learn", t, "--out", o / "graphs", "--attacks", "Oak17Acc", "--losses", "ce"),
}
# The damaged columns (AccDiff, NumParams, Oak17Acc) are read by every command above.


@pytest.mark.parametrize("case", list(TRACE_CASES))
@pytest.mark.parametrize("command", list(TRACE_COMMANDS))
def test_bad_trace_table_matrix(tmp_path, monkeypatch, capsys, command, case):
    traces = _traces(tmp_path, case)
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *TRACE_COMMANDS[command](traces, tmp_path))
    assert code == 2, err
    assert TRACE_CASES[case] in _one_error_line(err)
    assert _tree(tmp_path) == before and sorted(tmp_path.iterdir()) == [traces]


def _graphs(tmp_path: Path, case: str) -> Path:
    gdir = tmp_path / "graphs"
    gdir.mkdir()
    src = GRAPHS[0.0005] / "ce-Oak17Acc-cv_avg_net_discovery.dot"
    text = src.read_text()
    if case == "binary .dot":
        (gdir / "ce-Oak17Acc.dot").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00" + bytes(range(200)))
    elif case == "node not in traces":
        (gdir / "ce-Oak17Acc.dot").write_text(
            text.replace('"TrainSize" ;', '"TrainSize" ;\n  "Epochs" ;')
                .replace("}", '  edge [dir=forward] "Epochs" -> "Oak17Acc" ;\n}'))
    elif case == "cycle":
        (gdir / "ce-Oak17Acc.dot").write_text(text.replace("}", '  edge [dir=forward] "Oak17Acc" -> "TrainAcc" ;\n}'))
    elif case == "empty directory":
        pass
    return gdir


GRAPH_CASES = {"binary .dot": "not a bnlearn write.dot", "node not in traces": "Epochs", "cycle": "cycle",
               "empty directory": "no <loss>-<attack>.dot"}


@pytest.mark.parametrize("case", list(GRAPH_CASES))
@pytest.mark.parametrize("command", ["query", "identify", "table5"])
def test_bad_graph_matrix(tmp_path, monkeypatch, capsys, command, case):
    gdir = _graphs(tmp_path, case)
    args = {"query": ("query", "--traces", EXAMPLE, "--graphs", gdir, "--out", tmp_path / "ates.csv"),
            "identify": ("identify", "--traces", EXAMPLE, "--graphs", gdir, "--out", tmp_path / "ident.csv"),
            "table5": ("table5", "--traces", EXAMPLE, "--graphs", gdir, "--out", tmp_path / "t5")}[command]
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *args)
    assert code == 2, err
    assert GRAPH_CASES[case] in _one_error_line(err)
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["graphs"]


def _config(tmp_path: Path, case: str) -> Path:
    text = MINI.read_text()
    replace = {
        "lr nan": ("lr = 0.1", "lr = nan"),
        "lr inf": ("lr = 0.1", "lr = inf"),
        "lr zero": ("lr = 0.1", "lr = 0.0"),
        "momentum 1": ("momentum = 0.9", "momentum = 1.0"),
        "weight decay nan": ("weight_decay = [0.0005]", "weight_decay = [nan]"),
        "weight decays with one store key": ("weight_decay = [0.0005]", "weight_decay = [0.0005, 0.0005000001]"),
        "width repeated": ("width = [8, 64]", "width = [8, 8, 64]"),
        "epochs 0": ("epochs = [20]", "epochs = [0]"),
        "width negative": ("width = [8, 64]", "width = [-8, 64]"),
        "not toml": ("[grid]", "[grid"),
    }[case]
    assert replace[0] in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(replace[0], replace[1]))
    return path


CONFIG_CASES = {"lr nan": "[training] lr = nan", "lr inf": "[training] lr = inf", "lr zero": "[training] lr = 0.0",
                "momentum 1": "[training] momentum = 1.0", "weight decay nan": "weight_decay",
                "weight decays with one store key": "same store key", "width repeated": "twice",
                "epochs 0": "epochs", "width negative": "width", "not toml": "not valid TOML"}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
@pytest.mark.parametrize("command", ["traces", "reproduce"])
def test_bad_config_matrix(tmp_path, monkeypatch, capsys, command, case):
    config = _config(tmp_path, case)
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, command, "--config", config, "--out", tmp_path / "out")
    assert code == 2, err
    assert CONFIG_CASES[case] in _one_error_line(err)
    assert _tree(tmp_path) == before and sorted(tmp_path.iterdir()) == [config]


@pytest.mark.parametrize("args, message", [
    (("attack", "--out", "{store}", "--threads", "-1"), "--threads"),
    (("attack", "--out", "{store}", "--attacks", ","), "--attacks"),
    (("attack", "--out", "{store}", "--attacks", "top3,shokri"), "shokri"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--attacks", ","), "--attacks"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--losses", " , "), "--losses"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--weight-decay", "nan"), "weight decay"),
    (("reproduce", "--config", str(MINI), "--out", "{tmp}/r", "--replicates", "0"), "replicates"),
    (("traces", "--config", str(MINI), "--out", "{tmp}/s", "--shard", "0/2"), "--shard"),
    (("query", "--traces", str(EXAMPLE), "--graphs", str(GRAPHS[0.0005]), "--wd", "0.1", "--out", "{tmp}/a.csv"),
     "weight decay 0.1"),
    (("table", "table4", "--paper", "--out", "{tmp}/t"), "unknown table"),
    (("learn", "--bogus"), "--bogus"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--replicates", "1000000000000"), "replicates must be an integer in"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--seed", "99999999999"), "seed must be an integer in"),
    (("reproduce", "--config", str(MINI), "--out", "{tmp}/r", "--replicates", "1000000000000"), "[analysis] replicates = 1000000000000"),
    (("plan", "--config", str(MINI), "--steps", "0", "--device", "cpu"), "--steps"),
    (("plan", "--config", str(MINI), "--steps", "-1", "--device", "cpu"), "--steps"),
])
def test_bad_options(tmp_path, monkeypatch, capsys, args, message):
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.json").write_text(json.dumps({"format": "etio-trace-store", "version": 1, "config": {}}))
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *[a.format(store=store, tmp=tmp_path) for a in args])
    assert code == 2, err
    assert message in _one_error_line(err)
    assert _tree(tmp_path) == before


# --------------------------------------------------------------------------------------
# One spelling per option, and values refused before any work
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("learn", "--traces", "{header}", "--out", "{tmp}/g"), "has a header but no rows"),
    (("query", "--traces", "{header}", "--graphs", str(GRAPHS[0.0005]), "--out", "{tmp}/a.csv"),
     "has a header but no rows"),
    (("pitfalls", "--traces", "{header}", "--out", "{tmp}/p"), "has a header but no rows"),
    (("query", "--traces", "{text}", "--graphs", str(GRAPHS[0.0005]), "--out", "{tmp}/a.csv"),
     "'TrainAcc' has non-numeric value 'abc' (CSV line 5)"),
    (("query", "--traces", str(EXAMPLE), "--graphs", str(EXAMPLE), "--out", "{tmp}/a.csv"), "is not a directory"),
    (("identify", "--graphs", str(EXAMPLE), "--out", "{tmp}/i.csv"), "is not a directory"),
    (("query", "--traces", str(EXAMPLE), "--graphs", str(GRAPHS[0.005]), "--weight-decay", "0.005", "--wd",
      "0.0005", "--out", "{tmp}/a.csv"), "--weight-decay 0.005 and --wd 0.0005 disagree"),
    (("learn", str(EXAMPLE), "--traces", "{header}", "--out", "{tmp}/g"), "disagree"),
    (("learn", str(EXAMPLE), "{header}", "--out", "{tmp}/g"), "unexpected argument"),
    (("learn", "--out", "{tmp}/g"), "missing option --traces"),
    (("status",), "missing option --store"),
    (("attack", "--store", "{tmp}/s1", "--out", "{tmp}/s2"), "disagree"),
    (("learn", str(EXAMPLE), "--out", "{tmp}/g", "--workers", "0"), "--workers"),
    (("bench", "train", "--epochs", "0"), "--epochs"),
    (("bench", "train", "--models", "0"), "--models"),
    (("bench", "robust-train", "--epochs", "0"), "--epochs"),
    (("bench", "learn", "--workers", "0"), "--workers"),
    (("bench", "learn", "--replicates", "0"), "--replicates"),
    (("reproduce", "--config", str(MINI), "--out", "{tmp}/r", "--workers", "0"), "--workers"),
    (("bench", "checks", "--workers", "0"), "--workers"),
])
def test_bad_values_and_spellings_are_refused_at_once(tmp_path, monkeypatch, capsys, args, message):
    import time

    lines = EXAMPLE.read_text().splitlines()
    (tmp_path / "header.csv").write_text(lines[0] + "\n")
    column = lines[0].split(",").index("TrainAcc")
    row = lines[4].split(",")               # CSV line 5: the header is line 1
    row[column] = "abc"
    (tmp_path / "text.csv").write_text("\n".join([*lines[:4], ",".join(row), *lines[5:]]) + "\n")
    before = _tree(tmp_path)
    start = time.perf_counter()
    code, err = _main(monkeypatch, capsys, *[a.format(tmp=tmp_path, header=tmp_path / "header.csv",
                                                       text=tmp_path / "text.csv") for a in args])
    assert code == 2 and message in _one_error_line(err)
    assert _tree(tmp_path) == before
    assert time.perf_counter() - start < 10     # refused before any learning or training starts


def test_debug_shows_the_traceback(tmp_path):
    plain = run_etio("learn", tmp_path / "none.csv", "--out", tmp_path / "g")
    debug = run_etio("--debug", "learn", tmp_path / "none.csv", "--out", tmp_path / "g")
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "EtioInputError" in debug.stderr




# --------------------------------------------------------------------------------------
# Writes onto what etio did not create
# --------------------------------------------------------------------------------------

def _graph_dir(tmp_path: Path) -> Path:
    gdir = tmp_path / "g"
    gdir.mkdir()
    (gdir / "ce-Oak17Acc.dot").write_bytes((GRAPHS[0.0005] / "ce-Oak17Acc-cv_avg_net_discovery.dot").read_bytes())
    return gdir


INPUT_AS_OUTPUT = {
    "query onto an input graph": lambda g: ("query", "--traces", EXAMPLE, "--graphs", g, "--out", g / "ce-Oak17Acc.dot",
                                            "--force"),
    "query into the graphs directory": lambda g: ("query", "--traces", EXAMPLE, "--graphs", g, "--out", g / "a.csv"),
    "identify onto an input graph": lambda g: ("identify", "--graphs", g, "--out", g / "ce-Oak17Acc.dot", "--force"),
    "identify onto its traces": lambda g: ("identify", "--graphs", g, "--traces", g / "t.csv", "--out", g / "t.csv",
                                           "--force"),
    "table5 into the graphs directory": lambda g: ("table5", "--traces", EXAMPLE, "--graphs", g, "--out", g / "t5"),
}


@pytest.mark.parametrize("case", list(INPUT_AS_OUTPUT))
def test_an_input_is_never_an_output(tmp_path, monkeypatch, capsys, case):
    gdir = _graph_dir(tmp_path)
    (gdir / "t.csv").write_bytes(EXAMPLE.read_bytes())
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *INPUT_AS_OUTPUT[case](gdir))
    assert code == 2, err
    assert "an input of `etio" in _one_error_line(err)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["table3 directory", "query file"])
def test_out_through_a_symbolic_link_is_refused(tmp_path, monkeypatch, capsys, kind):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real if kind == "table3 directory" else real / "ates.csv")
    args = {"table3 directory": ("table3", "--paper", "--out", link),
            "query file": ("query", "--traces", EXAMPLE, "--graphs", GRAPHS[0.0005], "--out", link, "--force")}[kind]
    code, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and "symbolic link" in _one_error_line(err)
    assert link.is_symlink() and list(real.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]     # no .link.old-<pid> left


def test_an_empty_directory_of_the_user_is_filled_not_renamed_over(tmp_path, monkeypatch, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    out.chmod(0o750)
    before = out.stat()
    code, err = _main(monkeypatch, capsys, "table3", "--paper", "--out", out)
    assert code == 0, err
    after = out.stat()
    assert (after.st_ino, after.st_mode, after.st_uid) == (before.st_ino, before.st_mode, before.st_uid)
    assert {"table3.csv", "table3.md", "table3.tex", "provenance.json"} <= {p.name for p in out.iterdir()}
    code, err = _main(monkeypatch, capsys, "table3", "--paper", "--out", out)   # its own entries, replaced in place
    assert code == 0, err
    assert out.stat().st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_empty_directory_is_a_filesystem_fault(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    before = out.stat()
    code, err = _main(monkeypatch, capsys, "table3", "--paper", "--out", out)
    assert code == 1 and str(out) in _one_error_line(err)
    assert out.stat().st_ino == before.st_ino and list(out.iterdir()) == []


@pytest.mark.parametrize("name", ["../../x", "{absolute}", "a/b", ".."])
def test_a_config_name_is_one_path_component(tmp_path, monkeypatch, capsys, name):
    work = tmp_path / "deep" / "work"                 # reproduce's default run folder: artifacts/<name>
    work.mkdir(parents=True)
    name = name.format(absolute=tmp_path / "elsewhere")
    config = work / "c.toml"
    config.write_text(MINI.read_text().replace('name = "smoke"', f"name = {json.dumps(name)}"))
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, "reproduce", "--config", config)
    assert code == 2 and "plain name" in _one_error_line(err)
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.rglob("*")) == ["c.toml", "deep", "work"]


# --------------------------------------------------------------------------------------
# Ctrl-C: every long command stops within a second and says what it kept
# --------------------------------------------------------------------------------------

def _children(pid: int) -> set[int]:
    """The process ids of ``pid``'s descendants (from /proc)."""
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            frontier.extend(kids - found)
            found |= kids
    return found


def _interrupt(args, ready, launcher=signal.SIG_DFL, settle: float = 0.3, timeout: float = 120,
               temporary: Path | None = None):
    """Run ``etio ARGS`` from a launcher that left SIGINT as ``launcher`` (with ``temporary`` as its
    TMPDIR when given); once ``ready()`` holds, send SIGINT. Returns (exit code, stderr, seconds to
    the 'interrupted' line, descendants left)."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(REPO), **({"TMPDIR": str(temporary)} if temporary else {})}
    proc = subprocess.Popen([sys.executable, "-m", "etio", *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, launcher))
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), line) for line in proc.stderr))
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the command ended before it could be interrupted: " + "".join(l for _, l in lines)
    time.sleep(settle)
    workers = _children(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:                # it ignored the interrupt: stop it and its workers
        for pid in [proc.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"still running 30 s after SIGINT: etio {' '.join(map(str, args))}") from None
    reader.join(timeout=10)
    said = [t - sent for t, line in lines if line.startswith("interrupted: ")]
    time.sleep(0.2)
    alive = {pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()}
    return code, "".join(line for _, line in lines), (said[0] if said else None), alive


def _staging(parent: Path):
    return lambda: any(p.name.startswith(".gi.partial-") for p in parent.iterdir())


@pytest.mark.parametrize("workers, launcher", [("1", signal.SIG_DFL), ("1", signal.SIG_IGN), ("2", signal.SIG_DFL)],
                         ids=["one worker", "one worker, SIGINT ignored by the launcher", "two workers"])
def test_learn_stops_on_ctrl_c(tmp_path, workers, launcher):
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temporary.mkdir()
    code, err, seconds, alive = _interrupt(
        ["learn", EXAMPLE, "--out", out / "gi", "--replicates", "100", "--runs", "2", "--workers", workers],
        _staging(out), launcher=launcher, settle=1.0, temporary=temporary)
    assert code == 130, err
    assert seconds is not None and seconds <= 1.0, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted: ")
    assert not alive                                          # no R worker left running
    assert list(out.iterdir()) == []                          # the staging directory is gone, nothing written
    assert list(temporary.iterdir()) == []                    # nor a temporary file or R's temporary directory


def test_attack_stops_on_ctrl_c_and_keeps_its_results(mini_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(mini_store, store)
    code, err, seconds, alive = _interrupt(["attack", "--out", store, "--device", "cpu"],
                                           lambda: any(store.glob("configs/*/attacks/*.json")))
    assert code == 130, err
    assert seconds is not None and seconds <= 1.0, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: 8 of 8 trained configurations and ") and "attack results are kept" in line
    kept = int(line.split(" and ")[1].split()[0])
    assert kept == len(list(store.glob("configs/*/attacks/*.json"))) >= 1
    assert not alive


# --------------------------------------------------------------------------------------
# A store etio cannot read is refused before anything reads or rewrites it
# --------------------------------------------------------------------------------------

STORE_META = {"unknown format version": {"format": "etio-trace-store", "version": 7, "config": {}},
              "no config table": {"format": "etio-trace-store", "version": 1}}
STORE_META_MESSAGE = {"unknown format version": "format version 7", "no config table": "holds no config table"}


# (etio traces --config rebuilds a store.json that lost its config: tests/traces/test_store_faults.py)
@pytest.mark.parametrize("command, case", [(c, k) for c in ("status", "attack", "traces", "merge") for k in STORE_META
                                           if (c, k) != ("traces", "no config table")])
def test_a_store_of_another_format_is_refused_and_left_alone(tmp_path, monkeypatch, capsys, command, case):
    store = tmp_path / "store"
    (store / "configs").mkdir(parents=True)
    (store / "splits").mkdir()
    (store / "store.json").write_text(json.dumps(STORE_META[case]))
    args = {"status": ("status", "--out", store), "attack": ("attack", "--out", store),
            "traces": ("traces", "--config", MINI, "--out", store, "--quiet"),
            "merge": ("traces", "merge", store, "--out", tmp_path / "merged")}[command]
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and STORE_META_MESSAGE[case] in _one_error_line(err)
    assert _tree(tmp_path) == before


# --------------------------------------------------------------------------------------
# Incomplete or mixed inputs
# --------------------------------------------------------------------------------------

def _killed_store(mini_store: Path, tmp_path: Path) -> Path:
    """The store of a training run killed half-way: 4 of its 8 configurations finished."""
    store = tmp_path / "killed"
    shutil.copytree(mini_store, store)
    for config in sorted((store / "configs").iterdir())[::2]:
        (config / "stats.json").unlink()
    return store


@pytest.mark.parametrize("command", ["traces merge", "attack", "bench attacks"])
def test_a_store_killed_half_way_is_refused(mini_store, tmp_path, monkeypatch, capsys, command):
    store = _killed_store(mini_store, tmp_path)
    args = {"traces merge": ("traces", "merge", store, "--out", tmp_path / "merged"),
            "attack": ("attack", "--out", store, "--device", "cpu"),
            "bench attacks": ("bench", "attacks", "--out", store)}[command]
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *args)
    line = _one_error_line(err)
    assert code == 2 and "is incomplete: 4 of 8 configurations are stored" in line, err
    assert f"before `etio {command}`" in line
    assert _tree(tmp_path) == before


def _attacked_copy(mini_store: Path, path: Path, oak17_epochs: int, accuracy: float) -> Path:
    from etio.traces.store import open_store

    shutil.copytree(mini_store, path)
    meta = json.loads((path / "store.json").read_text())
    meta["config"]["attacks"]["oak17_epochs"] = oak17_epochs
    (path / "store.json").write_text(json.dumps(meta))
    store = open_store(path)
    store.write_attack(store.keys()[0], "oak17", {"Oak17Acc": accuracy, "Oak17MemAcc": 0.7, "Oak17NonmemAcc": 0.5})
    return path


@pytest.mark.parametrize("order", ["a b", "b a"])
@pytest.mark.parametrize("conflict", ["attack settings", "attack results"])
def test_merge_refuses_conflicting_attack_results_in_either_order(mini_store, tmp_path, monkeypatch, capsys,
                                                                 conflict, order):
    a = _attacked_copy(mini_store, tmp_path / "a", 20, 0.61)
    b = _attacked_copy(mini_store, tmp_path / "b", 10 if conflict == "attack settings" else 20, 0.66)
    first, second = (a, b) if order == "a b" else (b, a)
    code, err = _main(monkeypatch, capsys, "traces", "merge", first, second, "--out", tmp_path / "merged")
    expected = "attacks.oak17_epochs" if conflict == "attack settings" else "with different oak17 results"
    assert code == 2 and expected in _one_error_line(err)
    assert not (tmp_path / "merged").exists()


def test_merge_of_the_same_results_is_accepted(mini_store, tmp_path, monkeypatch, capsys):
    a = _attacked_copy(mini_store, tmp_path / "a", 20, 0.61)
    b = _attacked_copy(mini_store, tmp_path / "b", 20, 0.61)
    code, err = _main(monkeypatch, capsys, "traces", "merge", a, b, "--out", tmp_path / "merged")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "merged" / "traces.csv")
    assert len(table) == 8 and sorted(table["Oak17Acc"].dropna().tolist()) == [0.61]


def _graphs_learned_at(tmp_path: Path, weight_decay: float) -> Path:
    """The authors' 5e-4 graphs as `etio learn` would have written them, its provenance saying ``weight_decay``."""
    gdir = tmp_path / "learned"
    gdir.mkdir()
    for path in GRAPHS[0.0005].glob("*.dot"):
        (gdir / path.name.replace("-cv_avg_net_discovery", "")).write_bytes(path.read_bytes())
    (gdir / "provenance.json").write_text(json.dumps({"stage": "learn", "config": {"weight_decay": weight_decay}}))
    return gdir


WD_MISMATCH = {
    "query --wd 0.005 on graphs of 5e-4": lambda t: ("query", "--traces", EXAMPLE, "--graphs", GRAPHS[0.0005],
                                                     "--wd", "0.005", "--out", t / "a.csv"),
    "table7 on graphs of 5e-4": lambda t: ("table7", "--traces", EXAMPLE, "--graphs", GRAPHS[0.0005],
                                           "--out", t / "t7"),
    "table5 on graphs learned at 5e-3 (provenance)": lambda t: ("table5", "--traces", EXAMPLE, "--graphs",
                                                                _graphs_learned_at(t, 0.005), "--out", t / "t5"),
    "query on graphs learned at 5e-3 (provenance)": lambda t: ("query", "--traces", EXAMPLE, "--graphs",
                                                               _graphs_learned_at(t, 0.005), "--out", t / "a.csv"),
}


@pytest.mark.parametrize("case", list(WD_MISMATCH))
def test_graphs_meet_traces_only_at_the_weight_decay_they_were_learned_at(tmp_path, monkeypatch, capsys, case):
    args = WD_MISMATCH[case](tmp_path)
    before = _tree(tmp_path)
    code, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and "was learned at weight decay" in _one_error_line(err)
    assert _tree(tmp_path) == before


def test_identify_without_traces_refuses_a_node_no_trace_has(tmp_path, monkeypatch, capsys):
    gdir = _graphs(tmp_path, "node not in traces")
    code, err = _main(monkeypatch, capsys, "identify", "--graphs", gdir, "--out", tmp_path / "ident.csv")
    assert code == 2 and "'Epochs' are not trace columns" in _one_error_line(err)
    assert not (tmp_path / "ident.csv").exists()


def test_an_attack_or_loss_named_twice_is_learned_once():
    from etio.causal.learning import present_pairs
    from etio.core.schema import read_traces

    pairs, _ = present_pairs(read_traces(EXAMPLE), 0.0005, losses=["ce", "ce"], attacks=["Oak17Acc", "Oak17Acc"])
    assert pairs == [("ce", "Oak17Acc")]


# --------------------------------------------------------------------------------------
# Filesystem faults: exit 1, one line naming the path (etio.core.errors)
# --------------------------------------------------------------------------------------

def _unreadable(monkeypatch, path: Path) -> None:
    """Reading ``path`` fails as a file without read permission does (also for root, who may read anything)."""
    import builtins
    import io

    real = io.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).resolve() == path.resolve():
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded)
    monkeypatch.setattr(builtins, "open", guarded)


UNREADABLE = {
    "trace table (query)": lambda t, u: ("query", "--traces", u, "--graphs", GRAPHS[0.0005], "--out", t / "a.csv"),
    "trace table (learn)": lambda t, u: ("learn", u, "--out", t / "g"),
    "graph file (identify)": lambda t, u: ("identify", "--graphs", u.parent, "--out", t / "i.csv"),
    "config (reproduce)": lambda t, u: ("reproduce", "--config", u, "--out", t / "r"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_input_is_a_filesystem_fault(tmp_path, monkeypatch, capsys, case):
    kind = case.split(" (")[0]
    source = {"trace table": EXAMPLE, "config": MINI,
              "graph file": GRAPHS[0.0005] / "ce-Oak17Acc-cv_avg_net_discovery.dot"}[kind]
    folder = tmp_path / "in"
    folder.mkdir()
    unreadable = folder / ("ce-Oak17Acc.dot" if kind == "graph file" else source.name)
    unreadable.write_bytes(source.read_bytes())
    _unreadable(monkeypatch, unreadable)
    code, err = _main(monkeypatch, capsys, *UNREADABLE[case](tmp_path, unreadable))
    line = _one_error_line(err)
    assert code == 1 and line == f"error: cannot read {unreadable}: Permission denied", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_full_disk_leaves_no_empty_configuration_directory(mini_store, tmp_path, monkeypatch):
    from etio.core.errors import EtioFileError
    from etio.traces import store as store_module

    shutil.copytree(mini_store, tmp_path / "store")
    store = store_module.open_store(tmp_path / "store")
    key = store.keys()[0]
    record, stats = store.record(key), store.stats(key)
    state = {"w": __import__("torch").zeros(3)}
    shutil.rmtree(store.config_dir(key))                     # as before its training finished
    real = store_module.write_bytes_atomic

    def full(path, data):
        if Path(path).name == "record.json":
            raise store_module.file_error(path, OSError(28, "No space left on device"))
        real(path, data)

    monkeypatch.setattr(store_module, "write_bytes_atomic", full)
    with pytest.raises(EtioFileError, match="record.json: No space left on device"):
        store.write_config(record, state, stats)
    assert not store.config_dir(key).exists() and len(store.keys()) == 7


def test_learn_on_a_full_disk_names_its_output(tmp_path, monkeypatch, capsys):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, hard))     # a write beyond 3 kB fails as on a full disk
    try:
        code, err = _main(monkeypatch, capsys, "learn", EXAMPLE, "--out", tmp_path / "g", "--attacks", "Oak17Acc",
                          "--losses", "ce", "--replicates", "3", "--runs", "2", "--workers", "1")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 1 and _one_error_line(err) == f"error: cannot write {tmp_path / 'g'}: File too large"
    assert list(tmp_path.iterdir()) == []                     # no staging directory left
