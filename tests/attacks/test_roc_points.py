"""The ML-Leaks and Oak17 ROCs on every point the attack can score soundly: which points are in them
(never one the attack model was trained on), how many non-members, each score recomputed from the
attack models, and the accuracy columns still those of the paper's balanced evaluation sets."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from etio.attacks.attack_model import AttackModelSpec, balanced_accuracies
from etio.attacks.mlleaks import VARIANTS, _pad, feature_dim, prediction_features, roc_points, summarize_mlleaks, \
    train_requested_models
from etio.attacks.outputs import derived_seed, torch_threads
from tests.attacks.test_attack_paths import echo_outputs


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def _crc(text: str) -> int:
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------
# ML-Leaks
# ---------------------------------------------------------------------------------------

#: One repeat of five models on a 20-point pool (subsets of 4), 6 test points, 3 classes.
SUBSETS = [[3, 7, 11, 0], [1, 5, 9, 13], [2, 6, 10, 14], [4, 8, 12, 16], [15, 17, 18, 19]]
N_TEST = 6


def _mlleak_case():
    g = torch.Generator().manual_seed(2)
    pool, test = torch.randn(20, 3, generator=g) * 3, torch.randn(N_TEST, 3, generator=g) * 3
    pool_y, test_y = [i % 3 for i in range(20)], [(i * 2) % 3 for i in range(N_TEST)]
    outputs = echo_outputs(pool.tolist(), pool_y, test.tolist(), test_y, SUBSETS)
    names = ["mlleak", "top3_l"]
    requests = [(t, v) for t in [(1, 2, 3), (4, 5, 1)] for v in names]
    models, data = train_requested_models(outputs, requests, AttackModelSpec(hidden=(8,), epochs=5),
                                          lambda r: derived_seed(0, *r[0], r[1]))
    points = roc_points(outputs, requests, [1, 2, 3, 4, 5])
    results = summarize_mlleaks(requests, models, data, names, points)
    return outputs, (pool, test, pool_y, test_y), names, requests, models, results


def test_mlleak_roc_holds_the_targets_subset_and_every_point_the_tuples_models_did_not_train_on():
    _, _, names, requests, _, results = _mlleak_case()
    for name in names:
        table = results[name]["scores"]
        tuples = [tuple(t) for t in results[name]["tuples"]]
        assert tuples == [(1, 2, 3), (4, 5, 1)]
        for i, (target, shadow, nm) in enumerate(tuples):
            rows = table[table["tuple"] == i]
            assert (rows["model"] == target).all()
            pool_points = set(rows["point"][rows["test"] == 0].tolist())
            # none of the points the attack model was trained on (the shadow's and nm's subsets) ...
            assert not pool_points & (set(SUBSETS[shadow - 1]) | set(SUBSETS[nm - 1])), (name, i)
            # ... and every other one: the target's subset and the other models' subsets, every test point
            others = set(range(20)) - set(SUBSETS[shadow - 1]) - set(SUBSETS[nm - 1])
            assert pool_points == others
            assert sorted(rows["point"][rows["test"] == 1].tolist()) == list(range(N_TEST))
            members = set(rows["point"][(rows["test"] == 0) & (rows["member"] == 1)].tolist())
            assert members == set(SUBSETS[target - 1]) and not (rows["member"][rows["test"] == 1]).any()
        # negatives: per tuple 6 test points and the 8 pool points of the two models outside the tuple
        roc = results[name]["roc"]
        assert (roc["positives"], roc["negatives"]) == (2 * 4, 2 * (N_TEST + 8))
        assert int((table["member"] == 0).sum()) == roc["negatives"]


def test_mlleak_roc_scores_are_the_attack_models_logit_margins_and_give_the_stored_auc():
    from sklearn.metrics import roc_auc_score

    _, (pool, test, pool_y, test_y), names, requests, models, results = _mlleak_case()
    for name in names:
        table = results[name]["scores"]
        rows = [i for i, (_, v) in enumerate(requests) if v == name]
        is_test, point = np.asarray(table["test"] == 1), np.array(table["point"], dtype=np.int64)
        logits = torch.stack([test[p] if t else pool[p] for t, p in zip(is_test, point)])
        labels = torch.tensor([test_y[p] if t else pool_y[p] for t, p in zip(is_test, point)])
        x = prediction_features(torch.softmax(logits, -1), labels, VARIANTS[name])
        for i, request in enumerate(rows):
            mine = table["tuple"] == i
            out = models.select([request]).logits(_pad(x[torch.as_tensor(np.asarray(mine))], 4).unsqueeze(0))[0]
            np.testing.assert_allclose(table["score"][mine], (out[:, 1] - out[:, 0]).numpy(), rtol=1e-5, atol=1e-5)
        assert results[name][f"{VARIANTS[name].column_prefix}AUC"] == \
            pytest.approx(roc_auc_score(table["member"], table["score"]), abs=1e-12)
        assert results[name]["roc"]["AUC_interval"]["targets"] == 2


def test_mlleak_accuracy_columns_are_the_balanced_evaluation_sets():
    """The accuracies: each tuple's target's first min(subset, test) members against as many first test
    points, predicted by the tuple's attack model, averaged over the tuples, exactly as before."""
    _, (pool, test, pool_y, test_y), names, requests, models, results = _mlleak_case()
    n = min(4, N_TEST)
    for name in names:
        variant, prefix = VARIANTS[name], VARIANTS[name].column_prefix
        mem, non = [], []
        for i, ((target, _, _), v) in enumerate(requests):
            if v != name:
                continue
            rows = SUBSETS[target - 1][:n]
            x = torch.cat([prediction_features(torch.softmax(pool[rows], -1), torch.tensor(pool_y)[rows], variant),
                           prediction_features(torch.softmax(test[:n], -1), torch.tensor(test_y[:n]), variant)])
            x = _pad(x, max(feature_dim(3, VARIANTS[r]) for _, r in requests))
            said = models.select([i]).predict_member(x.unsqueeze(0))
            m, o = balanced_accuracies(said, torch.tensor([[1] * n + [0] * n]))
            mem.append(float(m[0])), non.append(float(o[0]))
        out = results[name]
        assert out["per_tuple"]["MemAcc"] == mem and out["per_tuple"]["NonmemAcc"] == non
        assert out[f"{prefix}MemAcc"] == float(torch.tensor(mem, dtype=torch.float64).mean())
        assert out[f"{prefix}NonmemAcc"] == float(torch.tensor(non, dtype=torch.float64).mean())
        assert out["eval_size"] == n


