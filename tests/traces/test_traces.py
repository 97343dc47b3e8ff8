"""The trace stage end to end on a small digits grid (tests/data/traces-mini.toml): table, store API,
resume, shards, bad input."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

from etio.traces.config import parse_config
from etio.pipeline.study import load_study
from etio.core.errors import EtioInputError
from etio.traces.generalization import generalization_stats
from etio.core.schema import TRACE_COLUMNS
from etio.traces.store import open_store
from etio.traces.stage import merge_stores, plan_jobs
from tests.support.cli import run_etio
from tests.support.repo import MINI, REPO
from tests.support.stages import train


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, mini_store):
    """This module's copy of the shared trained store (its tests resume, damage and re-label it)."""
    out = tmp_path_factory.mktemp("smoke") / "store"
    shutil.copytree(mini_store, out)
    return out


def test_trace_table(smoke):
    table = pd.read_csv(smoke / "traces.csv")
    cfg = load_study(MINI).experiment
    assert list(table.columns) == TRACE_COLUMNS
    assert len(table) == len(cfg.configurations()) == 8
    assert set(table["Loss"]) == {"ce", "mse"} and set(table["TrainSize"]) == {100, 200}
    assert (table["NumParams"] == table["Width"] * 74).all()              # 64 → w → 10, no bias
    for part in ("Train", "Test"):
        np.testing.assert_allclose(table[f"{part}Bias2"] + table[f"{part}Var"], table[f"{part}Loss"], atol=1e-9)
    # TestAcc from the stored models themselves: the share of test points each model gets right,
    # averaged over the 18 (or 9) models of the configuration.
    store = open_store(smoke)
    for key in store.keys():
        split, ens, rec = store.splits(key), store.ensemble(key), store.record(key)
        right = (ens.logits(list(range(1, rec.n_models + 1)), split.test_x).argmax(-1) == split.test_y).double()
        row = table[(table["Loss"] == rec.loss) & (table["Width"] == rec.width) & (table["TrainSize"] == rec.train_size)]
        assert len(row) == 1 and float(row["TestAcc"].iloc[0]) == pytest.approx(float(right.mean()), abs=1e-9), key
    np.testing.assert_allclose(table["AccDiff"], table["TrainAcc"] - table["TestAcc"])
    assert (table[["TrainVar", "TestVar", "CentroidDistance(origin)", "CentroidDistance(sorted_3)"]] > 0).all().all()
    # wider CE models fit their subsets better than narrow ones
    ce = table[table["Loss"] == "ce"].set_index(["Width", "TrainSize"])
    assert ce.loc[(64, 100), "TrainAcc"] > ce.loc[(8, 100), "TrainAcc"]
    assert table[["MLLeakAcc", "Oak17Acc", "ThresholdAcc"]].isna().all().all()   # attacks not run yet
    prov = json.loads((smoke / "provenance.json").read_text())
    assert prov["stage"] == "traces" and prov["config"]["name"] == "smoke" and "torch" in prov["versions"]


def test_store_api(smoke, tmp_path):
    store = open_store(smoke)
    keys = store.keys()
    assert keys == sorted(keys) and len(keys) == 8
    key = next(k for k in keys if "-ce-" in k and "s00100" in k and "w0064" in k)
    rec = store.record(key)
    assert rec.identity["Loss"] == "ce" and rec.identity["TrainSize"] == 100 and rec.identity["Width"] == 64
    assert (rec.n_repeats, rec.models_per_repeat, rec.num_classes) == (3, 6, 10)
    assert rec.model_ids(1) == [7, 8, 9, 10, 11, 12]
    split = store.splits(key)
    assert split.subsets.shape == (18, 100) and split.repeat_of(7) == 1
    assert sorted(split.subsets[6:12].ravel().tolist()) == list(range(600))
    # the stored models reproduce the stored statistics
    ens = store.ensemble(key)
    ids = list(range(1, 19))
    train_logits = torch.stack([ens.logits([k], split.pool_x[split.subsets[k - 1]])[0] for k in ids])
    test_logits = ens.logits(ids, split.test_x)
    assert test_logits.shape == (18, len(split.test_y), 10)
    torch.testing.assert_close(ens.probs([1], split.test_x[:3]), test_logits[:1, :3].softmax(-1))
    stats = generalization_stats("ce", train_logits, test_logits, split.subsets, split.pool_y, split.test_y, 3, 600)
    for col, value in stats.items():
        assert store.stats(key)[col] == pytest.approx(value, abs=1e-6), col
    # attack results round-trip and fill their trace columns
    assert store.read_attack(key, "threshold") is None
    store.write_attack(key, "threshold", {"ThresholdAcc": 0.61, "Threshold": 0.2, "per_model": [1, 2]})
    assert store.read_attack(key, "threshold")["ThresholdAcc"] == 0.61
    row = store.traces_table().set_index("Width").loc[64]
    row = row[(row["Loss"] == "ce") & (row["TrainSize"] == 100)]
    assert float(row["ThresholdAcc"].iloc[0]) == 0.61
    (smoke / "configs" / key / "attacks" / "threshold.json").unlink()
    with pytest.raises(EtioInputError, match="not a trace store"):
        open_store(tmp_path)


