"""Generated stand-ins for MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100, written in each dataset's own on-disk format.

They exist so that the whole pipeline (torchvision's readers included) can run anywhere without
the real data: a quick study (``synthetic_data = true``, e.g. ``experiments/paper-tiny.toml``)
writes them into an empty data directory. Nothing about them is the real data; the directory
is marked with :data:`etio.traces.datasets.SYNTHETIC_MARKER`, which names every dataset written,
and only configs that ask for synthetic data read such a directory.

Formats (as torchvision reads them):

- MNIST and Fashion-MNIST: ``MNIST/raw/`` and ``FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, the idx format: a big-endian
  magic number (0x0803 images / 0x0801 labels), the dimension sizes as big-endian int32, then
  the uint8 values.
- CIFAR-10: ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch`` (pickled dicts with
  ``data`` uint8 [n, 3072] in channel-major order and ``labels``) and ``batches.meta``
  (``label_names``).
- CIFAR-100: ``cifar-100-python/{train,test}`` (``data``, ``fine_labels``, ``coarse_labels``) and
  ``meta`` (``fine_label_names``, ``coarse_label_names``).

The images are learnable on purpose (a fixed template per class plus per-image noise), so the
models fit, over-fit and leak membership as models do; the numbers mean nothing about the paper.
"""

from __future__ import annotations

import json
import pickle
import struct
from functools import partial
from pathlib import Path

import numpy as np

from etio.core.provenance import atomic_write_text
from etio.traces.datasets import SYNTHETIC_MARKER, TORCHVISION_FILES, dataset_info

#: Images per generated file set when a study does not ask for more.
DEFAULT_SIZES = {"train": 600, "test": 300}


def generate_images(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``[n, H, W]`` (grey: MNIST, Fashion-MNIST) or ``[n, 32, 32, 3]`` (CIFAR) and int64 labels ``[n]``.

    Each class has a template of coarse 4 × 4-pixel blocks, so the class survives the CIFAR
    crop-and-flip augmentation and small networks learn it within a few epochs: for CIFAR a
    colour plus a block pattern; for MNIST bright blocks on a black background (about a fifth
    of the image lit, like a digit: the pixel statistics stay near MNIST's, for which its
    normalisation is made). Templates depend on the dataset only; ``seed`` draws labels and
    the per-image noise.
    """
    info = dataset_info(name)
    grey = info.input_shape[0] == 1
    side = info.input_shape[-1]
    channels = () if grey else (info.input_shape[0],)
    rs_t = np.random.RandomState(len(name) * 1000 + info.num_classes)
    if grey:
        lit = rs_t.uniform(0, 1, (info.num_classes, side // 4, side // 4)) < 0.2
        templates = (230.0 * lit).repeat(4, axis=1).repeat(4, axis=2)
    else:
        colour = rs_t.uniform(50, 205, (info.num_classes, 1, 1, *channels))
        coarse = rs_t.uniform(-45, 45, (info.num_classes, side // 4, side // 4, *channels))
        templates = colour + coarse.repeat(4, axis=1).repeat(4, axis=2)
    rs = np.random.RandomState(seed)
    labels = np.arange(n) % info.num_classes
    rs.shuffle(labels)
    noise = rs.normal(0.0, 30.0, (n, side, side, *channels))
    images = np.clip(templates[labels] + noise, 0, 255).round().astype(np.uint8)
    return images, labels.astype(np.int64)


def _idx_bytes(array: np.ndarray) -> bytes:
    kind = {1: 0x0801, 3: 0x0803}[array.ndim]
    return struct.pack(">I", kind) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_idx(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              name: str = "mnist") -> None:
    raw = root / TORCHVISION_FILES[name][0]
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        _write_bytes(raw / f"{prefix}-images-idx3-ubyte", _idx_bytes(images))
        _write_bytes(raw / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels.astype(np.uint8)))


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """[n, 32, 32, 3] HWC -> [n, 3072] channel-major, as in the CIFAR pickles."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_cifar10(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    folder = root / TORCHVISION_FILES["cifar10"][0]
    images, labels = train
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        batch = {"batch_label": f"training batch {i} of 5", "labels": labels[part].tolist(),
                 "data": _cifar_rows(images[part]), "filenames": [f"generated_{j}.png" for j in part]}
        _write_bytes(folder / f"data_batch_{i}", pickle.dumps(batch, protocol=2))
    images, labels = test
    _write_bytes(folder / "test_batch", pickle.dumps({"batch_label": "testing batch 1 of 1", "labels": labels.tolist(),
                                                      "data": _cifar_rows(images)}, protocol=2))
    names = [f"class_{c}" for c in range(10)]
    _write_bytes(folder / "batches.meta", pickle.dumps({"label_names": names, "num_cases_per_batch": len(labels),
                                                        "num_vis": 3072}, protocol=2))


def write_cifar100(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    folder = root / TORCHVISION_FILES["cifar100"][0]
    for name, (images, labels) in (("train", train), ("test", test)):
        _write_bytes(folder / name, pickle.dumps({"fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(),
                                                  "data": _cifar_rows(images)}, protocol=2))
    _write_bytes(folder / "meta", pickle.dumps({"fine_label_names": [f"class_{c}" for c in range(100)],
                                                "coarse_label_names": [f"superclass_{c}" for c in range(20)]},
                                               protocol=2))


WRITERS = {"mnist": write_idx, "fashion-mnist": partial(write_idx, name="fashion-mnist"),
           "cifar10": write_cifar10, "cifar100": write_cifar100}


def write_dataset(root: Path | str, name: str, train_size: int, test_size: int, seed: int = 0) -> None:
    """Generate ``name`` with ``train_size`` / ``test_size`` images into ``root`` in its own format."""
    root = Path(root)
    train = generate_images(name, train_size, seed)
    test = generate_images(name, test_size, seed + 1)
    WRITERS[name](root, train, test)


def is_empty_dir(path: Path) -> bool:
    path = Path(path)
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def write_synthetic_data(root: Path | str, sizes: dict[str, tuple[int, int]], seed: int = 0) -> dict:
    """Write every dataset of ``sizes`` (name -> (train images, test images)) into the empty ``root``.

    Returns the marker written to ``root/etio-synthetic.json`` (the record the provenance keeps).
    """
    from etio.core.errors import EtioInputError

    root = Path(root)
    if not is_empty_dir(root):
        raise EtioInputError(f"{root} is not empty; synthetic data is written only into an empty data directory")
    for name in sorted(sizes):
        write_dataset(root, name, *sizes[name], seed=seed)
    marker = {"what": "generated stand-ins written by etio.traces.synthetic, not the real datasets",
              "seed": seed,
              "datasets": {name: {"train": sizes[name][0], "test": sizes[name][1],
                                  "folder": TORCHVISION_FILES[name][0]} for name in sorted(sizes)}}
    atomic_write_text(root / SYNTHETIC_MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")
    return marker


def synthetic_record(root: Path | str) -> dict | None:
    """The marker of a data directory holding generated files, or None."""
    path = Path(root) / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    return json.loads(path.read_text())
