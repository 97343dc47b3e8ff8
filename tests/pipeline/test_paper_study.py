"""experiments/paper.toml is the authors' pooled study: exactly the row identities of their 880-row table.

The expected rows are typed in here from the authors' trace parser (a product over weight decay,
epochs, dataset, train size, loss, scheduler and architecture, kept where the loss is trained on
the dataset and the architecture belongs to it; one row per width), independently of etio's
config code. No training.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from etio.core.errors import EtioInputError
from etio.pipeline.study import load_study
from etio.traces.config import parse_config
from tests.support.repo import REPO


# The authors' parser: LossDict (datasets trained with each loss), DataDict (architectures per
# dataset) and the widths of each architecture.
LOSS_DATASETS = {"ce": ("cifar10", "cifar100", "mnist"), "mse": ("cifar10", "mnist")}
DATASET_ARCHS = {"cifar10": ("alexnetwol", "resnet34", "densenet161"),
                 "cifar100": ("alexnetwol", "resnet34", "densenet161"), "mnist": ("mlp_1hidden",)}
WIDTHS = {"alexnetwol": (16, 32, 64, 128, 256), "resnet34": (2, 4, 8, 16, 32),
          "densenet161": (2, 4, 8, 16, 32), "mlp_1hidden": (16, 32, 64, 128, 256)}
TRAIN_SIZES = {"5k": 5000, "1k": 1000}


def authors_rows() -> list[tuple]:
    rows = []
    for wd, epochs, dataset, size, loss, sched in itertools.product(
            (0.005, 0.0005), (500, 400), ("cifar10", "cifar100", "mnist"), ("5k", "1k"), ("ce", "mse"),
            ("with_scheduler", "without_scheduler")):
        if dataset not in LOSS_DATASETS[loss]:
            continue
        for arch in DATASET_ARCHS[dataset]:
            lr = 0.01 if (arch, loss) == ("alexnetwol", "ce") else 0.1
            for width in WIDTHS[arch]:
                rows.append((wd, epochs, dataset, arch, width, TRAIN_SIZES[size], loss, sched, lr))
    return rows


IDENTITY = ("WeightDecay", "EpochNum", "Dataset", "Arch", "Width", "TrainSize", "Loss", "Scheduler?", "lr")


def test_the_authors_row_set_has_880_rows():
    rows = authors_rows()
    assert len(rows) == len(set(rows)) == 880
    per_wd_loss = Counter((r[0], r[6]) for r in rows)
    assert per_wd_loss == {(0.005, "ce"): 280, (0.0005, "ce"): 280, (0.005, "mse"): 160, (0.0005, "mse"): 160}


def test_paper_toml_expands_to_exactly_the_authors_880_row_identities():
    cfg = load_study(REPO / "experiments" / "paper.toml").experiment
    confs = cfg.configurations()
    ours = [tuple(c.identity()[k] for k in IDENTITY) for c in confs]
    assert len(ours) == 880 and len(set(c.key for c in confs)) == 880
    assert sorted(ours, key=repr) == sorted(authors_rows(), key=repr)
    assert [p.dataset for p in cfg.dataset_grids()] == ["cifar10", "cifar100", "mnist"]


def test_the_per_dataset_configs_are_the_pooled_studys_parts():
    pooled = {c.key for c in load_study(REPO / "experiments" / "paper.toml").experiment.configurations()}
    parts = [{c.key for c in load_study(REPO / "experiments" / f"paper-{d}.toml").experiment.configurations()}
             for d in ("cifar10", "cifar100", "mnist")]
    assert set().union(*parts) == pooled and sum(map(len, parts)) == 880
    # and they agree on what decides the numbers (so their stores pool), except MNIST's eval batch
    cifar10 = load_study(REPO / "experiments" / "paper-cifar10.toml").experiment
    assert cifar10.training_settings()["training"]["lr_step_size"] == 200


def test_a_study_config_round_trips_through_its_store_form():
    cfg = load_study(REPO / "experiments" / "paper.toml").experiment
    again = parse_config(cfg.to_dict(), "store.json")
    assert again == cfg and again.to_dict() == cfg.to_dict()


def _raw():
    import tomllib
    return tomllib.loads((REPO / "experiments" / "paper.toml").read_text())


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r.update(dataset="mnist"), "either dataset .* or \\[datasets"),
    (lambda r: r["datasets"].update(svhn={"arch": ["resnet34"]}), "unknown dataset 'svhn'"),
    (lambda r: r["datasets"]["mnist"].update(optimiser="adam"), r"unknown key 'optimiser' in \[datasets.mnist\]"),
    (lambda r: r["datasets"]["mnist"].update(arch=["resnet34"]), "resnet34.*invalid model on dataset 'mnist'"),
    (lambda r: r["datasets"]["cifar10"].update(pool_size=60000), "pool_size = 60000 exceeds the cifar10"),
    (lambda r: r["datasets"]["cifar10"].update(pool_size=500), r"\[datasets.cifar10\] train_size = 1000: exceeds the cifar10 training pool \(500\)"),
    (lambda r: r.update(synthetic_data="yes"), 'synthetic_data = "yes": must be true or false'),
])
def test_bad_study_config_is_named(mutate, match):
    raw = _raw()
    mutate(raw)
    with pytest.raises(EtioInputError, match=match):
        parse_config(raw, "paper.toml")