# A trace run that announces each stored configuration on stdout and then waits for a line on
# stdin: the test kills it at a known point of its progress, with no timing involved.
_PAUSING_RUN = """
import sys
from etio.pipeline.executors import ExecutorSettings
from etio.pipeline.stages import traces_on
from etio.pipeline.study import load_study

def announce_and_wait(line):
    print(line, flush=True)
    sys.stdin.readline()

traces_on(load_study(sys.argv[1]).experiment, sys.argv[2], ExecutorSettings(), "cpu", progress_echo=announce_and_wait)
"""


def test_killed_run_resumes_to_the_identical_table(smoke, tmp_path):
    out = tmp_path / "resumed"
    proc = subprocess.Popen([sys.executable, "-c", _PAUSING_RUN, str(MINI), str(out)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = proc.stdout.readline()                   # blocks until the first configuration is stored
    assert "traces: 1/8 configurations" in first, first
    proc.send_signal(signal.SIGKILL)                 # while it waits: exactly one configuration is done
    proc.wait()
    assert len(list((out / "configs").glob("*/stats.json"))) == 1
    res = run_etio("traces", "--config", MINI, "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr
    assert len(open_store(out).keys()) == 8
    pd.testing.assert_frame_equal(pd.read_csv(out / "traces.csv"), pd.read_csv(smoke / "traces.csv"))
    # a second rerun has nothing left to do and changes nothing
    before = (out / "configs").stat().st_mtime_ns, sorted(p.stat().st_mtime_ns for p in (out / "configs").glob("*/stats.json"))
    res = run_etio("traces", "--config", MINI, "--out", out, "--quiet")
    assert res.returncode == 0
    assert sorted(p.stat().st_mtime_ns for p in (out / "configs").glob("*/stats.json")) == before[1]


def test_shards_merge_to_the_full_table(smoke, tmp_path):
    cfg = load_study(MINI).experiment
    assert len(plan_jobs(cfg)) == 2
    # the two shards train side by side, as on two machines
    with ThreadPoolExecutor(2) as pool:
        shards = list(pool.map(lambda i: run_etio("traces", "--config", MINI, "--out", tmp_path / f"shard{i}",
                                                  "--shard", f"{i}/2", "--quiet"), (1, 2)))
    for res in shards:
        assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "shard1" / "store.json").read_text())["shards"] == ["1/2"]
    assert 0 < len(open_store(tmp_path / "shard1").keys()) < 8
    res = run_etio("traces", "merge", tmp_path / "shard1", tmp_path / "shard2", "--out", tmp_path / "merged")
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "merged" / "traces.csv"), pd.read_csv(smoke / "traces.csv"))
    with pytest.raises(EtioInputError, match="not empty"):
        merge_stores([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "merged")
    # a missing shard is named, and so is an incomplete one
    res = run_etio("traces", "merge", tmp_path / "shard1", "--out", tmp_path / "half")
    assert res.returncode == 2 and "shard 2/2 of config 'smoke' missing: merge needs all 2 shards" in res.stderr
    assert not (tmp_path / "half").exists()
    shutil.rmtree(next((tmp_path / "shard2" / "configs").iterdir()))
    with pytest.raises(EtioInputError, match=r"shard 2/2 of config 'smoke' is incomplete \(1 of 4 configurations "
                                             r"missing.*rerun it with --shard 2/2"):
        merge_stores([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "incomplete")
    # shards count from 1, as people count
    for bad in ("0/2", "3/2"):
        res = run_etio("traces", "--config", MINI, "--out", tmp_path / "x", "--shard", bad)
        assert res.returncode == 2 and "need 1 ≤ i ≤ N (shards are numbered 1/2 … 2/2)" in res.stderr


def test_stores_of_different_configs_pool_when_their_training_agrees(smoke, tmp_path):
    # a second store made "elsewhere": other widths, another eval batch size (memory only)
    raw = _raw_smoke()
    raw["name"] = "smoke-wide"
    raw["grid"]["width"] = [16]
    raw["training"]["eval_batch_size"] = 300
    other = tmp_path / "wide"
    train(parse_config(raw), other)
    pooled = merge_stores([smoke, other], tmp_path / "pooled")
    table = pd.read_csv(tmp_path / "pooled" / "traces.csv")
    assert len(table) == 12 and sorted(table["Width"].unique()) == [8, 16, 64]
    key = next(k for k in open_store(other).keys())
    assert pooled.stats(key) == open_store(other).stats(key)
    meta = json.loads((tmp_path / "pooled" / "store.json").read_text())
    assert [p["config"] for p in meta["pooled_from"]] == ["smoke", "smoke-wide"]
    pooled_cfg = parse_config(meta["config"])
    assert {c.key for c in pooled_cfg.configurations()} >= set(pooled.keys())
    # different training settings are refused, naming the difference
    raw["name"], raw["training"]["lr"] = "smoke-lr", 0.05
    lr_store = tmp_path / "lr"
    train(parse_config(raw), lr_store)
    res = run_etio("traces", "merge", smoke, lr_store, "--out", tmp_path / "refused")
    assert res.returncode == 2
    assert "trained with different settings (training.lr: 0.1 vs 0.05); their traces cannot be pooled" in res.stderr
    assert not (tmp_path / "refused").exists()


def _raw_smoke():
    import tomllib
    return tomllib.loads(MINI.read_text())


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r.update(learning_rate=0.1), "unknown key 'learning_rate'"),
    (lambda r: r["grid"].update(optimiser="adam"), r"unknown key 'optimiser' in \[grid\]"),
    (lambda r: r.update(dataset="svhn"), "unknown dataset 'svhn'"),
    (lambda r: r["grid"].update(arch=["vgg16"]), "unknown architecture 'vgg16'"),
    (lambda r: r["grid"].update(arch=["alexnetwol"], width=[16]), "alexnetwol.*width 16.*invalid model"),
    (lambda r: r["grid"].update(width=[0]), r"\[grid\] width = \[0\]: 0 must be an integer ≥ 1"),
    (lambda r: r["grid"].update(loss=["hinge"]), "unknown loss 'hinge'"),
    (lambda r: r["grid"].update(train_size=[5000]), "exceeds the digits training pool"),
])
def test_bad_config_is_named(mutate, match):
    raw = _raw_smoke()
    mutate(raw)
    with pytest.raises(EtioInputError, match=match):
        parse_config(raw, "smoke.toml")


