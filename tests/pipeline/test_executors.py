"""Executors (etio.pipeline.executors): Ray and Slurm (submitit) runs give the local run's bytes.

One local Ray cluster of 2 CPUs is shared by the module's Ray tests (start-up takes seconds).
The grid is tests/data/traces-mini.toml: two trace units (jobs of four configurations) and
eight attack units.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from etio.attacks.settings import ATTACK_NAMES
from etio.core.errors import EtioInputError
from etio.pipeline.executors import (ExecutorSettings, Resources, Unit, parse_executor_settings, read_entry,
                                     run_units, store_status)
from etio.pipeline.stages import attacks_on, schedule_traces, traces_on
from etio.pipeline.study import load_study
from etio.traces.stage import run_trace_unit
from etio.traces.store import TRACE_STAGE_COLUMNS, open_store
from tests.support.cli import run_etio
from tests.support.repo import MINI, REPO


@pytest.fixture(scope="module")
def study():
    return load_study(MINI)


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    # The unit functions defined here travel to the workers by value (they cannot import tests/).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=True,
             logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


RAY = ExecutorSettings(kind="ray", retries=1)


def test_ray_gives_the_local_trace_table_and_attack_columns(ray_cluster, study, mini_attacked, tmp_path):
    out = tmp_path / "store"
    store = traces_on(study.experiment, out, RAY, "cpu")
    summary = attacks_on(store, ATTACK_NAMES, study.attacks, RAY, "cpu", cfg=study.experiment)
    assert summary["units"] == 8 and summary["computed"] == 8 * len(ATTACK_NAMES)
    assert (out / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()
    table = pd.read_csv(out / "traces.csv")
    assert table[["MLLeakAcc", "Oak17Acc", "ThresholdAcc", "MemguardAcc"]].notna().all().all()
    _same_results(out, mini_attacked)             # each stored result, not only the table's columns
    traces, attacks = store_status(out)
    assert (traces.units, traces.done, traces.failed, traces.configurations_done) == (2, 2, [], 8)
    assert (attacks.units, attacks.done, attacks.failed) == (8, 8, [])
    entry = json.loads((out / "units" / "traces" / "0000-digits-mlp_1hidden-s100-w8_64-2v.json").read_text())
    assert entry["state"] == "done" and entry["executor"] == "ray" and entry["pid"] != os.getpid()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["attack_stage"]["executor"]["kind"] == "ray"


def _same_results(out: Path, reference: Path) -> None:
    """Every stored attack result of ``out`` equals ``reference``'s, but for the timing (and the
    checksum that covers it)."""
    for key in open_store(out).keys():
        for name in ATTACK_NAMES:
            ours = json.loads((out / "configs" / key / "attacks" / f"{name}.json").read_text())
            theirs = json.loads((reference / "configs" / key / "attacks" / f"{name}.json").read_text())
            for field in ("seconds", "sha256"):
                ours.pop(field, None), theirs.pop(field, None)
            assert ours == theirs, (key, name)


def test_local_worker_processes_give_the_in_process_table(study, mini_store, mini_attacked, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(mini_store, out)
    store = open_store(out)
    progress = []
    summary = attacks_on(store, ATTACK_NAMES, study.attacks, ExecutorSettings(processes=2), "cpu",
                         cfg=study.experiment, progress=progress.append)
    assert summary["units"] == 8 and summary["computed"] == 8 * len(ATTACK_NAMES)
    assert sorted(progress) == sorted(store.keys())                # each configuration once, as it finished
    assert (out / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()
    _same_results(out, mini_attacked)
    pids = {json.loads(p.read_text())["pid"] for p in (out / "units" / "attacks").glob("*.json")}
    assert len(pids) == 2 and os.getpid() not in pids             # both workers, none of it here
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["attack_stage"]["executor"] == {**prov["attack_stage"]["executor"], "kind": "local", "processes": 2}


def _unit(stage="attacks", gpus=0.0, unit_id="u"):
    return Unit(stage, unit_id, Path("store"), (unit_id,), print, resources=Resources(gpus=gpus))


def test_which_units_the_local_executor_gives_to_worker_processes(monkeypatch):
    import etio.pipeline.executors.local as local
    from etio.pipeline.executors import POOL_MIN_UNITS, local_processes

    monkeypatch.setattr(local, "available_cores", lambda: 4)
    many = [_unit(unit_id=str(i)) for i in range(POOL_MIN_UNITS)]
    assert local_processes(many, ExecutorSettings()) == 4                       # one per core
    assert local_processes(many[:3], ExecutorSettings()) == 1                   # too few to repay the start
    assert local_processes(many[:3], ExecutorSettings(processes=2)) == 2        # unless asked for
    assert local_processes(many[:1], ExecutorSettings(processes=2)) == 1
    assert local_processes(many[:3], ExecutorSettings(processes=8)) == 3        # never more than the units
    assert local_processes([_unit(gpus=1.0, unit_id=str(i)) for i in range(10)], ExecutorSettings()) == 1
    assert local_processes([_unit("traces", unit_id=str(i)) for i in range(10)],
                           ExecutorSettings(processes=2)) == 1                  # training uses every core here
    monkeypatch.setattr(local, "available_cores", lambda: 1)
    assert local_processes(many, ExecutorSettings()) == 1


def _killed(ledger):
    """Dies once the other unit is done (its result must survive the dead worker)."""
    other = ledger / "a.json"
    for _ in range(200):
        if (read_entry(other) or {}).get("state") == "done":
            break
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def _fails(ledger):
    raise EtioInputError("a damaged configuration")


@pytest.mark.parametrize("fn, message", [
    (_killed, "a worker process died (killed, or out of memory) in the attacks stage; what finished is stored "
              "(etio status --store {store} names the unit it was running): rerun to resume"),
    (_fails, "a damaged configuration"),
])
def test_a_failed_worker_unit_stops_the_local_run_with_one_line(tmp_path, fn, message):
    from etio.core.errors import EtioError

    ledger = tmp_path / "units" / "attacks"
    units = [Unit("attacks", name, tmp_path, (name,), fn if name == "b" else _noop, (ledger,)) for name in "ab"]
    with pytest.raises(EtioError) as raised:
        run_units(units, ExecutorSettings(processes=2))
    assert str(raised.value) == message.format(store=tmp_path)
    assert json.loads((tmp_path / "units" / "attacks" / "a.json").read_text())["state"] == "done"


def _noop(*args):
    return {}


def _dies_once(marker: Path, cfg, out, unit_id, device, data_dir, on_written=None):
    """The trace unit, whose first attempt's worker is killed right after it stored one configuration."""
    def written(key):
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return run_trace_unit(cfg, out, unit_id, device, data_dir, on_written=written)


