"""MemGuard (Jia et al. 2019): adversarial noise on the output vector, and the attack on it.

The defender trains its own top-3 ML-Leaks attack model (the *defence model*) with the
target as its own shadow, then perturbs each output so that the defence model is pushed
across 0.5 while the predicted label stays and the change stays small:

    L(z) = C1 |p(z) - 0.5| + C2 relu(max_{j != y^} s_j - s_y^) + c3 ||s - s0||_1,
    s = softmax(z), p(z) = defence model's member probability on the top-3 of s,

minimised by normalised gradient steps ``z <- z - 0.1 grad/||grad||`` from the original
logits until the label is unchanged and p has crossed 0.5, for c3 = 0.1, 1, ..., 1e5; the
result is the vector of the last c3 that succeeded (the original if the first fails).

Every sample's optimisation is independent, and every c3 round restarts from the original
logits, so all samples x all rounds run as one tensor computation; a row stops moving once
it has succeeded, and the loop ends when no row is moving.

The attacker's top-3 attack model is then evaluated on original and defended vectors with
a noise budget epsilon: the defended vector is used with probability min(epsilon / d, 1),
d = ||s0 - s_defended||_1, when it is closer to the decision boundary than the original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from etio.attacks.attack_model import StackedMLP
from etio.attacks.base import Attack, register_attack
from etio.attacks.mlleaks import VARIANTS, mlleak_tuples, tuple_problems, tuples_per_repeat
from etio.attacks.outputs import derived_seed
from etio.core.schema import same_weight_decay


@dataclass(frozen=True)
class MemGuardSettings:
    c1: float = 1.0
    c2: float = 10.0
    c3_initial: float = 0.1
    c3_factor: float = 10.0
    c3_max: float = 1e5
    max_iteration: int = 300
    step: float = 0.1
    epsilon: float = 0.5
    top_k: int = 3

    @property
    def c3_values(self) -> list[float]:
        values, c3 = [], self.c3_initial
        while c3 <= self.c3_max * (1 + 1e-9):
            values.append(c3)
            c3 *= self.c3_factor
        return values


def top_k_features(probs: torch.Tensor, labels: torch.Tensor | None, top_k: int) -> torch.Tensor:
    """Sorted top-k probabilities (largest first), plus the label as a feature when given."""
    feats = probs.topk(top_k, dim=-1).values
    if labels is not None:
        feats = torch.cat([feats, labels.to(feats.dtype).unsqueeze(-1)], dim=-1)
    return feats


def _member_probability(model: StackedMLP, probs: torch.Tensor, labels: torch.Tensor, with_label: torch.Tensor,
                        top_k: int) -> torch.Tensor:
    """``probs`` ``[P, n, C]`` -> member probability ``[P, n]``; the label feature is zeroed for label-free models
    (their first-layer weights for it are zero, so the zero pad and the missing feature agree)."""
    feats = top_k_features(probs, labels * with_label.view(-1, 1), top_k)
    return model.member_probability(feats)


@dataclass
class Defended:
    probs: torch.Tensor             # [P, N, C] defended softmax vectors
    defence_before: torch.Tensor    # [P, N] defence model's member probability on the original
    defence_after: torch.Tensor     # [P, N] ... on the defended vector
    rounds_succeeded: torch.Tensor  # [P, N] number of leading c3 rounds that succeeded
    steps: int                      # iterations of the batched loop


def defend(logits: torch.Tensor, labels: torch.Tensor, defence: StackedMLP, with_label: torch.Tensor,
           settings: MemGuardSettings = MemGuardSettings()) -> Defended:
    """MemGuard on ``P`` output sets at once.

    ``logits``: ``[P, N, C]`` pre-softmax outputs of the target(s); ``labels``: ``[P, N]`` true
    labels (the label feature of label-aware defence models); ``defence``: ``P`` stacked
    defence models; ``with_label``: ``[P]`` bool, whether defence model ``p`` takes the label.

    Each sample runs its c3 rounds one after the other, as in MemGuard, but all samples
    advance together: a sample whose round succeeds records the vector and restarts from
    the original logits with the next c3; one whose round fails (label changed or p not
    across 0.5 after ``max_iteration - 1`` steps) is finished. Only unfinished samples are
    computed at each iteration, so the cost follows the work actually left.
    """
    n_sets, n, n_classes = logits.shape
    c3_values = torch.tensor(settings.c3_values, dtype=logits.dtype, device=logits.device)
    max_steps = settings.max_iteration - 1
    with torch.no_grad():
        s0 = torch.softmax(logits, -1)
        predicted = s0.argmax(-1)
        p0 = _member_probability(defence, s0, labels, with_label, settings.top_k)
    # Flat rows (set, sample); the defence model of a row is its set's.
    z0, s0f, y, lab = (t.reshape(n_sets * n, *t.shape[2:]) for t in (logits, s0, predicted, labels))
    p0f = p0.reshape(-1)
    set_of = torch.arange(n_sets, device=logits.device).repeat_interleave(n)
    result = s0f.clone()
    round_ = torch.zeros(n_sets * n, dtype=torch.long, device=logits.device)
    # The unfinished rows, in row order, and their state side by side: compacted only when rows finish,
    # so an iteration gathers nothing (the same rows in the same order as a gather would give).
    rows = ((p0f - 0.5).abs() > 1e-5).nonzero().squeeze(-1)
    live = _LiveRows(rows, z0[rows].clone(), z0[rows], s0f[rows], y[rows], lab[rows] * with_label[set_of[rows]],
                     set_of[rows], p0f[rows], torch.zeros_like(rows), torch.zeros_like(rows))
    iterations = 0
    with torch.no_grad():
        while len(live.rows):
            iterations += 1
            c3 = c3_values[live.round.clamp(max=len(c3_values) - 1)]
            s, p, grad = _loss_and_gradient(defence, live, c3, settings)
            success = ((p - 0.5) * (live.p0 - 0.5) < 0) & (s.argmax(-1) == live.y)
            failed = ~success & (live.steps >= max_steps)
            moving = ~success & ~failed
            # Rows still moving: one normalised gradient step.
            step = settings.step * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-30)
            live.z = torch.where(moving.unsqueeze(-1), live.z - step, live.z)
            live.steps += moving.long()
            if bool(success.any()):
                # A successful round: keep its vector, restart from the original with the next c3.
                result[live.rows[success]] = s[success]
                live.round[success] += 1
                live.z[success] = live.z0[success]
                live.steps[success] = 0
            finished = failed | (success & (live.round >= len(c3_values)))
            if bool(finished.any()):
                round_[live.rows[finished]] = live.round[finished]
                live = live.select(~finished)
        probs = result.view(n_sets, n, n_classes)
        p_after = _member_probability(defence, probs, labels, with_label, settings.top_k)
    return Defended(probs, p0, p_after, round_.view(n_sets, n), iterations)


@dataclass
class _LiveRows:
    """The rows MemGuard's search still moves: row index, current and original logits and the rest of each
    row's state, every field indexed alike."""

    rows: torch.Tensor
    z: torch.Tensor
    z0: torch.Tensor
    s0: torch.Tensor
    y: torch.Tensor
    label: torch.Tensor     # the label feature (0 for label-free defence models)
    set_of: torch.Tensor
    p0: torch.Tensor
    steps: torch.Tensor
    round: torch.Tensor

    #: (set, position in the set) of every row and the longest set, for the defence models' padded batch:
    #: they change only when rows leave, so they are kept until then (:meth:`padded_layout`)
    padding: tuple | None = field(default=None, init=False, repr=False)

    def select(self, keep: torch.Tensor) -> "_LiveRows":
        return _LiveRows(*(getattr(self, f.name)[keep] for f in fields(self) if f.init))

    def padded_layout(self, n_sets: int) -> tuple:
        if self.padding is None:
            counts = torch.bincount(self.set_of, minlength=n_sets)
            offsets = torch.cumsum(counts, 0) - counts
            position = torch.arange(len(self.set_of), device=self.set_of.device) - offsets[self.set_of]
            self.padding = ((self.set_of, position), int(counts.max()))
        return self.padding


