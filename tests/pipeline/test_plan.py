"""`etio plan` and plan_study: units of work with their resources, before anything is trained."""

from __future__ import annotations

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
    assert "the plan counts 2 × max_iteration steps per defended target" in out
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
