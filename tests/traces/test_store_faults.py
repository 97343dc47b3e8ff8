"""The trace store survives faults (tests/data/traces-mini.toml, 8 configurations).

A damaged file of each kind is recomputed (exactly its configuration) and the final traces.csv
is byte-identical to an undamaged run; two concurrent writers both finish and leave the
store of a single run; a full disk, a read-only path and Ctrl-C end in one line.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from etio.attacks.settings import ATTACK_NAMES, parse_attack_settings
from etio.core.settings import read_toml
from etio.pipeline.study import load_study
from etio.traces.store import open_store
from tests.support.cli import run_etio
from tests.support.repo import MINI, REPO
from tests.support.stages import attack, train

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _settings():
    return parse_attack_settings(read_toml(MINI)["attacks"])


def _full_run(out: Path) -> None:
    train(load_study(MINI).experiment, out)
    attack(open_store(out), ATTACK_NAMES, _settings())


def _stats_mtimes(store: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (store / "configs").glob("*/stats.json")}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "stats.json truncated": lambda c: _truncate(c / "stats.json"),
    "record.json truncated": lambda c: _truncate(c / "record.json"),
    "models.pt truncated": lambda c: _truncate(c / "models.pt"),
    "models.pt removed": lambda c: (c / "models.pt").unlink(),
    "record.json edited": lambda c: (c / "record.json").write_text(
        (c / "record.json").read_text().replace('"num_params": ', '"num_params": 1')),
    "attack result truncated": lambda c: _truncate(c / "attacks" / "oak17.json"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_recomputed_to_the_identical_table(mini_attacked, tmp_path, kind):
    store = tmp_path / "store"
    shutil.copytree(mini_attacked, store)
    victim = sorted((store / "configs").iterdir())[2]
    DAMAGE[kind](victim)
    before = _stats_mtimes(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _full_run(store)
    named = [str(w.message) for w in caught if str(victim) in str(w.message)]
    # one line, once: the attack stage's planner reports a damaged result, the unit recomputing it does not
    assert len(named) == 1 and len(named[0].splitlines()) == 1, [str(w.message) for w in caught]
    after = _stats_mtimes(store)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == (set() if kind.startswith("attack") else {victim.name})   # exactly the damaged one
    assert (store / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()


def test_damaged_split_and_store_json_are_rebuilt(mini_attacked, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(mini_attacked, store)
    split = next((store / "splits").glob("*.npy"))
    _truncate(split)
    (store / "store.json").write_text('{"format": "etio-trace')
    res = run_etio("attack", "--out", store)
    assert res.returncode == 2 and "store.json is missing or damaged" in res.stderr and res.stderr.count("\n") == 1
    before = _stats_mtimes(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _full_run(store)
    text = " ".join(str(w.message) for w in caught)
    assert "store.json was missing or damaged; rebuilt" in text and split.name in text
    assert _stats_mtimes(store) == before                                    # nothing retrained
    assert (store / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()
    assert json.loads((store / "store.json").read_text())["format"] == "etio-trace-store"


def test_two_concurrent_writers_leave_the_store_of_one_run(mini_attacked, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "etio", "traces", "--config", str(MINI), "--out", str(out), "--quiet",
           "--device", "cpu"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert len(open_store(out).keys()) == 8
    reference_traces = train(load_study(MINI).experiment, tmp_path / "single")
    assert (out / "traces.csv").read_bytes() == (reference_traces.root / "traces.csv").read_bytes()


def _limited(nbytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    # RLIMIT_FSIZE makes every write beyond 20 kB fail as a full disk would (Python ignores SIGXFSZ).
    out = tmp_path / "store"
    res = subprocess.run([sys.executable, "-m", "etio", "traces", "--config", str(MINI), "--out", str(out), "--quiet",
                          "--device", "cpu"], capture_output=True, text=True, env=ENV, cwd=REPO,
                         preexec_fn=_limited(20_000), timeout=600)
    assert res.returncode == 1, res.stderr
    line = res.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("error: cannot write ") and "File too large" in line[0], res.stderr
    assert "Traceback" not in res.stderr and str(out) in line[0]
    assert not list(out.rglob(".*.pt*"))                                    # no temporary file left


def test_a_read_only_path_is_one_line(tmp_path):
    res = run_etio("identify", "--graphs", REPO / "etio" / "data" / "paper" / "graphs-w_dk-cont-wd_0.005000",
                   "--out", "/sys/etio-test/ident.csv")
    assert res.returncode != 0 and res.stderr.count("\n") == 1, res.stderr
    assert "/sys/etio-test" in res.stderr and "Traceback" not in res.stderr


def test_ctrl_c_says_what_was_kept_and_the_rerun_resumes(mini_attacked, tmp_path):
    out = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "etio", "traces", "--config", str(MINI), "--out", str(out),
                             "--quiet", "--device", "cpu"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "configs").glob("*/stats.json")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    line = err.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("interrupted: ") and "of 8 trained configurations" in line[0]
    assert f"rerun `etio traces --config {MINI} --out {out}` to resume" in line[0]
    res = run_etio("traces", "--config", MINI, "--out", out, "--quiet", "--device", "cpu", timeout=600)
    assert res.returncode == 0, res.stderr
    attack(open_store(out), ATTACK_NAMES, _settings())
    assert (out / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()


@pytest.mark.parametrize("stage", ["traces", "attack"])
def test_an_executor_run_waits_for_the_stores_lock(mini_attacked, tmp_path, stage):
    """The driver of an executor run (here the local one; Ray and Slurm go through the same
    driver) takes the store's lock before any unit runs, and its workers write under it."""
    from etio.traces.store import store_lock

    out = tmp_path / "store"
    if stage == "traces":
        cmd = ["traces", "--config", str(MINI), "--out", str(out), "--quiet", "--executor", "local"]
    else:
        shutil.copytree(mini_attacked, out)
        for results in out.glob("configs/*/attacks"):
            shutil.rmtree(results)
        cmd = ["attack", "--out", str(out), "--config", str(MINI), "--executor", "local"]
    with store_lock(out, "the test"):
        proc = subprocess.Popen([sys.executable, "-m", "etio", *cmd, "--device", "cpu"], cwd=REPO, env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiting = proc.stderr.readline()          # the first thing it says: who holds the lock
        assert "is being written by pid" in waiting and "(the test)" in waiting, waiting
        assert proc.poll() is None                # still waiting: nothing was written meanwhile
        if stage == "traces":
            assert not (out / "configs").exists()
        else:
            assert not list(out.glob("configs/*/attacks"))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    if stage == "attack":
        assert (out / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()
    else:   # the reference also holds the attack columns, empty here
        import pandas as pd

        got, ref = pd.read_csv(out / "traces.csv"), pd.read_csv(mini_attacked / "traces.csv")
        filled = [c for c in got.columns if got[c].notna().all()]
        assert len(got) == len(ref) == 8 and "TestAcc" in filled and "Oak17Acc" not in filled
        pd.testing.assert_frame_equal(got[filled], ref[filled])