def _loss_and_gradient(model: StackedMLP, live: _LiveRows, c3: torch.Tensor, settings: MemGuardSettings):
    """(softmax s, defence probability p, gradient of the summed loss L w.r.t. the logits) of every live row.

    The backward pass is written out with the operations autograd runs for L, in autograd's order (the
    c3 term, the c2 term's max and gather, then the defence model's path), so the gradient is the same to
    the bit without recording a graph, whose bookkeeping cost more than this small arithmetic.
    A test holds it equal to ``torch.autograd.grad``.
    """
    s = torch.softmax(live.z, -1)
    top = s.topk(settings.top_k, dim=-1)
    feats = torch.cat([top.values, live.label.to(s.dtype).unsqueeze(-1)], dim=-1)
    at, longest = live.padded_layout(model.n_models)
    padded = feats.new_zeros(model.n_models, longest, feats.shape[-1]).index_put(at, feats)
    last = len(model.weights) - 1
    inputs = model.activations(padded)
    q = torch.softmax(inputs.pop(), dim=-1)
    p = q[..., 1][at]
    y = live.y.unsqueeze(-1)
    s_pred = s.gather(-1, y).squeeze(-1)
    s_other, other_at = s.scatter(-1, y, float("-inf")).max(-1)
    hinge = torch.relu(s_other - s_pred)
    # L = c1 |p - 0.5| + c2 relu(s_other - s_pred) + c3 ||s - s0||_1, summed over rows
    # (autograd multiplies each term's incoming gradient, 1, by its constant: exact, so it is left out)
    g_distance = c3.unsqueeze(-1).expand_as(s) * (s - live.s0).sgn()
    g_hinge = _ATEN.threshold_backward(torch.full_like(hinge, settings.c2), hinge, 0)
    g_other = torch.zeros_like(s).scatter_(-1, other_at.unsqueeze(-1), g_hinge.unsqueeze(-1)).scatter(-1, y, 0)
    g_pred = torch.zeros_like(s).scatter_add(-1, y, (-g_hinge).unsqueeze(-1))
    g_p = settings.c1 * (p - 0.5).sgn()
    g_q = torch.zeros_like(q)
    g_q.select(-1, 1).index_put_(at, g_p, accumulate=True)      # into zeros: the indexed gradient as it is
    g = _ATEN._softmax_backward_data(g_q, q, -1, q.dtype)
    for i in range(last, -1, -1):
        g = g.bmm(model.weights[i].transpose(1, 2))
        if i > 0:
            g = _ATEN.tanh_backward(g, inputs[i])
    g_top = torch.zeros_like(s).scatter_(-1, top.indices, g[..., :feats.shape[-1]][at].narrow(-1, 0, settings.top_k))
    g_s = g_distance + g_other
    g_s = g_s + g_pred
    g_s = g_s + g_top
    return s, p, _ATEN._softmax_backward_data(g_s, s, -1, s.dtype)


