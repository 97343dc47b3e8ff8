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
- each float32 convolution gets its input in the layout where the CPU's grouped convolutions
  (and their gradients) are fast: channels last (``torch.channels_last``) on feature maps of
  at least :data:`CHANNELS_LAST_MIN_PIXELS` pixels, several times faster there than the default
  layout, and the default layout on smaller maps, where channels-last grouped kernels were
  measured up to 40× slower (AlexNetWOL's 2×2 layers). DenseNet161 keeps channels last at
  every size: its dense blocks join each layer's input from earlier maps, so switching layouts
  costs a copy per layer, and its batched training was measured 20 % slower with the switch
  (AlexNetWOL 20 % and ResNet34 30 % faster). BatchNorm, ReLU and pooling keep the layout
  they are given;
- the concatenation of a dense block joins feature maps per model, on the ``C`` axis of the
  ``[batch, M, C, H, W]`` view; a residual sum adds like with like;
- the classifier is one batched matrix product over the ``[batch, M, features]`` view.

The forward pass walks the skeleton module (built on the meta device) so the structure comes
from the model definition itself: this module stacks the layers every network has, an
architecture's ``network.py`` adds its own blocks (``STACKED_RULES``) and its forward pass up
to the classifier (``stacked_features``). Each model computes exactly what it
computes alone (the batched-equals-one-at-a-time tests of ``tests/traces/test_train.py`` check
it in float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensors = dict[str, torch.Tensor]


#: The smallest feature map (H·W of a convolution's input) given to a float32 grouped convolution
#: on the CPU in channels-last layout; smaller ones get the default layout. Measured on the CPU
#: at the paper's smallest widths, 10 models, one thread (forward and backward): channels last
#: takes AlexNetWOL's first convolution (32×32 input) from 25–55 ms to 1.5 ms, and its 3×3
#: convolutions on 2×2 maps from 1.5–4 ms to 6–88 ms; on 4×4 maps the two are within 20 %.
CHANNELS_LAST_MIN_PIXELS = 64


def _conv_input(x: torch.Tensor, by_size: bool) -> torch.Tensor:
    """``x`` in the layout its convolution runs fastest in: with ``by_size``, channels last from
    :data:`CHANNELS_LAST_MIN_PIXELS` up and the default layout below, otherwise channels last.
    A float64 tensor (the equality tests: no fast channels-last kernels) keeps the default
    layout, and off the CPU every float32 map is channels last (the rule was measured on the CPU)."""
    if x.dtype == torch.float64:
        return x
    small = by_size and x.device.type == "cpu" and x.shape[-2] * x.shape[-1] < CHANNELS_LAST_MIN_PIXELS
    return x.contiguous(memory_format=torch.contiguous_format if small else torch.channels_last)


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> torch.Tensor:
    """``x [b, M·C, H, W]`` (in the layout it should run in), ``weight [M, O, C, k, k]`` -> ``[b, M·O, H', W']``."""
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
        # the default layout (float64, and float32 maps below CHANNELS_LAST_MIN_PIXELS on the CPU):
        # [b, M, C, H, W] is the memory order, join on C
        return torch.cat([p.reshape(b, models, -1, h, w) for p in parts], dim=2).view(b, -1, h, w)
    # channels last, [b, H, W, M, C] is the memory order: join on C of that view (the result stays
    # channels last, also at 1x1, so every later layer runs the same kernels)
    joined = torch.cat([p.permute(0, 2, 3, 1).reshape(b, h, w, models, -1) for p in parts], dim=-1)
    return joined.view(b, h, w, -1).permute(0, 3, 1, 2)


@dataclass
class StackedPass:
    """One forward pass of the stacked models: their parameters and buffers, the mode, and M."""

    params: Tensors
    buffers: Tensors
    train: bool
    models: int
    layout_by_size: bool      # _conv_input's rule (False: channels last at every size)
    rules: tuple = ()         # the family's blocks: ((type, rule(step, module, name, x)), ...)

    def run(self, module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
        """Apply the skeleton's ``module`` (its name in the state dict: ``name``) to the stacked ``x``."""
        for block, rule in self.rules:
            if isinstance(module, block):
                return rule(self, module, name, x)
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.dilation != (1, 1) or module.padding_mode != "zeros":
                raise NotImplementedError(f"{name}: only ungrouped, undilated, zero-padded convolutions are stacked")
            return _conv(_conv_input(x, self.layout_by_size), self.params[f"{name}.weight"],
                         self.params.get(f"{name}.bias"), module)
        if isinstance(module, nn.BatchNorm2d):
            return _batch_norm(x, self.params, self.buffers, name, module, self.train)
        if isinstance(module, nn.ReLU):
            return F.relu(x)
        if isinstance(module, nn.MaxPool2d):
            return F.max_pool2d(x, module.kernel_size, module.stride, module.padding)
        if isinstance(module, nn.AvgPool2d):
            return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding)
        if isinstance(module, nn.Sequential):
            return self.sequence(module, name, x)
        raise NotImplementedError(f"{name}: {type(module).__name__} has no stacked form")

    def child(self, module: nn.Module, name: str, child_name: str, x: torch.Tensor) -> torch.Tensor:
        return self.run(getattr(module, child_name), f"{name}.{child_name}" if name else child_name, x)

    def sequence(self, module: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
        """``module``'s children one after the other."""
        for child_name, _ in module.named_children():
            x = self.child(module, name, child_name, x)
        return x

    def concat(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Feature maps joined per model (a dense block's concatenation)."""
        return _concat(parts, self.models)


def stacked_forward(network, skeleton: nn.Module, variants: int, models_per_variant: int) -> Callable:
    """``forward(params, buffers, x, train, each)`` of :func:`etio.traces.training.train_job` for
    models of ``skeleton``'s architecture stacked ``[V·K, ...]``; ``network`` is the architecture's
    torch module, with its ``stacked_features`` (and ``STACKED_RULES``, ``LAYOUT_BY_SIZE``).

    ``x`` is ``[K, b, ...]`` (each model id's batch, shared by its V members) or, with
    ``each=True``, ``[V·K, b, ...]``; the result is the logits ``[V·K, b, classes]``.
    """
    v, k = variants, models_per_variant
    m = v * k
    layout_by_size = getattr(network, "LAYOUT_BY_SIZE", True)     # see the module text
    rules = getattr(network, "STACKED_RULES", ())

    def forward(p: Tensors, b: Tensors, x: torch.Tensor, train: bool = True, each: bool = False) -> torch.Tensor:
        xs = x if each else x.unsqueeze(0).expand(v, *x.shape).reshape(m, *x.shape[1:])
        batch = xs.shape[1]
        h = xs.transpose(0, 1).reshape(batch, m * xs.shape[2], *xs.shape[3:])     # [b, M·C, H, W]
        # each convolution puts its input in its fastest layout (_conv_input); no value depends on it
        features, classifier = network.stacked_features(skeleton, h, StackedPass(p, b, train, m, layout_by_size, rules))
        logits = torch.einsum("bmc,moc->mbo", features.reshape(batch, m, -1), p[f"{classifier}.weight"])
        return logits + p[f"{classifier}.bias"].unsqueeze(1)

    return forward
