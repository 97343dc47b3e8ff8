"""PGD adversarial examples and robust training (Madry et al.; the robust-models excerpt).

Budgets are given in pixel units, a fraction of the [0, 1] pixel range (CIFAR's 8/255), as the
excerpt states them; the tensors the models see are normalised (``(p − mean) / std`` per
channel), so in model space the l∞ ball of pixel radius ε has radius ε / std per channel, and
the valid pixel range [0, 1] becomes the box [−mean / std, (1 − mean) / std].

:func:`pgd` is the one projected-gradient routine: many models at once, each with its own
inputs, labels, budget and step size (a leading model axis on everything), untargeted
(ascend the model's loss) or targeted (descend the cross-entropy towards a target label),
with a uniform random start in the ball. The trainer (:mod:`etio.traces.training`) calls it
for the inner maximisation of PGD training, the trace stage for the robust accuracies, the
attack stage for the adversarial inference strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from etio.traces.datasets import DatasetInfo


@dataclass(frozen=True)
class PixelBox:
    """The valid input box and the pixel-to-model scale, each broadcastable to one input ``[*input_shape]``."""

    low: torch.Tensor
    high: torch.Tensor
    scale: torch.Tensor       # model-space radius of a pixel-space radius of 1 (1 / std)

    def to(self, device) -> "PixelBox":
        return PixelBox(self.low.to(device), self.high.to(device), self.scale.to(device))


def pixel_box(info: DatasetInfo) -> PixelBox:
    """The [0, 1] pixel range and the ε scale of ``info``'s normalisation."""
    mean = torch.tensor(info.mean, dtype=torch.float32)
    std = torch.tensor(info.std, dtype=torch.float32)
    if len(info.input_shape) > 1:           # images [C, H, W]: per channel
        mean, std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
    return PixelBox(low=(0.0 - mean) / std, high=(1.0 - mean) / std, scale=1.0 / std)


def per_sample_training_loss(logits: torch.Tensor, y: torch.Tensor, is_ce: torch.Tensor) -> torch.Tensor:
    """Each model's training loss per sample ``[M, b]``: CE on logits or the squared error of the
    softmax (``is_ce`` ``[M]`` bool), as the trainer minimises it."""
    c = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, c), y.reshape(-1), reduction="none").view(y.shape)
    if bool(is_ce.all()):
        return ce
    mse = (logits.softmax(-1) - F.one_hot(y, c).to(logits.dtype)).pow(2).mean(-1)
    return torch.where(is_ce.view(-1, 1), ce, mse)


