"""``etio bench executors``: the trace and attack stages on the local executor and on another one."""

from __future__ import annotations

import time
from pathlib import Path

from etio.core import layout
from etio.pipeline.executors import ExecutorSettings
from etio.pipeline.stages import attacks_on, traces_on


def compare(study, other: ExecutorSettings, device: str = "cpu") -> dict:
    """Wall seconds of traces + attacks of ``study`` on the local executor and on ``other``.

    The other executor's time includes starting it (a local Ray, or submitit's processes),
    which is its overhead on a small config; both runs' traces.csv are compared byte for byte.
    """
    import tempfile

    from etio.attacks.settings import ATTACK_NAMES

    seconds, tables = {}, {}
    with tempfile.TemporaryDirectory(prefix="etio-bench-executors-") as tmp:
        for name, settings in (("local", ExecutorSettings()), ("other", other)):
            out = Path(tmp) / name
            start = time.perf_counter()
            store = traces_on(study.experiment, out, settings, device)
            attacks_on(store, ATTACK_NAMES, study.attacks, settings, device, cfg=study.experiment)
            seconds[name] = time.perf_counter() - start
            tables[name] = layout.path("store_traces", out).read_bytes()
            configurations = len(store.keys())
    return {"configurations": configurations, "local_s": seconds["local"], "other_s": seconds["other"],
            "overhead_s": seconds["other"] - seconds["local"], "ratio": seconds["other"] / seconds["local"],
            "identical": tables["local"] == tables["other"]}