def test_a_worker_killed_mid_unit_is_retried_to_the_same_table(ray_cluster, study, mini_store, tmp_path):
    out = tmp_path / "store"
    traces_on(study.experiment, out, ExecutorSettings(kind="local"), "cpu", shard=(1, 2))   # nothing of shard 0
    units = schedule_traces(study.experiment, out, RAY, "cpu")
    assert [u.unit_id for u in units] == ["0000-digits-mlp_1hidden-s100-w8_64-2v"]
    marker = tmp_path / "killed"
    unit = replace(units[0], fn=_dies_once, args=(marker, *units[0].args))
    outcome = run_units([unit], RAY)
    assert [u.unit_id for u in outcome.done] == [unit.unit_id] and outcome.failed == [], outcome.failed
    entry = json.loads((out / "units" / "traces" / f"{unit.unit_id}.json").read_text())
    assert entry["attempt"] == 2 and entry["state"] == "done"
    assert int(marker.read_text()) != entry["pid"]         # the first worker died; another one finished
    table = open_store(out).traces_table()[TRACE_STAGE_COLUMNS].to_csv(index=False)
    assert table == open_store(mini_store).traces_table()[TRACE_STAGE_COLUMNS].to_csv(index=False)


def _always_fails(cfg, out, unit_id, device, data_dir, on_written=None):
    raise RuntimeError(f"out of memory in {unit_id}")


def test_a_unit_that_always_fails_is_named_and_the_rest_is_kept(ray_cluster, study, mini_store, tmp_path):
    out = tmp_path / "store"
    from etio.traces.stage import prepare_traces

    prepare_traces(study.experiment, out)
    units = schedule_traces(study.experiment, out, RAY, "cpu")
    broken = replace(units[1], fn=_always_fails)
    outcome = run_units([units[0], broken], RAY)
    assert [u.unit_id for u in outcome.done] == [units[0].unit_id]
    [(unit, message)] = outcome.failed
    assert unit.unit_id == broken.unit_id and "out of memory" in message
    entry = json.loads((out / "units" / "traces" / f"{broken.unit_id}.json").read_text())
    assert entry["state"] == "failed" and entry["attempt"] == 2           # one try and one retry
    assert len(open_store(out).keys()) == 4 and set(open_store(out).keys()) == set(units[0].configurations)


