"""CLI of the traces stage: ``etio traces``, ``etio traces merge`` and ``etio bench train``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

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
    traces_app = typer.Typer(help="Train the configurations of a config and write the trace table.",
                             invoke_without_command=True, no_args_is_help=False)

    @traces_app.callback()
    def traces(
        ctx: typer.Context,
        config: Optional[Path] = typer.Option(None, "--config", help="experiment config (TOML), e.g. experiments/digits.toml"),
        out: Optional[Path] = typer.Option(None, "--out", help="trace store directory (created; reruns resume)"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)"),
        shard: Optional[str] = typer.Option(None, "--shard", help="i/N: train only the i-th of N shards of the jobs"),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="dataset directory (default ~/.cache/etio/data)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    ) -> None:
        """Train every configuration of --config into the trace store --out; write --out/traces.csv."""
        if ctx.invoked_subcommand is not None:
            return
        from etio.core.errors import EtioInputError
        from etio.pipeline.study import load_study
        from etio.traces.stage import parse_shard, run_traces

        if config is None or out is None:
            raise EtioInputError("etio traces needs --config FILE and --out DIR (or the subcommand `merge`)")
        cfg = load_study(config).experiment   # every table checked before any training
        shard_t = parse_shard(shard)
        on_interrupt(lambda: _kept(out, f"etio traces --config {config} --out {out}"
                                        + (f" --shard {shard}" if shard else "")))
        store = run_traces(cfg, out, device=_device(device), shard=shard_t, data_dir=data_dir, progress=not quiet)
        typer.echo(f"{len(store.keys())} configurations in {out}; trace table {out / 'traces.csv'}")

    @traces_app.command("merge")
    def merge(
        dirs: List[Path] = typer.Argument(..., help="trace stores (shards of one config)"),
        out: Path = typer.Option(..., "--out", help="new store directory"),
    ) -> None:
        """Merge shards of one config into one store and trace table."""
        from etio.traces.stage import merge_stores

        on_interrupt(lambda: f"nothing was written to {out} (it appears only once complete); rerun the merge")

        store = merge_stores(list(dirs), out)
        typer.echo(f"{len(store.keys())} configurations in {out}; trace table {out / 'traces.csv'}")

    app.add_typer(traces_app, name="traces")

    @bench_app.command("train")
    def bench_train(
        epochs: int = typer.Option(30, "--epochs"),
        device: Optional[str] = typer.Option(None, "--device"),
    ) -> None:
        """Models per second, one at a time vs batched (digits MLP, n = 12, widths 16–256)."""
        from etio.traces.stage import bench_train as run

        r = run(epochs=epochs, device=_device(device))
        typer.echo(f"models {r['models']} epochs {r['epochs']} device {_device(device)}")
        typer.echo(f"one-at-a-time {r['single_models_per_s']:.2f} models/s")
        typer.echo(f"batched {r['batched_models_per_s']:.2f} models/s")
        typer.echo(f"speedup {r['speedup']:.1f}x")
