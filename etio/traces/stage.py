"""Stage 1 of the pipeline (paper Fig. 4): config → trained models → trace store → traces.csv.

A study may hold several datasets (``experiments/paper.toml``): every job belongs to one
dataset, the jobs of all datasets are one list (and one shard numbering), and the store and its
``traces.csv`` pool them.

The grid of a config is cut into *jobs*: sets of configurations whose models are trained in
one batch (:mod:`etio.traces.training`). A job holds one architecture and one train size; its members
are every (width, loss, weight decay, scheduler) combination — widths grouped for the MLP,
one width and one optimisation variant per job otherwise — and it is snapshotted at every
epoch count of the grid. The plan depends on the config only, so a rerun, a shard on another
machine and an uninterrupted run all train every job with the same batch composition and get
the same numbers. Each configuration is written to the store as soon as its snapshot is
evaluated; jobs whose configurations are all stored are skipped.

The stage's entry points, used by every executor, the commands and the tests alike:
:func:`training_store` (checks, the store and its lock), :func:`trace_units` (a job per unit),
:func:`run_trace_unit` (one unit, wherever it runs), :func:`finish_traces` (``traces.csv``);
:func:`etio.pipeline.stages.traces_on` runs them on an executor.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from etio.traces.config import ExperimentConfig, TrainConfig
from etio.core.errors import EtioInputError
from etio.traces.store import ConfigRecord, TraceStore, check_store_dir, create_store, open_store, store_lock


@dataclass(frozen=True)
class JobPlan:
    arch: str
    train_size: int
    widths: tuple[int, ...]
    variants: tuple            # tuple[train.Variant, ...]
    epochs: tuple[int, ...]
    configs: dict              # (member index, epoch) -> TrainConfig
    dataset: str = ""          # the dataset of every configuration of the job

    @property
    def members(self):
        return [(w, v) for w in self.widths for v in self.variants]

    @property
    def job_id(self) -> str:
        return (f"{self.dataset}-" if self.dataset else "") + \
            f"{self.arch}-s{self.train_size}-w{'_'.join(map(str, self.widths))}-{len(self.variants)}v"


def group_widths(widths: list[int], slack: float = 1.5, floor: int = 32) -> list[tuple[int, ...]]:
    """Group MLP widths that are cheap to pad to a common width.

    The cost of a width is taken as max(w, floor) (below ``floor`` a batch is dominated by fixed
    costs); a width joins the current group while the padded cost stays within ``slack`` × the
    true cost.
    """
    groups: list[list[int]] = []
    for w in sorted(set(widths), reverse=True):
        if groups:
            g = groups[-1]
            padded = (len(g) + 1) * max(g[0], floor)
            true = sum(max(x, floor) for x in g) + max(w, floor)
            if padded <= slack * true:
                g.append(w)
                continue
        groups.append([w])
    return [tuple(sorted(g)) for g in groups]


def plan_jobs(cfg: ExperimentConfig) -> list[JobPlan]:
    """The jobs of every dataset of ``cfg``, in config order (shards number this list)."""
    from etio.traces.config import Variant
    from etio.traces.models import get_model

    epochs_plans = []
    for part in cfg.dataset_grids():
        g = part.grid
        epochs = tuple(g["epochs"])
        for arch in g["arch"]:
            widths = part.widths_of(arch)
            # Robust budgets are one more optimisation setting: models of every ε share a batch.
            variants = [Variant(loss, wd, sched, cfg.training.lr_for(arch, loss), eps)
                        for loss, wd, sched, eps in itertools.product(g["loss"], g["weight_decay"], g["scheduler"],
                                                                      part.adv_eps)]
            if get_model(arch).mixed_widths:
                width_groups, variant_groups = group_widths(widths), [tuple(variants)]
            else:
                width_groups, variant_groups = [(w,) for w in widths], [(v,) for v in variants]
            for s in g["train_size"]:
                for wg in width_groups:
                    for vg in variant_groups:
                        members = [(w, v) for w in wg for v in vg]
                        configs = {(i, e): TrainConfig(part.dataset, arch, w, s, v.loss, v.weight_decay, e,
                                                       v.scheduler, v.lr, v.adv_eps)
                                   for i, (w, v) in enumerate(members) for e in epochs}
                        epochs_plans.append(JobPlan(arch, s, wg, vg, epochs, configs, part.dataset))
    return epochs_plans


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` (1 ≤ i ≤ N, counted as people count) -> the 0-based shard index and N."""
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise EtioInputError(f"--shard {text!r} is not of the form i/N (e.g. 1/4 … 4/4)") from None
    if not (n >= 1 and 1 <= i <= n):
        raise EtioInputError(f"--shard {text!r}: need 1 ≤ i ≤ N (shards are numbered 1/{max(n, 1)} … "
                             f"{max(n, 1)}/{max(n, 1)})")
    return i - 1, n


