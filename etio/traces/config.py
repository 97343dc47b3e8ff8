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

The optional ``[attacks]``, ``[analysis]`` and ``[executor]`` tables belong to later stages
(:mod:`etio.attacks.settings`, :mod:`etio.causal.settings`, :mod:`etio.pipeline.executors`);
this module keeps them as written (nested tables flattened, the form a store keeps) and
:func:`etio.pipeline.study.load_study` parses the whole file at once. The trace stage's part is
declared here with the fields of :mod:`etio.core.settings` (:class:`Training`,
:class:`GridTable`, :class:`DatasetTable`, :class:`StudyHead`): an unknown key or a wrong value,
dataset, architecture or width raises :class:`EtioInputError` naming it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from etio.traces.datasets import dataset_info
from etio.core.errors import check_choice
from etio.core.settings import (Flag, Integer, Invalid, Items, Maybe, Number, Text, Where, fail, flat_table,
                                parse_table, setting, table)
from etio.traces.models import PAPER_LR_OVERRIDES, list_models
from etio.core.schema import check_loss

#: Tables of later stages, kept as written for them to validate.
STAGE_TABLES = ("attacks", "analysis", "executor")
#: A config's name: one path component (``reproduce`` writes ``artifacts/<name>``), never ``..``.
_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
#: Config parts that do not change what the trace stage trains (a store accepts new values of them).
NON_TRAINING_KEYS = ("name", "description", *STAGE_TABLES)


def _override(v) -> tuple[str, str, float]:
    """One ``[training].lr_overrides`` entry: ``{ arch = ..., loss = ..., lr = ... }``."""
    if not isinstance(v, dict) or set(v) != {"arch", "loss", "lr"}:
        raise Invalid("must be a table with arch, loss and lr (and nothing else)")
    return (str(v["arch"]), str(v["loss"]), Number(0.0, open=("low",))(v["lr"]))


@dataclass(frozen=True)
class Training:
    batch_size: int = setting(128, Integer(1))
    eval_batch_size: int = setting(1000, Integer(1))
    lr: float = setting(0.1, Number(0.0, open=("low",)))
    lr_overrides: tuple[tuple[str, str, float], ...] = setting(PAPER_LR_OVERRIDES,
                                                                Items(_override, nonempty=False))
    momentum: float = setting(0.9, Number(0.0, 1.0, open=("high",)))
    lr_step_size: int = setting(200, Integer(1))
    lr_decay: float = setting(0.1, Number(0.0, 1.0, open=("low",)))
    #: Train a job's models this many at a time (memory); None: all (a store's form of "absent").
    models_per_batch: int | None = setting(None, Maybe(Integer(1)))
    # PGD adversarial training (grid.adv_eps): steps of the inner maximisation, step size as a
    # fraction of ε, steps of the evaluation attack.
    pgd_steps: int = setting(7, Integer(1))
    pgd_step_size: float = setting(0.25, Number(0.0, open=("low",)))
    pgd_eval_steps: int = setting(10, Integer(1))

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
    #: The later stages' tables (``attacks``, ``analysis``, ``executor``) as written, nested tables
    #: flattened (:func:`etio.core.settings.flat_table`); parsed by :func:`etio.pipeline.study.parse_study`.
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


def _widths(v):
    """``width``: one list for every architecture, or a table of lists per architecture."""
    each = Items(Integer(1), single=True)
    if isinstance(v, dict):
        out = {}
        for arch, ws in v.items():
            try:
                out[str(arch)] = list(each(ws))
            except Invalid as exc:
                raise Invalid(f"{arch}: {exc.reason}") from None
        return out
    return list(each(v))


@dataclass(frozen=True)
class GridTable:
    """``[grid]`` (or one ``[datasets.<name>]`` table merged with it): one list per key (a lone
    value: a list of one). Every key but ``adv_eps`` is required of a dataset's merged grid."""

    arch: tuple[str, ...] | None = setting(None, Items(Text(what="an architecture name"), single=True))
    width: Any = setting(None, _widths)
    train_size: tuple[int, ...] | None = setting(None, Items(Integer(1), single=True))
    loss: tuple[str, ...] | None = setting(None, Items(Text(what="a loss name"), single=True))
    weight_decay: tuple[float, ...] | None = setting(None, Items(Number(0.0, 1.0, open=("high",)), single=True))
    epochs: tuple[int, ...] | None = setting(None, Items(Integer(1), single=True))
    scheduler: tuple[bool, ...] | None = setting(None, Items(Flag(), single=True))
    #: PGD training budgets, fractions of the [0, 1] pixel range (absent: natural training only).
    adv_eps: tuple[float, ...] | None = setting(None, Items(Where(Number(0.0), lambda e: e < 1, "is not below 1: budgets "
                                                                   "are fractions of the [0, 1] pixel range"),
                                                             single=True))


@dataclass(frozen=True)
class DatasetTable(GridTable):
    """A ``[datasets.<name>]`` table: grid keys replacing the shared ``[grid]``'s, and the sizes used."""

    pool_size: int | None = setting(None, Integer(2))
    test_size: int | None = setting(None, Integer(2))


def _grid_keys(table) -> dict[str, Any]:
    return {f.name: getattr(table, f.name) for f in fields(GridTable) if getattr(table, f.name) is not None}


@dataclass(frozen=True)
class StudyHead:
    """The top level of a study file; the grid and the later stages' tables are parsed on their own."""

    name: str | None = setting(None, Text(_NAME.pattern, "a plain name (letters, digits, '.', '_', '+', '-'; no "
                                                         "path): it names the run folder artifacts/<name>"))
    dataset: str | None = setting(None, Text(what="a dataset name"))
    seed: int = setting(0, Integer(0))
    repeats: int = setting(3, Integer(2))     # the train estimators need ≥ 2 models per point
    description: str = setting("", Text())
    synthetic_data: bool = setting(False, Flag())
    training: Training = table(Training)
    grid: dict | None = setting(None)
    datasets: dict | None = setting(None)
    attacks: dict | None = setting(None)
    analysis: dict | None = setting(None)
    executor: dict | None = setting(None)


