"""On a CUDA device: the batched trainer (MLP and the vmap CNN path) and the attacks give what
they give on the CPU. Skipped without CUDA (tests marked ``gpu``, see conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from etio.traces.config import Training
from etio.traces.datasets import DATASETS, disjoint_split, load
from etio.traces.training import TrainJob, Variant, train_job

pytestmark = pytest.mark.gpu

TRAINING = Training(batch_size=16, lr_step_size=2, lr_decay=0.1)


def _final(job, px, py, device):
    snap = list(train_job(job, px, py, device))[-1]
    return {n: t.cpu() for n, t in snap.state(0).items()}, [o.cpu() for o in snap.outputs(px.to(device),
                                                                                      px[:7].to(device), chunk=5)]


def test_batched_mlp_training_on_cuda_equals_cpu():
    digits = load("digits")
    info = DATASETS["digits"]
    subsets = torch.as_tensor(disjoint_split(info.pool_size, 40, 1, 0))[:4]
    members = [(8, Variant("ce", 5e-4, True, 0.1)), (8, Variant("mse", 5e-3, False, 0.1))]
    job = TrainJob(info, "mlp_1hidden", members, subsets, [1, 2, 3, 4], [3], TRAINING, seed=0)
    cpu_state, cpu_out = _final(job, digits.pool_x, digits.pool_y, "cpu")
    gpu_state, gpu_out = _final(job, digits.pool_x, digits.pool_y, "cuda")
    for name in cpu_state:
        torch.testing.assert_close(gpu_state[name], cpu_state[name], rtol=1e-3, atol=1e-4)
    for a, b in zip(gpu_out, cpu_out):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_batched_cnn_training_on_cuda_equals_cpu():
    info = dataclasses.replace(DATASETS["cifar10"], pool_size=48)
    gen = torch.Generator().manual_seed(0)
    px, py = torch.randn(48, 3, 32, 32, generator=gen), torch.randint(0, 10, (48,), generator=gen)
    subsets = torch.as_tensor(disjoint_split(48, 16, 1, 0))[:2]
    job = TrainJob(info, "resnet34", [(2, Variant("ce", 5e-4, True, 0.01))], subsets, [1, 2], [2], TRAINING, seed=0)
    cpu_state, cpu_out = _final(job, px, py, "cpu")
    gpu_state, gpu_out = _final(job, px, py, "cuda")
    for name in cpu_state:
        torch.testing.assert_close(gpu_state[name].float(), cpu_state[name].float(), rtol=1e-2, atol=1e-3)
    for a, b in zip(gpu_out, cpu_out):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


def test_attacks_on_cuda_equal_cpu():
    from tests.support.ensembles import synthetic_config
    from etio.attacks.outputs import ModelOutputs
    from etio.attacks.settings import AttackSettings, MemGuardTable
    from etio.attacks.stage import attack_configuration

    cfg = synthetic_config("ce", repeats=2, per_repeat=5, subset=60, n_test=200, seed=1)
    settings = AttackSettings(mlleak_tuples=4, mlleak_epochs=30, memguard=MemGuardTable(weight_decays=()))
    results = {}
    for device in ("cpu", "cuda"):
        out: dict = {}
        attack_configuration(cfg.view, ModelOutputs(cfg.splits, cfg.ensemble, device), ["top3", "threshold"],
                             settings, out.__setitem__)
        results[device] = out
    for column in ("ThresholdMemAcc", "ThresholdNonMemAcc", "ThresholdAcc"):
        assert results["cuda"]["threshold"][column] == pytest.approx(results["cpu"]["threshold"][column], abs=1e-3)
    # The same seeds give the same attack models up to float rounding: accuracies agree closely.
    assert results["cuda"]["top3"]["Top3MLLeakAcc"] == pytest.approx(results["cpu"]["top3"]["Top3MLLeakAcc"], abs=0.02)
    assert results["cuda"]["top3"]["tuples"] == results["cpu"]["top3"]["tuples"]