def shard_label(shard: tuple[int, int]) -> str:
    """The 0-based shard tuple as the user wrote it (``(0, 8)`` -> ``"1/8"``)."""
    return f"{shard[0] + 1}/{shard[1]}"


def shard_jobs(cfg: ExperimentConfig, shard: tuple[int, int]) -> list[JobPlan]:
    return [j for i, j in enumerate(plan_jobs(cfg)) if i % shard[1] == shard[0]]


def split_name(cfg: ExperimentConfig, s: int, dataset: str | None = None, pool_size: int | None = None) -> str:
    """File name of the subsets; a pool cut to its first ``pool_size`` images is named for it."""
    pool = f"-p{pool_size}" if pool_size is not None else ""
    return f"{dataset or cfg.dataset}{pool}-s{s}-N{cfg.repeats}-seed{cfg.seed}.npy"


def resolve_data_dir(data_dir: Path | str | None) -> Path:
    from etio.traces.datasets import DEFAULT_DATA_DIR

    return Path(data_dir).expanduser() if data_dir else DEFAULT_DATA_DIR


def load_study_data(cfg: ExperimentConfig, data_dir: Path | str | None = None, echo=None) -> dict:
    """Every dataset of ``cfg`` in memory (fails before anything is written when one is missing).

    With ``synthetic_data = true`` and an empty (or absent) data directory, generated files in each
    dataset's own format are written there first (:mod:`etio.traces.synthetic`) and read back
    through the same loaders. Returns dataset -> LoadedData.
    """
    from etio.traces.datasets import get_dataset, load
    from etio.traces.synthetic import DEFAULT_SIZES, is_empty_dir, write_synthetic_data

    parts = cfg.dataset_grids()
    directory = resolve_data_dir(data_dir)
    needs_files = [p for p in parts if get_dataset(p.dataset).reads_files]
    if cfg.synthetic_data and needs_files and is_empty_dir(directory):
        sizes = {p.dataset: (p.pool_size or DEFAULT_SIZES["train"], p.test_size or DEFAULT_SIZES["test"])
                 for p in needs_files}
        write_synthetic_data(directory, sizes, seed=cfg.seed)
        notice = (f"{directory} was empty: wrote generated {', '.join(sorted(sizes))} files in their own formats "
                  f"(synthetic data, not the real datasets)")
        if echo is not None:
            echo(f"   {notice}")
        else:
            import warnings

            warnings.warn(notice, stacklevel=2)
    # load resolves a missing data_dir per dataset (the default directory, or a Debian package's)
    return {p.dataset: load(p.dataset, data_dir, p.pool_size, p.test_size, allow_synthetic=cfg.synthetic_data)
            for p in parts}


def data_provenance(loaded: dict) -> dict:
    """What each dataset was read from, for the provenance records: the files with their SHA-256."""
    return {name: {"source": d.source, "data_dir": d.data_dir, "synthetic": d.synthetic,
                   "train_images": d.info.pool_size, "test_images": d.info.test_size,
                   "files": [{"path": path, "sha256": digest} for path, digest in d.files]}
            for name, d in sorted(loaded.items())}


@contextlib.contextmanager
def training_store(cfg: ExperimentConfig, out: Path, device: str, shard: tuple[int, int] = (0, 1),
                   data_dir: Path | None = None, echo=None, what: str = "etio traces") -> Iterator[TraceStore]:
    """The store at ``out``, ready for this shard's training, held under the store's lock.

    Every run goes through here, in-process or on an executor (whose workers write while the
    driver holds the lock): a missing dataset, a batch that cannot fit or a foreign directory
    fails before the store's directory and lock file appear; a second writer waits; damaged
    configurations are found before reuse and recomputed; split files are verified.
    """
    check_memory(cfg, shard_jobs(cfg, shard), load_study_data(cfg, data_dir, echo), device)   # data cached per process
    check_store_dir(out)
    with store_lock(Path(out), what):
        store = prepare_traces(cfg, out, data_dir, device=device, shard=shard, echo=echo)
        store.invalidate_damaged()
        _write_splits(cfg, store, shard, data_dir)
        yield store


