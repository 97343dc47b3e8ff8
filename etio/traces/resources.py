"""What a training job needs: memory of a batch of models (estimated) and seconds (calibrated).

Memory of one job on its device (the job's models are trained ``models_per_batch`` at a time):

- fixed: the dataset's training pool and test set as float32 tensors, and the logits of every
  model of the job on its subset and the test set (kept until the job's statistics are done);
- per model: parameters, gradients, momenta and one snapshot copy (4 × NumParams floats), the
  activations kept for the backward pass of a training batch (sum over layers of their output
  size, × ``batch_size``, × 2 for the autograd temporaries), and a forward pass over an
  evaluation chunk (3 × the largest layer output × ``eval_batch_size``).

Layer output sizes come from one forward pass on the meta device (no memory, no compute). The
estimate is meant to be on the safe side; on CUDA ``calibrate_training`` also measures the
peak, and ``etio plan`` prints both.

Seconds: ``calibrate_training`` times a few optimiser steps and an evaluation pass on random
data of the dataset's shape, for one model and for a batch of models; :func:`estimate_job_seconds`
scales them to a job (steps per epoch × epochs × chunks). A batched step costs a fixed part (the
operations' dispatch, the same for any number of models) plus a part per model, so the time of
``m`` models is the line through the two measurements, not ``m`` times the one-model time (which
overstated small, overhead-bound jobs several times over).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

from etio.traces.config import ExperimentConfig, Training
from etio.traces.datasets import DatasetInfo

FLOAT = 4


@dataclass(frozen=True)
class JobMemory:
    """Bytes of one job's batch of ``models`` models on its device."""

    models: int         # trained at once
    per_model: int
    fixed: int

    @property
    def total(self) -> int:
        return self.fixed + self.models * self.per_model


@functools.lru_cache(maxsize=None)
def layer_outputs(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(sum, max) over the model's modules of their output size per sample (meta device)."""
    import torch

    from etio.traces.models import build_model

    model = build_model(arch, width, num_classes, input_shape, device="meta").eval()
    sizes = []

    def hook(_module, _inp, out):
        if isinstance(out, torch.Tensor):
            sizes.append(out[0].numel())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.empty((2, *input_shape), device="meta"))
    for h in handles:
        h.remove()
    return sum(sizes), max(sizes)