def test_damaged_models_are_refused_before_any_attack_unit_is_submitted(ray_cluster, mini_store, tmp_path):
    # The command line joins the running cluster (--ray-address). A configuration whose models no
    # longer match their checksum is named before a single unit goes to Ray (the store is verified
    # up front), with the command that recomputes it; nothing is attacked or rewritten. (A unit
    # that fails on Ray itself is reported by configuration: the always-failing unit test above.)
    out = tmp_path / "store"
    shutil.copytree(mini_store, out)
    broken = open_store(out).keys()[3]
    (out / "configs" / broken / "models.pt").write_bytes(b"not a torch file")
    before = (out / "traces.csv").read_bytes()
    result = run_etio("attack", "--out", out, "--device", "cpu", "--executor", "ray", "--retries", "1",
                   "--ray-address", ray_cluster)
    assert result.returncode == 2, result.stderr
    assert broken in result.stderr and "etio traces --config" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (out / "traces.csv").read_bytes() == before
    assert not any((out / "configs" / key / "attacks").exists() for key in open_store(out).keys())


def test_ray_started_for_the_run_from_the_command_line(mini_store, tmp_path):
    # No --ray-address: the command starts a Ray of its own and stops it after the run.
    out = tmp_path / "store"
    result = run_etio("traces", "--config", MINI, "--out", out, "--device", "cpu", "--quiet", "--executor", "ray")
    assert result.returncode == 0, result.stderr
    assert "ray: 2 traces units on" in result.stderr
    assert (out / "traces.csv").read_bytes() == (mini_store / "traces.csv").read_bytes()


def test_slurm_array_through_submitit_gives_the_local_table(study, mini_store, tmp_path):
    out = tmp_path / "store"
    settings = ExecutorSettings(kind="slurm", slurm_cluster="local", slurm_array=2, retries=0)
    echoed = []
    traces_on(study.experiment, out, settings, "cpu", echo=echoed.append)
    assert (out / "traces.csv").read_bytes() == (mini_store / "traces.csv").read_bytes()
    assert any("2 traces units submitted as job" in line for line in echoed)
    submissions = json.loads((out / "units" / "traces" / "submissions.json").read_text())
    from etio.traces.stage import trace_units

    assert sorted(submissions) == [u.unit_id for u in trace_units(study.experiment, pending_only=False)]
    assert {s["cluster"] for s in submissions.values()} == {"local"}
    [traces] = store_status(out)
    assert (traces.done, traces.failed, traces.queued) == (2, [], 0)


def test_slurm_array_requests_what_the_settings_say(study, tmp_path):
    import inspect

    from submitit.slurm.slurm import _make_sbatch_string

    from etio.pipeline.executors import largest
    from etio.pipeline.executors.slurm import slurm_parameters
    from etio.traces.stage import prepare_traces

    out = tmp_path / "store"
    prepare_traces(study.experiment, out)
    settings = parse_executor_settings({"kind": "slurm", "slurm_partition": "gpu-a100", "slurm_time_min": 240,
                                        "slurm_gpus": 1, "slurm_array": 8, "cpus": 6, "memory_gb": 12.5,
                                        "slurm_setup": ["module load cuda/12"]})
    units = schedule_traces(study.experiment, out, settings, "cuda")
    assert {u.resources for u in units} == {Resources(6, 1.0, 12.5)}     # GPU from the device, rest as set
    params = slurm_parameters(settings, largest(units), "etio-traces")
    assert params == {"job_name": "etio-traces", "time": 240, "cpus_per_task": 6, "mem": "13GB",
                      "array_parallelism": 8, "gpus_per_node": 1, "partition": "gpu-a100",
                      "setup": ["module load cuda/12"]}
    assert set(params) <= set(inspect.signature(_make_sbatch_string).parameters)     # submitit's own names
    # no GPU, partition or set-up lines unless asked for; a fraction of a CPU or GB asks for one
    plain = replace(settings, slurm_gpus=None, slurm_partition=None, slurm_setup=(), slurm_array=3)
    assert slurm_parameters(plain, Resources(0.5, 0.0, 0.2), "etio-attacks") == {
        "job_name": "etio-attacks", "time": 240, "cpus_per_task": 1, "mem": "1GB", "array_parallelism": 3}