def _write_splits(cfg: ExperimentConfig, store: TraceStore, shard: tuple[int, int], data_dir: Path | None) -> None:
    """Every split file of this shard, verified (and rewritten if damaged) on every run, also
    when all of its configurations are stored and no unit would write it."""
    from etio.traces.datasets import disjoint_split

    loaded = load_study_data(cfg, data_dir)      # cached per process
    parts = {p.dataset: p for p in cfg.dataset_grids()}
    seen = set()
    for job in shard_jobs(cfg, shard):
        info = (loaded[job.dataset] if job.dataset in loaded else loaded[cfg.dataset]).info
        if (info.name, job.train_size) in seen:
            continue
        seen.add((info.name, job.train_size))
        store.write_split(split_name(cfg, job.train_size, info.name, parts[info.name].pool_size),
                          disjoint_split(info.pool_size, job.train_size, cfg.repeats, cfg.seed))


@dataclass(frozen=True)
class TraceUnit:
    """One job of the plan: the unit executors schedule. ``keys``: its configurations."""

    unit_id: str
    job: JobPlan
    keys: tuple[str, ...]


def trace_units(cfg: ExperimentConfig, store: TraceStore | None = None, shard: tuple[int, int] = (0, 1),
                pending_only: bool = True) -> list[TraceUnit]:
    """The jobs of ``cfg`` (of this shard) as units, in plan order; with a store, those not all stored.

    A unit's id is its position in the plan and its job id (job ids alone repeat across
    optimisation variants of one architecture); it depends on the config only.
    """
    units = []
    for i, job in enumerate(plan_jobs(cfg)):
        if i % shard[1] != shard[0]:
            continue
        keys = tuple(sorted({c.key for c in job.configs.values()}))
        if pending_only and store is not None and all(store.is_done(k) for k in keys):
            continue
        units.append(TraceUnit(f"{i:04d}-{job.job_id}", job, keys))
    return units


def prepare_traces(cfg: ExperimentConfig, out: Path, data_dir: Path | None = None, device: str = "cpu",
                   shard: tuple[int, int] = (0, 1), echo=None) -> TraceStore:
    """The store at ``out`` for ``cfg``, with this shard and the data's provenance recorded (the
    checks that must come before anything is written are :func:`training_store`'s)."""
    loaded = load_study_data(cfg, data_dir, echo)      # cached per process
    store = create_store(out, cfg, data_dir)
    store.add_shard(shard_label(shard))
    store.meta["data"] = data_provenance(loaded)      # for finish_traces' provenance (not written to store.json)
    return store


def finish_traces(store: TraceStore, device: str, shard: tuple[int, int] = (0, 1), started: float | None = None,
                  extra: dict | None = None) -> TraceStore:
    """Rewrite ``traces.csv`` (and its provenance) from what the store holds."""
    import torch

    record = {"device": str(device), "shard": shard_label(shard), "torch_threads": torch.get_num_threads()}
    if store.meta.get("data"):
        record["data"] = store.meta["data"]
    if started is not None:
        record["wall_s_this_run"] = round(time.time() - started, 2)
    store.write_traces_csv({**record, **(extra or {})})
    return store


def _resolve(device: str | None) -> str:
    import torch

    return device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")


