"""What a study costs before it starts: ``etio plan`` and :func:`plan_study`.

The plan lists the study's units of work with the resources each needs:

- ``traces`` units: the training jobs of :func:`etio.traces.stage.plan_jobs` (one batch of
  models each; sharded runs split this list). Seconds come from a short calibration run of
  each (dataset, architecture, width) on the device (:func:`etio.traces.resources.calibrate_training`):
  a few optimiser steps of one model and of a batch of models on random data of the dataset's
  shape, a job's time read off the line through the two;
  memory is the estimate of :func:`etio.traces.resources.job_memory` (on CUDA the measured
  peak of the calibration batch is reported beside it).
- ``attacks`` units: one per configuration. Seconds: each attack calibrated by running it
  (:func:`etio.attacks.stage.attack_configuration`) on a synthetic configuration of the unit's shape
  (:class:`_AttackTimer`), at 1 epoch of its attack models and at the configured epochs (at most 20),
  the time per epoch read off the line through the two; plus the model queries: the points the
  attacks query × the CPU time of one point through the unit's models, timed on randomly initialised
  models of the configuration's architecture and width with the stored models' own forward and the
  attack stage's one torch thread (:meth:`_AttackTimer.query_seconds`). The low-FPR attacks add the
  queries of every model on the rest of the pool and their scoring, timed by running them on a
  synthetic configuration of at most 40 models and 5000 points and scaled by models^1.5 × points
  beyond (a note gives their share). Every figure is the fastest of a few
  runs on the thread's CPU clock, so a busy machine changes it little. With the local executor the
  units' summed time is shared among its worker processes (``etio plan`` prints both).
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
    by_attack: tuple[tuple[str, float], ...] = ()   # attacks units: seconds of each attack and of the queries


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

    def attack_seconds_by_attack(self) -> dict[str, float]:
        """Estimated seconds of each attack (and of the model queries) over every attack unit."""
        out: dict[str, float] = {}
        for u in self.by_stage("attacks"):
            for name, seconds in u.by_attack:
                out[name] = out.get(name, 0.0) + seconds
        return out

    def stage_seconds(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for u in self.units:
            if u.seconds is None:
                out[u.stage] = None
            elif out.get(u.stage, 0.0) is not None:
                out[u.stage] = out.get(u.stage, 0.0) + u.seconds
        return out


def _fastest(run: Callable[[], object], device: str, repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` runs of ``run``. On the CPU the clock is the thread's CPU
    time (the attacks run one torch thread, in the calling thread): a busy machine stretches a run's
    wall time many times over, its CPU time much less, and the fastest of a few runs keeps out most
    of what is left. On a GPU the wall clock, after a synchronisation."""
    import torch

    cuda = str(device).startswith("cuda")
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter() if cuda else time.thread_time()
        run()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() if cuda else time.thread_time()) - start)
    return best


@dataclass(frozen=True)
class AttackShape:
    """What an attack unit's cost depends on, besides the models' queries."""

    subset: int            # |D_i|
    per_repeat: int        # models per repeat
    repeats: int
    test: int              # test points
    classes: int
    loss: str
    memguard: bool         # the configuration is defended (its weight decay is in memguard.weight_decays)


class _SyntheticEnsemble:
    """Models that answer at once with fixed random logits (per point, plus a per-model offset), more
    confident in the true label on their own training points, as trained models are: the attacks' own
    arithmetic (MemGuard's search runs longer when the defence model tells members apart), without the
    models' forward passes (those are calibrated with the training)."""

    def __init__(self, labels, subsets, classes: int, seed: int = 0) -> None:
        import torch

        g = torch.Generator().manual_seed(seed)
        n_points, n_models = len(labels), len(subsets)
        self.points = 2 * torch.randn(n_points, classes, generator=g)
        self.models = 0.5 * torch.randn(n_models + 1, classes, generator=g)
        self.member = torch.zeros(n_models + 1, n_points, dtype=torch.bool)
        for m, rows in enumerate(subsets, start=1):
            self.member[m, torch.as_tensor(rows)] = True
        self.boost = 3 * torch.nn.functional.one_hot(torch.as_tensor(labels).long(), classes).float()

    def _answer(self, ids, points):
        """Model ``ids[i]`` on points ``points[i]`` (``[M, n]``) -> ``[M, n, C]``."""
        inside = self.member[ids.unsqueeze(1), points].unsqueeze(-1)
        return self.points[points] + self.models[ids].unsqueeze(1) + inside * self.boost[points]

    def logits(self, model_ids, x):
        ids = torch_ids(model_ids)
        points = x[:, 0].long().expand(len(ids), -1)
        return self._answer(ids, points)

    def logits_each(self, model_ids, x):
        return self._answer(torch_ids(model_ids), x[..., 0].long())


