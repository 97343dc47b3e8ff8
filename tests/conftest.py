"""Shared fixtures: the repository layout, R's presence, and running the ``etio`` CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "data"

#: Tests that need R are skipped only where R itself is not installed.
requires_r = pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (Rscript) is not installed")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def run_command(args: list[str], timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command from the repository root, capturing text output."""
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


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
