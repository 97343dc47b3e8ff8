"""Batched training is the same mathematics as training each model alone."""

import dataclasses

import pytest
import torch

from etio.traces.config import Training
from etio.traces.datasets import DATASETS, augment_batch, disjoint_split, load
from etio.traces.training import TrainJob, Variant, derive_seed, init_state, train_job, train_one

DIGITS = DATASETS["digits"]
TRAINING = Training(batch_size=16, lr_step_size=2, lr_decay=0.1)
VARIANTS = [Variant("ce", 5e-3, True, 0.1), Variant("mse", 5e-4, False, 0.1)]


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _max_diff(model, state, j):
    return max((p.float() - state[n][j].float()).abs().max().item() for n, p in model.state_dict().items())


def test_batched_mlp_equals_one_at_a_time(digits):
    # Two widths padded into one batch, two losses/weight decays/schedulers, models of two repeats.
    subsets = torch.as_tensor(disjoint_split(DIGITS.pool_size, 40, 2, 0))
    rows, ids = [0, 1, 15, 16], [1, 2, 16, 17]
    members = [(w, v) for w in (3, 8) for v in VARIANTS]
    job = TrainJob(DIGITS, "mlp_1hidden", members, subsets[rows], ids, [2, 4], TRAINING, seed=0)
    snaps = list(train_job(job, digits.pool_x, digits.pool_y))
    assert [s.epoch for s in snaps] == [2, 4]
    for mi, (width, variant) in enumerate(members):
        state = snaps[-1].state(mi)
        assert state["hidden.weight"].shape == (4, width, 64)
        for j, mid in enumerate(ids):
            ref = train_one("mlp_1hidden", width, DIGITS, variant, subsets[rows[j]], mid, 4, TRAINING, 0,
                            digits.pool_x, digits.pool_y)
            assert _max_diff(ref, state, j) < 1e-5, (width, variant, mid)
            # and training moved the model away from its initialisation
            init = init_state("mlp_1hidden", width, DIGITS, 0, mid)
            assert (init["hidden.weight"] - state["hidden.weight"][j]).abs().max() > 1e-3


def test_zero_padded_width_is_exactly_the_narrow_model(digits):
    subsets = torch.as_tensor(disjoint_split(DIGITS.pool_size, 50, 1, 1))[:3]
    v = VARIANTS[0]
    padded = TrainJob(DIGITS, "mlp_1hidden", [(5, v), (32, v)], subsets, [1, 2, 3], [3], TRAINING, seed=1)
    alone = TrainJob(DIGITS, "mlp_1hidden", [(5, v)], subsets, [1, 2, 3], [3], TRAINING, seed=1)
    snap_p = list(train_job(padded, digits.pool_x, digits.pool_y))[-1]
    snap_a = list(train_job(alone, digits.pool_x, digits.pool_y))[-1]
    # the padded hidden units of the width-5 member are still exactly zero after training
    w1 = snap_p.params["hidden.weight"][:3]
    w2 = snap_p.params["output.weight"][:3]
    assert torch.count_nonzero(w1[:, 5:]) == 0 and torch.count_nonzero(w2[:, :, 5:]) == 0
    for name, t in snap_p.state(0).items():
        torch.testing.assert_close(t, snap_a.state(0)[name], rtol=0, atol=1e-6)


def test_batched_alexnetwol_equals_one_at_a_time():
    # vmap(functional_call) path, on random 32×32 images with the CIFAR augmentation.
    info = dataclasses.replace(DATASETS["cifar10"], pool_size=48)
    gen = torch.Generator().manual_seed(0)
    px, py = torch.randn(48, 3, 32, 32, generator=gen), torch.randint(0, 10, (48,), generator=gen)
    subsets = torch.as_tensor(disjoint_split(48, 16, 1, 0))[:2]
    members = [(4, Variant("ce", 5e-4, True, 0.01)), (4, Variant("mse", 5e-3, False, 0.05))]
    job = TrainJob(info, "alexnetwol", members, subsets, [1, 2], [2], TRAINING, seed=0)
    snap = list(train_job(job, px, py))[-1]
    for mi, (width, variant) in enumerate(members):
        for j in range(2):
            ref = train_one("alexnetwol", width, info, variant, subsets[j], j + 1, 2, TRAINING, 0, px, py)
            assert _max_diff(ref, snap.state(mi), j) < 1e-5
    train_out, test_out = snap.outputs(px, px[:5], chunk=7)
    assert train_out.shape == (2, 2, 16, 10) and test_out.shape == (2, 2, 5, 10)
    ref_out = ref.eval()(px[subsets[1]])
    torch.testing.assert_close(train_out[1, 1], ref_out, rtol=1e-4, atol=1e-4)


