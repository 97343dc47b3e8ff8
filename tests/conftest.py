"""Shared fixtures: the repository layout, R's presence, and running the ``etio`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.repo import REPO, run_command


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def etio_cli():
    """``etio_cli(*args)`` runs ``python -m etio ARGS`` in a fresh process."""
    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_command([sys.executable, "-m", "etio", *map(str, args)], timeout=timeout)
    return run


@pytest.fixture(scope="session")
def rscript():
    """``rscript(script, *args)`` runs ``Rscript script ARGS`` from the repository root."""
    def run(script: str | Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_command(["Rscript", str(script), *map(str, args)], timeout=timeout)
    return run


#: Module fixtures that identify or estimate every query of the authors' graphs (1–2 s to set up).
EXPENSIVE_FIXTURES = frozenset({"identifications", "identity_ates"})
#: A test whose own run (mutmut's measure, ``mutants/mutmut-stats.json``) takes longer, in seconds.
SLOW_CALL = 0.4


def _mutant_order(items) -> None:
    """Under a mutant (``make mutation``), the cheap tests first and the expensive ones last, in
    their original order otherwise (a stable sort keeps each module's tests together, so no
    module fixture is set up twice). mutmut stops a mutant at its first failing test, so a mutant
    that a cheap test kills no longer pays for the expensive setups of the tests before it."""
    import json

    stats = Path("mutmut-stats.json")       # mutmut runs the tests from its mutants/ directory
    durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.exists() else {}

    def expensive(item) -> bool:
        return bool(EXPENSIVE_FIXTURES.intersection(item.fixturenames)) or \
            durations.get(item.nodeid.removeprefix("mutants/"), 0.0) > SLOW_CALL

    items.sort(key=expensive)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available; under a mutant, cheap tests first."""
    import torch

    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        _mutant_order(items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


#: The module ``make qa`` runs; its outcome is summarised in one line.
QA_MODULE = "test_qa_matrix.py"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After the bad-input and fault matrix ran: ``qa matrix: N held, M failed``."""
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        counts[outcome] = sum(1 for report in terminalreporter.stats.get(outcome, [])
                              if getattr(report, "when", "call") in ("call", "setup")
                              and Path(str(getattr(report, "fspath", ""))).name == QA_MODULE)
    if not any(counts.values()):
        return
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    terminalreporter.write_line(f"qa matrix: {counts['passed']} held, {counts['failed'] + counts['error']} "
                                f"failed{skipped}")
