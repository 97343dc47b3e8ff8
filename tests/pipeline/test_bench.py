"""Every ``etio bench`` command runs with tiny arguments and prints its figures in the documented
layout. Only the structure is checked: the speeds themselves depend on the machine."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tests.support.repo import requires_r
from etio.commands.app import app

NUMBER = r"\d+(?:\.\d+)?"


def _bench(*args: str) -> list[str]:
    result = CliRunner().invoke(app, ["bench", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()


def test_bench_lists_every_benchmark():
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    for name in ("learn", "train", "ate", "attacks", "executors", "checks", "robust-train"):
        assert re.search(rf"^\s*│?\s*{name}\s", result.stdout, re.M), (name, result.stdout)


def test_bench_train():
    lines = _bench("train", "--epochs", 1, "--models", 3, "--device", "cpu")
    assert re.fullmatch(r"device cpu, torch threads \d+", lines[0]), lines
    # One line per architecture of the paper: the MLP grid (5 widths x 12 models), a conv net at its smallest width.
    archs = {"mlp_1hidden": ("16,32,64,128,256", 60), "alexnetwol": ("16", 3), "resnet34": ("2", 3),
             "densenet161": ("2", 3)}
    assert len(lines) == 1 + len(archs), lines
    for line, (arch, (widths, models)) in zip(lines[1:], archs.items()):
        assert re.fullmatch(rf"{arch} +width {widths} models {models} epochs 1: one-at-a-time {NUMBER} models/s, "
                            rf"batched {NUMBER} models/s, speedup {NUMBER}x", line), lines


def test_bench_ate():
    lines = _bench("ate", "--wd", "0.005")
    # 12 graphs of the authors at weight decay 5e-3 (no MemGuard) x 13 treatments
    assert len(lines) == 1 and re.fullmatch(rf"ates 156 queries \(paper \+ sound estimators\) in {NUMBER} s "
                                            rf"\({NUMBER} ms/query\); {NUMBER} of the 60 s budget", lines[0]), lines


@requires_r
def test_bench_learn():
    lines = _bench("learn", "--repetitions", 2, "--replicates", 4)
    assert len(lines) == 1
    assert re.fullmatch(rf"hc median {NUMBER} ms; boot.strength R=4 {NUMBER} s; backend bnlearn.*", lines[0]), lines


ATTACKS = """
[attacks]
mlleak_tuples = 3
mlleak_epochs = 2
oak17_epochs = 2
oak17_seeds = [0]
memguard_max_iteration = 3
memguard_samples = 10
memguard_weight_decays = []
"""


def test_bench_attacks(tmp_path):
    from tests.support.ensembles import make_digits_store

    store = tmp_path / "store"
    make_digits_store(store, widths=(8, 16), per_repeat=4, subset=30, steps=20)
    config = tmp_path / "attacks.toml"
    config.write_text(ATTACKS)
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    lines = _bench("attacks", "--out", store, "--config", config, "--limit", 1)
    names = ["mlleak", "mlleak_l", "top3", "top3_l", "oak17", "threshold", "memguard", "lowfpr"]
    phases = ["queries", "attack-model training", "MemGuard search", "scoring and bookkeeping"]
    assert lines[0].startswith("1 configurations on cpu, 1 torch thread(s); CPU seconds per configuration")
    assert lines[1] == "per attack:" and lines[2 + len(names)] == "per phase:", lines
    row = re.compile(rf"  (\S.*?)\s+({NUMBER}) s/configuration\s+({NUMBER}) %  load {NUMBER}")
    by_attack = [row.fullmatch(line) for line in lines[2:2 + len(names)]]
    by_phase = [row.fullmatch(line) for line in lines[3 + len(names):-1]]
    assert all(by_attack) and all(by_phase), lines
    assert [m[1] for m in by_attack] == names and [m[1] for m in by_phase] == phases
    # each account shares out the same CPU seconds: the shares add up to the whole (up to rounding)
    assert sum(float(m[3]) for m in by_attack) == pytest.approx(100, abs=0.5)
    assert sum(float(m[3]) for m in by_phase) == pytest.approx(100, abs=0.5)
    total = re.fullmatch(rf"  all\s+({NUMBER}) s/configuration \(wall {NUMBER} s\)  load {NUMBER}", lines[-1])
    assert total and sum(float(m[2]) for m in by_phase) == pytest.approx(float(total[1]), abs=0.005)
    assert float(by_phase[1][2]) > 0                 # the attack models are trained
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before      # nothing stored
    # --attacks times a subset (the low-FPR queries of a large model, say, left out)
    lines = _bench("attacks", "--store", store, "--config", config, "--limit", 1, "--attacks", "oak17,threshold")
    assert [line.split()[0] for line in lines[2:4]] == ["oak17", "threshold"] and lines[4] == "per phase:", lines
    assert float(row.fullmatch(lines[5 + 2])[2]) == 0            # no MemGuard: no search


def test_bench_attacks_spreads_the_configurations_it_times():
    from etio.bench.attacks import spread

    keys = [f"k{i:02d}" for i in range(10)]
    assert spread(keys, 3) == ["k00", "k03", "k06"] and spread(keys, 10) == keys and spread(keys, 20) == keys


@pytest.mark.parametrize("args,message", [(["train", "--device", "tpu"], "--device 'tpu': use cpu or cuda"),
                                          (["executors", "--device", "tpu"], "--device 'tpu': use cpu or cuda"),
                                          (["attacks", "--device", "tpu"], "--device 'tpu': use cpu or cuda")])
def test_bench_bad_input(args, message, tmp_path):
    if args[0] == "attacks":
        args = [*args, "--store", str(make_small_store(tmp_path / "store").root)]
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code != 0 and message in str(result.exception)


def test_check_timer_counts_nested_checks_once_and_restores_every_binding(tmp_path):
    """Calls through the defining module and through a name bound by ``from ... import`` are both
    timed; a checksum inside a verification counts for the verification only; the lock's block is
    not charged to the lock; afterwards every binding is the original function again."""
    import time

    import etio.traces.stage as stage_module
    import etio.traces.store as store_module
    from etio.bench.checks import CheckTimer

    originals = (store_module.sha256_bytes, store_module.store_lock, stage_module.store_lock,
                 store_module.TraceStore.damage)
    store = make_small_store(tmp_path / "store")
    key = store.keys()[0]
    with CheckTimer() as timer:
        store_module.sha256_bytes(b"x" * 1000)
        assert store.damage(key) is None                  # verifies two checksums inside
        with stage_module.store_lock(tmp_path / "store", "test"):
            time.sleep(0.3)
    assert timer.calls["checksums"] == 1
    assert timer.calls["verifying stored configurations"] == 1
    assert timer.calls["store lock"] == 2                 # entry and exit
    assert timer.seconds["store lock"] < 0.1 and 0 < timer.seconds["checksums"]
    assert (store_module.sha256_bytes, store_module.store_lock, stage_module.store_lock,
            store_module.TraceStore.damage) == originals


def make_small_store(root):
    from tests.support.ensembles import make_digits_store

    return make_digits_store(root, widths=(8,), per_repeat=2, subset=20, steps=5)


def test_bench_checks(tmp_path, monkeypatch):
    """The benchmark's layout, with the pipeline replaced by a real store being written and a
    trace table checked: the store's writes and the table check are what it times."""
    import pandas as pd

    import etio.core.schema as schema
    import etio.pipeline.reproduce as reproduce_module

    def small_reproduce(config_path, out, **kwargs):
        assert (kwargs["executor"].kind, kwargs["executor"].processes) == ("local", 1)   # every check in sight
        make_small_store(out / "store")
        schema.check_trace_rows(pd.DataFrame({"Width": [8, 16]}))

    monkeypatch.setattr(reproduce_module, "reproduce", small_reproduce)
    lines = _bench("checks", "--config", "experiments/smoke.toml")
    assert re.fullmatch(rf"1 configurations \(experiments/smoke.toml\): reproduce {NUMBER} s, checks {NUMBER} s "
                        rf"\({NUMBER} % of the run\)", lines[0]), lines
    rows = {re.match(r"\s+(.+?)\s+\d", line).group(1): line for line in lines[1:-1]}
    assert list(rows) == ["checksums", "verifying stored configurations", "trace-table checks", "output rules",
                          "store lock"], lines
    calls = {name: int(line.split()[-2]) for name, line in rows.items()}
    # one configuration written: its record, models and stats checksums, in with_checksum (outermost) and
    # sha256_bytes twice; one table check; nothing verified during the run
    assert calls == {"checksums": 3, "verifying stored configurations": 0, "trace-table checks": 1,
                     "output rules": 0, "store lock": 0}, lines
    assert re.fullmatch(rf"verifying the finished store again \(what a rerun pays before reusing it\): {NUMBER} s, "
                        r"0 damaged", lines[-1]), lines
