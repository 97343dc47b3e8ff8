"""CLI of the traces stage: ``etio traces``, ``etio traces merge``, ``etio bench train`` and ``etio bench robust-train``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from etio.commands import executor as ex
from etio.core import layout
from etio.core.errors import on_interrupt


def _device(device: Optional[str]) -> str:
    from etio.traces.training import resolve_device

    return resolve_device(device)


def _kept(out: Path, command: str) -> str:
    """What an interrupted ``etio traces``/``etio attack`` kept in the store, and how to resume."""
    import json

    configs = Path(out) / "configs"
    done = list(configs.glob("*/stats.json")) if configs.is_dir() else []
    attacks = list(configs.glob("*/attacks/*.json")) if configs.is_dir() else []
    total = ""
    try:
        from etio.traces.config import parse_config

        raw = json.loads((Path(out) / "store.json").read_text())["config"]
        raw["training"] = {k: v for k, v in raw.get("training", {}).items() if v is not None}
        total = f" of {len(parse_config(raw).configurations())}"
    except Exception:  # the note is best effort
        pass
    return (f"{len(done)}{total} trained configurations and {len(attacks)} attack results are kept in {out}; "
            f"rerun `{command}` to resume")


def register(app, bench_app) -> None:
    from etio.traces.models import list_models     # no torch: the architectures' names

    traces_app = typer.Typer(help="Train the configurations of a config and write the trace table.",
                             invoke_without_command=True, no_args_is_help=False)

    @traces_app.callback()
    def traces(
        ctx: typer.Context,
        config: Optional[Path] = typer.Option(None, "--config", help="experiment config (TOML), e.g. experiments/digits.toml"),
        out: Optional[Path] = typer.Option(None, "--out", help="trace store directory (created; reruns resume)"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)"),
        shard: Optional[str] = typer.Option(None, "--shard", help="i/N (1 ≤ i ≤ N): train only the i-th of N shards "
                                            "of the jobs; `traces merge` checks that all N are present"),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="dataset directory (default ~/.cache/etio/data; fashion-mnist: Debian's /usr/share/datasets/fashion-mnist)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
        executor: Optional[str] = ex.EXECUTOR, ray_address: Optional[str] = ex.RAY_ADDRESS,
        retries: Optional[int] = ex.RETRIES, slurm_partition: Optional[str] = ex.SLURM_PARTITION,
        slurm_time: Optional[int] = ex.SLURM_TIME, slurm_gpus: Optional[int] = ex.SLURM_GPUS,
        slurm_array: Optional[int] = ex.SLURM_ARRAY, slurm_cluster: Optional[str] = ex.SLURM_CLUSTER,
    ) -> None:
        """Train every configuration of --config into the trace store --out; write --out/traces.csv."""
        if ctx.invoked_subcommand is not None:
            return
        from etio.core.errors import EtioInputError
        from etio.pipeline.stages import traces_on
        from etio.pipeline.study import load_study
        from etio.traces.stage import parse_shard

        if config is None or out is None:
            raise EtioInputError("etio traces needs --config FILE and --out DIR (or the subcommand `merge`)")
        study = load_study(config)   # every table checked before any training
        settings = ex.executor_settings(study.executor, executor, ray_address, retries, slurm_partition, slurm_time,
                                        slurm_gpus, slurm_array, slurm_cluster)
        shard_t = parse_shard(shard)
        on_interrupt(lambda: _kept(out, f"etio traces --config {config} --out {out}"
                                        + (f" --shard {shard}" if shard else "")))
        store = traces_on(study.experiment, out, settings, _device(device), shard=shard_t, data_dir=data_dir,
                          echo=lambda line: typer.echo(line, err=True), progress=not quiet)
        typer.echo(f"{len(store.keys())} configurations in {out}; trace table {layout.path('store_traces', out)}")

    @traces_app.command("merge")
    def merge(
        dirs: List[Path] = typer.Argument(..., help="trace stores: shards of one config (all N of them), or stores of "
                                          "configs trained with the same settings (e.g. one per dataset)"),
        out: Path = typer.Option(..., "--out", help="new store directory"),
    ) -> None:
        """Pool trace stores into one store and one trace table (refused, naming the difference, when their
        training settings disagree)."""
        from etio.traces.stage import merge_stores

        on_interrupt(lambda: f"nothing was written to {out} (it appears only once complete); rerun the merge")

        store = merge_stores(list(dirs), out)
        typer.echo(f"{len(store.keys())} configurations in {out}; trace table {layout.path('store_traces', out)}")

    app.add_typer(traces_app, name="traces")

    @bench_app.command("train")
    def bench_train(
        arch: Optional[str] = typer.Option(None, "--arch", help=f"{', '.join(list_models())} "
                                           "(default: each of the paper's in turn)"),
        width: Optional[int] = typer.Option(None, "--width", min=1, help="default: the paper's smallest (MLP: 16–256)"),
        epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="default: 30 for the MLP, 6 for conv nets (the first epochs carry a job's one-off set-up)"),
        models: int = typer.Option(10, "--models", min=1, help="models per batch for conv nets (the MLP: n = 12)"),
        device: Optional[str] = typer.Option(None, "--device"),
        threads: int = typer.Option(0, "--threads", min=0, help="CPU torch threads (0: torch's default)"),
    ) -> None:
        """Models per second, batched vs one at a time, per architecture; prints the ratio."""
        from etio.core.errors import EtioInputError
        from etio.traces.models import PAPER_WIDTHS, get_model

        if arch is not None and arch not in list_models():
            raise EtioInputError(f"--arch {arch!r}: known architectures: {', '.join(list_models())}")
        import torch

        from etio.bench.train import train as run

        if threads:
            torch.set_num_threads(threads)
        dev = _device(device)
        typer.echo(f"device {dev}, torch threads {torch.get_num_threads()}")
        # Default: the paper's architectures (the robust-models excerpt's wide ResNet only on request).
        for a in [arch] if arch else list(PAPER_WIDTHS):
            # an architecture whose widths share a job (the MLP) is measured on the digits width grid
            r = run(epochs=epochs if epochs is not None else (30 if get_model(a).mixed_widths else 6), device=dev,
                    arch=a, width=width, models=models)
            typer.echo(f"{a:12s} width {','.join(map(str, r['widths']))} models {r['models']} epochs {r['epochs']}: "
                       f"one-at-a-time {r['single_models_per_s']:.2f} models/s, batched "
                       f"{r['batched_models_per_s']:.2f} models/s, speedup {r['speedup']:.1f}x")

    @bench_app.command("robust-train")
    def bench_robust_train(
        epochs: int = typer.Option(5, "--epochs", min=1),
        device: Optional[str] = typer.Option(None, "--device"),
    ) -> None:
        """PGD training, models per second, one at a time vs batched (digits MLP, 72 models)."""
        from etio.bench.train import robust_train as run

        r = run(epochs=epochs, device=_device(device))
        typer.echo(f"models {r['models']} epochs {r['epochs']} pgd steps {r['pgd_steps']} device {_device(device)}")
        typer.echo(f"one-at-a-time {r['single_models_per_s']:.2f} models/s")
        typer.echo(f"batched {r['batched_models_per_s']:.2f} models/s")
        typer.echo(f"speedup {r['speedup']:.1f}x")
