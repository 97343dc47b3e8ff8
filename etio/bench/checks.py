"""What the reliability checks cost a run: ``etio bench checks``.

The checks are the store's checksums (written with every stored file, compared on reuse), the
verification of stored configurations before they are reused or attacked, the trace-table
checks at the edge of each analysis, the output rules (marker, refusals) and the store's
advisory lock. :class:`CheckTimer` times every call into them while a whole ``reproduce`` runs
in this process, so the share is measured in one run, not as the difference of two runs whose
noise would be larger than the checks themselves. Writing through a temporary file and a
rename is how every stored file is written, with no slower path to compare it with, so it
counts as writing, not as a check.
"""

from __future__ import annotations

import importlib
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

#: The checks, by the category the benchmark reports them under: (module, attribute) pairs,
#: where an attribute "Class.method" is a method.
CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "checksums": (("etio.traces.store", "sha256_bytes"), ("etio.traces.store", "sha256_file"),
                  ("etio.traces.store", "with_checksum"), ("etio.traces.store", "checksum_problem")),
    "verifying stored configurations": (("etio.traces.store", "TraceStore.damage"),
                                        ("etio.traces.store", "TraceStore.invalidate_damaged"),
                                        ("etio.traces.store", "TraceStore.require_intact")),
    "trace-table checks": (("etio.core.schema", "check_trace_rows"), ("etio.core.schema", "check_trace_columns")),
    "output rules": (("etio.core.outputs", "check_output_dir"), ("etio.core.outputs", "claim_output_dir")),
    "store lock": (("etio.traces.store", "store_lock"),),
}
#: The context managers among the checks: their entry and exit are timed, not the block they hold.
CONTEXT_MANAGERS = {("etio.traces.store", "store_lock")}


class CheckTimer:
    """Seconds spent inside each category of :data:`CHECKS` while the timer is installed.

    A check called from inside another (a checksum inside a verification) counts once, for the
    outermost. Every module-level name bound to a check (``from ... import check_trace_columns``)
    is replaced while installed and restored after, so calls through any of them are timed.
    """

    def __init__(self, checks: dict[str, tuple[tuple[str, str], ...]] = CHECKS):
        self.checks = checks
        self.seconds = {category: 0.0 for category in checks}
        self.calls = {category: 0 for category in checks}
        self._depth = 0
        self._replaced: list[tuple[object, str, object]] = []

    @contextmanager
    def timing(self, category: str) -> Iterator[None]:
        outermost = self._depth == 0
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if outermost:
                self.seconds[category] += time.perf_counter() - start
                self.calls[category] += 1

    def _wrap(self, category: str, original: Callable, context_manager: bool) -> Callable:
        timing = self.timing
        if context_manager:
            @contextmanager
            def timed_context(*args, **kwargs):
                with timing(category):
                    manager = original(*args, **kwargs)
                    manager.__enter__()
                try:
                    yield
                except BaseException:
                    with timing(category):
                        if not manager.__exit__(*sys.exc_info()):
                            raise
                else:
                    with timing(category):
                        manager.__exit__(None, None, None)
            return timed_context

        def timed(*args, **kwargs):
            with timing(category):
                return original(*args, **kwargs)
        timed.__wrapped__ = original
        return timed

    def __enter__(self) -> "CheckTimer":
        import etio.pipeline.reproduce  # noqa: F401  (every stage that binds a check is imported first)

        for category, targets in self.checks.items():
            for module_name, attribute in targets:
                owner: object = importlib.import_module(module_name)
                *path, name = attribute.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = getattr(owner, name)
                wrapper = self._wrap(category, original, (module_name, attribute) in CONTEXT_MANAGERS)
                holders = [(owner, name)] + [(module, key) for module in list(sys.modules.values())
                                             if getattr(module, "__name__", "").startswith("etio")
                                             and module is not owner
                                             for key, value in list(vars(module).items()) if value is original]
                for holder, key in holders:
                    self._replaced.append((holder, key, original))
                    setattr(holder, key, wrapper)
        return self

    def __exit__(self, *exc) -> None:
        for holder, key, original in reversed(self._replaced):
            setattr(holder, key, original)
        self._replaced.clear()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def run(config_path: Path, device: str = "cpu", workers: int | None = None) -> dict:
    """``reproduce`` of ``config_path`` in a temporary run folder with a :class:`CheckTimer`
    installed; then the finished store verified once more (what a rerun pays before reusing it).

    Every unit runs in this process (the local executor, ``processes = 1``, whatever the config's
    ``[executor]`` table says), where the timer sees it: worker processes would write their
    checksums out of its sight. The share is then the checks' part of the work,
    the same whether the work is spread over processes or not.

    Returns the run's wall seconds, the checks' seconds by category and their share of the run.
    """
    import tempfile

    from etio.pipeline.executors import ExecutorSettings
    from etio.pipeline.reproduce import reproduce
    from etio.pipeline.study import load_study
    from etio.traces.store import open_store

    study = load_study(config_path)
    executor = ExecutorSettings(kind="local", processes=1)        # whatever the config's [executor] says
    with tempfile.TemporaryDirectory(prefix="etio-bench-checks-") as tmp:
        out = Path(tmp) / "run"
        with CheckTimer() as timer:
            start = time.perf_counter()
            reproduce(study, out, source=config_path, device=device,
                      echo=lambda line: None, workers=workers,
                      executor=executor)
            run_s = time.perf_counter() - start
        store = open_store(out / "store")
        start = time.perf_counter()
        damaged = store.invalidate_damaged()
        reverify_s = time.perf_counter() - start
        configurations = len(store.keys())
    return {"config": str(config_path), "configurations": configurations, "run_s": run_s,
            "checks_s": timer.total, "share": timer.total / run_s, "by_category": dict(timer.seconds),
            "calls": dict(timer.calls), "reverify_s": reverify_s, "damaged": damaged}
