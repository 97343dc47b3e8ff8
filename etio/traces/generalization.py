"""Generalization statistics of one configuration: accuracy, loss, bias² and variance.

Inputs are the logits of the configuration's K = N·n models (model id k = row k−1, repeat
r = rows r·n … r·n+n−1) on their own training subsets and on the test set. Everything is
computed in float64. Notation: f_m(x) = softmax output of model m, y = one-hot label,
M_r = the n models of repeat r, S_m = the subset model m trained on, T = the test set.

MSE models (bias–variance of the squared error, paper App. A; spec §4.1)::

    TestVar  = mean_r  n/(n−1) · mean_{x∈T} [ (1/n) Σ_{m∈M_r} ‖f_m(x)‖² − ‖f̄_r(x)‖² ]   (unbiased, per repeat)
    TestLoss = mean_r  (1/n) Σ_{m∈M_r} mean_{x∈T} ‖f_m(x) − y‖²
    TestBias2 = TestLoss − TestVar
    TrainVar = mean_x [ (1/c) Σ_{m∋x} ‖f_m(x)‖² − ‖(1/c) Σ_{m∋x} f_m(x)‖² ]            (pooled over repeats)
    TrainLoss = mean_x (1/c) Σ_{m∋x} ‖f_m(x) − y‖²,   TrainBias2 = TrainLoss − TrainVar = mean_x ‖f̄(x) − y‖²

where x runs over the training points covered by c ≥ 2 models (every point, c = N, with the
disjoint split). A training point is in exactly one subset per repeat, so a per-repeat train
variance does not exist; the pooled estimator over the N models that trained on x divides
by c (biased), as the authors computed it (the paper's App. A writes the 1/(n−1) form).

CE models (Yang et al. 2020 decomposition; spec §4.2), π_m(x) = softmax of model m::

    π̄(x) ∝ exp( mean_m log π_m(x) )            normalised geometric mean; test: over all K models,
                                                  train: over the c models whose subset contains x
    Loss_m  = mean_S −log π_{m,y}(x),  Bias2_m = mean_S −log π̄_y(x),  Var_m = mean_S KL(π̄(x) ‖ π_m(x))

with S = T (test) or S_m (train); each column is the mean over repeats of the mean over the
repeat's models, and Loss = Bias2 + Var holds exactly.

Accuracies are fractions; ``AccDiff = TrainAcc − TestAcc``, ``LossDiff = TestLoss − TrainLoss``.
"""

from __future__ import annotations

import torch


def generalization_stats(loss: str, train_logits, test_logits, subsets, pool_y, test_y, n_repeats: int,
                         pool_size: int) -> dict[str, float]:
    """The ten generalization columns of the trace (see the module docstring for the formulas).

    ``train_logits [K, s, C]`` (model k−1 on pool rows ``subsets[k−1]``), ``test_logits [K, T, C]``,
    ``subsets`` int64 ``[K, s]``, ``pool_y [pool_size]``, ``test_y [T]``.
    """
    train_logits = torch.as_tensor(train_logits).double()
    test_logits = torch.as_tensor(test_logits).double()
    subsets = torch.as_tensor(subsets, device=train_logits.device)
    pool_y = torch.as_tensor(pool_y, device=train_logits.device)
    test_y = torch.as_tensor(test_y, device=test_logits.device)
    train_y = pool_y[subsets]                                            # [K, s]
    fn = _mse_stats if loss == "mse" else _ce_stats
    out = fn(train_logits, test_logits, subsets, train_y, test_y, n_repeats, pool_size)
    out["TrainAcc"] = _repeat_mean((train_logits.argmax(-1) == train_y).double().mean(-1), n_repeats)
    out["TestAcc"] = _repeat_mean((test_logits.argmax(-1) == test_y).double().mean(-1), n_repeats)
    out["AccDiff"] = out["TrainAcc"] - out["TestAcc"]
    out["LossDiff"] = out["TestLoss"] - out["TrainLoss"]
    from etio.core.schema import GENERALIZATION_COLUMNS
    return {c: float(out[c]) for c in GENERALIZATION_COLUMNS}


