"""MemGuard: labels never change, the defence model is pushed across 0.5, and the top-3
ML-Leaks attack loses accuracy on defended outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.support.ensembles import synthetic_config
from etio.attacks.attack_model import StackedMLP
from etio.attacks.memguard import (MemGuardSettings, attack_with_noise_budget, defend, defended_statistics,
                                   top_k_features)
from etio.attacks.settings import AttackSettings, MemGuardTable
from etio.attacks.outputs import torch_threads
from etio.attacks.stage import attack_configuration


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):   # tiny tensors: one thread is fastest, and immune to a busy machine
        yield


def _confidence_detector(n_sets: int) -> StackedMLP:
    """A hand-made defence model: 'member' iff the top probability exceeds 0.7 (logit gap 20 * (top1 - 0.7))."""
    w1 = torch.zeros(n_sets, 4, 1)
    w1[:, 0, 0] = 1.0
    b1 = torch.zeros(n_sets, 1, 1)
    w2 = torch.zeros(n_sets, 1, 2)
    w2[:, 0, 1] = 20.0
    b2 = torch.zeros(n_sets, 1, 2)
    b2[:, 0, 1] = -14.0
    # Layers are tanh-activated except the last: tanh(top1) is monotone, so the detector thresholds at
    # tanh(top1) = 0.7, i.e. top1 ≈ 0.867.
    return StackedMLP([w1, w2], [b1, b2])


def test_defend_keeps_labels_and_crosses_the_boundary():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 300, 10, generator=g) * 3
    labels = torch.randint(10, (2, 300), generator=g)
    defence = _confidence_detector(2)
    out = defend(logits, labels, defence, torch.tensor([False, True]), MemGuardSettings(max_iteration=300))
    original = torch.softmax(logits, -1)
    assert torch.equal(out.probs.argmax(-1), original.argmax(-1))                 # never a label change
    assert torch.allclose(out.probs.sum(-1), torch.ones(2, 300), atol=1e-5)
    moved = out.rounds_succeeded > 0
    assert moved.float().mean() > 0.5, "most samples should be defended"
    # Every defended sample is on the other side of 0.5 for the defence model; the others are untouched.
    assert torch.all((out.defence_after[moved] - 0.5) * (out.defence_before[moved] - 0.5) < 0)
    assert torch.equal(out.probs[~moved], original[~moved])
    # Later c3 rounds weigh the distortion more: the kept vector stays close to the original.
    assert (out.probs - original).abs().sum(-1)[moved].mean() < 1.0


def test_noise_budget_interpolates_between_undefended_and_defended():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 200, 10, generator=g) * 3
    labels = torch.randint(10, (1, 200), generator=g)
    detector = _confidence_detector(1)
    out = defend(logits, labels, detector, torch.tensor([False]), MemGuardSettings(max_iteration=200))
    original = torch.softmax(logits, -1)
    is_member = (torch.arange(200) < 100).unsqueeze(0)
    attacker = detector                 # the attacker uses the same detector: the worst case for the defence
    none = attack_with_noise_budget(attacker, original, out, labels, torch.tensor([False]), is_member, 0.0)
    full = attack_with_noise_budget(attacker, original, out, labels, torch.tensor([False]), is_member, 1e9)
    said_member = attacker.member_probability(top_k_features(original, None, 3)) > 0.5
    said_member_after = attacker.member_probability(top_k_features(out.probs, None, 3)) > 0.5
    right = (said_member == is_member).double()
    right_after = (said_member_after == is_member).double()
    # The defended vector counts only where it moved the defence model closer to 0.5.
    closer = (out.defence_after - 0.5).abs() < (out.defence_before - 0.5).abs()
    assert closer.any() and (~closer).any()
    expected_full = torch.where(closer, right_after, right)
    assert none[0].item() == pytest.approx(right[is_member].mean().item())             # epsilon 0: never the noise
    assert full[0].item() == pytest.approx(expected_full[is_member].mean().item())     # huge epsilon: wherever closer
    assert full[1].item() == pytest.approx(expected_full[~is_member].mean().item())


@pytest.fixture(scope="module")
def defended_results():
    cfg = synthetic_config("ce", seed=2)
    settings = AttackSettings(mlleak_tuples=6, mlleak_epochs=100,
                              memguard=MemGuardTable(max_iteration=300, samples=150, weight_decays=()))
    results: dict = {}
    attack_configuration(cfg.view, cfg.outputs(), ["top3", "memguard"], settings, results.__setitem__)
    return results


def test_memguard_lowers_the_top3_attack_and_keeps_labels(defended_results):
    mg = defended_results["memguard"]
    print(f"top-3 ML-Leaks on the defended targets: undefended {mg['undefended']['Acc']:.3f}, "
          f"MemGuard (eps 0.5) {mg['MemguardAcc']:.3f}; defended fraction {mg['defended_fraction']:.2f}")
    assert mg["labels_unchanged"]
    assert mg["MemguardTrainAcc"] == 1.0                         # labels unchanged on the overfit members
    assert mg["undefended"]["Acc"] >= 0.6
    assert mg["MemguardAcc"] < mg["undefended"]["Acc"] - 0.05
    assert mg["MemguardAcc"] == pytest.approx((mg["MemguardMemberAcc"] + mg["MemguardNonmemberAcc"]) / 2)
    # MemGuard's attacker is the top-3 ML-Leaks model of the same tuple (same seed, same model).
    assert set(map(tuple, mg["tuples"][0][0:1])) <= set(map(tuple, defended_results["top3"]["tuples"]))


def _reference_statistics(probs: np.ndarray, labels: np.ndarray, n_members: int, loss: str) -> dict:
    """The Memguard* columns written out with loops: per test point the centre of the sets'
    vectors (arithmetic mean for MSE, normalised geometric mean for CE), variance = mean
    distance to the centre (squared Euclidean / KL(centre || p)), bias² = loss of the centre."""
    sets, n, c = probs.shape
    onehot = np.eye(c)[labels]
    if loss == "ce":
        per = -np.log(probs[np.arange(sets)[:, None], np.arange(n)[None, :], labels])
    else:
        per = ((probs - onehot) ** 2).sum(-1)
    var, bias2 = [], []
    for j in range(n_members, n):
        column = probs[:, j]
        if loss == "ce":
            centre = np.exp(np.log(column).mean(0))
            centre /= centre.sum()
            var.append(np.mean([(centre * np.log(centre / column[p])).sum() for p in range(sets)]))
            bias2.append(-np.log(centre[labels[0, j]]))
        else:
            centre = column.mean(0)
            var.append(np.mean([((column[p] - centre) ** 2).sum() for p in range(sets)]))
            bias2.append(((centre - onehot[0, j]) ** 2).sum())
    correct = probs.argmax(-1) == labels
    return {"MemguardTrainAcc": correct[:, :n_members].mean(), "MemguardTestAcc": correct[:, n_members:].mean(),
            "MemguardTrainLoss": per[:, :n_members].mean(), "MemguardTestLoss": per[:, n_members:].mean(),
            "MemguardTestVar": np.mean(var), "MemguardTestBias2": np.mean(bias2)}


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_defended_statistics_equal_a_loop_over_the_test_points(loss):
    g = torch.Generator().manual_seed(5)
    probs = torch.softmax(torch.randn(3, 50, 10, generator=g) * 2, -1)
    labels = torch.randint(10, (1, 50), generator=g).expand(3, -1)
    is_member = torch.arange(50) < 20
    got = defended_statistics(probs, labels, is_member, loss)
    expected = _reference_statistics(probs.double().numpy(), labels.numpy(), 20, loss)
    for column, value in expected.items():
        assert got[column] == pytest.approx(value, rel=1e-9), column
    assert got["MemguardAccDiff"] == pytest.approx(expected["MemguardTrainAcc"] - expected["MemguardTestAcc"])
    assert got["MemguardLossDiff"] == pytest.approx(expected["MemguardTestLoss"] - expected["MemguardTrainLoss"])
    same = defended_statistics(probs[:1].expand(3, -1, -1), labels, is_member, loss)
    assert same["MemguardTestVar"] == pytest.approx(0.0, abs=1e-7)   # identical sets: no variance (float32 sums)
    assert same["MemguardTestBias2"] == pytest.approx(same["MemguardTestLoss"], rel=1e-6)


def _top1_detectors(inputs: int, label_weights=(0.0, 0.0), signs=(1.0, 1.0)) -> StackedMLP:
    """Two hand-built detectors on ``inputs`` features (sorted top-3, then the label if 4): model i
    gives member probability sigmoid(4 signs[i] tanh(5 top1 + label_weights[i] label - 3)), i.e.
    with sign +1 "member iff the top-1 probability exceeds 0.6" (when the label weight is 0)."""
    w1 = torch.zeros(2, inputs, 1)
    w1[:, 0, 0] = 5.0
    if inputs > 3:
        w1[:, 3, 0] = torch.tensor(label_weights)
    w2 = torch.zeros(2, 1, 2)
    w2[:, 0, 1] = 4.0 * torch.tensor(signs)
    return StackedMLP([w1, w2], [torch.full((2, 1, 1), -3.0), torch.zeros(2, 1, 2)])


def _memguard_one_sample(z0, label, member_probability, settings):
    """MemGuard for one sample as Jia et al. describe it, with plain loops: for each c3 in turn,
    restart from the original logits and take normalised gradient steps of
    C1 |p - 0.5| + C2 relu(max_{j != y} s_j - s_y) + c3 ||s - s0||_1 until p has crossed 0.5 with
    the label kept (the round succeeds: keep s, go on) or max_iteration - 1 steps are spent (stop).
    Returns (defended vector, rounds succeeded, evaluations of p)."""
    s0 = torch.softmax(z0, -1)
    y = int(s0.argmax())
    p0 = float(member_probability(s0, label))
    result, rounds, evaluations = s0, 0, 0
    if abs(p0 - 0.5) <= 1e-5:
        return result, rounds, evaluations
    for c3 in settings.c3_values:
        z, steps = z0.clone(), 0
        while True:
            z = z.detach().requires_grad_(True)
            s = torch.softmax(z, -1)
            p = member_probability(s, label)
            evaluations += 1
            if (float(p.detach()) - 0.5) * (p0 - 0.5) < 0 and int(s.argmax()) == y:
                result, rounds = s.detach(), rounds + 1
                break
            if steps >= settings.max_iteration - 1:
                return result, rounds, evaluations
            others = torch.cat([s[:y], s[y + 1:]])
            loss = (settings.c1 * (p - 0.5).abs() + settings.c2 * torch.relu(others.max() - s[y])
                    + c3 * (s - s0).abs().sum())
            grad, = torch.autograd.grad(loss, z)
            z = z - settings.step * grad / grad.norm()
            steps += 1
    return result, rounds, evaluations


def test_batched_defence_equals_memguard_sample_by_sample():
    """Two output sets (a label-free and a label-aware defence model), several samples each, all
    defended at once: every vector, round count and defence probability equals MemGuard run on
    that sample alone, and the batched loop runs as many iterations as the longest sample."""
    from etio.attacks.memguard import _member_probability

    # the second detector also leans on the label feature
    defence = _top1_detectors(4, label_weights=(0.0, 0.2))
    with_label = torch.tensor([False, True])
    torch.manual_seed(0)
    logits = torch.randn(2, 8, 4) * 1.5
    labels = torch.randint(0, 4, (2, 8))
    settings = MemGuardSettings(max_iteration=40)
    out = defend(logits, labels, defence, with_label, settings)
    longest = 0
    rounds = []
    for i in range(2):
        model = defence.select([i])

        def member_probability(s, label, model=model, i=i):
            return _member_probability(model, s.view(1, 1, -1), torch.tensor([[label]]), with_label[i:i + 1], 3)[0, 0]

        for j in range(8):
            vector, succeeded, evaluations = _memguard_one_sample(logits[i, j], int(labels[i, j]), member_probability,
                                                                  settings)
            torch.testing.assert_close(out.probs[i, j], vector, rtol=1e-5, atol=1e-6)
            assert int(out.rounds_succeeded[i, j]) == succeeded, (i, j)
            torch.testing.assert_close(out.defence_after[i, j], member_probability(vector, int(labels[i, j])),
                                       rtol=1e-5, atol=1e-6)
            longest = max(longest, evaluations)
            rounds.append(succeeded)
    assert out.steps == longest
    # the case is not degenerate: samples that fail at once, part-way and never
    assert 0 in rounds and len(settings.c3_values) in rounds and len(set(rounds)) >= 3, rounds


def test_noise_budget_accuracies_by_hand_with_an_intermediate_budget():
    """Per set, the attack's credit for a sample is its accuracy on the original vector, or with
    probability min(epsilon / d, 1) (d: L1 distance of the two vectors) its accuracy on the
    defended one, when the defended one is closer to the defence model's boundary; accuracies are
    means over that set's members and over its non-members (unequal counts here)."""
    from etio.attacks.memguard import Defended

    attack = _top1_detectors(3, signs=(1.0, -1.0))
    g = torch.Generator().manual_seed(5)
    original = torch.softmax(torch.randn(2, 6, 3, generator=g) * 2, -1)
    defended_probs = torch.softmax(torch.randn(2, 6, 3, generator=g) * 2, -1)
    before, after = torch.rand(2, 6, generator=g), torch.rand(2, 6, generator=g)
    defended = Defended(defended_probs, before, after, torch.zeros(2, 6, dtype=torch.long), 0)
    is_member = torch.tensor([[True, True, False, False, False, False], [True, True, True, True, False, True]])
    labels = torch.zeros(2, 6, dtype=torch.long)
    epsilon = 0.3
    mem, non = attack_with_noise_budget(attack, original, defended, labels, torch.tensor([False, False]), is_member,
                                        epsilon)

    def says_member(i, s):
        top = torch.sort(s, descending=True).values
        h = math.tanh(5.0 * float(top[0]) - 3.0)
        z1 = 4.0 * h * (1.0 if i == 0 else -1.0)
        return 1 / (1 + math.exp(-z1)) > 0.5

    budgets = []
    for i in range(2):
        credit = []
        for j in range(6):
            d = float((original[i, j] - defended_probs[i, j]).abs().sum())
            closer = abs(float(after[i, j]) - 0.5) < abs(float(before[i, j]) - 0.5)
            budget = min(epsilon / d, 1.0) if closer and d > 0 else 0.0
            budgets.append(budget)
            right_before = says_member(i, original[i, j]) == bool(is_member[i, j])
            right_after = says_member(i, defended_probs[i, j]) == bool(is_member[i, j])
            credit.append((1 - budget) * right_before + budget * right_after)
        members = [c for c, m in zip(credit, is_member[i].tolist()) if m]
        others = [c for c, m in zip(credit, is_member[i].tolist()) if not m]
        assert float(mem[i]) == pytest.approx(sum(members) / len(members))
        assert float(non[i]) == pytest.approx(sum(others) / len(others))
    assert any(0 < b < 1 for b in budgets) and 0 in budgets           # intermediate budgets occur
    assert float(mem[0]) != float(mem[1]) and float(mem[0]) != float(non[0])