_ATEN = torch.ops.aten


def attack_with_noise_budget(attack: StackedMLP, original: torch.Tensor, defended: Defended, labels: torch.Tensor,
                             with_label: torch.Tensor, is_member: torch.Tensor, epsilon: float,
                             top_k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Member / non-member accuracy ``[P]`` of the attack models against defended outputs.

    ``original``: ``[P, N, C]`` undefended softmax; ``is_member``: ``[P, N]`` bool.
    """
    with torch.no_grad():
        says_member_before = _member_probability(attack, original, labels, with_label, top_k) > 0.5
        says_member_after = _member_probability(attack, defended.probs, labels, with_label, top_k) > 0.5
        p_noise = _noise_probability(original, defended, epsilon)
        right_before = (says_member_before == is_member).double()
        right_after = (says_member_after == is_member).double()
        credit = (1 - p_noise) * right_before + p_noise * right_after
        mem = (credit * is_member).sum(1) / is_member.sum(1)
        non = (credit * ~is_member).sum(1) / (~is_member).sum(1)
    return mem, non


def defended_member_scores(attack: StackedMLP, original: torch.Tensor, defended: Defended, labels: torch.Tensor,
                           with_label: torch.Tensor, epsilon: float, top_k: int = 3) -> torch.Tensor:
    """Per-example scores ``[P, N]`` of the attack models against defended outputs: the expected member
    probability under the noise budget, (1 − p)·Pr_before + p·Pr_after with the p of
    :func:`attack_with_noise_budget` (the per-example form of its credited accuracy)."""
    with torch.no_grad():
        before = _member_probability(attack, original, labels, with_label, top_k)
        after = _member_probability(attack, defended.probs, labels, with_label, top_k)
        p_noise = _noise_probability(original, defended, epsilon)
        return (1 - p_noise) * before + p_noise * after


def _noise_probability(original: torch.Tensor, defended: Defended, epsilon: float) -> torch.Tensor:
    """The probability ``[P, N]`` with which the defended vector is released: the noise budget over the
    distance moved, where the defence moved its own attack model's output towards 0.5 (else 0)."""
    distance = (original - defended.probs).abs().sum(-1)
    closer = (defended.defence_after - 0.5).abs() < (defended.defence_before - 0.5).abs()
    return torch.where(closer & (distance > 0), (epsilon / distance.clamp(min=1e-30)).clamp(max=1.0),
                       torch.zeros_like(distance))


def defended_statistics(probs: torch.Tensor, labels: torch.Tensor, is_member: torch.Tensor, loss: str) -> dict:
    """The ``Memguard*`` generalization columns from the defended output sets (one set = one "model").

    ``probs``: ``[P, N, C]`` defended softmax vectors; ``labels``: ``[P, N]``;
    ``is_member``: ``[N]`` (every set lists its target's members first, then the same test points). Accuracies and losses per set, then
    averaged; test variance and bias² from the sets' test outputs: for CE the normalised
    geometric mean as centre and the mean KL divergence to it, for MSE the pooled variance
    of the probability vectors, bias² = loss - variance.
    """
    probs = probs.double()
    onehot = torch.nn.functional.one_hot(labels, probs.shape[-1]).double()
    correct = (probs.argmax(-1) == labels).double()
    if loss == "ce":
        per_sample = -torch.log(probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1).clamp(min=1e-300))
    else:
        per_sample = ((probs - onehot) ** 2).sum(-1)
    mem, non = is_member, ~is_member
    train_acc = float(correct[:, mem].mean())
    test_acc = float(correct[:, non].mean())
    train_loss = float(per_sample[:, mem].mean())
    test_loss = float(per_sample[:, non].mean())
    test = probs[:, non]
    if loss == "ce":
        log_centre = torch.log(test.clamp(min=1e-300)).mean(0)
        centre = torch.softmax(log_centre, -1)
        kl = (centre * (torch.log(centre.clamp(min=1e-300)) - torch.log(test.clamp(min=1e-300)))).sum(-1)
        test_var = float(kl.mean())
        test_bias2 = float((-torch.log(centre.gather(-1, labels[0, non].unsqueeze(-1)).clamp(min=1e-300))).mean())
    else:
        test_var = float(((test ** 2).sum(-1).mean(0) - (test.mean(0) ** 2).sum(-1)).mean())
        test_bias2 = test_loss - test_var
    return {
        "MemguardTrainAcc": train_acc, "MemguardTestAcc": test_acc,
        "MemguardTrainLoss": train_loss, "MemguardTestLoss": test_loss,
        "MemguardTestVar": test_var, "MemguardTestBias2": test_bias2,
        "MemguardAccDiff": train_acc - test_acc, "MemguardLossDiff": test_loss - train_loss,
    }


