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


# --------------------------------------------------------------------------------------
# One spelling per option (the old ones accepted for one release, out of the help)
# --------------------------------------------------------------------------------------

def test_help_shows_the_new_spellings_only(etio_cli):
    helps = {cmd: etio_cli(*cmd.split(), "--help").stdout for cmd in ("learn", "query", "pitfalls", "attack",
                                                                       "status", "bench attacks", "bench ate")}
    assert "--traces" in helps["learn"] and helps["learn"].splitlines()[0].endswith(" learn [OPTIONS]")
    for cmd in ("learn", "query", "pitfalls", "bench ate"):
        assert "--weight-decay" in helps[cmd] and "--wd" not in helps[cmd], cmd
    for cmd in ("attack", "status", "bench attacks"):
        assert "--store" in helps[cmd] and "--out" not in helps[cmd], cmd


def _stdout(monkeypatch, capsys, *args) -> str:
    from etio.commands import app as cli

    monkeypatch.setattr("sys.argv", ["etio", *map(str, args)])
    capsys.readouterr()
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    return capsys.readouterr().out


def test_store_and_its_old_spelling_name_the_same_store(tmp_path, monkeypatch, capsys):
    from etio.pipeline.study import load_study
    from etio.traces.store import create_store
    from tests.support.repo import REPO

    store = tmp_path / "store"
    create_store(store, load_study(REPO / "experiments" / "smoke.toml").experiment)
    new = _stdout(monkeypatch, capsys, "status", "--store", store)
    assert new.startswith("traces: 4 units: 0 done")
    assert _stdout(monkeypatch, capsys, "status", "--out", store) == new


def test_weight_decay_and_its_old_spelling_query_the_same_slice(tmp_path, monkeypatch, capsys):
    import json

    from tests.support.cli import run_main
    from tests.support.repo import REPO

    example = REPO / "etio" / "data" / "example_traces.csv"
    for spelling, out in (("--weight-decay", tmp_path / "new"), ("--wd", tmp_path / "old")):
        code, err = run_main(monkeypatch, capsys, "pitfalls", "--traces", example, spelling, "0.005", "--out", out)
        assert code == 0, err
    records = [json.loads((tmp_path / d / "provenance.json").read_text())["config"] for d in ("new", "old")]
    assert records[0] == records[1] and records[0]["weight_decay"] == 0.005
    assert (tmp_path / "new" / "pitfalls.csv").read_bytes() == (tmp_path / "old" / "pitfalls.csv").read_bytes()


def test_reproduce_finds_its_default_config_from_any_directory(tmp_path, monkeypatch, capsys):
    # The default experiments/digits.toml is the checkout's, not the working directory's: from
    # elsewhere the config loads and the next check (an --replicates of 0) is the one that fails.
    from tests.support.cli import run_main

    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, "reproduce", "--out", tmp_path / "run", "--replicates", "0")
    assert code == 2 and "replicates" in err and "does not exist" not in err
    assert list(tmp_path.iterdir()) == []