def test_bad_input_from_the_command_line_loses_nothing(smoke, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINI.read_text().replace("repeats = 3", "repeats = 3\nrepeat = 2"))
    before = sorted(p.name for p in (smoke / "configs").iterdir())
    res = run_etio("traces", "--config", bad, "--out", smoke)
    assert res.returncode == 2 and "unknown key 'repeat'" in res.stderr
    other = tmp_path / "other.toml"
    other.write_text(MINI.read_text().replace("epochs = [20]", "epochs = [21]"))
    res = run_etio("traces", "--config", other, "--out", smoke)
    assert res.returncode == 2 and "different config" in res.stderr
    assert sorted(p.name for p in (smoke / "configs").iterdir()) == before
    assert len(pd.read_csv(smoke / "traces.csv")) == 8


def test_missing_dataset_is_named_and_nothing_is_downloaded(tmp_path, monkeypatch):
    import torchvision

    from etio.traces import datasets

    def no_download(*a, **k):
        raise AssertionError("etio must not download datasets")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)
    raw = _raw_smoke()
    raw["dataset"] = "mnist"
    cfg = parse_config(raw)
    out = tmp_path / "store"
    with pytest.raises(EtioInputError, match=r"dataset 'mnist' not found: looked for .*nodata/MNIST/raw.*download=True"):
        train(cfg, out, data_dir=tmp_path / "nodata")
    assert not out.exists()                          # nothing half-made
    datasets._CACHE.clear()


