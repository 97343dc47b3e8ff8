"""Check that `etio learn` gives bnlearn 4.7's files on other installed bnlearn versions.

    python scripts/bnlearn_versions.py --lib DIR [--lib DIR ...] [--traces FILE ...] [--seeds 1,2]
        [--methods boot,cv] [--replicates 100] [--runs 10] [--out WORKDIR]

Each DIR is an R library holding one bnlearn build (bnlearn/ inside it). For every traces file,
method and seed, `etio learn` runs with each library first on R's library path, and with the
compatible implementation (ETIO_R_BACKEND=compat). The reference is the run with `--reference
LIB` (a library holding bnlearn 4.7), or r/compat/ when none is given: every file `etio learn`
writes with another library, except the figures and provenance.json, must be the same bytes as
the reference's. r/compat/ itself is held to the conformance tests' standard instead (the same
graphs and arcs; numbers within a relative 1e-9), and its largest relative difference is printed. Besides the given traces, three copies of
each are checked: one in which ThresholdAcc is replaced by seeded noise, so that the attack is a
root of its graph (where bnlearn 5.1's pooled "cor" differs from 4.7's); one with only the first
40 rows of each loss at each weight decay; and one in which NumParams is tripled on the 5k
training sets, so that two roots are linked by an arc that no rule orients and averaged networks
keep undirected arcs. Prints
a Markdown table, one row per version, with how many of the compared graphs had a root attack
(Predcor NA) and an undirected averaged network (MSE -1), and exits 1 when any file differs.
Outputs already under --out are reused (a run is the same bytes whenever it is repeated).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from etio.core import layout

REPO = Path(__file__).resolve().parent.parent
COMPARED_OUT = {"provenance.json"}
FIGURES = {".svg", ".png"}


def learn(traces: Path, out: Path, method: str, seed: int, replicates: int, runs: int, env: dict,
          attacks: str | None) -> str:
    if (out / "provenance.json").is_file():
        return json.loads((out / "provenance.json").read_text())["backend"]
    command = [sys.executable, "-m", "etio", "learn", str(traces), "--out", str(out), "--method", method,
               "--seed", str(seed), "--replicates", str(replicates), "--runs", str(runs), "--workers", "1"]
    command += ["--attacks", attacks] if attacks else []
    done = subprocess.run(command, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    line = next((x for x in done.stdout.splitlines() if "(backend " in x), "")
    return line[line.find("(backend ") + 9:line.rfind(")")].split(", results as")[0] if line else "?"


def compared_files(out: Path) -> list[str]:
    """The files of one `etio learn` output that are compared: all but the figures and provenance.json."""
    return sorted(p.name for p in out.iterdir() if p.suffix not in FIGURES and p.name not in COMPARED_OUT)


def differing(a: Path, b: Path) -> list[str]:
    names, other = compared_files(a), compared_files(b)
    if names != other:
        return [f"file lists differ: {sorted(set(names) ^ set(other))}"]
    return [n for n in names if not filecmp.cmp(a / n, b / n, shallow=False)]


def largest_difference(a: Path, b: Path, names: list[str]) -> float:
    """The largest relative difference between the numbers of same-named CSV files (inf when their
    text columns or shapes differ, or a .dot file differs)."""
    worst = 0.0
    for name in names:
        if not name.endswith(".csv"):
            return math.inf
        x, y = pd.read_csv(a / name), pd.read_csv(b / name)
        if x.shape != y.shape or list(x.columns) != list(y.columns):
            return math.inf
        for column in x.columns:
            if pd.api.types.is_numeric_dtype(x[column]) and pd.api.types.is_numeric_dtype(y[column]):
                u, v = x[column].to_numpy(float), y[column].to_numpy(float)
                if not np.array_equal(np.isnan(u), np.isnan(v)):
                    return math.inf
                ok = ~np.isnan(u)
                scale = np.maximum(np.abs(u[ok]), np.abs(v[ok]))
                rel = np.abs(u[ok] - v[ok]) / np.where(scale > 0, scale, 1)
                worst = max(worst, float(rel.max(initial=0.0)))
            elif not x[column].equals(y[column]):
                return math.inf
    return worst


def root_attack_copy(traces: Path, workdir: Path) -> Path:
    table = pd.read_csv(traces)
    rng = np.random.default_rng(7)
    table["ThresholdAcc"] = np.round(rng.uniform(0.5, 0.6, len(table)), 6)
    path = workdir / f"{traces.stem}-root-attack.csv"
    table.to_csv(path, index=False)
    return path


def small_copy(traces: Path, workdir: Path) -> Path:
    table = pd.read_csv(traces)
    path = workdir / f"{traces.stem}-40-rows.csv"
    table.groupby(["Loss", "WeightDecay"], sort=False).head(40).to_csv(path, index=False)
    return path


def coupled_roots_copy(traces: Path, workdir: Path) -> Path:
    table = pd.read_csv(traces)
    rng = np.random.default_rng(3)
    size = table["TrainSize"].astype(str).str.replace("k", "000").astype(float)
    table["NumParams"] = np.round(table["NumParams"] * np.where(size > 1000, 3.0, 1.0)
                                  * np.exp(rng.normal(0, 0.05, len(table))))
    path = workdir / f"{traces.stem}-coupled-roots.csv"
    table.to_csv(path, index=False)
    return path


def special_graphs(out: Path) -> tuple[int, int]:
    """Graphs of one output with a root attack (Predcor NA) and with an undirected network (MSE -1)."""
    table = pd.concat([pd.read_csv(p) for p in out.glob(layout.glob_pattern("predictive"))])
    return int(table["Predcor"].isna().sum()), int((table["MSE"] == -1).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", action="append", required=True, type=Path)
    parser.add_argument("--traces", action="append", type=Path)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--methods", default="boot,cv")
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reference", type=Path, default=None,
                        help="an R library holding bnlearn 4.7 (default: r/compat/ is the reference)")
    parser.add_argument("--attacks", default=None, help="passed to etio learn (default: every attack)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/etio-bnlearn-versions"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    traces = args.traces or [REPO / "etio" / "data" / "example_traces.csv"]
    traces = traces + [copy(t, args.out) for copy in (root_attack_copy, small_copy, coupled_roots_copy) for t in traces]
    cases = [(t, m, int(s)) for t in traces for m in args.methods.split(",") for s in args.seeds.split(",")]
    def run_all(label: str, env: dict) -> tuple[dict, set]:
        outs, backends = {}, set()
        for t, m, s in cases:
            out = args.out / label / f"{t.stem}-{m}-{s}"
            backends.add(learn(t, out, m, s, args.replicates, args.runs, env, args.attacks))
            outs[(t, m, s)] = out
        print(f"{label}: {', '.join(sorted(backends))}", file=sys.stderr)
        return outs, backends

    def library_env(lib: Path) -> dict:
        return {"R_LIBS": str(lib.resolve()), "R_LIBS_USER": str(lib.resolve())}

    compat, _ = run_all("compat", {"ETIO_R_BACKEND": "compat"})
    reference, reference_backends = run_all("reference", library_env(args.reference)) if args.reference else \
        (compat, {"r/compat/"})
    roots = undirected = graphs = 0
    for out in reference.values():
        r, u = special_graphs(out)
        roots, undirected = roots + r, undirected + u
        graphs += len(list(out.glob(layout.glob_pattern("strength"))))
    failed = False
    print(f"{len(cases)} cases (traces x method x seed), {graphs} graphs: {roots} with a root attack (Predcor NA), "
          f"{undirected} with undirected arcs in the averaged network (MSE -1); reference: "
          f"{', '.join(sorted(reference_backends))}\n")
    print("| library | backend used | cases | files | files identical to the reference | differing |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lib in args.lib:
        outs, backends = run_all(lib.name, library_env(lib))
        files = same = 0
        problems = []
        for key, out in outs.items():
            diff = differing(reference[key], out) if out.is_dir() else ["no output"]
            count = len(compared_files(out))
            files, same = files + count, same + count - len(diff)
            problems += [f"{key[0].stem}/{key[1]}/{key[2]}: {', '.join(diff)}"] if diff else []
        failed |= bool(problems)
        print(f"| {lib} | {', '.join(sorted(backends))} | {len(cases)} | {files} | {same} | "
              f"{'; '.join(problems) or '-'} |")
    if args.reference:
        worst, files, same = 0.0, 0, 0
        for key, out in compat.items():
            diff = differing(reference[key], out)
            count = len(compared_files(out))
            files, same = files + count, same + count - len(diff)
            worst = max(worst, largest_difference(reference[key], out, diff))
        failed |= worst > 1e-9
        print(f"| r/compat/ | bnlearn-compat 4.7 | {len(cases)} | {files} | {same} | "
              f"the rest within a relative {worst:.1e} (graphs and arcs identical) |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
