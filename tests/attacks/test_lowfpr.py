"""Membership inference at low FPR: LiRA and RMIA against their definitions, the reference rules,
ROC metrics against scikit-learn on the stored scores, the ε bound by hand, and the attack on a
small study."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from etio.attacks.lira import (LIRA_VARIANTS, leave_one_out_statistics, lira_scores, logit_confidence,
                               reference_statistics)
from etio.attacks.rmia import choose_a, marginal, out_reference_mean, out_reference_means, rmia_scores
from etio.attacks.roc import RocSettings, epsilon_lower_bound, roc_curve_points, roc_metrics
from tests.support.repo import MINI, REPO


def _gaussian_study(seed=0, models=8, points=30, shift=1.5):
    """φ of every model on every point: N(μ_x, 1) for non-members, N(μ_x + shift, 1) for members;
    each point a member of half the models (a pattern that varies by point)."""
    rng = np.random.default_rng(seed)
    inside = np.zeros((models, points), dtype=bool)
    for x in range(points):
        inside[rng.permutation(models)[: models // 2], x] = True
    mu = rng.normal(0, 2, size=points)
    phi = rng.normal(mu + shift * inside, 1.0)
    return phi, inside


def _by_definition(phi, inside, t, x):
    """The four LiRA scores of target t on point x, reference by reference, with scipy's normal; the fixed
    variance is LiRA's global σ of each side, pooled over every point and every model."""
    others = [m for m in range(phi.shape[0]) if m != t]
    ins = np.array([phi[m, x] for m in others if inside[m, x]])
    outs = np.array([phi[m, x] for m in others if not inside[m, x]])

    def pooled(side_in: bool):
        resid, dof = 0.0, 0
        for y in range(phi.shape[1]):
            v = np.array([phi[m, y] for m in range(phi.shape[0]) if inside[m, y] == side_in])
            if len(v):
                resid += ((v - v.mean()) ** 2).sum()
                dof += len(v) - 1
        return math.sqrt(resid / dof)

    s_in, s_out = np.std(ins, ddof=1), np.std(outs, ddof=1)
    m_in, m_out = np.median(ins), np.median(outs)
    p_in, p_out = pooled(True), pooled(False)
    v = phi[t, x]
    return {
        "offline": -stats.norm.logsf(v, m_out, s_out),
        "offline_fixed": -stats.norm.logsf(v, m_out, p_out),
        "online": stats.norm.logpdf(v, m_in, s_in) - stats.norm.logpdf(v, m_out, s_out),
        "online_fixed": stats.norm.logpdf(v, m_in, p_in) - stats.norm.logpdf(v, m_out, p_out),
    }


def _leave_one_out_by_whole_arrays(values, mask):
    """Every target's side statistics as whole-array expressions over a per-point sort along the models: the
    arithmetic whose bits LiRA's scores have (the function under test computes them otherwise)."""
    n_models = values.shape[0]
    k = mask.sum(axis=0)
    order = np.argsort(np.where(mask, values, np.inf), axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_models)[:, None].repeat(values.shape[1], axis=1), axis=0)
    count = k[None, :] - mask
    removed = np.where(mask, rank, n_models)

    def at(i):
        return np.take_along_axis(ordered, np.clip(i + (i >= removed), 0, n_models - 1), axis=0)

    lo, hi = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    median = np.where(count > 0, (at(lo) + at(hi)) / 2, np.nan)
    centre = np.where(mask, values, 0.0).sum(axis=0) / np.maximum(k, 1)
    dev = np.where(mask, values - centre, 0.0)
    total, squares = dev.sum(axis=0)[None, :] - dev * mask, (dev ** 2).sum(axis=0)[None, :] - dev ** 2 * mask
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.maximum(squares - np.where(count > 0, total ** 2 / np.maximum(count, 1), 0.0), 0.0)
        sd = np.where(count >= 2, np.sqrt(within / (count - 1)), np.nan)
        dof = np.maximum(count - 1, 0).sum(axis=1)
        pooled = np.where(dof > 0, np.sqrt(within.sum(axis=1) / np.maximum(dof, 1)), np.nan)
    return {"median": median, "sd": sd, "pooled": pooled, "count": count}


@pytest.mark.parametrize("models", [1, 2, 3, 6, 41])
def test_leave_one_out_statistics_to_the_bit(models):
    rng = np.random.default_rng(models)
    points = 300
    inside = rng.random((models, points)) < 0.35
    values = np.round(rng.normal(size=(models, points)) * 3 + inside, 1)      # ties
    values[0, :3] = -np.inf
    for mask in (inside, ~inside):
        with np.errstate(invalid="ignore"):         # −inf − (−inf), as in lira_scores
            got, want = leave_one_out_statistics(values, mask), _leave_one_out_by_whole_arrays(values, mask)
        for name in ("median", "sd", "pooled", "count"):
            assert np.array_equal(got[name], want[name], equal_nan=True), name


@pytest.mark.parametrize("models", [1, 2, 3, 6, 41])
def test_leave_one_out_statistics_are_those_of_the_other_models_of_the_side(models):
    rng = np.random.default_rng(models + 100)
    points = 300
    inside = rng.random((models, points)) < 0.35
    values = np.round(rng.normal(size=(models, points)) * 3 + inside, 1)      # ties
    values[0, :6] = np.nan                                                   # a model with NaN outputs
    values[-1, 3:9] = np.inf                                                 # ... and one with +inf
    values[rng.random((models, points)) < 0.02] = np.inf
    for mask in (inside, ~inside):
        with np.errstate(invalid="ignore"):         # inf − inf, as in lira_scores
            got = leave_one_out_statistics(values, mask)
        for t in range(models):
            others = mask.copy()
            others[t] = False
            with np.errstate(invalid="ignore"):
                one = reference_statistics(values, others)
            assert np.array_equal(got["median"][t], one["median"], equal_nan=True), t
            assert np.array_equal(got["count"][t], one["count"])
            # by difference: a zero spread comes out as rounding, about 1e-8; and a side whose sums are not
            # finite gives none, even to the target whose own ±inf or NaN made them so (its score is NaN anyway)
            finite = np.isfinite(one["sd"]) & np.isfinite(values[t])
            assert np.allclose(got["sd"][t][finite], one["sd"][finite], rtol=1e-9, atol=1e-7)


