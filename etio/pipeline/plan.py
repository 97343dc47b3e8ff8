"""What a study costs before it starts: ``etio plan`` and :func:`plan_study`.

The plan lists the study's units of work with the resources each needs:

- ``traces`` units: the training jobs of :func:`etio.traces.stage.plan_jobs` (one batch of
  models each; sharded runs split this list). Seconds come from a short calibration run of
  each (dataset, architecture, width) on the device (:func:`etio.traces.resources.calibrate_training`):
  a few optimiser steps of one model and of a batch of models on random data of the dataset's
  shape, a job's time read off the line through the two;
  memory is the estimate of :func:`etio.traces.resources.job_memory` (on CUDA the measured
  peak of the calibration batch is reported beside it).
- ``attacks`` units: one per configuration. Seconds: the model queries (the calibrated
  forward cost × models × evaluated points) plus the attack models, timed by training one
  epoch of the same stacked attack models (:mod:`etio.attacks.attack_model`) on random
  features of the right shape and scaled to the configured epochs; MemGuard's defence
  iterations are counted as one attack-model step each, ``2 × max_iteration`` per defended
  target (the real count depends on the trained models: a sample runs one round per c3 value
  and stops at its first failed round, so this part is rough). The low-FPR attacks add the
  queries of every model on the rest of the pool and their scoring, timed on a small random
  problem and scaled by models² × points (a note gives their share). With the local executor
  the units' summed time is shared among its worker processes (``etio plan`` prints both).
- ``learn`` / ``query``: structure learning (R) and the ATEs (dowhy) run on the CPU over the
  pooled table; their cost depends on the table, not the device, and is not calibrated
  (``seconds`` is None).

The plan is a :class:`StudyPlan` of :class:`UnitEstimate` records, for executors to schedule.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from etio.pipeline.study import Study


@dataclass(frozen=True)
class UnitEstimate:
    """One unit of work and what it needs."""

    stage: str                 # traces | attacks | learn | query
    unit: str                  # job id (traces), configuration key (attacks), slice (learn/query)
    dataset: str
    arch: str
    widths: tuple[int, ...]
    configurations: int        # trace rows the unit produces or works on
    models: int                # models trained (traces) or queried (attacks)
    epochs: int                # training epochs of the unit's longest run (0 where none)
    cpus: int
    gpus: int
    memory_bytes: int          # peak memory on the unit's device (estimate)
    seconds: float | None      # estimated on this device; None where not calibrated


@dataclass(frozen=True)
class StudyPlan:
    config: str
    device: str
    units: tuple[UnitEstimate, ...]
    calibrations: tuple = ()           # etio.traces.resources.Calibration per (dataset, arch, width)
    notes: tuple[str, ...] = ()
    calibration_s: float = 0.0
    device_memory_bytes: int | None = None

    def by_stage(self, stage: str) -> list[UnitEstimate]:
        return [u for u in self.units if u.stage == stage]

    def stage_seconds(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for u in self.units:
            if u.seconds is None:
                out[u.stage] = None
            elif out.get(u.stage, 0.0) is not None:
                out[u.stage] = out.get(u.stage, 0.0) + u.seconds
        return out


@dataclass
class _AttackTimer:
    device: str
    cache: dict = field(default_factory=dict)

    def epoch_seconds(self, n_models: int, n_points: int, dim: int) -> float:
        """Seconds of one epoch of ``n_models`` stacked attack models on ``n_points`` each."""
        import torch

        from etio.attacks.attack_model import AttackModelSpec, train_attack_models

        key = (n_models, n_points, dim)
        if key not in self.cache:
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(n_models, n_points, dim, generator=gen).to(self.device)
            y = (torch.rand(n_models, n_points, generator=gen) < 0.5).to(self.device)
            spec = AttackModelSpec(epochs=1)
            train_attack_models(x[:, :min(n_points, 200)], y[:, :min(n_points, 200)], spec, list(range(n_models)))
            start = time.perf_counter()
            train_attack_models(x, y, spec, list(range(n_models)))
            if str(self.device).startswith("cuda"):
                torch.cuda.synchronize()
            self.cache[key] = time.perf_counter() - start
        return self.cache[key]

    def lowfpr_seconds(self, n_models: int, n_points: int) -> float:
        """Seconds of the low-FPR scoring and ROC metrics of ``n_models`` targets on ``n_points`` points.

        Timed on at most 40 models and 5000 random points, and scaled beyond by models² × points (one loop
        over targets, each over every model and point), so planning a large study stays quick.
        """
        import numpy as np

        from etio.attacks.lira import lira_scores
        from etio.attacks.roc import roc_metrics

        m0, x0 = min(n_models, 40), min(n_points, 5000)
        key = ("lowfpr", m0, x0)
        if key not in self.cache:
            if not self.cache.get("lowfpr-warm"):       # the first call pays imports and first-use costs
                lira_scores(np.zeros((3, 10)), np.eye(3, 10, dtype=bool))
                roc_metrics(np.arange(10.0), np.arange(10) % 2 == 0)
                self.cache["lowfpr-warm"] = True
            rng = np.random.default_rng(0)
            inside = rng.random((m0, x0)) < 1 / 3
            phi = rng.normal(inside * 1.0)
            start = time.perf_counter()
            scores = lira_scores(phi, inside)
            for s in (*scores.values(), phi, phi):          # the six scored methods' ROCs
                roc_metrics(s.ravel(), inside.ravel())
            self.cache[key] = time.perf_counter() - start
        return self.cache[key] * (n_models / m0) ** 2 * (n_points / x0)


def plan_study(study: Study, device: str = "cpu", calibrate: bool = True, calibration_steps: int = 2,
               echo: Callable[[str], None] | None = None) -> StudyPlan:
    """The units of ``study`` with their resources on ``device`` (calibrated unless ``calibrate`` is False)."""
    import torch

    from etio.attacks.mlleaks import tuples_per_repeat
    from etio.attacks.oak17 import oak17_set_size
    from etio.attacks.settings import ATTACK_NAMES
    from etio.core.vocabulary import LOWFPR_STAGE
    from etio.traces.models import count_params
    from etio.traces.resources import available_memory, calibrate_training, estimate_job_seconds, job_memory, \
        models_at_once
    from etio.traces.stage import _threads_for, plan_jobs

    cfg, settings = study.experiment, study.attacks
    gpus = 1 if str(device).startswith("cuda") else 0
    parts = {p.dataset: p for p in cfg.dataset_grids()}
    infos = {name: part.info() for name, part in parts.items()}
    jobs = plan_jobs(cfg)
    default_threads = torch.get_num_threads()
    calibrations: dict[tuple, object] = {}
    started = time.perf_counter()
    units: list[UnitEstimate] = []
    for job in jobs:
        info = infos[job.dataset]
        k = cfg.repeats * (info.pool_size // job.train_size)
        width = max(job.widths)
        threads = _threads_for(job, k, info, default_threads) if not gpus else default_threads
        seconds = None
        if calibrate:
            ckey = (job.dataset, job.arch, width, threads)
            if ckey not in calibrations:
                at_once, _ = models_at_once(cfg, job, info)
                n_cal = at_once if gpus else min(at_once, 4)      # and one model: the line through both
                if echo:
                    echo(f"   calibrating {job.dataset} {job.arch} width {width} ({n_cal} models)")
                torch.set_num_threads(threads)
                try:
                    calibrations[ckey] = calibrate_training(info, job.arch, width, n_cal, cfg.training, device,
                                                            steps=calibration_steps)
                finally:
                    torch.set_num_threads(default_threads)
            seconds = estimate_job_seconds(cfg, job, info, calibrations[ckey])
        mem = job_memory(cfg, job, info)
        units.append(UnitEstimate("traces", job.job_id, job.dataset, job.arch, tuple(job.widths),
                                  len(job.configs), len(job.members) * k, max(job.epochs),
                                  threads if not gpus else 1, gpus, mem.total, seconds))

    timer = _AttackTimer(device)
    lowfpr_total = 0.0
    for job in jobs:
        info = infos[job.dataset]
        s, c = job.train_size, info.num_classes
        n = info.pool_size // s
        k = cfg.repeats * n
        cal = calibrations.get((job.dataset, job.arch, max(job.widths),
                                _threads_for(job, k, info, default_threads) if not gpus else default_threads))
        for conf in sorted({c_.key: c_ for c_ in job.configs.values()}.values(), key=lambda c_: c_.key):
            params = count_params(conf.arch, conf.width, c, info.input_shape)
            memory = 4 * k * (params + (s + info.test_size) * c) + 4 * int(math.prod(info.input_shape)) * (
                info.pool_size + info.test_size)
            if LOWFPR_STAGE in settings.run:   # logits of every model on every point, seven float64 score arrays
                memory += (4 * c + 8 * 7) * k * (info.pool_size + info.test_size)
            seconds = None
            if calibrate and cal is not None:
                queries = (s + info.test_size) * cal.eval_seconds(k)
                tuples = sum(tuples_per_repeat(cfg.repeats, settings.mlleak_tuples)) if n >= 3 else 0
                mlleak = timer.epoch_seconds(4 * tuples, 2 * s, 2 * min(c, 10)) * settings.mlleak_epochs if tuples else 0
                m = oak17_set_size(s, info.test_size)
                shadows = settings.oak17_shadows or (n - 1)
                per_class = max(1, 2 * m * shadows // c)
                oak17 = timer.epoch_seconds(len(settings.oak17_seeds) * c, per_class, c) * settings.oak17_epochs
                memguard = 0.0
                if any(abs(conf.weight_decay - w) <= 1e-12
                       for w in settings.memguard.weight_decays or [conf.weight_decay]):
                    targets = settings.memguard.targets * cfg.repeats
                    samples = settings.memguard.samples or (s + info.test_size)
                    step = timer.epoch_seconds(1, min(2 * samples, 100), 6)
                    memguard = targets * 2 * settings.memguard.max_iteration * step * max(1, 2 * samples / 100)
                lowfpr = 0.0
                if LOWFPR_STAGE in settings.run:
                    # forward passes of every model on the rest of the pool, then scoring every (model, point)
                    lowfpr = (info.pool_size - s) * cal.eval_seconds(k) + \
                        timer.lowfpr_seconds(k, info.pool_size + info.test_size)
                lowfpr_total += lowfpr
                seconds = queries + mlleak + oak17 + memguard + lowfpr
            units.append(UnitEstimate("attacks", conf.key, conf.dataset, conf.arch, (conf.width,), 1, k, 0,
                                      1, gpus, memory, seconds))

    rows = len(cfg.configurations())
    analysis = study.analysis
    for wd in sorted({c_.weight_decay for c_ in cfg.configurations()}):
        losses = sorted({c_.loss for c_ in cfg.configurations() if c_.weight_decay == wd})
        for loss in losses:
            n_rows = sum(1 for c_ in cfg.configurations() if (c_.weight_decay, c_.loss) == (wd, loss))
            for stage in ("learn", "query"):
                units.append(UnitEstimate(stage, f"wd_{wd:g}-{loss}", "+".join(parts), "", (), n_rows, 0, 0,
                                          1, 0, 0, None))
    notes = (f"learn/query: {sum(a != LOWFPR_STAGE for a in ATTACK_NAMES)} attacks per (loss, weight decay) slice, {analysis.method} with "
             f"R = {analysis.replicates}, {analysis.runs} hold-out runs, over {rows} trace rows, on the CPU "
             f"(R, dowhy); not calibrated",
             "attacks: MemGuard's iterations depend on the trained models (a sample runs one round per c3 "
             "value and stops at its first failed round); the plan counts 2 × max_iteration steps per "
             "defended target, a rough figure")
    if LOWFPR_STAGE in settings.run and calibrate:
        notes += (f"attacks: the low-FPR attacks (every model on every pool and test point; LiRA, RMIA, ROC "
                  f"metrics) are about {lowfpr_total:.0f} s of it",)
    return StudyPlan(config=cfg.name, device=str(device), units=tuple(units),
                     calibrations=tuple(calibrations.values()), notes=notes,
                     calibration_s=round(time.perf_counter() - started, 2),
                     device_memory_bytes=available_memory(device))


def format_plan(plan: StudyPlan, cfg, attack_processes: int = 1) -> list[str]:
    """The lines ``etio plan`` prints; ``attack_processes``: the local executor's worker processes
    for the attack units (their summed time is shared out among them)."""
    from etio.traces.resources import format_bytes

    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "not estimated"
        if seconds < 120:
            return f"{seconds:.0f} s"
        if seconds < 7200:
            return f"{seconds / 60:.1f} min"
        return f"{seconds / 3600:.1f} h"

    traces = plan.by_stage("traces")
    lines = [f"study {plan.config!r} on {plan.device}: {len(cfg.configurations())} configurations, "
             f"{sum(u.models for u in traces)} models in {len(traces)} training jobs, "
             f"{len(plan.by_stage('attacks'))} attacked configurations"]
    lines.append("per dataset and architecture (one row per width; memory = one batch of models trained at once):")
    groups: dict[tuple, list[UnitEstimate]] = {}
    for u in traces:
        groups.setdefault((u.dataset, u.arch, max(u.widths)), []).append(u)
    for (dataset, arch, width), us in groups.items():
        lines.append(f"  {dataset:8s} {arch:12s} w {width:<4d} configurations {sum(u.configurations for u in us):4d}  "
                     f"models {sum(u.models for u in us):6d}  epochs {max(u.epochs for u in us):4d}  "
                     f"memory/batch {format_bytes(max(u.memory_bytes for u in us)):>9s}  "
                     f"training {duration(_sum(u.seconds for u in us))}")
    for c in plan.calibrations:
        measured = f", measured peak {format_bytes(c.peak_bytes)}" if c.peak_bytes is not None else ""
        lines.append(f"  calibration {c.dataset} {c.arch} w {c.width}: {c.models} models × batch {c.batch_size}: "
                     f"{c.step_s * 1000:.1f} ms/step{measured}")
    stages = plan.stage_seconds()
    lines.append("time per stage on this device: " + ", ".join(f"{s} {duration(stages.get(s))}"
                                                               for s in ("traces", "attacks", "learn", "query")))
    if attack_processes > 1 and stages.get("attacks") is not None:
        lines.append(f"  attacks in {attack_processes} worker processes (local executor): about "
                     f"{duration(stages['attacks'] / attack_processes)} of wall time")
    if plan.device_memory_bytes is not None:
        worst = max(traces, key=lambda u: u.memory_bytes) if traces else None
        if worst is not None:
            verdict = "fits" if worst.memory_bytes <= plan.device_memory_bytes else "DOES NOT FIT"
            lines.append(f"largest batch of models: {format_bytes(worst.memory_bytes)} ({worst.unit}); "
                         f"{plan.device} has {format_bytes(plan.device_memory_bytes)} available: {verdict}")
    lines += [f"note: {n}" for n in plan.notes]
    lines.append(f"calibration took {plan.calibration_s:.0f} s")
    return lines


def _sum(values) -> float | None:
    total = 0.0
    for v in values:
        if v is None:
            return None
        total += v
    return total
