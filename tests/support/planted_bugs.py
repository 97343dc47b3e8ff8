"""Deliberate bugs that earlier versions of the test suite let pass, kept as a mutation fixture.

Each :class:`PlantedBug` is a textual edit of one source file and the tests of which at least
one must fail once the edit is applied. ``make mutation`` applies every one of them (besides
the mutants mutmut generates) and ``tests/core/test_planted_bugs.py`` checks them on every test
run, each in a scratch copy of the repository, so the working tree is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: What a scratch copy needs to run the tests (the package with its data, the tests, the R layer).
COPIED = ("etio", "tests", "r", "experiments", "pyproject.toml")


@dataclass(frozen=True)
class PlantedBug:
    name: str
    path: str                                  # source file, relative to the repository
    edits: tuple[tuple[str, str], ...]         # (original text, planted text); each original occurs once
    tests: tuple[str, ...]                     # pytest node ids; at least one must fail
    what: str


PLANTED: tuple[PlantedBug, ...] = (
    PlantedBug(
        "threshold-1.5-tau", "etio/attacks/threshold.py",
        (("(test_loss > tau)", "(test_loss > 1.5 * tau)"),
         ("outputs.labels_of(m), loss) <= tau)", "outputs.labels_of(m), loss) <= 1.5 * tau)")),
        ("tests/attacks/test_attack_paths.py::test_threshold_attack_on_losses_either_side_of_tau_and_one_equal_to_it",),
        "the threshold attack compares losses with 1.5 x tau instead of tau"),
    PlantedBug(
        "interval-10x-with-modifiers", "etio/causal/estimators/sound.py",
        (("ci_low=ate - half, ci_high=ate + half,",
          "ci_low=ate - half * (10 if modifiers else 1), ci_high=ate + half * (10 if modifiers else 1),"),),
        ("tests/causal/test_sound_estimator.py::test_p_value_tests_the_ate_and_agrees_with_the_interval",
         "tests/causal/test_sound_estimator.py::test_sound_tables_keep_p_and_interval_in_step"),
        "the ATE's confidence interval is 10 times too wide when there are effect modifiers"),
    PlantedBug(
        "refuter-p-values-1.0", "etio/causal/refuters/base.py",
        (('p_value=float(significance["p_value"])', 'p_value=1.0'),),
        ("tests/causal/test_query.py::test_refuter_p_values_are_dowhys_tests_of_the_simulated_effects",),
        "every refuter p-value is hard-coded to 1.0 (the pass/fail column is untouched)"),
    PlantedBug(
        "memguard-mse-variance-rescaled", "etio/attacks/memguard.py",
        (("test_var = float(((test ** 2).sum(-1).mean(0) - (test.mean(0) ** 2).sum(-1)).mean())",
          "test_var = float(((test ** 2).sum(-1).mean(0) - (test.mean(0) ** 2).sum(-1)).mean()) * 2"),),
        ("tests/attacks/test_memguard.py::test_defended_statistics_equal_a_loop_over_the_test_points",),
        "MemGuard's MSE TestVar is doubled (TestBias2 = TestLoss - TestVar still holds)"),
    PlantedBug(
        "paper-ates-drop-rows", "etio/report/paper.py",
        (("raw = pd.read_csv(ate_csv(wd))", "raw = pd.read_csv(ate_csv(wd)).iloc[:-2]"),),
        ("tests/pipeline/test_reproduce.py::test_reproduce_paper_equals_the_papers_tables",),
        "the authors' ATEs lose their last two rows, so reproduce --paper drops a row of Table 6 and 8"),
    PlantedBug(
        "table-csv-drops-last-row", "etio/report/tables.py",
        (('table.to_csv(layout.path("table_file", staging, table=name, ext="csv"), index=False)',
          'table.iloc[:-1].to_csv(layout.path("table_file", staging, table=name, ext="csv"), index=False)'),),
        ("tests/report/test_tables.py::test_cli_paper_tables",),
        "the table CSV loses its last row (the file still exists and exceeds 100 bytes)"),
    PlantedBug(
        "seed-from-process-hash", "etio/traces/training.py",
        (("digest = hashlib.sha256(repr(tuple(parts)).encode()).digest()",
          "digest = hashlib.sha256(str(hash(tuple(parts))).encode()).digest()"),),
        ("tests/traces/test_train.py::test_seeds_are_stable",
         "tests/traces/test_train.py::test_seeds_and_initial_models_are_the_same_in_another_process"),
        "seeds come from Python's per-process string hash: stable within a process only"),
)


def planted_source(bug: PlantedBug, text: str) -> str:
    """``text`` with the bug planted; an edit whose original text is not found exactly once is an
    error (the fixture then needs updating to the current source)."""
    for original, planted in bug.edits:
        count = text.count(original)
        if count != 1:
            raise ValueError(f"{bug.name}: {original!r} occurs {count} times in {bug.path}; update tests/support/planted_bugs.py")
        text = text.replace(original, planted)
    return text


def scratch_copy(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def run_planted(bug: PlantedBug, scratch: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Plant ``bug`` in ``scratch`` (a :func:`scratch_copy`) and run its tests there."""
    path = scratch / bug.path
    path.write_text(planted_source(bug, path.read_text()))
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *bug.tests],
                          cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
