"""Datasets and the disjoint-split scheme of the trace generation (paper §5.1).

Every dataset is loaded once into memory as float tensors already passed through its
*test* transform (``ToTensor`` + ``Normalize``): every evaluation of a model — on its own
training subset or on the test set — uses the test transform. The CIFAR training
augmentation (random 32×32 crop of the 4-pixel zero-padded image, random horizontal flip)
is applied on the fly during training by :func:`augment_batch`.

``digits`` (scikit-learn's 8×8 handwritten digits, 1797 images, shipped with
scikit-learn) is the embedded default: a fixed, seeded draw of 600 images is the training
pool and the remaining 1197 images are the test set (a small pool keeps the N·n models of a
configuration cheap; a large test set keeps the test-side estimates precise). The other datasets
are read from a data directory, never downloaded (a missing or damaged dataset is one error
saying which file and what is wrong, and how to get the files), as torchvision's own download
leaves them: ``DIR/MNIST/raw/`` and ``DIR/FashionMNIST/raw/`` (the idx files, unpacked or
``.gz``, read by :func:`read_idx`), ``DIR/cifar-10-batches-py/`` and ``DIR/cifar-100-python/``
(the python pickles, read by torchvision's dataset classes). ``fashion-mnist`` without a data
directory is read in place from Debian's ``dataset-fashion-mnist`` (:data:`SYSTEM_DIRS`; the
default data directory's ``FashionMNIST/raw/`` comes first when it exists). What was read is
named in the provenance with each file's SHA-256 (:attr:`LoadedData.files`).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
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
    # Mean/std of every pixel of the 60 000 Fashion-MNIST training images scaled to [0, 1]
    # (numpy float64 mean and std of Debian's train-images-idx3-ubyte.gz: 0.28604, 0.35302), fixed here.
    "fashion-mnist": DatasetInfo("fashion-mnist", 10, (1, 28, 28), 60000, 10000, (0.2860,), (0.3530,), False),
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
    """A dataset in memory, test transform applied: ``pool_*`` is the training pool.

    ``info`` describes what was read (``pool_size``/``test_size`` are the sizes in memory).
    """

    info: DatasetInfo
    pool_x: "torch.Tensor"   # noqa: F821  float32 [pool_size, *input_shape]
    pool_y: "torch.Tensor"   # noqa: F821  int64 [pool_size]
    test_x: "torch.Tensor"   # noqa: F821
    test_y: "torch.Tensor"   # noqa: F821
    source: str = ""         # where the files were read from
    synthetic: bool = False  # generated files (etio.traces.synthetic), not the real dataset
    data_dir: str | None = None                 # the data directory the files were found in (None: none used)
    files: tuple[tuple[str, str], ...] = ()     # (path, SHA-256) of every file read, in reading order


_CACHE: dict[tuple[str, str], LoadedData] = {}

#: Files written by etio.traces.synthetic carry this marker in the data directory.
SYNTHETIC_MARKER = "etio-synthetic.json"


def load(name: str, data_dir: Path | str | None = None, pool_size: int | None = None,
         test_size: int | None = None, allow_synthetic: bool = False) -> LoadedData:
    """Load ``name`` from ``data_dir`` (cached per process); nothing is downloaded.

    ``pool_size`` / ``test_size``: keep only the first that many training / test images.
    Generated files (:data:`SYNTHETIC_MARKER`) are read only with ``allow_synthetic``.
    """
    info = dataset_info(name)
    given = Path(data_dir).expanduser() if data_dir else None
    data_dir = given or DEFAULT_DATA_DIR
    if name in SYSTEM_DIRS and given is None and not (DEFAULT_DATA_DIR / TORCHVISION_FILES[name][0]).is_dir():
        data_dir = SYSTEM_DIRS[name]
    key = (name, str(data_dir))
    if key not in _CACHE:
        _CACHE[key] = _LOADERS[_FORMATS[name]](info, data_dir)
    data = _CACHE[key]
    if data.synthetic and not allow_synthetic:
        raise EtioInputError(
            f"{data_dir} holds generated stand-ins for {name!r} ({data_dir / SYNTHETIC_MARKER}), not the real "
            f"dataset; pass --data-dir with the real files (or use a config with synthetic_data = true)")
    return _subset(data, pool_size, test_size)


def _subset(data: LoadedData, pool_size: int | None, test_size: int | None) -> LoadedData:
    from dataclasses import replace

    pool_size = data.info.pool_size if pool_size is None else pool_size
    test_size = data.info.test_size if test_size is None else test_size
    if (pool_size, test_size) == (data.info.pool_size, data.info.test_size):
        return data
    for what, want, have in (("training", pool_size, data.info.pool_size), ("test", test_size, data.info.test_size)):
        if want > have:
            raise EtioInputError(f"{data.info.name!r} in {data.source} has {have} {what} images; the config asks "
                                 f"for the first {want}")
    return replace(data, info=replace(data.info, pool_size=pool_size, test_size=test_size),
                   pool_x=data.pool_x[:pool_size], pool_y=data.pool_y[:pool_size],
                   test_x=data.test_x[:test_size], test_y=data.test_y[:test_size])


def _normalize(x, info: DatasetInfo):
    import torch

    mean = torch.tensor(info.mean, dtype=torch.float32)
    std = torch.tensor(info.std, dtype=torch.float32)
    if x.dim() == 2:                      # flat digits vectors: one channel
        return (x - mean) / std
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _load_digits(info: DatasetInfo, data_dir: Path | None = None) -> LoadedData:
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = np.random.RandomState(DIGITS_HOLDOUT_SEED).permutation(len(y))
    pool, test = order[: info.pool_size], order[info.pool_size:]
    x = _normalize(x, info)
    return LoadedData(info, x[pool].contiguous(), y[pool].contiguous(), x[test].contiguous(), y[test].contiguous(),
                      source="sklearn.datasets.load_digits")


#: Where torchvision's classes look inside a data directory, and the files each needs.
TORCHVISION_FILES = {
    "mnist": ("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte")),
    "fashion-mnist": ("FashionMNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}
_CLASS_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
#: How each dataset is read: "digits" (scikit-learn), "idx" (read_idx, gzip or not) or "torchvision" (its pickles).
_FORMATS = {"digits": "digits", "mnist": "idx", "fashion-mnist": "idx", "cifar10": "torchvision", "cifar100": "torchvision"}
#: Datasets a Debian package installs: read in place (flat, gzip idx files) when no data directory is given.
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
SYSTEM_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def how_to_get(name: str, data_dir: Path) -> str:
    """How to get ``name`` into ``data_dir``: the Debian package where one exists, else the torchvision download."""
    if name in SYSTEM_DIRS and Path(data_dir) == SYSTEM_DIRS[name]:
        return f"apt-get install --reinstall {SYSTEM_PACKAGES[name]} (as root; make setup does it)"
    cls = _CLASS_NAMES[name]
    fetch = (f"python -c \"import torchvision as tv; [tv.datasets.{cls}('{data_dir}', train=t, download=True) "
             f"for t in (True, False)]\" (on a machine with network access), then pass --data-dir {data_dir}")
    if name in SYSTEM_PACKAGES:
        return f"{fetch}; or install Debian's {SYSTEM_PACKAGES[name]} and leave --data-dir out"
    return fetch


def is_synthetic(data_dir: Path, name: str) -> bool:
    import json

    marker = Path(data_dir) / SYNTHETIC_MARKER
    if not marker.is_file():
        return False
    try:
        return name in json.loads(marker.read_text()).get("datasets", {})
    except (ValueError, AttributeError):
        return False


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
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Generated


def read_idx(path: Path, dims: int, item_shape: tuple[int, ...] = ()) -> tuple[np.ndarray, str]:
    """The uint8 array of the idx file ``path`` (gzip when its name ends in ``.gz``) and the file's SHA-256.

    The idx format (MNIST's): two zero bytes, the type byte (0x08: unsigned bytes), the number of
    dimensions, each dimension's size as a big-endian uint32, then the values. The file must have
    ``dims`` dimensions, items of ``item_shape`` (the sizes after the first) and exactly the values
    its header announces; otherwise ValueError says what is wrong, as a phrase that follows the file's name.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:   # truncated stream, bad header or CRC
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"is not a valid gzip file ({reason})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise ValueError("is not an idx file (it does not start with two zero bytes)")
    if raw[2] != 0x08:
        raise ValueError(f"holds idx values of type 0x{raw[2]:02x}, expected 0x08 (unsigned bytes)")
    if raw[3] != dims:
        raise ValueError(f"has {raw[3]} dimensions, expected {dims}")
    head = 4 + 4 * dims
    if len(raw) < head:
        raise ValueError(f"ends inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{dims}I", raw[4:head])
    if tuple(shape[1:]) != tuple(item_shape):
        raise ValueError(f"holds items of shape {tuple(shape[1:])}, expected {tuple(item_shape)}")
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - head != expected:
        raise ValueError(f"holds {len(raw) - head} values, its header announces {expected} ({' x '.join(map(str, shape))})")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape).copy(), digest


