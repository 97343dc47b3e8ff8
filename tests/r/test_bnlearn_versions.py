"""Whatever bnlearn a user's R has, learning follows bnlearn 4.7, and says what ran.

Stand-in packages named bnlearn (a version number and nothing else, or one that fails to load)
are installed into a temporary R library; etio must refuse each for learning with one line,
learn with r/compat/ instead, write the same files as with r/compat/ and record what it found.
Real bnlearn builds are checked by tests/r/test_bnlearn_conformance.py where one is installed, and
across versions by scripts/bnlearn_versions.py.
"""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys

import pytest

from tests.support.repo import REPO, requires_r, run_command
from etio.traces.example import EXAMPLE_TRACES_PATH

pytestmark = requires_r

FAST = ["--attacks", "Oak17Acc", "--losses", "ce", "--replicates", "5", "--runs", "2"]


def _fake_bnlearn(lib, version: str, on_load: str = "") -> None:
    source = lib.parent / f"src-{version}"
    (source / "R").mkdir(parents=True)
    (source / "DESCRIPTION").write_text(f"Package: bnlearn\nVersion: {version}\nTitle: stand-in\n"
                                        "Description: A stand-in.\nLicense: GPL-2\nAuthor: etio\nMaintainer: etio <e@x.org>\n")
    (source / "NAMESPACE").write_text("")
    (source / "R" / "zzz.R").write_text(f".onLoad <- function(libname, pkgname) {{ {on_load} }}\n")
    done = subprocess.run(["R", "CMD", "INSTALL", "--no-test-load", "-l", str(lib), str(source)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    libs = {}
    for name, version, on_load in [("newer", "5.3.0", ""), ("older", "4.6.1", ""),
                                   ("broken", "4.9", 'stop("compiled code missing")')]:
        lib = tmp_path_factory.mktemp(name) / "lib"
        lib.mkdir()
        _fake_bnlearn(lib, version, on_load)
        libs[name] = lib
    return libs


@pytest.fixture(scope="module")
def compat_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("compat") / "graphs"
    done = run_command(["Rscript", "r/learn_graphs.R", str(EXAMPLE_TRACES_PATH), "--out", str(out), *FAST],
                       env={"ETIO_R_BACKEND": "compat"})
    assert done.returncode == 0, done.stderr
    return out


def _same_files(a, b) -> list[str]:
    names = sorted(p.name for p in a.iterdir() if p.name != "provenance.json")
    assert names == sorted(p.name for p in b.iterdir() if p.name != "provenance.json")
    return [n for n in names if not filecmp.cmp(a / n, b / n, shallow=False)]


@pytest.mark.parametrize("kind, line", [
    ("newer", "warning: bnlearn 5.3.0 is newer than the versions etio brings to 4.7's results (4.7 to 5.2.x); "
              "learning with r/compat/ (bnlearn 4.7's results) instead"),
    ("broken", "warning: bnlearn 4.9 is installed but fails to load ("),
])
def test_rscript_refuses_an_unusable_bnlearn_in_one_line_and_learns_as_4_7(kind, line, libraries, compat_output,
                                                                          tmp_path):
    out = tmp_path / "graphs"
    done = run_command(["Rscript", "r/learn_graphs.R", str(EXAMPLE_TRACES_PATH), "--out", str(out), *FAST],
                       env={"R_LIBS": str(libraries[kind]), "R_LIBS_USER": str(libraries[kind])})
    assert done.returncode == 0, done.stderr
    notes = [x for x in done.stderr.splitlines() if x.startswith("warning: bnlearn")]
    assert len(notes) == 1 and notes[0].startswith(line), done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert "(backend bnlearn-compat 4.7 (etio r/compat), results as bnlearn 4.7)" in done.stderr
    assert _same_files(out, compat_output) == []
    learning = json.loads((out / "provenance.json").read_text())["structure_learning"]
    assert learning["bnlearn_found"] == {"newer": "5.3.0", "broken": "4.9"}[kind]
    assert learning["backend"].startswith("bnlearn-compat") and learning["results_follow"] == "bnlearn 4.7"
    assert learning["note"] == notes[0].removeprefix("warning: ")
    if kind == "broken":
        assert "compiled code missing" in notes[0]       # the load error itself, on the same line


def test_etio_learn_refuses_an_old_bnlearn_in_one_line_and_records_it(libraries, compat_output, tmp_path, etio_cli):
    out = tmp_path / "graphs"
    done = run_command([sys.executable, "-m", "etio", "learn", str(EXAMPLE_TRACES_PATH), "--out", str(out), *FAST,
                        "--workers", "1"],
                       env={"R_LIBS": str(libraries["older"]), "R_LIBS_USER": str(libraries["older"])})
    assert done.returncode == 0, done.stderr
    notes = [x for x in done.stderr.splitlines() if "bnlearn 4.6.1" in x]
    assert len(notes) == 1 and "is older than 4.7, the version the paper used" in notes[0], done.stderr
    assert "Install bnlearn 4.7.1" in notes[0]
    assert done.stdout.strip().splitlines()[-1].endswith(
        "(backend bnlearn-compat 4.7 (etio r/compat), results as bnlearn 4.7)")
    record = json.loads((out / "provenance.json").read_text())
    assert record["structure_learning"]["bnlearn_found"] == "4.6.1"
    assert record["structure_learning"]["note"] in notes[0]
    for name in ("ce-Oak17Acc.dot", "ce-Oak17Acc-strength.csv", "results-w_dk-cont-wd_0.000500.csv"):
        assert filecmp.cmp(out / name, compat_output / name, shallow=False), name
