"""Provenance records and atomic output.

Every artifact etio writes carries a provenance record: the stage, the etio version, the
versions of the packages that computed it, the structure-learning backend, seeds and the
configuration. Files are written atomically (temporary file + rename), so a failure never
leaves a half-written file behind; output directories follow :mod:`etio.core.outputs`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from etio import __version__
from etio.core.errors import file_error

_PACKAGES = ("numpy", "pandas", "scipy", "torch", "torchvision", "scikit-learn", "dowhy", "networkx", "rpy2", "statsmodels")


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version(), "etio": __version__}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(stage: str, *, config: Mapping[str, Any] | None = None, seeds: Mapping[str, Any] | None = None,
               backend: str | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "stage": stage,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "versions": package_versions(),
        "platform": platform.platform(),
    }
    if backend is not None:
        record["backend"] = backend
    if seeds is not None:
        record["seeds"] = dict(seeds)
    if config is not None:
        record["config"] = dict(config)
    record.update(extra)
    return record


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; all of the machine's off Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:   # read-only path, a file where a directory is wanted, ...: one line naming the path
        raise file_error(path, exc) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; results are for sharing
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):    # full disk, quota, ...
            raise file_error(path, exc) from None
        raise
