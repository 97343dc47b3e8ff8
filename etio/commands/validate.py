"""CLI of the ground-truth check: ``etio validate``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:

    @app.command("validate")
    def validate_cmd(
        out: Path = typer.Option(..., help="Output directory (cells CSV, summary.json, figure, provenance)."),
        draws: int = typer.Option(20, help="Simulated trace tables K."),
        seed: int = typer.Option(0, help="Seed of the simulation (R's set.seed is seed + draw)."),
        runs: int = typer.Option(75, help="Training runs per table (4 rows each)."),
        replicates: int = typer.Option(50, help="Bootstrap replicates of the graph learning."),
    ) -> None:
        """Learn -> identify -> estimate on tables from a known structural model: SHD, CI coverage of both
        estimators against the interventional truth, share of non-identifiable effects flagged."""
        from etio.core.outputs import check_output_dir

        check_output_dir(out, "validate")   # before the simulation stack is even imported
        from etio.causal.validation import run_validation
        from etio.report.figures import validation_figure

        def progress(done: int, total: int) -> None:
            if done % 5 == 0 or done == total:
                typer.echo(f"   {done}/{total} draws")

        result = run_validation(out, draws=draws, seed=seed, runs=runs, replicates=replicates,
                                progress=progress, draw=validation_figure)
        s = result.summary
        typer.echo(f"{s['draws']} draws, {s['cells']} effects, {result.seconds} s; learned graphs: "
                   f"mean SHD {s['shd_mean']:.2f} to the true graph")
        for which in ("true", "learned"):
            w = s[which]
            typer.echo(
                f"{which} graph: 95 % CI coverage sound {w['sound_coverage']:.3f}, paper {w['paper_coverage']:.3f} "
                f"(gap {w['coverage_gap_sound_minus_paper']:+.3f}) over {w['estimated_cells']} identifiable effects; "
                f"non-identifiable effects flagged {w['non_identifiable_flagged_share']:.3f} of "
                f"{w['non_identifiable_by_identities']}, flags without an identity {w['flagged_without_identity']}; "
                f"paper estimator vs dowhy max |difference| {w['paper_vs_dowhy_max_abs_difference']:.1e}")
        typer.echo(f"-> {out}")
