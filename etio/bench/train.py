"""``etio bench train`` and ``etio bench robust-train``: models per second, one at a time vs batched."""

from __future__ import annotations

import time

from etio.traces.stage import group_widths


def train(epochs: int = 30, device: str = "cpu", arch: str | None = None, width: int | None = None,
                models: int = 10) -> dict:
    """Models per second, one at a time (``nn.Module`` + ``torch.optim``) vs batched (one job),
    both after an untimed warm-up.

    ``arch`` (default: the paper's MNIST architecture, the MLP). An architecture whose widths
    share a job (the MLP): the digits grid (n = 12 models, widths 16–256, padded into width groups).
    Conv architectures: ``models`` models at ``width`` (default: the paper's smallest) on random
    CIFAR-10-shaped images (32 per model, batch 16), with the CIFAR augmentation.
    """
    import dataclasses

    import torch

    from etio.traces.config import Training
    from etio.traces.datasets import DATASETS, disjoint_split, load
    from etio.traces.models import PAPER_WIDTHS, get_model, paper_architecture
    from etio.traces.training import TrainJob, Variant, train_job, train_one

    arch = arch or paper_architecture("mnist")
    variant = Variant("ce", 5e-4, True, 0.1)

    def sync():
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    if get_model(arch).mixed_widths:
        data = load("digits")
        info = data.info
        training = Training(batch_size=32, lr_step_size=20)
        subsets = torch.as_tensor(disjoint_split(info.pool_size, 50, 1, 0))           # n = 12 models
        widths = [width] if width else [16, 32, 64, 128, 256]
        px, py = data.pool_x, data.pool_y
        groups = group_widths(widths)
    else:
        info = dataclasses.replace(DATASETS["cifar10"], pool_size=32 * models)
        gen = torch.Generator().manual_seed(0)
        px = torch.randn(info.pool_size, 3, 32, 32, generator=gen)
        py = torch.randint(0, 10, (info.pool_size,), generator=gen)
        training = Training(batch_size=16, lr_step_size=20)
        subsets = torch.as_tensor(disjoint_split(info.pool_size, 32, 1, 0))
        widths = [width or PAPER_WIDTHS.get(arch, [1])[0]]                    # wide_resnet: scale s = 1
        groups = [(w,) for w in widths]
    ids = list(range(1, len(subsets) + 1))
    pxd, pyd = px.to(device), py.to(device)
    # warm-up, untimed: the first passes of a process pay for the allocator, the thread pool and
    # the convolution primitives, which would otherwise be charged to whichever side runs first
    train_one(arch, widths[0], info, variant, subsets[0].to(device), ids[0], 1, training, 0, pxd, pyd, device=device)
    for snap in train_job(TrainJob(info, arch, [(w, variant) for w in groups[0]], subsets, ids, [1], training, 0),
                          pxd, pyd, device):
        next(iter(snap.params.values())).sum().item()
    sync()
    t0 = time.perf_counter()
    for w in widths:
        for j, mid in enumerate(ids):
            model = train_one(arch, w, info, variant, subsets[j].to(device), mid, epochs, training, 0, pxd, pyd,
                              device=device)
    sync()
    t_single = time.perf_counter() - t0
    n_models = len(widths) * len(ids)
    t0 = time.perf_counter()
    for group in groups:
        job = TrainJob(info, arch, [(w, variant) for w in group], subsets, ids, [epochs], training, 0)
        for snap in train_job(job, pxd, pyd, device):
            next(iter(snap.params.values())).sum().item()
    sync()
    t_batched = time.perf_counter() - t0
    del model
    return {"arch": arch, "widths": widths, "models": n_models, "epochs": epochs, "device": str(device),
            "single_models_per_s": n_models / t_single, "batched_models_per_s": n_models / t_batched,
            "speedup": t_single / t_batched}


def robust_train(epochs: int = 5, device: str = "cpu") -> dict:
    """PGD training, models per second: the digits MLPs (n = 12 per budget, widths 16–64, ε ∈ {0.05, 0.1, 0.2})
    one at a time (plain ``nn.Module`` + per-model PGD) vs batched in one job."""
    import torch

    from etio.traces.config import Training
    from etio.traces.datasets import disjoint_split, load
    from etio.traces.models import paper_architecture
    from etio.traces.training import TrainJob, Variant, train_job, train_one

    arch = paper_architecture("mnist")            # the MLP
    data = load("digits")
    info = data.info
    training = Training(batch_size=32, lr_step_size=20)
    subsets = torch.as_tensor(disjoint_split(info.pool_size, 50, 1, 0))           # n = 12 models
    widths = [16, 64]
    variants = [Variant("ce", 5e-4, False, 0.1, eps) for eps in (0.05, 0.1, 0.2)]
    ids = list(range(1, len(subsets) + 1))
    px, py = data.pool_x.to(device), data.pool_y.to(device)
    t0 = time.time()
    for w in widths:
        for variant in variants:
            for j, mid in enumerate(ids):
                train_one(arch, w, info, variant, subsets[j], mid, epochs, training, 0, data.pool_x,
                          data.pool_y)
    t_single = time.time() - t0
    n_models = len(widths) * len(variants) * len(ids)
    t0 = time.time()
    job = TrainJob(info, arch, [(w, v) for w in widths for v in variants], subsets, ids, [epochs], training, 0)
    for snap in train_job(job, px, py, device):
        snap.params["hidden.weight"].sum().item()
    t_batched = time.time() - t0
    return {"models": n_models, "epochs": epochs, "pgd_steps": training.pgd_steps,
            "single_models_per_s": n_models / t_single, "batched_models_per_s": n_models / t_batched,
            "speedup": t_single / t_batched}
