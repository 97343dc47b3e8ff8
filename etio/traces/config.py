"""Experiment configurations (TOML) of the trace-generation stage.

A config names one dataset and a grid; every point of the grid is one training
configuration = one row of the trace table. Example (``experiments/digits.toml``)::

    name = "digits"
    dataset = "digits"
    seed = 0            # split seed; per-model init/order seeds are derived from it
    repeats = 3         # N disjoint splits of the training pool

    [training]
    batch_size = 32
    lr = 0.1
    lr_overrides = [{ arch = "alexnetwol", loss = "ce", lr = 0.01 }]
    momentum = 0.9
    lr_step_size = 20   # StepLR step (epochs) when the scheduler is on
    lr_decay = 0.1
    models_per_batch = 10   # optional: models trained at once (GPU memory); default all

    [grid]
    arch = ["mlp_1hidden"]
    width = [2, 4, 8]               # or a table per architecture: { resnet34 = [2, 4], ... }
    train_size = [100, 200]         # s = |D_i|; n = pool_size // s models per repeat
    loss = ["ce", "mse"]
    weight_decay = [0.0005, 0.005]
    epochs = [15, 30]
    scheduler = [true, false]

The optional ``[attacks]`` and ``[analysis]`` tables belong to later stages
(:mod:`etio.attacks.settings`, :mod:`etio.causal.settings`); this module keeps them as written
and :func:`etio.pipeline.study.load_study` validates the whole file at once. Validation of the
trace stage's part happens here: an unknown key, dataset, architecture or width raises
:class:`EtioInputError` naming it.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from etio.traces.datasets import dataset_info
from etio.core.errors import EtioInputError, check_choice
from etio.traces.models import ARCHS, check_model
from etio.core.schema import check_loss

_TOP_KEYS = {"analysis", "name", "dataset", "seed", "repeats", "training", "grid", "description", "attacks"}
#: Tables of later stages, kept as written for them to validate.
STAGE_TABLES = ("attacks", "analysis")
#: Config parts that do not change what the trace stage trains (a store accepts new values of them).
NON_TRAINING_KEYS = ("name", "description", *STAGE_TABLES)
_TRAINING_KEYS = {"batch_size", "eval_batch_size", "lr", "lr_overrides", "momentum", "lr_step_size", "lr_decay",
                  "models_per_batch"}
_GRID_KEYS = {"arch", "width", "train_size", "loss", "weight_decay", "epochs", "scheduler"}
_OVERRIDE_KEYS = {"arch", "loss", "lr"}


@dataclass(frozen=True)
class Training:
    batch_size: int = 128
    eval_batch_size: int = 1000
    lr: float = 0.1
    lr_overrides: tuple[tuple[str, str, float], ...] = (("alexnetwol", "ce", 0.01),)
    momentum: float = 0.9
    lr_step_size: int = 200
    lr_decay: float = 0.1
    models_per_batch: int | None = None     # train a job's models this many at a time (memory); None: all

    def lr_for(self, arch: str, loss: str) -> float:
        for o_arch, o_loss, o_lr in self.lr_overrides:
            if o_arch == arch and o_loss == loss:
                return o_lr
        return self.lr


@dataclass(frozen=True)
class TrainConfig:
    """One point of the grid: one row of the trace table."""

    dataset: str
    arch: str
    width: int
    train_size: int
    loss: str
    weight_decay: float
    epochs: int
    scheduler: bool
    lr: float

    @property
    def key(self) -> str:
        """Stable id; zero-padded so that string order is numeric order."""
        sched = "sched" if self.scheduler else "nosched"
        return (f"{self.dataset}-{self.arch}-w{self.width:04d}-s{self.train_size:05d}-{self.loss}"
                f"-wd{self.weight_decay:g}-e{self.epochs:04d}-{sched}")

    def identity(self) -> dict[str, Any]:
        """The identity columns of the trace table, spelled as the authors' parser wrote them."""
        return {
            "WeightDecay": self.weight_decay, "EpochNum": self.epochs, "Dataset": self.dataset,
            "Arch": self.arch, "Width": self.width, "TrainSize": self.train_size, "Loss": self.loss,
            "Scheduler?": "with_scheduler" if self.scheduler else "without_scheduler", "lr": self.lr,
        }


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    dataset: str
    seed: int
    repeats: int
    training: Training
    grid: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: The later stages' tables (``attacks``, ``analysis``) as written; validated by their stages.
    stage_tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def configurations(self) -> list[TrainConfig]:
        g = self.grid
        out = []
        for arch in g["arch"]:
            widths = g["width"][arch] if isinstance(g["width"], dict) else g["width"]
            for width, s, loss, wd, epochs, sched in itertools.product(
                    widths, g["train_size"], g["loss"], g["weight_decay"], g["epochs"], g["scheduler"]):
                out.append(TrainConfig(self.dataset, arch, width, s, loss, wd, epochs, sched,
                                       self.training.lr_for(arch, loss)))
        return sorted(out, key=lambda c: c.key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["training"]["lr_overrides"] = [dict(zip(("arch", "loss", "lr"), o)) for o in self.training.lr_overrides]
        del d["stage_tables"]
        d.update({name: dict(table) for name, table in sorted(self.stage_tables.items())})
        return d


def read_config_file(path: Path | str) -> dict[str, Any]:
    """The TOML mapping of a config file; a missing or malformed file is one clear error."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise EtioInputError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise EtioInputError(f"config file {path} is a directory") from None
    except UnicodeDecodeError:
        raise EtioInputError(f"config file {path} is not text") from None
    except tomllib.TOMLDecodeError as exc:
        raise EtioInputError(f"config file {path} is not valid TOML: {exc}") from None


def load_config(path: Path | str) -> ExperimentConfig:
    """The trace stage's part of a config file (the whole file: :func:`etio.pipeline.study.load_study`)."""
    return parse_config(read_config_file(path), source=str(path))


def parse_config(raw: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config mapping (as read from TOML or from a store's ``store.json``)."""
    def fail(msg: str):
        raise EtioInputError(f"{source}: {msg}")

    def check_keys(table: dict, allowed: set[str], where: str):
        for k in table:
            if k not in allowed:
                fail(f"unknown key {k!r} in {where}; allowed keys: {', '.join(sorted(allowed))}")

    def as_int(v, what, minimum=1):
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            fail(f"{what} must be an integer ≥ {minimum}, got {v!r}")
        return v

    def as_float(v, what, minimum=0.0, maximum=math.inf, exclusive=()):
        # NaN compares false with everything, so finiteness is checked first: lr = nan trains NaN models.
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            fail(f"{what} must be a finite number, got {v!r}")
        low_ok = v > minimum if "min" in exclusive else v >= minimum
        high_ok = v < maximum if "max" in exclusive else v <= maximum
        if not (low_ok and high_ok):
            lo = "(" if "min" in exclusive else "["
            hi = ")" if "max" in exclusive or maximum == math.inf else "]"
            fail(f"{what} must be in {lo}{minimum:g}, {maximum:g}{hi}, got {v!r}")
        return float(v)

    def as_list(v, what):
        v = v if isinstance(v, list) else [v]
        if not v:
            fail(f"{what} is empty")
        return v

    check_keys(raw, _TOP_KEYS, "the top level")
    for k in ("dataset", "grid"):
        if k not in raw:
            fail(f"missing key {k!r}")
    info = dataset_info(raw["dataset"])
    seed = as_int(raw.get("seed", 0), "seed", 0)
    repeats = as_int(raw.get("repeats", 3), "repeats", 2)   # the train estimators need ≥ 2 models per point

    t = raw.get("training", {})
    check_keys(t, _TRAINING_KEYS, "[training]")
    overrides = []
    for o in t.get("lr_overrides", [{"arch": "alexnetwol", "loss": "ce", "lr": 0.01}]):
        check_keys(o, _OVERRIDE_KEYS, "[training].lr_overrides")
        if not {"arch", "loss", "lr"} <= set(o):
            fail("each [training].lr_overrides entry needs arch, loss and lr")
        overrides.append((str(o["arch"]), str(o["loss"]), as_float(o["lr"], "lr_overrides.lr", exclusive=("min",))))
    training = Training(
        batch_size=as_int(t.get("batch_size", 128), "training.batch_size"),
        eval_batch_size=as_int(t.get("eval_batch_size", 1000), "training.eval_batch_size"),
        lr=as_float(t.get("lr", 0.1), "training.lr", exclusive=("min",)),
        lr_overrides=tuple(overrides),
        momentum=as_float(t.get("momentum", 0.9), "training.momentum", 0.0, 1.0, exclusive=("max",)),
        lr_step_size=as_int(t.get("lr_step_size", 200), "training.lr_step_size"),
        lr_decay=as_float(t.get("lr_decay", 0.1), "training.lr_decay", 0.0, 1.0, exclusive=("min",)),
        models_per_batch=(as_int(t["models_per_batch"], "training.models_per_batch")
                          if "models_per_batch" in t else None),
    )

    g = raw["grid"]
    check_keys(g, _GRID_KEYS, "[grid]")
    for k in _GRID_KEYS:
        if k not in g:
            fail(f"missing key {k!r} in [grid]")
    archs = [str(a) for a in as_list(g["arch"], "grid.arch")]
    for a in archs:
        check_choice("architecture", a, ARCHS, where=source)
    if isinstance(g["width"], dict):
        check_keys(g["width"], set(archs), "[grid.width] (one list per architecture of grid.arch)")
        widths = {}
        for a in archs:
            if a not in g["width"]:
                fail(f"no widths for architecture {a!r} in [grid.width]")
            widths[a] = [as_int(w, f"width of {a}") for w in as_list(g["width"][a], f"grid.width.{a}")]
    else:
        widths = [as_int(w, "width") for w in as_list(g["width"], "grid.width")]
    for a in archs:
        for w in (widths[a] if isinstance(widths, dict) else widths):
            check_model(a, w, info.num_classes, info.input_shape, info.name)
    sizes = [as_int(s, "train_size") for s in as_list(g["train_size"], "grid.train_size")]
    for s in sizes:
        if s > info.pool_size:
            fail(f"train_size {s} exceeds the {info.name} training pool ({info.pool_size})")
    losses = [str(x) for x in as_list(g["loss"], "grid.loss")]
    for x in losses:
        check_loss(x, where=source)
    wds = [as_float(x, "weight_decay", 0.0, 1.0, exclusive=("max",)) for x in as_list(g["weight_decay"], "grid.weight_decay")]
    epochs = [as_int(e, "epochs") for e in as_list(g["epochs"], "grid.epochs")]
    scheds = as_list(g["scheduler"], "grid.scheduler")
    for s in scheds:
        if not isinstance(s, bool):
            fail(f"scheduler values must be true or false, got {s!r}")
    stage_tables = {}
    for name in STAGE_TABLES:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            fail(f"[{name}] must be a table, got {table!r}")
        if table:
            stage_tables[name] = dict(table)

    grid = {"arch": archs, "width": widths, "train_size": sorted(set(sizes)), "loss": losses,
            "weight_decay": wds, "epochs": sorted(set(epochs)), "scheduler": scheds}
    config = ExperimentConfig(name=str(raw.get("name", info.name)), dataset=info.name, seed=seed, repeats=repeats,
                              training=training, grid=grid, description=str(raw.get("description", "")),
                              stage_tables=stage_tables)
    _check_distinct_keys(config, fail)
    return config


def _check_distinct_keys(config: ExperimentConfig, fail) -> None:
    """Two grid points with one store key would share one stored configuration (a weight decay
    of 0.0005000001 prints as 0.0005): the grid would silently shrink."""
    seen: dict[str, TrainConfig] = {}
    for conf in config.configurations():
        other = seen.setdefault(conf.key, conf)
        if other is conf:
            continue
        differ = [f"{name} {getattr(other, name)!r} and {getattr(conf, name)!r}"
                  for name in ("arch", "width", "train_size", "loss", "weight_decay", "epochs", "scheduler", "lr")
                  if getattr(other, name) != getattr(conf, name)]
        if differ:
            fail(f"grid values {'; '.join(differ)} map to the same store key {conf.key!r}; "
                 f"use values that differ in their first 6 significant digits")
        fail(f"the grid lists configuration {conf.key!r} twice (a value repeated in [grid])")
