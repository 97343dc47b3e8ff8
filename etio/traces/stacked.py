"""Many convolutional models as one network: models stacked along the channel dimension.

``vmap`` over ``functional_call`` (the generic batched path of :mod:`etio.traces.training`)
pays its batching rules on every operation; DenseNet161 has some 600 small operations per
forward pass (a dense layer is BatchNorm, ReLU, 1×1 convolution, BatchNorm, ReLU, 3×3
convolution, and a concatenation of every earlier feature map), so at the paper's smallest
widths that overhead, not arithmetic, sets the speed. Here the M models of a job are one
network whose activations are laid out ``[batch, M·C, H, W]``, model-major:

- a convolution is one grouped convolution with ``groups = M`` (model m's output channels see
  only its own input channels), with the stacked weights ``[M, O, C, k, k]`` viewed as
  ``[M·O, C, k, k]``;
- a BatchNorm is one BatchNorm over ``M·C`` channels: statistics are taken per channel, hence
  per model, and the running statistics update the stacked buffers in place through a view;
- ReLU and pooling act per channel and need nothing;
- the concatenation of a dense block joins feature maps per model, on the ``C`` axis of the
  ``[batch, M, C, H, W]`` view.

The forward pass walks the skeleton module (built on the meta device) so the structure comes
from the model definition itself; each model computes exactly what it computes alone (the
batched-equals-one-at-a-time tests of ``tests/test_train.py`` check it in float64).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensors = dict[str, torch.Tensor]


def _conv(x: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``x [b, M·C, H, W]``, ``weight [M, O, C, k, k]`` -> ``[b, M·O, H', W']``."""
    m, o = weight.shape[:2]
    return F.conv2d(x, weight.reshape(m * o, *weight.shape[2:]), stride=conv.stride, padding=conv.padding,
                    groups=m)


def _batch_norm(x: torch.Tensor, params: Tensors, buffers: Tensors, name: str, norm: nn.BatchNorm2d,
                train: bool) -> torch.Tensor:
    running_mean, running_var = buffers[f"{name}.running_mean"], buffers[f"{name}.running_var"]
    if train:
        # what nn.BatchNorm2d does besides normalising, per model (momentum is set, so the count is
        # only recorded, as in a model trained alone)
        buffers[f"{name}.num_batches_tracked"].add_(1)
    return F.batch_norm(x, running_mean.view(-1), running_var.view(-1), params[f"{name}.weight"].reshape(-1),
                        params[f"{name}.bias"].reshape(-1), training=train, momentum=norm.momentum, eps=norm.eps)


def _concat(parts: list[torch.Tensor], models: int) -> torch.Tensor:
    """Feature maps ``[b, M·C_i, H, W]`` joined per model into ``[b, M·ΣC_i, H, W]``."""
    b, _, h, w = parts[0].shape
    joined = torch.cat([p.view(b, models, -1, h, w) for p in parts], dim=2)
    return joined.view(b, -1, h, w)


def _run(module: nn.Module, name: str, x: torch.Tensor, params: Tensors, buffers: Tensors, train: bool,
         models: int) -> torch.Tensor:
    """Apply the skeleton's ``module`` (its name in the state dict: ``name``) to the stacked ``x``."""
    from torchvision.models.densenet import _DenseBlock, _DenseLayer

    if isinstance(module, nn.Conv2d):
        if module.bias is not None or module.groups != 1 or module.dilation != (1, 1):
            raise NotImplementedError(f"{name}: only bias-free, ungrouped, undilated convolutions are stacked")
        return _conv(x, params[f"{name}.weight"], module)
    if isinstance(module, nn.BatchNorm2d):
        return _batch_norm(x, params, buffers, name, module, train)
    if isinstance(module, nn.ReLU):
        return F.relu(x)
    if isinstance(module, nn.MaxPool2d):
        return F.max_pool2d(x, module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.AvgPool2d):
        return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding)
    if isinstance(module, _DenseBlock):
        features = [x]
        for child_name, layer in module.named_children():
            joined = _concat(features, models)
            features.append(_run_children(layer, f"{name}.{child_name}", joined, params, buffers, train, models))
        return _concat(features, models)
    if isinstance(module, (nn.Sequential, _DenseLayer)):
        # a dense layer's children, in order, are its forward pass (dropout is off in the paper's models)
        if isinstance(module, _DenseLayer) and module.drop_rate > 0:
            raise NotImplementedError(f"{name}: dropout in a dense layer is not stacked")
        return _run_children(module, name, x, params, buffers, train, models)
    raise NotImplementedError(f"{name}: {type(module).__name__} has no stacked form")


def _run_children(module: nn.Module, name: str, x: torch.Tensor, params: Tensors, buffers: Tensors, train: bool,
                  models: int) -> torch.Tensor:
    for child_name, child in module.named_children():
        x = _run(child, f"{name}.{child_name}", x, params, buffers, train, models)
    return x


def densenet_forward(skeleton: nn.Module, variants: int, models_per_variant: int) -> Callable:
    """``forward(params, buffers, x, train, each)`` of :func:`etio.traces.training.train_job` for
    :class:`etio.traces.models.DenseNet161` models stacked ``[V·K, ...]``.

    ``x`` is ``[K, b, ...]`` (each model id's batch, shared by its V members) or, with
    ``each=True``, ``[V·K, b, ...]``; the result is the logits ``[V·K, b, classes]``.
    """
    v, k = variants, models_per_variant
    m = v * k

    def forward(p: Tensors, b: Tensors, x: torch.Tensor, train: bool = True, each: bool = False) -> torch.Tensor:
        xs = x if each else x.unsqueeze(0).expand(v, *x.shape).reshape(m, *x.shape[1:])
        batch = xs.shape[1]
        h = xs.transpose(0, 1).reshape(batch, m * xs.shape[2], *xs.shape[3:])     # [b, M·3, H, W]
        h = F.relu(_run_children(skeleton.features, "features", h, p, b, train, m))
        pooled = h.mean((-2, -1)).view(batch, m, -1)                              # adaptive_avg_pool2d(1)
        logits = torch.einsum("bmc,moc->mbo", pooled, p["classifier.weight"])
        return logits + p["classifier.bias"].unsqueeze(1)

    return forward
