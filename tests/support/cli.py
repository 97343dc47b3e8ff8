"""Running the ``etio`` command line in this process and reading what it printed."""

from __future__ import annotations


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
