"""The recorded digests of the smoke study's outputs (tests/pipeline/test_smoke_bytes.py).

``python -m tests.support.smoke_digests OUT`` records the digests of a smoke run in OUT.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from tests.support.repo import FIXTURES, tree

DIGESTS = FIXTURES / "smoke-digests.json"

#: Where a run keeps its timestamps, durations, process ids and commit: the provenance files and
#: the store's ledger of units (``store/units/``) are not compared.
PROVENANCE = frozenset({"provenance.json", ".etio-output.json", ".lock"})
LEDGER = "store/units/"

#: The store's records also say how long each step took (and hash themselves, timings included);
#: those fields are dropped before a record is compared, every other field is compared.
TIMING_FIELDS = frozenset({"seconds", "stats_s", "job_train_s_at_snapshot", "sha256"})


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _record_digest(path: Path) -> str:
    record = _without_timings(json.loads(path.read_text()))
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def compared_files(root: Path) -> dict[str, str]:
    """SHA-256 of every output under ``root`` except provenance and the ledger; the store's JSON
    records are hashed without their timing fields."""
    found = {}
    for rel, digest in tree(root).items():
        if Path(rel).name in PROVENANCE or rel.startswith(LEDGER):
            continue
        if rel.startswith("store/configs/") and rel.endswith(".json"):
            digest = _record_digest(root / rel)
        found[rel] = digest
    return found


def differences(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """The files that are missing, new or changed, each with which."""
    found = []
    for rel in sorted(set(recorded) | set(now)):
        if rel not in now:
            found.append(f"{rel} (missing)")
        elif rel not in recorded:
            found.append(f"{rel} (new)")
        elif recorded[rel] != now[rel]:
            found.append(f"{rel} (changed)")
    return found


if __name__ == "__main__":
    DIGESTS.write_text(json.dumps(compared_files(Path(sys.argv[1])), indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(json.loads(DIGESTS.read_text()))} digests in {DIGESTS}")