# ---------------------------------------------------------------------------------------
# Oak17
# ---------------------------------------------------------------------------------------

def _oak17_case(monkeypatch):
    import etio.attacks.oak17 as oak17

    captured = {}
    original = oak17.train_attack_models

    def spy(train_x, train_y, spec, seeds, valid=None):
        captured["models"] = original(train_x, train_y, spec, seeds, valid=valid)
        return captured["models"]

    monkeypatch.setattr(oak17, "train_attack_models", spy)
    g = torch.Generator().manual_seed(4)
    labels = [i % 3 for i in range(36)]
    test_y = [(i * 7) % 3 for i in range(20)]
    pool, test = torch.randn(36, 3, generator=g) * 2, torch.randn(20, 3, generator=g) * 2
    subsets = [[35 - i for i in range(12)], list(range(0, 12)), list(range(12, 24))]   # target: rows 35..24
    outputs = echo_outputs(pool.tolist(), labels, test.tolist(), test_y, subsets)
    spec = AttackModelSpec(**{**oak17.SHOKRI_ATTACK_MODEL.__dict__, "epochs": 3})
    result = oak17.run_oak17(outputs, 1, [2, 3], 3, spec, [0, 1], 7, "cfg")
    return result, captured["models"], (pool, test, labels, test_y, subsets)


def _shadow_half(seed: int, m: int = 10) -> set[int]:
    perm = torch.randperm(2 * m, generator=torch.Generator().manual_seed(_crc(f"7/cfg/oak17-split/{seed}")))
    return set(perm[m:].tolist())


def test_oak17_roc_holds_the_whole_subset_and_every_test_point_the_shadows_did_not_use(monkeypatch):
    r, _, (_, _, _, _, subsets) = _oak17_case(monkeypatch)
    assert r["set_size"] == 10                        # 20 test points: 10 per side, fewer than the 12 members
    table = r["scores"]
    assert (table["model"] == 1).all() and sorted(set(table["seed"].tolist())) == [0, 1]
    for seed in (0, 1):
        rows = table[table["seed"] == seed]
        members = rows[rows["member"] == 1]
        assert (members["test"] == 0).all() and sorted(members["point"].tolist()) == sorted(subsets[0])
        non = rows[rows["member"] == 0]
        assert (non["test"] == 1).all()
        used = _shadow_half(seed)
        assert not set(non["point"].tolist()) & used, seed           # no shadow non-member of this seed
        assert set(non["point"].tolist()) == set(range(20)) - used
    roc = r["roc"]
    assert (roc["positives"], roc["negatives"]) == (2 * 12, 2 * (20 - 10))
    assert "needs two" in roc["missing"]["AUC interval"]


def test_oak17_roc_scores_come_from_the_points_class_model(monkeypatch):
    from sklearn.metrics import roc_auc_score

    r, models, (pool, test, labels, test_y, _) = _oak17_case(monkeypatch)
    table = r["scores"]
    for k, seed in enumerate((0, 1)):
        for row in table[table["seed"] == seed]:
            y = test_y[row["point"]] if row["test"] else labels[row["point"]]
            z = test[row["point"]] if row["test"] else pool[row["point"]]
            out = models.select([3 * k + y]).logits(torch.softmax(z, -1).view(1, 1, 3))[0, 0]
            assert row["score"] == pytest.approx(float(out[1] - out[0]), abs=1e-5)
    assert r["Oak17AUC"] == pytest.approx(roc_auc_score(table["member"], table["score"]), abs=1e-12)


def test_oak17_accuracy_columns_are_the_balanced_evaluation_sets(monkeypatch):
    """Per (seed, class): the target's first set_size members of the class against its half of the first
    2·set_size test points of the class, predicted by that class's model; means over classes and seeds."""
    r, models, (pool, test, labels, test_y, subsets) = _oak17_case(monkeypatch)
    mem, non = [], []
    for k, seed in enumerate((0, 1)):
        perm = torch.randperm(20, generator=torch.Generator().manual_seed(_crc(f"7/cfg/oak17-split/{seed}")))
        for c in range(3):
            ins = [j for j in subsets[0][:10] if labels[j] == c]
            outs = [int(j) for j in perm[:10] if test_y[j] == c]
            x = torch.softmax(torch.cat([pool[ins], test[outs]]), -1).unsqueeze(0)
            said = models.select([3 * k + c]).predict_member(x)[0].numpy()
            mem.append(said[:len(ins)].mean()), non.append((~said[len(ins):]).mean())
    assert r["per_class"]["MemAcc"] == pytest.approx(mem, abs=1e-12)
    assert r["per_class"]["NonmemAcc"] == pytest.approx(non, abs=1e-12)
    assert r["Oak17Acc"] == pytest.approx(np.mean((np.asarray(mem) + np.asarray(non)) / 2), abs=1e-12)
    assert r["Oak17MemAcc"] == pytest.approx(np.mean(mem), abs=1e-12)
