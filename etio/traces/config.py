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
    adv_eps = [0, 0.1, 0.2]         # optional: PGD adversarial training budgets (see below)

Robust training (Madry et al.; the robust-models excerpt, Song et al.): ``grid.adv_eps`` lists
l∞ budgets ε in pixel units, i.e. as a fraction of the [0, 1] pixel range (CIFAR's 8/255 is
0.0314); the trainer scales them by the dataset's normalisation. ε = 0 is natural training
and keeps the natural configuration's key, so its row is the natural model. The inner
maximisation is PGD with a uniform random start in the ε-ball, ``training.pgd_steps`` steps of
``training.pgd_step_size`` · ε (defaults 7 and 0.25: the 7 steps of 2/255 at ε = 8/255 of
Madry et al.'s CIFAR-10 models), and robust accuracies are measured with
``training.pgd_eval_steps`` steps of the same size.

A study over several datasets (``experiments/paper.toml``) has no top-level ``dataset``; it
has one ``[datasets.<name>]`` table per dataset instead, holding that dataset's grid keys
(they replace the shared ``[grid]``'s) and optionally ``pool_size`` / ``test_size`` (use the
first that many training / test images: small subsets for quick studies)::

    [grid]                          # shared by every dataset
    train_size = [1000, 5000]
    loss = ["ce", "mse"]
    ...
    [datasets.cifar100]
    arch = ["alexnetwol", "resnet34", "densenet161"]
    loss = ["ce"]                   # CIFAR-100: CE only, as in the paper
    [datasets.cifar100.width]
    resnet34 = [2, 4, 8, 16, 32]

Every stage runs such a study into one store and one pooled trace table.
``synthetic_data = true`` (quick studies only) lets the trace stage write generated files in
each dataset's own on-disk format into an empty data directory (:mod:`etio.traces.synthetic`).

The optional ``[attacks]`` and ``[analysis]`` tables belong to later stages
(:mod:`etio.attacks.settings`, :mod:`etio.causal.settings`); this module keeps them as written
and :func:`etio.pipeline.study.load_study` validates the whole file at once. Validation of the
trace stage's part happens here: an unknown key, dataset, architecture or width raises
:class:`EtioInputError` naming it.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from etio.traces.datasets import dataset_info
from etio.core.errors import EtioInputError, check_choice, read_error
from etio.traces.architectures import ARCH_NAMES
from etio.core.schema import check_loss

_TOP_KEYS = {"analysis", "name", "dataset", "seed", "repeats", "training", "grid", "description", "attacks",
             "executor", "datasets", "synthetic_data"}
#: Tables of later stages, kept as written for them to validate.
STAGE_TABLES = ("attacks", "analysis", "executor")
#: A config's name: one path component (``reproduce`` writes ``artifacts/<name>``), never ``..``.
_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
#: Config parts that do not change what the trace stage trains (a store accepts new values of them).
NON_TRAINING_KEYS = ("name", "description", *STAGE_TABLES)
_TRAINING_KEYS = {"batch_size", "eval_batch_size", "lr", "lr_overrides", "momentum", "lr_step_size", "lr_decay",
                  "models_per_batch", *("pgd_steps", "pgd_step_size", "pgd_eval_steps")}
_GRID_KEYS = {"arch", "width", "train_size", "loss", "weight_decay", "epochs", "scheduler"}
#: Grid keys that may be left out (robust training).
_OPTIONAL_GRID_KEYS = {"adv_eps"}
_OVERRIDE_KEYS = {"arch", "loss", "lr"}
#: Keys of a ``[datasets.<name>]`` table besides the grid keys.
_DATASET_KEYS = {"pool_size", "test_size"}


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
    # PGD adversarial training (grid.adv_eps): steps of the inner maximisation, step size as a
    # fraction of ε, steps of the evaluation attack.
    pgd_steps: int = 7
    pgd_step_size: float = 0.25
    pgd_eval_steps: int = 10

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
    adv_eps: float = 0.0     # PGD training budget (pixel units); 0 = natural training

    @property
    def key(self) -> str:
        """Stable id; zero-padded so that string order is numeric order. A natural model (ε = 0)
        keeps the key it has without robust training."""
        sched = "sched" if self.scheduler else "nosched"
        robust = f"-eps{self.adv_eps:.6f}" if self.adv_eps > 0 else ""
        return (f"{self.dataset}-{self.arch}-w{self.width:04d}-s{self.train_size:05d}-{self.loss}"
                f"-wd{self.weight_decay:g}-e{self.epochs:04d}-{sched}{robust}")

    def identity(self) -> dict[str, Any]:
        """The identity columns of the trace table, spelled as the authors' parser wrote them."""
        return {
            "WeightDecay": self.weight_decay, "EpochNum": self.epochs, "Dataset": self.dataset,
            "Arch": self.arch, "Width": self.width, "TrainSize": self.train_size, "Loss": self.loss,
            "Scheduler?": "with_scheduler" if self.scheduler else "without_scheduler", "lr": self.lr,
            "AdvEps": self.adv_eps,
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
    #: A study over several datasets: dataset -> its :class:`DatasetGrid` (then ``dataset`` is the
    #: names joined by "+" and ``grid`` is empty). Empty for a one-dataset config.
    datasets: dict[str, "DatasetGrid"] = field(default_factory=dict)
    #: Whether the trace stage may write generated data files into an empty data directory.
    synthetic_data: bool = False

    def dataset_grids(self) -> list["DatasetGrid"]:
        """One :class:`DatasetGrid` per dataset of the study, in the order of the config."""
        if self.datasets:
            return list(self.datasets.values())
        return [DatasetGrid(self.dataset, self.grid)]

    @property
    def adv_eps(self) -> list[float]:
        """The PGD training budgets over every dataset of the study ([0.0]: natural training only)."""
        return sorted({e for part in self.dataset_grids() for e in part.adv_eps})

    @property
    def is_robust(self) -> bool:
        """Whether any grid of the study trains robust models (it has ``adv_eps``)."""
        return any(part.is_robust for part in self.dataset_grids())

    def configurations(self) -> list[TrainConfig]:
        out = [c for part in self.dataset_grids() for c in part.configurations(self.training)]
        return sorted(out, key=lambda c: c.key)

    def training_settings(self) -> dict[str, Any]:
        """What decides the numbers a configuration gets: two stores agreeing on it can be pooled.

        ``eval_batch_size`` and ``models_per_batch`` only bound memory (how many points or models
        are processed at once), so stores that differ in them still pool.
        """
        training = {k: v for k, v in self.to_dict()["training"].items()
                    if k not in ("eval_batch_size", "models_per_batch")}
        return {"seed": self.seed, "repeats": self.repeats, "training": training}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["training"]["lr_overrides"] = [dict(zip(("arch", "loss", "lr"), o)) for o in self.training.lr_overrides]
        del d["stage_tables"]
        del d["datasets"]
        if self.datasets:          # the form parse_config reads back: one table per dataset
            del d["dataset"], d["grid"]
            d["datasets"] = {name: part.to_dict() for name, part in self.datasets.items()}
        if not self.synthetic_data:   # absent = false: stores of one-dataset configs keep their store.json
            del d["synthetic_data"]
        d.update({name: dict(table) for name, table in sorted(self.stage_tables.items())})
        return d


@dataclass(frozen=True)
class DatasetGrid:
    """The grid of one dataset of a study; ``pool_size`` / ``test_size``: use only the first that many images."""

    dataset: str
    grid: dict[str, Any]
    pool_size: int | None = None
    test_size: int | None = None

    def configurations(self, training: Training) -> list[TrainConfig]:
        g = self.grid
        out = []
        for arch in g["arch"]:
            for width, s, loss, wd, epochs, sched, eps in itertools.product(
                    self.widths_of(arch), g["train_size"], g["loss"], g["weight_decay"], g["epochs"], g["scheduler"],
                    self.adv_eps):
                out.append(TrainConfig(self.dataset, arch, width, s, loss, wd, epochs, sched,
                                       training.lr_for(arch, loss), eps))
        return sorted(out, key=lambda c: c.key)

    def widths_of(self, arch: str) -> list[int]:
        """The widths of ``arch`` in this grid (one list for every architecture, or a table of them)."""
        widths = self.grid["width"]
        return widths[arch] if isinstance(widths, dict) else widths

    @property
    def adv_eps(self) -> list[float]:
        """The PGD training budgets of the grid ([0.0]: natural training only)."""
        return list(self.grid.get("adv_eps", [0.0]))

    @property
    def is_robust(self) -> bool:
        """Whether the grid trains robust models (it has ``adv_eps``)."""
        return "adv_eps" in self.grid

    def info(self) -> "DatasetInfo":  # noqa: F821
        """The dataset's description with the sizes this grid uses (``pool_size`` / ``test_size``)."""
        from dataclasses import replace

        from etio.traces.datasets import dataset_info

        info = dataset_info(self.dataset)
        return replace(info, pool_size=self.pool_size or info.pool_size, test_size=self.test_size or info.test_size)

    def to_dict(self) -> dict[str, Any]:
        d = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in self.grid.items()}
        d.update({k: v for k, v in (("pool_size", self.pool_size), ("test_size", self.test_size)) if v is not None})
        return d


@dataclass(frozen=True)
class Variant:
    """Optimisation settings of one trained member (everything but width and epochs); plain data,
    so that planning a study's jobs does not import torch."""

    loss: str
    weight_decay: float
    scheduler: bool
    lr: float
    adv_eps: float = 0.0     # PGD training budget in pixel units (0: natural training)


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
    except OSError as exc:      # no permission, an I/O error: a filesystem fault (exit 1)
        raise read_error(path, exc, "config file") from None


def load_config(path: Path | str) -> ExperimentConfig:
    """The trace stage's part of a config file (the whole file: :func:`etio.pipeline.study.load_study`)."""
    return parse_config(read_config_file(path), source=str(path))


def parse_config(raw: dict[str, Any], source: str = "config", *, check_models: bool = True) -> ExperimentConfig:
    """Validate a config mapping (as read from TOML or from a store's ``store.json``).

    ``check_models``: build every (architecture, width) on torch's meta device to prove it runs on
    its dataset; a reader of a store made from an already checked config (``etio status``) skips
    it, and so does not import torch."""
    def fail(msg: str):
        raise EtioInputError(f"{source}: {msg}")

    config = _parse_config(raw, source, fail, check_models)
    _check_distinct_keys(config, fail)
    return config


def _parse_config(raw: dict[str, Any], source: str, fail, check_models: bool = True) -> ExperimentConfig:

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
    if "name" in raw and not (isinstance(raw["name"], str) and _NAME.fullmatch(raw["name"])):
        fail(f"name = {raw['name']!r} must be a plain name (letters, digits, '.', '_', '+', '-'; no path): "
             f"it names the run folder artifacts/<name>")
    multi = "datasets" in raw
    if multi:
        if "dataset" in raw:
            fail("give either dataset (one dataset) or [datasets.<name>] tables (several), not both")
        if not isinstance(raw["datasets"], dict) or not raw["datasets"]:
            fail("[datasets] must hold one table per dataset, e.g. [datasets.mnist]")
    else:
        for k in ("dataset", "grid"):
            if k not in raw:
                fail(f"missing key {k!r}")
    seed = as_int(raw.get("seed", 0), "seed", 0)
    repeats = as_int(raw.get("repeats", 3), "repeats", 2)   # the train estimators need ≥ 2 models per point
    synthetic = raw.get("synthetic_data", False)
    if not isinstance(synthetic, bool):
        fail(f"synthetic_data must be true or false, got {synthetic!r}")

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
                          if t.get("models_per_batch") is not None else None),   # None: a store's form of "absent"
        pgd_steps=as_int(t.get("pgd_steps", 7), "training.pgd_steps"),
        pgd_step_size=as_float(t.get("pgd_step_size", 0.25), "training.pgd_step_size"),
        pgd_eval_steps=as_int(t.get("pgd_eval_steps", 10), "training.pgd_eval_steps"),
    )
    if training.pgd_step_size <= 0:
        fail(f"training.pgd_step_size must be > 0 (a fraction of ε), got {training.pgd_step_size!r}")

    shared = raw.get("grid", {})
    if not isinstance(shared, dict):
        fail(f"[grid] must be a table, got {shared!r}")
    if not multi:
        info = dataset_info(raw["dataset"])
        grid = _parse_grid(shared, info, "[grid]", fail, check_keys, as_int, as_float, as_list, source, check_models)
    else:
        check_keys(shared, _GRID_KEYS | _OPTIONAL_GRID_KEYS, "[grid]")
        parts = {}
        for name, table in raw["datasets"].items():
            where = f"[datasets.{name}]"
            if not isinstance(table, dict):
                fail(f"{where} must be a table, got {table!r}")
            info = dataset_info(name)
            check_keys(table, _GRID_KEYS | _OPTIONAL_GRID_KEYS | _DATASET_KEYS, where)
            merged = {**shared, **{k: v for k, v in table.items() if k in _GRID_KEYS | _OPTIONAL_GRID_KEYS}}
            sizes = {}
            for k in ("pool_size", "test_size"):
                if k in table:
                    limit = info.pool_size if k == "pool_size" else info.test_size
                    sizes[k] = as_int(table[k], f"{where} {k}", 2)
                    if sizes[k] > limit:
                        fail(f"{where} {k} = {sizes[k]} exceeds the {name} {k.split('_')[0]} set ({limit})")
            if "pool_size" in sizes:
                info = replace(info, pool_size=sizes["pool_size"])
            parts[info.name] = DatasetGrid(info.name, _parse_grid(merged, info, f"{where} (with [grid])", fail,
                                                                  check_keys, as_int, as_float, as_list, source,
                                                                  check_models),
                                           sizes.get("pool_size"), sizes.get("test_size"))
    stage_tables = {}
    for name in STAGE_TABLES:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            fail(f"[{name}] must be a table, got {table!r}")
        if table:
            stage_tables[name] = dict(table)

    if multi:
        label = "+".join(parts)
        return ExperimentConfig(name=str(raw.get("name", label)), dataset=label, seed=seed, repeats=repeats,
                                training=training, grid={}, description=str(raw.get("description", "")),
                                stage_tables=stage_tables, datasets=parts, synthetic_data=synthetic)
    return ExperimentConfig(name=str(raw.get("name", info.name)), dataset=info.name, seed=seed, repeats=repeats,
                            training=training, grid=grid, description=str(raw.get("description", "")),
                            stage_tables=stage_tables, synthetic_data=synthetic)


