"""NumParams of every (architecture, width, classes) quoted for the paper's traces (spec §2)."""

import pytest

from etio.core.errors import EtioInputError
from etio.traces.models import build_model, check_model, count_params, num_params

CIFAR = (3, 32, 32)
# width -> (C=10, C=100)
RESNET34 = {2: (21516, 23046), 4: (84542, 87512), 8: (335154, 341004), 16: (1334618, 1346228),
            32: (5326506, 5349636)}
DENSENET161 = {2: (102823, 112183), 4: (269716, 287356), 8: (870610, 904720), 16: (3142282, 3209332),
               32: (11965162, 12098092)}
ALEXNETWOL = {16: (159578, 165428), 32: (624810, 636420), 64: (2472266, 2495396), 128: (9835146, 9881316),
              256: (39232778, 39325028)}
MLP_MNIST = {8: 6352, 16: 12704, 32: 25408, 64: 50816, 128: 101632, 256: 203264}


@pytest.mark.parametrize("arch,table", [("resnet34", RESNET34), ("densenet161", DENSENET161),
                                        ("alexnetwol", ALEXNETWOL)])
def test_cnn_num_params_match_paper(arch, table):
    for width, (c10, c100) in table.items():
        assert count_params(arch, width, 10, CIFAR) == c10, (arch, width, 10)
        assert count_params(arch, width, 100, CIFAR) == c100, (arch, width, 100)


def test_mlp_num_params_match_paper():
    for width, expected in MLP_MNIST.items():
        assert count_params("mlp_1hidden", width, 10, (1, 28, 28)) == expected
    assert count_params("mlp_1hidden", 16, 10, (64,)) == 16 * 74      # digits: 64 → w → 10, no bias


def test_num_params_counts_trainable_only():
    model = build_model("resnet34", 2, 10, CIFAR, device="meta")
    buffers = sum(b.numel() for b in model.buffers())
    assert buffers > 0 and num_params(model) == 21516
    model.linear.weight.requires_grad_(False)
    assert num_params(model) == 21516 - 8 * 2 * 10


def test_models_output_logits_of_the_right_shape():
    for arch, width in [("alexnetwol", 16), ("resnet34", 2), ("densenet161", 2)]:
        check_model(arch, width, 100, CIFAR)
    check_model("mlp_1hidden", 3, 10, (64,))


@pytest.mark.parametrize("arch,width,shape,match", [
    ("vgg", 4, CIFAR, "unknown architecture 'vgg'"),
    ("resnet34", 0, CIFAR, "width 0"),
    ("alexnetwol", 16, (1, 28, 28), "alexnetwol.*width 16.*invalid model"),
])
def test_bad_models_are_named(arch, width, shape, match):
    with pytest.raises(EtioInputError, match=match):
        check_model(arch, width, 10, shape)
