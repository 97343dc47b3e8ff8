"""Many convolutional models as one network: models stacked along the channel dimension.

``vmap`` over ``functional_call`` pays its batching rules on every operation; DenseNet161 has
some 600 small operations per forward pass (a dense layer is BatchNorm, ReLU, 1×1 convolution,
BatchNorm, ReLU, 3×3 convolution, and a concatenation of every earlier feature map), ResNet34
some 200, so at the paper's smallest widths that overhead, not arithmetic, sets the speed.
Here the M models of a job are one network whose activations are laid out
``[batch, M·C, H, W]``, model-major:

- a convolution is one grouped convolution with ``groups = M`` (model m's output channels see
  only its own input channels), with the stacked weights ``[M, O, C, k, k]`` viewed as
  ``[M·O, C, k, k]``;
- a BatchNorm is one BatchNorm over ``M·C`` channels: statistics are taken per channel, hence
  per model, and the running statistics update the stacked buffers in place through a view;
- ReLU and pooling act per channel and need nothing;
- activations are kept channels last (``torch.channels_last``), where the CPU's grouped
  convolutions and their gradients run several times faster than in the default layout;
- the concatenation of a dense block joins feature maps per model, on the ``C`` axis of the
  ``[batch, M, C, H, W]`` view; a residual sum adds like with like;
- the classifier is one batched matrix product over the ``[batch, M, features]`` view.

The forward pass walks the skeleton module (built on the meta device) so the structure comes
from the model definition itself; each model computes exactly what it computes alone (the
batched-equals-one-at-a-time tests of ``tests/test_train.py`` check it in float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensors = dict[str, torch.Tensor]


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> torch.Tensor:
    """``x [b, M·C, H, W]``, ``weight [M, O, C, k, k]`` -> ``[b, M·O, H', W']``."""
    m, o = weight.shape[:2]
    return F.conv2d(x, weight.reshape(m * o, *weight.shape[2:]), None if bias is None else bias.reshape(-1),
                     stride=conv.stride, padding=conv.padding, groups=m)


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
    """Feature maps ``[b, M·C_i, H, W]`` joined per model into ``[b, M·ΣC_i, H, W]``, in their layout."""
    b, _, h, w = parts[0].shape
    if not parts[0].is_contiguous(memory_format=torch.channels_last):
        # the default layout (float64): [b, M, C, H, W] is the memory order, join on C
        return torch.cat([p.reshape(b, models, -1, h, w) for p in parts], dim=2).view(b, -1, h, w)
    # channels last, [b, H, W, M, C] is the memory order: join on C of that view (the result stays
    # channels last, also at 1x1, so every later layer runs the same kernels)
    joined = torch.cat([p.permute(0, 2, 3, 1).reshape(b, h, w, models, -1) for p in parts], dim=-1)
    return joined.view(b, h, w, -1).permute(0, 3, 1, 2)


@dataclass
class _Pass:
    """One forward pass of the stacked models: their parameters and buffers, the mode, and M."""

    params: Tensors
    buffers: Tensors
    train: bool
    models: int

    def run(self, module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
        """Apply the skeleton's ``module`` (its name in the state dict: ``name``) to the stacked ``x``."""
        from torchvision.models.densenet import _DenseBlock, _DenseLayer

        from etio.traces.models import BasicBlock

        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.dilation != (1, 1) or module.padding_mode != "zeros":
                raise NotImplementedError(f"{name}: only ungrouped, undilated, zero-padded convolutions are stacked")
            return _conv(x, self.params[f"{name}.weight"], self.params.get(f"{name}.bias"), module)
        if isinstance(module, nn.BatchNorm2d):
            return _batch_norm(x, self.params, self.buffers, name, module, self.train)
        if isinstance(module, nn.ReLU):
            return F.relu(x)
        if isinstance(module, nn.MaxPool2d):
            return F.max_pool2d(x, module.kernel_size, module.stride, module.padding)
        if isinstance(module, nn.AvgPool2d):
            return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding)
        if isinstance(module, BasicBlock):
            out = F.relu(self.child(module, name, "bn1", self.child(module, name, "conv1", x)))
            out = self.child(module, name, "bn2", self.child(module, name, "conv2", out))
            return F.relu(out + self.sequence(module.shortcut, f"{name}.shortcut", x))
        if isinstance(module, _DenseBlock):
            features = [x]
            for child_name, layer in module.named_children():
                features.append(self.sequence(layer, f"{name}.{child_name}", _concat(features, self.models)))
            return _concat(features, self.models)
        if isinstance(module, (nn.Sequential, _DenseLayer)):
            # a dense layer's children, in order, are its forward pass (dropout is off in the paper's models)
            if isinstance(module, _DenseLayer) and module.drop_rate > 0:
                raise NotImplementedError(f"{name}: dropout in a dense layer is not stacked")
            return self.sequence(module, name, x)
        raise NotImplementedError(f"{name}: {type(module).__name__} has no stacked form")

    def child(self, module: nn.Module, name: str, child_name: str, x: torch.Tensor) -> torch.Tensor:
        return self.run(getattr(module, child_name), f"{name}.{child_name}" if name else child_name, x)

    def sequence(self, module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
        """``module``'s children one after the other."""
        for child_name, _ in module.named_children():
            x = self.child(module, name, child_name, x)
        return x


def _features(skeleton: nn.Module, h: torch.Tensor, step: _Pass) -> tuple[torch.Tensor, str]:
    """The architecture's forward pass up to its classifier (as in :mod:`etio.traces.models`), and
    the classifier's name."""
    from etio.traces.models import AlexNetWOL, DenseNet161, ResNet34, WideResNet

    run = lambda name, x: step.child(skeleton, "", name, x)  # noqa: E731
    if isinstance(skeleton, DenseNet161):
        return F.relu(run("features", h)).mean((-2, -1)), "classifier"          # adaptive_avg_pool2d(1)
    if isinstance(skeleton, AlexNetWOL):
        return run("features", h), "classifier"
    if isinstance(skeleton, (ResNet34, WideResNet)):
        h = F.relu(run("bn1", run("conv1", h)))
        for name in (("layer1", "layer2", "layer3", "layer4") if isinstance(skeleton, ResNet34)
                     else ("group1", "group2", "group3")):
            h = run(name, h)
        return (F.avg_pool2d(h, 4) if isinstance(skeleton, ResNet34) else h.mean((-2, -1))), "linear"
    raise NotImplementedError(f"{type(skeleton).__name__} has no stacked form")


#: Architectures trained as one channel-stacked network (the others, under vmap).
STACKED_ARCHS = ("alexnetwol", "resnet34", "densenet161", "wide_resnet")


def stacked_forward(skeleton: nn.Module, variants: int, models_per_variant: int) -> Callable:
    """``forward(params, buffers, x, train, each)`` of :func:`etio.traces.training.train_job` for
    models of ``skeleton``'s architecture stacked ``[V·K, ...]``.

    ``x`` is ``[K, b, ...]`` (each model id's batch, shared by its V members) or, with
    ``each=True``, ``[V·K, b, ...]``; the result is the logits ``[V·K, b, classes]``.
    """
    v, k = variants, models_per_variant
    m = v * k

    def forward(p: Tensors, b: Tensors, x: torch.Tensor, train: bool = True, each: bool = False) -> torch.Tensor:
        xs = x if each else x.unsqueeze(0).expand(v, *x.shape).reshape(m, *x.shape[1:])
        batch = xs.shape[1]
        h = xs.transpose(0, 1).reshape(batch, m * xs.shape[2], *xs.shape[3:])     # [b, M·C, H, W]
        # channels last: the CPU's grouped float32 convolutions (and their backward) run several
        # times faster in it; convolutions, BatchNorm, ReLU and pooling keep the layout. float64
        # (the equality tests) has no fast channels-last kernels; the layout changes no value.
        if h.dtype != torch.float64:
            h = h.contiguous(memory_format=torch.channels_last)
        features, classifier = _features(skeleton, h, _Pass(p, b, train, m))
        logits = torch.einsum("bmc,moc->mbo", features.reshape(batch, m, -1), p[f"{classifier}.weight"])
        return logits + p[f"{classifier}.bias"].unsqueeze(1)

    return forward
