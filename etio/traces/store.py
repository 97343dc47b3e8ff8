"""The trace store: the one place that knows how trained configurations lie on disk.

Layout of a store directory ``DIR``::

    DIR/store.json                      format marker, the validated experiment config, data dir
    DIR/splits/<dataset>-s<s>-N<N>-seed<seed>.npy   the disjoint subsets (int64 [N·n, s])
    DIR/configs/<key>/record.json       identity columns, model counts, seeds, NumParams, timings
    DIR/configs/<key>/models.pt         the N·n trained models, parameters stacked on dim 0
    DIR/configs/<key>/stats.json        generalization + centroid columns; written last, so a
                                        configuration counts as done exactly when it exists
    DIR/configs/<key>/attacks/<attack>.json   results of the attack stage
    DIR/traces.csv, DIR/provenance.json

Every file is written atomically (temporary file + rename), so a killed run leaves either a
complete configuration or none; a rerun skips what is done.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from etio.core.errors import EtioInputError
from etio.core.provenance import atomic_write_text, provenance, write_json
from etio.core.schema import CENTROID_COLUMNS, GENERALIZATION_COLUMNS, IDENTITY_COLUMNS, TRACE_COLUMNS

STORE_FORMAT = "etio-trace-store"
STORE_VERSION = 1
#: Columns the trace stage itself fills (the rest are filled from attack results).
TRACE_STAGE_COLUMNS = IDENTITY_COLUMNS + ["NumParams"] + GENERALIZATION_COLUMNS + CENTROID_COLUMNS


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
        d = dict(d)
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


class Ensemble:
    """The trained models of one configuration, evaluated together."""

    def __init__(self, record: ConfigRecord, state: dict, device):
        import torch

        from etio.traces.models import build_model

        self.record = record
        self.device = torch.device(device)
        self.state = {k: v.to(self.device) for k, v in state.items()}
        self._is_mlp = record.arch == "mlp_1hidden"
        if not self._is_mlp:
            self._skeleton = build_model(record.arch, record.width, record.num_classes, record.input_shape,
                                         device="meta").eval()
            self._param_names = {n for n, _ in self._skeleton.named_parameters()}

    def _select(self, model_ids: Iterable[int]):
        import torch

        idx = torch.as_tensor([int(i) - 1 for i in model_ids], device=self.device)
        return {k: v.index_select(0, idx) for k, v in self.state.items()}

    def logits(self, model_ids, x, chunk: int = 2048):
        """Pre-softmax outputs ``[len(model_ids), len(x), C]`` of those models on ``x``."""
        import torch

        from etio.traces.training import mlp_forward

        x = x.to(self.device)
        sel = self._select(model_ids)
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                xb = x[start:start + chunk]
                if self._is_mlp:
                    outs.append(mlp_forward(sel["hidden.weight"], sel["output.weight"], xb.flatten(1)))
                else:
                    outs.append(self._vmapped(sel, xb))
        return torch.cat(outs, dim=1)

    def logits_each(self, model_ids, x):
        """Differentiable outputs ``[M, n, C]``: model ``model_ids[i]`` on its own inputs ``x[i]``."""
        from etio.traces.training import mlp_forward

        sel = self._select(model_ids)
        x = x.to(self.device)
        if self._is_mlp:
            return mlp_forward(sel["hidden.weight"], sel["output.weight"], x.flatten(2))
        from torch.func import functional_call, vmap

        params = {k: v for k, v in sel.items() if k in self._param_names}
        buffers = {k: v for k, v in sel.items() if k not in self._param_names}
        return vmap(lambda p, b, xi: functional_call(self._skeleton, (p, b), (xi,)))(params, buffers, x)

    def _vmapped(self, sel, xb):
        from torch.func import functional_call, vmap

        params = {k: v for k, v in sel.items() if k in self._param_names}
        buffers = {k: v for k, v in sel.items() if k not in self._param_names}
        return vmap(lambda p, b: functional_call(self._skeleton, (p, b), (xb,)))(params, buffers)

    def probs(self, model_ids, x):
        return self.logits(model_ids, x).softmax(-1)


class TraceStore:
    def __init__(self, root: Path, meta: dict, data_dir: Path | None = None):
        self.root = Path(root)
        self.meta = meta
        self.data_dir = Path(data_dir) if data_dir else (Path(meta["data_dir"]) if meta.get("data_dir") else None)

    # ---- layout ------------------------------------------------------------------------
    def config_dir(self, key: str) -> Path:
        return self.root / "configs" / key

    @property
    def config(self) -> dict:
        return self.meta["config"]

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

    # ---- reading -------------------------------------------------------------------------
    def record(self, key: str) -> ConfigRecord:
        return ConfigRecord.from_json(json.loads((self._require(key) / "record.json").read_text()))

    def stats(self, key: str) -> dict:
        return json.loads((self._require(key) / "stats.json").read_text())

    def splits(self, key: str) -> DataSplits:
        from etio.traces.datasets import load

        rec = self.record(key)
        # the same images the models were trained and evaluated on
        data = load(rec.dataset, self.data_dir, rec.pool_size, rec.test_size, allow_synthetic=rec.synthetic_data)
        subsets = np.load(self.root / "splits" / rec.split_file)
        return DataSplits(data.pool_x, data.pool_y, data.test_x, data.test_y, subsets, rec.models_per_repeat)

    def ensemble(self, key: str, device="cpu") -> Ensemble:
        import torch

        state = torch.load(self._require(key) / "models.pt", map_location="cpu", weights_only=True)
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
        path = self.root / "splits" / name
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npy", dir=path.parent)
        os.close(fd)
        np.save(tmp, subsets)
        os.replace(tmp, path)

    def write_config(self, record: ConfigRecord, state: dict, stats: dict) -> None:
        """Models, then record, then stats (the completion marker) — each atomically."""
        import torch

        cdir = self.config_dir(record.key)
        cdir.mkdir(parents=True, exist_ok=True)
        for stale in cdir.glob(".*"):           # temporary files of a run killed while writing
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".models.", suffix=".pt", dir=cdir)
        os.close(fd)
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp)
        os.replace(tmp, cdir / "models.pt")
        write_json(cdir / "record.json", record.to_json())
        write_json(cdir / "stats.json", stats)

    # ---- attacks -----------------------------------------------------------------------------
    def write_attack(self, key: str, attack_name: str, result: dict) -> None:
        write_json(self._require(key) / "attacks" / f"{attack_name}.json", result)

    def read_attack(self, key: str, attack_name: str) -> dict | None:
        path = self.config_dir(key) / "attacks" / f"{attack_name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def attack_results(self, key: str) -> dict[str, dict]:
        adir = self.config_dir(key) / "attacks"
        if not adir.exists():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(adir.glob("*.json"))}

    # ---- the trace table -----------------------------------------------------------------------
    def traces_table(self):
        """One row per completed configuration, the 53 trace columns in the authors' order.

        Attack columns are filled from every stored attack result whose keys are trace
        columns; absent results leave NaN. A store of a robust grid (``grid.adv_eps``) appends
        the robust columns (``ROBUST_TRACE_COLUMNS``, then ``ROBUST_ATTACK_COLUMNS``).
        """
        import pandas as pd

        columns = self.trace_columns()
        wanted = set(columns)
        rows = []
        for key in self.keys():
            rec = self.record(key)
            row = {c: float("nan") for c in columns}
            row.update({k: v for k, v in rec.identity.items() if k in wanted})
            row["NumParams"] = rec.num_params
            row.update({k: v for k, v in self.stats(key).items() if k in wanted})
            for result in self.attack_results(key).values():
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
        path = self.root / "traces.csv"
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


def create_store(root: Path | str, config: dict, data_dir: Path | str | None = None) -> TraceStore:
    """Open ``root`` as a store of ``config``, creating it if needed.

    An existing store made from a different config is an error (its results would mix).
    """
    root = Path(root)
    meta_path = root / "store.json"
    if meta_path.exists():
        from etio.traces.config import NON_TRAINING_KEYS

        store = open_store(root, data_dir)
        config = json.loads(json.dumps(config))
        trained = lambda c: {k: v for k, v in c.items() if k not in NON_TRAINING_KEYS}  # noqa: E731
        if trained(store.meta.get("config", {})) != trained(config):
            raise EtioInputError(f"{root} is a trace store of a different config ({store.meta.get('config', {}).get('name')!r}); "
                                 f"use another --out directory")
        if store.meta["config"] != config:        # e.g. a new [attacks] table: the store follows the config
            store.meta["config"] = config
            write_json(meta_path, store.meta)
        return store
    if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise EtioInputError(f"{root} exists, is not empty and is not a trace store")
    meta = {"format": STORE_FORMAT, "version": STORE_VERSION, "config": config,
            "data_dir": str(data_dir) if data_dir else None}
    write_json(meta_path, meta)
    return TraceStore(root, meta, Path(data_dir) if data_dir else None)


def open_store(root: Path | str, data_dir: Path | str | None = None) -> TraceStore:
    root = Path(root)
    meta_path = root / "store.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        raise EtioInputError(f"{root} is not a trace store (no readable store.json); create one with `etio traces`") from None
    if meta.get("format") != STORE_FORMAT:
        raise EtioInputError(f"{root}/store.json is not an etio trace store")
    return TraceStore(root, meta, Path(data_dir) if data_dir else None)
