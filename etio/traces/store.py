"""The trace store: the one place that knows how trained configurations lie on disk.

Layout of a store directory ``DIR``::

    DIR/store.json                      format marker, the validated experiment config, data dir
    DIR/splits/<dataset>-s<s>-N<N>-seed<seed>.npy   the disjoint subsets (int64 [N·n, s])
    DIR/configs/<key>/record.json       identity columns, model counts, seeds, NumParams, timings
    DIR/configs/<key>/models.pt         the N·n trained models, parameters stacked on dim 0
    DIR/configs/<key>/stats.json        generalization + centroid columns; written last, so a
                                        configuration counts as done exactly when it exists
    DIR/configs/<key>/attacks/<attack>.json   results of the attack stage
    DIR/configs/<key>/attacks/<attack>-scores.npy.gz   per-example scores of an attack that has
                                        them (:meth:`TraceStore.read_scores`)
    DIR/traces.csv, DIR/provenance.json

Every file is written atomically (temporary file + rename), so a killed run leaves either a
complete configuration or none; a rerun skips what is done.

Every stored file is checked before it is reused: ``record.json`` carries the SHA-256 of
``models.pt`` and ``stats.json`` and one of its own content, each attack result one of its own
content, and a split file must equal the split its seed draws. A file that is truncated,
corrupt or missing makes its configuration (or attack result) count as not done: the rerun
recomputes it, with a one-line warning naming the file. Writers of one store take an
advisory lock (``DIR/.lock``), so a second ``etio traces`` or ``etio attack`` on the same store
waits for the first and then finds its work done. A ``store.json`` that is lost or damaged is
rebuilt from the records by ``etio traces --config`` (the config says what the store holds).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from etio.core import layout
from etio.core.errors import EtioInputError, file_error
from etio.core.outputs import check_directory_path
from etio.core.provenance import atomic_write_text, provenance, write_json
from etio.core.schema import CENTROID_COLUMNS, GENERALIZATION_COLUMNS, IDENTITY_COLUMNS, TRACE_COLUMNS

if TYPE_CHECKING:
    from etio.traces.config import ExperimentConfig

STORE_FORMAT = "etio-trace-store"
STORE_VERSION = 1
#: Columns the trace stage itself fills (the rest are filled from attack results).
TRACE_STAGE_COLUMNS = IDENTITY_COLUMNS + ["NumParams"] + GENERALIZATION_COLUMNS + CENTROID_COLUMNS
#: The key of a stored JSON file's checksum of its own content.
CHECKSUM_KEY = "sha256"
LOCK_FILE = ".lock"


# --------------------------------------------------------------------------------------
# Checksums and atomic bytes
# --------------------------------------------------------------------------------------

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def with_checksum(obj: dict) -> dict:
    """``obj`` plus the SHA-256 of its own content (formatting-independent)."""
    body = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
    return {**body, CHECKSUM_KEY: sha256_bytes(_canonical(json.loads(json.dumps(body, default=str))))}


def checksum_problem(obj: Any) -> str | None:
    """Why a stored JSON object fails its own checksum (None: it passes, or has none: older stores)."""
    if not isinstance(obj, dict):
        return "is not a JSON object"
    if CHECKSUM_KEY not in obj:
        return None
    body = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
    return None if sha256_bytes(_canonical(body)) == obj[CHECKSUM_KEY] else "does not match its checksum"


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``; a fault is one line naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise file_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise file_error(path, exc) from None
        raise


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


#: Damaged attack result files already reported in this process: (path, mtime, size).
_REPORTED_ATTACK_FILES: set[tuple] = set()


@contextlib.contextmanager
def store_lock(root: Path, what: str) -> Iterator[None]:
    """Hold the store's advisory lock (``fcntl.flock`` on ``DIR/.lock``) while writing it.

    A second writer waits, after a one-line message naming the holder; the lock goes with
    the process, so a killed writer never leaves the store locked.
    """
    import fcntl

    root = Path(root)
    path = root / LOCK_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise file_error(path, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            _warn(f"{root} is being written by {holder}; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what})\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@dataclass(frozen=True)
class ConfigRecord:
    key: str
    identity: dict
    dataset: str
    arch: str
    width: int
    train_size: int
    loss: str
    n_repeats: int
    models_per_repeat: int
    num_classes: int
    input_shape: tuple
    num_params: int
    split_file: str
    seeds: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    #: The training pool / test set were the first that many images (None: the whole dataset).
    pool_size: int | None = None
    test_size: int | None = None
    #: Trained on generated stand-in files (etio.traces.synthetic), not the real dataset.
    synthetic_data: bool = False

    def model_ids(self, repeat: int) -> list[int]:
        """1-based ids of the models of ``repeat`` (0-based), numbered as the authors did."""
        n = self.models_per_repeat
        return list(range(repeat * n + 1, repeat * n + n + 1))

    @property
    def n_models(self) -> int:
        return self.n_repeats * self.models_per_repeat

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ConfigRecord":
        d = {k: v for k, v in d.items() if k not in ("checksums", CHECKSUM_KEY)}
        d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)


@dataclass
class DataSplits:
    """Training pool and test set (test transform) and the subset of each model id."""

    pool_x: Any
    pool_y: Any
    test_x: Any
    test_y: Any
    subsets: np.ndarray        # int64 [n_models, s]; model id k trains on pool rows subsets[k-1]
    models_per_repeat: int

    def repeat_of(self, model_id: int) -> int:
        return (model_id - 1) // self.models_per_repeat


class TraceStore:
    def __init__(self, root: Path, meta: dict, data_dir: Path | None = None):
        self.root = Path(root)
        self.meta = meta
        self.data_dir = Path(data_dir) if data_dir else (Path(meta["data_dir"]) if meta.get("data_dir") else None)

    # ---- layout ------------------------------------------------------------------------
    def config_dir(self, key: str) -> Path:
        return self.root / "configs" / key

    @property
    def config(self) -> "ExperimentConfig":
        """The study the store was made from, typed (kept in ``store.json`` as :meth:`ExperimentConfig.to_dict`
        writes it; checked when the store was made, so its models are not built again)."""
        return self.experiment(check_models=False)

    def experiment(self, check_models: bool = True) -> "ExperimentConfig":
        """The study the store was made from; ``check_models``: see :func:`etio.traces.config.parse_config`."""
        from etio.traces.config import parse_config

        return parse_config(self.meta["config"], f"{self.root}/store.json", check_models=check_models)

    def is_done(self, key: str) -> bool:
        return (self.config_dir(key) / "stats.json").exists()

    def keys(self) -> list[str]:
        cdir = self.root / "configs"
        if not cdir.exists():
            return []
        return sorted(p.name for p in cdir.iterdir() if (p / "stats.json").exists())

    def _require(self, key: str) -> Path:
        if not self.is_done(key):
            raise EtioInputError(f"configuration {key!r} is not (yet) in the trace store {self.root}")
        return self.config_dir(key)

    def lock(self, what: str):
        return store_lock(self.root, what)

    # ---- verification ----------------------------------------------------------------------
    def damage(self, key: str) -> str | None:
        """Why the stored configuration ``key`` cannot be reused (None: every file checks out)."""
        cdir = self.config_dir(key)
        try:
            stats_bytes = (cdir / "stats.json").read_bytes()
            json.loads(stats_bytes)
        except FileNotFoundError:
            return f"{cdir / 'stats.json'} is missing"
        except (OSError, ValueError):
            return f"{cdir / 'stats.json'} is truncated or corrupt"
        try:
            record = json.loads((cdir / "record.json").read_text())
        except FileNotFoundError:
            return f"{cdir / 'record.json'} is missing"
        except (OSError, ValueError):
            return f"{cdir / 'record.json'} is truncated or corrupt"
        if problem := checksum_problem(record):
            return f"{cdir / 'record.json'} {problem}"
        try:
            ConfigRecord.from_json(record)
        except (TypeError, KeyError):
            return f"{cdir / 'record.json'} lacks fields of a configuration record"
        sums = record.get("checksums") or {}
        for name in ("models.pt", "stats.json"):
            path = cdir / name
            if not path.exists():
                return f"{path} is missing"
            if name in sums and (sha256_bytes(stats_bytes) if name == "stats.json" else sha256_file(path)) != sums[name]:
                return f"{path} does not match the checksum in record.json (truncated or corrupt)"
        return None

    def invalidate(self, key: str) -> None:
        """Make ``key`` count as not done (its stats.json goes first), so that it is recomputed;
        its attack results go too: they were computed from the models being replaced."""
        import shutil

        cdir = self.config_dir(key)
        try:
            (cdir / "stats.json").unlink(missing_ok=True)
            shutil.rmtree(cdir / "attacks", ignore_errors=True)
        except OSError as exc:
            raise file_error(cdir / "stats.json", exc, "remove") from None

    def invalidate_damaged(self) -> list[str]:
        """Verify every stored configuration; the damaged ones are invalidated (one warning each)."""
        damaged = []
        for key in self.keys():
            problem = self.damage(key)
            if problem is not None:
                _warn(f"{problem}; recomputing configuration {key}")
                self.invalidate(key)
                damaged.append(key)
        return damaged

    def require_intact(self, key: str) -> None:
        problem = self.damage(key)
        if problem is not None:
            raise EtioInputError(f"{problem}; rerun `etio traces --config CONFIG --out {self.root}` to recompute "
                                 f"configuration {key}")

    # ---- reading -------------------------------------------------------------------------
    def _read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            cause = "truncated or corrupt" if isinstance(exc, ValueError) else (exc.strerror or str(exc))
            raise EtioInputError(f"{path} is {cause}; rerun `etio traces --config CONFIG --out {self.root}` "
                                 f"to recompute it") from None

    def record(self, key: str) -> ConfigRecord:
        return ConfigRecord.from_json(self._read_json(self._require(key) / "record.json"))

    def stats(self, key: str) -> dict:
        return self._read_json(self._require(key) / "stats.json")

    def splits(self, key: str) -> DataSplits:
        from etio.traces.datasets import load

        rec = self.record(key)
        # the same images the models were trained and evaluated on
        data = load(rec.dataset, self.data_dir, rec.pool_size, rec.test_size, allow_synthetic=rec.synthetic_data)
        path = self.root / "splits" / rec.split_file
        try:
            subsets = np.load(path)
        except (OSError, ValueError, EOFError):
            raise EtioInputError(f"{path} is missing, truncated or corrupt; rerun `etio traces --config CONFIG "
                                 f"--out {self.root}` to rewrite it") from None
        return DataSplits(data.pool_x, data.pool_y, data.test_x, data.test_y, subsets, rec.models_per_repeat)

    def ensemble(self, key: str, device="cpu"):
        """The stored models of ``key`` (:class:`etio.traces.models.Ensemble`) on ``device``."""
        import torch

        path = self._require(key) / "models.pt"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except (OSError, RuntimeError, EOFError, ValueError) as exc:
            raise EtioInputError(f"{path} is truncated or corrupt ({str(exc).splitlines()[0][:80]}); rerun "
                                 f"`etio traces --config CONFIG --out {self.root}` to recompute it") from None
        from etio.traces.models import Ensemble

        return Ensemble(self.record(key), state, device)

    # ---- writing (trace stage) ---------------------------------------------------------------
    def add_shard(self, label: str) -> None:
        """Record that shard ``label`` ("i/N") of the store's config was run into this store."""
        shards = self.meta.setdefault("shards", [])
        if label not in shards:
            shards.append(label)
            shards.sort(key=lambda t: tuple(int(x) for x in t.split("/"))[::-1])
            write_json(self.root / "store.json", self.meta)

    def write_split(self, name: str, subsets: np.ndarray) -> None:
        """Store a split; an existing file is kept only if it holds exactly this split."""
        path = self.root / "splits" / name
        if path.exists():
            try:
                if np.array_equal(np.load(path), subsets):
                    return
            except (OSError, ValueError, EOFError):
                pass
            _warn(f"{path} is truncated or corrupt; rewriting it")
        buffer = io.BytesIO()
        np.save(buffer, subsets)
        write_bytes_atomic(path, buffer.getvalue())

    def write_config(self, record: ConfigRecord, state: dict, stats: dict) -> None:
        """Models, then record (with both files' checksums), then stats (the completion marker),
        each atomically."""
        import shutil

        import torch

        cdir = self.config_dir(record.key)
        created = not cdir.exists()
        try:
            cdir.mkdir(parents=True, exist_ok=True)
            for stale in cdir.glob(".*"):           # temporary files of a run killed while writing
                stale.unlink(missing_ok=True)
            shutil.rmtree(cdir / "attacks", ignore_errors=True)   # results of models being replaced
        except OSError as exc:
            raise file_error(cdir, exc) from None
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buffer)
        models = buffer.getvalue()
        stats_bytes = _json_bytes(stats)
        meta = with_checksum({**record.to_json(),
                              "checksums": {"models.pt": sha256_bytes(models), "stats.json": sha256_bytes(stats_bytes)}})
        try:
            write_bytes_atomic(cdir / "models.pt", models)
            write_bytes_atomic(cdir / "record.json", _json_bytes(meta))
            write_bytes_atomic(cdir / "stats.json", stats_bytes)
        except BaseException:
            if created:     # a full disk, Ctrl-C: no empty or half-written configs/<key>/ is left behind
                shutil.rmtree(cdir, ignore_errors=True)
            raise

    # ---- attacks -----------------------------------------------------------------------------
    def write_attack(self, key: str, attack_name: str, result: dict) -> None:
        """One attack's result, written atomically with a checksum of its content."""
        result = with_checksum(json.loads(json.dumps(result, default=str)))
        write_bytes_atomic(self._require(key) / "attacks" / f"{attack_name}.json", _json_bytes(result))

    def _attack_file(self, path: Path, action: str, warn: bool = True) -> dict | None:
        """A stored attack result, or None (with a warning, unless ``warn`` is false: a second
        reader of a file already reported) when it is truncated or corrupt."""
        def say(message: str) -> None:
            # Once per damaged file in a process: the trace stage (leaving it out of traces.csv)
            # and the attack stage (recomputing it) of one run read the same file.
            try:
                stat = path.stat()
                seen = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
            except OSError:
                seen = (str(path), None, None)
            if warn and seen not in _REPORTED_ATTACK_FILES:
                _REPORTED_ATTACK_FILES.add(seen)
                _warn(message)

        try:
            result = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            say(f"{path} is truncated or corrupt; {action}")
            return None
        if problem := checksum_problem(result):
            say(f"{path} {problem}; {action}")
            return None
        return {k: v for k, v in result.items() if k != CHECKSUM_KEY}

    def read_attack(self, key: str, attack_name: str, warn: bool = True) -> dict | None:
        return self._attack_file(self.config_dir(key) / "attacks" / f"{attack_name}.json", "recomputing it", warn)

    def attack_results(self, key: str) -> dict[str, dict]:
        adir = self.config_dir(key) / "attacks"
        if not adir.exists():
            return {}
        results = {p.stem: self._attack_file(p, "left out of traces.csv until `etio attack` recomputes it")
                   for p in sorted(adir.glob("*.json"))}
        return {name: r for name, r in results.items() if r is not None}

    # ---- per-example scores --------------------------------------------------------------------
    def scores_path(self, key: str, attack_name: str = "lowfpr") -> Path:
        return layout.path("scores", self.root, key=key, attack=attack_name)

    def write_scores(self, key: str, table: np.ndarray, attack_name: str = "lowfpr") -> str:
        """Write a structured array of per-example scores (gzip of its ``.npy``, no timestamp); returns its SHA-256."""
        buffer = io.BytesIO()
        np.save(buffer, table, allow_pickle=False)
        data = gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)
        self._require(key)
        write_bytes_atomic(self.scores_path(key, attack_name), data)
        return sha256_bytes(data)

    def scores_intact(self, key: str, sha256: str | None, attack_name: str = "lowfpr") -> bool:
        path = self.scores_path(key, attack_name)
        return sha256 is not None and path.exists() and sha256_file(path) == sha256

    def read_scores(self, key: str, attack_name: str = "lowfpr"):
        """The per-example scores of one configuration as a DataFrame.

        One row per scored (model, point): ``model`` (model id), ``test`` (1: a test point, 0: a pool
        point), ``point`` (its row in the test set or the pool), ``member`` (1: the model trained on it),
        then for ``lowfpr`` one float32 column per scored method (:data:`etio.attacks.lowfpr.SCORE_METHODS`;
        NaN: not scored), for ML-Leaks the ``tuple`` and its ``score``, for Oak17 the ``seed`` and ``score``.
        Without etio: ``pandas.DataFrame(numpy.load(gzip.open(path)))``.
        """
        import pandas as pd

        path = self.scores_path(key, attack_name)
        result = self.read_attack(key, attack_name)
        if result is None or not self.scores_intact(key, result.get("scores_sha256"), attack_name):
            raise EtioInputError(f"no intact per-example scores of {attack_name!r} for configuration {key} "
                                 f"({path}); run `etio attack --store {self.root} --attacks {attack_name}`")
        with gzip.open(path, "rb") as fh:
            return pd.DataFrame(np.load(io.BytesIO(fh.read()), allow_pickle=False))

    # ---- the trace table -----------------------------------------------------------------------
    def traces_table(self):
        """One row per completed configuration, the 53 trace columns in the authors' order.

        Attack columns are filled from every stored attack result whose keys are trace
        columns; absent results leave NaN. A store of a robust grid (``grid.adv_eps``) appends
        the robust columns (``ROBUST_TRACE_COLUMNS``, then ``ROBUST_ATTACK_COLUMNS``), and a store
        with low-FPR results (ROC metrics of any attack) the low-FPR columns (``LOWFPR_COLUMNS``).
        """
        import pandas as pd

        from etio.core.schema import LOWFPR_COLUMNS

        results = {key: self.attack_results(key) for key in self.keys()}
        columns = self.trace_columns()
        if any(c in result for r in results.values() for result in r.values() for c in LOWFPR_COLUMNS):
            columns = columns + LOWFPR_COLUMNS
        wanted = set(columns)
        rows = []
        for key in self.keys():
            rec = self.record(key)
            row = {c: float("nan") for c in columns}
            row.update({k: v for k, v in rec.identity.items() if k in wanted})
            row["NumParams"] = rec.num_params
            row.update({k: v for k, v in self.stats(key).items() if k in wanted})
            for result in results[key].values():
                row.update({k: v for k, v in result.items() if k in wanted})
            rows.append(row)
        return pd.DataFrame(rows, columns=columns)

    def trace_columns(self) -> list[str]:
        """The columns of this store's trace table: the authors' 53, and the robust ones for a robust grid."""
        from etio.core.schema import ROBUST_ATTACK_COLUMNS, ROBUST_TRACE_COLUMNS

        if "adv_eps" in self.meta.get("config", {}).get("grid", {}):
            return TRACE_COLUMNS + ROBUST_TRACE_COLUMNS + ROBUST_ATTACK_COLUMNS
        return list(TRACE_COLUMNS)

    def write_traces_csv(self, extra_provenance: dict | None = None) -> Path:
        table = self.traces_table()
        path = layout.path("store_traces", self.root)
        atomic_write_text(path, table.to_csv(index=False))
        timings = {}
        for key in self.keys():
            timings[key] = self.record(key).timings
        cfg = self.meta.get("config", {})
        record = provenance(
            "traces", config=cfg, seeds={"split_seed": cfg.get("seed"),
                                         "model_seeds": "derived per model id from split_seed (etio.traces.training.derive_seed)"},
            rows=len(table), data_dir=str(self.data_dir) if self.data_dir else None,
            timings=timings, **(extra_provenance or {}))
        # Each stage that rewrites traces.csv adds its own record (training: device, shard;
        # attacks: settings); keep what the earlier stages recorded.
        previous_path = self.root / "provenance.json"
        previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
        record.update({k: v for k, v in previous.items() if k not in record})
        write_json(previous_path, record)
        return path


