"""Status of a store's units, whatever ran them: what ``etio status`` prints."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from etio.pipeline.executors.ledger import ledger_dir, read_entry


@dataclass
class StageStatus:
    stage: str
    units: int
    done: int
    running: list[dict]
    failed: list[dict]
    queued: int
    configurations: int = 0
    configurations_done: int = 0


def store_status(out: Path) -> list[StageStatus]:
    """Done, running, failed and queued units of each stage of the store at ``out``.

    Trace units are counted from the config's plan, done when all their configurations are
    stored; running and failed come from the unit ledger. Attack units are those the ledger
    knows of (one per configuration and run).
    """
    from etio.traces.stage import trace_units
    from etio.traces.store import open_store

    store = open_store(out)
    cfg = store.config      # checked when the store was made; no torch for a status
    result = []
    entries = _entries(Path(out), "traces")
    units = trace_units(cfg, None, pending_only=False)
    done = [u for u in units if all(store.is_done(k) for k in u.keys)]
    result.append(_stage_status("traces", [u.unit_id for u in units], {u.unit_id for u in done}, entries,
                                configurations=sum(len(u.keys) for u in units),
                                configurations_done=len(store.keys())))
    attack_entries = _entries(Path(out), "attacks")
    if attack_entries:
        ids = sorted(attack_entries)
        result.append(_stage_status("attacks", ids, {i for i, e in attack_entries.items() if e["state"] == "done"},
                                    attack_entries, configurations=len(ids)))
    return result


def _entries(root: Path, stage: str) -> dict[str, dict]:
    directory = ledger_dir(root, stage)
    if not directory.is_dir():
        return {}
    entries = {}
    submissions = read_entry(directory / "submissions.json") or {}
    for path in sorted(directory.glob("*.json")):
        if path.name == "submissions.json":
            continue
        entry = read_entry(path)
        if entry:
            entry.setdefault("job", (submissions.get(entry["unit"]) or {}).get("job"))
            entries[entry["unit"]] = entry
    return entries


def _stage_status(stage, ids, done_ids, entries, configurations=0, configurations_done=0) -> StageStatus:
    running, failed, queued = [], [], 0
    for unit_id in ids:
        if unit_id in done_ids:
            continue
        entry = entries.get(unit_id)
        state = entry["state"] if entry else "pending"
        if state == "running":
            running.append({**entry, "lost": _lost(entry)})
        elif state == "failed":
            failed.append(entry)
        else:
            queued += 1
    return StageStatus(stage, len(ids), len(done_ids), running, failed, queued, configurations,
                       configurations_done)


def _lost(entry: dict) -> bool:
    """A unit recorded as running in a process of this host that no longer exists."""
    if entry.get("host") != socket.gethostname() or not entry.get("pid"):
        return False
    try:
        os.kill(int(entry["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