def models_at_once(cfg: ExperimentConfig, job, info: DatasetInfo) -> tuple[int, int]:
    """(models trained together in one chunk, chunks) for ``job``."""
    k = cfg.repeats * (info.pool_size // job.train_size)
    per_batch = min(cfg.training.models_per_batch or k, k)
    return len(job.members) * per_batch, math.ceil(k / per_batch)


def job_memory(cfg: ExperimentConfig, job, info: DatasetInfo) -> JobMemory:
    from etio.traces.models import count_params

    t: Training = cfg.training
    width = max(job.widths)
    params = count_params(job.arch, width, info.num_classes, info.input_shape)
    act_sum, act_max = layer_outputs(job.arch, width, info.num_classes, tuple(info.input_shape))
    batch = min(t.batch_size, job.train_size)
    sample = math.prod(info.input_shape)
    # a step's inputs: with several variants, each model's batch is copied for its own product
    inputs = sample * batch if len(job.members) > 1 else 0
    per_model = FLOAT * (4 * params + 2 * act_sum * batch + inputs
                         + 3 * act_max * min(t.eval_batch_size, info.test_size))
    k = cfg.repeats * (info.pool_size // job.train_size)
    data = FLOAT * sample * (info.pool_size + info.test_size) + 8 * (info.pool_size + info.test_size)
    logits = FLOAT * len(job.members) * k * (job.train_size + info.test_size) * info.num_classes
    models, _ = models_at_once(cfg, job, info)
    return JobMemory(models=models, per_model=per_model, fixed=data + logits)


def available_memory(device: str) -> int | None:
    """Bytes free on ``device`` now (CUDA: free device memory; CPU: MemAvailable), or None when unknown."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass(frozen=True)
class Calibration:
    """Measured on this device: one optimiser step and one evaluation pass, of one model and of
    ``models`` models at once."""

    dataset: str
    arch: str
    width: int
    models: int
    batch_size: int
    step_s: float                 # one optimiser step of all ``models`` models
    eval_s_per_model_point: float  # forward pass of all ``models`` models, per model and evaluated point
    peak_bytes: int | None        # measured peak device memory (CUDA only)
    device: str
    step_s_one: float | None = None   # one optimiser step of a single model (None: not measured)
    eval_s_one: float | None = None   # forward pass of a single model, per evaluated point

    def step_seconds(self, models: int) -> float:
        """One optimiser step of ``models`` models at once: the line through the measurements."""
        return _through(self.step_s_one, self.step_s, self.models, models)

    def eval_seconds(self, models: int) -> float:
        """One evaluated point through ``models`` models at once."""
        return _through(self.eval_s_one, self.eval_s_per_model_point * self.models, self.models, models)


def _through(at_one: float | None, at_n: float, n: int, m: int) -> float:
    """Seconds for ``m`` from the seconds for 1 and for ``n``: fixed + per-model part, neither
    negative; proportional to ``m`` when only one measurement exists."""
    if at_one is None or n <= 1:
        return at_n * m / n
    per_model = max(0.0, (at_n - at_one) / (n - 1))
    fixed = max(0.0, at_one - per_model)
    return fixed + per_model * m


#: Epochs of ``steps`` steps timed after the warm-up epoch; a step's time is the fastest epoch's.
TIMED_EPOCHS = 3
#: The most pool rows a calibration draws its models' subsets from (the dataset's pool when smaller).
CALIBRATION_POOL_ROWS = 60_000


def calibrate_training(info: DatasetInfo, arch: str, width: int, models: int, training: Training, device: str,
                       steps: int = 2) -> Calibration:
    """Time ``steps`` optimiser steps (after an epoch of warm-up) and an evaluation pass on random
    data, for ``models`` models at once and, when ``models`` > 1, for one."""
    import torch

    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    # A pool of the dataset's size (one for both timings): a step gathers its models' batches from random
    # rows of the whole pool, as training does (on a 60 000-image pool that gather is a large part of a
    # step; from a pool of a few batches it is all in cache).
    gen = torch.Generator().manual_seed(0)
    rows = max(training.batch_size * steps, min(info.pool_size, CALIBRATION_POOL_ROWS))
    pool = (torch.randn(rows, *info.input_shape, generator=gen).to(device),
            torch.randint(0, info.num_classes, (rows,), generator=gen).to(device))
    step_s, eval_s = _time_batch(info, arch, width, models, training, device, steps, pool)
    peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    step_one, eval_one = _time_batch(info, arch, width, 1, training, device, steps, pool) if models > 1 \
        else (None, None)
    return Calibration(info.name, arch, width, models, training.batch_size, step_s, eval_s / models, peak,
                       str(device), step_s_one=step_one, eval_s_one=eval_one)


def _time_batch(info: DatasetInfo, arch: str, width: int, models: int, training: Training, device: str,
                steps: int, pool: tuple) -> tuple[float, float]:
    """(seconds of one optimiser step, seconds of one evaluated point) of ``models`` models at once, each
    trained on ``training.batch_size * steps`` random rows of ``pool`` (inputs, labels)."""
    from dataclasses import replace

    import torch

    from etio.traces.training import TrainJob, Variant, train_job

    cuda = str(device).startswith("cuda")
    b = training.batch_size
    gen = torch.Generator().manual_seed(1)
    pool_x, pool_y = pool
    subsets = torch.stack([torch.randperm(len(pool_x), generator=gen)[:b * steps] for _ in range(models)])
    job = TrainJob(replace(info, pool_size=len(pool_x)), arch, [(width, Variant("ce", 5e-4, True, training.lr))], subsets,
                   list(range(1, models + 1)), list(range(1, TIMED_EPOCHS + 2)), training, seed=0)
    marks = []
    snap = None
    for snap in train_job(job, pool_x, pool_y, device):
        if cuda:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())        # after epoch 1 (warm-up: steps steps), after each timed epoch
    # The fastest timed epoch: one epoch of a few steps is at the mercy of whatever else runs, and the plan
    # extrapolates the difference between the one-model and the many-model measurement to every model of
    # a job, so a slow outlier there became a tenfold estimate (training uses its threads: wall clock).
    step_s = min(b - a for a, b in zip(marks, marks[1:])) / steps
    n_eval = min(training.eval_batch_size, 256)
    test_x = torch.randn(n_eval, *info.input_shape, generator=gen).to(device)
    # The fastest of three passes (the first pays first-use costs; a busy machine slows some), on the
    # thread's CPU clock when torch runs one thread, as the attack stage's queries do.
    clock = time.thread_time if not cuda and torch.get_num_threads() == 1 else time.perf_counter
    eval_s = math.inf
    with torch.no_grad():
        for _ in range(3):
            start = clock()
            snap.forward(snap.params, snap.buffers, test_x.unsqueeze(0).expand(models, *test_x.shape), train=False)
            if cuda:
                torch.cuda.synchronize()
            eval_s = min(eval_s, clock() - start)
    return step_s, eval_s / n_eval


def estimate_job_seconds(cfg: ExperimentConfig, job, info: DatasetInfo, cal: Calibration) -> float:
    """Seconds for ``job`` from a calibration of the same architecture and width."""
    models, chunks = models_at_once(cfg, job, info)
    steps = math.ceil(job.train_size / cfg.training.batch_size)
    train = chunks * max(job.epochs) * steps * cal.step_seconds(models)
    # each snapshot evaluates every model on its subset and on the test set
    evaluated = chunks * len(job.epochs) * (job.train_size + info.test_size)
    return train + evaluated * cal.eval_seconds(models)
