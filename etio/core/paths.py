"""Where etio finds its own files: the package data and the R scripts next to the package."""

from __future__ import annotations

import os
from pathlib import Path

#: The ``etio`` package directory.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Data shipped in the package: example traces, the authors' published results, benchmark cases.
DATA_DIR = PACKAGE_DIR / "data"


#: The study configs of the checkout (``experiments/``, next to the package as ``r/`` is).
EXPERIMENTS_DIR = PACKAGE_DIR.parent / "experiments"


def experiment_config(name: str) -> Path:
    """A config of the checkout's ``experiments/`` by file name, wherever the command runs from."""
    return EXPERIMENTS_DIR / name


def r_dir() -> Path:
    """The ``r/`` directory of the checkout (``ETIO_R_DIR`` overrides it)."""
    override = os.environ.get("ETIO_R_DIR")
    return Path(override).resolve() if override else PACKAGE_DIR.parent / "r"
