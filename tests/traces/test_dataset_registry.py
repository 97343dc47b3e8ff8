"""The dataset registry: every dataset a study can name is registered by one family module of
``etio/traces/datasets/``, and everything (config checks, loading, how to get the files, generated
stand-ins, the study's data) looks it up there."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from etio.core.errors import EtioInputError
from etio.traces import datasets
from etio.traces.datasets import (DatasetInfo, LoadedData, dataset_info, get_dataset, how_to_get, list_datasets, load,
                                  register_dataset)
from etio.traces.datasets import _registry
from tests.support.cli import one_error_line, run_main
from tests.support.repo import REPO

KNOWN = "cifar10, cifar100, digits, fashion-mnist, mnist"


def test_the_registered_datasets_are_listed_sorted():
    assert list_datasets() == ("cifar10", "cifar100", "digits", "fashion-mnist", "mnist")
    assert set(datasets.DATASETS) == set(list_datasets())


@pytest.mark.parametrize("ask", [get_dataset, dataset_info, load], ids=lambda f: f.__name__)
def test_an_unknown_dataset_is_one_input_error_listing_the_known_ones(ask):
    with pytest.raises(EtioInputError) as err:
        ask("svhn")
    assert str(err.value) == f"unknown dataset 'svhn'; known datasets: {KNOWN}"


def test_a_config_naming_an_unknown_dataset_exits_2_listing_the_known_ones(tmp_path, monkeypatch, capsys):
    config = tmp_path / "svhn.toml"
    config.write_text('name = "x"\ndataset = "svhn"\nrepeats = 2\n[grid]\narch = ["mlp_1hidden"]\nwidth = [4]\n'
                      'train_size = [10]\nloss = ["ce"]\nweight_decay = [0.0005]\nepochs = [1]\nscheduler = [false]\n')
    code, err = run_main(monkeypatch, capsys, "traces", "--config", config, "--out", tmp_path / "out")
    assert code == 2
    line = one_error_line(err)
    assert f"unknown dataset 'svhn'; known datasets: {KNOWN}" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list_datasets())
def test_every_registered_dataset_has_a_loader_and_its_info(name):
    dataset = get_dataset(name)
    assert dataset.name == name and dataset_info(name) is dataset.info
    assert callable(dataset.loader)
    info = dataset.info
    assert info.num_classes >= 2 and info.pool_size > 0 and info.test_size > 0
    channels = info.input_shape[0] if len(info.input_shape) == 3 else 1
    assert len(info.mean) == len(info.std) == channels and all(s > 0 for s in info.std)
    if dataset.reads_files:        # read from a data directory: where, which files, how to get them, stand-ins
        assert dataset.folder and dataset.files and callable(dataset.write_synthetic)
        assert datasets.TORCHVISION_FILES[name] == (dataset.folder, dataset.files)
        assert "--data-dir /d" in how_to_get(name, "/d")
    else:
        assert dataset.folder is None and dataset.write_synthetic is None


def test_listing_and_looking_up_datasets_load_no_torch():
    # a config check and a study's plan ask the registry before any tensor is made
    probe = ("import sys\n"
             "from etio.traces.datasets import get_dataset, list_datasets\n"
             "print([get_dataset(n).info.num_classes for n in list_datasets()],\n"
             "      sorted(m for m in ('torch', 'torchvision', 'sklearn') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[10, 100, 10, 10, 10] []"]


def test_a_dataset_is_registered_once():
    with pytest.raises(ValueError, match="'digits' is registered twice"):
        register_dataset(dataset_info("digits"), load=get_dataset("digits").loader)


@pytest.fixture
def toy_dataset(monkeypatch):
    """A dataset registered the way a family module registers one (removed again afterwards)."""
    for table in ("_REGISTRY", "DATASETS", "TORCHVISION_FILES"):
        monkeypatch.setattr(_registry, table, dict(getattr(_registry, table)))
    monkeypatch.setattr(datasets, "DATASETS", _registry.DATASETS)
    datasets._CACHE.clear()
    info = DatasetInfo("toy", 3, (1, 4, 4), 6, 3, (0.5,), (0.25,), False)
    written = []

    def loader(info, data_dir):
        import torch

        raw = json.loads((data_dir / "toy" / "toy.json").read_text())
        x = (torch.tensor(raw["x"], dtype=torch.float32).view(-1, 1, 4, 4) - 0.5) / 0.25
        y = torch.tensor(raw["y"], dtype=torch.int64)
        return LoadedData(info, x[:6], y[:6], x[6:], y[6:], source=str(data_dir / "toy"))

    def writer(root, train, test):
        written.append((len(train[1]), len(test[1])))
        (root / "toy").mkdir(parents=True)
        x = np.concatenate([train[0], test[0]]).reshape(-1, 16) / 255.0
        (root / "toy" / "toy.json").write_text(json.dumps({"x": x.tolist(),
                                                           "y": np.concatenate([train[1], test[1]]).tolist()}))

    register_dataset(info, load=loader, how_to_get=lambda name, d: f"copy toy.json into {d}/toy",
                     folder="toy", files=("toy.json",), write_synthetic=writer)
    yield written
    datasets._CACHE.clear()


def test_a_registered_dataset_is_loaded_fetched_and_generated_through_the_registry(toy_dataset, tmp_path, monkeypatch):
    import etio.traces.synthetic as synthetic

    assert "toy" in list_datasets() and dataset_info("toy").num_classes == 3
    assert how_to_get("toy", tmp_path) == f"copy toy.json into {tmp_path}/toy"
    monkeypatch.setattr(synthetic, "generate_images",
                        lambda name, n, seed: (np.full((n, 4, 4), 128 + seed, np.uint8), np.arange(n) % 3))
    marker = synthetic.write_synthetic_data(tmp_path / "data", {"toy": (6, 3)}, seed=1)
    assert toy_dataset == [(6, 3)] and marker["datasets"]["toy"] == {"train": 6, "test": 3, "folder": "toy"}
    data = load("toy", tmp_path / "data", pool_size=4, test_size=2)
    assert (data.info.pool_size, data.info.test_size) == (4, 2) and data.pool_y.tolist() == [0, 1, 2, 0]
    assert float(data.pool_x[0, 0, 0, 0]) == pytest.approx((129 / 255 - 0.5) / 0.25, abs=1e-6)
