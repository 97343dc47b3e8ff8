"""Training (paper §5.1): the models of a configuration trained together, in one batch.

Each model is trained exactly as if alone: SGD with momentum, weight decay, optional
``StepLR(step, ×decay)`` stepped once per epoch, mini-batches of its own subset in a seeded
order; CE on logits, or MSE between the softmax and the one-hot label (mean over
batch × classes, as ``nn.MSELoss``). Doing it for many models at once changes nothing in
the mathematics, only the speed:

- parameters of all models are stacked on a leading dimension; the loss is the *sum* of the
  models' own mean losses, so the gradient of each slice is that model's own gradient;
- the SGD update is written out with a learning rate and a weight decay per model, so models
  with different optimisation settings (loss, weight decay, scheduler) share one batch;
- the architecture's file (:mod:`etio.traces.models`) says how its models run at once: the
  one-hidden-layer MLP as a batched matmul, where several widths share a batch by zero-padding
  the hidden layer to the widest (the padded units stay exactly zero); the convolutional
  networks as one channel-stacked network (grouped convolutions, one BatchNorm over every
  model's channels: :mod:`etio.traces.models._stacked`); an architecture without a stacked
  form goes through ``torch.func.functional_call`` under ``vmap``.

Seeds (the authors did not seed training): model id ``k`` of a configuration is initialised
from ``derive_seed(seed, "init", arch, width, classes, k)`` and visits its subset in the
order drawn from ``derive_seed(seed, "order", dataset, s, k)``. Configurations that differ
only in loss, weight decay, scheduler or epochs therefore start from the same models and see
the same batches; the epoch-E model of a longer run *is* the E-epoch configuration (StepLR
does not depend on the total number of epochs), so each run is snapshotted at every epoch
count of the grid.

Robust training (``Variant.adv_eps`` > 0, :mod:`etio.traces.robust`): each mini-batch is
replaced, model by model, by its PGD adversarial examples against the model's current
parameters (Madry et al.'s inner maximisation: random start, ``training.pgd_steps`` signed
gradient steps of ``pgd_step_size`` · ε on the model's own training loss); the models of a job
still share one batched forward and backward, now on per-model inputs. The random start of
model id ``k`` is drawn from ``derive_seed(seed, "pgd-start", dataset, s, k)``, so batched and
one-at-a-time training see the same starts; a member with ε = 0 in a robust job sees its
clean batch and trains exactly as natural training does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from etio.traces.config import Training, Variant  # noqa: F401 - Variant is read from here too
from etio.traces.datasets import DatasetInfo, augment_batch
from etio.traces.models import build_model, get_model


def resolve_device(device: str | None) -> str:
    """``cpu``/``cuda`` as asked, or CUDA when available for ``None``; a clear error otherwise."""
    from etio.core.errors import EtioInputError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise EtioInputError(f"--device {device!r}: use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise EtioInputError("--device cuda: no CUDA device is available")
    return device


def derive_seed(*parts) -> int:
    """A 63-bit seed from a tuple of values (stable across runs and platforms)."""
    digest = hashlib.sha256(repr(tuple(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass
class TrainJob:
    """Models trained together: ``members`` (width, variant) × ``len(model_ids)`` models each."""

    info: DatasetInfo
    arch: str
    members: list[tuple[int, Variant]]
    subsets: torch.Tensor                 # int64 [K, s], row i = subset of model_ids[i]
    model_ids: list[int]                  # 1-based ids
    snapshot_epochs: list[int]
    training: Training
    seed: int
    devices: str = "cpu"

    @property
    def max_epochs(self) -> int:
        return max(self.snapshot_epochs)


@dataclass
class Snapshot:
    """The models of a job after ``epoch`` epochs."""

    epoch: int
    job: TrainJob
    params: dict[str, torch.Tensor]       # stacked [V·K, ...] (MLP: padded)
    buffers: dict[str, torch.Tensor]
    forward: Callable
    widths: list[int] = field(default_factory=list)

    def state(self, member: int) -> dict[str, torch.Tensor]:
        """Stacked state dict ``{name: [K, ...]}`` of member ``member`` (true width)."""
        k = len(self.job.model_ids)
        sl = slice(member * k, (member + 1) * k)
        out = {n: t[sl].detach().clone() for n, t in {**self.params, **self.buffers}.items()}
        return get_model(self.job.arch).member_state(out, self.job.members[member][0])

    @torch.no_grad()
    def outputs(self, pool_x, test_x, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of every model on its own subset ``[V, K, s, C]`` and on the test set ``[V, K, T, C]``."""
        v, k = len(self.job.members), len(self.job.model_ids)
        subsets = self.job.subsets.to(pool_x.device)
        train = torch.cat([self.forward(self.params, self.buffers, pool_x[subsets[:, i:i + chunk]],
                                        train=False) for i in range(0, subsets.shape[1], chunk)], dim=1)
        test = torch.cat([self.forward(self.params, self.buffers,
                                       test_x[i:i + chunk].unsqueeze(0).expand(k, *test_x[i:i + chunk].shape),
                                       train=False) for i in range(0, len(test_x), chunk)], dim=1)
        return train.view(v, k, *train.shape[-2:]), test.view(v, k, *test.shape[-2:])


