"""The recorded digests of the smoke study's outputs (tests/pipeline/test_smoke_bytes.py).

``python -m tests.support.smoke_digests OUT`` records the digests of a smoke run in OUT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.repo import FIXTURES, tree

DIGESTS = FIXTURES / "smoke-digests.json"

#: Where a run keeps its timestamps, durations and commit: the only files a refactor may change.
PROVENANCE = frozenset({"provenance.json", ".etio-output.json", ".lock"})


def compared_files(root: Path) -> dict[str, str]:
    """SHA-256 of every output under ``root`` except the provenance files."""
    return {rel: digest for rel, digest in tree(root).items() if Path(rel).name not in PROVENANCE}


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
