"""``etio plan``: configurations, models, epochs, time per stage and memory per batch, before a study starts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app, bench_app) -> None:
    @app.command("plan")
    def plan(
        config: Path = typer.Option(..., "--config", help="study config (TOML), e.g. experiments/paper.toml"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)"),
        no_calibration: bool = typer.Option(False, "--no-calibration", help="counts and memory only; no timing run"),
        steps: int = typer.Option(2, "--steps", min=1, help="optimiser steps timed per architecture and width (≥ 1)"),
    ) -> None:
        """What the study costs on this device: a short calibration run of each architecture and width."""
        from etio.pipeline.study import load_study

        study = load_study(config)   # checked before torch is imported
        from etio.pipeline.plan import format_plan, plan_study
        from etio.traces.training import resolve_device

        dev = resolve_device(device)
        result = plan_study(study, dev, calibrate=not no_calibration, calibration_steps=steps,
                            echo=lambda line: typer.echo(line, err=True))
        from etio.pipeline.executors import attack_processes

        processes = attack_processes(len(result.by_stage("attacks")), study.executor, gpu=dev.startswith("cuda"))
        for line in format_plan(result, study.experiment, attack_processes=processes):
            typer.echo(line)