def init_state(arch: str, width: int, info: DatasetInfo, seed: int, model_id: int) -> dict[str, torch.Tensor]:
    """The initial state dict of model ``model_id`` at ``width`` (seeded, independent of batching)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init", arch, width, info.num_classes, model_id))
        model = build_model(arch, width, info.num_classes, info.input_shape)
    return {k: v.detach() for k, v in model.state_dict().items()}


def batch_orders(info: DatasetInfo, s: int, seed: int, model_id: int, epochs: int):
    """Per epoch: (permutation of the subset, crop corners, flips) of model ``model_id``."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "order", info.name, s, model_id))
    for _ in range(epochs):
        perm = torch.randperm(s, generator=gen)
        if info.augment:
            crops = torch.randint(0, 9, (s, 2), generator=gen)
            flips = torch.rand(s, generator=gen) < 0.5
        else:
            crops = flips = None
        yield perm, crops, flips


def lr_factor(epoch: int, scheduler: bool, training: Training) -> float:
    """StepLR(step_size, gamma) after ``epoch`` completed epochs (1 without scheduler)."""
    return training.lr_decay ** (epoch // training.lr_step_size) if scheduler else 1.0


def _build_forward(job: TrainJob, device):
    """(params, buffers, forward) for the stacked members of ``job``."""
    inits = {w: [init_state(job.arch, w, job.info, job.seed, mid) for mid in job.model_ids]
             for w in sorted({w for w, _ in job.members})}
    return get_model(job.arch).train_forward([inits[w] for w, _ in job.members], [w for w, _ in job.members],
                                             job.info.num_classes, job.info.input_shape, device)


def train_job(job: TrainJob, pool_x: torch.Tensor, pool_y: torch.Tensor, device="cpu") -> Iterator[Snapshot]:
    """Train the job's models; yield a :class:`Snapshot` after each epoch of ``snapshot_epochs``."""
    device = torch.device(device)
    if len({w for w, _ in job.members}) > 1 and not get_model(job.arch).mixed_widths:
        raise ValueError(f"{job.arch} members of different widths cannot share a job")
    pool_x, pool_y = pool_x.to(device), pool_y.to(device)
    subsets = job.subsets.to(device)
    v, k = len(job.members), len(job.model_ids)
    s = subsets.shape[1]
    c = job.info.num_classes
    t = job.training
    params, buffers, forward = _build_forward(job, device)
    names = list(params)
    tensors = [params[n].requires_grad_(True) for n in names]
    momenta = [torch.zeros_like(p) for p in tensors]

    variants = [var for _, var in job.members]
    is_ce = torch.tensor([var.loss == "ce" for var in variants], device=device)
    any_ce, any_mse = bool(is_ce.any()), not bool(is_ce.all())
    per_model = lambda vals: torch.tensor(vals, dtype=torch.float32, device=device).repeat_interleave(k)  # noqa: E731
    wd = per_model([var.weight_decay for var in variants])
    shape = lambda p: (-1,) + (1,) * (p.dim() - 1)  # noqa: E731

    orders = [batch_orders(job.info, s, job.seed, mid, job.max_epochs) for mid in job.model_ids]
    snapshots = set(job.snapshot_epochs)
    robust = _RobustBatches(job, device) if any(var.adv_eps > 0 for var in variants) else None
    # Every step's inputs are gathered into this one buffer: gathered into new memory, a step's batch of
    # every model (180 models x 128 images of 28x28 on the paper's MNIST grid: 72 MB) was mapped and
    # page-faulted afresh by the allocator at each step, about half of such a job's training loop.
    batch_rows = torch.empty(k * min(s, t.batch_size), *pool_x.shape[1:], dtype=pool_x.dtype, device=device)
    for epoch in range(job.max_epochs):
        lr = per_model([var.lr * lr_factor(epoch, var.scheduler, t) for var in variants])
        drawn = [next(o) for o in orders]
        perm = torch.stack([d[0] for d in drawn]).to(device)
        order = subsets.gather(1, perm)                                   # pool rows, in visiting order
        if job.info.augment:
            crops = torch.stack([d[1] for d in drawn]).to(device)
            flips = torch.stack([d[2] for d in drawn]).to(device)
        for start in range(0, s, t.batch_size):
            idx = order[:, start:start + t.batch_size]                    # [K, b]
            xb = torch.index_select(pool_x, 0, idx.reshape(-1), out=batch_rows[:idx.numel()]) \
                .view(*idx.shape, *pool_x.shape[1:])
            yb = pool_y[idx]
            if job.info.augment:
                xb = augment_batch(xb, crops[:, start:start + t.batch_size], flips[:, start:start + t.batch_size],
                                   job.info)
            if robust is None:
                logits = forward(dict(zip(names, tensors)), buffers, xb).view(v, k, -1, c)
            else:
                x_adv = robust.examples(forward, tensors, names, buffers, xb, yb)
                logits = forward(dict(zip(names, tensors)), buffers, x_adv, each=True).view(v, k, -1, c)
            y = yb.unsqueeze(0).expand(v, *yb.shape)
            losses = []
            if any_ce:
                losses.append(F.cross_entropy(logits.reshape(-1, c), y.reshape(-1), reduction="none")
                              .view(v, k, -1).mean(-1))
            if any_mse:
                onehot = F.one_hot(y, c).to(logits.dtype)
                losses.append((logits.softmax(-1) - onehot).pow(2).mean((-1, -2)))
            loss = losses[0] if len(losses) == 1 else torch.where(is_ce[:, None], losses[0], losses[1])
            grads = torch.autograd.grad(loss.sum(), tensors)
            with torch.no_grad():
                for p, g, m in zip(tensors, grads, momenta):
                    # torch.optim.SGD: d = g + wd·p; m = μ·m + d; p -= lr·m (first m = d since m starts at 0)
                    m.mul_(t.momentum).add_(g).addcmul_(wd.view(shape(p)), p)
                    p.addcmul_(lr.view(shape(p)), m, value=-1.0)
        if epoch + 1 in snapshots:
            yield Snapshot(epoch + 1, job, {n: x.detach() for n, x in zip(names, tensors)}, buffers, forward)


class _RobustBatches:
    """The PGD inner maximisation of a job's mini-batches (members with ε = 0 keep their batch)."""

    def __init__(self, job: TrainJob, device):
        from etio.traces.robust import pixel_box, start_generator

        v, k = len(job.members), len(job.model_ids)
        self.v, self.k = v, k
        self.box = pixel_box(job.info).to(device)
        self.eps = torch.tensor([var.adv_eps for _, var in job.members], device=device).repeat_interleave(k)
        self.is_ce = torch.tensor([var.loss == "ce" for _, var in job.members], device=device).repeat_interleave(k)
        self.training = job.training
        self.generators = [start_generator(job.seed, job.info, job.subsets.shape[1], mid) for mid in job.model_ids]
        self.device = device

    def examples(self, forward, tensors, names, buffers, xb, yb):
        """Adversarial examples ``[V·K, b, ...]`` of the batch ``xb [K, b, ...]`` for every member."""
        from etio.traces.robust import pgd, uniform_start

        v, k = self.v, self.k
        # One start per model id, shared by its V members (each scales it by its own ε): the
        # stream depends on the model id only, as for a model trained alone.
        start = torch.stack([uniform_start(g, xb.shape[1:]) for g in self.generators]).to(self.device)
        expand = lambda t: t.unsqueeze(0).expand(v, *t.shape).reshape(v * k, *t.shape[1:])  # noqa: E731
        frozen = {n: t.detach() for n, t in zip(names, tensors)}
        t = self.training
        return pgd(lambda xe: forward(frozen, buffers, xe, train=False, each=True), expand(xb), expand(yb),
                   self.eps, t.pgd_step_size, t.pgd_steps, self.box, expand(start), is_ce=self.is_ce)


def train_one(arch: str, width: int, info: DatasetInfo, variant: Variant, subset: torch.Tensor, model_id: int,
              epochs: int, training: Training, seed: int, pool_x, pool_y, device=None) -> torch.nn.Module:
    """Reference: one model, plain ``nn.Module`` + ``torch.optim.SGD`` + ``StepLR`` (same seeds)."""
    model = build_model(arch, width, info.num_classes, info.input_shape)
    model.load_state_dict(init_state(arch, width, info, seed, model_id))
    if device is not None:
        model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=variant.lr, momentum=training.momentum,
                          weight_decay=variant.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, training.lr_step_size, training.lr_decay) if variant.scheduler else None
    s = len(subset)
    if variant.adv_eps > 0:
        from etio.traces.robust import pgd, pixel_box, start_generator, uniform_start

        box, starts = pixel_box(info), start_generator(seed, info, s, model_id)
        is_ce = torch.tensor([variant.loss == "ce"])
    for perm, crops, flips in batch_orders(info, s, seed, model_id, epochs):
        model.train()
        order = subset[perm.to(subset.device)]
        if info.augment:
            crops, flips = crops.to(subset.device), flips.to(subset.device)
        for start in range(0, s, training.batch_size):
            idx = order[start:start + training.batch_size]
            xb, yb = pool_x[idx], pool_y[idx]
            if info.augment:
                xb = augment_batch(xb, crops[start:start + training.batch_size],
                                   flips[start:start + training.batch_size], info)
            if variant.adv_eps > 0:
                model.eval()
                noise = uniform_start(starts, xb.shape)
                xb = pgd(lambda xe: model(xe[0]).unsqueeze(0), xb.unsqueeze(0), yb.unsqueeze(0),
                         torch.tensor([variant.adv_eps]), training.pgd_step_size, training.pgd_steps, box,
                         noise.unsqueeze(0), is_ce=is_ce)[0]
                model.train()
            out = model(xb)
            if variant.loss == "ce":
                loss = F.cross_entropy(out, yb)
            else:
                loss = F.mse_loss(out.softmax(-1), F.one_hot(yb, info.num_classes).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
    return model.eval()