def check_store_dir(root: Path | str) -> None:
    """Raise unless ``root`` can hold a trace store: absent, empty, or a store (even a damaged one)."""
    root = Path(root)
    check_directory_path(root)
    meta = _readable_meta(root) if root.is_dir() else None
    if meta is not None and meta.get("format") == STORE_FORMAT:
        _check_version(meta, root / "store.json")      # before the lock file or anything else is written
    if not root.exists() or _looks_like_store(root):
        return
    if any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise EtioInputError(f"{root} exists, is not empty and is not a trace store; use another --out directory")


def _looks_like_store(root: Path) -> bool:
    """store.json, or the configs/ and splits/ a store.json that was lost or damaged described."""
    return (root / "store.json").exists() or ((root / "configs").is_dir() and (root / "splits").is_dir())


def _check_version(meta: dict, path: Path) -> None:
    """A store of another format version is refused before anything reads or rewrites it."""
    version = meta.get("version")
    if version != STORE_VERSION:
        raise EtioInputError(f"{path} is a trace store of format version {version!r}; this etio reads and writes "
                             f"version {STORE_VERSION} only (use the etio that wrote it, or another --out)")


def _readable_meta(root: Path) -> dict | None:
    try:
        meta = json.loads((root / "store.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def create_store(root: Path | str, study: "ExperimentConfig", data_dir: Path | str | None = None) -> TraceStore:
    """Open ``root`` as a store of ``study``, creating it if needed.

    An existing store made from a different config is an error (its results would mix). A
    store whose ``store.json`` is lost or unreadable is rebuilt from ``config`` when every
    stored configuration is one of ``config``'s (with a warning); otherwise it is an error.
    """
    root = Path(root)
    meta_path = root / "store.json"
    check_store_dir(root)
    config = json.loads(json.dumps(study.to_dict()))     # as store.json holds it: JSON types
    if _looks_like_store(root):
        from etio.traces.config import NON_TRAINING_KEYS

        meta = _readable_meta(root)
        if meta is not None and meta.get("format") != STORE_FORMAT:
            raise EtioInputError(f"{meta_path} is not an etio trace store; use another --out directory")
        if meta is not None:
            _check_version(meta, meta_path)
        if meta is None or not isinstance(meta.get("config"), dict):
            return _repair_store(root, study, config, data_dir)
        store = open_store(root, data_dir)
        trained = lambda c: {k: v for k, v in c.items() if k not in NON_TRAINING_KEYS}  # noqa: E731
        if trained(store.meta.get("config", {})) != trained(config):
            raise EtioInputError(f"{root} is a trace store of a different config ({store.meta.get('config', {}).get('name')!r}); "
                                 f"use another --out directory")
        if store.meta["config"] != config:        # e.g. a new [attacks] table: the store follows the config
            store.meta["config"] = config
            write_json(meta_path, store.meta)
        return store
    meta = {"format": STORE_FORMAT, "version": STORE_VERSION, "config": config,
            "data_dir": str(data_dir) if data_dir else None}
    write_json(meta_path, meta)
    return TraceStore(root, meta, Path(data_dir) if data_dir else None)


def _repair_store(root: Path, study: "ExperimentConfig", config: dict, data_dir) -> TraceStore:
    """Rebuild a lost or damaged ``store.json`` from ``study`` (``config``: its stored form), if the records belong to it."""
    expected = {c.key for c in study.configurations()}
    cdir = root / "configs"
    stored = sorted(p.name for p in cdir.iterdir() if p.is_dir()) if cdir.is_dir() else []
    foreign = [k for k in stored if k not in expected]
    if foreign:
        raise EtioInputError(f"{root}/store.json is missing or damaged and {root}/configs holds configuration(s) "
                             f"this config does not have ({foreign[0]}); use another --out directory")
    meta = {"format": STORE_FORMAT, "version": STORE_VERSION, "config": config,
            "data_dir": str(data_dir) if data_dir else None}
    write_json(root / "store.json", meta)
    _warn(f"{root}/store.json was missing or damaged; rebuilt from --config and the {len(stored)} stored "
          f"configuration record(s)")
    return TraceStore(root, meta, Path(data_dir) if data_dir else None)


def open_store(root: Path | str, data_dir: Path | str | None = None) -> TraceStore:
    root = Path(root)
    meta = _readable_meta(root)
    if meta is None:
        if root.is_dir() and _looks_like_store(root):
            raise EtioInputError(f"{root}/store.json is missing or damaged; rebuild it with "
                                 f"`etio traces --config CONFIG --out {root}` (the config the store was made from)")
        raise EtioInputError(f"{root} is not a trace store (no readable store.json); create one with `etio traces`")
    if meta.get("format") != STORE_FORMAT:
        raise EtioInputError(f"{root}/store.json is not an etio trace store")
    _check_version(meta, root / "store.json")
    if not isinstance(meta.get("config"), dict):
        raise EtioInputError(f"{root}/store.json is damaged (it holds no config table); rebuild it with "
                             f"`etio traces --config CONFIG --out {root}` (the config the store was made from)")
    return TraceStore(root, meta, Path(data_dir) if data_dir else None)
