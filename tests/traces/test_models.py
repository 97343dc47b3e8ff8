"""NumParams of every (architecture, width, classes) quoted for the paper's traces (spec §2), and
the model registry: every architecture is a registered folder, looked up without torch."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from etio.core.errors import EtioInputError
from etio.traces.config import Training, Variant
from etio.traces.datasets import DATASETS
from etio.traces.models import (AUTHORS_NUM_PARAMS, AUTHORS_WIDTHS, PAPER_ARCHITECTURES, PAPER_WIDTHS, ModelFamily,
                                build_model, check_model, count_params, get_model, list_models, num_params, paper_lr)
from etio.traces.training import TrainJob, train_job
from tests.support.repo import REPO

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


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

def test_every_architecture_is_a_registered_folder():
    assert list_models() == ("alexnetwol", "densenet161", "mlp_1hidden", "resnet34", "wide_resnet")
    families = {name: get_model(name) for name in list_models()}
    assert all(isinstance(f, ModelFamily) and f.name == name for name, f in families.items())
    assert [name for name, f in families.items() if f.mixed_widths] == ["mlp_1hidden"]


def test_an_unknown_architecture_is_one_input_error():
    with pytest.raises(EtioInputError, match=r"^unknown architecture 'vgg'; known architectures: alexnetwol, "
                                             r"densenet161, mlp_1hidden, resnet34, wide_resnet$"):
        get_model("vgg")


def test_listing_and_looking_up_architectures_load_no_torch():
    # a config check and a study's plan ask the registry before any model is built
    probe = ("import sys\n"
             "from etio.traces.models import get_model, list_models\n"
             "print([get_model(n).mixed_widths for n in list_models()], 'torch' in sys.modules)\n"
             "get_model('mlp_1hidden').network\n"
             "print('torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[False, False, True, False, False] False", "True"]


def test_the_paper_grid_names_registered_architectures_with_the_paper_counts():
    assert set(PAPER_WIDTHS) == set(PAPER_ARCHITECTURES) == set(AUTHORS_WIDTHS) <= set(list_models())
    assert {a for a, _ in AUTHORS_NUM_PARAMS} == set(PAPER_ARCHITECTURES)
    for arch, table in (("resnet34", RESNET34), ("densenet161", DENSENET161), ("alexnetwol", ALEXNETWOL)):
        assert {w: AUTHORS_NUM_PARAMS[(arch, w)] for w in AUTHORS_WIDTHS[arch]} == table
    assert {w: AUTHORS_NUM_PARAMS[("mlp_1hidden", w)][0] for w in AUTHORS_WIDTHS["mlp_1hidden"]} == \
        {w: n for w, n in MLP_MNIST.items() if w >= 16}
    assert paper_lr("alexnetwol", "ce", 0.1) == 0.01 and paper_lr("alexnetwol", "mse", 0.1) == 0.1


class _WithoutStackedForm(ModelFamily):
    """A family as one without ``stacked_features`` would be: its models run under vmap."""

    def _hook(self, what):
        return None if what == "stacked_features" else super()._hook(what)


def test_a_family_without_a_stacked_form_runs_under_vmap_with_each_models_logits():
    models = []
    for i in range(3):
        torch.manual_seed(i)
        models.append(build_model("alexnetwol", 2, 10, CIFAR).eval())
    state = {k: torch.stack([m.state_dict()[k] for m in models]) for k in models[0].state_dict()}
    x = torch.randn(4, *CIFAR, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.stack([m(x) for m in models])
        under_vmap = _WithoutStackedForm("alexnetwol").query_forward(2, 10, CIFAR)(state, x, False)
        stacked = get_model("alexnetwol").query_forward(2, 10, CIFAR)(state, x, False)
    torch.testing.assert_close(under_vmap, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stacked, expected, rtol=1e-4, atol=1e-5)


def test_only_a_family_that_pads_mixes_widths_in_one_job():
    info = dataclasses.replace(DATASETS["cifar10"], pool_size=8)
    job = TrainJob(info, "resnet34", [(2, Variant("ce", 5e-4, True, 0.1)), (4, Variant("ce", 5e-4, True, 0.1))],
                   torch.arange(8).view(2, 4), [1, 2], [1], Training(batch_size=4), 0)
    with pytest.raises(ValueError, match="resnet34 members of different widths cannot share a job"):
        next(train_job(job, torch.zeros(8, *CIFAR), torch.zeros(8, dtype=torch.long)))


@pytest.mark.parametrize("loss, widths", [("ce", [3, 8]), ("mse", [3, 8]), ("ce", [5])])
def test_the_mlp_training_step_gives_autograds_logits_and_gradients_to_the_bit(loss, widths):
    """The MLP's training forward (its own backward over buffers reused from step to step) against
    ``torch.autograd.grad`` of the plain batched ``matmul``s: mixed widths (zero-padded) or one member, two
    models per width, batches of changing size (the buffers are reused and cut), both losses."""
    from etio.traces.models.mlp_1hidden.network import mlp_forward

    k, n_in, c = 2, 12, 5
    g = torch.Generator().manual_seed(0)
    states = [[{"hidden.weight": torch.randn(w, n_in, generator=g), "output.weight": torch.randn(c, w, generator=g)}
               for _ in range(k)] for w in widths]
    params, buffers, forward = get_model("mlp_1hidden").train_forward(states, widths, c, (n_in,), "cpu")
    w1, w2 = (params[n].requires_grad_(True) for n in ("hidden.weight", "output.weight"))
    v = len(widths)
    for b in (7, 4, 7):
        x = torch.randn(k, b, n_in, generator=g)
        y = torch.randint(0, c, (v * k, b), generator=g)
        expected = mlp_forward(w1.view(v, k, *w1.shape[1:]), w2.view(v, k, *w2.shape[1:]), x).reshape(v * k, b, c)
        logits = forward(params, buffers, x)
        assert torch.equal(logits, expected)

        def loss_of(out):
            if loss == "ce":
                return torch.nn.functional.cross_entropy(out.reshape(-1, c), y.reshape(-1), reduction="none").sum()
            return (out.softmax(-1) - torch.nn.functional.one_hot(y, c)).pow(2).mean((-1, -2)).sum()

        want = torch.autograd.grad(loss_of(expected), [w1, w2])
        got = torch.autograd.grad(loss_of(logits), [w1, w2])
        for a, e in zip(got, want):
            assert torch.equal(a, e)


def test_a_second_mlp_training_forward_before_the_backward_fails_the_first_backward():
    """Its blocks are reused: the first step's backward must not silently read the second step's values."""
    states = [[{"hidden.weight": torch.ones(3, 4), "output.weight": torch.ones(2, 3)}]]
    params, buffers, forward = get_model("mlp_1hidden").train_forward(states, [3], 2, (4,), "cpu")
    for p in params.values():
        p.requires_grad_(True)
    first = forward(params, buffers, torch.ones(1, 5, 4)).sum()
    forward(params, buffers, torch.zeros(1, 5, 4))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(first, list(params.values()))
