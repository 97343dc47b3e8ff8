"""The one-hidden-layer MLP's torch code (:mod:`etio.traces.models.mlp_1hidden`)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


class MLP1Hidden(nn.Module):
    def __init__(self, in_dim: int, width: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(in_dim, width, bias=False)
        self.output = nn.Linear(width, num_classes, bias=False)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x.flatten(1))))


def mlp_forward(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bias-free one-hidden-layer MLP for stacked weights ``w1 [..., w, in]``, ``w2 [..., C, w]``."""
    return torch.matmul(torch.relu(torch.matmul(x, w1.transpose(-1, -2))), w2.transpose(-1, -2))


def build(width, num_classes, input_shape):
    return MLP1Hidden(math.prod(input_shape), width, num_classes)


def train_forward(states, widths, num_classes, input_shape, device):
    """The members' weights zero-padded to the widest and stacked; the forward pass a batched matmul (in a
    training step, :class:`_TrainingStep`: the same operations over blocks kept for the job)."""
    v, k = len(states), len(states[0])
    wmax = max(widths)
    in_dim = states[widths.index(wmax)][0]["hidden.weight"].shape[1]
    c = num_classes
    w1 = torch.zeros(v, k, wmax, in_dim)
    w2 = torch.zeros(v, k, c, wmax)
    for i, w in enumerate(widths):
        for j in range(k):
            w1[i, j, :w] = states[i][j]["hidden.weight"]
            w2[i, j, :, :w] = states[i][j]["output.weight"]
    params = {"hidden.weight": w1.view(v * k, wmax, in_dim).to(device),
              "output.weight": w2.view(v * k, c, wmax).to(device)}

    buffers = _StepBuffers()

    def forward(p, b, x, train=True, each=False):
        # x [K, b, ...] is shared by the V members: broadcast instead of copying.
        # each=True: x [V·K, b, ...] holds every model's own inputs (adversarial examples).
        w1, w2 = p["hidden.weight"], p["output.weight"]
        if not train:
            # evaluation (a snapshot, between epochs): the step blocks are given back first, so they never
            # add to its memory, and the snapshots of a finished job hold none
            buffers.release()
        elif not each and w1.requires_grad and not x.requires_grad and torch.is_grad_enabled():   # a step
            return _TrainingStep.apply(x.flatten(2), w1, w2, v, buffers).reshape(v * k, x.shape[1], c)
        xs = x.reshape(v, k, x.shape[1], -1) if each else x.flatten(2)
        out = mlp_forward(w1.view(v, k, *w1.shape[1:]), w2.view(v, k, *w2.shape[1:]), xs)
        return out.reshape(v * k, *out.shape[2:])

    return params, {}, forward


class _StepBuffers:
    """The large blocks of a training step, allocated at a job's first step and reused by every step until
    its models are evaluated: the inputs copied for each model, the hidden layer and its gradient, and the
    first layer's weight gradient. At the paper's MNIST sizes they are the step's largest (360 models of
    width 256: 144, 47, 47 and 290 MB); allocated afresh, blocks that large would be mapped and
    page-faulted at every step."""

    def __init__(self) -> None:
        self.blocks: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape, like: torch.Tensor) -> torch.Tensor:
        size = math.prod(shape)
        block = self.blocks.get(name)
        if block is None or block.numel() < size or block.dtype != like.dtype or block.device != like.device:
            block = self.blocks[name] = torch.empty(size, dtype=like.dtype, device=like.device)
        return block[:size].view(shape)

    def release(self) -> None:
        self.blocks.clear()


class _TrainingStep(torch.autograd.Function):
    """:func:`mlp_forward` of ``x [K, b, in]`` (shared by the V members) and ``w1 [V·K, w, in]``,
    ``w2 [V·K, C, w]``, with the very operations autograd records for it and runs backward (the inputs
    expanded and, for V > 1, copied to ``[V·K, b, in]``, a ``bmm``, ``relu``, a ``bmm``; backward: the ``bmm`` formulas and
    ``threshold_backward``), so every value is the same to the bit; only the large blocks are the job's
    :class:`_StepBuffers`. The weight gradients are the products' transposed views, as autograd's are;
    the first layer's lives in a kept block, so it holds only until the next backward of the job (the
    optimiser uses it at once). A test holds the logits and gradients to ``torch.autograd.grad`` of
    :func:`mlp_forward`."""

    @staticmethod
    def forward(ctx, x, w1, w2, v, buffers):
        k, b, n_in = x.shape
        m, width = w1.shape[0], w1.shape[1]
        shared = x.unsqueeze(0).expand(v, k, b, n_in)
        if v == 1:      # matmul reshapes the expanded inputs without a copy: so does this
            rows = shared.reshape(m, b, n_in)
        else:
            rows = buffers.get("inputs", (m, b, n_in), x)
            rows.view(v, k, b, n_in).copy_(shared)
        hidden = torch.bmm(rows, w1.transpose(1, 2), out=buffers.get("hidden", (m, b, width), x)).relu_()
        # through save_for_backward, not as attributes of ctx: a second forward before this backward rewrites
        # the blocks, and autograd's version check then fails the backward instead of letting it compute
        # from the other step's values
        ctx.save_for_backward(rows, hidden, w2)
        ctx.buffers = buffers
        return torch.bmm(hidden, w2.transpose(1, 2)).view(v, k, b, w2.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        rows, hidden, w2 = ctx.saved_tensors
        buffers = ctx.buffers
        m, b, n_in = rows.shape
        grad = grad.reshape(m, b, grad.shape[-1])
        output_grad = hidden.transpose(1, 2).bmm(grad)
        hidden_grad = torch.bmm(grad, w2, out=buffers.get("hidden_grad", hidden.shape, grad))
        torch.ops.aten.threshold_backward.grad_input(hidden_grad, hidden, 0, grad_input=hidden_grad)
        hidden_weight_grad = torch.bmm(rows.transpose(1, 2), hidden_grad,
                                       out=buffers.get("product", (m, n_in, hidden.shape[-1]), grad))
        return None, hidden_weight_grad.transpose(1, 2), output_grad.transpose(1, 2), None, None


def member_state(state, width):
    """A member's weights without the padding."""
    state["hidden.weight"] = state["hidden.weight"][:, :width].contiguous()
    state["output.weight"] = state["output.weight"][:, :, :width].contiguous()
    return state


def query_forward(width, num_classes, input_shape):
    """Stored models' logits: one batched matmul over their stacked weights."""
    def forward(state, x, each):
        return mlp_forward(state["hidden.weight"], state["output.weight"], x.flatten(2 if each else 1))

    return forward
