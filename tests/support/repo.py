"""The repository the tests run in: its paths, R's presence, and running a command from its root."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data"
#: The small digits grid (8 configurations) that the trace-store tests train.
MINI = FIXTURES / "traces-mini.toml"

#: Tests that need R are skipped only where R itself is not installed.
requires_r = pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (Rscript) is not installed")


def run_command(args: list[str], timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command from the repository root, capturing text output."""
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) -> SHA-256 of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
