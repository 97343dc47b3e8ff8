"""The command line as a user meets it: --version, -h, help texts as written, one progress display."""

from __future__ import annotations

import io
import re

from etio import __version__
from etio.core.progress import StageProgress, counted


def test_version(etio_cli):
    result = etio_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"etio {__version__}"


def test_short_help_everywhere(etio_cli):
    for args in ([], ["reproduce"], ["traces"], ["bench", "learn"]):
        result = etio_cli(*args, "-h")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage:") and "-h, --help" in result.stdout


def test_help_text_keeps_brackets_and_flags_look_like_flags(etio_cli):
    text = etio_cli("reproduce", "--help").stdout
    assert "config's [analysis] section" in re.sub(r"\s+", " ", text)
    assert "<bool>" not in text and re.search(r"^\s+--paper\s{2,}", text, re.M)
    assert "--method boot|cv" in text


def test_unknown_method_is_one_line(etio_cli, tmp_path):
    result = etio_cli("reproduce", "--method", "bootstrap", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --method: unknown method 'bootstrap'; known methods: boot, cv"]
    assert not (tmp_path / "run").exists()


def test_progress_lines_off_a_terminal_report_resume_elapsed_and_eta():
    lines: list[str] = []
    with StageProgress("attacks", 20, done=5, unit="configurations", echo=lines.append) as bar:
        for _ in range(15):
            bar.advance()
    assert lines[0] == "   attacks: 5 of 20 configurations already done"
    assert lines[1].startswith("   attacks: 6/20 configurations, ")
    assert all("elapsed" in line for line in lines[1:])
    assert "ETA" in lines[1] and lines[-1].startswith("   attacks: 20/20 configurations, ")
    assert len(lines) <= 13  # one line per tenth of the work, not one per item


def test_progress_bar_on_a_terminal():
    stream = io.StringIO()
    with StageProgress("traces", 3, unit="configurations", stream=stream, force_terminal=True) as bar:
        for _ in range(3):
            bar.advance()
    text = stream.getvalue()
    assert "traces" in text and "3/3" in text and "ETA" in text


def test_learn_callback_shows_one_display():
    lines: list[str] = []
    progress = counted("learn", unit="graphs", echo=lines.append)
    for done in range(1, 5):
        progress(done, 4, f"g{done}")
    assert lines[-1].startswith("   learn: 4/4 graphs, ") and lines[-1].endswith("(last: g4)")
