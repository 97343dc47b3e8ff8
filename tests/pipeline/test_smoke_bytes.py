"""The smoke study's outputs, byte for byte.

A refactor keeps every output of ``etio reproduce --config experiments/smoke.toml`` the same bytes:
traces, store, graphs, strengths, ATE tables, tables, figures and the report. Only what holds
timestamps, durations, process ids and the commit may change: the provenance files, the store's
ledger of units, and the timing fields of the store's records. The SHA-256 of every other file
is recorded in tests/data/smoke-digests.json; a change that is meant to move a number records the
new digests with ``python -m tests.support.smoke_digests OUT`` after a fresh smoke run into OUT,
and says why in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.smoke_digests import DIGESTS, compared_files, differences


def test_smoke_outputs_are_the_recorded_bytes(smoke_run: Path):
    recorded = json.loads(DIGESTS.read_text())
    changed = differences(recorded, compared_files(smoke_run))
    assert changed == [], f"{len(changed)} smoke outputs differ from tests/data/smoke-digests.json: {changed[:10]}"


def test_the_byte_check_sees_one_changed_byte_and_one_missing_file(tmp_path: Path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "figure.svg").write_bytes(b"<svg/>")
    (tmp_path / "provenance.json").write_text('{"started": "now"}')
    recorded = compared_files(tmp_path)
    assert sorted(recorded) == ["figure.svg", "tables/t.csv"]     # provenance is not compared
    (tmp_path / "provenance.json").write_text('{"started": "later"}')
    assert differences(recorded, compared_files(tmp_path)) == []
    record = tmp_path / "store" / "configs" / "c" / "attacks" / "oak17.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"Oak17Acc": 0.61, "seconds": 0.42}')
    (tmp_path / "store" / "units").mkdir()
    (tmp_path / "store" / "units" / "u.json").write_text('{"pid": 1}')
    recorded = compared_files(tmp_path)
    record.write_text('{"seconds": 0.74, "Oak17Acc": 0.61}')   # a timing and the key order
    (tmp_path / "store" / "units" / "u.json").write_text('{"pid": 2}')
    assert differences(recorded, compared_files(tmp_path)) == []
    record.write_text('{"Oak17Acc": 0.62, "seconds": 0.42}')
    assert differences(recorded, compared_files(tmp_path)) == ["store/configs/c/attacks/oak17.json (changed)"]
    (tmp_path / "tables" / "t.csv").write_bytes(b"a,b\n1,3\n")
    (tmp_path / "figure.svg").unlink()
    assert differences(recorded, compared_files(tmp_path)) == [
        "figure.svg (missing)", "store/configs/c/attacks/oak17.json (changed)", "tables/t.csv (changed)"]
