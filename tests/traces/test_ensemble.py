"""The stored ensemble evaluates each model as the model itself would: the CNN path (the
channel-stacked network of etio.traces.models._stacked over stacked parameters *and* BatchNorm buffers,
the path of 720 of the paper's 880 rows) for every convolutional architecture, on shared and on
per-model inputs, the MLP path, and inputs split into several chunks."""

from __future__ import annotations

import pytest
import torch

from etio.traces.models import Ensemble, build_model
from etio.traces.store import ConfigRecord


def _record(arch: str, width: int, input_shape, n_models: int) -> ConfigRecord:
    return ConfigRecord(key="k", identity={}, dataset="cifar10", arch=arch, width=width, train_size=10, loss="ce",
                        n_repeats=1, models_per_repeat=n_models, num_classes=10, input_shape=tuple(input_shape),
                        num_params=0, split_file="s.npy")


def _models(arch: str, width: int, input_shape, n: int) -> list[torch.nn.Module]:
    models = []
    for i in range(n):
        torch.manual_seed(100 + i)
        model = build_model(arch, width, 10, input_shape)
        # Non-trivial BatchNorm statistics, different per model: eval mode must use each model's own.
        g = torch.Generator().manual_seed(i)
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=g) * 0.3)
            elif name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=g) + 0.5)
        models.append(model.eval())
    return models


def _stacked(models) -> dict[str, torch.Tensor]:
    states = [m.state_dict() for m in models]
    return {k: torch.stack([s[k] for s in states]) for k in states[0]}


@pytest.mark.parametrize("arch, width", [("alexnetwol", 4), ("densenet161", 2), ("wide_resnet", 1)])
def test_every_cnn_ensemble_equals_each_model_on_shared_and_own_inputs(arch, width):
    shape = (3, 32, 32)
    models = _models(arch, width, shape, 3)
    ensemble = Ensemble(_record(arch, width, shape, 3), _stacked(models), "cpu")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, *shape, generator=gen)
    own = torch.randn(2, 3, *shape, generator=gen)                 # model 3 on own[0], model 1 on own[1]
    with torch.no_grad():
        expected = torch.stack([models[2](x), models[0](x)])
        expected_own = torch.stack([models[2](own[0]), models[0](own[1])])
    torch.testing.assert_close(ensemble.logits([3, 1], x), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ensemble.logits_each([3, 1], own), expected_own, rtol=1e-4, atol=1e-5)
    # differentiable in the inputs (the robust strategies take these gradients)
    inputs = own.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ensemble.logits_each([3, 1], inputs)[0].sum(), inputs)
    alone = own[0].clone().requires_grad_(True)
    (grad_alone,) = torch.autograd.grad(models[2](alone).sum(), alone)
    torch.testing.assert_close(grad[0], grad_alone, rtol=1e-4, atol=1e-5)
    assert torch.count_nonzero(grad[1]) == 0


def test_cnn_ensemble_with_batchnorm_buffers_equals_each_model():
    shape = (3, 32, 32)
    models = _models("resnet34", 2, shape, 3)
    assert any("running_mean" in n for n, _ in models[0].named_buffers())
    ensemble = Ensemble(_record("resnet34", 2, shape, 3), _stacked(models), "cpu")
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = torch.stack([models[2](x), models[0](x)])
    out = ensemble.logits([3, 1], x)                          # model ids are 1-based, any order
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ensemble.logits([3, 1], x, chunk=2), out, rtol=1e-5, atol=1e-6)   # 3 chunks: 2+2+1
    torch.testing.assert_close(ensemble.probs([1], x), expected[1:].softmax(-1), rtol=1e-4, atol=1e-5)
    # Swapping the buffers of two models changes their outputs: the buffers are really per model.
    swapped = _stacked(models)
    for name in [n for n, _ in models[0].named_buffers() if n.endswith("running_mean")]:
        swapped[name] = swapped[name].flip(0)
    assert not torch.allclose(Ensemble(_record("resnet34", 2, shape, 3), swapped, "cpu").logits([1], x), out[1:])


def test_mlp_ensemble_in_several_chunks_equals_each_model():
    shape = (64,)
    models = _models("mlp_1hidden", 6, shape, 2)
    ensemble = Ensemble(_record("mlp_1hidden", 6, shape, 2), _stacked(models), "cpu")
    x = torch.randn(11, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch.stack([m(x) for m in models])
    torch.testing.assert_close(ensemble.logits([1, 2], x, chunk=4), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ensemble.logits([1, 2], x, chunk=4), ensemble.logits([1, 2], x), rtol=0, atol=1e-6)
