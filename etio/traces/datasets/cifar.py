"""CIFAR-10 and CIFAR-100: the python pickles, read by torchvision's dataset classes.

A data directory holds them as torchvision's download leaves them: ``DIR/cifar-10-batches-py/``
(``data_batch_{1..5}``, ``test_batch``: pickled dicts with ``data`` uint8 [n, 3072] in
channel-major order and ``labels``; ``batches.meta`` with ``label_names``) and
``DIR/cifar-100-python/`` (``train``, ``test``: ``data``, ``fine_labels``, ``coarse_labels``;
``meta`` with ``fine_label_names``, ``coarse_label_names``). Generated stand-ins are written in the
same format. Training augments each batch (:func:`augment_batch`).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from etio.core.errors import EtioInputError
from etio.traces.datasets._common import normalize, torchvision_download, write_bytes
from etio.traces.datasets._registry import (TORCHVISION_FILES, DatasetInfo, LoadedData, how_to_get, is_synthetic,
                                            register_dataset)

CIFAR10 = DatasetInfo("cifar10", 10, (3, 32, 32), 50000, 10000,
                      (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), True)
CIFAR100 = DatasetInfo("cifar100", 100, (3, 32, 32), 50000, 10000,
                       (0.507, 0.487, 0.441), (0.267, 0.256, 0.276), True)

_CLASS_NAMES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def fetch(name: str, data_dir: Path) -> str:
    """How to get ``name`` into ``data_dir``: torchvision's download."""
    return torchvision_download(_CLASS_NAMES[name], data_dir)


def _torchvision_class(name: str, synthetic: bool):
    """torchvision's dataset class; for generated CIFAR files one that skips the md5 check of the real files."""
    import torchvision

    cls = getattr(torchvision.datasets, _CLASS_NAMES[name])
    if not synthetic:
        return cls

    class Generated(cls):
        def _check_integrity(self) -> bool:
            return all((Path(self.root) / self.base_folder / f).is_file() for f, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Generated


def load_cifar(info: DatasetInfo, data_dir: Path) -> LoadedData:
    import torch

    folder, files = TORCHVISION_FILES[info.name]
    where = data_dir / folder
    missing = [f for f in files if not (where / f).is_file()]
    if missing:
        raise EtioInputError(
            f"dataset {info.name!r} not found: looked for {where}/{{{','.join(files)}}} "
            f"({len(missing)} missing); get it with {how_to_get(info.name, data_dir)}")
    synthetic = is_synthetic(data_dir, info.name)
    cls = _torchvision_class(info.name, synthetic)
    sets = {}
    for train in (True, False):
        try:
            sets[train] = cls(str(data_dir), train=train, download=False)
            if len(sets[train].data) != len(sets[train].targets) or len(sets[train].data) == 0:
                raise ValueError(f"{len(sets[train].data)} images but {len(sets[train].targets)} labels")
        except Exception as exc:  # md5 mismatch, truncated pickle: all are a damaged copy
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise EtioInputError(
                f"dataset {info.name!r} in {where} is damaged ({reason}); remove {where} and get it again with "
                f"{how_to_get(info.name, data_dir)}") from None

    def to_tensor(ds):
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2)      # CIFAR: uint8 [n, 32, 32, 3]
        if tuple(x.shape[1:]) != tuple(info.input_shape):
            raise EtioInputError(f"dataset {info.name!r} in {where} is damaged (images of shape {tuple(x.shape[1:])}, "
                                 f"expected {tuple(info.input_shape)}); get it again with {how_to_get(info.name, data_dir)}")
        x = normalize(x.float() / 255.0, info)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        if int(y.min()) < 0 or int(y.max()) >= info.num_classes:
            raise EtioInputError(f"dataset {info.name!r} in {where} is damaged (labels outside 0..{info.num_classes - 1})")
        return x.contiguous(), y

    from dataclasses import replace

    pool_x, pool_y = to_tensor(sets[True])
    test_x, test_y = to_tensor(sets[False])
    # The real files have the registered sizes; generated ones are smaller, and the info says what was read.
    read = replace(info, pool_size=len(pool_y), test_size=len(test_y))
    digests = tuple((str(where / f), hashlib.sha256((where / f).read_bytes()).hexdigest()) for f in files)
    return LoadedData(read, pool_x, pool_y, test_x, test_y, source=str(where), synthetic=synthetic,
                      data_dir=str(data_dir), files=digests)


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """[n, 32, 32, 3] HWC -> [n, 3072] channel-major, as in the CIFAR pickles."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_cifar10(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    folder = root / TORCHVISION_FILES["cifar10"][0]
    images, labels = train
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        batch = {"batch_label": f"training batch {i} of 5", "labels": labels[part].tolist(),
                 "data": _cifar_rows(images[part]), "filenames": [f"generated_{j}.png" for j in part]}
        write_bytes(folder / f"data_batch_{i}", pickle.dumps(batch, protocol=2))
    images, labels = test
    write_bytes(folder / "test_batch", pickle.dumps({"batch_label": "testing batch 1 of 1", "labels": labels.tolist(),
                                                     "data": _cifar_rows(images)}, protocol=2))
    names = [f"class_{c}" for c in range(10)]
    write_bytes(folder / "batches.meta", pickle.dumps({"label_names": names, "num_cases_per_batch": len(labels),
                                                       "num_vis": 3072}, protocol=2))


def write_cifar100(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    folder = root / TORCHVISION_FILES["cifar100"][0]
    for name, (images, labels) in (("train", train), ("test", test)):
        write_bytes(folder / name, pickle.dumps({"fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(),
                                                 "data": _cifar_rows(images)}, protocol=2))
    write_bytes(folder / "meta", pickle.dumps({"fine_label_names": [f"class_{c}" for c in range(100)],
                                               "coarse_label_names": [f"superclass_{c}" for c in range(20)]},
                                              protocol=2))


register_dataset(CIFAR10, load=load_cifar, how_to_get=fetch, folder="cifar-10-batches-py",
                 files=("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                        "batches.meta"),
                 write_synthetic=write_cifar10)
register_dataset(CIFAR100, load=load_cifar, how_to_get=fetch, folder="cifar-100-python", files=("train", "test", "meta"),
                 write_synthetic=write_cifar100)
