"""Datasets and the disjoint-split scheme of the trace generation (paper §5.1).

Every dataset is loaded once into memory as float tensors already passed through its
*test* transform (``ToTensor`` + ``Normalize``): every evaluation of a model — on its own
training subset or on the test set — uses the test transform. The CIFAR training
augmentation (random 32×32 crop of the 4-pixel zero-padded image, random horizontal flip)
is applied on the fly during training by :func:`augment_batch`.

``digits`` (scikit-learn's 8×8 handwritten digits, 1797 images, shipped with
scikit-learn) is the embedded default: a fixed, seeded draw of 600 images is the training
pool and the remaining 1197 images are the test set (a small pool keeps the N·n models of a
configuration cheap; a large test set keeps the test-side estimates precise). ``mnist``, ``cifar10`` and
``cifar100`` come from torchvision and are downloaded into a data directory on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etio.core.errors import EtioInputError, check_choice

DEFAULT_DATA_DIR = Path("~/.cache/etio/data").expanduser()


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    input_shape: tuple[int, ...]          # per-sample shape after the transform
    pool_size: int                        # size of the training pool the subsets are cut from
    test_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool                         # random crop + flip during training (CIFAR)


DATASETS: dict[str, DatasetInfo] = {
    # Mean/std of the digits pool after scaling pixels to [0, 1] (computed once, fixed here so the
    # transform does not depend on the split).
    "digits": DatasetInfo("digits", 10, (64,), 600, 1197, (0.3047,), (0.3763,), False),
    "mnist": DatasetInfo("mnist", 10, (1, 28, 28), 60000, 10000, (0.1307,), (0.3081,), False),
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50000, 10000,
                           (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), True),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), 50000, 10000,
                            (0.507, 0.487, 0.441), (0.267, 0.256, 0.276), True),
}

#: Seed of the fixed digits train/test hold-out (not a split seed: the test set never changes).
DIGITS_HOLDOUT_SEED = 20220607


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS[check_choice("dataset", name, DATASETS)]


@dataclass
class LoadedData:
    """A dataset in memory, test transform applied: ``pool_*`` is the training pool."""

    info: DatasetInfo
    pool_x: "torch.Tensor"   # noqa: F821  float32 [pool_size, *input_shape]
    pool_y: "torch.Tensor"   # noqa: F821  int64 [pool_size]
    test_x: "torch.Tensor"   # noqa: F821
    test_y: "torch.Tensor"   # noqa: F821


_CACHE: dict[tuple[str, str], LoadedData] = {}


def load(name: str, data_dir: Path | str | None = None) -> LoadedData:
    """Load ``name`` (cached per process). Torchvision datasets are downloaded when absent."""
    info = dataset_info(name)
    data_dir = Path(data_dir).expanduser() if data_dir else DEFAULT_DATA_DIR
    key = (name, str(data_dir))
    if key not in _CACHE:
        _CACHE[key] = _load_digits(info) if name == "digits" else _load_torchvision(info, data_dir)
    return _CACHE[key]


def _normalize(x, info: DatasetInfo):
    import torch

    mean = torch.tensor(info.mean, dtype=torch.float32)
    std = torch.tensor(info.std, dtype=torch.float32)
    if x.dim() == 2:                      # flat digits vectors: one channel
        return (x - mean) / std
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _load_digits(info: DatasetInfo) -> LoadedData:
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = np.random.RandomState(DIGITS_HOLDOUT_SEED).permutation(len(y))
    pool, test = order[: info.pool_size], order[info.pool_size:]
    x = _normalize(x, info)
    return LoadedData(info, x[pool].contiguous(), y[pool].contiguous(), x[test].contiguous(), y[test].contiguous())


def _load_torchvision(info: DatasetInfo, data_dir: Path) -> LoadedData:
    import torch
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}[info.name]
    sets = {}
    for train in (True, False):
        try:
            sets[train] = cls(str(data_dir), train=train, download=False)
        except RuntimeError:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
                sets[train] = cls(str(data_dir), train=train, download=True)
            except Exception as exc:  # offline, proxy, disk full: all end the same way for the user
                reason = " ".join(str(exc).split())
                raise EtioInputError(
                    f"dataset {info.name!r} is not in {data_dir} and could not be downloaded ({reason}); "
                    f"download it on a machine with network access and pass --data-dir"
                ) from None

    def to_tensor(ds):
        data = ds.data
        if isinstance(data, np.ndarray):      # CIFAR: uint8 [n, 32, 32, 3]
            x = torch.from_numpy(data).permute(0, 3, 1, 2)
        else:                                  # MNIST: uint8 tensor [n, 28, 28]
            x = data.unsqueeze(1)
        x = _normalize(x.float() / 255.0, info)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return x.contiguous(), y

    pool_x, pool_y = to_tensor(sets[True])
    test_x, test_y = to_tensor(sets[False])
    return LoadedData(info, pool_x, pool_y, test_x, test_y)


def disjoint_split(pool_size: int, set_size: int, n_repeats: int, seed: int) -> np.ndarray:
    """The authors' ``disjoint_split``: ``n_repeats`` shuffles of the pool, each cut into
    ``pool_size // set_size`` consecutive disjoint subsets of ``set_size`` points.

    Returns int64 ``[n_repeats · n, set_size]``; row ``k-1`` is the training subset of model id
    ``k``. Same random stream as ``np.random.seed(seed); np.random.shuffle(arange)`` per repeat.
    """
    rs = np.random.RandomState(seed)
    n = pool_size // set_size
    chunks = []
    for _ in range(n_repeats):
        idx = np.arange(pool_size)
        rs.shuffle(idx)
        chunks.append(idx[: n * set_size].reshape(n, set_size))
    return np.concatenate(chunks).astype(np.int64)


def augment_batch(x, crops, flips, info: DatasetInfo):
    """CIFAR training augmentation on normalized tensors ``x [..., C, H, W]``.

    ``crops`` (int64 ``[..., 2]``, values in 0..8) are the top-left corners of the 32×32 crop in
    the image zero-padded by 4 pixels (zero *before* normalisation, as torchvision pads the PIL
    image); ``flips`` (bool ``[...]``) mirror horizontally.
    """
    import torch

    lead = x.shape[:-3]
    c, h, w = x.shape[-3:]
    fill = torch.tensor([-m / s for m, s in zip(info.mean, info.std)], dtype=x.dtype, device=x.device)
    padded = fill.view(c, 1, 1).expand(*lead, c, h + 8, w + 8).clone()
    padded[..., 4:4 + h, 4:4 + w] = x
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (crops[..., 0:1] + ar_h)                     # [..., h]
    cols = (crops[..., 1:2] + ar_w)                     # [..., w]
    out = padded.gather(-2, rows[..., None, :, None].expand(*lead, c, h, w + 8))
    out = out.gather(-1, cols[..., None, None, :].expand(*lead, c, h, w))
    return torch.where(flips[..., None, None, None], out.flip(-1), out)
