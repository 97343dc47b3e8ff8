"""The attacks' scoring on hand-built outputs with known answers, and the attack-stage paths
the end-to-end tests do not reach: MemGuard skipped at the high weight decay, a chosen
number of Oak17 shadows, several MemGuard targets per repeat, repeats with uneven tuple
counts, and the attack model's L2 term against a plain torch reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.support.ensembles import Splits, synthetic_config
from etio.attacks.attack_model import AttackModelSpec, balanced_accuracies, init_stacked_mlp, train_attack_models
from etio.attacks.memguard import memguard_applies, memguard_plan
from etio.attacks.mlleaks import VARIANTS, build_attack_data, draw_tuples, feature_dim, mlleak_tuples, \
    prediction_features, summarize_mlleaks, tuples_per_repeat
from etio.attacks.oak17 import oak17_set_size
from etio.attacks.outputs import ModelOutputs, derived_seed, torch_threads
from etio.attacks.settings import AttackSettings, MemGuardTable
from etio.attacks.stage import ConfigView, attack_configuration, requirement_problems
from etio.attacks.threshold import per_sample_loss, run_threshold


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


class EchoEnsemble:
    """Every model outputs its input: pool and test "inputs" are the logits themselves, so the
    outputs a test wants are written down directly."""

    def logits(self, model_ids, x):
        return x.unsqueeze(0).expand(len(model_ids), *x.shape).clone()

    def logits_each(self, model_ids, x):
        return x.clone()


def echo_outputs(pool_logits, pool_y, test_logits, test_y, subsets) -> ModelOutputs:
    splits = Splits(torch.tensor(pool_logits, dtype=torch.float32), torch.tensor(pool_y),
                    torch.tensor(test_logits, dtype=torch.float32), torch.tensor(test_y), np.asarray(subsets))
    return ModelOutputs(splits, EchoEnsemble())


# ---------------------------------------------------------------------------------------
# The threshold attack (Yeom et al.): member iff loss <= tau
# ---------------------------------------------------------------------------------------

def _mse_two_class(z: float) -> list[float]:
    """Logits (z, 0) of class 0: the MSE loss is 2 (1 - sigmoid(z))^2; z = 0 gives exactly 0.5."""
    return [z, 0.0]


def test_threshold_attack_on_losses_either_side_of_tau_and_one_equal_to_it():
    # tau = 0.5. MSE losses of the pool points (all of class 0), from 2 (1 - sigmoid(z))^2:
    #   z = 3 -> 0.009, z = 0 -> 0.5 (= tau: a member), z = -0.2 -> 0.605, z = -2 -> 1.55, z = 1 -> 0.145
    pool_z = [3.0, 0.0, -0.2, -2.0, 1.0, -0.2]
    subsets = [[0, 1, 2], [3, 4, 5],      # repeat 0: member accuracy 2/3 and 1/3 -> 1/2
               [0, 4, 1], [2, 3, 0]]      # repeat 1: 3/3 and 1/3 -> 2/3
    # Test points: z = 0 (loss = tau: called a member, wrong), -0.2 and -2 (right), 2 (loss 0.07: wrong).
    test_z = [0.0, -0.2, -2.0, 2.0]
    outputs = echo_outputs([_mse_two_class(z) for z in pool_z], [0] * 6, [_mse_two_class(z) for z in test_z],
                           [0] * 4, subsets)
    r = run_threshold(outputs, [[1, 2], [3, 4]], "mse", 0.5)
    assert r["per_repeat"]["MemAcc"] == pytest.approx([1 / 2, 2 / 3])
    assert r["per_repeat"]["NonMemAcc"] == pytest.approx([1 / 2, 1 / 2])
    assert r["ThresholdMemAcc"] == pytest.approx(7 / 12)
    assert r["ThresholdNonMemAcc"] == pytest.approx(1 / 2)
    assert r["ThresholdAcc"] == pytest.approx(13 / 24)
    assert r["Threshold"] == 0.5


def test_threshold_attack_with_cross_entropy_reads_the_true_class():
    # Three classes; the loss is -log softmax of the *true* class. Pool point 0 is confident in
    # its class 2 (loss 0.0003), point 1 puts 0.5 on its class 1 against 0.5 on class 0 (log 2 = 0.69).
    # Point 2 has probabilities (0.41, 0.59, 0) and class 0: CE loss 0.89, but MSE only 0.70.
    pool = [[0.0, 0.0, 8.0], [0.0, 0.0, -50.0], [math.log(0.41), math.log(0.59), -50.0]]
    test = [[8.0, 0.0, 0.0], [0.0, 8.0, 0.0]]     # classes 0 and 1: confidently right (loss 0.0007) and wrong (8)
    outputs = echo_outputs(pool, [2, 1, 0], test, [0, 0], [[0, 1, 2]])
    losses = per_sample_loss(outputs.on_subset(1), outputs.labels_of(1), "ce")
    expected = [-math.log(math.exp(8) / (2 + math.exp(8))), math.log(2), -math.log(0.41)]
    assert losses.tolist() == pytest.approx(expected, rel=1e-4)     # float32 outputs
    r = run_threshold(outputs, [[1]], "ce", 0.1)
    assert (r["ThresholdMemAcc"], r["ThresholdNonMemAcc"]) == pytest.approx((1 / 3, 1 / 2))
    r = run_threshold(outputs, [[1]], "ce", 0.8)                    # 0.89 > 0.8 (an MSE of 0.70 would not be)
    assert (r["ThresholdMemAcc"], r["ThresholdNonMemAcc"]) == pytest.approx((2 / 3, 1 / 2))
    r = run_threshold(outputs, [[1]], "ce", 1.0)
    assert (r["ThresholdMemAcc"], r["ThresholdNonMemAcc"]) == pytest.approx((1.0, 1 / 2))


def test_mse_per_sample_loss_is_the_squared_error_of_the_softmax():
    logits = torch.tensor([[[0.0, math.log(3.0)], [2.0, 2.0]]])           # softmax (1/4, 3/4) and (1/2, 1/2)
    loss = per_sample_loss(logits, torch.tensor([0, 1]), "mse")
    assert loss.shape == (1, 2)
    assert loss[0].tolist() == pytest.approx([(0.75 ** 2) * 2, 0.5], rel=1e-6)


# ---------------------------------------------------------------------------------------
# ML-Leaks: features, tuples, data and the balanced accuracies
# ---------------------------------------------------------------------------------------

def test_features_by_hand():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    labels = torch.tensor([2, 0])
    assert torch.equal(prediction_features(probs, labels, VARIANTS["mlleak"]), probs)   # 3 classes: unsorted
    assert torch.equal(prediction_features(probs, labels, VARIANTS["mlleak_l"]),
                       torch.tensor([[0.1, 0.6, 0.3, 2.0], [0.5, 0.2, 0.3, 0.0]]))
    assert torch.equal(prediction_features(probs, labels, VARIANTS["top3"]), torch.tensor([[0.6, 0.3, 0.1],
                                                                                          [0.5, 0.3, 0.2]]))
    wide = torch.arange(12.0).unsqueeze(0) / 66                                # 12 classes: the 10 largest, sorted
    assert torch.equal(prediction_features(wide, torch.tensor([0]), VARIANTS["mlleak"]), wide[:, 2:].flip(-1))
    assert [feature_dim(3, VARIANTS[v]) for v in ("mlleak", "mlleak_l", "top3", "top3_l")] == [3, 4, 3, 4]
    assert [feature_dim(100, VARIANTS[v]) for v in ("mlleak", "mlleak_l", "top3", "top3_l")] == [10, 11, 3, 4]


def test_features_of_stacked_softmax_vectors_are_those_of_each_stack():
    # [..., n, C] with leading dimensions (documented): each [n, C] slice as if given alone
    probs = torch.tensor([[[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], [[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]]])
    labels = torch.tensor([2, 0])
    for variant in ("mlleak", "mlleak_l", "top3", "top3_l"):
        stacked = prediction_features(probs, labels, VARIANTS[variant])
        assert torch.equal(stacked, torch.stack([prediction_features(p, labels, VARIANTS[variant]) for p in probs]))
    assert torch.equal(prediction_features(probs, labels, VARIANTS["top3_l"])[1],
                       torch.tensor([[0.7, 0.2, 0.1, 2.0], [0.6, 0.2, 0.2, 0.0]]))
    wide = torch.stack([torch.arange(12.0), torch.arange(12.0).flip(0)]).unsqueeze(1) / 66       # [2, 1, 12]
    assert torch.equal(prediction_features(wide, torch.tensor([0]), VARIANTS["mlleak"])[:, 0],
                       torch.arange(11.0, 1.0, -1).expand(2, 10) / 66)


def test_balanced_accuracies_by_hand():
    predicted = torch.tensor([[True, True, False, False, True], [False, False, False, True, True]])
    is_member = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    mem, non = balanced_accuracies(predicted, is_member)
    assert mem.tolist() == pytest.approx([2 / 3, 0.0]) and non.tolist() == pytest.approx([1 / 2, 0.0])
    valid = torch.tensor([[True, False, True, True, False], [False, False, False, True, True]])
    mem, non = balanced_accuracies(predicted, is_member, valid)
    assert mem[0].item() == pytest.approx(1 / 2) and non[0].item() == pytest.approx(1.0)
    assert math.isnan(mem[1].item()) and non[1].item() == 0.0                 # no valid member: NaN


@pytest.mark.parametrize("repeats,count,expected", [(3, 7, [3, 2, 2]), (3, 30, [10, 10, 10]), (4, 6, [2, 2, 1, 1]),
                                                    (2, 1, [1, 0])])
def test_tuples_per_repeat_spread_the_remainder_over_the_first_repeats(repeats, count, expected):
    assert tuples_per_repeat(repeats, count) == expected


def test_uneven_tuples_per_repeat():
    ids = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    tuples = draw_tuples(ids, 7, seed=11)
    owners = [next(r for r, repeat in enumerate(ids) if t[0] in repeat) for t in tuples]
    assert owners == [0, 0, 0, 1, 1, 2, 2]                                      # 3, 2, 2 and in repeat order
    for t, r in zip(tuples, owners):
        assert len(set(t)) == 3 and set(t) <= set(ids[r])
    assert len({t[0] for t in tuples[:3]}) == 3
    # MemGuard defends the first tuple(s) of each repeat's block, wherever the block starts.
    view = ConfigView("uneven", ids, 10, "ce", 0.1)
    settings = AttackSettings(mlleak_tuples=7, memguard=MemGuardTable(targets=2))
    drawn = mlleak_tuples(view, settings)
    plan = memguard_plan(view, settings)
    assert [attacker for attacker, _ in plan] == [drawn[0], drawn[1], drawn[3], drawn[4], drawn[5], drawn[6]]
    for (t, s, nm), (dt, ds, dnm) in plan:
        assert dt == ds == t and dnm not in (t, s, nm)
        assert any({t, dnm} <= set(repeat) for repeat in ids)
    assert requirement_problems(view, ["memguard"], settings) == []
    too_many = requirement_problems(view, ["memguard"], AttackSettings(mlleak_tuples=7, memguard=MemGuardTable(targets=3)))
    assert too_many and "[attacks.memguard] targets = 3" in too_many[0] and "uneven" in too_many[0]


def test_memguard_plan_with_three_models_uses_the_attackers_shadow():
    view = ConfigView("three", [[1, 2, 3]], 10, "ce", 0.1)
    ((t, s, nm), (dt, ds, dnm)), = memguard_plan(view, AttackSettings(mlleak_tuples=1))
    assert (dt, ds, dnm) == (t, t, s)


def test_attack_data_pairs_shadow_members_with_the_third_models_subset():
    # Pool logits encode the pool row (class 0 score = row index), so features show which rows were used.
    pool = [[float(i), 0.0, 0.0] for i in range(6)]
    outputs = echo_outputs(pool, [0] * 6, [[0.0, 0.0, 9.0]] * 2, [2, 2], [[0, 1], [2, 3], [4, 5]])
    data = build_attack_data(outputs, [((1, 2, 3), "mlleak")], 2)
    probs = torch.softmax(torch.tensor(pool), -1)
    assert torch.allclose(data.train_x[0], probs[[2, 3, 4, 5]])                 # shadow 2's rows, then nm 3's
    assert data.train_y[0].tolist() == [1, 1, 0, 0]
    assert torch.allclose(data.eval_x[0], torch.softmax(torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0, 9], [0, 0, 9]]), -1))
    assert data.eval_y[0].tolist() == [1, 1, 0, 0] and data.in_dims == [3]


def test_mlleak_summary_by_hand():
    from etio.attacks.attack_model import StackedMLP
    from etio.attacks.mlleaks import AttackData, RocPoints

    # Two tuples of one variant. Accuracy: attack models that always say "member" and never do (the balanced
    # sets). ROC: one linear layer whose member-minus-non-member logit is the first feature (top-3: the largest
    # probability), on points given by hand.
    class Fixed(StackedMLP):
        def predict_member(self, x):
            return torch.stack([torch.ones(4, dtype=torch.bool), torch.tensor([True, False, False, False])])

    w = torch.zeros(2, 3, 2)
    w[:, 0, 1] = 1.0
    models = Fixed([w], [torch.zeros(2, 1, 2)])
    data = AttackData(torch.zeros(2, 4, 3), torch.zeros(2, 4), torch.zeros(2, 4, 3),
                      torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]]), [3, 3])
    probs = torch.tensor([[[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.4, 0.35, 0.25]],    # target 1
                          [[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4], [0.45, 0.3, 0.25]]])  # target 4
    points = RocPoints(probs, {1: 0, 4: 1}, torch.tensor([0, 0, 2, 1]),
                       member=np.array([[True, False, False, False], [True, False, False, False]]),
                       scored=np.array([[True, True, True, True], [True, True, False, True]]),   # (4's nm trained on 2)
                       test=np.array([0, 0, 0, 1], dtype=np.int8), point=np.array([5, 6, 7, 0], dtype=np.int32))
    out = summarize_mlleaks([((1, 2, 3), "top3"), ((4, 5, 6), "top3")], models, data, ["top3"], points)["top3"]
    # tuple 1: members 2/2, non-members 0/2; tuple 2: members 1/2, non-members 2/2
    assert out["per_tuple"]["MemAcc"] == [1.0, 0.5] and out["per_tuple"]["NonmemAcc"] == [0.0, 1.0]
    assert out["per_tuple"]["Acc"] == [0.5, 0.75]
    assert out["Top3MLLeakMemAcc"] == 0.75 and out["Top3MLLeakNonmemAcc"] == 0.5 and out["Top3MLLeakAcc"] == 0.625
    assert out["tuples"] == [[1, 2, 3], [4, 5, 6]] and out["eval_size"] == 2
    # the ROC pools both tuples' scored points: members 0.9, 0.7 above 9 of the 10 (member, non-member) pairs
    table = out["scores"]
    assert table["tuple"].tolist() == [0, 0, 0, 0, 1, 1, 1] and table["model"].tolist() == [1, 1, 1, 1, 4, 4, 4]
    assert table["point"].tolist() == [5, 6, 7, 0, 5, 6, 0] and table["test"].tolist() == [0, 0, 0, 1, 0, 0, 1]
    np.testing.assert_allclose(table["score"], [0.9, 0.6, 0.5, 0.4, 0.7, 0.8, 0.45], rtol=1e-6)
    assert table["member"].tolist() == [1, 0, 0, 0, 1, 0, 0]
    assert out["Top3MLLeakAUC"] == pytest.approx(0.9, abs=1e-12)
    assert out["Top3MLLeakTPR1"] is None and "5 non-members" in out["roc"]["missing"]["TPR@1%"]


# ---------------------------------------------------------------------------------------
# The attack model's L2 term (Shokri et al.'s setting) against torch
# ---------------------------------------------------------------------------------------

def test_attack_model_l2_term_equals_torch_weight_penalty():
    """With l2 > 0 the stack minimises CE + l2 * sum of squared weight matrices (biases not
    penalised); a plain nn.Sequential with that loss and torch.optim.Adam gives the same model."""
    # 201 samples: the last mini-batch of each epoch holds one sample. A second model, stacked with
    # the first, must not add its own penalty to the first one's loss.
    g = torch.Generator().manual_seed(5)
    x = torch.randn(201, 6, generator=g)
    y = (x[:, 1] - x[:, 2] > 0).long()
    other_x = torch.randn(201, 6, generator=g) * 3
    spec = AttackModelSpec(hidden=(16,), epochs=3, l2=0.05)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    init = init_stacked_mlp([6], spec, [torch.Generator().manual_seed(9)])
    with torch.no_grad():
        for lin, w, b in zip(net[::2], init.weights, init.biases):
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0, 0])
    stacked = train_attack_models(torch.stack([x, other_x]), torch.stack([y, 1 - y]), spec, [9, 4]).select([0])
    plain = train_attack_models(x[None], y[None], AttackModelSpec(hidden=(16,), epochs=3), [9])
    gen = torch.Generator().manual_seed(9)
    init_stacked_mlp([6], spec, [gen])
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    for _ in range(spec.epochs):
        order = torch.rand(201, generator=gen).argsort()
        for start in range(0, 201, spec.batch_size):
            i = order[start:start + spec.batch_size]
            opt.zero_grad()
            penalty = sum((layer.weight ** 2).sum() for layer in net[::2])
            (torch.nn.functional.cross_entropy(net(x[i]), y[i]) + spec.l2 * penalty).backward()
            opt.step()
    with torch.no_grad():
        assert torch.allclose(net(x), stacked.logits(x[None])[0], atol=1e-4)
        assert not torch.allclose(plain.logits(x[None])[0], stacked.logits(x[None])[0], atol=1e-3)


# ---------------------------------------------------------------------------------------
# Stage paths: MemGuard at the high weight decay, Oak17 shadows, several MemGuard targets
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic():
    return synthetic_config("ce", repeats=2, per_repeat=5, subset=60, n_test=200, seed=3)


def test_memguard_is_skipped_at_a_weight_decay_it_does_not_defend(synthetic):
    # The authors ran MemGuard on the normal weight decay (5e-4) only; at 5e-3 the result says why.
    settings = AttackSettings(mlleak_tuples=2, mlleak_epochs=5, memguard=MemGuardTable(max_iteration=5, samples=10))
    high = ConfigView("high", synthetic.view.model_ids_by_repeat, 10, "ce", synthetic.view.train_loss, 0.005)
    results: dict = {}
    attack_configuration(high, synthetic.outputs(), ["memguard"], settings, results.__setitem__)
    assert list(results) == ["memguard"]
    assert results["memguard"] == {"skipped": "weight decay 0.005 not in memguard_weight_decays [0.0005]"}
    assert not memguard_applies(high, settings)
    normal = ConfigView("normal", high.model_ids_by_repeat, 10, "ce", high.train_loss, 0.0005)
    assert memguard_applies(normal, settings) and memguard_applies(high, AttackSettings(memguard=MemGuardTable(weight_decays=())))
    assert memguard_applies(ConfigView("unknown", high.model_ids_by_repeat, 10, "ce", 0.1, None), settings)
    attack_configuration(normal, synthetic.outputs(), ["memguard"], settings, results.__setitem__)
    assert "MemguardAcc" in results["memguard"] and "skipped" not in results["memguard"]


def test_oak17_with_a_chosen_number_of_shadows(synthetic):
    settings = AttackSettings(oak17_epochs=3, oak17_shadows=2, oak17_seeds=(0,))
    results: dict = {}
    attack_configuration(synthetic.view, synthetic.outputs(), ["oak17"], settings, results.__setitem__)
    first = synthetic.view.model_ids_by_repeat[0]
    r = results["oak17"]
    assert r["target"] == first[0] and r["shadows"] == first[1:3]
    assert r["set_size"] == oak17_set_size(60, 200) == 60
    assert len(r["per_class"]["Acc"]) == 10 and r["attack_model"]["l2"] == 1e-6
    every = {}
    attack_configuration(synthetic.view, synthetic.outputs(), ["oak17"], AttackSettings(oak17_epochs=3, oak17_seeds=(0,)),
                         every.__setitem__)
    assert every["oak17"]["shadows"] == first[1:]
    problems = requirement_problems(synthetic.view, ["oak17"], AttackSettings(oak17_shadows=5))
    assert problems == [f"oak17_shadows = 5 but {synthetic.view.key} has only 4 other models in its first repeat"]
    assert oak17_set_size(100, 150) == 75 and oak17_set_size(50, 150) == 50


def test_memguard_defends_several_targets_per_repeat(synthetic):
    settings = AttackSettings(mlleak_tuples=4, mlleak_epochs=20,
                              memguard=MemGuardTable(targets=2, max_iteration=30, samples=30, weight_decays=()))
    results: dict = {}
    attack_configuration(synthetic.view, synthetic.outputs(), ["memguard"], settings, results.__setitem__)
    mg = results["memguard"]
    plan = memguard_plan(synthetic.view, settings)
    assert len(plan) == 4 and [list(map(list, p)) for p in plan] == [list(map(list, t)) for t in mg["tuples"]]
    assert len({attacker[0] for attacker, _ in plan}) == 4
    assert mg["labels_unchanged"]
    assert mg["MemguardAcc"] == pytest.approx((mg["MemguardMemberAcc"] + mg["MemguardNonmemberAcc"]) / 2)


def test_derived_seeds_are_fixed_values():
    # crc32 of "0/cfg/tuples" (zlib), masked to 31 bits: stable across processes and platforms.
    import zlib

    assert derived_seed(0, "cfg", "tuples") == zlib.crc32(b"0/cfg/tuples") & 0x7FFFFFFF
    assert derived_seed(0, "cfg", "tuples") != derived_seed(1, "cfg", "tuples")


def test_mlleaks_separates_confident_members_from_flat_non_members():
    """Members' outputs are confident, every non-member's is flat: each variant's attack model
    learns that on the shadow and scores 1.0 on the target (trained and summarized as the stage does)."""
    from etio.attacks.mlleaks import roc_points, summarize_mlleaks, train_requested_models

    confident, flat = [6.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]
    pool = [confident] * 40 + [flat] * 20                   # models 1, 2: confident rows; model 3: flat rows
    subsets = [list(range(0, 20)), list(range(20, 40)), list(range(40, 60))]
    outputs = echo_outputs(pool, [0] * 60, [flat] * 30, [1] * 30, subsets)
    names = ["mlleak", "mlleak_l", "top3", "top3_l"]
    requests = [((1, 2, 3), name) for name in names]
    models, data = train_requested_models(outputs, requests, AttackModelSpec(epochs=40),
                                          lambda request: derived_seed(0, *request[0], request[1]))
    results = summarize_mlleaks(requests, models, data, names, roc_points(outputs, requests, [1, 2, 3]))
    for name in names:
        prefix = VARIANTS[name].column_prefix
        assert (results[name][f"{prefix}MemAcc"], results[name][f"{prefix}NonmemAcc"]) == (1.0, 1.0), name
        assert results[name]["eval_size"] == 20 and results[name]["tuples"] == [[1, 2, 3]]
        # the ROC: the target's 20 members against all 30 test points (the pool is the three models' subsets)
        assert (results[name]["roc"]["positives"], results[name]["roc"]["negatives"]) == (20, 30)
        assert results[name][f"{prefix}AUC"] == 1.0


def test_oak17_on_confident_members_and_flat_non_members():
    """Every model is confident in the true class of its members and flat on test points: the
    per-class attack models are perfect, and the "correctly classified" baseline is right on
    members and on the non-members of classes 1 and 2 (a flat vector's argmax is class 0)."""
    from etio.attacks.oak17 import SHOKRI_ATTACK_MODEL, run_oak17

    labels = [i % 3 for i in range(36)]
    pool = [[6.0 if j == y else 0.0 for j in range(3)] for y in labels]
    subsets = [list(range(0, 12)), list(range(12, 24)), list(range(24, 36))]
    outputs = echo_outputs(pool, labels, [[0.0, 0.0, 0.0]] * 24, [i % 3 for i in range(24)], subsets)
    spec = AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": 60})
    r = run_oak17(outputs, 1, [2, 3], 3, spec, [0, 1], 0, "cfg")
    assert (r["Oak17MemAcc"], r["Oak17NonmemAcc"], r["Oak17Acc"]) == (1.0, 1.0, 1.0)
    assert r["per_class"]["Acc"] == [1.0] * 6 and r["per_class"]["MemAcc"] == [1.0] * 6
    assert r["baseline"]["MemAcc"] == 1.0
    assert r["baseline"]["NonmemAcc"] == pytest.approx(2 / 3) and r["baseline"]["Acc"] == pytest.approx(5 / 6)
    assert (r["target"], r["shadows"], r["seeds"], r["set_size"]) == (1, [2, 3], [0, 1], 12)
    assert r["attack_model"] == {"hidden": [64], "lr": 0.01, "epochs": 60, "batch_size": 100, "l2": 1e-6}


def test_attack_model_initialisation_is_torch_linear_layers():
    """nn.Linear's default: weights and biases uniform in +-1/sqrt(fan_in), fan_in = the layer's true
    input size; rows of the first layer beyond a model's own input size are zero."""
    spec = AttackModelSpec(hidden=(64, 32))
    model = init_stacked_mlp([5, 11], spec, [torch.Generator().manual_seed(s) for s in (1, 2)])
    assert [tuple(w.shape) for w in model.weights] == [(2, 11, 64), (2, 64, 32), (2, 32, 2)]
    assert torch.count_nonzero(model.weights[0][0, 5:]) == 0 and torch.count_nonzero(model.weights[0][1]) == 11 * 64
    for layer, (w, b) in enumerate(zip(model.weights, model.biases)):
        for i, fan_in in enumerate((5, 11)):
            bound = 1 / math.sqrt(fan_in if layer == 0 else w.shape[1])
            rows = w[i, :fan_in] if layer == 0 else w[i]
            assert rows.abs().max() <= bound and b[i].abs().max() <= bound
            assert rows.max() > 0.8 * bound and rows.min() < -0.8 * bound, (layer, i)
            assert torch.count_nonzero(rows.abs().sum(-1)) == rows.shape[0]      # no zero row
            if layer < 2:
                assert b[i].max() > 0.5 * bound and b[i].min() < -0.5 * bound, (layer, i)


def test_stacked_models_with_as_many_samples_as_inputs():
    # A narrow model's features are padded to the stack's width, also when the sample count equals it.
    model = init_stacked_mlp([11, 4], AttackModelSpec(), [torch.Generator().manual_seed(s) for s in (1, 2)])
    x = torch.randn(1, 11, 4, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (0, 7))
    assert torch.equal(model.select([1]).logits(x), model.select([1]).logits(padded))


def test_oak17_classes_without_samples_and_its_seeds():
    """A class no target member or test point has gets no accuracy (None) and no baseline, and is
    left out of the means; the split of the test points depends on the base seed, the
    configuration and the attack seed, and on nothing else."""
    from etio.attacks.oak17 import SHOKRI_ATTACK_MODEL, run_oak17

    labels = [i % 3 for i in range(36)]
    pool = [[6.0 if j == y else 0.0 for j in range(4)] for y in labels]   # 4 classes, class 3 never occurs
    subsets = [list(range(0, 12)), list(range(12, 24)), list(range(24, 36))]
    outputs = echo_outputs(pool, labels, [[0.0, 0.0, 0.0, 0.0]] * 24, [i % 3 for i in range(24)], subsets)
    spec = AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": 40})
    r = run_oak17(outputs, 1, [2, 3], 4, spec, [0], 0, "cfg")
    assert r["per_class"]["Acc"] == [1.0, 1.0, 1.0, None] and r["per_class"]["NonmemAcc"] == [1.0, 1.0, 1.0, None]
    assert r["Oak17Acc"] == 1.0 and r["baseline"]["MemAcc"] == 1.0

    # Noisy outputs: which test points become the target's non-members changes the numbers.
    g = torch.Generator().manual_seed(0)
    noisy = echo_outputs(torch.randn(36, 3, generator=g).tolist(), labels, torch.randn(24, 3, generator=g).tolist(),
                         [i % 3 for i in range(24)], subsets)
    small = AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": 2})

    def per_class(**kw):
        args = {"seeds": [0], "seed_base": 0, "key": "cfg", **kw}
        return run_oak17(noisy, 1, [2, 3], 3, small, args["seeds"], args["seed_base"], args["key"])["per_class"]

    base = per_class()
    assert per_class() == base                                              # deterministic
    assert per_class(seed_base=1) != base and per_class(key="other") != base and per_class(seeds=[5]) != base


def test_oak17_split_model_seeds_features_and_baselines_by_hand(monkeypatch):
    """What Oak17 hands its attack models, and its baseline, recomputed here: the target's
    non-members are the first m of the 2m test points in the order of
    ``torch.randperm(2m)`` seeded with crc32("<seed base>/<key>/oak17-split/<attack seed>"); the
    model of (attack seed s, class c) is seeded with crc32("<seed base>/<key>/oak17-model/<s>/<c>")
    (both masked to 31 bits); the features are softmax vectors (rows sum to 1) and only each
    class's own samples are valid; the baseline calls a point a member iff its argmax is its
    class, averaged per class and then over classes."""
    import zlib

    import etio.attacks.oak17 as oak17

    def crc(text: str) -> int:
        return zlib.crc32(text.encode()) & 0x7FFFFFFF

    captured = {}
    original = oak17.train_attack_models

    def spy(train_x, train_y, spec, seeds, valid=None):
        captured.update(x=train_x, y=train_y, seeds=list(seeds), valid=valid)
        return original(train_x, train_y, spec, seeds, valid=valid)

    monkeypatch.setattr(oak17, "train_attack_models", spy)
    g = torch.Generator().manual_seed(3)
    labels = [i % 3 for i in range(36)]
    test_y = [(i * 7) % 3 for i in range(24)]
    pool, test = torch.randn(36, 3, generator=g), torch.randn(24, 3, generator=g)
    subsets = [list(range(0, 12)), list(range(12, 24)), list(range(24, 36))]
    outputs = echo_outputs(pool.tolist(), labels, test.tolist(), test_y, subsets)
    spec = AttackModelSpec(**{**oak17.SHOKRI_ATTACK_MODEL.__dict__, "epochs": 1})
    r = oak17.run_oak17(outputs, 1, [2, 3], 3, spec, [0, 4], 7, "cfg")
    m = 12
    assert captured["seeds"] == [crc(f"7/cfg/oak17-model/{s}/{c}") for s in (0, 4) for c in range(3)]
    valid = captured["valid"]
    assert valid is not None and valid.dtype == torch.bool
    x = captured["x"]
    torch.testing.assert_close(x[valid].sum(-1), torch.ones(int(valid.sum())))
    # per (seed, class) set: the shadows' m members of class c each, and their non-members of class c
    for i, (s, c) in enumerate((s, c) for s in (0, 4) for c in range(3)):
        perm = torch.randperm(2 * m, generator=torch.Generator().manual_seed(crc(f"7/cfg/oak17-split/{s}")))
        shadow_out = [int(j) for j in perm[m:] if test_y[j] == c]
        members = sum(labels[j] == c for j in list(range(12, 24)) + list(range(24, 36)))
        assert int(valid[i].sum()) == members + 2 * len(shadow_out), (s, c)
    # the baseline, from the logits by hand
    target_members = np.asarray(subsets[0])
    mem_hits, non_hits = [], []
    for s in (0, 4):
        perm = torch.randperm(2 * m, generator=torch.Generator().manual_seed(crc(f"7/cfg/oak17-split/{s}")))
        target_out = perm[:m].numpy()
        for c in range(3):
            ins = [j for j in target_members if labels[j] == c]
            outs = [j for j in target_out if test_y[j] == c]
            mem_hits.append(np.mean([int(pool[j].argmax()) == c for j in ins]))
            non_hits.append(np.mean([int(test[j].argmax()) != c for j in outs]))
    assert r["baseline"]["MemAcc"] == pytest.approx(np.mean(mem_hits))
    assert r["baseline"]["NonmemAcc"] == pytest.approx(np.mean(non_hits))
    assert r["baseline"]["Acc"] == pytest.approx(np.mean((np.asarray(mem_hits) + np.asarray(non_hits)) / 2))
    assert 0 < r["baseline"]["NonmemAcc"] < 1 and 0 < r["baseline"]["MemAcc"] < 1     # not a degenerate case


def test_oak17_set_size_is_a_whole_number_and_one_set_stacks():
    from etio.attacks.oak17 import _stack

    size = oak17_set_size(100, 151)
    assert size == 75 and isinstance(size, int)
    x, y, valid = _stack([(torch.ones(2, 3), torch.tensor([1, 0]))], "cpu")
    assert x.shape == (1, 2, 3) and y.tolist() == [[1, 0]] and valid.all()


def test_mlleak_models_get_their_own_seeds_and_input_sizes(monkeypatch):
    """Requests of different variants train together: each model gets ``seed_of`` of its own
    request and its variant's feature count (10 for ML-Leaks' sorted top 10 of 12 classes, 3 for
    top 3), so it starts as it would alone."""
    import etio.attacks.mlleaks as mlleaks

    seen = {}
    original = mlleaks.train_attack_models

    def spy(train_x, train_y, spec, seeds, in_dims=None, **kw):
        seen.update(seeds=list(seeds), in_dims=None if in_dims is None else list(in_dims))
        return original(train_x, train_y, spec, seeds, in_dims, **kw)

    monkeypatch.setattr(mlleaks, "train_attack_models", spy)
    g = torch.Generator().manual_seed(0)
    labels = [i % 12 for i in range(60)]
    outputs = echo_outputs(torch.randn(60, 12, generator=g).tolist(), labels, torch.randn(40, 12, generator=g).tolist(),
                           [i % 12 for i in range(40)], [list(range(0, 20)), list(range(20, 40)), list(range(40, 60))])
    requests = [((1, 2, 3), "mlleak"), ((1, 2, 3), "top3"), ((1, 2, 3), "top3_l")]
    mlleaks.train_requested_models(outputs, requests, AttackModelSpec(epochs=1), lambda r: 100 + len(r[1]))
    assert seen["seeds"] == [106, 104, 106]
    assert seen["in_dims"] == [10, 3, 4]


def test_threshold_attack_uses_the_configurations_loss_on_test_points_too():
    # CE: logits (z, 0) of class 0 have CE log(1 + e^-z) and MSE 2 (1 - sigmoid(z))^2. At tau = 0.6
    # a test point with z = 0 (CE 0.693, MSE 0.5) is a non-member under CE and a member under MSE.
    outputs = echo_outputs([[3.0, 0.0]] * 4, [0] * 4, [[0.0, 0.0]] * 2, [0] * 2, [[0, 1], [2, 3]])
    r = run_threshold(outputs, [[1, 2]], "ce", 0.6)
    assert r["ThresholdMemAcc"] == 1.0 and r["ThresholdNonMemAcc"] == 1.0


class CountingEnsemble(EchoEnsemble):
    """An echo ensemble that records each query: (kind, models, points per model)."""

    def __init__(self):
        self.queries = []

    def logits(self, model_ids, x):
        self.queries.append(("shared", list(model_ids), len(x)))
        return super().logits(model_ids, x)

    def logits_each(self, model_ids, x):
        self.queries.append(("each", list(model_ids), x.shape[1]))
        return super().logits_each(model_ids, x)


def _counting_outputs(n_models: int, s: int = 4, n_test: int = 6):
    pool_y = [i % 3 for i in range(n_models * s)]
    pool = [[3.0 if j == y else 0.0 for j in range(3)] for y in pool_y]
    splits = Splits(torch.tensor(pool), torch.tensor(pool_y), torch.zeros(n_test, 3), torch.tensor([0, 1, 2] * 2),
                    np.arange(n_models * s).reshape(n_models, s))
    ensemble = CountingEnsemble()
    return ModelOutputs(splits, ensemble), ensemble


def test_each_attack_asks_for_its_outputs_in_one_batched_query_per_kind():
    # A query of many conv models costs little more than a query of one (DenseNet161: some 600 small
    # operations either way), so the attacks must not query model by model.
    from etio.attacks.oak17 import SHOKRI_ATTACK_MODEL, run_oak17

    outputs, ensemble = _counting_outputs(4)
    run_threshold(outputs, [[1, 2], [3, 4]], "ce", 0.5)
    assert ensemble.queries == [("shared", [1, 2, 3, 4], 6), ("each", [1, 2, 3, 4], 4)]

    outputs, ensemble = _counting_outputs(4)
    run_oak17(outputs, 1, [2, 3, 4], 3, AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": 1}), [0], 0, "c")
    assert ensemble.queries == [("shared", [2, 3, 4, 1], 6), ("each", [2, 3, 4, 1], 4)]

    outputs, ensemble = _counting_outputs(3)
    build_attack_data(outputs, [((1, 2, 3), "mlleak"), ((1, 2, 3), "top3"), ((2, 3, 1), "mlleak")], 2)
    # the shadows on their own subsets and on their non-members' subsets, the targets on theirs: each pair once
    assert ensemble.queries[0] == ("each", [2, 2, 1, 3, 3], 4)     # (2,2) (2,3) (1,1) (3,3) (3,1)
    assert ensemble.queries[1:] == [("shared", [1, 2], 6)]
    # later questions are answered from the cache
    outputs.on_subset(3, subset_of=1), outputs.on_test([2, 1])
    assert len(ensemble.queries) == 2


def test_attack_models_without_samples_keep_their_initialisation():
    """No sample to train on (every calibration set empty): the stack is its seeded initialisation, no error."""
    spec = AttackModelSpec(hidden=(4,), epochs=2)
    trained = train_attack_models(torch.zeros(2, 0, 3), torch.zeros(2, 0), spec, [1, 2])
    init = init_stacked_mlp([3, 3], spec, [torch.Generator().manual_seed(s) for s in (1, 2)])
    assert all(torch.equal(a, b) for a, b in zip(trained.weights + trained.biases, init.weights + init.biases))
