"""MNIST and Fashion-MNIST: the idx files, read by :func:`read_idx` (unpacked or ``.gz``).

A data directory holds them as torchvision's download leaves them: ``DIR/MNIST/raw/`` and
``DIR/FashionMNIST/raw/`` with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``. ``fashion-mnist``
without a data directory is read in place from Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``, flat gzip files; the default data directory's
``FashionMNIST/raw/`` comes first when it exists).

Generated stand-ins are written in the same format: a big-endian magic number (0x0803 images /
0x0801 labels), the dimension sizes as big-endian int32, then the uint8 values.
"""

from __future__ import annotations

import struct
from functools import partial
from pathlib import Path

import numpy as np

from etio.core.errors import EtioInputError
from etio.traces.datasets._common import normalize, read_idx, torchvision_download, write_bytes
from etio.traces.datasets._registry import (SYSTEM_DIRS, TORCHVISION_FILES, DatasetInfo, LoadedData, how_to_get,
                                            is_synthetic, register_dataset)

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST = DatasetInfo("mnist", 10, (1, 28, 28), 60000, 10000, (0.1307,), (0.3081,), False)
# Mean/std of every pixel of the 60 000 Fashion-MNIST training images scaled to [0, 1]
# (numpy float64 mean and std of Debian's train-images-idx3-ubyte.gz: 0.28604, 0.35302), fixed here.
FASHION_MNIST = DatasetInfo("fashion-mnist", 10, (1, 28, 28), 60000, 10000, (0.2860,), (0.3530,), False)

_CLASS_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
#: The Debian package that installs a dataset into its :data:`SYSTEM_DIRS` entry.
SYSTEM_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def fetch(name: str, data_dir: Path) -> str:
    """How to get ``name`` into ``data_dir``: the Debian package where one exists, else the torchvision download."""
    if name in SYSTEM_DIRS and Path(data_dir) == SYSTEM_DIRS[name]:
        return f"apt-get install --reinstall {SYSTEM_PACKAGES[name]} (as root; make setup does it)"
    download = torchvision_download(_CLASS_NAMES[name], data_dir)
    if name in SYSTEM_PACKAGES:
        return f"{download}; or install Debian's {SYSTEM_PACKAGES[name]} and leave --data-dir out"
    return download


def load_idx(info: DatasetInfo, data_dir: Path) -> LoadedData:
    """MNIST-format datasets: ``data_dir/<folder>/`` as torchvision leaves it, or a Debian package's flat directory."""
    import torch

    folder, names = TORCHVISION_FILES[info.name]
    system = SYSTEM_DIRS.get(info.name) == data_dir
    where = data_dir if system else data_dir / folder

    def find(name: str) -> Path | None:
        return next((p for p in (where / name, where / f"{name}.gz") if p.is_file()), None)

    paths = {name: find(name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise EtioInputError(
            f"dataset {info.name!r} not found: looked for {where}/{{{','.join(names)}}}[.gz] "
            f"({len(missing)} missing); get it with {how_to_get(info.name, data_dir)}")

    def damaged(what: str) -> EtioInputError:
        return EtioInputError(f"dataset {info.name!r} in {where} is damaged: {what}; get it again with "
                              f"{how_to_get(info.name, data_dir)}")

    arrays, files = {}, []
    for name, path in paths.items():
        images = "images" in name
        try:
            arrays[name], digest = read_idx(path, 3 if images else 1, tuple(info.input_shape[1:]) if images else ())
        except ValueError as exc:
            raise damaged(f"{path.name} {exc}") from None
        files.append((str(path), digest))

    def split(prefix: str):
        image_file, label_file = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        x, y = arrays[image_file.name.removesuffix(".gz")], arrays[label_file.name.removesuffix(".gz")]
        if len(x) != len(y) or len(x) == 0:
            raise damaged(f"{image_file.name} holds {len(x)} images but {label_file.name} {len(y)} labels")
        if int(y.max()) >= info.num_classes:
            raise damaged(f"{label_file.name} holds label {int(y.max())}, outside 0..{info.num_classes - 1}")
        x = normalize(torch.from_numpy(x).unsqueeze(1).float() / 255.0, info)
        return x.contiguous(), torch.from_numpy(y.astype(np.int64))

    from dataclasses import replace

    pool_x, pool_y = split("train")
    test_x, test_y = split("t10k")
    synthetic = not system and is_synthetic(data_dir, info.name)
    read = replace(info, pool_size=len(pool_y), test_size=len(test_y))
    return LoadedData(read, pool_x, pool_y, test_x, test_y, source=str(where), synthetic=synthetic,
                      data_dir=None if system else str(data_dir), files=tuple(files))


def _idx_bytes(array: np.ndarray) -> bytes:
    kind = {1: 0x0801, 3: 0x0803}[array.ndim]
    return struct.pack(">I", kind) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              name: str = "mnist") -> None:
    """Generated images ``[n, 28, 28]`` and labels as the four idx files of ``name``'s folder under ``root``."""
    raw = root / TORCHVISION_FILES[name][0]
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        write_bytes(raw / f"{prefix}-images-idx3-ubyte", _idx_bytes(images))
        write_bytes(raw / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels.astype(np.uint8)))


register_dataset(MNIST, load=load_idx, how_to_get=fetch, folder="MNIST/raw", files=FILES,
                 write_synthetic=partial(write_idx, name="mnist"))
register_dataset(FASHION_MNIST, load=load_idx, how_to_get=fetch, folder="FashionMNIST/raw", files=FILES,
                 write_synthetic=partial(write_idx, name="fashion-mnist"),
                 system_dir=Path("/usr/share/datasets/fashion-mnist"))