@pytest.mark.parametrize("hidden, width", [((64, 32), 11), ((8,), 4)])
def test_written_out_gradient_equals_autograd_to_the_bit(hidden, width):
    """The search's gradient of L = c1|p − 0.5| + c2 relu(s_other − s_pred) + c3||s − s0||₁ is autograd's backward
    pass written out: the same values to the last bit, for rows of several sets (ragged), label-aware and
    label-free defence models, a padded first layer and every c3 of a search."""
    from etio.attacks.attack_model import AttackModelSpec, init_stacked_mlp
    from etio.attacks.memguard import _LiveRows, _loss_and_gradient

    g = torch.Generator().manual_seed(width)
    n_sets, n_classes, rows = 3, 10, 40
    defence = init_stacked_mlp([4, 3, 4], AttackModelSpec(hidden=hidden), [torch.Generator().manual_seed(s) for s in
                                                                              range(n_sets)])
    if width > 4:
        defence = StackedMLP([torch.nn.functional.pad(defence.weights[0], (0, 0, 0, width - 4)),
                              *defence.weights[1:]], defence.biases)
    z = torch.randn(rows, n_classes, generator=g) * 2
    s0 = torch.softmax(torch.randn(rows, n_classes, generator=g), -1)
    # the original prediction; a third of the rows have moved off it (the hinge term is active there)
    y = torch.where(torch.arange(rows) % 3 == 0, torch.randint(n_classes, (rows,), generator=g), z.argmax(-1))
    label = torch.randint(n_classes, (rows,), generator=g) * (torch.arange(rows) % 2)
    set_of = torch.sort(torch.randint(n_sets, (rows,), generator=g)).values
    c3 = torch.tensor(MemGuardSettings().c3_values)[torch.randint(7, (rows,), generator=g)]
    settings = MemGuardSettings()
    live = _LiveRows(torch.arange(rows), z, z, s0, y, label, set_of, torch.full((rows,), 0.3),
                     torch.zeros(rows, dtype=torch.long), torch.zeros(rows, dtype=torch.long))
    s, p, grad = _loss_and_gradient(defence, live, c3, settings)

    leaf = z.clone().requires_grad_(True)
    s_ref = torch.softmax(leaf, -1)
    feats = top_k_features(s_ref, label, 3)
    counts = torch.bincount(set_of, minlength=n_sets)
    position = torch.arange(rows) - (torch.cumsum(counts, 0) - counts)[set_of]
    padded = feats.new_zeros(n_sets, int(counts.max()), 4).index_put((set_of, position), feats)
    p_ref = defence.member_probability(padded)[set_of, position]
    s_pred = s_ref.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    s_other = s_ref.scatter(-1, y.unsqueeze(-1), float("-inf")).max(-1).values
    loss = (settings.c1 * (p_ref - 0.5).abs() + settings.c2 * torch.relu(s_other - s_pred)
            + c3 * (s_ref - s0).abs().sum(-1))
    expected, = torch.autograd.grad(loss.sum(), leaf)
    assert torch.equal(s, s_ref.detach()) and torch.equal(p, p_ref.detach())
    assert torch.equal(grad, expected)
    assert bool((s_other > s_pred).any())                  # the hinge term is active somewhere