def test_a_batch_of_models_that_cannot_fit_is_refused_before_training(tmp_path, monkeypatch):
    from etio.traces import resources

    monkeypatch.setattr(resources, "available_memory", lambda device: 50 * 2**20)     # 50 MiB free
    raw = _raw_smoke()
    cfg = parse_config(raw)
    with pytest.raises(EtioInputError, match=r"72 models of digits mlp_1hidden width 64 at once need about .*, "
                                             r"but cpu has 50.0 MiB available; set \[training\] models_per_batch ≤ \d+"):
        train(cfg, tmp_path / "store")
    assert not (tmp_path / "store").exists()
    from etio.traces.datasets import DATASETS

    need = resources.job_memory(cfg, plan_jobs(cfg)[0], DATASETS["digits"])
    # the estimate counts parameters, gradients, momenta and a snapshot (4 floats per parameter) at least
    assert need.per_model >= 4 * 4 * 64 * 74
    # and, where several variants share a model's batch, the batch each model's product gets copied
    job = dataclasses.replace(plan_jobs(cfg)[0], widths=(64,))
    shared = resources.job_memory(cfg, job, DATASETS["digits"])
    alone = resources.job_memory(cfg, dataclasses.replace(job, variants=job.variants[:1]), DATASETS["digits"])
    assert len(job.variants) > 1
    assert shared.per_model - alone.per_model == 4 * 64 * min(cfg.training.batch_size, job.train_size)


def test_training_in_chunks_of_models_gives_the_same_table(smoke, tmp_path):
    raw = _raw_smoke()
    raw["training"]["models_per_batch"] = 5          # 18 and 9 models per job -> chunks of 5
    train(parse_config(raw), tmp_path / "chunked")
    a, b = pd.read_csv(tmp_path / "chunked" / "traces.csv"), pd.read_csv(smoke / "traces.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-4, atol=1e-5)


def test_paper_configs_span_the_authors_880_rows():
    counts = {}
    for name in ("paper-cifar10", "paper-cifar100", "paper-mnist"):
        cfg = load_study(REPO / "experiments" / f"{name}.toml").experiment
        confs = cfg.configurations()
        counts[name] = len(confs)
        assert {c.epochs for c in confs} == {400, 500} and {c.train_size for c in confs} == {1000, 5000}
        assert {c.weight_decay for c in confs} == {0.0005, 0.005}
        assert all(c.lr == (0.01 if (c.arch, c.loss) == ("alexnetwol", "ce") else 0.1) for c in confs)
    assert counts == {"paper-cifar10": 480, "paper-cifar100": 240, "paper-mnist": 160}


def test_digits_default_has_100_rows_per_slice():
    cfg = load_study(REPO / "experiments" / "digits.toml").experiment
    slices = pd.Series([(c.loss, c.weight_decay) for c in cfg.configurations()]).value_counts()
    assert len(slices) == 4 and slices.min() >= 100


def test_new_attack_settings_reuse_the_trained_store(smoke):
    raw = _raw_smoke()
    raw["attacks"]["mlleak_tuples"] = 6
    raw["name"] = "smoke-renamed"
    marks = sorted(p.stat().st_mtime_ns for p in (smoke / "configs").glob("*/stats.json"))
    store = train(parse_config(raw), smoke)
    assert sorted(p.stat().st_mtime_ns for p in (smoke / "configs").glob("*/stats.json")) == marks
    assert store.meta["config"]["attacks"]["mlleak_tuples"] == 6
    assert json.loads((smoke / "store.json").read_text())["config"]["attacks"]["mlleak_tuples"] == 6


def test_fashion_mnist_configs_keep_the_papers_mnist_protocol():
    paper = load_study(REPO / "experiments" / "paper-mnist.toml").experiment
    full = load_study(REPO / "experiments" / "fashion-mnist.toml").experiment
    cpu = load_study(REPO / "experiments" / "fashion-mnist-cpu.toml").experiment
    assert full.dataset == cpu.dataset == "fashion-mnist"
    # the GPU study is the paper's MNIST grid and training exactly, on the other dataset
    assert full.grid == paper.grid and full.training == paper.training and full.repeats == paper.repeats
    assert [c.key.replace("fashion-mnist-", "mnist-", 1) for c in full.configurations()] == \
        [c.key for c in paper.configurations()]
    # the CPU study keeps the pool, subset sizes, models per configuration, losses, weight decays, schedulers
    confs = cpu.configurations()
    assert len(confs) == 144 and cpu.repeats == paper.repeats
    for what in ("train_size", "loss", "weight_decay", "scheduler", "arch"):
        assert {getattr(c, what) for c in confs} == {getattr(c, what) for c in paper.configurations()}, what
    assert cpu.dataset_grids()[0].info().pool_size == 60000
    slices = pd.Series([(c.loss, c.weight_decay) for c in confs]).value_counts()
    assert sorted(slices.to_dict().items()) == [(("ce", 0.0005), 36), (("ce", 0.005), 36),
                                                (("mse", 0.0005), 36), (("mse", 0.005), 36)]
