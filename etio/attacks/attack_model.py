"""Attack models: many small binary MLPs trained at once.

Every shadow-model attack ends in the same step: fit a small member/non-member
classifier on feature vectors. A configuration needs dozens of them (30 ML-Leaks tuples
x 4 variants, one Oak17 model per class x 2 seeds), each tiny, so they are trained as one
stacked network: layer weights have a leading model axis and every product is a
``torch.bmm``. Models may have different input sizes (features are zero-padded, and the
padded inputs never receive gradient) and different sample counts (a validity mask; a
model whose data is exhausted in an epoch skips the remaining optimiser steps), so the
stack trains each model exactly as it would train alone: own initialisation, own shuffle,
own Adam state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AttackModelSpec:
    """Architecture and optimiser of one attack model.

    Defaults are the ML-Leaks attack model of the paper's code: 64-32 tanh MLP with two
    outputs, Adam lr 0.01, cross-entropy, batch 100, 500 epochs. ``l2`` adds
    ``l2 * sum(W**2)`` over the weight matrices to the loss (Shokri et al.'s setting).
    """

    hidden: tuple[int, ...] = (64, 32)
    lr: float = 0.01
    epochs: int = 500
    batch_size: int = 100
    l2: float = 0.0


@dataclass
class StackedMLP:
    """``B`` tanh MLPs with 2 outputs, weights ``[B, in, out]``, biases ``[B, 1, out]``."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, n, d]`` -> ``[B, n, 2]``; narrower inputs are zero-padded to the stack's width."""
        width = self.weights[0].shape[1]
        h = x if x.shape[-1] == width else torch.nn.functional.pad(x, (0, width - x.shape[-1]))
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.tanh(h)
        return h

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's input (the first zero-padded to the stack's width), then the logits: the forward
        pass of :meth:`logits`, keeping what a written-out backward pass needs."""
        width, last = self.weights[0].shape[1], len(self.weights) - 1
        h = x if x.shape[-1] == width else torch.nn.functional.pad(x, (0, width - x.shape[-1]))
        kept = [h]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.tanh(h)
            kept.append(h)
        return kept

    def member_probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)[..., 1]

    def predict_member(self, x: torch.Tensor) -> torch.Tensor:
        """Argmax decision (class 1 = member), ``[B, n]`` bool."""
        out = self.logits(x)
        return out[..., 1] > out[..., 0]

    def select(self, index) -> "StackedMLP":
        return StackedMLP([w[index] for w in self.weights], [b[index] for b in self.biases])


def init_stacked_mlp(in_dims: list[int], spec: AttackModelSpec, generators: list[torch.Generator],
                     device: torch.device | str = "cpu") -> StackedMLP:
    """PyTorch's ``nn.Linear`` initialisation (uniform in +-1/sqrt(fan_in)), each model from its own generator.

    Rows of the first layer that only see zero padding are set to zero: they would get no
    gradient anyway, and zero makes the padding visibly inert.
    """
    width = max(in_dims)
    sizes = [width, *spec.hidden, 2]
    weights: list[list[torch.Tensor]] = [[] for _ in sizes[1:]]
    biases: list[list[torch.Tensor]] = [[] for _ in sizes[1:]]
    for n_in_true, g in zip(in_dims, generators):
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            fan_in = n_in_true if layer == 0 else n_in
            bound = 1.0 / math.sqrt(fan_in)
            drawn = n_in_true if layer == 0 else n_in   # what is drawn never depends on the padding
            w = (torch.rand(drawn, n_out, generator=g) * 2 - 1) * bound
            b = (torch.rand(1, n_out, generator=g) * 2 - 1) * bound
            w = torch.nn.functional.pad(w, (0, 0, 0, n_in - drawn))
            weights[layer].append(w)
            biases[layer].append(b)
    return StackedMLP([torch.stack(w).to(device) for w in weights], [torch.stack(b).to(device) for b in biases])


def train_attack_models(features: torch.Tensor, labels: torch.Tensor, spec: AttackModelSpec,
                        seeds: list[int], in_dims: list[int] | None = None,
                        valid: torch.Tensor | None = None) -> StackedMLP:
    """Train ``B`` attack models, model ``i`` on ``features[i][valid[i]]``.

    ``features``: ``[B, n, d]`` float, ``labels``: ``[B, n]`` (1 = member), ``valid``:
    ``[B, n]`` bool (all true when omitted), ``in_dims``: true input size of each model
    (``d`` when omitted). Each epoch visits every model's valid samples once in its own
    random order, in mini-batches of ``spec.batch_size``; the loss of a mini-batch is the
    mean cross-entropy, as in ``nn.CrossEntropyLoss``. ``seeds[i]`` drives model ``i``'s
    initialisation and shuffling, so a model does not depend on what it is stacked with:
    the same seed and data give the same model, trained alone or in any batch.
    """
    n_models, n, _ = features.shape
    device = features.device
    in_dims = in_dims or [features.shape[2]] * n_models
    valid = torch.ones(n_models, n, dtype=torch.bool, device=device) if valid is None else valid
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    model = init_stacked_mlp(in_dims, spec, generators, device)
    adam = _StackedAdam(model.weights + model.biases, spec.lr, n_models, device)
    labels = labels.long()
    n_valid = valid.sum(dim=1)
    valid_cpu, n_valid_cpu = valid.cpu(), n_valid.cpu()
    n_steps = int(math.ceil(int(n_valid.max()) / spec.batch_size)) if n_models else 0
    first_row = torch.arange(n_models, device=device).view(-1, 1) * n      # each model's first row, flattened
    flat_features = features.reshape(n_models * n, features.shape[2])
    flat_labels, flat_valid = labels.reshape(-1), valid.reshape(-1)
    for keys in _epoch_keys(generators, valid_cpu, n_valid_cpu, spec.epochs):
        # the epoch's shuffled samples gathered once (rows of the flattened stack: a third of the time of
        # indexing by model and position), each step takes its slice
        order = (keys.to(device).argsort(dim=1) + first_row).view(-1)
        x_epoch = flat_features.index_select(0, order).view(features.shape)
        y_epoch, mask_epoch = flat_labels.index_select(0, order).view(n_models, n), \
            flat_valid.index_select(0, order).view(n_models, n)
        for step in range(n_steps):
            batch = slice(step * spec.batch_size, (step + 1) * spec.batch_size)
            mask = mask_epoch[:, batch]
            count = mask.sum(dim=1)
            active = count > 0
            grads = stacked_gradients(model, x_epoch[:, batch].contiguous(), y_epoch[:, batch].reshape(-1), mask,
                                      count, active, spec.l2)
            adam.step(grads, active)
    return model


def stacked_gradients(model: StackedMLP, xb: torch.Tensor, yb: torch.Tensor, mask: torch.Tensor, count: torch.Tensor,
                      active: torch.Tensor, l2: float = 0.0) -> list[torch.Tensor]:
    """Gradients (weights, then biases) of the training loss of one mini-batch, every model at once.

    The loss of model i is its masked mean cross-entropy ``(ce_i * mask_i).sum() / max(count_i, 1)``, plus
    ``l2 * sum(W**2)`` over its weight matrices when it is active; the loss of the stack is their sum.
    The backward pass is written out with the very operations autograd runs for this graph (the
    ``derivatives.yaml`` formulas of ``baddbmm``, ``tanh``, ``log_softmax``, ``nll_loss``, ``mul``, ``sum`` and
    ``div``, in autograd's order), so the gradients are the same to the bit while no graph is recorded: for
    these tiny networks the graph's bookkeeping cost as much as the arithmetic. A test holds them equal
    to ``torch.autograd.grad``.
    """
    n_models, m = mask.shape
    last = len(model.weights) - 1
    inputs = model.activations(xb)
    log_p = torch.log_softmax(inputs.pop().reshape(-1, 2), 1)
    _, total_weight = _ATEN.nll_loss_forward(log_p, yb, None, 0, -100)
    # d loss / d ce: 1 / count of the model, on its valid samples
    g = (torch.ones((), dtype=log_p.dtype, device=log_p.device).expand(n_models) / count.clamp(min=1))
    g = (g.unsqueeze(1).expand(n_models, m) * mask).reshape(-1)
    g = _ATEN.nll_loss_backward(g, log_p, yb, None, 0, -100, total_weight)
    g = _ATEN._log_softmax_backward_data(g, log_p, 1, log_p.dtype).view(n_models, m, 2)
    weight_grads, bias_grads = [None] * (last + 1), [None] * (last + 1)
    for i in range(last, -1, -1):
        bias_grads[i] = g.sum(1, keepdim=True)
        weight_grads[i] = inputs[i].transpose(1, 2).bmm(g)
        if i > 0:
            g = _ATEN.tanh_backward(g.bmm(model.weights[i].transpose(1, 2)), inputs[i])
    if l2:
        scale = (torch.full((), l2, device=log_p.device).expand(n_models) * active).view(-1, 1, 1)
        weight_grads = [gw + scale.expand_as(w) * (2 * w) for gw, w in zip(weight_grads, model.weights)]
    return weight_grads + bias_grads


_ATEN = torch.ops.aten



def _epoch_keys(generators: list[torch.Generator], valid: torch.Tensor, n_valid: torch.Tensor, epochs: int,
                max_floats: int = 2 ** 22):
    """Each epoch's shuffle keys ``[B, n]``: model i's valid samples get its next ``n_valid[i]`` uniform draws,
    invalid samples 2.0 (they sort last, so model i's first ``n_valid[i]`` positions are its own shuffle).

    A generator's draws do not depend on how they are split into calls, so the keys of many epochs are
    drawn at once (one call per model per block of epochs, not one per model per epoch).
    """
    n_models, n = valid.shape
    block = max(1, min(epochs, max_floats // max(1, n_models * n)))
    for first in range(0, epochs, block):
        count = min(block, epochs - first)
        keys = torch.full((count, n_models, n), 2.0)
        for i, g in enumerate(generators):
            keys[:, i, valid[i]] = torch.rand(count, int(n_valid[i]), generator=g)
        yield from keys


class _StackedAdam:
    """``torch.optim.Adam`` (betas 0.9/0.999, eps 1e-8) with a per-model step counter.

    A model whose mini-batch is empty takes no step at all (its moments and bias
    correction stay put), exactly as if it were trained on its own.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, n_models: int, device) -> None:
        self.params, self.lr = params, lr
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8
        # The moments of every parameter in one [B, P] buffer: each step is a few operations on it, not a
        # few per parameter (the same element-wise arithmetic, so the same numbers). Every operation writes
        # into a buffer allocated here: a step allocates nothing of the buffer's size.
        self.sizes = [p[0].numel() for p in params]
        self.m = torch.zeros(n_models, sum(self.sizes), device=device)
        self.v = torch.zeros_like(self.m)
        self.t = torch.zeros(n_models, device=device)
        self._grad, self._scratch, self._new_m, self._new_v = (torch.empty_like(self.m) for _ in range(4))

    @torch.no_grad()
    def step(self, grads, active: torch.Tensor) -> None:
        n_models = self.m.shape[0]
        g, scratch, m, v = self._grad, self._scratch, self._new_m, self._new_v
        torch.cat([x.reshape(n_models, -1) for x in grads], dim=1, out=g)
        self.t += active.to(self.t.dtype)
        t = self.t.clamp(min=1).view(-1, 1)
        correction1 = 1 - self.beta1 ** t
        correction2 = 1 - self.beta2 ** t
        # m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g   (operand order kept)
        torch.mul(self.m, self.beta1, out=m).add_(torch.mul(g, 1 - self.beta1, out=scratch))
        torch.mul(self.v, self.beta2, out=v).add_(torch.mul(g, 1 - self.beta2, out=scratch).mul_(g))
        every = bool(active.all())
        if every:
            # the new moments become the state; the old buffers hold the next step's
            self.m, self._new_m, self.v, self._new_v = m, self.m, v, self.v
        else:
            on = active.view(-1, 1)
            torch.where(on, m, self.m, out=self.m)
            torch.where(on, v, self.v, out=self.v)
        # update = lr * (m / correction1) / (sqrt(v / correction2) + eps)
        update = torch.div(self.m, correction1, out=g).mul_(self.lr)
        update.div_(torch.div(self.v, correction2, out=scratch).sqrt_().add_(self.eps))
        if not every:
            update.masked_fill_(~on, 0.0)
        for p, u in zip(self.params, update.split(self.sizes, dim=1)):
            p.sub_(u.view_as(p))


def balanced_accuracies(predicted_member: torch.Tensor, is_member: torch.Tensor,
                        valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per model: (member accuracy = TPR, non-member accuracy = TNR), each ``[B]``.

    A model with no member (or no non-member) evaluation sample gets NaN for that part.
    """
    valid = torch.ones_like(is_member, dtype=torch.bool) if valid is None else valid
    mem = is_member.bool() & valid
    non = ~is_member.bool() & valid
    correct = predicted_member == is_member.bool()
    mem_acc = (correct & mem).sum(1).double() / mem.sum(1).double()
    non_acc = (correct & non).sum(1).double() / non.sum(1).double()
    return mem_acc, non_acc