def run_trace_unit(cfg: ExperimentConfig, out: Path, unit_id: str, device: str | None = None,
                   data_dir: Path | None = None, on_written=None) -> list[str]:
    """Train one unit (:func:`trace_units`) into the store at ``out``; returns the keys it wrote.

    Configurations already stored are skipped, so a retried unit finishes what a killed
    attempt left and writes the same bytes. ``on_written(key)`` follows each stored configuration.
    """
    import torch

    from etio.traces.centroid import centroid_distances
    from etio.traces.datasets import disjoint_split
    from etio.traces.generalization import generalization_stats
    from etio.traces.models import count_params

    device = _resolve(device)
    units = {u.unit_id: u for u in trace_units(cfg, pending_only=False)}
    if unit_id not in units:
        raise EtioInputError(f"{unit_id!r} is not a unit of the config {cfg.name!r}")
    job = units[unit_id].job
    store = open_store(out, data_dir)
    loaded = load_study_data(cfg, data_dir)      # cached per process
    data = loaded[job.dataset] if job.dataset in loaded else loaded[cfg.dataset]
    part = {p.dataset: p for p in cfg.dataset_grids()}[data.info.name]
    info = data.info
    pool_x, pool_y = data.pool_x.to(device), data.pool_y.to(device)
    test_x, test_y = data.test_x.to(device), data.test_y.to(device)
    default_threads = torch.get_num_threads()
    written = []
    s = job.train_size
    subsets = disjoint_split(info.pool_size, s, cfg.repeats, cfg.seed)
    split_file = split_name(cfg, s, info.name, part.pool_size)
    store.write_split(split_file, subsets)
    n = info.pool_size // s
    subsets_dev = torch.as_tensor(subsets, device=device)
    if str(device) == "cpu":
        torch.set_num_threads(_threads_for(job, len(subsets), info, default_threads))
    try:
        t0 = time.time()
        for epoch, states, train_logits, test_logits, robust in _snapshots(job, cfg, info, subsets, pool_x,
                                                                           pool_y, test_x, test_y, device):
            t_train = time.time() - t0
            for mi, (width, variant) in enumerate(job.members):
                conf: TrainConfig = job.configs[(mi, epoch)]
                if store.is_done(conf.key):
                    continue
                t1 = time.time()
                stats = generalization_stats(variant.loss, train_logits[mi], test_logits[mi], subsets_dev,
                                             pool_y, test_y, cfg.repeats, info.pool_size)
                stats.update(centroid_distances(train_logits[mi], test_logits[mi], variant.loss))
                if robust is not None:
                    from etio.traces.robust import robust_stats

                    stats.update(robust_stats(robust[0][mi], robust[1][mi], cfg.repeats, variant.adv_eps))
                record = ConfigRecord(
                    key=conf.key, identity=conf.identity(), dataset=info.name, arch=conf.arch,
                    width=conf.width, train_size=s, loss=conf.loss, n_repeats=cfg.repeats, models_per_repeat=n,
                    num_classes=info.num_classes, input_shape=tuple(info.input_shape),
                    num_params=count_params(conf.arch, conf.width, info.num_classes, info.input_shape),
                    split_file=split_file,
                    seeds={"split_seed": cfg.seed, "model_seed_base": cfg.seed},
                    timings={"job": job.job_id, "job_train_s_at_snapshot": round(t_train, 3),
                             "stats_s": round(time.time() - t1, 4), "device": str(device)},
                    pool_size=part.pool_size, test_size=part.test_size, synthetic_data=data.synthetic)
                store.write_config(record, states(mi), stats)
                written.append(conf.key)
                if on_written is not None:
                    on_written(conf.key)
    finally:
        torch.set_num_threads(default_threads)
    return written


