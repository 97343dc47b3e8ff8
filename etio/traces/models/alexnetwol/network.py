"""AlexNetWOL's torch code (:mod:`etio.traces.models.alexnetwol`)."""

from __future__ import annotations

import torch.nn as nn

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


def build(width, num_classes, input_shape):
    return AlexNetWOL(width, num_classes)


def stacked_features(skeleton, h, step):
    return step.child(skeleton, "", "features", h), "classifier"
