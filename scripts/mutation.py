"""``make mutation``: the mutation score of the scientific core, per module.

1. Every bug of the planted-bug fixture (``tests/support/planted_bugs.py``) is planted in a scratch copy
   of the repository and must fail at least one of its tests.
2. mutmut (configured in ``pyproject.toml``, ``[tool.mutmut]``) mutates the core modules and
   runs, for each mutant, the tests that cover the mutated function.
3. The killed share is printed per module (killed or timed out / mutants tested). Survivors
   listed in ``docs/mutation.md`` with a reason are counted as equivalent; any other survivor
   is printed so it can be killed by a test or, when it cannot change a result, listed there.

Exit status 1 when a planted bug goes unnoticed or a module stays below the goal.

    python scripts/mutation.py [--modules centroid,generalization] [--max-children 2] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EQUIVALENTS = REPO / "docs" / "mutation.md"
GOAL = 0.80

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code)
KILLED = {1, 3}
TIMEOUT = {24, -24, 152, 255, 36}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


def core_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def select(modules: list[str], wanted: str | None) -> list[str]:
    if not wanted:
        return modules
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    chosen = [m for m in modules if any(Path(m).stem == n or m == n for n in names)]
    unknown = [n for n in names if not any(Path(m).stem == n or m == n for m in modules)]
    if unknown:
        sys.exit(f"error: unknown module(s) {', '.join(unknown)}; core modules: "
                 + ", ".join(Path(m).stem for m in modules))
    return chosen


def dotted(module_path: str) -> str:
    return module_path.removesuffix(".py").replace("/", ".")


def listed_equivalents() -> dict[str, str]:
    """``mutant name -> reason`` from the lines ``- `name`: reason`` of docs/mutation.md."""
    if not EQUIVALENTS.exists():
        return {}
    found = {}
    for line in EQUIVALENTS.read_text().splitlines():
        m = re.match(r"^- `([\w.]+__mutmut_\d+)`:?\s*(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def run_planted() -> bool:
    sys.path.insert(0, str(REPO))
    from tests.support.planted_bugs import PLANTED, run_planted as plant_and_test, scratch_copy

    print(f"planted bugs ({len(PLANTED)}, tests/support/planted_bugs.py):")
    all_caught = True
    for bug in PLANTED:
        with tempfile.TemporaryDirectory(prefix="etio-planted-") as tmp:
            result = plant_and_test(bug, scratch_copy(REPO, Path(tmp) / "repo"))
        caught = result.returncode == 1
        all_caught &= caught
        print(f"  {'killed  ' if caught else 'SURVIVED'} {bug.name}: {bug.what}"
              + ("" if caught else f" (pytest exit {result.returncode})"))
    return all_caught


def run_mutmut(modules: list[str], max_children: int) -> bool:
    """mutmut over ``modules``; False when mutmut itself failed (a failing clean test run, say),
    since its partial results would then be scored as if complete."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    patterns = [f"{dotted(m)}.*" for m in modules]
    code = subprocess.run(mutmut + patterns, cwd=REPO, env=env, check=False).returncode
    if code != 0:
        print(f"\nmutmut failed (exit {code}): the scores below are not a measurement")
    return code == 0


def score(modules: list[str]) -> bool:
    equivalents = listed_equivalents()
    ok = True
    unexplained: list[str] = []
    print(f"\n{'module':42s} {'mutants':>7s} {'killed':>7s} {'timeout':>7s} {'survived':>8s} {'no test':>7s}"
          f" {'equiv.':>6s} {'score':>7s}")
    for module in modules:
        meta = REPO / "mutants" / f"{module}.meta"
        if not meta.exists():
            print(f"{module:42s}   (not run)")
            ok = False
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        tested = {k: c for k, c in codes.items() if c is not None and c not in SKIPPED}
        killed = sum(c in KILLED for c in tested.values())
        timeout = sum(c in TIMEOUT for c in tested.values())
        survived = [k for k, c in tested.items() if c in SURVIVED]
        no_tests = [k for k, c in tested.items() if c in NO_TESTS]
        equivalent = [k for k in survived if k in equivalents]
        unexplained += [k for k in survived + no_tests if k not in equivalents]
        denominator = len(tested) - len(equivalent)
        if not tested:
            print(f"{module:42s}   (no mutant tested)")
            ok = False
            continue
        share = (killed + timeout) / denominator if denominator else 1.0
        ok &= share >= GOAL
        print(f"{module:42s} {len(tested):7d} {killed:7d} {timeout:7d} {len(survived):8d} {len(no_tests):7d}"
              f" {len(equivalent):6d} {100 * share:6.1f}%{'' if share >= GOAL else '  < goal'}")
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutant(s) neither killed nor listed as equivalent in "
              f"{EQUIVALENTS.relative_to(REPO)} (see one with `mutmut show NAME`):")
        for name in unexplained:
            print(f"  {name}")
    print(f"\ngoal: at least {100 * GOAL:.0f} % of the non-equivalent mutants killed in every module")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", help="comma-separated module names (default: every core module)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--fresh", action="store_true", help="forget mutmut's earlier results (mutants/)")
    parser.add_argument("--score-only", action="store_true", help="print the score of the last run")
    args = parser.parse_args()
    modules = select(core_modules(), args.modules)
    started = time.perf_counter()
    planted_ok = mutmut_ok = True
    if not args.score_only:
        if args.fresh and (REPO / "mutants" / "etio").is_dir():
            shutil.rmtree(REPO / "mutants")          # mutmut's own working copy, made by an earlier run
        planted_ok = run_planted()
        mutmut_ok = run_mutmut(modules, args.max_children)
    scores_ok = score(modules)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0 if planted_ok and mutmut_ok and scores_ok else 1


if __name__ == "__main__":
    sys.exit(main())
