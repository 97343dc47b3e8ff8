"""Shared fixtures: the repository, running the ``etio`` CLI and ``Rscript``, and the stores and runs that
many test files read (each built once per test run). Plain functions the tests import live in tests/support/."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Callable


def _share_the_cores() -> None:
    """Under pytest-xdist (``make test`` runs a worker per core), give each worker, and every command it
    starts, its share of the cores: torch's and the BLAS libraries' threads spin while they wait, and two
    workers of two threads each on two cores made some tests twenty times slower. Set before torch is
    imported; a thread count the user has set is kept."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return
    from etio.core.provenance import available_cores     # imports no torch

    share = str(max(1, available_cores() // int(workers)))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, share)


_share_the_cores()

import pytest  # noqa: E402  (after the thread counts are set)
from filelock import FileLock  # noqa: E402

from tests.support.cli import run_etio  # noqa: E402
from tests.support.repo import MINI, REPO, run_command, tree  # noqa: E402


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def etio_cli():
    """``etio_cli(*args)`` runs ``python -m etio ARGS`` in a fresh process (:func:`run_etio`)."""
    return run_etio


def _in_xdist_worker(config) -> bool:
    # the worker's own config, not the environment: a pytest that a test starts inherits the variables
    return hasattr(config, "workerinput")


def _built_once(config, tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory ``name`` that ``build(directory)`` fills, built once per test run: the pytest-xdist
    workers share it (the first to take its lock builds it, the others wait and read it)."""
    own = tmp_path_factory.getbasetemp()
    # a local worker's own directory is the run's popen-gwN; another kind's parent may be no run's alone
    if not _in_xdist_worker(config) or not own.name.startswith("popen-"):
        directory = tmp_path_factory.mktemp(name)
        build(directory)
        return directory
    shared = own.parent          # the run's, above every worker's own
    directory, done = shared / name, shared / f"{name}.built"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            if directory.exists():          # a worker whose build failed left it: this run's, built again
                shutil.rmtree(directory)
            directory.mkdir()
            build(directory)
            done.touch()
    return directory


def _kept_unchanged(root: Path):
    """Yield ``root``, then check that no test changed a byte under it: a store shared by the
    whole run is read in place and copied (``shutil.copytree``) by a test that changes it."""
    before = tree(root)
    yield root
    assert tree(root) == before, f"a test changed the shared store {root}; copy it before changing it"


@pytest.fixture(scope="session")
def mini_store(pytestconfig, tmp_path_factory):
    """The 8 configurations of tests/data/traces-mini.toml trained on the CPU, once per test run
    (no attack results); read it in place, copy it to change it."""
    from etio.pipeline.study import load_study
    from tests.support.stages import train

    out = _built_once(pytestconfig, tmp_path_factory, "mini",
                      lambda d: train(load_study(MINI).experiment, d / "store")) / "store"
    yield from _kept_unchanged(out)


@pytest.fixture(scope="session")
def mini_attacked(pytestconfig, tmp_path_factory, mini_store):
    """:func:`mini_store` with every attack of the paper and the low-FPR attacks run on it with the
    [attacks] table of tests/data/traces-mini.toml (the code path of a plain ``etio attack``),
    once per test run; read it in place, copy it to change it."""
    from etio.attacks.settings import ATTACK_NAMES
    from etio.pipeline.study import load_study
    from etio.traces.store import open_store
    from tests.support.stages import attack

    def build(directory: Path) -> None:
        shutil.copytree(mini_store, directory / "store")
        attack(open_store(directory / "store"), ATTACK_NAMES, load_study(MINI).attacks)

    out = _built_once(pytestconfig, tmp_path_factory, "mini-attacked", build) / "store"
    yield from _kept_unchanged(out)


@pytest.fixture(scope="session")
def smoke_run(pytestconfig, tmp_path_factory) -> Path:
    """``etio reproduce --config experiments/smoke.toml`` (about 75 s on two quiet cores), once
    per test run; read it in place, copy it to change it."""
    def build(directory: Path) -> None:
        proc = run_etio("reproduce", "--config", "experiments/smoke.toml", "--out", directory / "smoke", timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    out = _built_once(pytestconfig, tmp_path_factory, "reproduce", build) / "smoke"
    yield from _kept_unchanged(out)


@pytest.fixture(scope="session")
def rscript():
    """``rscript(script, *args)`` runs ``Rscript script ARGS`` from the repository root."""
    def run(script: str | Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_command(["Rscript", str(script), *map(str, args)], timeout=timeout)
    return run


#: Module fixtures that identify or estimate every query of the authors' graphs (1–2 s to set up).
EXPENSIVE_FIXTURES = frozenset({"identifications", "identity_ates"})
#: A test whose own run (mutmut's measure, ``mutants/mutmut-stats.json``) takes longer, in seconds.
SLOW_CALL = 0.4


def _mutant_order(items) -> None:
    """Under a mutant (``make mutation``), the cheap tests first and the expensive ones last, in
    their original order otherwise (a stable sort keeps each module's tests together, so no
    module fixture is set up twice). mutmut stops a mutant at its first failing test, so a mutant
    that a cheap test kills no longer pays for the expensive setups of the tests before it."""
    import json

    stats = Path("mutmut-stats.json")       # mutmut runs the tests from its mutants/ directory
    durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.exists() else {}

    def expensive(item) -> bool:
        return bool(EXPENSIVE_FIXTURES.intersection(item.fixturenames)) or \
            durations.get(item.nodeid.removeprefix("mutants/"), 0.0) > SLOW_CALL

    items.sort(key=expensive)


def _long_files_first(items) -> None:
    """Under pytest-xdist, the files with the most tests marked ``slow`` first (each file runs whole on one
    worker, ``--dist loadfile``): a long file started last would leave the other workers idle at the end.
    A stable sort, so every worker collects the same order."""
    def file_of(item) -> str:
        return item.nodeid.split("::")[0]

    slow = Counter(file_of(item) for item in items if "slow" in item.keywords)
    items.sort(key=lambda item: -slow[file_of(item)])


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available; under a mutant, cheap tests first; under
    pytest-xdist, long files first."""
    import torch

    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        _mutant_order(items)
    elif _in_xdist_worker(config):
        _long_files_first(items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


#: The module ``make qa`` runs; its outcome is summarised in one line.
QA_MODULE = "test_qa_matrix.py"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After the bad-input and fault matrix ran: ``qa matrix: N held, M failed``."""
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        counts[outcome] = sum(1 for report in terminalreporter.stats.get(outcome, [])
                              if getattr(report, "when", "call") in ("call", "setup")
                              and Path(str(getattr(report, "fspath", ""))).name == QA_MODULE)
    if not any(counts.values()):
        return
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    terminalreporter.write_line(f"qa matrix: {counts['passed']} held, {counts['failed'] + counts['error']} "
                                f"failed{skipped}")
