"""Fashion-MNIST from Debian's dataset-fashion-mnist, read by etio's loaders and checked against the files.

The expected images and labels come from the gzip files' bytes at their fixed idx offsets (16 for
images, 8 for labels), not from etio's reader. The same files laid out as torchvision leaves MNIST
(``MNIST/raw/``, unpacked) go through the MNIST loader. Damaged copies are small files made here
from the real ones; each must be refused with one line naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.cli import one_error_line, run_main
from etio.core.errors import EtioInputError
from etio.traces import datasets
from etio.traces.datasets import DATASETS, SYSTEM_DIRS, load

SYSTEM = SYSTEM_DIRS["fashion-mnist"]
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

pytestmark = pytest.mark.skipif(not all((SYSTEM / f"{f}.gz").is_file() for f in FILES),
                                reason=f"Debian's dataset-fashion-mnist is not installed ({SYSTEM}); make setup "
                                       f"installs it as root")


@pytest.fixture(autouse=True)
def _fresh_cache():
    saved = dict(datasets._CACHE)
    yield
    datasets._CACHE.clear()
    datasets._CACHE.update(saved)


@pytest.fixture(scope="module")
def raw() -> dict[str, bytes]:
    """Each file's gzip bytes and its unpacked bytes."""
    out = {}
    for f in FILES:
        out[f"{f}.gz"] = (SYSTEM / f"{f}.gz").read_bytes()
        out[f] = gzip.decompress(out[f"{f}.gz"])
    return out


@pytest.fixture(scope="module")
def expected(raw) -> dict[str, np.ndarray]:
    """Images and labels by the idx layout's fixed offsets (the headers checked first)."""
    out = {}
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        images, labels = raw[f"{prefix}-images-idx3-ubyte"], raw[f"{prefix}-labels-idx1-ubyte"]
        assert struct.unpack(">4I", images[:16]) == (0x0803, n, 28, 28)
        assert struct.unpack(">2I", labels[:8]) == (0x0801, n)
        out[f"{prefix}_x"] = np.frombuffer(images, np.uint8, offset=16).reshape(n, 28, 28)
        out[f"{prefix}_y"] = np.frombuffer(labels, np.uint8, offset=8)
    return out


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """load('fashion-mnist') without a data directory (the default one empty): Debian's files, read once."""
    empty = tmp_path_factory.mktemp("empty-default")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "DEFAULT_DATA_DIR", empty)
        datasets._CACHE.pop(("fashion-mnist", str(SYSTEM)), None)
        return load("fashion-mnist")


def _pixels(x: torch.Tensor, name: str) -> np.ndarray:
    """Normalised [n, 1, 28, 28] back to the uint8 pixels [n, 28, 28]."""
    info = DATASETS[name]
    return ((x[:, 0] * info.std[0] + info.mean[0]) * 255.0).round().to(torch.uint8).numpy()


def test_fashion_mnist_is_read_in_place_from_debians_files(fashion, expected, raw):
    assert fashion.source == str(SYSTEM) and fashion.data_dir is None and not fashion.synthetic
    assert fashion.pool_x.shape == (60000, 1, 28, 28) and fashion.test_x.shape == (10000, 1, 28, 28)
    assert (fashion.info.pool_size, fashion.info.test_size) == (60000, 10000)
    for prefix, x, y in (("train", fashion.pool_x, fashion.pool_y), ("t10k", fashion.test_x, fashion.test_y)):
        want_x, want_y = expected[f"{prefix}_x"], expected[f"{prefix}_y"]
        for i in (0, len(want_y) - 1):                 # first and last records
            np.testing.assert_array_equal(_pixels(x[i:i + 1], "fashion-mnist")[0], want_x[i])
            assert int(y[i]) == int(want_y[i])
        np.testing.assert_array_equal(_pixels(x, "fashion-mnist"), want_x)
        np.testing.assert_array_equal(y.numpy(), want_y)
    assert np.bincount(fashion.pool_y.numpy()).tolist() == [6000] * 10
    assert np.bincount(fashion.test_y.numpy()).tolist() == [1000] * 10
    assert fashion.pool_y[:5].tolist() == [9, 0, 0, 3, 0]
    # the provenance: each file read, with the SHA-256 of its bytes
    assert [Path(p).name for p, _ in fashion.files] == [f"{f}.gz" for f in FILES]
    assert dict(fashion.files) == {str(SYSTEM / f"{f}.gz"): hashlib.sha256(raw[f"{f}.gz"]).hexdigest() for f in FILES}


def test_fixed_normalisation_is_the_training_sets_own(expected):
    counts = np.bincount(expected["train_x"].ravel(), minlength=256)      # pixels per value 0..255
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    info = DATASETS["fashion-mnist"]
    assert (mean, std) == (pytest.approx(0.28604, abs=5e-6), pytest.approx(0.35302, abs=5e-6))
    assert info.mean[0] == pytest.approx(mean, abs=5e-5)
    assert info.std[0] == pytest.approx(std, abs=5e-5)


def test_the_mnist_loader_reads_the_same_files_laid_out_as_mnist(tmp_path, fashion, expected, raw):
    # unpacked, as torchvision's download leaves MNIST/raw/
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for f in FILES:
        (folder / f).write_bytes(raw[f])
    mnist = load("mnist", tmp_path)
    assert mnist.source == str(folder) and mnist.data_dir == str(tmp_path)
    np.testing.assert_array_equal(_pixels(mnist.pool_x, "mnist"), expected["train_x"])
    np.testing.assert_array_equal(_pixels(mnist.test_x, "mnist"), expected["t10k_x"])
    assert torch.equal(mnist.pool_y, fashion.pool_y) and torch.equal(mnist.test_y, fashion.test_y)
    assert dict(mnist.files) == {str(folder / f): hashlib.sha256(raw[f]).hexdigest() for f in FILES}