def check_memory(cfg: ExperimentConfig, jobs: list[JobPlan], loaded: dict, device: str) -> None:
    """Refuse, before any training, a ``models_per_batch`` whose batch of models will not fit in ``device``."""
    from etio.traces.resources import available_memory, format_bytes, job_memory

    free = available_memory(device)
    if free is None or not jobs:
        return
    worst = max(jobs, key=lambda j: job_memory(cfg, j, loaded[j.dataset].info).total)
    need = job_memory(cfg, worst, loaded[worst.dataset].info)
    if need.total > free:
        per_model = max(need.per_model, 1)
        # models_per_batch counts the models of one member (width, optimisation variant) of the job
        fits = int(max(free - need.fixed, 0) // per_model) // max(len(worst.members), 1)
        hint = (f"set [training] models_per_batch ≤ {fits}" if fits >= 1 else
                "even one model does not fit: lower training.batch_size or eval_batch_size, or use a larger device")
        raise EtioInputError(
            f"{need.models} models of {worst.dataset} {worst.arch} width {max(worst.widths)} at once need about "
            f"{format_bytes(need.total)}, but {device} has {format_bytes(free)} available; {hint}")


def _threads_for(job: JobPlan, n_models: int, info, default: int) -> int:
    """One CPU thread for small jobs: their many tiny kernels lose more to thread synchronisation
    (badly so on a loaded machine) than they gain. Results do not depend on the thread count."""
    from etio.traces.models import count_params

    size = len(job.members) * n_models * count_params(job.arch, max(job.widths), info.num_classes, info.input_shape)
    return 1 if size < 2_000_000 else default


def _snapshots(job: JobPlan, cfg: ExperimentConfig, info, subsets, pool_x, pool_y, test_x, test_y, device):
    """Per snapshot epoch: (epoch, state(member) -> stacked state dict, train logits, test logits, robust),
    ``robust`` being the PGD accuracies ``([V, K], [V, K])`` on subsets and test set of a robust
    grid (:func:`etio.traces.robust.robust_accuracies`), else None.

    The job's models are trained ``training.models_per_batch`` at a time (all at once by default);
    with several chunks the snapshots are gathered on the CPU and joined once every chunk is done.
    """
    import torch

    from etio.traces.training import TrainJob, train_job

    k = len(subsets)
    per_batch = cfg.training.models_per_batch or k
    chunks = [list(range(i, min(i + per_batch, k))) for i in range(0, k, per_batch)]
    gathered: dict[int, list] = {}
    for rows in chunks:
        tjob = TrainJob(info, job.arch, job.members, torch.as_tensor(subsets[rows]), [r + 1 for r in rows],
                        list(job.epochs), cfg.training, cfg.seed)
        for snap in train_job(tjob, pool_x, pool_y, device):
            train_logits, test_logits = snap.outputs(pool_x, test_x, cfg.training.eval_batch_size)
            robust = None
            if cfg.is_robust:
                from etio.traces.robust import robust_accuracies

                robust = robust_accuracies(snap, pool_x, pool_y, test_x, test_y, cfg.training.eval_batch_size)
            if len(chunks) == 1:
                yield snap.epoch, snap.state, train_logits, test_logits, robust
                continue
            states = [{n: t.cpu() for n, t in snap.state(mi).items()} for mi in range(len(job.members))]
            gathered.setdefault(snap.epoch, []).append(
                (states, train_logits.cpu(), test_logits.cpu(), None if robust is None else [r.cpu() for r in robust]))
    for epoch, parts in sorted(gathered.items()):
        states = [{n: torch.cat([p[0][mi][n] for p in parts]) for n in parts[0][0][mi]} for mi in range(len(job.members))]
        train_logits = torch.cat([p[1] for p in parts], dim=1).to(device)
        test_logits = torch.cat([p[2] for p in parts], dim=1).to(device)
        robust = None if parts[0][3] is None else tuple(torch.cat([p[3][i] for p in parts], dim=1) for i in (0, 1))
        yield epoch, states.__getitem__, train_logits, test_logits, robust


def merge_stores(dirs: list[Path], out: Path) -> TraceStore:
    """Pool trace stores into a new store at ``out`` (built aside, renamed into place).

    The stores may be shards of one config, or stores of different configs made on other
    machines at other times (e.g. one per dataset of the paper's study), as long as their
    training settings agree (:meth:`ExperimentConfig.training_settings`): otherwise the
    first difference is named. Every store must be complete (:func:`check_complete`; sharded
    runs: every shard 1/N … N/N present, each with all of its configurations), stores holding
    attack results must have been attacked with the same ``[attacks]`` settings, and a
    configuration present in several stores must carry the same attack results in each (it is
    then copied once); otherwise the merge is refused, whatever the order of the stores.
    """
    from etio.core.outputs import check_output_dir, output_dir
    from etio.traces.config import NON_TRAINING_KEYS

    if not dirs:
        raise EtioInputError("traces merge: give at least one store directory")
    out = Path(out)
    # A store keeps changing after the merge (resumed training, attack results), so an existing
    # one is never replaced: --out must be new or empty. Checked first: it costs nothing.
    if out.is_dir() and any(out.iterdir()):
        raise EtioInputError(f"--out {out} exists and is not empty; `etio traces merge` writes a new store")
    check_output_dir(out, "traces merge", inputs=dirs)
    out = Path(out)
    check_output_dir(out, "traces merge", inputs=dirs)     # a file where the store should go: refused first
    stores = [open_store(d) for d in dirs]
    configs = [st.experiment() for st in stores]
    reference = configs[0].training_settings()
    for st, cfg in zip(stores[1:], configs[1:]):
        difference = _first_difference(reference, cfg.training_settings())
        if difference:
            raise EtioInputError(f"{st.root} and {stores[0].root} were trained with different settings "
                                 f"({difference}); their traces cannot be pooled")
    _check_data_subsets(stores, configs)
    _check_shards(stores, configs, NON_TRAINING_KEYS)
    for st in stores:
        if len(stores) == 1 or not _sharded(st):   # a shard's own completeness: _check_shards
            check_complete(st, "traces merge")
    _check_attack_results(stores)
    same = all(st.meta["config"] == stores[0].meta["config"] for st in stores)
    pooled_config = stores[0].meta["config"] if same else pooled_study(configs).to_dict()
    meta = {k: v for k, v in stores[0].meta.items() if k not in ("config", "shards")}
    meta.update(config=pooled_config, shards=["1/1"],
                merged_keys=sorted(set().union(*(st.keys() for st in stores))),
                pooled_from=[{"store": str(st.root), "config": st.meta["config"].get("name"),
                              "shards": st.meta.get("shards", [])} for st in stores])
    with output_dir(out, "traces merge", inputs=dirs) as staging:
        from etio.core.provenance import write_json

        write_json(staging / "store.json", meta)
        for st in stores:
            if (st.root / "splits").exists():
                shutil.copytree(st.root / "splits", staging / "splits", dirs_exist_ok=True)
            for key in st.keys():
                dest = staging / "configs" / key
                if dest.exists():
                    continue
                problem = st.damage(key)
                if problem is not None:   # left for `etio traces` on the merged store to recompute
                    warnings.warn(f"{problem}; configuration {key} is not merged", stacklevel=2)
                    continue
                shutil.copytree(st.config_dir(key), dest, ignore=shutil.ignore_patterns(".*"))
        open_store(staging).write_traces_csv({"merged_from": [str(d) for d in dirs]})
    return open_store(out)


def expected_keys(store: TraceStore) -> set[str]:
    """The configurations ``store`` holds once its training finished: those of its config's
    shards it was run for (all of them when unsharded), or for a merged store those merged."""
    if "merged_keys" in store.meta:
        return set(store.meta["merged_keys"])
    cfg = store.experiment()
    shards = [parse_shard(label) for label in store.meta.get("shards") or ["1/1"]]
    return {c.key for shard in shards for job in shard_jobs(cfg, shard) for c in job.configs.values()}


def check_complete(store: TraceStore, command: str) -> list[str]:
    """The one completeness check of every reader of a store (``traces merge``, ``attack``, the
    attack benchmark): a store whose training stopped part-way (killed, failed, a shard missing
    configurations) is refused, naming how much is there and how to resume. Returns the keys."""
    expected = expected_keys(store)
    have = store.keys()
    missing = sorted(expected - set(have))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise EtioInputError(f"{store.root} is incomplete: {len(expected) - len(missing)} of {len(expected)} "
                             f"configurations are stored ({missing[0]}{more} missing: its training stopped part-way); "
                             f"resume it with `etio traces --config CONFIG --out {store.root}` before `etio {command}`")
    return have


def _check_attack_results(stores: list[TraceStore]) -> None:
    """Stores pooled with attack results must have been attacked alike: the same ``[attacks]``
    settings, and the same result for a configuration held by several stores (never the first one's)."""
    attacked = [st for st in stores if any((st.root / "configs").glob("*/attacks/*.json"))]
    for st in attacked[1:]:
        difference = _first_difference(attacked[0].meta["config"].get("attacks") or {},
                                       st.meta["config"].get("attacks") or {}, "attacks")
        if difference:
            raise EtioInputError(f"{attacked[0].root} and {st.root} were attacked with different settings "
                                 f"({difference}); their attack results cannot be pooled: rerun `etio attack` on one "
                                 f"with the other's [attacks] table")
    seen: dict[str, TraceStore] = {}
    for st in stores:
        for key in st.keys():
            first = seen.setdefault(key, st)
            if first is st:
                continue
            for name in sorted(set(first.attack_results(key)) | set(st.attack_results(key))):
                mine, theirs = first.read_attack(key, name), st.read_attack(key, name)
                if mine is not None and theirs is not None and mine != theirs:
                    raise EtioInputError(f"configuration {key} is in {first.root} and {st.root} with different "
                                         f"{name} results; merge one of them only")


def _first_difference(a, b, path: str = "") -> str | None:
    """The first setting where ``a`` and ``b`` differ, as 'name: A vs B'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def _check_data_subsets(stores, configs) -> None:
    """The same dataset must have been cut to the same training pool and test set everywhere."""
    seen: dict[str, tuple] = {}
    for st, cfg in zip(stores, configs):
        for part in cfg.dataset_grids():
            sizes = (part.pool_size, part.test_size)
            first = seen.setdefault(part.dataset, (st.root, sizes))
            if first[1] != sizes:
                raise EtioInputError(f"{st.root} and {first[0]} use different images of {part.dataset} "
                                     f"(pool_size, test_size {sizes} vs {first[1]}); their traces cannot be pooled")


def _sharded(store: TraceStore) -> bool:
    return any(not label.endswith("/1") for label in store.meta.get("shards") or ["1/1"])


def _check_shards(stores, configs, non_training_keys) -> None:
    """Every shard of each sharded config is present, and each shard holds all of its configurations."""
    groups: dict[str, list] = {}
    for st, cfg in zip(stores, configs):
        trained = {k: v for k, v in st.meta["config"].items() if k not in non_training_keys}
        groups.setdefault(repr(sorted(trained.items())), []).append((st, cfg))
    for members in groups.values():
        labels = {label: st for st, _ in members for label in st.meta.get("shards", ["1/1"])}
        counts = {int(label.split("/")[1]) for label in labels}
        if len(counts) > 1:
            raise EtioInputError(f"stores of config {members[0][1].name!r} were sharded differently "
                                 f"({', '.join(sorted(labels))}); merge shards of one numbering")
        n = counts.pop()
        if n > 1 and not any(label == "1/1" for label in labels):
            missing = [f"{i}/{n}" for i in range(1, n + 1) if f"{i}/{n}" not in labels]
            if missing:
                raise EtioInputError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of config "
                                     f"{members[0][1].name!r} missing: merge needs all {n} shards")
            cfg = members[0][1]
            have = set().union(*(st.keys() for st, _ in members))
            for i in range(n):
                expected = {c.key for job in shard_jobs(cfg, (i, n)) for c in job.configs.values()}
                absent = expected - have
                if absent:
                    raise EtioInputError(f"shard {i + 1}/{n} of config {cfg.name!r} is incomplete ({len(absent)} of "
                                         f"{len(expected)} configurations missing, e.g. {sorted(absent)[0]}); "
                                         f"rerun it with --shard {i + 1}/{n}")


def pooled_study(configs: list[ExperimentConfig]) -> ExperimentConfig:
    """One multi-dataset config covering every configuration of ``configs`` (same training settings).

    Per dataset each grid axis is the union of the values (widths per architecture); the
    ``[attacks]`` / ``[analysis]`` tables are the first config's.
    """
    from dataclasses import replace

    from etio.traces.config import DatasetGrid

    merged: dict[str, DatasetGrid] = {}
    for cfg in configs:
        for part in cfg.dataset_grids():
            g = part.grid
            widths = g["width"] if isinstance(g["width"], dict) else {a: list(g["width"]) for a in g["arch"]}
            if part.dataset not in merged:
                merged[part.dataset] = DatasetGrid(part.dataset, {**g, "width": {a: list(w) for a, w in widths.items()}},
                                                   part.pool_size, part.test_size)
                continue
            old = merged[part.dataset].grid
            union = {k: list(dict.fromkeys([*old[k], *g[k]])) for k in ("arch", "loss", "weight_decay", "scheduler")}
            for k in ("train_size", "epochs"):
                union[k] = sorted(set(old[k]) | set(g[k]))
            union["width"] = {a: sorted(set(old["width"].get(a, [])) | set(widths.get(a, []))) for a in union["arch"]}
            merged[part.dataset] = replace(merged[part.dataset], grid=union)
    first = configs[0]
    return replace(first, name="pooled", description="pooled from " + ", ".join(c.name for c in configs),
                   dataset="+".join(merged), grid={}, datasets=merged)