# --------------------------------------------------------------------------------------
# The attack stage's MemGuard: defended targets drawn from the ML-Leaks tuples
# --------------------------------------------------------------------------------------

#: The attack types MemGuard defends against (and its defender models): ML-Leaks' top-3 variants.
TOP3_VARIANTS = ("top3", "top3_l")


def memguard_plan(view, settings) -> list[tuple[tuple, tuple]]:
    """(attacker's tuple, defender's tuple) per defended target: the first ``memguard_targets`` tuples of each repeat.

    The defender's tuple is (t, t, nm'): the target is its own shadow, and nm' is a model of
    the same repeat other than the attacker's shadow and nm, so the two sides never share
    non-members. With only three models in a repeat there is no such model, and the
    attacker's shadow provides the defender's non-members (still disjoint from the
    attacker's non-members, as MemGuard requires).
    """
    tuples = mlleak_tuples(view, settings)
    rng = np.random.default_rng(derived_seed(settings.seed, view.key, "memguard-defence"))
    plan, first = [], 0
    for ids, count in zip(view.model_ids_by_repeat, tuples_per_repeat(len(view.model_ids_by_repeat),
                                                                       settings.mlleak_tuples)):
        for t, s, nm in tuples[first:first + settings.memguard.targets]:
            candidates = [m for m in ids if m not in (t, s, nm)] or [s]
            plan.append(((t, s, nm), (t, t, int(rng.choice(candidates)))))
        first += count
    return plan


