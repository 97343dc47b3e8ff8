"""Generated stand-ins for MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100, written in each dataset's own on-disk format.

They exist so that the whole pipeline (torchvision's readers included) can run anywhere without
the real data: a quick study (``synthetic_data = true``, e.g. ``experiments/paper-tiny.toml``)
writes them into an empty data directory. Nothing about them is the real data; the directory
is marked with :data:`etio.traces.datasets.SYNTHETIC_MARKER`, which names every dataset written,
and only configs that ask for synthetic data read such a directory.

Each dataset's format, and the writer of its files, are declared by its family module of
:mod:`etio.traces.datasets` (``write_synthetic`` of :func:`~etio.traces.datasets.register_dataset`);
this module draws the images and writes a directory of them.

The images are learnable on purpose (a fixed template per class plus per-image noise), so the
models fit, over-fit and leak membership as models do; the numbers mean nothing about the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from etio.core.provenance import atomic_write_text
from etio.traces.datasets import SYNTHETIC_MARKER, dataset_info, get_dataset

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


def write_dataset(root: Path | str, name: str, train_size: int, test_size: int, seed: int = 0) -> None:
    """Generate ``name`` with ``train_size`` / ``test_size`` images into ``root`` in its own format."""
    from etio.core.errors import EtioInputError

    dataset = get_dataset(name)
    if dataset.write_synthetic is None:
        raise EtioInputError(f"dataset {name!r} has no generated stand-ins (it is not read from a data directory)")
    root = Path(root)
    train = generate_images(name, train_size, seed)
    test = generate_images(name, test_size, seed + 1)
    dataset.write_synthetic(root, train, test)


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
                                  "folder": get_dataset(name).folder} for name in sorted(sizes)}}
    atomic_write_text(root / SYNTHETIC_MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")
    return marker


def synthetic_record(root: Path | str) -> dict | None:
    """The marker of a data directory holding generated files, or None."""
    path = Path(root) / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    return json.loads(path.read_text())
