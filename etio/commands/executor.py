"""Where units run: the options every command that runs units shares (``--executor`` and its
settings), ``etio status`` and ``etio bench executors``.

Each option left out keeps the value of the config's ``[executor]`` table (or its default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

EXECUTOR = typer.Option(None, "--executor", help="Where the units run: local (default), ray or slurm "
                        "(default: [executor] kind of the config).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster to join (e.g. ray://head:10001 or auto); "
                           "default: start a local Ray for the run and stop it after.")
RETRIES = typer.Option(None, "--retries", help="Further attempts of a failed unit (ray, slurm; default 2).")
SLURM_PARTITION = typer.Option(None, "--slurm-partition", help="Slurm partition of the job array.")
SLURM_TIME = typer.Option(None, "--slurm-time", help="Time limit of each array job, minutes (default 60).")
SLURM_GPUS = typer.Option(None, "--slurm-gpus", help="GPUs per array job (default: the unit's request).")
SLURM_ARRAY = typer.Option(None, "--slurm-array", help="Array jobs running at once (default 16).")
SLURM_CLUSTER = typer.Option(None, "--slurm-cluster", help="slurm (sbatch) or local (submitit runs the "
                             "array as processes on this machine).")
PROCESSES = typer.Option(None, "--processes", min=1, help="local executor: worker processes for the attacks "
                         "(default: one per core on the CPU, from 8 configurations up; 1: in this process).")


def executor_settings(base, executor: Optional[str], ray_address: Optional[str], retries: Optional[int],
                      slurm_partition: Optional[str], slurm_time: Optional[int], slurm_gpus: Optional[int],
                      slurm_array: Optional[int], slurm_cluster: Optional[str], processes: Optional[int] = None):
    """``base`` (the config's settings) with the options that were given."""
    return base.with_overrides(kind=executor, ray_address=ray_address, retries=retries, processes=processes,
                               slurm_partition=slurm_partition, slurm_time_min=slurm_time, slurm_gpus=slurm_gpus,
                               slurm_array=slurm_array, slurm_cluster=slurm_cluster)


def register(app, bench_app) -> None:
    from etio.commands import options

    @app.command("status")
    def status(store: Optional[Path] = options.store_option("Trace store (of `etio traces`, or a run's store/)."),
               out: Optional[Path] = options.STORE_ALIAS) -> None:
        """Units of each stage: done, running (where, which attempt), failed (with their configurations and error)."""
        from etio.pipeline.executors import store_status

        for stage in store_status(options.store(store, out)):
            configs = (f"; {stage.configurations_done}/{stage.configurations} configurations stored"
                       if stage.stage == "traces" else "")
            typer.echo(f"{stage.stage}: {stage.units} units: {stage.done} done, {len(stage.running)} running, "
                       f"{len(stage.failed)} failed, {stage.queued} not started{configs}")
            for entry in stage.running:
                where = f"{entry.get('executor')} on {entry.get('host')} (pid {entry.get('pid')}"
                where += f", job {entry['job']}" if entry.get("job") else ""
                lost = "; that process is gone: rerun to resume" if entry.get("lost") else ""
                typer.echo(f"  running  {entry['unit']}: attempt {entry.get('attempt')}, {where}) since "
                           f"{entry.get('updated')}{lost}")
            for entry in stage.failed:
                typer.echo(f"  failed   {entry['unit']} ({', '.join(entry['configurations'])}): {entry.get('error')}"
                           f" [{entry.get('executor')}, attempt {entry.get('attempt')}]")

    @bench_app.command("executors")
    def bench_executors(
        config: Path = typer.Option(None, "--config", show_default=False,
                                    help="Config to run (traces and attacks; default: the checkout's experiments/smoke.toml)."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        executor: str = typer.Option("ray", "--executor", help="Executor compared with local: ray or slurm."),
        slurm_cluster: str = typer.Option("local", "--slurm-cluster"),
    ) -> None:
        """Seconds of the trace and attack stages on the local executor and on another one; the overhead."""
        from etio.bench.executors import compare
        from etio.pipeline.executors import parse_executor_settings
        from etio.pipeline.study import load_study

        from etio.core.paths import experiment_config

        config = config or experiment_config("smoke.toml")
        other = parse_executor_settings({"kind": executor, "slurm_cluster": slurm_cluster}, "command line")
        study = load_study(config)
        from etio.traces.training import resolve_device

        r = compare(study, other, resolve_device(device))
        typer.echo(f"{r['configurations']} configurations ({config}): local {r['local_s']:.1f} s, "
                   f"{executor} {r['other_s']:.1f} s; overhead {r['overhead_s']:+.1f} s "
                   f"({r['ratio']:.2f}x); traces.csv identical: {'yes' if r['identical'] else 'NO'}")