# Batched BatchNorm networks: each model normalises with its own batch statistics and keeps its own
# running statistics (buffers stacked on the model axis, updated in place under vmap). Checked in
# float64, where both computations are the same sums up to rounding: every tensor within
# 1e-6 × max(1, its largest magnitude) after two optimiser steps. (In float32, vmap's grouped
# convolutions sum in another order; at lr 0.1 on random images the steps of these tiny networks
# amplify that rounding about tenfold per step, so a float32 comparison would measure chaos, not
# correctness. A mix-up of two models' states would differ by O(1) in either precision.)
BN_TOLERANCE = 1e-6


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("arch", ["resnet34", "densenet161", "wide_resnet"])
def test_batched_batchnorm_nets_equal_one_at_a_time(arch, float64):
    # two optimiser steps of batch 4 (float64 convolutions are slow on the CPU: keep it small)
    info = dataclasses.replace(DATASETS["cifar10"], pool_size=16)
    training = dataclasses.replace(TRAINING, batch_size=4)
    gen = torch.Generator().manual_seed(1)
    px = torch.randn(16, 3, 32, 32, generator=gen, dtype=float64)
    py = torch.randint(0, 10, (16,), generator=gen)
    subsets = torch.as_tensor(disjoint_split(16, 8, 1, 0))
    width = 1 if arch == "wide_resnet" else 2       # the smallest: wide ResNet's width is its scale s
    members = [(width, Variant("ce", 5e-4, True, 0.1)), (width, Variant("mse", 5e-3, False, 0.05))]
    job = TrainJob(info, arch, members, subsets, [1, 2], [1], training, seed=0)
    snap = list(train_job(job, px, py))[-1]
    for mi, (width, variant) in enumerate(members):
        state = snap.state(mi)
        running = [n for n in state if n.endswith("running_mean")]
        counters = [n for n in state if n.endswith("num_batches_tracked")]
        assert running and counters, "a BatchNorm network has running statistics"
        # each model's running statistics are its own: the two models' differ
        assert (state[running[-1]][0] - state[running[-1]][1]).abs().max() > 1e-4
        for j in range(2):
            assert all(int(state[n][j]) == 2 for n in counters)        # two steps, counted per model
            ref = train_one(arch, width, info, variant, subsets[j], j + 1, 1, training, 0, px, py)
            for name, tensor in ref.state_dict().items():
                scale = max(1.0, tensor.double().abs().max().item())
                diff = (tensor.double() - state[name][j].double()).abs().max().item()
                assert diff <= BN_TOLERANCE * scale, (arch, variant.loss, j, name, diff)
    train_out, _ = snap.outputs(px, px[:3], chunk=8)
    torch.testing.assert_close(train_out[1, 1], ref.eval()(px[subsets[1]]), rtol=1e-6, atol=1e-6)


def test_augmentation_is_crop_of_padded_image_and_flip():
    info = DATASETS["cifar10"]
    x = torch.randn(2, 3, 32, 32)
    crops = torch.tensor([[4, 4], [0, 8]])
    flips = torch.tensor([False, True])
    out = augment_batch(x, crops, flips, info)
    torch.testing.assert_close(out[0], x[0])                      # centre crop, no flip: unchanged
    fill = torch.tensor([-m / s for m, s in zip(info.mean, info.std)])
    # corner (0, 8): rows −4..27, cols 4..35 of the original, then mirrored
    expected = torch.empty(3, 32, 32)
    expected[:] = fill.view(3, 1, 1)
    expected[:, 4:, :28] = x[1, :, :28, 4:]
    torch.testing.assert_close(out[1], expected.flip(-1))


def test_disjoint_split_matches_authors_scheme():
    subsets = disjoint_split(100, 20, 3, 0)
    assert subsets.shape == (15, 20)
    for r in range(3):
        block = subsets[r * 5:(r + 1) * 5]
        assert sorted(block.ravel().tolist()) == list(range(100))     # disjoint, covering the pool
    import numpy as np
    np.random.seed(0)
    first = np.arange(100)
    np.random.shuffle(first)
    assert subsets[:5].ravel().tolist() == first.tolist()


def test_seeds_are_stable():
    # The seed is the first 8 bytes (little endian, 63 bits) of the SHA-256 of the parts' repr:
    # computed here from hashlib directly, it cannot depend on the process.
    import hashlib

    parts = (0, "init", "mlp_1hidden", 8, 10, 1)
    digest = hashlib.sha256(repr(parts).encode()).digest()
    assert derive_seed(*parts) == int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
    assert derive_seed(0, "init", "mlp_1hidden", 8, 10, 1) != derive_seed(0, "init", "mlp_1hidden", 8, 10, 2)


def test_seeds_and_initial_models_are_the_same_in_another_process():
    """A fresh interpreter with a different string-hash seed derives the same seeds and initial weights."""
    import os
    import subprocess
    import sys

    code = ("from etio.traces.training import derive_seed, init_state; from etio.traces.datasets import DATASETS; "
            "print(derive_seed(0, 'order', 'digits', 40, 3)); "
            "print(repr(init_state('mlp_1hidden', 4, DATASETS['digits'], 0, 3)['hidden.weight'].flatten()[:5].tolist()))")
    # both interpreters start side by side (each spends its time importing torch)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(sys.path)})
             for hash_seed in ("1", "2")]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        outs.append(stdout.split("\n"))
    assert outs[0] == outs[1]
    assert int(outs[0][0]) == derive_seed(0, "order", "digits", 40, 3)
    here = init_state("mlp_1hidden", 4, DIGITS, 0, 3)["hidden.weight"].flatten()[:5].tolist()
    assert outs[0][1] == repr(here)
