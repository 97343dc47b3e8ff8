"""`etio plan` and plan_study: units of work with their resources, before anything is trained."""

from __future__ import annotations

import re

import pytest

from etio.pipeline.plan import StudyPlan, UnitEstimate, plan_study
from etio.pipeline.study import load_study
from etio.traces.stage import plan_jobs
from tests.support.cli import run_etio
from tests.support.repo import MINI, REPO


def test_plan_of_the_paper_study_counts_its_units_without_calibration():
    study = load_study(REPO / "experiments" / "paper.toml")
    plan = plan_study(study, "cpu", calibrate=False)
    assert isinstance(plan, StudyPlan) and all(isinstance(u, UnitEstimate) for u in plan.units)
    traces, attacks = plan.by_stage("traces"), plan.by_stage("attacks")
    assert len(traces) == len(plan_jobs(study.experiment))
    assert sum(u.configurations for u in traces) == 880 and len(attacks) == 880
    # models: N = 3 repeats × n = pool // |D_i| per configuration (spec: 150/30 CIFAR, 180/36 MNIST) ...
    per_config = {(u.dataset, u.unit.split("-s")[1][:5]): u.models for u in attacks}
    assert per_config[("cifar10", "01000")] == 150 and per_config[("cifar10", "05000")] == 30
    assert per_config[("mnist", "01000")] == 180 and per_config[("mnist", "05000")] == 36
    # ... each trained once per job, shared by the job's epoch snapshots
    assert sum(u.models for u in traces) == sum(u.models for u in attacks) // 2
    assert all(u.seconds is None and u.memory_bytes > 0 and u.gpus == 0 for u in traces)
    # ResNet34 at width 32 holds more per batch than at width 2
    mem = {(u.arch, max(u.widths)): u.memory_bytes for u in traces if u.dataset == "cifar10"}
    assert mem[("resnet34", 32)] > mem[("resnet34", 2)]