def parse_config(raw: dict[str, Any], source: str = "config", *, check_models: bool = True) -> ExperimentConfig:
    """Validate a config mapping (as read from TOML or from a store's ``store.json``).

    ``check_models``: build every (architecture, width) on torch's meta device to prove it runs on
    its dataset; a reader of a store made from an already checked config (``etio status``) skips
    it, and so does not import torch."""
    def failing(msg: str):
        fail(source, msg)

    config = _parse_config(raw, source, check_models)
    _check_distinct_keys(config, failing)
    return config


def _parse_config(raw: dict[str, Any], source: str, check_models: bool = True) -> ExperimentConfig:
    if not isinstance(raw, dict):
        fail(source, f"a study must be a table, got {raw!r}")
    raw = {**raw, **({"training": {k: v for k, v in raw["training"].items() if v is not None}}
                     if isinstance(raw.get("training"), dict) else {})}      # a store's null: unset
    head = parse_table(StudyHead, raw, name="", source=source)
    multi = head.datasets is not None
    if multi:
        if head.dataset is not None:
            fail(source, "give either dataset (one dataset) or [datasets.<name>] tables (several), not both")
        if not isinstance(head.datasets, dict) or not head.datasets:
            fail(source, "[datasets] must hold one table per dataset, e.g. [datasets.mnist]")
    else:
        for k in ("dataset", "grid"):
            if getattr(head, k) is None:
                fail(source, f"missing key {k!r}")
    shared = head.grid if head.grid is not None else {}
    if not isinstance(shared, dict):
        fail(source, f"[grid] must be a table, got {shared!r}")
    if not multi:
        info = dataset_info(head.dataset)
        grid = _parse_grid(shared, info, "grid", source, check_models)
    else:
        parse_table(GridTable, shared, name="grid", source=source)      # shared keys only, each valid
        parts = {}
        for name, tbl in head.datasets.items():
            where = f"datasets.{name}"
            if not isinstance(tbl, dict):
                fail(source, f"[{where}] must be a table, got {tbl!r}")
            info = dataset_info(name)
            own = parse_table(DatasetTable, tbl, name=where, source=source)
            for k, limit in (("pool_size", info.pool_size), ("test_size", info.test_size)):
                size = getattr(own, k)
                if size is not None and size > limit:
                    fail(source, f"[{where}] {k} = {size} exceeds the {name} {k.split('_')[0]} set ({limit})")
            if own.pool_size is not None:
                info = replace(info, pool_size=own.pool_size)
            merged = {**shared, **{k: v for k, v in tbl.items() if k not in ("pool_size", "test_size")}}
            parts[info.name] = DatasetGrid(info.name, _parse_grid(merged, info, where, source, check_models),
                                           own.pool_size, own.test_size)
    stage_tables = {}
    for name in STAGE_TABLES:
        tbl = getattr(head, name)
        if tbl is not None and not isinstance(tbl, dict):
            fail(source, f"[{name}] must be a table, got {tbl!r}")
        if tbl:
            stage_tables[name] = flat_table(tbl)

    if multi:
        label = "+".join(parts)
        return ExperimentConfig(name=head.name or label, dataset=label, seed=head.seed, repeats=head.repeats,
                                training=head.training, grid={}, description=head.description,
                                stage_tables=stage_tables, datasets=parts, synthetic_data=head.synthetic_data)
    return ExperimentConfig(name=head.name or info.name, dataset=info.name, seed=head.seed, repeats=head.repeats,
                            training=head.training, grid=grid, description=head.description,
                            stage_tables=stage_tables, synthetic_data=head.synthetic_data)


def _parse_grid(g: dict, info, name: str, source: str = "config", check_models: bool = True) -> dict[str, Any]:
    """The validated grid of one dataset (``name`` names the table in messages)."""
    def failing(msg: str):
        fail(source, msg)

    grid = _grid_keys(parse_table(GridTable, g, name=name, source=source))
    for k in sorted(f.name for f in fields(GridTable) if f.name != "adv_eps"):
        if k not in grid:
            failing(f"missing key {k!r} in [{name}]")
    archs = list(grid["arch"])
    for a in archs:
        check_choice("architecture", a, list_models(), where=source)
    widths = grid["width"]
    if isinstance(widths, dict):
        for a in widths:
            if a not in archs:
                failing(f"unknown key {a!r} in the widths of [{name}] (one list per architecture of arch); "
                        f"allowed keys: {', '.join(sorted(archs))}")
        for a in archs:
            if a not in widths:
                failing(f"no widths for architecture {a!r} in [{name}]")
    if check_models:
        from etio.traces.models import check_model

        for a in archs:
            for w in (widths[a] if isinstance(widths, dict) else widths):
                check_model(a, w, info.num_classes, info.input_shape, info.name)
    for s in grid["train_size"]:
        if s > info.pool_size:
            failing(f"[{name}] train_size = {s}: exceeds the {info.name} training pool ({info.pool_size})")
    for x in grid["loss"]:
        check_loss(x, where=source)
    out = {"arch": archs, "width": widths, "train_size": sorted(set(grid["train_size"])), "loss": list(grid["loss"]),
           "weight_decay": list(grid["weight_decay"]), "epochs": sorted(set(grid["epochs"])),
           "scheduler": list(grid["scheduler"])}
    if "adv_eps" in grid:
        out["adv_eps"] = sorted(set(grid["adv_eps"]))
    return out


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