def test_default_requests_come_from_the_config(study, tmp_path):
    from etio.traces.stage import prepare_traces

    out = tmp_path / "store"
    prepare_traces(study.experiment, out)
    [first, _] = schedule_traces(study.experiment, out, ExecutorSettings(kind="ray"), "cpu")
    assert first.resources.cpus == 1 and first.resources.gpus == 0
    # 3 repeats x 6 models of size 100 (pool 600) x 4 members x 64·74 parameters, 4 copies of 4 bytes each,
    # plus pool and test set (600 + 1 197 images of 64 float32) and 1 GB for the process
    models = 3 * (600 // 100) * 4 * 64 * 74 * 4 * 4
    assert first.resources.memory_gb == pytest.approx(1.0 + (models + (600 + 1197) * 64 * 4) / 2**30, abs=0.005)


def test_default_requests_use_the_sizes_a_pooled_study_reads():
    from etio.pipeline.executors import unit_resources
    from etio.traces.models import count_params
    from etio.traces.stage import plan_jobs

    cfg = load_study(REPO / "experiments" / "paper-tiny.toml").experiment
    # each dataset: its first 120 training and 60 test images, 2 repeats x (120 // 30) = 8 models at most;
    # (sized from the full datasets, 50 000 or 60 000 images and 3 333 models, an attack unit asked Ray for
    # 41 GB; each architecture is sized at its own widths, not at DenseNet161's with AlexNetWOL's width 16)
    images = {"cifar10": (120 + 60) * 3 * 32 * 32, "cifar100": (120 + 60) * 3 * 32 * 32, "mnist": (120 + 60) * 28 * 28}
    biggest = {d: max(count_params(a, w, c, shape) for a, w in arches)
               for d, c, shape, arches in (
                   ("cifar10", 10, (3, 32, 32), [("alexnetwol", 16), ("resnet34", 2), ("densenet161", 2)]),
                   ("cifar100", 100, (3, 32, 32), [("alexnetwol", 16), ("resnet34", 2), ("densenet161", 2)]),
                   ("mnist", 10, (1, 28, 28), [("mlp_1hidden", 16)]))}
    attack = unit_resources(cfg, "attacks", None, ExecutorSettings(kind="ray"), "cpu")
    need = max(8 * biggest[d] * 4 + images[d] * 4 for d in images)
    assert attack.memory_gb == pytest.approx(round(1.0 + need / 2**30, 2))
    job = next(j for j in plan_jobs(cfg) if j.dataset == "mnist")
    models = 2 * (120 // job.train_size) * len(job.members)
    params = count_params("mlp_1hidden", max(job.widths), 10, (1, 28, 28))
    trace = unit_resources(cfg, "traces", job, ExecutorSettings(kind="ray"), "cpu")
    assert trace.memory_gb == pytest.approx(round(1.0 + (models * params * 16 + images["mnist"] * 4) / 2**30, 2))


@pytest.mark.parametrize("table, message", [
    ({"kind": "dask"}, "unknown executor 'dask'"),
    ({"retries": -1}, "config: [executor] retries = -1: must be an integer ≥ 0"),
    ({"slurm_array": 0}, "[executor] slurm_array = 0: must be an integer ≥ 1"),
    ({"gpu": 1}, "unknown key 'gpu' in [executor]"),
    ({"slurm_cluster": "pbs"}, '[executor] slurm_cluster = "pbs": must be one of slurm, local'),
    ({"processes": 0}, "[executor] processes = 0: must be an integer ≥ 1"),
    ({"processes": 1.5}, "[executor] processes = 1.5: must be an integer ≥ 1"),
])
def test_bad_executor_settings_are_named(table, message):
    with pytest.raises(EtioInputError, match=__import__("re").escape(message)):
        parse_executor_settings(table)


def test_bad_executor_option_fails_before_anything_is_written(tmp_path):
    out = tmp_path / "store"
    result = run_etio("traces", "--config", MINI, "--out", out, "--executor", "dask")
    assert result.returncode == 2 and "unknown executor 'dask'" in result.stderr and not out.exists()
