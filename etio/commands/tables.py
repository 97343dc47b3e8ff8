"""CLI of the paper's tables: ``etio table2``, ``table3``, ``table5`` ... ``table8`` and ``etio table NAME``.

Every table is built either from a run of ours (``--traces``/``--graphs``, or ``--results`` for
Table 2) or from the authors' published artifacts (``--paper``); ``--compare-paper`` puts the
paper's value beside ours. Output: ``<out>/<name>.{csv,md,tex}`` + ``provenance.json``, written
atomically, and the table printed on the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from etio.core import layout
from etio.core.errors import EtioInputError, check_choice
from etio.report.titles import EXTRA_TABLES, TITLES



def _our_ates(traces: Optional[Path], graphs: Optional[Path], weight_decay: float, losses):
    from etio.causal.graphs import read_graphs
    from etio.causal.query import estimate_ates
    from etio.core.schema import read_traces

    if traces is None or graphs is None:
        raise EtioInputError("give --paper, or both --traces and --graphs")
    return estimate_ates(read_traces(traces), read_graphs(graphs, losses=losses), weight_decay)


def build_table(name: str, *, paper_data: bool, traces: Optional[Path] = None, graphs: Optional[Path] = None,
                results: Optional[Path] = None, compare_paper: bool = False, estimator: str = "paper"):
    """The named table as a data frame (the logic behind the CLI, also used by ``etio reproduce``)."""
    from etio.report import paper
    from etio.report import tables

    if name == "robust":
        return build_robust_table(traces, graphs)
    check_choice("table", name, [*tables.TABLE_NAMES, *EXTRA_TABLES])
    if name == "table2":
        if paper_data:
            normal, high = paper.results(tables.NORMAL_WD), paper.results(tables.HIGH_WD)
        else:
            if results is None:
                raise EtioInputError(f"table2 needs --paper or --results DIR (the {layout.glob_pattern('comparison')} "
                                     "of etio learn)")
            normal, high = (_read_results(results, wd) for wd in (tables.NORMAL_WD, tables.HIGH_WD))
        table = tables.table2(normal, high)
        if compare_paper:
            ref = tables.table2(paper.results(tables.NORMAL_WD), paper.results(tables.HIGH_WD))
            for col in [c for c in ref.columns if c.endswith(("Value", "Pred.", "MSE"))]:
                table.insert(table.columns.get_loc(col) + 1, f"paper {col}", ref[col])
        return table
    if name == "table3":
        ates = paper.ates(tables.NORMAL_WD) if paper_data else _our_ates(traces, graphs, tables.NORMAL_WD, ("ce", "mse"))
        table = tables.table3(ates, estimator=estimator)
        if compare_paper:
            ref = tables.table3(paper.ates(tables.NORMAL_WD))
            for label in ("CE", "MSE"):
                published = tables.result_column(ref, label)
                table[f"paper {published}"] = ref[published]
        return table
    number = int(name[-1])
    loss, wd = tables.ATE_TABLES[number]
    ates = paper.ates(wd) if paper_data else _our_ates(traces, graphs, wd, (loss,))
    table = tables.ate_table(ates, loss, wd, estimator=estimator)
    if compare_paper:
        table = tables.compare_ate_table(table, tables.ate_table(paper.ates(wd), loss, wd))
    return table


def build_robust_table(traces: Optional[Path], graphs: Optional[Path]):
    """R1-R3 (:mod:`etio.causal.robust_hypotheses`) on a robust study's traces and graphs; the
    weight decay is the traces' only one (the paper's normal 5e-4 when they hold several)."""
    from etio.causal.graphs import read_graphs
    from etio.causal.robust_hypotheses import robust_verdicts
    from etio.core.schema import read_traces
    from etio.report.tables import NORMAL_WD, robust_table

    if traces is None or graphs is None:
        raise EtioInputError("the robust table needs --traces and --graphs of a robust study (there are no paper values)")
    table = read_traces(traces)
    wds = sorted(float(w) for w in table["WeightDecay"].dropna().unique())
    wd = wds[0] if len(wds) == 1 else NORMAL_WD
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rank-deficient.*")
        return robust_table(robust_verdicts(table, read_graphs(graphs), wd))


def _read_results(results_dir: Path, weight_decay: float):
    import pandas as pd

    from etio.report.tables import check_results

    path = layout.path("comparison", results_dir, wd=weight_decay)
    if not path.is_file():
        raise EtioInputError(f"{path} does not exist (etio learn writes {layout.glob_pattern('comparison')})")
    table = pd.read_csv(path)
    return check_results(table, str(path))


def run_table(name: str, out: Path, paper_data: bool, traces: Optional[Path], graphs: Optional[Path],
              results: Optional[Path], compare_paper: bool, estimator: str = "paper",
              force: bool = False) -> None:
    from etio.core.provenance import provenance
    from etio.core.outputs import check_output_dir
    from etio.report.tables import to_terminal, write_table

    if name == "robust" and (paper_data or compare_paper):
        raise EtioInputError("the robust table has no paper values: give --traces and --graphs only")
    if paper_data and (traces or graphs or results):
        raise EtioInputError("--paper uses the authors' artifacts; do not combine it with --traces/--graphs/--results")
    if estimator not in ("paper", "sound"):
        raise EtioInputError(f"unknown estimator {estimator!r}; use paper or sound")
    if estimator == "sound" and paper_data:
        raise EtioInputError("--estimator sound needs the trace data (--traces, --graphs); "
                             "the authors' published artifacts hold only the paper estimator's numbers")
    inputs = [p for p in (traces, graphs, results) if p is not None]
    if name in TITLES:
        check_output_dir(out, name, force=force, inputs=inputs)   # before any estimation
    table = build_table(name, paper_data=paper_data, traces=traces, graphs=graphs, results=results,
                        compare_paper=compare_paper, estimator=estimator)
    source = "authors' published artifacts" if paper_data else "this run"
    title = TITLES.get(name) or EXTRA_TABLES.get(name, name)
    write_table(table, out, name, title, provenance(
        name, config={"source": source, "traces": str(traces) if traces else None,
                      "graphs": str(graphs) if graphs else None, "results": str(results) if results else None,
                      "compare_paper": compare_paper,
                      "estimator": estimator if name != "table2" else None}), force=force, inputs=inputs)
    typer.echo(title)
    typer.echo(to_terminal(table))
    typer.echo(f"-> {out}/{name}.{{csv,md,tex}}")


_OUT = typer.Option(..., help="Output directory (csv, md, tex, provenance.json).")
_PAPER = typer.Option(False, "--paper", help="Use the authors' published artifacts (no data needed).")
_TRACES = typer.Option(None, help="Trace table of our run.")
_GRAPHS = typer.Option(None, help="Graphs of our run (<loss>-<attack>.dot).")
_RESULTS = typer.Option(None, help=f"Directory with the {layout.glob_pattern('comparison')} files of etio learn "
                                   "(table2).")
_COMPARE = typer.Option(False, "--compare-paper", help="Add the paper's value beside ours.")
_ESTIMATOR = typer.Option("paper", "--estimator",
                          help="paper: dowhy's estimate and p-value of T's coefficient (the faithful reproduction); "
                               "sound: the ATE's own clustered test, q-values, no number where not identifiable.")
_FORCE = typer.Option(False, "--force", help="Write into --out even if it holds files etio did not write; "
                      "only etio's own outputs are replaced.")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:

    @app.command("table")
    def table_cmd(name: str = typer.Argument(..., help="table2, table3, table5, table6, table7, table8 or robust"),
                  out: Path = _OUT, paper: bool = _PAPER, traces: Optional[Path] = _TRACES,
                  graphs: Optional[Path] = _GRAPHS, results: Optional[Path] = _RESULTS,
                  compare_paper: bool = _COMPARE, estimator: str = _ESTIMATOR,
                  force: bool = _FORCE) -> None:
        """Any of the paper's tables by name."""
        run_table(name, out, paper, traces, graphs, results, compare_paper, estimator, force)

    def make(name: str):
        def command(out: Path = _OUT, paper: bool = _PAPER, traces: Optional[Path] = _TRACES,
                    graphs: Optional[Path] = _GRAPHS, results: Optional[Path] = _RESULTS,
                    compare_paper: bool = _COMPARE, estimator: str = _ESTIMATOR,
                    force: bool = _FORCE) -> None:
            run_table(name, out, paper, traces, graphs, results, compare_paper, estimator, force)

        command.__doc__ = TITLES[name] + "."
        return command

    for table_name in TITLES:
        app.command(table_name)(make(table_name))
