"""``resnet34``: CIFAR ResNet-34 (BasicBlock, [3, 4, 6, 3]) (paper §5.1); ``w`` = planes of the first stage."""

from etio.traces.models._registry import register_model

register_model("resnet34")