def test_lira_scores_equal_the_gaussian_likelihood_ratio_and_one_sided_test():
    phi, inside = _gaussian_study()
    scores = lira_scores(phi, inside)
    for t in (0, 3, 7):
        for x in range(phi.shape[1]):
            expected = _by_definition(phi, inside, t, x)
            for variant in LIRA_VARIANTS:
                assert scores[variant][t, x] == pytest.approx(expected[variant], abs=1e-9, rel=1e-9), (variant, t, x)


def test_all_targets_at_once_equal_one_target_at_a_time_and_the_reference_limit_holds():
    phi, inside = _gaussian_study(seed=4, models=9, points=200)
    fast = lira_scores(phi, inside)                          # every target at once (leave one out)
    looped = lira_scores(phi, inside, references=9)          # one target at a time; 9 limits nothing
    for variant in LIRA_VARIANTS:
        np.testing.assert_allclose(fast[variant], looped[variant], rtol=1e-9, atol=1e-9, equal_nan=True)
    # at most two references per side: target 0's OUT references on point x are the first two others
    limited = lira_scores(phi, inside, references=2)
    for x in range(5):
        outs = [m for m in range(1, 9) if not inside[m, x]][:2]
        v = phi[outs, x]
        assert limited["offline"][0, x] == pytest.approx(-stats.norm.logsf(phi[0, x], v.mean(), np.std(v, ddof=1)),
                                                         abs=1e-9)


