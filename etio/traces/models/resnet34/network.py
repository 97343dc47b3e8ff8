"""ResNet-34's torch code (:mod:`etio.traces.models.resnet34`); its ``BasicBlock`` serves the wide ResNet too."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


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


def stacked_basic_block(step, module: BasicBlock, name: str, x):
    """A :class:`BasicBlock` of the stacked models: the residual sum adds like with like."""
    out = F.relu(step.child(module, name, "bn1", step.child(module, name, "conv1", x)))
    out = step.child(module, name, "bn2", step.child(module, name, "conv2", out))
    return F.relu(out + step.sequence(module.shortcut, f"{name}.shortcut", x))


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


STACKED_RULES = ((BasicBlock, stacked_basic_block),)


def build(width, num_classes, input_shape):
    return ResNet34(width, num_classes)


def stacked_features(skeleton, h, step):
    h = F.relu(step.child(skeleton, "", "bn1", step.child(skeleton, "", "conv1", h)))
    for name in ("layer1", "layer2", "layer3", "layer4"):
        h = step.child(skeleton, "", name, h)
    return F.avg_pool2d(h, 4), "linear"
