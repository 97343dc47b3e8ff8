"""The unit ledger: each unit's state (queued, running, done, failed; host, attempt, error) in
``<store>/units/<stage>/<unit>.json``, kept by whichever executor runs it; ``etio status`` reads it."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Callable

from etio.core.provenance import write_json
from etio.pipeline.executors.units import Unit


def ledger_dir(store: Path, stage: str) -> Path:
    return Path(store) / "units" / stage


def entry_path(unit: Unit) -> Path:
    return ledger_dir(unit.store, unit.stage) / f"{unit.unit_id}.json"


def read_entry(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def record(unit: Unit, executor: str, state: str, **extra) -> dict:
    path = entry_path(unit)
    previous = read_entry(path) or {}
    entry = {"stage": unit.stage, "unit": unit.unit_id, "configurations": list(unit.configurations),
             "executor": executor, "state": state, "attempt": previous.get("attempt", 0),
             "resources": unit.resources.__dict__, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    entry.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, entry)
    return entry


def execute_unit(unit: Unit, executor: str, progress: Callable[[str], None] | None = None):
    """Run one unit where this is called (this process, a Ray worker, a Slurm job), keeping its ledger entry."""
    attempt = (read_entry(entry_path(unit)) or {}).get("attempt", 0) + 1
    record(unit, executor, "running", attempt=attempt, host=socket.gethostname(), pid=os.getpid(),
            job=os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")))
    kwargs = dict(unit.kwargs)
    if progress is not None and unit.progress_arg:
        kwargs[unit.progress_arg] = progress
    try:
        result = unit.fn(*unit.args, **kwargs)
    except BaseException as exc:
        record(unit, executor, "failed", host=socket.gethostname(), pid=os.getpid(), error=one_line(exc))
        raise
    record(unit, executor, "done", host=socket.gethostname(), pid=os.getpid())
    return result


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip()

