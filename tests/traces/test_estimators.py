"""Bias–variance estimators and centroid distances on cases small enough to compute by hand.

Logits are written as log-probabilities, so the models' softmax outputs are exactly the
probabilities in the comments.
"""

import math

import numpy as np
import pytest
import torch

from etio.traces.centroid import centroid_distances
from etio.traces.generalization import generalization_stats


def logits(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float64))


def test_mse_test_statistics_by_hand():
    # 2 repeats × 2 models, C = 2, one test point of class 0.
    # Repeat 0: f = (1, 0), (0.5, 0.5): losses 0, 0.5 -> L = 0.25; mean ‖f‖² = 0.75, f̄ = (0.75, 0.25),
    #   ‖f̄‖² = 0.625 -> V = 2/1 · 0.125 = 0.25, B = 0.
    # Repeat 1: f = (0.5, 0.5) twice: L = 0.5, V = 0, B = 0.5.
    test = torch.stack([logits([[1.0, 1e-300]]), logits([[0.5, 0.5]]), logits([[0.5, 0.5]]), logits([[0.5, 0.5]])])
    # training: pool of 2 points (labels 0, 1); model k trains on one point: subsets [[0],[1],[0],[1]]
    # point 0 (class 0) seen by models 1 and 3 with f = (1, 0), (0.5, 0.5): var = 0.75 − 0.625 = 0.125, loss 0.25
    # point 1 (class 1) seen by models 2 and 4 with f = (0, 1), (0, 1): var 0, loss 0
    train = torch.stack([logits([[1.0, 1e-300]]), logits([[1e-300, 1.0]]), logits([[0.5, 0.5]]),
                         logits([[1e-300, 1.0]])])
    subsets = torch.tensor([[0], [1], [0], [1]])
    st = generalization_stats("mse", train, test, subsets, torch.tensor([0, 1]), torch.tensor([0]), 2, 2)
    assert st["TestLoss"] == pytest.approx(0.375, abs=1e-12)
    assert st["TestVar"] == pytest.approx(0.125, abs=1e-12)
    assert st["TestBias2"] == pytest.approx(0.25, abs=1e-12)
    assert st["TrainVar"] == pytest.approx(0.0625, abs=1e-12)       # biased, pooled over the 2 repeats
    assert st["TrainLoss"] == pytest.approx(0.125, abs=1e-12)
    assert st["TrainBias2"] == pytest.approx(0.0625, abs=1e-12)     # mean_x ‖f̄ − y‖²: (0.0625·2 + 0)/2
    assert st["TrainAcc"] == pytest.approx(1.0)                      # ties (0.5, 0.5) resolve to class 0
    assert st["TestAcc"] == pytest.approx(1.0)
    assert st["LossDiff"] == pytest.approx(0.25)


def test_ce_decomposition_by_hand():
    # One repeat of 2 models, one test point of class 0: π1 = (0.5, 0.5), π2 = (0.8, 0.2).
    # Geometric mean (√0.4, √0.1) = (0.632, 0.316), normalised: π̄ = (2/3, 1/3).
    # Bias2 = −log 2/3; Loss = (−log 0.5 − log 0.8)/2; Var = Loss − Bias2 = −log(√0.4 + √0.1).
    test = torch.stack([logits([[0.5, 0.5]]), logits([[0.8, 0.2]])])
    train = test.clone()
    subsets = torch.tensor([[0], [0]])      # both trained on pool point 0 (class 0)
    st = generalization_stats("ce", train, test, subsets, torch.tensor([0]), torch.tensor([0]), 1, 1)
    assert st["TestBias2"] == pytest.approx(-math.log(2 / 3), abs=1e-12)
    assert st["TestLoss"] == pytest.approx((-math.log(0.5) - math.log(0.8)) / 2, abs=1e-12)
    assert st["TestVar"] == pytest.approx(-math.log(math.sqrt(0.4) + math.sqrt(0.1)), abs=1e-12)
    assert st["TrainVar"] == pytest.approx(st["TestVar"], abs=1e-12)


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_loss_is_bias2_plus_var(loss):
    rng = np.random.RandomState(0)
    n_rep, n, s, pool, t, c = 3, 4, 5, 20, 30, 10
    subsets = torch.as_tensor(np.concatenate([rng.permutation(pool).reshape(n, s) for _ in range(n_rep)]))
    train = torch.as_tensor(rng.randn(n_rep * n, s, c) * 3)
    test = torch.as_tensor(rng.randn(n_rep * n, t, c) * 3)
    st = generalization_stats(loss, train, test, subsets, torch.as_tensor(rng.randint(0, c, pool)),
                              torch.as_tensor(rng.randint(0, c, t)), n_rep, pool)
    assert st["TrainBias2"] + st["TrainVar"] == pytest.approx(st["TrainLoss"], abs=1e-9)
    assert st["TestBias2"] + st["TestVar"] == pytest.approx(st["TestLoss"], abs=1e-9)
    assert st["TrainVar"] > 0 and st["TestVar"] > 0
    assert st["AccDiff"] == pytest.approx(st["TrainAcc"] - st["TestAcc"])


