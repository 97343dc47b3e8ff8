"""``wide_resnet``: the robust-models excerpt's CIFAR-10 wide ResNet (Madry et al.'s model).

A 16-channel stem and 3 groups of 5 residual blocks with (16s, 32s, 64s) output channels;
``w`` = the capacity scale s (Madry et al.'s model is s = 10). The blocks are the ``BasicBlock``
of ``resnet34`` (post-activation), not the pre-activation blocks of Zagoruyko and Komodakis.
"""

from etio.traces.models._registry import register_model

register_model("wide_resnet")
