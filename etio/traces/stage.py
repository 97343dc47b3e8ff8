"""Stage 1 of the pipeline (paper Fig. 4): config → trained models → trace store → traces.csv.

The grid of a config is cut into *jobs*: sets of configurations whose models are trained in
one batch (:mod:`etio.traces.training`). A job holds one architecture and one train size; its members
are every (width, loss, weight decay, scheduler) combination — widths grouped for the MLP,
one width and one optimisation variant per job otherwise — and it is snapshotted at every
epoch count of the grid. The plan depends on the config only, so a rerun, a shard on another
machine and an uninterrupted run all train every job with the same batch composition and get
the same numbers. Each configuration is written to the store as soon as its snapshot is
evaluated; jobs whose configurations are all stored are skipped.
"""

from __future__ import annotations

import itertools
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def members(self):
        return [(w, v) for w in self.widths for v in self.variants]

    @property
    def job_id(self) -> str:
        return f"{self.arch}-s{self.train_size}-w{'_'.join(map(str, self.widths))}-{len(self.variants)}v"


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
    from etio.traces.training import Variant

    g = cfg.grid
    epochs = tuple(g["epochs"])
    plans = []
    for arch in g["arch"]:
        widths = g["width"][arch] if isinstance(g["width"], dict) else g["width"]
        variants = [Variant(loss, wd, sched, cfg.training.lr_for(arch, loss))
                    for loss, wd, sched in itertools.product(g["loss"], g["weight_decay"], g["scheduler"])]
        if arch == "mlp_1hidden":
            width_groups, variant_groups = group_widths(widths), [tuple(variants)]
        else:
            width_groups, variant_groups = [(w,) for w in widths], [(v,) for v in variants]
        for s in g["train_size"]:
            for wg in width_groups:
                for vg in variant_groups:
                    members = [(w, v) for w in wg for v in vg]
                    configs = {(i, e): TrainConfig(cfg.dataset, arch, w, s, v.loss, v.weight_decay, e, v.scheduler, v.lr)
                               for i, (w, v) in enumerate(members) for e in epochs}
                    plans.append(JobPlan(arch, s, wg, vg, epochs, configs))
    return plans


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise EtioInputError(f"--shard {text!r} is not of the form i/N (e.g. 0/4)") from None
    if not (n >= 1 and 0 <= i < n):
        raise EtioInputError(f"--shard {text!r}: need 0 ≤ i < N")
    return i, n


def split_name(cfg: ExperimentConfig, s: int) -> str:
    return f"{cfg.dataset}-s{s}-N{cfg.repeats}-seed{cfg.seed}.npy"


