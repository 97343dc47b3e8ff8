"""CLI commands of the learning stage: ``etio learn`` and ``etio bench learn``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from etio.commands import options


def _split(value: Optional[str], option: str) -> Optional[list[str]]:
    """A comma-separated option; None (absent) means all, an empty list is an error, not "all"."""
    from etio.core.errors import EtioInputError

    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise EtioInputError(f"{option} {value!r} names nothing; leave it out to use all")
    return items


def register(app, bench_app) -> None:
    @app.command("learn", context_settings={"allow_extra_args": True})
    def learn(
        ctx: typer.Context,
        traces: Optional[Path] = typer.Option(None, "--traces", show_default=False,
                                              help="Trace table (CSV, the authors' 53-column schema)."),
        out: Path = typer.Option(..., "--out", help="Output directory (new, or etio learn's own; replaced as a whole on success)."),
        weight_decay: Optional[float] = options.WEIGHT_DECAY, wd: Optional[float] = options.WD_ALIAS,
        method: str = typer.Option("boot", "--method", metavar="boot|cv", help="boot (paper: bootstrap) or cv (authors' code: hold-out CV)."),
        attacks: Optional[str] = typer.Option(None, "--attacks", help="Comma-separated attack columns (default: all present)."),
        losses: Optional[str] = typer.Option(None, "--losses", help="Comma-separated losses, e.g. ce,mse (default: all present)."),
        seed: int = typer.Option(1, "--seed", help="R seed, set before each graph."),
        replicates: int = typer.Option(200, "--replicates", min=1, help="Bootstrap replicates R (method boot)."),
        runs: int = typer.Option(20, "--runs", min=1, help="Hold-out runs (method cv, and the predictive power)."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes learning graphs at once, one R "
                                              "each (default: the cores available); the files do not depend on it."),
        force: bool = typer.Option(False, "--force", help="Write into --out even if it holds files etio did not write; only etio's own outputs are replaced."),
    ) -> None:
        """Learn the causal graph of every loss x attack from a trace table (paper Fig. 4, step 2)."""
        from etio.core.errors import EtioInputError
        from etio.core.schema import read_traces

        from etio.core.outputs import check_output_dir
        from etio.core.progress import counted

        # The old spelling, a positional trace table, is kept for one release outside the help.
        if len(ctx.args) > 1:
            raise EtioInputError(f"unexpected argument(s) {' '.join(ctx.args[1:])}; give the trace table as --traces FILE")
        positional = Path(ctx.args[0]) if ctx.args else None
        traces = options.given("--traces", traces, "the positional trace table", positional, required=True)
        weight_decay = options.weight_decay(weight_decay, wd)
        table = read_traces(traces)
        check_output_dir(out, "learn", force=force, inputs=[traces])   # refused before R starts
        progress = counted("learn", unit="graphs")
        from etio.causal import learning as stage        # the learning stage and figures: inputs checked
        from etio.report.figures import draw_learned_graph

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graphs = stage.learn_all(
                table, out, weight_decay, method=method, attacks=_split(attacks, "--attacks"), losses=_split(losses, "--losses"),
                seed=seed, replicates=replicates, runs=runs, progress=progress, input_path=traces,
                draw=draw_learned_graph, workers=workers, force=force,
            )
        for warning in caught:
            typer.secho(f"warning: {warning.message}", fg=typer.colors.YELLOW, err=True)
        follows = graphs[0].backend_info.get("results_follow")
        typer.echo(f"{len(graphs)} graphs written to {out} (backend {graphs[0].backend}"
                   + (f", results as {follows})" if follows else ")"))

    @bench_app.command("learn")
    def bench_learn(
        repetitions: int = typer.Option(30, "--repetitions", min=1, help="hc repetitions (median reported)."),
        replicates: int = typer.Option(200, "--replicates", min=1, help="boot.strength replicates."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Instead: time the learning stage with "
                                              "one worker and with N, and print the speedup."),
        traces: Optional[Path] = typer.Option(None, "--traces", help="Trace table for --workers (default: the "
                                              "bundled example traces)."),
        runs: int = typer.Option(20, "--runs", min=1, help="Hold-out runs for --workers."),
    ) -> None:
        """Time hc (median over repetitions) and one boot.strength on the 14-node etio14 case;
        with --workers, the learning stage's parallel speedup."""
        from etio.bench import learn as bench

        if workers is not None:
            from etio.core.paths import DATA_DIR

            r = bench.worker_speedup(traces or DATA_DIR / "example_traces.csv", workers, replicates=replicates, runs=runs)
            typer.echo(f"{r['graphs']} graphs (replicates={r['replicates']}, runs={r['runs']}, {r['cores']} cores, load average "
                       f"{r['load_average']:.1f}): 1 worker {r['serial_s']:.1f} s, {r['workers']} workers "
                       f"{r['parallel_s']:.1f} s; speedup {r['speedup']:.2f}x; files identical: "
                       f"{'yes' if r['identical'] else 'NO'}")
            typer.echo(f"CPU time: 1 worker {r['serial_cpu_s']:.1f} s, {r['workers']} workers {r['parallel_cpu_s']:.1f} s "
                       f"in all; speedup on free cores {r['cpu_bound_speedup']:.2f}x")
            return

        result = bench.backend_times(repetitions=repetitions, replicates=replicates)
        typer.echo(f"hc median {result['hc_median_ms']:.1f} ms; boot.strength R={replicates} "
                   f"{result['boot_strength_s']:.2f} s; backend {result['backend']}")
