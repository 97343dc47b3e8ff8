"""The torchvision loaders read each dataset's own on-disk format (downloads off).

The tests write tiny files in MNIST's idx format and the CIFAR python pickles — by hand here,
byte by byte, not with etio's writer — read them through the loader that real data goes
through, and compare images and labels with what was written.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from etio.core.errors import EtioInputError
from etio.traces import datasets
from etio.traces.datasets import DATASETS, load


@pytest.fixture(autouse=True)
def _fresh_cache():
    datasets._CACHE.clear()
    yield
    datasets._CACHE.clear()


def _idx(values: np.ndarray) -> bytes:
    magic = 0x0800 | values.ndim
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in values.shape) + values.tobytes()


def _images(rs, n, shape):
    return rs.randint(0, 256, (n, *shape)).astype(np.uint8)


def _normalized(images_nchw: np.ndarray, name: str) -> torch.Tensor:
    info = DATASETS[name]
    x = torch.tensor(images_nchw, dtype=torch.float32) / 255.0
    mean, std = torch.tensor(info.mean).view(1, -1, 1, 1), torch.tensor(info.std).view(1, -1, 1, 1)
    return (x - mean) / std


def write_mnist_by_hand(root: Path, n_train=7, n_test=5, seed=0):
    rs = np.random.RandomState(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = _images(rs, n, (28, 28)), rs.randint(0, 10, n).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(x))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(y))
        out[prefix] = (x, y)
    return out


def write_cifar_by_hand(root: Path, name: str, n_train=10, n_test=4, seed=0):
    rs = np.random.RandomState(seed)
    classes = DATASETS[name].num_classes
    x_train, y_train = _images(rs, n_train, (3, 32, 32)), rs.randint(0, classes, n_train)
    x_test, y_test = _images(rs, n_test, (3, 32, 32)), rs.randint(0, classes, n_test)
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
            (folder / f"data_batch_{i}").write_bytes(pickle.dumps(
                {"data": x_train[part].reshape(len(part), -1), "labels": y_train[part].tolist()}))
        (folder / "test_batch").write_bytes(pickle.dumps({"data": x_test.reshape(n_test, -1), "labels": y_test.tolist()}))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(c) for c in range(10)]}))
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            (folder / split).write_bytes(pickle.dumps({"data": x.reshape(len(y), -1), "fine_labels": y.tolist(),
                                                       "coarse_labels": (y // 5).tolist()}))
        (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(c) for c in range(100)]}))
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def _mark_generated(root: Path, names):
    # the loader accepts CIFAR files whose md5 is not the real one only in a directory marked as generated
    import json
    (root / datasets.SYNTHETIC_MARKER).write_text(json.dumps({"datasets": {n: {} for n in names}}))


def test_mnist_idx_files_read_back_exactly(tmp_path):
    written = write_mnist_by_hand(tmp_path)
    data = load("mnist", tmp_path)
    assert data.info.pool_size == 7 and data.info.test_size == 5 and not data.synthetic
    torch.testing.assert_close(data.pool_x, _normalized(written["train"][0][:, None], "mnist"))
    assert data.pool_y.tolist() == written["train"][1].tolist()
    torch.testing.assert_close(data.test_x, _normalized(written["t10k"][0][:, None], "mnist"))
    assert data.test_y.tolist() == written["t10k"][1].tolist()


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickles_read_back_exactly(tmp_path, name):
    written = write_cifar_by_hand(tmp_path, name)
    _mark_generated(tmp_path, [name])
    data = load(name, tmp_path, allow_synthetic=True)
    assert data.pool_x.shape == (10, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    torch.testing.assert_close(data.pool_x, _normalized(written["train"][0], name))
    assert data.pool_y.tolist() == written["train"][1].tolist()
    torch.testing.assert_close(data.test_x, _normalized(written["test"][0], name))
    assert data.test_y.tolist() == written["test"][1].tolist()
    # the first images only: a small subset of the same files
    sub = load(name, tmp_path, pool_size=6, test_size=2, allow_synthetic=True)
    assert sub.info.pool_size == 6 and sub.pool_y.tolist() == written["train"][1][:6].tolist()
    torch.testing.assert_close(sub.test_x, data.test_x[:2])


def test_real_cifar_files_are_checked_against_their_checksums(tmp_path):
    # unmarked files whose checksums are not the published ones are a damaged copy
    write_cifar_by_hand(tmp_path, "cifar10")
    with pytest.raises(EtioInputError, match=r"dataset 'cifar10' in .*cifar-10-batches-py is damaged .*get it again"):
        load("cifar10", tmp_path)


def test_generated_files_are_refused_where_real_data_is_expected(tmp_path):
    write_mnist_by_hand(tmp_path)
    _mark_generated(tmp_path, ["mnist"])
    with pytest.raises(EtioInputError, match="generated stand-ins for 'mnist'.*not the real dataset"):
        load("mnist", tmp_path)
    assert load("mnist", tmp_path, allow_synthetic=True).synthetic


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py"),
                                         ("cifar100", "cifar-100-python")])
def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, name, folder, monkeypatch):
    import torchvision

    def no_network(*a, **k):
        raise AssertionError("the loader must not download")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_network)
    with pytest.raises(EtioInputError) as err:
        load(name, tmp_path / "empty")
    message = str(err.value)
    assert "\n" not in message
    assert f"dataset {name!r} not found: looked for {tmp_path / 'empty' / folder}" in message
    assert "download=True" in message and f"--data-dir {tmp_path / 'empty'}" in message


def test_damaged_mnist_is_named(tmp_path):
    write_mnist_by_hand(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:4] + struct.pack(">I", 0xFFFF))      # a truncated header
    with pytest.raises(EtioInputError, match=r"dataset 'mnist' in .*MNIST/raw is damaged"):
        load("mnist", tmp_path)


def test_damaged_cifar_pickle_is_named(tmp_path):
    write_cifar_by_hand(tmp_path, "cifar100")
    _mark_generated(tmp_path, ["cifar100"])
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"not a pickle")
    with pytest.raises(EtioInputError, match=r"dataset 'cifar100' in .*cifar-100-python is damaged"):
        load("cifar100", tmp_path, allow_synthetic=True)


def test_etios_writer_produces_what_the_loader_reads(tmp_path):
    from etio.traces.synthetic import generate_images, synthetic_record, write_synthetic_data

    sizes = {"mnist": (30, 12), "fashion-mnist": (20, 10), "cifar10": (25, 10), "cifar100": (200, 20)}
    marker = write_synthetic_data(tmp_path, sizes, seed=3)
    assert synthetic_record(tmp_path) == marker and set(marker["datasets"]) == set(sizes)
    for name, (n_train, n_test) in sizes.items():
        data = load(name, tmp_path, allow_synthetic=True)
        assert data.synthetic and (data.info.pool_size, data.info.test_size) == (n_train, n_test)
        images, labels = generate_images(name, n_train, 3)
        nchw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        torch.testing.assert_close(data.pool_x, _normalized(nchw, name))
        assert data.pool_y.tolist() == labels.tolist()
    with pytest.raises(EtioInputError, match="not empty"):
        write_synthetic_data(tmp_path, {"mnist": (5, 5)})