def memguard_applies(view, settings) -> bool:
    wds = settings.memguard.weight_decays
    return not wds or view.weight_decay is None or any(same_weight_decay(view.weight_decay, w) for w in wds)


def run_memguard(view, outputs, settings, plan, models, index) -> dict:
    """MemGuard on every planned target (:func:`memguard_plan`), each against both top-3 attack types.

    The attacker's model is the top-3 ML-Leaks model of the target's tuple; the defender's
    a top-3 ML-Leaks model of (t, t, nm'). Members are the target's training subset, non-
    members the whole test set (or the first ``memguard_samples`` of each).
    """
    variants = TOP3_VARIANTS
    targets = [attacker[0] for attacker, _ in plan]
    attack_idx = [index[(attacker, v)] for attacker, _ in plan for v in variants]
    defence_idx = [index[(defender, v)] for _, defender in plan for v in variants]
    n_members = min(settings.memguard.samples or outputs.subset_size, outputs.subset_size)
    n_test = min(settings.memguard.samples or outputs.n_test, outputs.n_test)
    members, non_members = outputs.on_subsets([(t, t) for t in targets]), outputs.on_test(targets)   # batched
    logits = torch.stack([torch.cat([members[i, :n_members], non_members[i, :n_test]])
                          for i in range(len(targets)) for _ in variants])
    labels = torch.stack([torch.cat([outputs.labels_of(t)[:n_members], outputs.test_y[:n_test]])
                          for t in targets for _ in variants])
    with_label = torch.tensor([VARIANTS[v].with_label for _ in targets for v in variants], device=outputs.device)
    is_member = torch.zeros(logits.shape[1], dtype=torch.bool, device=outputs.device)
    is_member[:n_members] = True
    mg = MemGuardSettings(max_iteration=settings.memguard.max_iteration, epsilon=settings.memguard.epsilon)
    defended = defend(logits, labels, models.select(defence_idx), with_label, mg)
    original = torch.softmax(logits, -1)
    attackers = models.select(attack_idx)
    members = is_member.expand_as(labels)
    mem, non = attack_with_noise_budget(attackers, original, defended, labels, with_label, members, mg.epsilon)
    before_mem, before_non = attack_with_noise_budget(attackers, original, _undefended(defended, original), labels,
                                                      with_label, members, mg.epsilon)
    mem_acc, non_acc = float(mem.mean()), float(non.mean())
    # per-example scores against the defended outputs, pooled over targets and attack types
    from etio.attacks.lowfpr import pairs_table
    from etio.attacks.roc import roc_metrics, roc_trace_values

    score = defended_member_scores(attackers, original, defended, labels, with_label, mg.epsilon).float().cpu()
    member = members.cpu().numpy().astype(bool)
    roc_settings = settings.lowfpr().roc
    sets = [(t, k) for t in targets for k in range(len(variants))]
    metrics = roc_metrics(score.numpy().ravel(), member.ravel(), roc_settings,
                          groups=np.repeat([t for t, _ in sets], n_members + n_test))      # the AUC interval's groups
    point = [np.r_[outputs.rows(t)[:n_members].numpy(), np.arange(n_test)] for t, _ in sets]
    scores = pairs_table(np.repeat([t for t, _ in sets], n_members + n_test),
                         np.tile(np.r_[np.zeros(n_members), np.ones(n_test)], len(sets)), np.concatenate(point),
                         member.ravel(), {"score": score.numpy().ravel()},
                         {"attack_type": np.repeat([k for _, k in sets], n_members + n_test)})
    return {
        **roc_trace_values("Memguard", metrics, roc_settings.alphas),
        "roc": metrics,
        "scores": scores,
        "MemguardMemberAcc": mem_acc,
        "MemguardNonmemberAcc": non_acc,
        "MemguardAcc": (mem_acc + non_acc) / 2,
        **defended_statistics(defended.probs, labels, is_member, view.loss),
        "undefended": {"MemberAcc": float(before_mem.mean()), "NonmemberAcc": float(before_non.mean()),
                       "Acc": float((before_mem.mean() + before_non.mean()) / 2)},
        "targets": targets,
        "tuples": [[list(a), list(d)] for a, d in plan],
        "attack_types": list(variants),
        "members": n_members,
        "nonmembers": n_test,
        "epsilon": mg.epsilon,
        "max_iteration": mg.max_iteration,
        "iterations": defended.steps,
        "defended_fraction": float((defended.rounds_succeeded > 0).double().mean()),
        "labels_unchanged": bool((defended.probs.argmax(-1) == original.argmax(-1)).all()),
    }


