"""Datasets and the disjoint-split scheme of the trace generation (paper §5.1), one family module each.

Every dataset is loaded once into memory as float tensors already passed through its
*test* transform (``ToTensor`` + ``Normalize``): every evaluation of a model — on its own
training subset or on the test set — uses the test transform. The CIFAR training
augmentation (random 32×32 crop of the 4-pixel zero-padded image, random horizontal flip)
is applied on the fly during training by :func:`augment_batch`.

``digits`` (scikit-learn's 8×8 handwritten digits, :mod:`.digits`) is the embedded default. The
other datasets are read from a data directory, never downloaded (a missing or damaged dataset is
one error saying which file and what is wrong, and how to get the files), as torchvision's own
download leaves them: the idx files of MNIST and Fashion-MNIST (:mod:`.mnist`), the python pickles
of CIFAR-10 and CIFAR-100 (:mod:`.cifar`). ``fashion-mnist`` without a data directory is read in
place from Debian's ``dataset-fashion-mnist`` (:data:`SYSTEM_DIRS`). What was read is named in the
provenance with each file's SHA-256 (:attr:`LoadedData.files`).

Each family module of this package declares its datasets' :class:`DatasetInfo`, loader, how to get
the files and the writer of generated stand-ins, and registers each dataset with
:func:`register_dataset` (:mod:`._registry`); everything else asks the registry
(:func:`list_datasets`, :func:`get_dataset`, :func:`dataset_info`). ``_common.py`` holds what the
families share. Importing this package does not import torch.
"""

from __future__ import annotations

from pathlib import Path

from etio.core.errors import EtioInputError
from etio.traces.datasets._common import augment_batch, disjoint_split, normalize, read_idx
from etio.traces.datasets._registry import (DATASETS, SYNTHETIC_MARKER, SYSTEM_DIRS, TORCHVISION_FILES, Dataset,
                                            DatasetInfo, LoadedData, _import_families, dataset_info, get_dataset,
                                            how_to_get, is_synthetic, list_datasets, register_dataset)

_import_families()

from etio.traces.datasets.digits import DIGITS_HOLDOUT_SEED  # noqa: E402  (registered by the import above)

DEFAULT_DATA_DIR = Path("~/.cache/etio/data").expanduser()

_CACHE: dict[tuple[str, str], LoadedData] = {}

__all__ = ["DATASETS", "DEFAULT_DATA_DIR", "DIGITS_HOLDOUT_SEED", "SYNTHETIC_MARKER", "SYSTEM_DIRS",
           "TORCHVISION_FILES", "Dataset", "DatasetInfo", "LoadedData", "augment_batch", "dataset_info",
           "disjoint_split", "get_dataset", "how_to_get", "is_synthetic", "list_datasets", "load", "normalize",
           "read_idx", "register_dataset"]


def load(name: str, data_dir: Path | str | None = None, pool_size: int | None = None,
         test_size: int | None = None, allow_synthetic: bool = False) -> LoadedData:
    """Load ``name`` from ``data_dir`` (cached per process); nothing is downloaded.

    ``pool_size`` / ``test_size``: keep only the first that many training / test images.
    Generated files (:data:`SYNTHETIC_MARKER`) are read only with ``allow_synthetic``.
    """
    dataset = get_dataset(name)
    given = Path(data_dir).expanduser() if data_dir else None
    data_dir = given or DEFAULT_DATA_DIR
    if name in SYSTEM_DIRS and given is None and not (DEFAULT_DATA_DIR / dataset.folder).is_dir():
        data_dir = SYSTEM_DIRS[name]
    key = (name, str(data_dir))
    if key not in _CACHE:
        _CACHE[key] = dataset.loader(dataset.info, data_dir)
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