def _parse_grid(g, info, where: str, fail, check_keys, as_int, as_float, as_list,
                source: str = "config", check_models: bool = True) -> dict[str, Any]:
    """The validated grid of one dataset (``where`` names the table in messages)."""
    check_keys(g, _GRID_KEYS | _OPTIONAL_GRID_KEYS, where)
    for k in sorted(_GRID_KEYS):
        if k not in g:
            fail(f"missing key {k!r} in {where}")
    archs = [str(a) for a in as_list(g["arch"], "grid.arch")]
    for a in archs:
        check_choice("architecture", a, ARCH_NAMES, where=source)
    if isinstance(g["width"], dict):
        check_keys(g["width"], set(archs), f"the widths of {where} (one list per architecture of arch)")
        widths = {}
        for a in archs:
            if a not in g["width"]:
                fail(f"no widths for architecture {a!r} in {where}")
            widths[a] = [as_int(w, f"width of {a}") for w in as_list(g["width"][a], f"grid.width.{a}")]
    else:
        widths = [as_int(w, "width") for w in as_list(g["width"], "grid.width")]
    if check_models:
        from etio.traces.models import check_model

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
    grid = {"arch": archs, "width": widths, "train_size": sorted(set(sizes)), "loss": losses,
            "weight_decay": wds, "epochs": sorted(set(epochs)), "scheduler": scheds}
    if "adv_eps" in g:
        budgets = [as_float(e, "adv_eps") for e in as_list(g["adv_eps"], "grid.adv_eps")]
        for e in budgets:
            if e >= 1.0:
                fail(f"adv_eps {e:g} is not below 1: budgets are fractions of the [0, 1] pixel range")
        grid["adv_eps"] = sorted(set(budgets))
    return grid


def _check_distinct_keys(config: ExperimentConfig, fail) -> None:
    """Two grid points with one store key would share one stored configuration (a weight decay
    of 0.0005000001 prints as 0.0005): the grid would silently shrink."""
    seen: dict[str, TrainConfig] = {}
    for conf in config.configurations():
        other = seen.setdefault(conf.key, conf)
        if other is conf:
            continue
        differ = [f"{name} {getattr(other, name)!r} and {getattr(conf, name)!r}"
                  for name in ("dataset", "arch", "width", "train_size", "loss", "weight_decay", "epochs", "scheduler", "lr",
                               "adv_eps")
                  if getattr(other, name) != getattr(conf, name)]
        if differ:
            fail(f"grid values {'; '.join(differ)} map to the same store key {conf.key!r}; "
                 f"use values that differ in their first 6 significant digits")
        fail(f"the grid lists configuration {conf.key!r} twice (a value repeated in [grid])")