def test_a_data_directory_with_the_gzip_files_gives_the_same_tensors(tmp_path, fashion):
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    for f in FILES:
        (folder / f"{f}.gz").symlink_to(SYSTEM / f"{f}.gz")
    data = load("fashion-mnist", tmp_path)
    assert data.source == str(folder) and data.data_dir == str(tmp_path)
    assert torch.equal(data.pool_x, fashion.pool_x) and torch.equal(data.test_y, fashion.test_y)
    assert [digest for _, digest in data.files] == [digest for _, digest in fashion.files]


# -- damaged copies: small files made from the real ones -------------------------------------------

def _idx(kind: int, values: np.ndarray) -> bytes:
    return struct.pack(">I", kind << 8 | values.ndim) + struct.pack(f">{values.ndim}I", *values.shape) + values.tobytes()


def _small_copy(root: Path, expected, n=20) -> Path:
    """The first ``n`` records of each real file, gzip-compressed, under root/FashionMNIST/raw/."""
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx(0x08, np.ascontiguousarray(expected[f"{prefix}_x"][:n])), mtime=0))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(_idx(0x08, np.ascontiguousarray(expected[f"{prefix}_y"][:n])), mtime=0))
    return folder


def test_a_small_copy_reads_back(tmp_path, expected):
    _small_copy(tmp_path, expected)
    data = load("fashion-mnist", tmp_path)
    assert (data.info.pool_size, data.info.test_size) == (20, 20)
    np.testing.assert_array_equal(_pixels(data.pool_x, "fashion-mnist"), expected["train_x"][:20])
    assert data.test_y.tolist() == expected["t10k_y"][:20].tolist()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupted(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("file,damage,reason", [
    ("train-images-idx3-ubyte.gz", "truncate", "is not a valid gzip file"),
    ("train-labels-idx1-ubyte.gz", "corrupt", "is not a valid gzip file"),
    ("t10k-images-idx3-ubyte.gz", "floats", r"holds idx values of type 0x0d, expected 0x08"),
    ("t10k-images-idx3-ubyte.gz", "27x27", r"holds items of shape \(27, 27\), expected \(28, 28\)"),
    ("train-labels-idx1-ubyte.gz", "2d", "has 2 dimensions, expected 1"),
    ("t10k-labels-idx1-ubyte.gz", "label 10", r"holds label 10, outside 0\.\.9"),
    ("train-images-idx3-ubyte.gz", "short body", r"holds 15680 values, its header announces 16464 \(21 x 28 x 28\)"),
    ("train-labels-idx1-ubyte.gz", "fewer labels", "train-images-idx3-ubyte.gz holds 20 images but "
                                                   "train-labels-idx1-ubyte.gz 19 labels"),
])
def test_a_damaged_file_is_named_with_what_is_wrong(tmp_path, expected, file, damage, reason):
    folder = _small_copy(tmp_path, expected)
    path = folder / file
    body = gzip.decompress(path.read_bytes())
    values = np.frombuffer(body, np.uint8, offset=16 if "images" in file else 8)
    rewritten = {
        "truncate": lambda: _truncated(path.read_bytes()),
        "corrupt": lambda: _corrupted(path.read_bytes()),
        "floats": lambda: gzip.compress(b"\0\0\x0d" + body[3:]),
        "27x27": lambda: gzip.compress(_idx(0x08, np.zeros((20, 27, 27), np.uint8))),
        "2d": lambda: gzip.compress(_idx(0x08, values.reshape(10, 2).copy())),
        "label 10": lambda: gzip.compress(_idx(0x08, np.where(np.arange(20) == 7, 10, values).astype(np.uint8))),
        "short body": lambda: gzip.compress(body[:4] + struct.pack(">I", 21) + body[8:]),
        "fewer labels": lambda: gzip.compress(_idx(0x08, values[:19].copy())),
    }[damage]()
    path.write_bytes(rewritten)
    with pytest.raises(EtioInputError) as err:
        load("fashion-mnist", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"dataset 'fashion-mnist' in {folder} is damaged: ")
    assert file in message
    import re
    assert re.search(reason, message), message


def test_without_the_package_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEFAULT_DATA_DIR", tmp_path / "empty")
    monkeypatch.setitem(SYSTEM_DIRS, "fashion-mnist", tmp_path / "not-installed")
    with pytest.raises(EtioInputError) as err:
        load("fashion-mnist")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"dataset 'fashion-mnist' not found: looked for {tmp_path / 'not-installed'}/"
                              f"{{{','.join(FILES)}}}[.gz] (4 missing)")
    assert message.endswith("get it with apt-get install --reinstall dataset-fashion-mnist (as root; make setup does it)")


CONFIG = """name = "fm-bad"
dataset = "fashion-mnist"
repeats = 2
[grid]
arch = ["mlp_1hidden"]
width = [4]
train_size = [10]
loss = ["ce"]
weight_decay = [0.0005]
epochs = [1]
scheduler = [false]
"""


def test_the_command_exits_2_and_writes_nothing(tmp_path, expected, monkeypatch, capsys):
    folder = _small_copy(tmp_path / "data", expected)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(_truncated(path.read_bytes()))
    config = tmp_path / "fm.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    code, err = run_main(monkeypatch, capsys, "traces", "--config", config, "--out", out,
                         "--data-dir", tmp_path / "data", "--device", "cpu")
    assert code == 2
    line = one_error_line(err)
    assert "t10k-labels-idx1-ubyte.gz is not a valid gzip file" in line
    assert not out.exists()