def pgd(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor,
        step_size: float, steps: int, box: PixelBox | None, start: torch.Tensor,
        is_ce: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
    """l∞ PGD adversarial examples for ``M`` models at once.

    ``forward(x_adv)`` maps ``[M, b, *input]`` to logits ``[M, b, C]`` (model ``i`` on its own
    rows); ``y`` ``[M, b]`` true labels; ``eps`` ``[M]`` pixel budgets; each step moves by
    ``step_size · ε`` along the sign of the gradient and projects back onto the ε-ball and the
    pixel box. ``start`` ``[M, b, *input]`` holds uniform draws in [−1, 1] (the random start, in
    units of the radius) so that callers control the random stream. Untargeted (``target`` None):
    ascend each model's training loss (``is_ce`` per model, CE by default); targeted: descend
    the CE towards ``target`` ``[M, b]``. ``box`` None: no pixel range, unit scale.
    A model with ε = 0 gets its input back unchanged.
    """
    lead = (-1,) + (1,) * (x.dim() - 1)
    scale = box.scale.to(x.device) if box is not None else torch.ones((), device=x.device)
    radius = eps.to(x.device, x.dtype).view(lead) * scale
    is_ce = torch.ones(len(x), dtype=torch.bool, device=x.device) if is_ce is None else is_ce
    x = x.detach()

    def project(candidate):
        out = torch.max(torch.min(candidate, x + radius), x - radius)
        if box is not None:
            out = torch.max(torch.min(out, box.high.to(x.device)), box.low.to(x.device))
        return out

    x_adv = project(x + start.to(x.device, x.dtype) * radius)
    step = step_size * radius
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = forward(x_adv)
            if target is None:
                objective = per_sample_training_loss(logits, y, is_ce).sum()
            else:
                c = logits.shape[-1]
                objective = -F.cross_entropy(logits.reshape(-1, c), target.reshape(-1), reduction="sum")
            (grad,) = torch.autograd.grad(objective, x_adv)
        x_adv = project(x_adv.detach() + step * grad.sign())
    # ε = 0: exactly the input (the projection already keeps it, this keeps it bit for bit).
    return torch.where(radius > 0, x_adv.detach(), x)


def start_generator(seed: int, info: DatasetInfo, train_size: int, model_id: int) -> torch.Generator:
    """The random-start stream of model ``model_id`` during PGD training (independent of batching)."""
    from etio.traces.training import derive_seed

    return torch.Generator().manual_seed(derive_seed(seed, "pgd-start", info.name, train_size, model_id))


def uniform_start(generator: torch.Generator, shape) -> torch.Tensor:
    return torch.rand(shape, generator=generator) * 2 - 1


@torch.no_grad()
def robust_accuracies(snapshot, pool_x: torch.Tensor, pool_y: torch.Tensor, test_x: torch.Tensor,
                      test_y: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD accuracy ``[V, K]`` of every model of a snapshot on its own subset and on the test set.

    Each member is attacked at its own training budget with ``training.pgd_eval_steps`` steps
    (size as in training) from a seeded random start; at ε = 0 this is the clean accuracy.
    """
    job = snapshot.job
    v, k = len(job.members), len(job.model_ids)
    device = pool_x.device
    box = pixel_box(job.info).to(device)
    eps = torch.tensor([var.adv_eps for _, var in job.members], device=device).repeat_interleave(k)
    is_ce = torch.tensor([var.loss == "ce" for _, var in job.members], device=device).repeat_interleave(k)
    t = job.training
    from etio.traces.training import derive_seed

    gen = torch.Generator().manual_seed(derive_seed(job.seed, "pgd-eval", job.info.name, job.subsets.shape[1],
                                                    tuple(job.model_ids)))
    subsets = job.subsets.to(device)

    def forward(xe):
        return snapshot.forward(snapshot.params, snapshot.buffers, xe, train=False, each=True)

    def accuracy(x_models, y_models):
        """``x_models [K, n, ...]`` shared by the V members -> correct counts ``[V·K]``."""
        correct = torch.zeros(v * k, device=device)
        for i in range(0, x_models.shape[1], chunk):
            xb = x_models[:, i:i + chunk]
            yb = y_models[:, i:i + chunk]
            xe = xb.unsqueeze(0).expand(v, *xb.shape).reshape(v * k, *xb.shape[1:])
            ye = yb.unsqueeze(0).expand(v, *yb.shape).reshape(v * k, -1)
            start = uniform_start(gen, xe.shape).to(device)
            adv = pgd(forward, xe, ye, eps, t.pgd_step_size, t.pgd_eval_steps, box, start, is_ce=is_ce)
            correct += (forward(adv).argmax(-1) == ye).sum(-1)
        return correct / x_models.shape[1]

    train = accuracy(pool_x[subsets], pool_y[subsets])
    test = accuracy(test_x.unsqueeze(0).expand(k, *test_x.shape), test_y.unsqueeze(0).expand(k, -1))
    return train.view(v, k), test.view(v, k)


def robust_stats(train_acc: torch.Tensor, test_acc: torch.Tensor, n_repeats: int, adv_eps: float) -> dict[str, float]:
    """The robust trace columns of one configuration from its models' PGD accuracies ``[K]``."""
    def repeat_mean(values):
        return float(values.double().view(n_repeats, -1).mean(-1).mean())

    tr, te = repeat_mean(train_acc), repeat_mean(test_acc)
    return {"AdvEps": float(adv_eps), "AdvTrainAcc": tr, "AdvTestAcc": te, "AdvAccDiff": tr - te}