def _undefended(defended, original):
    return Defended(original, defended.defence_before, defended.defence_before,
                    torch.zeros_like(defended.rounds_succeeded), 0)


class MemGuard(Attack):
    """MemGuard on the planned targets, against the top-3 ML-Leaks models of the shared batch."""

    names = ("memguard",)

    def problems(self, view, names, settings) -> list[str]:
        problems = tuple_problems(view, settings)
        if (view.model_ids_by_repeat and min(len(ids) for ids in view.model_ids_by_repeat) >= 3
                and settings.memguard.targets > min(tuples_per_repeat(len(view.model_ids_by_repeat),
                                                                      settings.mlleak_tuples))):
            problems.append(f"[attacks.memguard] targets = {settings.memguard.targets} exceeds the ML-Leaks tuples "
                            f"per repeat of {view.key}")
        return problems

    def requests(self, view, names, settings) -> list:
        if not memguard_applies(view, settings):
            return []
        return [r for attacker, defender in memguard_plan(view, settings)
                for r in [(attacker, v) for v in TOP3_VARIANTS] + [(defender, v) for v in TOP3_VARIANTS]]

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        if not memguard_applies(view, settings):
            on_result("memguard", {"skipped": f"weight decay {view.weight_decay} not in memguard_weight_decays "
                                              f"{list(settings.memguard.weight_decays)}"})
            return
        start = time.perf_counter()
        plan = memguard_plan(view, settings)
        result = run_memguard(view, outputs, settings, plan, batch.models, batch.index)
        on_result("memguard", {**result, "seconds": time.perf_counter() - start + batch.per_model * 4 * len(plan)})


register_attack(MemGuard())
