"""Running the ``etio`` command line, in a fresh process or in this one, and reading what it printed."""

from __future__ import annotations

import subprocess
import sys

from tests.support.repo import run_command


def run_etio(*args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m etio ARGS`` in a fresh process from the repository root (``env`` added to the
    environment); the completed process with its text output."""
    return run_command([sys.executable, "-m", "etio", *map(str, args)], timeout=timeout, env=env)


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


def one_error_line(err: str) -> str:
    """The one ``error: ...`` line a failing command prints (no traceback, nothing else)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
