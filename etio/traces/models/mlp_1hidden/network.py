"""The one-hidden-layer MLP's torch code (:mod:`etio.traces.models.mlp_1hidden`)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    """The members' weights zero-padded to the widest and stacked; the forward pass a batched matmul."""
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

    def forward(p, b, x, train=True, each=False):
        # x [K, b, ...] is shared by the V members: broadcast instead of copying.
        # each=True: x [V·K, b, ...] holds every model's own inputs (adversarial examples).
        xs = x.reshape(v, k, x.shape[1], -1) if each else x.flatten(2)
        out = mlp_forward(p["hidden.weight"].view(v, k, *p["hidden.weight"].shape[1:]),
                          p["output.weight"].view(v, k, *p["output.weight"].shape[1:]), xs)
        return out.reshape(v * k, *out.shape[2:])

    return params, {}, forward


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
