"""Shared fixtures: the repository layout, R's presence, and running the ``etio`` CLI."""

from __future__ import annotations

import hashlib
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


def run_main(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``etio ARGS`` in this process (fast: imports are shared); (exit code, stderr)."""
    from etio.commands import app as cli

    monkeypatch.setattr("sys.argv", ["etio", *map(str, args)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) -> SHA-256 of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    """The one ``error: ...`` line a failing command prints (no traceback, nothing else)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


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