def test_ce_loss_matches_cross_entropy_and_mse_matches_sum_of_squares():
    rng = np.random.RandomState(1)
    train = torch.as_tensor(rng.randn(2, 3, 4))
    test = torch.as_tensor(rng.randn(2, 5, 4))
    ty = torch.as_tensor(rng.randint(0, 4, 5))
    subsets = torch.tensor([[0, 1, 2], [3, 4, 5]])
    py = torch.as_tensor(rng.randint(0, 4, 6))
    ce = generalization_stats("ce", train, test, subsets, py, ty, 1, 6)
    expected = np.mean([torch.nn.functional.cross_entropy(test[m], ty).item() for m in range(2)])
    assert ce["TestLoss"] == pytest.approx(expected, abs=1e-12)
    mse = generalization_stats("mse", train, test, subsets, py, ty, 1, 6)
    onehot = torch.nn.functional.one_hot(ty, 4).double()
    assert mse["TestLoss"] == pytest.approx(((test.softmax(-1) - onehot) ** 2).sum(-1).mean().item(), abs=1e-12)


def test_centroid_distances_by_hand():
    # CE: the centroid uses logits. Model 1: train logits (0,0,3) & (0,0,1) -> centroid (0,0,2);
    # test (0,0,0) -> distance 2. Model 2: train (1,0,0),(1,0,0); test (0,1,0) -> origin √2,
    # sorted_3 (0,0,1) vs (0,0,1) -> 0.
    train = torch.tensor([[[0.0, 0, 3], [0, 0, 1]], [[1.0, 0, 0], [1, 0, 0]]])
    test = torch.tensor([[[0.0, 0, 0]], [[0.0, 1, 0]]])
    d = centroid_distances(train, test, "ce")
    assert d["CentroidDistance(origin)"] == pytest.approx((2 + math.sqrt(2)) / 2)
    assert d["CentroidDistance(sorted_3)"] == pytest.approx((2 + 0) / 2)
    assert d["CentroidDistance(sorted_10)"] == pytest.approx(1.0)      # C = 3 < 10: all sorted entries
    # MSE: the centroid uses softmax outputs; identical outputs give distance 0.
    assert centroid_distances(test, test, "mse")["CentroidDistance(origin)"] == 0.0


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference_stats(loss, train, test, subsets, pool_y, test_y, n_rep):
    """The module docstring's formulas, one loop at a time (numpy, float64)."""
    k, _, c = test.shape
    n = k // n_rep
    out = {}
    if loss == "mse":
        f_te, f_tr = _softmax(test), _softmax(train)
        y_te = np.eye(c)[test_y]
        var_r, loss_r = [], []
        for r in range(n_rep):
            models = range(r * n, r * n + n)
            per_x = []
            for x in range(test.shape[1]):
                vecs = np.array([f_te[m, x] for m in models])
                per_x.append(n / (n - 1) * ((vecs ** 2).sum(-1).mean() - (vecs.mean(0) ** 2).sum()))
            var_r.append(np.mean(per_x))
            loss_r.append(np.mean([((f_te[m] - y_te) ** 2).sum(-1).mean() for m in models]))
        out["TestVar"], out["TestLoss"] = np.mean(var_r), np.mean(loss_r)
        seen = {}
        for m in range(k):
            for j, x in enumerate(subsets[m]):
                seen.setdefault(int(x), []).append(f_tr[m, j])
        tv, tl = [], []
        for x, vecs in seen.items():
            if len(vecs) < 2:
                continue                                   # a point seen by one model has no variance
            vecs = np.array(vecs)
            y = np.eye(c)[pool_y[x]]
            tv.append((vecs ** 2).sum(-1).mean() - (vecs.mean(0) ** 2).sum())
            tl.append(((vecs - y) ** 2).sum(-1).mean())
        out["TrainVar"], out["TrainLoss"] = np.mean(tv), np.mean(tl)
    else:
        lp_te = np.log(_softmax(test))
        centre = _softmax(lp_te.mean(0))
        out["TestLoss"] = np.mean([-lp_te[m, np.arange(len(test_y)), test_y].mean() for m in range(k)])
        out["TestBias2"] = -np.log(centre[np.arange(len(test_y)), test_y]).mean()
        out["TestVar"] = np.mean([(centre * (np.log(centre) - lp_te[m])).sum(-1).mean() for m in range(k)])
        lp_tr = np.log(_softmax(train))
        logs = {}
        for m in range(k):
            for j, x in enumerate(subsets[m]):
                logs.setdefault(int(x), []).append(lp_tr[m, j])
        centres = {x: _softmax(np.mean(v, 0)) for x, v in logs.items()}
        per_model_var, per_model_bias = [], []
        for m in range(k):
            cs = np.array([centres[int(x)] for x in subsets[m]])
            ys = pool_y[subsets[m]]
            per_model_bias.append(-np.log(cs[np.arange(len(ys)), ys]).mean())
            per_model_var.append((cs * (np.log(cs) - lp_tr[m])).sum(-1).mean())
        out["TrainBias2"], out["TrainVar"] = np.mean(per_model_bias), np.mean(per_model_var)
    out["TrainAcc"] = (train.argmax(-1) == pool_y[subsets]).mean()
    out["TestAcc"] = (test.argmax(-1) == test_y[None]).mean()
    return out


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_statistics_equal_the_formulas_written_as_loops(loss):
    # 2 repeats x 3 models; repeat 0 covers pool points 0-8, repeat 1 points 0-5 and 9-11, so
    # points 6-11 are seen by one model only. Training labels never reach the last class (4).
    rng = np.random.RandomState(3)
    n_rep, s, c, pool = 2, 3, 5, 12
    subsets = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [5, 0, 9], [1, 10, 3], [11, 2, 4]])
    pool_y = rng.randint(0, c - 1, pool)
    test_y = rng.randint(0, c, 7)
    train = rng.randn(n_rep * 3, s, c) * 2
    test = rng.randn(n_rep * 3, 7, c) * 2
    st = generalization_stats(loss, torch.as_tensor(train), torch.as_tensor(test), torch.as_tensor(subsets),
                              torch.as_tensor(pool_y), torch.as_tensor(test_y), n_rep, pool)
    for column, value in _reference_stats(loss, train, test, subsets, pool_y, test_y, n_rep).items():
        assert st[column] == pytest.approx(value, rel=1e-10), column


def test_mse_centroids_use_the_softmax_outputs():
    # Two models, 3 classes, 2 training and 4 test points: the softmax is taken per output vector.
    rng = np.random.RandomState(4)
    train, test = rng.randn(2, 2, 3) * 2, rng.randn(2, 4, 3) * 2
    d = centroid_distances(torch.as_tensor(train), torch.as_tensor(test), "mse")
    p_tr, p_te = _softmax(train), _softmax(test)
    origin = np.linalg.norm(p_tr.mean(1) - p_te.mean(1), axis=-1).mean()
    top = np.linalg.norm(np.sort(p_tr, -1).mean(1) - np.sort(p_te, -1).mean(1), axis=-1).mean()
    assert d["CentroidDistance(origin)"] == pytest.approx(origin, rel=1e-12)
    assert d["CentroidDistance(sorted_3)"] == pytest.approx(top, rel=1e-12)
    ce = centroid_distances(torch.as_tensor(train), torch.as_tensor(test), "ce")
    assert ce["CentroidDistance(origin)"] == pytest.approx(
        np.linalg.norm(train.mean(1) - test.mean(1), axis=-1).mean(), rel=1e-12)
