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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
