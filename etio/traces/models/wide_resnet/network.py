"""The wide ResNet's torch code (:mod:`etio.traces.models.wide_resnet`)."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from etio.traces.models.resnet34.network import BasicBlock, stacked_basic_block


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


STACKED_RULES = ((BasicBlock, stacked_basic_block),)


def build(width, num_classes, input_shape):
    return WideResNet(width, num_classes)


def stacked_features(skeleton, h, step):
    h = F.relu(step.child(skeleton, "", "bn1", step.child(skeleton, "", "conv1", h)))
    for name in ("group1", "group2", "group3"):
        h = step.child(skeleton, "", name, h)
    return h.mean((-2, -1)), "linear"
