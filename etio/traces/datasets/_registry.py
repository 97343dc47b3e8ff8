"""The dataset registry: every dataset a study can name is registered by one family module of this package.

``etio/traces/datasets/<family>.py`` declares its datasets' :class:`DatasetInfo`, its loader, how
to get its files and, when it has one, the writer of generated stand-ins, and calls
:func:`register_dataset` once per dataset. :func:`list_datasets` imports the family modules (no
torch: listing the names, checking a config and planning a study must not wait for torch);
:func:`get_dataset` returns the registered :class:`Dataset`. Code outside this package asks the
registry and never compares a dataset's name.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from etio.core.errors import check_choice

if TYPE_CHECKING:   # pragma: no cover
    import numpy as np

_PACKAGE = "etio.traces.datasets"


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


#: ``load(info, data_dir)``: the whole dataset in memory (:class:`LoadedData`), test transform applied.
Loader = Callable[[DatasetInfo, Path], LoadedData]
#: ``write(root, (train images, labels), (test images, labels))``: generated files in the dataset's own format.
Writer = Callable[[Path, "tuple[np.ndarray, np.ndarray]", "tuple[np.ndarray, np.ndarray]"], None]


@dataclass(frozen=True)
class Dataset:
    """One registered dataset (see :func:`register_dataset`)."""

    info: DatasetInfo
    loader: Loader
    #: ``how_to_get(name, data_dir)``: the command that puts the files into ``data_dir`` (None: embedded).
    fetch: Callable[[str, Path], str] | None = None
    #: Where the files lie inside a data directory, and their names (empty: nothing is read from one).
    folder: str | None = None
    files: tuple[str, ...] = ()
    write_synthetic: Writer | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def reads_files(self) -> bool:
        """Whether the dataset is read from a data directory (not embedded in a library)."""
        return bool(self.files)


#: Every registered dataset: name -> its description (filled by :func:`register_dataset`).
DATASETS: dict[str, DatasetInfo] = {}
#: Where torchvision's classes look inside a data directory, and the files each dataset needs.
TORCHVISION_FILES: dict[str, tuple[str, tuple[str, ...]]] = {}
#: Datasets a Debian package installs: read in place (flat, gzip idx files) when no data directory is given.
SYSTEM_DIRS: dict[str, Path] = {}
_REGISTRY: dict[str, Dataset] = {}

#: Files written by etio.traces.synthetic carry this marker in the data directory.
SYNTHETIC_MARKER = "etio-synthetic.json"


def register_dataset(info: DatasetInfo, *, load: Loader, how_to_get: Callable[[str, Path], str] | None = None,
                     folder: str | None = None, files: tuple[str, ...] = (), write_synthetic: Writer | None = None,
                     system_dir: Path | None = None) -> Dataset:
    """Register the dataset ``info.name``: called once per dataset, by its family module of this package.

    ``load`` reads it; a dataset read from a data directory names the ``folder`` inside it, the
    ``files`` it needs and ``how_to_get`` them, and may have a ``system_dir`` (a Debian package's
    directory, read in place when no data directory is given) and a ``write_synthetic`` writer of
    generated stand-ins (:mod:`etio.traces.synthetic`).
    """
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} is registered twice")
    if bool(files) != (folder is not None) or bool(files) != (how_to_get is not None):
        raise ValueError(f"dataset {info.name!r}: a dataset read from files names its folder, files and how_to_get")
    dataset = Dataset(info, load, how_to_get, folder, tuple(files), write_synthetic)
    _REGISTRY[info.name] = dataset
    DATASETS[info.name] = info
    if files:
        TORCHVISION_FILES[info.name] = (folder, tuple(files))
    if system_dir is not None:
        SYSTEM_DIRS[info.name] = Path(system_dir)
    return dataset


_FAMILIES_IMPORTED = False


def _import_families() -> None:
    """Import every family module of this package (each registers its datasets)."""
    global _FAMILIES_IMPORTED
    if _FAMILIES_IMPORTED:
        return
    _FAMILIES_IMPORTED = True
    here = [str(Path(__file__).parent)]
    for module in sorted(m.name for m in pkgutil.iter_modules(here) if not m.name.startswith("_")):
        importlib.import_module(f"{_PACKAGE}.{module}")


def list_datasets() -> tuple[str, ...]:
    """Every registered dataset's name, sorted (no torch is imported)."""
    _import_families()
    return tuple(sorted(_REGISTRY))


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name`` (one input error naming the known ones otherwise)."""
    return _REGISTRY[check_choice("dataset", name, list_datasets())]


def dataset_info(name: str) -> DatasetInfo:
    return get_dataset(name).info


def how_to_get(name: str, data_dir: Path) -> str:
    """How to get ``name``'s files into ``data_dir`` (a command a user can run)."""
    dataset = get_dataset(name)
    if dataset.fetch is None:
        return f"nothing: {name!r} is not read from a data directory"
    return dataset.fetch(name, Path(data_dir))


def is_synthetic(data_dir: Path, name: str) -> bool:
    """Whether ``data_dir`` holds generated stand-ins for ``name`` (its :data:`SYNTHETIC_MARKER` names it)."""
    marker = Path(data_dir) / SYNTHETIC_MARKER
    if not marker.is_file():
        return False
    try:
        return name in json.loads(marker.read_text()).get("datasets", {})
    except (ValueError, AttributeError):
        return False
