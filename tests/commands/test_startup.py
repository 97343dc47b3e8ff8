"""Start-up: help, input errors and ``etio status`` answer without importing the heavy stacks
(torch, rpy2 and R, dowhy); those load only in the commands that compute with them.

Each case runs the CLI in a fresh interpreter and reports which of those modules it imported:
a structural check, not a timing (the timings are in the README's changes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.repo import REPO

HEAVY = ("torch", "rpy2", "dowhy")

#: Runs ``etio ARGS`` through its entry point, then prints the heavy modules it imported.
_PROBE = """
import json, sys
sys.argv = ["etio", *json.loads(sys.argv[1])]
from etio.commands import app
try:
    app.main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy})
print("HEAVY=" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def _probe(*args: str) -> dict:
    script = _PROBE.format(heavy=repr(set(HEAVY)))
    run = subprocess.run([sys.executable, "-c", script, json.dumps([str(a) for a in args])], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    line = next(l for l in run.stdout.splitlines() if l.startswith("HEAVY="))
    result = json.loads(line[len("HEAVY="):])
    result["stderr"] = run.stderr
    return result


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A store of the smoke config with nothing trained yet: ``etio status`` reads its plan."""
    from etio.pipeline.study import load_study
    from etio.traces.store import create_store

    root = tmp_path_factory.mktemp("startup") / "store"
    create_store(root, load_study(REPO / "experiments" / "smoke.toml").experiment)
    return root


@pytest.mark.parametrize("args", [
    ["--help"], ["learn", "--help"], ["table6", "--help"],
], ids=lambda a: " ".join(a))
def test_help_imports_no_heavy_stack(args):
    result = _probe(*args)
    assert result["code"] in (0, None)
    assert result["heavy"] == []


def test_status_imports_no_heavy_stack(small_store):
    result = _probe("status", "--store", small_store)
    assert result["code"] in (0, None), result["stderr"]
    assert result["heavy"] == []


@pytest.mark.parametrize("args", [
    ["traces", "--config", "experiments/missing.toml", "--out", "unused"],
    ["plan", "--config", "experiments/missing.toml"],
    ["attack", "--out", "tests"],                           # not a trace store
    ["query", "--traces", "missing.csv", "--graphs", "tests", "--out", "unused.csv"],
    ["learn", "--traces", "missing.csv", "--out", "unused"],
    ["pitfalls", "--traces", "missing.csv", "--out", "unused"],
], ids=lambda a: a[0])
def test_input_errors_import_no_heavy_stack(args):
    result = _probe(*args)
    assert result["code"] == 2, result["stderr"]
    assert result["heavy"] == []


def test_the_probe_sees_a_heavy_import(small_store):
    # The check itself can fail: a command that does load torch (to resolve its device, once its
    # store and settings are checked) is reported as such.
    result = _probe("attack", "--store", small_store, "--device", "tpu")
    assert result["code"] == 2 and "torch" in result["heavy"]