def test_rmia_probability_is_the_softmax_of_the_true_label():
    from etio.attacks.rmia import true_label_probability

    logits = torch.randn(3, 50, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4
    labels = torch.randint(10, (50,), generator=torch.Generator().manual_seed(1))
    softmax = torch.softmax(logits, -1).gather(-1, labels.expand(3, 50).unsqueeze(-1)).squeeze(-1).numpy()
    np.testing.assert_allclose(true_label_probability(logit_confidence(logits, labels).numpy()), softmax,
                               rtol=1e-12, atol=1e-15)


def test_logit_confidence_is_log_odds_and_stays_finite():
    logits = torch.tensor([[[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [800.0, 0.0, 1.0]]])
    labels = torch.tensor([0, 2, 0])
    phi = logit_confidence(logits, labels)[0].numpy()
    p = torch.softmax(logits.double(), -1)[0].numpy()
    assert phi[0] == pytest.approx(math.log(p[0, 0] / (1 - p[0, 0])), abs=1e-12)
    assert phi[1] == pytest.approx(math.log(0.5), abs=1e-12)            # 1/3 against 2/3
    assert phi[2] == pytest.approx(800.0 - math.log(1 + math.e), abs=1e-9)   # p_y rounds to 1; φ does not


def test_offline_never_uses_a_model_that_trained_on_the_point():
    # Target 0 and model 1 trained on point 0; models 2-5 did not. Model 1's φ there is huge.
    phi = np.array([[3.0, 0.1], [50.0, 0.2], [0.0, 0.3], [1.0, 0.4], [-1.0, 0.5], [0.5, 0.6]])
    inside = np.zeros_like(phi, dtype=bool)
    inside[[0, 1], 0] = True
    scores = lira_scores(phi, inside)
    outs = phi[2:, 0]
    assert scores["offline"][0, 0] == pytest.approx(-stats.norm.logsf(3.0, np.median(outs), np.std(outs, ddof=1)),
                                                    abs=1e-12)
    # Were model 1 an OUT reference, the answer would change; moving its φ leaves offline unchanged.
    with_it = -stats.norm.logsf(3.0, np.median(phi[1:, 0]), np.std(phi[1:, 0], ddof=1))
    assert abs(with_it - scores["offline"][0, 0]) > 1.0
    moved = phi.copy()
    moved[1, 0] = -50.0
    assert lira_scores(moved, inside)["offline"][0, 0] == scores["offline"][0, 0]
    # the target is never its own reference: on point 1 (a member of none) its references are models 1-5
    own = phi.copy()
    own[0, 1] = 9.0
    refs = phi[1:, 1]
    assert lira_scores(own, inside)["offline"][0, 1] == pytest.approx(
        -stats.norm.logsf(9.0, np.median(refs), np.std(refs, ddof=1)), rel=1e-12)
    # one IN reference besides the target (model 1): no per-example σ_in, but the global σ serves; with none
    # (point 1, a member of no model) there is no online score at all
    assert np.isnan(scores["online"][0, 0])
    sd_in = math.sqrt(((phi[[0, 1], 0] - phi[[0, 1], 0].mean()) ** 2).sum())          # the only IN pair
    out_values = [phi[2:, 0], phi[:, 1]]
    sd_out = math.sqrt(sum(((v - v.mean()) ** 2).sum() for v in out_values) / sum(len(v) - 1 for v in out_values))
    assert scores["online_fixed"][0, 0] == pytest.approx(
        stats.norm.logpdf(3.0, 50.0, sd_in) - stats.norm.logpdf(3.0, np.median(outs), sd_out), abs=1e-9)
    assert np.isnan(scores["online"][0, 1]) and np.isnan(scores["online_fixed"][0, 1])


def test_rmia_scores_follow_the_pairwise_definition():
    rng = np.random.default_rng(3)
    models, points = 6, 40
    prob = rng.uniform(0.05, 0.95, size=(models, points))
    inside = np.zeros((models, points), dtype=bool)
    inside[rng.integers(models, size=25), np.arange(25)] = True           # points 25.. are the population
    population = np.arange(25, points)
    for gamma, a in ((1.0, 0.3), (2.0, 0.0), (1.5, 1.0)):
        scores = rmia_scores(prob, inside, population, a, gamma)
        for t in (0, 4):
            ref = [m for m in range(models) if m != t]

            def pr(y):
                outs = [prob[m, y] for m in ref if not inside[m, y]]
                return 0.5 * ((1 + a) * np.mean(outs) + (1 - a))

            for x in range(points):
                zs = [z for z in population if z != x]
                wins = sum((prob[t, x] / pr(x)) / (prob[t, z] / pr(z)) >= gamma for z in zs)
                assert scores[t, x] == pytest.approx(wins / len(zs), abs=1e-12), (gamma, a, t, x)
    assert marginal(np.array([0.4]), 1.0)[0] == pytest.approx(0.4)       # a = 1: Pr(x) = Pr_OUT(x)
    assert marginal(np.array([0.4]), 0.0)[0] == pytest.approx(0.7)


@pytest.mark.parametrize("models", [1, 2, 7, 40])
def test_out_reference_means_of_every_target_are_each_targets_mean_to_the_bit(models):
    rng = np.random.default_rng(models)
    points = 203
    prob = rng.uniform(0, 1, size=(models, points)) ** 3
    prob[rng.random((models, points)) < 0.05] = 0.0
    prob[0, 7] = np.nan                                   # a NaN of a reference spreads, of a member does not
    inside = rng.random((models, points)) < 0.4
    inside[:, 11] = True                                  # no reference: NaN
    together = out_reference_means(prob, inside, columns=16)
    for t in range(models):
        alone = out_reference_mean(prob, inside, t)
        assert np.array_equal(together[t], alone, equal_nan=True)
        # the sum in model order, one reference at a time, as written out here
        for x in (0, 7, 11, 100, 202):
            refs = [m for m in range(models) if m != t and not inside[m, x]]
            total = 0.0
            for m in refs:
                total += prob[m, x]
            expected = total / len(refs) if refs else np.nan
            assert together[t, x] == expected or (np.isnan(expected) and np.isnan(together[t, x]))
    limited = out_reference_means(prob, inside, references=2)
    for t in range(models):
        for x in (0, 7, 11, 100, 202):                    # the first two references in model order
            refs = [m for m in range(models) if m != t and not inside[m, x]][:2]
            expected = (0.0 + prob[refs[0], x] + (prob[refs[1], x] if len(refs) > 1 else 0.0)) / len(refs) \
                if refs else np.nan
            assert limited[t, x] == expected or (np.isnan(expected) and np.isnan(limited[t, x]))


def test_rmia_a_is_the_best_on_a_reference_model():
    rng = np.random.default_rng(5)
    models, points = 6, 200
    inside = np.zeros((models, points), dtype=bool)
    inside[np.arange(150) % models, np.arange(150)] = True
    prob = np.clip(rng.uniform(0.2, 0.8, size=(models, points)) + 0.15 * inside, 0, 1)
    population = np.arange(150, points)
    a, aucs = choose_a(prob, inside, population, gamma=1.0)
    from sklearn.metrics import roc_auc_score

    rows = inside[0] | (np.arange(points) >= 150)
    for key, value in aucs.items():
        s = rmia_scores(prob, inside, population, float(key), 1.0)[0]
        assert value == pytest.approx(roc_auc_score(inside[0][rows], s[rows]), abs=1e-12)
    assert aucs[f"{a:g}"] == max(aucs.values())


def test_epsilon_bound_of_a_known_pair_by_hand():
    # 900 of 1000 members found, 10 of 1000 non-members called members, δ = 1e-5, 95 % one-sided bounds
    tpr_lo = stats.binomtest(900, 1000).proportion_ci(0.90, method="exact").low
    fpr_hi = stats.binomtest(10, 1000).proportion_ci(0.90, method="exact").high
    hand = max(math.log((tpr_lo - 1e-5) / fpr_hi), math.log((1 - fpr_hi - 1e-5) / (1 - tpr_lo)))
    assert float(epsilon_lower_bound(900, 1000, 10, 1000, 1e-5)) == pytest.approx(hand, rel=1e-9)
    assert 3.0 < hand < 4.5
    # no evidence, no leakage
    assert float(epsilon_lower_bound(500, 1000, 500, 1000, 1e-5)) == 0.0


@pytest.mark.parametrize("scores", ["distinct", "tied", "signed zeros"])
def test_roc_curve_points_are_sklearns_roc_curve(scores):
    """Every point of ``sklearn.metrics.roc_curve(drop_intermediate=False)``, bit for bit, over draws of sizes
    and member shares, with distinct scores, many ties, and -0.0 beside 0.0."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng({"distinct": 0, "tied": 1, "signed zeros": 2}[scores])
    for _ in range(60):
        n = int(rng.integers(2, 300))
        values = {"distinct": lambda: rng.normal(size=n), "tied": lambda: rng.integers(0, 6, n).astype(float),
                  "signed zeros": lambda: np.where(rng.random(n) < 0.5, -0.0, 0.0) + rng.integers(0, 2, n)}[scores]()
        members = rng.random(n) < rng.random()
        members[:2] = [True, False]
        fpr, tpr, _ = roc_curve(members, values, drop_intermediate=False)
        ours = roc_curve_points(members, values)
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(ours, (fpr, tpr)))


def test_roc_metrics_missing_with_a_reason_when_negatives_are_few():
    rng = np.random.default_rng(0)
    members = np.r_[np.ones(100, bool), np.zeros(500, bool)]
    out = roc_metrics(rng.normal(members * 1.0), members, RocSettings())
    assert out["TPR@0.1%"] is None and "500 non-members" in out["missing"]["TPR@0.1%"]
    assert out["TPR@1%"] is None and "needs at least 1000" in out["missing"]["TPR@1%"]
    assert 0.5 < out["AUC"] < 1 and "AUC" not in out["missing"]


# --------------------------------------------------------------------------------------
# The attack on stores
# --------------------------------------------------------------------------------------

def _mini_settings():
    import tomllib

    from etio.attacks.settings import parse_attack_settings

    return parse_attack_settings(tomllib.loads(MINI.read_text())["attacks"])


def test_every_low_fpr_column_is_filled_in_range_or_missing_with_its_reason(mini_attacked):
    from etio.core.schema import LOWFPR_COLUMNS, TRACE_COLUMNS
    from etio.traces.store import open_store

    table = pd.read_csv(mini_attacked / "traces.csv")
    assert list(table.columns) == TRACE_COLUMNS + LOWFPR_COLUMNS
    from etio.core.vocabulary import MEASURES

    store = open_store(mini_attacked)
    for (_, row), key in zip(table.iterrows(), store.keys()):
        result = store.read_attack(key, "lowfpr")
        for column in [m.column for m in MEASURES if m.stage == "lowfpr"]:
            value = row[column]
            if column.endswith("Eps"):
                assert 0 <= value < 20, (key, column, value)
            elif np.isnan(value):
                method = result["reported"][re.match(r"Threshold|LiraOffline|LiraOnline|Rmia", column).group()]
                assert result["metrics"][method]["missing"], (key, column)
                assert column.endswith("TPR0.1") and result["metrics"][method]["negatives"] < 10_000
            else:
                assert 0 <= value <= 1, (key, column, value)
        # offline attacks pool every target's pool and test non-members: enough for 0.1 %
        assert not np.isnan(row["LiraOfflineTPR0.1"]) and not np.isnan(row["RmiaTPR0.1"])
        assert row["LiraOfflineAUC"] > 0.5 and row["ThresholdAUC"] > 0.5


def test_stored_scores_give_the_stored_metrics_by_sklearn(mini_attacked):
    from sklearn.metrics import roc_auc_score, roc_curve

    from etio.traces.store import open_store

    store = open_store(mini_attacked)
    table = pd.read_csv(mini_attacked / "traces.csv")
    key = store.keys()[0]
    scores = store.read_scores(key)
    models = len([m for r in range(store.record(key).n_repeats) for m in store.record(key).model_ids(r)])
    assert len(scores) == models * (600 + 1197)
    assert (scores.groupby("model")["member"].sum() == store.record(key).train_size).all()
    assert (scores.loc[scores["test"] == 1, "member"] == 0).all()
    row = table.iloc[0]
    for prefix, column in (("Threshold", "threshold"), ("LiraOffline", "lira_offline_fixed"), ("Rmia", "rmia"),
                           ("LiraOnline", "lira_online_fixed")):
        scored = scores[np.isfinite(scores[column])]
        y, s = scored["member"].to_numpy(), scored[column].to_numpy()
        assert row[f"{prefix}AUC"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, s)
        assert row[f"{prefix}TPR1"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)
        if not np.isnan(row[f"{prefix}TPR0.1"]):
            assert row[f"{prefix}TPR0.1"] == pytest.approx(tpr[fpr <= 0.001].max(), abs=1e-12)
    online = scores[np.isfinite(scores["lira_online_fixed"])]
    assert (online["test"] == 0).all()               # a test point has no IN reference


def test_paper_attacks_roc_from_their_stored_scores(mini_attacked):
    from sklearn.metrics import roc_auc_score

    from etio.traces.store import open_store

    store = open_store(mini_attacked)
    table = pd.read_csv(mini_attacked / "traces.csv")
    settings = _mini_settings()
    for i, key in enumerate(store.keys()[:4]):
        record, splits = store.record(key), store.splits(key)
        s, n_test, pool = int(record.train_size), len(splits.test_y), len(splits.pool_y)
        # the ML-Leaks and Oak17 ROCs' non-members: per tuple every test point and every pool point outside
        # the tuple's three subsets; per Oak17 seed every test point its shadows did not use
        expected = {"top3": settings.mlleak_tuples * (n_test + pool - 3 * s),
                    "oak17": len(settings.oak17_seeds) * (n_test - min(s, n_test // 2))}
        for attack, prefix in (("top3", "Top3MLLeak"), ("oak17", "Oak17"), ("memguard", "Memguard")):
            scores = store.read_scores(key, attack)
            assert set(scores["member"]) == {0, 1}
            assert table.loc[i, f"{prefix}AUC"] == pytest.approx(roc_auc_score(scores["member"], scores["score"]),
                                                                 abs=1e-12)
            result = store.read_attack(key, attack)
            negatives = int((scores["member"] == 0).sum())
            assert result["roc"]["negatives"] == negatives == expected.get(attack, negatives)
            if negatives < 1000:
                assert np.isnan(table.loc[i, f"{prefix}TPR1"]) and "needs at least 1000" in result["roc"]["missing"]["TPR@1%"]
            else:
                assert 0 <= table.loc[i, f"{prefix}TPR1"] <= 1 and "TPR@1%" not in result["roc"]["missing"]
        assert store.read_attack(key, "memguard")["roc"]["negatives"] < 1000
        top3 = store.read_scores(key, "top3")
        # the ML-Leaks ROC: each tuple's target's whole subset, no point of its shadow's or nm's subset
        rows = splits.subsets
        for number, (t, shadow, nm) in enumerate(store.read_attack(key, "top3")["tuples"]):
            part = top3[top3["tuple"] == number]
            assert (part["model"] == t).all()
            assert set(part.loc[part["member"] == 1, "point"]) == set(rows[t - 1]) and (part.loc[part["member"] == 1, "test"] == 0).all()
            pool_points = set(part.loc[part["test"] == 0, "point"])
            assert not pool_points & (set(rows[shadow - 1]) | set(rows[nm - 1]))
            assert len(part[part["test"] == 1]) == n_test
        assert (top3.loc[top3["test"] == 1, "member"] == 0).all()
        # the AUC interval: a bootstrap over the tuples' targets; Oak17 attacks one target, so it has none
        roc = store.read_attack(key, "top3")["roc"]
        assert roc["AUC_interval"]["targets"] == top3["model"].nunique() >= 2
        assert roc["intervals"]["AUC"][0] <= roc["AUC"] <= roc["intervals"]["AUC"][1]
        assert "needs two" in store.read_attack(key, "oak17")["roc"]["missing"]["AUC interval"]


def test_rerun_is_byte_identical_and_resumes(mini_attacked, tmp_path):
    import shutil

    from tests.support.stages import attack
    from etio.traces.store import open_store

    store = open_store(mini_attacked)
    key = store.keys()[1]
    copy = tmp_path / "store"
    shutil.copytree(mini_attacked, copy)
    again = open_store(copy)
    summary = attack(again, ["top3", "oak17", "memguard", "lowfpr"], _mini_settings())
    assert summary["computed"] == 0
    # losing the scores file makes the attack count as not done; the rerun writes the same bytes
    again.scores_path(key).unlink()
    summary = attack(again, ["top3", "oak17", "memguard", "lowfpr"], _mini_settings())
    assert summary["computed"] == 1
    assert again.scores_path(key).read_bytes() == store.scores_path(key).read_bytes()
    assert (copy / "traces.csv").read_bytes() == (mini_attacked / "traces.csv").read_bytes()
    first = json.loads((store.config_dir(key) / "attacks" / "lowfpr.json").read_text())
    second = json.loads((again.config_dir(key) / "attacks" / "lowfpr.json").read_text())
    for d in (first, second):
        d.pop("seconds"), d.pop("sha256")
    assert first == second


def test_lira_finds_members_at_low_fpr_that_the_loss_threshold_misses():
    from tests.support.ensembles import synthetic_config
    from etio.attacks.lowfpr import LowFprSettings, run_lowfpr

    config = synthetic_config("ce", repeats=3, per_repeat=5)
    result = run_lowfpr(config.outputs(), [m for ids in config.view.model_ids_by_repeat for m in ids], "ce",
                        LowFprSettings())
    assert result["metrics"]["threshold"]["negatives"] == result["metrics"]["lira_offline_fixed"]["negatives"] == \
        15 * (400 + 500)
    assert result["LiraOfflineTPR1"] > result["ThresholdTPR1"] + 0.1
    assert result["LiraOnlineTPR1"] > result["ThresholdTPR1"] + 0.1
    assert result["ThresholdAUC"] > 0.8            # the models overfit: both see membership on average


def test_low_fpr_settings_are_checked_at_the_edge():
    from etio.attacks.settings import parse_attack_settings
    from etio.core.errors import EtioInputError

    with pytest.raises(EtioInputError, match=r'lira_variance = "median": must be one of fixed, per_example'):
        parse_attack_settings({"lira_variance": "median"})
    with pytest.raises(EtioInputError, match=r"rmia_gamma = 0.5: must be a finite number ≥ 1"):
        parse_attack_settings({"rmia_gamma": 0.5})
    with pytest.raises(EtioInputError, match=r"lowfpr_references = 1: must be 0 .* or at least 2"):
        parse_attack_settings({"lowfpr_references": 1})
    with pytest.raises(EtioInputError, match=r"lowfpr_delta = 1: must be a finite number in \[0, 1\)"):
        parse_attack_settings({"lowfpr_delta": 1})
    s = parse_attack_settings({"rmia_gamma": 1, "lowfpr_references": 4, "lira_variance": "per_example"}).lowfpr()
    assert (s.rmia_gamma, s.references, s.lira_variance) == (1.0, 4, "per_example")


def test_report_section_summarises_the_slices_and_draws_their_rocs(mini_attacked, tmp_path):
    from etio.core.schema import read_traces
    from etio.report.lowfpr import lowfpr_section, median_curve, summary

    traces = read_traces(mini_attacked / "traces.csv")
    table = summary(traces)
    ce = table[(table["loss"] == "ce") & (table["attack"] == "LiRA offline")].iloc[0]
    rows = traces[traces["Loss"] == "ce"]
    assert ce["configurations"] == len(rows) == 4
    assert ce["TPR1_median"] == pytest.approx(rows["LiraOfflineTPR1"].median())
    online = table[(table["attack"] == "LiRA online") & (table["loss"] == "ce")].iloc[0]
    assert online["TPR0.1_n"] == rows["LiraOnlineTPR0.1"].notna().sum() < 4      # the 9-model ones lack it
    section = lowfpr_section(traces, mini_attacked, tmp_path)
    assert section.title == "The paper's findings at low FPR"
    assert "| CE | 0.0005 | LiRA offline | 4 |" in section.markdown
    # the non-members behind the paper's attacks' ROCs: 3 tuples x (1 197 test + 600 - 3 x 100 or 200 pool points),
    # one Oak17 seed x (1 197 - 100 or 200): TPR at 1 % FPR identified for ML-Leaks everywhere, for Oak17 at 100
    assert ("- ML-Leaks (each variant): 3591–4491 non-members per configuration; its TPR is identified at 1 % FPR "
            "in 8, at 0.1 % FPR in 0 of 8 configurations.") in section.markdown
    assert ("- Shokri (Oak17): 997–1097 non-members per configuration; its TPR is identified at 1 % FPR in 4, at "
            "0.1 % FPR in 0 of 8 configurations.") in section.markdown
    svgs = sorted(p.name for p, _ in section.figures if p.suffix == ".svg")
    assert svgs == ["roc-lowfpr-wd_0.0005-ce.svg", "roc-lowfpr-wd_0.0005-mse.svg"]
    assert "LiRA offline (4)" in (tmp_path / svgs[0]).read_text()
    # the median curve: a configuration counts only from its own resolution on
    curves = [{"FPR": [0.01, 0.1, 1.0], "TPR": [0.2, 0.5, 1.0]}, {"FPR": [0.001, 0.1, 1.0], "TPR": [0.1, 0.3, 1.0]}]
    med = median_curve(curves, np.array([0.001, 0.01, 0.2]))
    assert med.tolist() == [0.1, pytest.approx(0.15), pytest.approx(0.4)]


def test_low_fpr_hypotheses_replace_only_the_outcome_and_skip_attacks_without_data():
    from etio.causal.lowfpr import LOW_FPR_PREFIX, learnable, substituted

    rng = np.random.default_rng(0)
    n = 8
    traces = pd.DataFrame({"Loss": ["ce"] * 4 + ["mse"] * 4, "WeightDecay": [5e-4] * n,
                           "ThresholdAcc": rng.uniform(0.5, 0.6, n), "ThresholdTPR1": rng.uniform(0, 0.1, n),
                           "Oak17Acc": rng.uniform(0.5, 0.6, n), "Oak17TPR1": [0.01, np.nan] * 4,
                           "Top3MLLeakTPR1": [0.02] * n, "AccDiff": rng.uniform(0, 1, n)})
    table = substituted(traces, "TPR1")
    assert table["ThresholdAcc"].tolist() == traces["ThresholdTPR1"].tolist()
    assert table["AccDiff"].tolist() == traces["AccDiff"].tolist()          # every other node unchanged
    assert table["MLLeakAcc"].isna().all()                                  # no MLLeakTPR1 column at all
    ok, reasons = learnable(table, 5e-4, "TPR1")
    assert ok == ["ThresholdAcc"]
    assert "Oak17TPR1 is missing in 2 of 4 CE configurations" in reasons["Oak17Acc"]
    assert "Top3MLLeakTPR1 is constant" in reasons["Top3MLLeakAcc"]
    assert set(reasons) | set(ok) == set(LOW_FPR_PREFIX)


def test_verdicts_at_low_fpr_are_shown_beside_accuracy():
    from etio.report.lowfpr import verdict_markdown

    verdicts = pd.DataFrame({"query": ["Q9", "Q9", "Q1"], "loss": ["ce", "mse", "ce"],
                             "claim": ["is a cause"] * 3, "accuracy (paper)": ["✓", "◦", "✓"],
                             "accuracy (sound)": ["✓", "◦", "?"], "TPR1 (paper)": ["✓", "✓", "?"],
                             "TPR1 (sound)": ["◦", "◦", "?"]})
    md = "\n".join(verdict_markdown(verdicts, {"TPR1": {"Oak17Acc": "Oak17TPR1 is missing"}}))
    assert "| Q9 | MSE | is a cause | ◦ | ◦ | ✓ | ◦ |" in md
    assert "TPR1, paper estimator: 2 of 3 verdicts answered, 1 the same as under accuracy (Q9 CE)." in md
    assert "TPR1, sound estimator: 2 of 3 verdicts answered, 1 the same as under accuracy (Q9 MSE)." in md
    assert "no TPR1 graph for Oak17Acc: Oak17TPR1 is missing." in md


def test_predictive_power_at_low_fpr_names_the_measured_outcome():
    from etio.report.lowfpr import predictive_markdown

    table = pd.DataFrame({"outcome": ["accuracy", "TPR1"], "Loss": ["ce", "ce"],
                          "Attack": ["ThresholdAcc", "ThresholdAcc"],
                          "Max Corr Var": ["LossDiff", "CentroidDistance.origin."], "Max Corr": [0.48, 0.3449],
                          "PredCor-w_dk": [0.809, 0.2951]})
    md = "\n".join(predictive_markdown(table))
    assert "| CE | ThreshAcc | LossDiff | 0.480 | 0.809 |" in md
    assert "| CE | Thresh TPR@1% | CentroidDist | 0.345 | 0.295 |" in md


def test_queries_of_every_model_on_its_subsets_stay_within_their_memory_and_give_the_same_logits(monkeypatch):
    """Every model on the subsets that cover the pool gathers n_models x rows images: on a 60 000-image
    pool with 180 models that is tens of GB unless the models are queried a group at a time. Groups
    must not change a single logit."""
    import torch

    from tests.support.ensembles import synthetic_config

    config = synthetic_config("ce", repeats=3, per_repeat=5)
    ids = [m for group in config.view.model_ids_by_repeat for m in group]
    pairs = [(m, k) for m in ids for k in ids]
    outputs = config.outputs()
    rows = torch.stack([outputs.rows(k) for _, k in pairs])
    at_once = outputs._query_each([m for m, _ in pairs], rows)
    seen = []
    query = config.ensemble.logits_each
    monkeypatch.setattr(config.ensemble, "logits_each", lambda models, x: seen.append(x.shape) or query(models, x))
    row_bytes = outputs.splits.pool_x[0].numel() * outputs.splits.pool_x.element_size()
    grouped = outputs._query_each([m for m, _ in pairs], rows, input_bytes=row_bytes * rows.shape[1] * 7)
    assert len(pairs) == 225 and max(shape[0] for shape in seen) == 7 and sum(shape[0] for shape in seen) == 225
    assert torch.equal(grouped, at_once)


# --------------------------------------------------------------------------------------
# LiRA's global σ, the AUC's bootstrap interval, the low-FPR outcomes as graph nodes
# --------------------------------------------------------------------------------------

def test_fixed_variance_is_one_global_sigma_per_side_by_hand():
    # 4 models, 3 points; IN: model 0 on points 0 and 1, model 1 on points 0 and 2, model 2 on point 1
    phi = np.array([[4.0, 5.0, 0.5],
                    [6.0, 1.0, 3.0],
                    [1.0, 7.0, 2.0],
                    [0.0, 2.0, 1.0]])
    inside = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=bool)
    # IN values per point: {4, 6}, {5, 7}, {3}: squares about their means 2 + 2 + 0 over 1 + 1 + 0 dof
    # OUT values: {1, 0}, {1, 2}, {0.5, 2, 1} (mean 7/6): 0.5 + 0.5 + 7/6 over 1 + 1 + 2 dof
    sd_in, sd_out = math.sqrt(2.0), math.sqrt((0.5 + 0.5 + 7 / 6) / 4)
    scores = lira_scores(phi, inside)
    # target 3 on point 2: OUT references models 0 and 2 (median 1.25); IN reference model 1 (3.0)
    assert scores["offline_fixed"][3, 2] == pytest.approx(-stats.norm.logsf(1.0, 1.25, sd_out), abs=1e-12)
    assert scores["online_fixed"][3, 2] == pytest.approx(
        stats.norm.logpdf(1.0, 3.0, sd_in) - stats.norm.logpdf(1.0, 1.25, sd_out), abs=1e-12)
    # target 0 on point 0 (a member): OUT references 2 and 3 (median 0.5), IN reference model 1 (6.0)
    assert scores["offline_fixed"][0, 0] == pytest.approx(-stats.norm.logsf(4.0, 0.5, sd_out), abs=1e-12)
    assert scores["online_fixed"][0, 0] == pytest.approx(
        stats.norm.logpdf(4.0, 6.0, sd_in) - stats.norm.logpdf(4.0, 0.5, sd_out), abs=1e-12)
    # the same sigma for every target: with the references limited (one target at a time) too
    limited = lira_scores(phi, inside, references=4)
    for variant in ("offline_fixed", "online_fixed"):
        np.testing.assert_allclose(limited[variant], scores[variant], rtol=1e-12, equal_nan=True)


def test_auc_interval_is_a_bootstrap_over_targets():
    from sklearn.metrics import roc_auc_score

    from etio.attacks.roc import bootstrap_auc_interval, pair_counts

    rng = np.random.default_rng(5)
    targets, points = 7, 60
    groups = np.repeat(np.arange(10, 10 + targets), points)                # target ids need not start at 0
    members = rng.random(targets * points) < 0.3
    scores = np.round(rng.normal(size=targets * points) + 0.8 * members + 0.3 * (groups % 3), 1)   # ties
    counts = pair_counts(scores, members, groups - 10, targets)
    assert counts.sum() / (members.sum() * (~members).sum()) == pytest.approx(roc_auc_score(members, scores),
                                                                              abs=1e-12)
    settings = RocSettings(bootstrap=40, bootstrap_seed=3)
    lo, hi = bootstrap_auc_interval(scores, members, groups, settings)
    # by hand: the same resamples of the targets, each drawn target's scores repeated, sklearn's AUC
    draws = np.random.default_rng(3).multinomial(targets, np.full(targets, 1 / targets), size=40)
    aucs = []
    for weights in draws:
        take = np.repeat(np.arange(len(scores)), weights[groups - 10])
        aucs.append(roc_auc_score(members[take], scores[take]))
    assert (lo, hi) == (pytest.approx(np.quantile(aucs, 0.025), abs=1e-12),
                        pytest.approx(np.quantile(aucs, 0.975), abs=1e-12))
    assert lo < roc_auc_score(members, scores) < hi
    assert bootstrap_auc_interval(scores, members, groups, settings) == (lo, hi)          # seeded
    metrics = roc_metrics(scores, members, settings, groups=groups)
    assert metrics["intervals"]["AUC"] == [lo, hi]
    assert metrics["AUC_interval"]["targets"] == targets and metrics["AUC_interval"]["resamples"] == 40
    one = roc_metrics(scores[:points], members[:points], settings, groups=groups[:points])
    assert "AUC" not in one["intervals"] and "needs two" in one["missing"]["AUC interval"]
    assert "AUC" not in roc_metrics(scores, members, settings)["intervals"]              # no targets given


def test_pair_counts_and_interval_do_not_depend_on_the_order_of_the_scores():
    from etio.attacks.roc import bootstrap_auc_interval, group_index, pair_counts

    rng = np.random.default_rng(8)
    groups = np.repeat([3, 8, 20, 21], 50)                                 # sorted: the fast path
    members = rng.random(len(groups)) < 0.4
    scores = np.round(rng.normal(size=len(groups)) + members, 1)
    shuffle = rng.permutation(len(groups))                                  # unsorted: the general path
    assert np.array_equal(group_index(groups), np.unique(groups, return_inverse=True)[1])
    assert np.array_equal(group_index(groups[shuffle]), np.unique(groups[shuffle], return_inverse=True)[1])
    counts = pair_counts(scores, members, group_index(groups), 4)
    assert np.array_equal(counts, pair_counts(scores[shuffle], members[shuffle], group_index(groups[shuffle]), 4))
    for i, gi in enumerate((3, 8, 20, 21)):
        for j, gj in enumerate((3, 8, 20, 21)):
            assert counts[i, j] == sum((a > b) + 0.5 * (a == b) for a in scores[members & (groups == gi)]
                                       for b in scores[~members & (groups == gj)])
    settings = RocSettings(bootstrap=30)
    assert bootstrap_auc_interval(scores, members, groups, settings) == \
        bootstrap_auc_interval(scores[shuffle], members[shuffle], groups[shuffle], settings)


def test_low_fpr_outcomes_are_graph_nodes_of_their_own(tmp_path):
    from etio.causal.learning import learn_all
    from etio.causal.lowfpr import learnable_outcomes, outcome_graphs
    from etio.core.layout import path as layout_path
    from etio.core.schema import features_for, from_r_name
    from etio.core.vocabulary import GRAPH_MEASURES, GRAPH_OUTCOMES, MEASURE_BY_COLUMN
    from etio.report.lowfpr import outcome_graphs_markdown

    assert GRAPH_MEASURES == [f"{p}{m}" for p in ("Threshold", "LiraOffline", "LiraOnline", "Rmia")
                              for m in ("TPR0.1", "TPR1")]
    assert GRAPH_OUTCOMES[-len(GRAPH_MEASURES):] == GRAPH_MEASURES
    assert features_for("LiraOfflineTPR1") == features_for("ThresholdAcc")          # the threshold's nodes
    assert MEASURE_BY_COLUMN["RmiaTPR0.1"].hypothesis_variables == ("LossDiff",)
    assert not MEASURE_BY_COLUMN["RmiaAUC"].centroid                                 # not a graph outcome

    traces = pd.read_csv(REPO / "etio" / "data" / "example_traces.csv")
    traces = traces[traces["WeightDecay"] == 0.0005].reset_index(drop=True)
    rng = np.random.default_rng(0)
    for column in GRAPH_MEASURES:       # a TPR that grows with the loss gap, as the study's do
        traces[column] = (0.01 + 0.05 * pd.to_numeric(traces["LossDiff"]).clip(lower=0)
                          + rng.uniform(0, 0.01, len(traces)))
    traces["LiraOnlineTPR0.1"] = np.nan                           # too few non-members everywhere
    traces.loc[traces["Loss"] == "mse", "RmiaTPR0.1"] = 0.0       # constant in one loss slice
    outcomes, reasons = learnable_outcomes(traces, 5e-4)
    assert outcomes == [c for c in GRAPH_MEASURES if c not in ("LiraOnlineTPR0.1", "RmiaTPR0.1")]
    assert "LiraOnlineTPR0.1 is missing in" in reasons["LiraOnlineTPR0.1"]
    assert reasons["RmiaTPR0.1"] == "RmiaTPR0.1 is constant over the MSE configurations"

    def learn(table, directory, names):
        return learn_all(table, directory, 5e-4, replicates=5, runs=2, attacks=names[:2], workers=1)

    summary, _ = outcome_graphs(traces, tmp_path / "g", 5e-4, learn)
    assert sorted((tmp_path / "g").glob("*.dot")) == [layout_path("graph", tmp_path / "g", loss=loss, attack=c)
                                                     for loss in ("ce", "mse")
                                                     for c in ("ThresholdTPR0.1", "ThresholdTPR1")]
    assert summary[["loss", "outcome"]].values.tolist() == [["ce", "ThresholdTPR0.1"], ["ce", "ThresholdTPR1"],
                                                           ["mse", "ThresholdTPR0.1"], ["mse", "ThresholdTPR1"]]
    results = pd.read_csv(layout_path("comparison", tmp_path / "g", wd=5e-4))
    assert summary["predcor"].tolist() == pytest.approx(results.sort_values(["Loss"], kind="stable")
                                                        ["PredCor-w_dk"].tolist(), abs=1e-12)
    assert set(summary["max_corr_variable"]) == {"LossDiff"}
    assert (summary["predcor"].abs() <= 1).all() and (summary["rows"] > 0).all()
    assert "LossDiff" in summary.iloc[1]["parents"].split(";")      # the TPR was made from the loss gap
    for _, r in summary.iterrows():      # the parents are the arcs into the outcome in the written graph
        dot = layout_path("graph", tmp_path / "g", loss=r["loss"], attack=r["outcome"]).read_text()
        into = re.findall(rf'"([^"]+)" -> "{re.escape(r["outcome"])}"', dot)
        assert sorted(from_r_name(p) for p in into) == sorted(p for p in r["parents"].split(";") if p)
    md = "\n".join(outcome_graphs_markdown(summary, {5e-4: reasons}))
    assert "| 0.0005 | CE | Thresh TPR@1% |" in md
    assert "- no graph for RMIA TPR@0.1% at weight decay 0.0005: RmiaTPR0.1 is constant over the MSE configurations." in md