def run_traces(cfg: ExperimentConfig, out: Path, device: str | None = None, shard: tuple[int, int] = (0, 1),
               data_dir: Path | None = None, progress: bool = True, echo=None) -> TraceStore:
    """Train every configuration of ``cfg`` (of this shard) not yet in the store at ``out``.

    ``device`` None: CUDA when available. Progress (:class:`etio.core.progress.StageProgress`): a
    bar on a terminal, plain lines otherwise or through ``echo`` (a print-like callable).
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"

    from etio.traces.centroid import centroid_distances
    from etio.traces.datasets import disjoint_split, load
    from etio.traces.generalization import generalization_stats
    from etio.traces.models import count_params

    data = load(cfg.dataset, data_dir)           # a missing dataset fails before anything is written
    check_store_dir(out)                         # a foreign directory is refused before the lock file appears
    with store_lock(Path(out), "etio traces"):   # a second writer of the store waits here
        store = create_store(out, cfg.to_dict(), data_dir)
        store.invalidate_damaged()               # verified before reuse: damaged configurations are recomputed
        info = data.info
        jobs = [j for i, j in enumerate(plan_jobs(cfg)) if i % shard[1] == shard[0]]
        for size in sorted({j.train_size for j in jobs}):   # verified (and rewritten if damaged) on every run
            store.write_split(split_name(cfg, size), disjoint_split(info.pool_size, size, cfg.repeats, cfg.seed))
        pending = [j for j in jobs if not all(store.is_done(c.key) for c in j.configs.values())]
        total = sum(len(j.configs) for j in jobs)
        done_before = total - sum(sum(not store.is_done(c.key) for c in j.configs.values()) for j in pending)
        started = time.time()
        default_threads = torch.get_num_threads()
        pool_x, pool_y = data.pool_x.to(device), data.pool_y.to(device)
        test_x, test_y = data.test_x.to(device), data.test_y.to(device)

        from etio.core.progress import StageProgress

        with StageProgress("traces", total, done=done_before, unit="configurations", echo=echo,
                           enabled=progress or echo is not None) as bar:
            for job in pending:
                s = job.train_size
                subsets = disjoint_split(info.pool_size, s, cfg.repeats, cfg.seed)
                n = info.pool_size // s
                subsets_dev = torch.as_tensor(subsets, device=device)
                if str(device) == "cpu":
                    torch.set_num_threads(_threads_for(job, len(subsets), info, default_threads))
                t0 = time.time()
                for epoch, states, train_logits, test_logits in _snapshots(job, cfg, info, subsets, pool_x, pool_y,
                                                                           test_x, device):
                    t_train = time.time() - t0
                    for mi, (width, variant) in enumerate(job.members):
                        conf: TrainConfig = job.configs[(mi, epoch)]
                        if store.is_done(conf.key):
                            continue
                        t1 = time.time()
                        stats = generalization_stats(variant.loss, train_logits[mi], test_logits[mi], subsets_dev,
                                                     pool_y, test_y, cfg.repeats, info.pool_size)
                        stats.update(centroid_distances(train_logits[mi], test_logits[mi], variant.loss))
                        record = ConfigRecord(
                            key=conf.key, identity=conf.identity(), dataset=cfg.dataset, arch=conf.arch,
                            width=conf.width, train_size=s, loss=conf.loss, n_repeats=cfg.repeats, models_per_repeat=n,
                            num_classes=info.num_classes, input_shape=tuple(info.input_shape),
                            num_params=count_params(conf.arch, conf.width, info.num_classes, info.input_shape),
                            split_file=split_name(cfg, s),
                            seeds={"split_seed": cfg.seed, "model_seed_base": cfg.seed},
                            timings={"job": job.job_id, "job_train_s_at_snapshot": round(t_train, 3),
                                     "stats_s": round(time.time() - t1, 4), "device": str(device)})
                        store.write_config(record, states(mi), stats)
                        bar.advance()
        torch.set_num_threads(default_threads)
        store.write_traces_csv({"device": str(device), "shard": f"{shard[0]}/{shard[1]}",
                                "torch_threads": default_threads,
                                "wall_s_this_run": round(time.time() - started, 2)})
    return store


def _threads_for(job: JobPlan, n_models: int, info, default: int) -> int:
    """One CPU thread for small jobs: their many tiny kernels lose more to thread synchronisation
    (badly so on a loaded machine) than they gain. Results do not depend on the thread count."""
    from etio.traces.models import count_params

    size = len(job.members) * n_models * count_params(job.arch, max(job.widths), info.num_classes, info.input_shape)
    return 1 if size < 2_000_000 else default


def _snapshots(job: JobPlan, cfg: ExperimentConfig, info, subsets, pool_x, pool_y, test_x, device):
    """Per snapshot epoch: (epoch, state(member) -> stacked state dict, train logits, test logits).

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
            if len(chunks) == 1:
                yield snap.epoch, snap.state, train_logits, test_logits
                continue
            states = [{n: t.cpu() for n, t in snap.state(mi).items()} for mi in range(len(job.members))]
            gathered.setdefault(snap.epoch, []).append((states, train_logits.cpu(), test_logits.cpu()))
    for epoch, parts in sorted(gathered.items()):
        states = [{n: torch.cat([p[0][mi][n] for p in parts]) for n in parts[0][0][mi]} for mi in range(len(job.members))]
        train_logits = torch.cat([p[1] for p in parts], dim=1).to(device)
        test_logits = torch.cat([p[2] for p in parts], dim=1).to(device)
        yield epoch, states.__getitem__, train_logits, test_logits




def merge_stores(dirs: list[Path], out: Path) -> TraceStore:
    """Merge shards of one config into a new store at ``out`` (built aside, renamed into place)."""
    from etio.core.outputs import check_output_dir, output_dir

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
    config = stores[0].meta["config"]
    for st in stores[1:]:
        if st.meta["config"] != config:
            raise EtioInputError(f"{st.root} was made from a different config than {stores[0].root}; cannot merge")
    with output_dir(out, "traces merge", inputs=dirs) as staging:
        shutil.copy2(stores[0].root / "store.json", staging / "store.json")
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


def bench_train(epochs: int = 30, device: str = "cpu") -> dict:
    """Models per second: the digits MLP grid (n = 12, widths 16–256) one at a time vs batched."""
    import torch

    from etio.traces.config import Training
    from etio.traces.datasets import disjoint_split, load
    from etio.traces.training import TrainJob, Variant, train_job, train_one

    data = load("digits")
    info = data.info
    training = Training(batch_size=32, lr_step_size=20)
    subsets = torch.as_tensor(disjoint_split(info.pool_size, 50, 1, 0))           # n = 12 models
    widths = [16, 32, 64, 128, 256]
    variant = Variant("ce", 5e-4, True, 0.1)
    ids = list(range(1, len(subsets) + 1))
    px, py = data.pool_x.to(device), data.pool_y.to(device)
    t0 = time.time()
    for w in widths:
        for j, mid in enumerate(ids):
            train_one("mlp_1hidden", w, info, variant, subsets[j], mid, epochs, training, 0, data.pool_x, data.pool_y)
    t_single = time.time() - t0
    n_models = len(widths) * len(ids)
    t0 = time.time()
    for group in group_widths(widths):
        job = TrainJob(info, "mlp_1hidden", [(w, variant) for w in group], subsets, ids, [epochs], training, 0)
        for snap in train_job(job, px, py, device):
            snap.params["hidden.weight"].sum().item()
    t_batched = time.time() - t0
    return {"models": n_models, "epochs": epochs, "single_models_per_s": n_models / t_single,
            "batched_models_per_s": n_models / t_batched, "speedup": t_single / t_batched}