def torch_ids(model_ids):
    import torch

    return torch.as_tensor(list(model_ids), dtype=torch.long)


@dataclass
class _AttackTimer:
    """Calibrates the attacks by running them (:func:`etio.attacks.stage.attack_configuration`) on a
    synthetic configuration of a unit's shape, at two epoch counts of the attack models (the attacks'
    time is a fixed part plus a part proportional to those epochs, :meth:`epochs_calibrated`), with the
    search of MemGuard and the data of large datasets cut down and the time scaled back up; and the
    models' queries by a forward pass of models of the unit's architecture and width
    (:meth:`query_seconds`). Every figure is the fastest of a few runs, in CPU time (:func:`_fastest`)."""

    device: str
    cache: dict = field(default_factory=dict)

    #: points per model subset, test points and MemGuard samples calibrated at most (scaled beyond)
    MAX_SUBSET = 200
    MAX_MEMGUARD_SAMPLES = 100
    #: attack-model epochs calibrated at most (the time per epoch is read off between 1 and this)
    MAX_EPOCHS = 20
    #: models and points the low-FPR attacks are calibrated on at most (scaled beyond: LOWFPR_MODEL_EXPONENT)
    MAX_LOWFPR_MODELS = 40
    MAX_LOWFPR_POINTS = 5000
    #: How the low-FPR attacks' time grows with the models beyond the cut (at the same points per model):
    #: their parts grow from linearly (LiRA's reference statistics, the score tables) to quadratically
    #: (RMIA's references, the ROC's pairs of targets), and larger arrays cost more per element. Measured
    #: on the paper-MNIST shape (60 models per repeat, 10 000 test points) once the points are scaled
    #: linearly: with 1 000-point subsets the synthetic attack took 21.7–24.0 s of CPU time whole and
    #: 0.079–0.083 s cut to 13 models per repeat and 1 637 points, exponents of 1.18–1.28 in two runs; with
    #: 5 000-point subsets 121 s whole, 0.068 s cut, 1.27. (Before RMIA's and LiRA's reference statistics
    #: were computed for every target at once, 1.44; 2, the first exponent, said twice the time.)
    LOWFPR_MODEL_EXPONENT = 1.25

    def attack_seconds(self, shape: AttackShape, settings, attacks: tuple[str, ...]) -> dict[str, float]:
        """Estimated seconds of each attack of ``attacks`` (not ``lowfpr``) on a configuration of ``shape``,
        besides the model queries."""
        import dataclasses

        s_cal = min(shape.subset, self.MAX_SUBSET)
        test_cal = min(shape.test, max(2 * s_cal, 2 * self.MAX_SUBSET))
        mg = settings.memguard
        members = min(mg.samples or shape.subset, shape.subset)
        nonmembers = min(mg.samples or shape.test, shape.test)
        mg_cal = min(mg.samples or self.MAX_MEMGUARD_SAMPLES, self.MAX_MEMGUARD_SAMPLES, s_cal)
        rows_scale = (members + nonmembers) / (min(mg_cal, s_cal) + min(mg_cal, test_cal))
        # ML-Leaks' and Oak17's attack models see data in proportion to the subset (Oak17: to 2m test points)
        data_scale = shape.subset / s_cal
        oak_scale = min(shape.subset, shape.test // 2) / min(s_cal, test_cal // 2)
        low, high = self.epochs_calibrated(settings)
        runs = {}
        for epochs in dict.fromkeys((low, high)):
            calibration = dataclasses.replace(
                settings, mlleak_epochs=epochs, oak17_epochs=epochs,
                memguard=dataclasses.replace(mg, samples=mg_cal))
            key = (shape, attacks, calibration)
            if key not in self.cache:
                self.cache[key] = self._run(shape, s_cal, test_cal, calibration, attacks)
            runs[epochs] = self.cache[key]
        estimate = {}
        for name in attacks:
            at_low, at_high = runs[low].get(name, 0.0), runs[high].get(name, 0.0)
            per_epoch = max(0.0, (at_high - at_low) / (high - low)) if high > low else 0.0
            fixed = max(0.0, at_low - per_epoch * low)
            if name == "memguard":
                # the defence and attack models train mlleak_epochs; the search scales with the samples
                estimate[name] = per_epoch * settings.mlleak_epochs * data_scale + fixed * rows_scale
            elif name == "oak17":
                estimate[name] = (per_epoch * settings.oak17_epochs + fixed) * oak_scale
            elif name == "threshold":
                estimate[name] = (at_low + at_high) / 2 * data_scale
            else:
                estimate[name] = (per_epoch * settings.mlleak_epochs + fixed) * data_scale
        return estimate

    def epochs_calibrated(self, settings) -> tuple[int, int]:
        """The two attack-model epoch counts the calibration runs: 1 and the configured count, at most
        :attr:`MAX_EPOCHS` (the line through them is read off at the configured count). The time per epoch
        is the difference of the two runs over the epochs between them: the wider apart, the less a
        small error of either run is multiplied."""
        return 1, max(1, min(max(settings.mlleak_epochs, settings.oak17_epochs), self.MAX_EPOCHS))

    def _run(self, shape: AttackShape, subset: int, test: int, settings, attacks) -> dict[str, float]:
        """CPU seconds of each attack on one synthetic configuration: the fastest of a few runs of all of them,
        shared out as the stage's own account (each result's ``seconds``) shares it."""
        import numpy as np
        import torch

        from etio.attacks.outputs import ModelOutputs
        from etio.attacks.stage import ConfigView, attack_configuration

        n_models = shape.per_repeat * shape.repeats
        pool = subset * shape.per_repeat
        rng = np.random.default_rng(0)
        subsets = np.concatenate([rng.permutation(pool).reshape(shape.per_repeat, subset)
                                  for _ in range(shape.repeats)])
        g = torch.Generator().manual_seed(0)

        class Splits:
            pool_x = torch.arange(pool, dtype=torch.float32).unsqueeze(1)
            pool_y = torch.randint(shape.classes, (pool,), generator=g)
            test_x = torch.arange(pool, pool + test, dtype=torch.float32).unsqueeze(1)
            test_y = torch.randint(shape.classes, (test,), generator=g)

        Splits.subsets = subsets
        ensemble = _SyntheticEnsemble(torch.cat([Splits.pool_y, Splits.test_y]), subsets, shape.classes)
        ids = list(range(1, n_models + 1))
        view = ConfigView("calibration", [ids[r * shape.per_repeat:(r + 1) * shape.per_repeat]
                                          for r in range(shape.repeats)],
                          shape.classes, shape.loss, train_loss=0.5)
        shares: list[dict[str, float]] = []

        def once() -> None:
            shares.append({})
            outputs = ModelOutputs(Splits, ensemble, self.device)
            attack_configuration(view, outputs, attacks, settings,
                                 lambda name, r: shares[-1].__setitem__(name, float(r.get("seconds", 0.0))))

        seconds = _fastest(once, self.device)
        # Each attack's part: its fastest of the runs' own accounts (wall clock: a run interrupted
        # by another process overstates the attack it was in, rarely the same attack in every run).
        share = {name: min(s.get(name, 0.0) for s in shares) for name in shares[0]}
        total = sum(share.values()) or 1.0
        return {name: seconds * part / total for name, part in share.items()}

    def query_seconds(self, info, arch: str, width: int, models: int) -> float:
        """Seconds of one point through ``models`` models of ``arch`` at ``width`` queried at once, as the
        attack stage queries them: the stored models' own forward (:class:`etio.traces.models.Ensemble`), one
        torch thread, on randomly initialised models and random inputs of the dataset's shape.

        Timed for one model and for ``min(models, 4)`` (the fastest of a few runs, in the thread's CPU time
        on the CPU) and read off the line through the two, as the training calibration reads a batch of
        models; at most 256 points per pass (fewer for large models)."""
        from types import SimpleNamespace

        import torch

        from etio.attacks.outputs import torch_threads
        from etio.traces.models import Ensemble, count_params
        from etio.traces.resources import _through
        from etio.traces.training import init_state

        n_cal = min(models, 4)
        key = ("queries", info.name, arch, width, n_cal)
        if key not in self.cache:
            params = count_params(arch, width, info.num_classes, info.input_shape)
            points = max(1, min(256, info.test_size, max(16, 2 ** 26 // max(params, 1))))
            record = SimpleNamespace(arch=arch, width=width, num_classes=info.num_classes,
                                     input_shape=tuple(info.input_shape))
            states = [init_state(arch, width, info, 0, m) for m in range(1, n_cal + 1)]
            state = {n: torch.stack([s[n] for s in states]) for n in states[0]}
            ensemble = Ensemble(record, state, self.device)
            x = torch.randn(points, *info.input_shape, generator=torch.Generator().manual_seed(0))
            per_point = {}
            with torch_threads(1):
                for m in dict.fromkeys((1, n_cal)):
                    ids = list(range(1, m + 1))
                    ensemble.logits(ids, x)                       # first use: allocations, kernel choice
                    per_point[m] = _fastest(lambda: ensemble.logits(ids, x), self.device) / points
            self.cache[key] = (per_point[1], per_point[n_cal], n_cal)
        at_one, at_n, n = self.cache[key]
        return _through(at_one, at_n, n, models)

    def lowfpr_seconds(self, shape: AttackShape, settings) -> float:
        """Seconds of the low-FPR attacks' scoring (LiRA, RMIA, the threshold, their ROC metrics and score
        tables) on a configuration of ``shape``, besides the models' forward passes.

        The attack itself is run (:meth:`_run`) on a synthetic configuration of the shape, cut to at most
        :attr:`MAX_LOWFPR_MODELS` models and :attr:`MAX_LOWFPR_POINTS` points (fewer models per repeat,
        smaller subsets and test set), so planning a large study stays quick, and scaled beyond by the
        points and by models^:attr:`LOWFPR_MODEL_EXPONENT`.
        """
        from etio.core.vocabulary import LOWFPR_STAGE

        per_repeat = min(shape.per_repeat, max(3, self.MAX_LOWFPR_MODELS // shape.repeats))
        points = shape.subset * shape.per_repeat + shape.test
        cut = min(1.0, self.MAX_LOWFPR_POINTS / points)
        subset, test = max(1, round(shape.subset * cut)), max(1, round(shape.test * cut))
        small = AttackShape(subset, per_repeat, shape.repeats, test, shape.classes, shape.loss, False)
        key = (small, LOWFPR_STAGE, settings)
        if key not in self.cache:
            self.cache[key] = self._run(small, subset, test, settings, (LOWFPR_STAGE,)).get(LOWFPR_STAGE, 0.0)
        return self.cache[key] * (shape.per_repeat / per_repeat) ** self.LOWFPR_MODEL_EXPONENT * points / (
            subset * per_repeat + test)


def _calibrated_attacks(settings, per_repeat: int) -> tuple[str, ...]:
    """The attacks of ``settings.run`` that the attack calibration runs on a configuration with ``per_repeat``
    models per repeat (the robust strategies and the low-FPR attacks are estimated apart or not at all)."""
    from etio.attacks.settings import MLLEAK_NAMES

    names = []
    for name in settings.run:
        if name in MLLEAK_NAMES or name == "memguard":
            if per_repeat >= 3:
                names.append(name)
        elif name == "oak17":
            if per_repeat >= 2:
                names.append(name)
        elif name == "threshold":
            names.append(name)
    return tuple(names)


#: Parameters the CPU training calibration trains at once at most (and never fewer than 4 models).
CPU_CALIBRATION_PARAMS = 8_000_000
CPU_CALIBRATION_MAX_MODELS = 512


def _cpu_calibration_models(info, arch: str, width: int) -> int:
    """Models the CPU training calibration trains at once, besides one model alone: the line through the two
    is extrapolated to every model of a job (thousands of small MLPs), so the many-model point is taken as
    far out as about eight million parameters allow (at most 512 models), not at 4, where a millisecond of
    noise became minutes. A step's cost need not be linear in the models (a block of more than 32 MB that
    a step allocates afresh is mapped and page-faulted at every step: the training keeps its batch and
    the MLP's step blocks for the job, other families' activations are allocated each step), so a job of
    the paper's MNIST grid (180 models of 12 730 parameters) is calibrated at its own size: measured there
    while the batch was gathered afresh, 64 models extrapolated to 180 said 0.6 of the training time, 180
    models 0.9."""
    from etio.traces.models import count_params

    params = count_params(arch, width, info.num_classes, info.input_shape)
    return max(4, min(CPU_CALIBRATION_MAX_MODELS, CPU_CALIBRATION_PARAMS // max(1, params)))


def plan_study(study: Study, device: str = "cpu", calibrate: bool = True, calibration_steps: int = 2,
               echo: Callable[[str], None] | None = None) -> StudyPlan:
    """The units of ``study`` with their resources on ``device`` (calibrated unless ``calibrate`` is False)."""
    import torch

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
                n_cal = at_once if gpus else min(at_once, _cpu_calibration_models(info, job.arch, width))
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
                per_point = timer.query_seconds(info, conf.arch, conf.width, k)
                queries = (s + info.test_size) * per_point
                defended = not settings.memguard.weight_decays or any(
                    abs(conf.weight_decay - w) <= 1e-12 for w in settings.memguard.weight_decays)
                # an undefended configuration is calibrated without MemGuard: its defence models, trained in
                # the same stack as ML-Leaks' attack models, change what the others' share of the stack costs
                shape = AttackShape(s, n, cfg.repeats, info.test_size, c, "ce", defended)
                by_attack = dict(timer.attack_seconds(shape, settings, tuple(
                    a for a in _calibrated_attacks(settings, n) if defended or a != "memguard")))
                if LOWFPR_STAGE in settings.run:
                    # forward passes of every model on the rest of the pool and, per query augmentation
                    # besides the identity, on every point; then scoring every (model, point)
                    extra = len(settings.query_augmentations(info.augment)) - 1
                    by_attack[LOWFPR_STAGE] = (info.pool_size - s + extra * (info.pool_size + info.test_size)) * \
                        per_point + timer.lowfpr_seconds(shape, settings)
                    lowfpr_total += by_attack[LOWFPR_STAGE]
                by_attack["queries"] = queries
                seconds = sum(by_attack.values())
            units.append(UnitEstimate("attacks", conf.key, conf.dataset, conf.arch, (conf.width,), 1, k, 0,
                                      1, gpus, memory, seconds, tuple(by_attack.items()) if seconds is not None else ()))

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
             "attacks: each attack calibrated by running it on a synthetic configuration of the unit's shape "
             "(at 1 and at the configured attack-model epochs, at most 20; the fastest of 3 runs in CPU time; "
             "large data and MemGuard's samples cut down and scaled back up), the queries by a forward pass "
             "of models of the unit's architecture and width on one thread; MemGuard's search runs as long "
             "as the trained models make it, so its part is the least certain")
    if LOWFPR_STAGE in settings.run and calibrate:
        notes += (f"attacks: the low-FPR attacks (every model on every pool and test point; LiRA, RMIA, ROC "
                  f"metrics) are about {duration(lowfpr_total)} of it",)
    return StudyPlan(config=cfg.name, device=str(device), units=tuple(units),
                     calibrations=tuple(calibrations.values()), notes=notes,
                     calibration_s=round(time.perf_counter() - started, 2),
                     device_memory_bytes=available_memory(device))


def duration(seconds: float | None) -> str:
    """``95`` -> ``"95 s"``, ``600`` -> ``"10.0 min"``, ``9 741 248`` -> ``"2705.9 h"``."""
    if seconds is None:
        return "not estimated"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(plan: StudyPlan, cfg, attack_processes: int = 1) -> list[str]:
    """The lines ``etio plan`` prints; ``attack_processes``: the local executor's worker processes
    for the attack units (their summed time is shared out among them)."""
    from etio.traces.resources import format_bytes

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
    split = plan.attack_seconds_by_attack()
    if split and stages.get("attacks"):
        lines.append("  attack stage by attack: " + ", ".join(
            f"{name} {duration(seconds)} ({100 * seconds / stages['attacks']:.0f} %)" for name, seconds in split.items()))
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
