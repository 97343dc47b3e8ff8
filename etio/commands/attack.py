"""``etio attack``: the membership-inference attacks and MemGuard over a trace store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from etio.commands import executor as ex
from etio.commands import options
from etio.core import layout


def _attacks_option():
    from etio.core.vocabulary import ATTACK_STAGES, LOWFPR_STAGE

    return typer.Option(None, "--attacks", help=f"Comma-separated subset of {','.join((*ATTACK_STAGES, LOWFPR_STAGE))} "
                        "(default: the paper's seven and lowfpr).")


ATTACKS_OPTION = _attacks_option()


def register(app, bench_app) -> None:
    @app.command("attack")
    def attack(
        store_dir: Optional[Path] = options.store_option("Trace store written by `etio traces` (its traces.csv "
                                                         "gets the attack columns)."),
        out: Optional[Path] = options.STORE_ALIAS,
        config: Optional[Path] = typer.Option(None, "--config", help="Config file whose attacks table sets tuples, "
                                              "epochs and seeds (default: the config the store was made from)."),
        attacks: Optional[str] = ATTACKS_OPTION,
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
        threads: int = typer.Option(1, "--threads", min=0, help="torch threads (attack models are tiny: 1 is fastest; "
                                    "0 keeps torch's default, which helps only large models' queries on CPU)."),
        executor: Optional[str] = ex.EXECUTOR, ray_address: Optional[str] = ex.RAY_ADDRESS,
        retries: Optional[int] = ex.RETRIES, slurm_partition: Optional[str] = ex.SLURM_PARTITION,
        slurm_time: Optional[int] = ex.SLURM_TIME, slurm_gpus: Optional[int] = ex.SLURM_GPUS,
        slurm_array: Optional[int] = ex.SLURM_ARRAY, slurm_cluster: Optional[str] = ex.SLURM_CLUSTER,
        processes: Optional[int] = ex.PROCESSES,
    ) -> None:
        """Run the attacks (and MemGuard) on every configuration of a trace store; fill traces.csv.

        Results are stored per configuration and attack as they are computed, so a rerun
        resumes where an interrupted one stopped.
        """
        from etio.attacks.settings import parse_attack_list
        from etio.core.progress import StageProgress
        from etio.pipeline.stages import attacks_on
        from etio.pipeline.study import stage_settings
        from etio.traces.store import open_store

        from etio.commands.traces import _kept
        from etio.core.errors import on_interrupt

        out = options.store(store_dir, out)
        names = parse_attack_list(attacks)
        store = open_store(out)
        on_interrupt(lambda: _kept(out, f"etio attack --store {out}" + (f" --attacks {attacks}" if attacks else "")
                                   + (f" --config {config}" if config else "")))
        settings, table = stage_settings(config, store)
        execution = ex.executor_settings(table, executor, ray_address, retries,
                                         slurm_partition, slurm_time, slurm_gpus, slurm_array, slurm_cluster,
                                         processes)
        from etio.traces.training import resolve_device

        device = resolve_device(device)   # imports torch: after every input is checked
        with StageProgress("attacks", len(store.keys()), unit="configurations") as bar:
            summary = attacks_on(store, names, settings, execution, device, threads,
                                 echo=lambda line: typer.echo(line, err=True), cfg=store.experiment(),
                                 progress=lambda key: bar.advance())
        by_attack = ", ".join(f"{a} {s:.1f}s" for a, s in summary["seconds_by_attack"].items())
        typer.echo(f"{summary['configurations']} configurations: {summary['computed']} attack results computed, "
                   f"{summary['reused']} already stored, {summary['seconds']:.1f}s ({by_attack}); "
                   f"wrote {layout.path('store_traces', out)}", err=True)

    @bench_app.command("attacks")
    def bench_attacks(
        store_dir: Optional[Path] = options.store_option("Trace store to time the attacks on (results are not "
                                                         "stored)."),
        out: Optional[Path] = options.STORE_ALIAS,
        config: Optional[Path] = typer.Option(None, "--config"),
        limit: int = typer.Option(5, "--limit", min=1, help="Configurations to time, spread evenly over the "
                                  "store's configurations."),
        attacks: Optional[str] = ATTACKS_OPTION,
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        threads: int = typer.Option(1, "--threads", min=0),
    ) -> None:
        """Seconds per attack and per phase (queries, attack-model training, MemGuard search, scoring and
        bookkeeping) per configuration, and each one's share of the stage, beside the load average."""
        from etio.attacks.settings import parse_attack_list
        from etio.bench.attacks import benchmark_attacks, format_benchmark, spread
        from etio.traces.store import open_store

        from etio.pipeline.study import stage_settings

        names = parse_attack_list(attacks)
        store = open_store(options.store(store_dir, out))
        settings, _ = stage_settings(config, store)
        from etio.traces.stage import check_complete

        keys = spread(check_complete(store, "bench attacks"), limit)     # as every reader of a store
        from etio.traces.training import resolve_device

        device = resolve_device(device)
        for line in format_benchmark(benchmark_attacks(store, settings, keys, names, device, threads)):
            typer.echo(line)