def _repeat_mean(per_model: torch.Tensor, n_repeats: int) -> float:
    """Mean over repeats of the mean over each repeat's models."""
    return float(per_model.view(n_repeats, -1).mean(-1).mean())


def _mse_stats(train_logits, test_logits, subsets, train_y, test_y, n_repeats, pool_size):
    c = test_logits.shape[-1]
    k = test_logits.shape[0]
    n = k // n_repeats
    f_test = test_logits.softmax(-1).view(n_repeats, n, *test_logits.shape[1:])      # [N, n, T, C]
    y_test = torch.nn.functional.one_hot(test_y, c).double()
    mean_sq = f_test.pow(2).sum(-1).mean(1)                                          # [N, T]
    sq_mean = f_test.mean(1).pow(2).sum(-1)                                           # [N, T]
    test_var = (n / (n - 1)) * (mean_sq - sq_mean).mean(-1)                           # [N]
    test_loss = (f_test - y_test).pow(2).sum(-1).mean((-1, -2))                       # [N]

    f_train = train_logits.softmax(-1)                                                # [K, s, C]
    y_train = torch.nn.functional.one_hot(train_y, c).double()
    rows = subsets.reshape(-1)
    count = torch.zeros(pool_size, dtype=torch.float64, device=rows.device).index_add_(
        0, rows, torch.ones_like(rows, dtype=torch.float64))
    sum_f = torch.zeros(pool_size, c, dtype=torch.float64, device=rows.device).index_add_(0, rows, f_train.reshape(-1, c))
    sum_sq = torch.zeros(pool_size, dtype=torch.float64, device=rows.device).index_add_(
        0, rows, f_train.pow(2).sum(-1).reshape(-1))
    sum_loss = torch.zeros(pool_size, dtype=torch.float64, device=rows.device).index_add_(
        0, rows, (f_train - y_train).pow(2).sum(-1).reshape(-1))
    keep = count >= 2
    cnt = count[keep]
    train_var = (sum_sq[keep] / cnt - (sum_f[keep] / cnt[:, None]).pow(2).sum(-1)).mean()
    train_loss = (sum_loss[keep] / cnt).mean()
    return {
        "TestVar": test_var.mean(), "TestLoss": test_loss.mean(), "TestBias2": (test_loss - test_var).mean(),
        "TrainVar": train_var, "TrainLoss": train_loss, "TrainBias2": train_loss - train_var,
    }


def _ce_parts(log_p, log_centre, y):
    """Per-model mean Loss, Bias2, Var on one evaluation set: log_p [K, S, C], log_centre [K or 1, S, C]."""
    loss = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(-1)
    log_centre = log_centre.expand_as(log_p)
    bias2 = -log_centre.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(-1)
    var = (log_centre.exp() * (log_centre - log_p)).sum(-1).mean(-1)
    return loss, bias2, var


def _ce_stats(train_logits, test_logits, subsets, train_y, test_y, n_repeats, pool_size):
    c = test_logits.shape[-1]
    log_test = test_logits.log_softmax(-1)                                            # [K, T, C]
    centre_test = log_test.mean(0, keepdim=True).log_softmax(-1)                      # normalised geometric mean
    loss_te, bias_te, var_te = _ce_parts(log_test, centre_test, test_y.unsqueeze(0).expand(log_test.shape[:2]))

    log_train = train_logits.log_softmax(-1)                                          # [K, s, C]
    rows = subsets.reshape(-1)
    count = torch.zeros(pool_size, dtype=torch.float64, device=rows.device).index_add_(
        0, rows, torch.ones_like(rows, dtype=torch.float64))
    sum_log = torch.zeros(pool_size, c, dtype=torch.float64, device=rows.device).index_add_(
        0, rows, log_train.reshape(-1, c))
    centre_pool = (sum_log / count.clamp(min=1)[:, None]).log_softmax(-1)
    loss_tr, bias_tr, var_tr = _ce_parts(log_train, centre_pool[subsets], train_y)
    rm = lambda t: _repeat_mean(t, n_repeats)  # noqa: E731
    return {
        "TestLoss": rm(loss_te), "TestBias2": rm(bias_te), "TestVar": rm(var_te),
        "TrainLoss": rm(loss_tr), "TrainBias2": rm(bias_tr), "TrainVar": rm(var_tr),
    }
