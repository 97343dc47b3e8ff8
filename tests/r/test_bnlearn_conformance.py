"""The bnlearn-compatible implementation, and any installed bnlearn, reproduce bnlearn 4.7's golden outputs.

Every golden call of ``tests/data/bnlearn-4.7/README.md`` is replayed on both cases by
``tests/r/replay_fixtures.R``, once through ``Rscript`` and once inside the embedded R that
etio uses (rpy2, with the data handed over from pandas), and every output is compared with
the golden files at their stated tolerances. The calls whose meaning changed after 4.7 go
through ``r/backend.R``, so in ``auto`` mode a machine with any bnlearn from 4.7 to 5.2.x checks
that version against the 4.7 golden outputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.support.repo import FIXTURES, REPO, requires_r

pytestmark = requires_r

GOLDEN = FIXTURES / "bnlearn-4.7"
CASES = ["small4", "etio14"]
REPLAY = REPO / "tests" / "r" / "replay_fixtures.R"
OUTPUTS = ["hc_arcs.csv", "hc_score.csv", "bnfit.csv", "boot_strength.csv", "boot_threshold.csv",
           "boot_averaged_arcs.csv", "cv_strength.csv", "cv_averaged_arcs.csv", "cv_summary.csv", "ci_test.csv"]


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300) or (math.isnan(a) and math.isnan(b))


def _arc_set(path: Path) -> set[tuple[str, str]]:
    table = pd.read_csv(path)
    return set(zip(table["from"], table["to"]))


def _strength(golden: Path, produced: Path, name: str) -> list[str]:
    g, p = pd.read_csv(golden / name), pd.read_csv(produced / name)
    problems = []
    if set(zip(g["from"], g["to"])) != set(zip(p["from"], p["to"])):
        return [f"{name}: different arc pairs"]
    merged = g.merge(p, on=["from", "to"], suffixes=("_g", "_p"))
    for column in ("strength", "direction"):
        diff = (merged[f"{column}_g"] - merged[f"{column}_p"]).abs()
        if (diff > 1e-9).any():
            row = merged.loc[diff.idxmax()]
            problems.append(f"{name}: {column} of {row['from']}->{row['to']} is {row[f'{column}_p']}, "
                            f"golden {row[f'{column}_g']}")
    return problems


def _keyed(golden: Path, produced: Path, name: str, keys: list[str], values: list[str]) -> list[str]:
    g = pd.read_csv(golden / name).set_index(keys)
    p = pd.read_csv(produced / name).set_index(keys)
    if set(g.index) != set(p.index):
        return [f"{name}: rows differ: golden {sorted(map(str, g.index))}, got {sorted(map(str, p.index))}"]
    problems = []
    for key in g.index:
        for column in values:
            if not _close(float(g.loc[key, column]), float(p.loc[key, column])):
                problems.append(f"{name}: {key} {column} = {p.loc[key, column]!r}, golden {g.loc[key, column]!r}")
    return problems


def compare_with_golden(case: str, produced: Path) -> list[str]:
    """Every difference between the replayed outputs and the golden ones (empty when conformant)."""
    golden = GOLDEN / case
    missing = [name for name in OUTPUTS if not (produced / name).is_file()]
    if missing:
        return [f"not produced: {', '.join(missing)}"]
    problems = []
    for name in ("hc_arcs.csv", "boot_averaged_arcs.csv", "cv_averaged_arcs.csv"):
        if _arc_set(golden / name) != _arc_set(produced / name):
            g, p = _arc_set(golden / name), _arc_set(produced / name)
            problems.append(f"{name}: missing {sorted(g - p)}, extra {sorted(p - g)}")
    problems += _strength(golden, produced, "boot_strength.csv")
    problems += _strength(golden, produced, "cv_strength.csv")
    g_thr = pd.read_csv(golden / "boot_threshold.csv")["threshold"].tolist()
    p_thr = pd.read_csv(produced / "boot_threshold.csv")["threshold"].tolist()
    if g_thr != p_thr:
        problems.append(f"boot_threshold.csv: {p_thr}, golden {g_thr}")
    g_cv, p_cv = pd.read_csv(golden / "cv_summary.csv"), pd.read_csv(produced / "cv_summary.csv")
    if g_cv["threshold"].tolist() != p_cv["threshold"].tolist():
        problems.append(f"cv_summary.csv: threshold {p_cv['threshold'].tolist()}, golden {g_cv['threshold'].tolist()}")
    for column in ("predcor", "mse"):
        if not _close(float(g_cv[column][0]), float(p_cv[column][0])):
            problems.append(f"cv_summary.csv: {column} {p_cv[column][0]!r}, golden {g_cv[column][0]!r}")
    problems += _keyed(golden, produced, "hc_score.csv", ["score"], ["value"])
    problems += _keyed(golden, produced, "bnfit.csv", ["node", "term"], ["value"])
    problems += _keyed(golden, produced, "ci_test.csv", ["x", "y"], ["statistic", "p.value"])
    return problems


def test_the_comparison_detects_a_difference(tmp_path):
    """The comparison itself can fail: perturb one golden value beyond its tolerance."""
    golden = GOLDEN / "small4"
    for name in OUTPUTS:
        (tmp_path / name).write_text((golden / name).read_text())
    assert compare_with_golden("small4", tmp_path) == []
    strength = pd.read_csv(tmp_path / "boot_strength.csv")
    strength.loc[0, "strength"] += 2e-9
    strength.to_csv(tmp_path / "boot_strength.csv", index=False)
    fit = pd.read_csv(tmp_path / "bnfit.csv")
    fit.loc[0, "value"] *= 1 + 1e-5
    fit.to_csv(tmp_path / "bnfit.csv", index=False)
    problems = compare_with_golden("small4", tmp_path)
    assert len(problems) == 2 and "boot_strength.csv" in problems[0] and "bnfit.csv" in problems[1]


def _bnlearn_installed() -> bool:
    import subprocess

    probe = subprocess.run(["Rscript", "-e", "cat(requireNamespace('bnlearn', quietly = TRUE))"],
                           capture_output=True, text=True)
    return probe.stdout.strip() == "TRUE"


@pytest.mark.parametrize("mode", ["compat", "auto"])
@pytest.mark.parametrize("case", CASES)
def test_replay_through_rscript_matches_bnlearn(case, mode, tmp_path, rscript):
    """``compat`` forces the stand-in; ``auto`` takes bnlearn itself where it is installed, so a
    machine with bnlearn checks the real branch against the same golden files."""
    result = rscript(REPLAY, GOLDEN / case, tmp_path, mode)
    assert result.returncode == 0, result.stderr
    backend = next(line for line in result.stdout.splitlines() if line.startswith("backend:"))
    if mode == "auto" and _bnlearn_installed():
        assert backend.startswith("backend: bnlearn ") and "compat" not in backend, backend
    else:
        assert backend.startswith("backend: bnlearn-compat"), backend
    # The version-proof calls (r/backend.R) equal the literal 4.7 calls wherever those still run.
    literal = next(line for line in result.stdout.splitlines() if line.startswith("literal 4.7 calls checked:"))
    if mode == "compat":
        assert literal.split()[-1] == "TRUE", literal
    assert compare_with_golden(case, tmp_path) == []


# Runs replay_fixtures.R unchanged inside the embedded R: its command-line arguments are
# supplied, the compatible implementation is sourced into a private environment (not the
# session's global one, which etio.R uses) and data.csv is the table pandas read, handed over
# by rpy2's converter. The compatible implementation resolves algorithm names ("hc") from the
# search path, so the private environment is also attached there, ahead of any bnlearn, while
# the replay runs.
_EMBEDDED_REPLAY = r"""
function(script, case_dir, out_dir, data, compat) {
  env <- new.env(parent = globalenv())
  env$commandArgs <- function(trailingOnly = FALSE)
    if (trailingOnly) c(case_dir, out_dir, "compat") else c("R", paste0("--file=", script))
  env$source <- function(file, local = FALSE, chdir = FALSE, ...) sys.source(file, envir = env, chdir = chdir)
  env$read.csv <- function(file, ...) if (basename(file) == "data.csv") data else utils::read.csv(file, ...)
  sys.source(compat, envir = env, chdir = TRUE)
  attach(env, pos = 2L, name = "etio:replay", warn.conflicts = FALSE)
  on.exit(detach("etio:replay", character.only = TRUE))
  sys.source(script, envir = env)
  get(".etio_compat_backend", envir = env)
}
"""


# The golden call custom.strength(xval, names(data)) gets bnlearn's own warning.
@pytest.mark.filterwarnings("ignore:the labels from the 'nodes' argument will be ignored")
@pytest.mark.parametrize("case", CASES)
def test_replay_through_rpy2_matches_bnlearn(case, tmp_path):
    from etio.causal import rbridge

    data = pd.read_csv(GOLDEN / case / "data.csv")
    backend = rbridge.call(rbridge.function(_EMBEDDED_REPLAY), str(REPLAY), str(GOLDEN / case), str(tmp_path), data,
                           str(REPO / "r" / "compat" / "bnlearn.R"))
    assert backend.startswith("bnlearn-compat")
    assert compare_with_golden(case, tmp_path) == []