def test_calibrated_plan_and_the_command(tmp_path):
    study = load_study(MINI)
    plan = plan_study(study, "cpu", calibrate=True, calibration_steps=1)
    assert len(plan.calibrations) == 1 and plan.calibrations[0].step_s > 0
    seconds = plan.stage_seconds()
    assert seconds["traces"] > 0 and seconds["attacks"] > 0 and seconds["learn"] is None
    proc = run_etio("plan", "--config", MINI, "--device", "cpu", "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # 2 widths × 2 losses per job; 3 repeats × (600 // 100 + 600 // 200) models each
    assert "8 configurations, 108 models in 2 training jobs" in out
    assert "digits   mlp_1hidden" in out and "memory/batch" in out and "time per stage on this device: traces" in out
    from etio.pipeline.executors import ExecutorSettings, attack_processes

    # 8 attack units: worker processes when this machine has more than one core
    assert (f"attacks in {attack_processes(8, ExecutorSettings())} worker processes" in out) == \
        (attack_processes(8, ExecutorSettings()) > 1)
    assert "each attack calibrated by running it on a synthetic configuration" in out
    # the attack stage split by attack: every attack of the study and the queries, shares adding up to the whole
    [split] = [x for x in out.splitlines() if x.startswith("  attack stage by attack: ")]
    parts = re.findall(r"(\w+) [\d.]+ (?:s|min|h) \((\d+) %\)", split)
    assert [name for name, _ in parts] == [*study.attacks.run, "queries"], split
    assert sum(int(share) for _, share in parts) == pytest.approx(100, abs=len(parts))
    by_attack = plan.attack_seconds_by_attack()
    assert sum(by_attack.values()) == pytest.approx(seconds["attacks"])
    assert all(by_attack[name] > 0 for name in ("mlleak", "oak17", "memguard", "lowfpr")), by_attack
    # with worker processes, the summed attack time is shared out among them
    from etio.pipeline.plan import format_plan

    attack_s = seconds["attacks"]
    [line] = [x for x in format_plan(plan, study.experiment, attack_processes=4) if "worker processes" in x]
    assert line == f"  attacks in 4 worker processes (local executor): about {attack_s / 4:.0f} s of wall time"


def test_a_calibration_reads_batched_time_off_the_line_through_one_and_n_models():
    from etio.traces.resources import Calibration

    # 1 model: 10 ms a step, 4 models: 16 ms -> 8 ms fixed + 2 ms per model
    cal = Calibration("cifar10", "resnet34", 2, 4, 16, step_s=0.016, eval_s_per_model_point=0.001, peak_bytes=None,
                      device="cpu", step_s_one=0.010, eval_s_one=0.0025)
    assert cal.step_seconds(4) == pytest.approx(0.016)
    assert cal.step_seconds(1) == pytest.approx(0.010)
    assert cal.step_seconds(32) == pytest.approx(0.008 + 32 * 0.002)       # not 32 x 10 ms
    assert cal.eval_seconds(4) == pytest.approx(0.004)                      # per point, all 4 models
    assert cal.eval_seconds(10) == pytest.approx(0.002 + 10 * 0.0005)
    # a batch cheaper than one model (noise) is no negative per-model cost; without the one-model
    # measurement the time is proportional to the models
    noisy = Calibration("c", "a", 1, 4, 16, 0.009, 0.001, None, "cpu", step_s_one=0.010, eval_s_one=None)
    assert noisy.step_seconds(100) == pytest.approx(0.010)
    assert noisy.eval_seconds(8) == pytest.approx(0.008)


def test_the_attack_calibration_grows_with_the_attack_models_epochs_and_keeps_the_fastest_run():
    """The estimate of an attack is a fixed part plus a part per epoch of its attack models (calibrated at
    two epoch counts), and a calibration is the fastest of its runs."""
    import dataclasses
    import time

    from etio.attacks.settings import parse_attack_settings
    from etio.pipeline.plan import AttackShape, _AttackTimer, _fastest

    settings = parse_attack_settings({"mlleak_tuples": 3, "mlleak_epochs": 10, "oak17_epochs": 10, "oak17_seeds": [0],
                                      "memguard_max_iteration": 5, "memguard_samples": 20})
    shape = AttackShape(subset=40, per_repeat=3, repeats=3, test=200, classes=10, loss="ce", memguard=True)
    attacks = ("mlleak", "top3", "oak17", "threshold", "memguard")
    timer = _AttackTimer("cpu")
    timer.MAX_EPOCHS = 10              # both readings below from the one calibration at 1 and 10 epochs
    short = timer.attack_seconds(shape, settings, attacks)
    long = timer.attack_seconds(shape, dataclasses.replace(settings, mlleak_epochs=1000, oak17_epochs=1000), attacks)
    assert set(short) == set(attacks) and all(v >= 0 for v in short.values())
    # the same calibration, read at 100 times the epochs: the attacks with attack models cost more
    assert long["mlleak"] > 5 * short["mlleak"] and long["top3"] > 5 * short["top3"]
    assert long["oak17"] >= short["oak17"] and long["memguard"] >= short["memguard"]
    assert long["threshold"] == short["threshold"]                      # no attack model
    runs = iter([0.3, 0.05, 0.2])
    assert _fastest(lambda: time.sleep(next(runs)), "cpu") < 0.01      # CPU time: sleeping costs none


def test_the_attack_calibration_runs_one_epoch_and_the_configured_epochs_at_most_twenty():
    """The time per epoch is read between 1 epoch and the configured epochs (at most 20): at configured
    epochs within reach the estimate is the run at those very epochs."""
    from etio.attacks.settings import parse_attack_settings
    from etio.pipeline.plan import AttackShape, _AttackTimer

    timer = _AttackTimer("cpu")
    settings = parse_attack_settings({"mlleak_tuples": 3, "mlleak_epochs": 6, "oak17_epochs": 4, "oak17_seeds": [0],
                                      "memguard_max_iteration": 5, "memguard_samples": 20})
    assert timer.epochs_calibrated(settings) == (1, 6)
    assert timer.epochs_calibrated(parse_attack_settings({"mlleak_epochs": 500, "oak17_epochs": 30})) == (1, 20)
    assert timer.epochs_calibrated(parse_attack_settings({"mlleak_epochs": 1, "oak17_epochs": 1})) == (1, 1)
    shape = AttackShape(subset=40, per_repeat=3, repeats=3, test=80, classes=10, loss="ce", memguard=True)
    estimate = timer.attack_seconds(shape, settings, ("mlleak", "threshold"))
    runs = {key[2].mlleak_epochs: value for key, value in timer.cache.items()}
    assert sorted(runs) == [1, 6]
    assert estimate["mlleak"] == pytest.approx(runs[6]["mlleak"])       # the line through both, at 6 epochs
    assert estimate["threshold"] == pytest.approx((runs[1]["threshold"] + runs[6]["threshold"]) / 2)


def test_an_attack_calibration_keeps_each_attacks_fastest_account(monkeypatch):
    """A run interrupted by another process overstates the attack it was in: each attack's part of the
    calibration is its smallest account over the runs, not one run's split."""
    import etio.attacks.stage as stage
    from etio.attacks.settings import parse_attack_settings
    from etio.pipeline.plan import AttackShape, _AttackTimer

    accounts = iter([{"a": 1.0, "b": 5.0}, {"a": 4.0, "b": 1.0}, {"a": 3.0, "b": 0.5}])

    def attack_configuration(view, outputs, attacks, settings, on_result, threads=1):
        for name, seconds in next(accounts).items():
            on_result(name, {"seconds": seconds})

    monkeypatch.setattr(stage, "attack_configuration", attack_configuration)
    shape = AttackShape(subset=10, per_repeat=3, repeats=1, test=20, classes=3, loss="ce", memguard=False)
    parts = _AttackTimer("cpu")._run(shape, 10, 20, parse_attack_settings({}), ("a", "b"))
    assert set(parts) == {"a", "b"} and parts["a"] == pytest.approx(2 * parts["b"])   # 1.0 against 0.5


def test_the_queries_are_timed_on_the_models_forward_on_one_thread_in_cpu_time(monkeypatch):
    """The queries' time per point: the stored models' forward of the configuration's architecture and
    width, on the attack stage's one torch thread, on the thread's CPU clock (waiting costs nothing)."""
    import time

    import torch

    from etio.pipeline.plan import _AttackTimer
    from etio.traces.datasets import dataset_info
    from etio.traces.models import Ensemble

    info = dataset_info("digits")
    seen = []
    forward = Ensemble.logits

    def logits(self, model_ids, x, chunk=2048):
        seen.append((len(model_ids), self.record.width, torch.get_num_threads(), tuple(x.shape[1:])))
        return forward(self, model_ids, x, chunk)

    monkeypatch.setattr(Ensemble, "logits", logits)
    timer = _AttackTimer("cpu")
    wide = timer.query_seconds(info, "mlp_1hidden", 1024, 36)
    assert {s[0] for s in seen} == {1, 4} and {s[1:] for s in seen} == {(1024, 1, tuple(info.input_shape))}
    narrow = timer.query_seconds(info, "mlp_1hidden", 2, 36)
    assert 0 < narrow < wide                           # a wider model costs more per point
    assert timer.query_seconds(info, "mlp_1hidden", 1024, 36) == wide      # calibrated once
    assert timer.query_seconds(info, "mlp_1hidden", 1024, 72) > wide       # more models, more time

    def waiting(self, model_ids, x, chunk=2048):
        time.sleep(0.02)
        return forward(self, model_ids, x, chunk)

    monkeypatch.setattr(Ensemble, "logits", waiting)
    assert _AttackTimer("cpu").query_seconds(info, "mlp_1hidden", 2, 4) < 0.02 / 256


def test_each_attack_unit_is_calibrated_as_the_stage_runs_it_and_its_queries_counted(monkeypatch):
    """A configuration MemGuard does not defend is calibrated without MemGuard (its defence models share
    the attack-model stack); the queries are the points queried × the per-point forward of its width."""
    import tomllib

    import etio.traces.resources as resources
    from etio.pipeline.plan import _AttackTimer
    from etio.pipeline.study import parse_study
    from etio.traces.resources import Calibration

    raw = tomllib.loads(MINI.read_text())
    raw["grid"].update(width=[8, 64], train_size=[100], loss=["ce"], weight_decay=[0.0005, 0.005])
    study = parse_study(raw, "mini")
    calls = []

    def attack_seconds(self, shape, settings, attacks):
        calls.append((shape.memguard, attacks))
        return {name: 1.0 for name in attacks}

    monkeypatch.setattr(_AttackTimer, "attack_seconds", attack_seconds)
    monkeypatch.setattr(_AttackTimer, "query_seconds", lambda self, info, arch, width, models: width * 1e-6)
    monkeypatch.setattr(_AttackTimer, "lowfpr_seconds", lambda self, shape, settings: 0.0)
    monkeypatch.setattr(resources, "calibrate_training", lambda info, arch, width, models, *a, **k: Calibration(
        info.name, arch, width, models, 32, 0.01, 1e-5, None, "cpu"))
    plan = plan_study(study, "cpu")
    units = {u.unit: dict(u.by_attack) for u in plan.by_stage("attacks")}
    assert len(units) == 4 and {m for m, _ in calls} == {True, False}
    assert all(("memguard" in attacks) == defended for defended, attacks in calls)
    test_points = study.experiment.dataset_grids()[0].info().test_size
    for key, parts in units.items():
        assert ("memguard" in parts) == ("wd0.0005" in key), key
        width = 8 if "-w0008-" in key else 64
        assert parts["queries"] == pytest.approx((100 + test_points) * width * 1e-6)


def test_the_low_fpr_attacks_are_calibrated_by_running_them_cut_down_and_scaled(monkeypatch):
    """The low-FPR attacks run on a synthetic configuration of the unit's shape, at most 40 models and
    5000 points; beyond, their time is scaled by models^1.25 × points (measured on the paper-MNIST shape)."""
    from etio.attacks.settings import parse_attack_settings
    from etio.pipeline.plan import AttackShape, _AttackTimer

    runs = []

    def run(self, shape, subset, test, settings, attacks):
        runs.append((shape, subset, test, attacks))
        return {"lowfpr": 1.0}

    monkeypatch.setattr(_AttackTimer, "_run", run)
    timer, settings = _AttackTimer("cpu"), parse_attack_settings({})
    digits = AttackShape(subset=100, per_repeat=6, repeats=3, test=1197, classes=10, loss="ce", memguard=True)
    assert timer.lowfpr_seconds(digits, settings) == pytest.approx(1.0)          # small enough: run as it is
    assert runs[-1][1:] == (100, 1197, ("lowfpr",)) and runs[-1][0].per_repeat == 6
    mnist = AttackShape(subset=1000, per_repeat=60, repeats=3, test=10000, classes=10, loss="ce", memguard=False)
    seconds = timer.lowfpr_seconds(mnist, settings)
    shape, subset, test, _ = runs[-1]
    assert (shape.per_repeat, subset, test) == (13, 71, 714)      # 39 models, 71 * 13 + 714 = 1637 points
    assert seconds == pytest.approx((60 / 13) ** 1.25 * 70000 / 1637)
    timer.lowfpr_seconds(mnist, settings)
    assert len(runs) == 2                                          # calibrated once per shape


def test_cpu_training_calibration_reaches_out_to_many_small_models():
    """The many-model point of the CPU training calibration is as far out as about eight million parameters
    allow (at most 512 models, at least 4): the line through it and one model is extrapolated to thousands
    of models, so a point at 4 small MLPs made the estimate swing with every millisecond of noise, and a
    point at 64 missed what a step of the paper's 180 MNIST models costs beyond the line."""
    from etio.pipeline.plan import CPU_CALIBRATION_MAX_MODELS, CPU_CALIBRATION_PARAMS, _cpu_calibration_models
    from etio.traces.datasets import dataset_info
    from etio.traces.models import count_params

    digits, cifar = dataset_info("digits"), dataset_info("cifar10")
    assert count_params("mlp_1hidden", 256, 10, digits.input_shape) == 18_944
    assert _cpu_calibration_models(digits, "mlp_1hidden", 256) == 8_000_000 // 18_944 == 422
    assert _cpu_calibration_models(dataset_info("fashion-mnist"), "mlp_1hidden", 16) == CPU_CALIBRATION_MAX_MODELS \
        == 512                                                  # more than a paper-MNIST job's 180 models
    resnet = count_params("resnet34", 32, cifar.num_classes, cifar.input_shape)
    assert resnet > CPU_CALIBRATION_PARAMS // 4 and _cpu_calibration_models(cifar, "resnet34", 32) == 4
    alexnet = count_params("alexnetwol", 16, cifar.num_classes, cifar.input_shape)
    assert _cpu_calibration_models(cifar, "alexnetwol", 16) == max(4, min(512, CPU_CALIBRATION_PARAMS // alexnet))


def test_durations_are_printed_in_a_readable_unit():
    from etio.pipeline.plan import duration

    assert [duration(s) for s in (None, 95, 600, 9_741_248)] == ["not estimated", "95 s", "10.0 min", "2705.9 h"]


def test_training_calibration_draws_its_batches_from_a_pool_of_the_datasets_size(monkeypatch):
    """A calibration step gathers its models' batches from random rows of a pool as large as the dataset's
    (at most CALIBRATION_POOL_ROWS), as training does: from a pool of a few batches the gather stayed in cache."""
    from dataclasses import replace

    from etio.traces import resources, training
    from etio.traces.datasets import dataset_info
    from etio.traces.config import Training

    seen = []

    def train_job(job, pool_x, pool_y, device):
        seen.append((job, pool_x.shape))
        return iter(())                  # no epoch: the timing itself is not under test here

    monkeypatch.setattr(training, "train_job", train_job)
    info = replace(dataset_info("fashion-mnist"), pool_size=70_000)
    with pytest.raises(ValueError):      # min() of no timed epochs
        resources.calibrate_training(info, "mlp_1hidden", 16, 3, Training(batch_size=10), "cpu", steps=2)
    job, shape = seen[0]
    assert shape[0] == job.info.pool_size == resources.CALIBRATION_POOL_ROWS == 60_000
    assert job.subsets.shape == (3, 20)                     # an epoch of 2 steps of 10 per model
    assert int(job.subsets.max()) > 1_000 and len(set(job.subsets.flatten().tolist())) > 20