def _load_idx(info: DatasetInfo, data_dir: Path) -> LoadedData:
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
        x = _normalize(torch.from_numpy(x).unsqueeze(1).float() / 255.0, info)
        return x.contiguous(), torch.from_numpy(y.astype(np.int64))

    from dataclasses import replace

    pool_x, pool_y = split("train")
    test_x, test_y = split("t10k")
    synthetic = not system and is_synthetic(data_dir, info.name)
    read = replace(info, pool_size=len(pool_y), test_size=len(test_y))
    return LoadedData(read, pool_x, pool_y, test_x, test_y, source=str(where), synthetic=synthetic,
                      data_dir=None if system else str(data_dir), files=tuple(files))


def _load_torchvision(info: DatasetInfo, data_dir: Path) -> LoadedData:
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
        x = _normalize(x.float() / 255.0, info)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        if int(y.min()) < 0 or int(y.max()) >= info.num_classes:
            raise EtioInputError(f"dataset {info.name!r} in {where} is damaged (labels outside 0..{info.num_classes - 1})")
        return x.contiguous(), y

    from dataclasses import replace

    pool_x, pool_y = to_tensor(sets[True])
    test_x, test_y = to_tensor(sets[False])
    # The real files have the sizes of DATASETS; generated ones are smaller, and the info says what was read.
    read = replace(info, pool_size=len(pool_y), test_size=len(test_y))
    digests = tuple((str(where / f), hashlib.sha256((where / f).read_bytes()).hexdigest()) for f in files)
    return LoadedData(read, pool_x, pool_y, test_x, test_y, source=str(where), synthetic=synthetic,
                      data_dir=str(data_dir), files=digests)


_LOADERS = {"digits": _load_digits, "idx": _load_idx, "torchvision": _load_torchvision}


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
