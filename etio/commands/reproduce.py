"""``etio reproduce``: the whole pipeline, or every table and figure from the paper's artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from etio.commands import executor as ex

#: The embedded default study, ``experiments/digits.toml`` of the checkout (not of the working directory).
DEFAULT_CONFIG = "digits.toml"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:

    @app.command("reproduce")
    def reproduce_cmd(
        config: Optional[Path] = typer.Option(None, "--config", show_default=False,
                                              help="Experiment config (TOML; default: the checkout's "
                                                   "experiments/digits.toml, wherever etio runs from)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: artifacts/<config name>, "
                                           "or artifacts/paper with --paper)."),
        paper: bool = typer.Option(False, "--paper", help="Tables and graph figures from the authors' published "
                                   "artifacts; no training."),
        method: Optional[str] = typer.Option(None, "--method", metavar="boot|cv", help="boot (paper text) or cv (authors' code); "
                                             "default from the config's [analysis] section, else boot."),
        replicates: Optional[int] = typer.Option(None, "--replicates", help="Bootstrap replicates R."),
        runs: Optional[int] = typer.Option(None, "--runs", help="Hold-out runs for predictive power."),
        seed: Optional[int] = typer.Option(None, "--seed", help="R seed for structure learning."),
        refuters: bool = typer.Option(False, "--refuters", help="Run dowhy's refuters beside each ATE."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="dataset directory (default ~/.cache/etio/data; fashion-mnist: Debian's /usr/share/datasets/fashion-mnist)"),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes learning graphs at once, one R "
                                              "each (default: the cores available)."),
        executor: Optional[str] = ex.EXECUTOR, ray_address: Optional[str] = ex.RAY_ADDRESS,
        retries: Optional[int] = ex.RETRIES, slurm_partition: Optional[str] = ex.SLURM_PARTITION,
        slurm_time: Optional[int] = ex.SLURM_TIME, slurm_gpus: Optional[int] = ex.SLURM_GPUS,
        slurm_array: Optional[int] = ex.SLURM_ARRAY, slurm_cluster: Optional[str] = ex.SLURM_CLUSTER,
        processes: Optional[int] = ex.PROCESSES,
        force: bool = typer.Option(False, "--force", help="Use an --out that holds files etio did not write "
                                   "(they are kept; only the run's own entries are written)."),
    ) -> None:
        """traces -> attacks -> graphs (both losses, every weight decay) -> ATEs -> Tables 2, 3, 5-8 -> figures -> report."""
        from etio.pipeline.reproduce import reproduce, reproduce_paper

        echo = lambda line: typer.echo(line, err=True)  # noqa: E731 - progress goes to stderr
        if paper:
            reproduce_paper(out or Path("artifacts/paper"), echo=echo, force=force)
            return

        from dataclasses import replace

        from etio.causal.settings import check_method
        from etio.core.paths import experiment_config
        from etio.core.settings import with_values
        from etio.pipeline.study import load_study

        config = config or experiment_config(DEFAULT_CONFIG)
        study = load_study(config)     # the one parse of the study: every table checked before any work
        if method is not None:
            check_method(method, where="--method")
        overrides = {k: v for k, v in dict(method=method, replicates=replicates, runs=runs, seed=seed).items()
                     if v is not None}
        if refuters:
            overrides["refuters"] = True
        # Every value, from the config or the command line, passes the [analysis] table's checks.
        study = replace(study, analysis=with_values(study.analysis, overrides, name="analysis"))
        settings = ex.executor_settings(study.executor, executor, ray_address, retries, slurm_partition, slurm_time,
                                        slurm_gpus, slurm_array, slurm_cluster, processes)
        reproduce(study, out or Path("artifacts") / study.name, source=config, device=device,
                  data_dir=data_dir, echo=echo, executor=settings, workers=workers, force=force)

    @bench_app.command("checks")
    def bench_checks(
        config: Optional[Path] = typer.Option(None, "--config", show_default=False,
                                              help="Experiment config run end to end (default: the main job's, "
                                                   "the checkout's experiments/digits.toml)."),
        device: Optional[str] = typer.Option("cpu", "--device", help="cpu or cuda."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes learning graphs at once."),
    ) -> None:
        """Seconds the reliability checks (checksums, store verification, trace-table checks, output
        rules, the store lock) take in one `etio reproduce`, and their share of it."""
        from etio.core.paths import experiment_config
        from etio.bench import checks
        from etio.traces.training import resolve_device

        config = config or experiment_config(DEFAULT_CONFIG)

        r = checks.run(config, resolve_device(device), workers=workers)
        typer.echo(f"{r['configurations']} configurations ({config}): reproduce {r['run_s']:.1f} s, checks "
                   f"{r['checks_s']:.2f} s ({100 * r['share']:.2f} % of the run)")
        for category, seconds in r["by_category"].items():
            typer.echo(f"  {category:32s} {seconds:8.3f} s  {r['calls'][category]:7d} calls")
        typer.echo(f"verifying the finished store again (what a rerun pays before reusing it): "
                   f"{r['reverify_s']:.2f} s, {len(r['damaged'])} damaged")
