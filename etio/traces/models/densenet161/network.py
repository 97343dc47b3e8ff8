"""DenseNet-161's torch code (:mod:`etio.traces.models.densenet161`)."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.densenet import _DenseBlock, _DenseLayer, _Transition


class DenseNet161(nn.Module):
    def __init__(self, width: int, num_classes: int, num_init_features: int = 96,
                 block_config=(6, 12, 36, 24), bn_size: int = 4):
        super().__init__()
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


def _stacked_dense_block(step, module: _DenseBlock, name: str, x):
    features = [x]
    for child_name, layer in module.named_children():
        features.append(step.sequence(layer, f"{name}.{child_name}", step.concat(features)))
    return step.concat(features)


def _stacked_dense_layer(step, module: _DenseLayer, name: str, x):
    # a dense layer's children, in order, are its forward pass (dropout is off in the paper's models)
    if module.drop_rate > 0:
        raise NotImplementedError(f"{name}: dropout in a dense layer is not stacked")
    return step.sequence(module, name, x)


STACKED_RULES = ((_DenseBlock, _stacked_dense_block), (_DenseLayer, _stacked_dense_layer))
#: Channels last at every size (see the package text).
LAYOUT_BY_SIZE = False


def build(width, num_classes, input_shape):
    return DenseNet161(width, num_classes)


def stacked_features(skeleton, h, step):
    return F.relu(step.child(skeleton, "", "features", h)).mean((-2, -1)), "classifier"   # adaptive_avg_pool2d(1)
