"""CLI of the query stage: ``etio query``, ``etio identify``, ``etio pitfalls``, ``etio bench ate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from etio.commands import options
from etio.core.paths import DATA_DIR

EXAMPLE_TRACES = DATA_DIR / "example_traces.csv"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:

    @app.command("query")
    def query_cmd(
        traces: Path = typer.Option(..., help="Trace table (authors' 53-column CSV)."),
        graphs: Path = typer.Option(..., help="Directory of <loss>-<attack>.dot graphs."),
        weight_decay: Optional[float] = options.WEIGHT_DECAY, wd: Optional[float] = options.WD_ALIAS,
        out: Path = typer.Option(..., help="Output CSV of ATEs (a .provenance.json is written beside it)."),
        refuters: bool = typer.Option(False, "--refuters", help="Also run the three dowhy refuters (slow)."),
        seed: int = typer.Option(0, help="Seed of the refuters' simulations."),
        force: bool = typer.Option(False, "--force", help="Replace --out even if etio query did not write it."),
    ) -> None:
        """ATE of each of the 13 features on each attack: dowhy identification, identifiability check, the
        paper estimator (ate_paper, p_value_paper) and the sound one (ate, ci, p_value, q_value)."""
        from etio.core.outputs import check_output_file, write_output_file
        from etio.core.provenance import provenance
        from etio.causal.estimators import Status
        from etio.causal.graphs import read_graphs
        from etio.causal.query import estimate_ates
        from etio.causal.graphs import check_graphs_against_traces
        from etio.core.schema import read_traces

        weight_decay = options.weight_decay(weight_decay, wd)
        check_output_file(out, "query", force=force, inputs=[traces, graphs])
        data, graph_set = read_traces(traces), read_graphs(graphs)
        check_graphs_against_traces(data, graph_set, traces)
        table = estimate_ates(data, graph_set, weight_decay, refuters=refuters, seed=seed)
        write_output_file(out, table.to_csv(index=False), "query", provenance(
            "query", config={"traces": str(traces), "graphs": str(graphs), "weight_decay": weight_decay,
                             "refuters": refuters,
                             "estimators": {"paper": "dowhy estimate_effect, backdoor.linear_regression",
                                            "sound": "modifiers' main effects, delta-method ATE test clustered by "
                                                     "training run, Benjamini-Hochberg q-values per loss"}},
            seeds={"refuters": seed}), force=force, inputs=[traces, graphs])
        counts = table["status"].value_counts()
        typer.echo(f"{len(table)} queries: " + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in Status.of_ates())
                   + f" -> {out}")

    @app.command("identify")
    def identify_cmd(
        graphs: Path = typer.Option(..., help="Directory of <loss>-<attack>.dot graphs."),
        out: Path = typer.Option(..., help="Output CSV."),
        traces: Optional[Path] = typer.Option(None, help="Trace table to check the graphs against (optional)."),
        force: bool = typer.Option(False, "--force", help="Replace --out even if etio identify did not write it."),
    ) -> None:
        """dowhy's identification (directed path, backdoor set) of every treatment, from the graphs alone."""
        from etio.core.outputs import check_output_file, write_output_file
        from etio.core.provenance import provenance
        from etio.causal.graphs import read_graphs
        from etio.causal.identify import identify_graphs
        from etio.causal.graphs import check_graphs_against_traces
        from etio.core.schema import read_traces

        check_output_file(out, "identify", force=force, inputs=[traces, graphs])
        graph_set = read_graphs(graphs)
        if traces is not None:
            check_graphs_against_traces(read_traces(traces), graph_set, traces)
        table = identify_graphs(graph_set)
        write_output_file(out, table.to_csv(index=False), "identify",
                          provenance("identify", config={"graphs": str(graphs),
                                                         "traces": str(traces) if traces else None}),
                          force=force, inputs=[traces, graphs])
        typer.echo(f"{len(table)} queries, {int(table['has_directed_path'].sum())} with a directed path -> {out}")

    @app.command("pitfalls")
    def pitfalls_cmd(
        traces: Path = typer.Option(..., help="Trace table."),
        out: Path = typer.Option(..., help="Output directory."),
        weight_decay: Optional[float] = options.WEIGHT_DECAY, wd: Optional[float] = options.WD_ALIAS,
        loss: str = typer.Option("ce"),
        force: bool = typer.Option(False, "--force", help="Write into --out even if it holds files etio did not write; only etio's own outputs are replaced."),
    ) -> None:
        """The correlation pitfalls of paper §2 (Figs. 2 and 3): naive vs adjusted effects."""
        from etio.core.schema import read_traces

        weight_decay = options.weight_decay(weight_decay, wd)
        data = read_traces(traces)         # a bad table is refused before the estimation stack loads
        from etio.causal.pitfalls import run_pitfalls

        table = run_pitfalls(data, out, weight_decay=weight_decay, loss=loss, force=force,
                             inputs=[traces])
        from etio.report.tables import to_terminal

        typer.echo(to_terminal(table))

    @bench_app.command("ate")
    def bench_ate(
        traces: Path = typer.Option(EXAMPLE_TRACES, help="Trace table (default: the bundled example traces)."),
        graphs: Optional[Path] = typer.Option(None, help="Graphs directory (default: the authors' graphs)."),
        weight_decay: Optional[float] = options.WEIGHT_DECAY, wd: Optional[float] = options.WD_ALIAS,
    ) -> None:
        """Time all ATEs of one weight decay: identification, both estimators, no refuters (budget: 60 s)."""
        from etio.bench.ate import ates

        r = ates(traces, graphs, options.weight_decay(weight_decay, wd))
        n, seconds, budget = r["queries"], r["seconds"], r["budget_s"]
        typer.echo(f"ates {n} queries (paper + sound estimators) in {seconds:.2f} s "
                   f"({1000 * seconds / n:.1f} ms/query); {seconds / budget:.2f} of the {budget:.0f} s budget")
