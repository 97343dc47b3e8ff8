"""The four architectures of the traces and what "width" means for each (paper §5.1).

All models return pre-softmax logits. For MSE training the authors' models end with a
softmax; here the softmax is applied by the loss (:mod:`etio.traces.training`) and by the estimators,
which is the same function of the parameters, and keeps the pre-softmax vector available
to the attacks (MemGuard perturbs it).

- ``mlp_1hidden``: flatten → Linear(in, w, bias=False) → ReLU → Linear(w, C, bias=False).
- ``alexnetwol``: AlexNet "without linear" layers; ``w`` = filters of the first convolution.
- ``resnet34``: CIFAR ResNet-34 (BasicBlock, [3, 4, 6, 3]); ``w`` = planes of the first stage.
- ``densenet161``: DenseNet-161 blocks (6, 12, 36, 24), 96 initial features; ``w`` = growth rate.
- ``wide_resnet``: the robust-models excerpt's CIFAR-10 wide ResNet (Madry et al.'s model): a
  16-channel stem and 3 groups of 5 residual blocks with (16s, 32s, 64s) output channels;
  ``w`` = the capacity scale s (Madry et al.'s model is s = 10). The blocks are the
  ``BasicBlock`` of ``resnet34`` (post-activation), not the pre-activation blocks of Zagoruyko
  and Komodakis.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from etio.core.errors import EtioInputError, check_choice
from etio.traces.architectures import ARCH_NAMES, PAPER_WIDTHS  # noqa: F401 - PAPER_WIDTHS is read from here too


class MLP1Hidden(nn.Module):
    def __init__(self, in_dim: int, width: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(in_dim, width, bias=False)
        self.output = nn.Linear(width, num_classes, bias=False)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x.flatten(1))))


class AlexNetWOL(nn.Module):
    def __init__(self, width: int, num_classes: int):
        super().__init__()
        k = width
        self.features = nn.Sequential(
            nn.Conv2d(3, k, kernel_size=11, stride=4, padding=5), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(k, 3 * k, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(3 * k, 6 * k, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6 * k, 4 * k, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * k, 4 * k, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Linear(4 * k, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet34(nn.Module):
    def __init__(self, width: int, num_classes: int):
        super().__init__()
        k = width
        self.conv1 = nn.Conv2d(3, k, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(k)
        in_planes = k
        stages = []
        for planes, blocks, stride in ((k, 3, 1), (2 * k, 4, 2), (4 * k, 6, 2), (8 * k, 3, 2)):
            layers = []
            for s in [stride] + [1] * (blocks - 1):
                layers.append(BasicBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(8 * k, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


class WideResNet(nn.Module):
    def __init__(self, width: int, num_classes: int, blocks_per_group: int = 5):
        super().__init__()
        s = width
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes, groups = 16, []
        for planes, stride in ((16 * s, 1), (32 * s, 2), (64 * s, 2)):
            layers = []
            for st in [stride] + [1] * (blocks_per_group - 1):
                layers.append(BasicBlock(in_planes, planes, st))
                in_planes = planes
            groups.append(nn.Sequential(*layers))
        self.group1, self.group2, self.group3 = groups
        self.linear = nn.Linear(64 * s, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.group3(self.group2(self.group1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class DenseNet161(nn.Module):
    def __init__(self, width: int, num_classes: int, num_init_features: int = 96,
                 block_config=(6, 12, 36, 24), bn_size: int = 4):
        super().__init__()
        from torchvision.models.densenet import _DenseBlock, _Transition

        growth = width
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        nf = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(
                num_layers=num_layers, num_input_features=nf, bn_size=bn_size, growth_rate=growth, drop_rate=0.0))
            nf += num_layers * growth
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(nf, nf // 2))
                nf //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(nf))
        self.classifier = nn.Linear(nf, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1))
        return self.classifier(out.flatten(1))


ARCHS = {"mlp_1hidden": MLP1Hidden, "alexnetwol": AlexNetWOL, "resnet34": ResNet34, "densenet161": DenseNet161,
         "wide_resnet": WideResNet}
assert tuple(ARCHS) == ARCH_NAMES, "etio.traces.architectures.ARCH_NAMES must list the models built here"


def build_model(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...],
                device: torch.device | str | None = None) -> nn.Module:
    """A freshly initialised model (uses the global torch RNG; seed it before calling)."""
    check_choice("architecture", arch, ARCHS)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise EtioInputError(f"width {width!r} of {arch} is not a positive integer")
    with torch.device(device) if device is not None else _nullcontext():
        if arch == "mlp_1hidden":
            return MLP1Hidden(math.prod(input_shape), width, num_classes)
        return ARCHS[arch](width, num_classes)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@functools.lru_cache(maxsize=None)
def check_model(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...], dataset: str = "") -> None:
    """Raise :class:`EtioInputError` unless ``arch`` at ``width`` runs on inputs of ``input_shape``.

    Built and run on the meta device: no memory, no compute (but DenseNet161 takes a fraction of a
    second to build; a valid model is remembered, an error is raised again).
    """
    model = build_model(arch, width, num_classes, input_shape, device="meta")
    try:
        out = model(torch.empty((2, *input_shape), device="meta"))
    except Exception as exc:
        on = f" on dataset {dataset!r}" if dataset else ""
        raise EtioInputError(f"architecture {arch!r} with width {width} gives an invalid model{on} "
                             f"(input shape {tuple(input_shape)}): {exc}") from None
    if tuple(out.shape) != (2, num_classes):
        raise EtioInputError(f"architecture {arch!r} with width {width} outputs shape {tuple(out.shape)[1:]}, "
                             f"expected ({num_classes},)")


def num_params(model: nn.Module) -> int:
    """NumParams: the number of trainable scalars (weights, biases, BN affine; no BN buffers)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


@functools.lru_cache(maxsize=None)
def count_params(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...]) -> int:
    return num_params(build_model(arch, width, num_classes, input_shape, device="meta"))
