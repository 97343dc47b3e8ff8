"""The five class-label dependent inference strategies of Song et al. (robust-models excerpt, Table 7).

Against a target model, every input is seen three ways: its benign prediction vector, the
prediction on its untargeted l∞ PGD adversarial example (ascending the CE of the true label),
and the predictions on its C − 1 targeted adversarial examples, one per wrong label
(descending the CE of that label), concatenated in label order. The budget is the target's own
training budget ``AdvEps`` (or ``[attacks.robust] eps`` when set), in pixel units.

Class-label dependent protocol (the excerpt: 500 training and 500 test points per CIFAR-10
class calibrate, the rest of that class is attacked): for each class, a fraction
``[attacks.robust] calibration`` of the target's members of that class and as many non-members (the
test set) drawn at random calibrate; the remaining members and non-members of the class are
the evaluation set.

* confidence-infer (benign / untargeted): the confidence in the true label, benign or on the
  untargeted adversarial example; per class, the threshold that maximises the balanced
  accuracy on the calibration set; member iff confidence ≥ threshold;
* model-infer (benign / untargeted / targeted): per class an inference network with hidden
  layers of 200 and 20 units and 2 outputs (the excerpt's 3-layer network; tanh, Adam, as
  the other attack models of :mod:`.attack_model`) trained on the calibration features.

Member accuracy is the fraction of evaluation members called members, non-member accuracy the
fraction of evaluation non-members called non-members, both pooled over classes, averaged
over the attacked targets (``[attacks.robust] targets`` per repeat); ``Acc`` is their mean. The per-class
balanced accuracies (the rows of the excerpt's Table 7) are kept in the result.

Per-example scores (higher: more likely a member), one per evaluation point of each attacked target:

* confidence-infer: the confidence in the true label minus its class's threshold, so that the strategy
  calls a point a member iff its score is ≥ 0. The thresholds differ between classes; a ROC pooled over
  classes on the raw confidence would rank the points of different classes against one another, which
  the strategy never does. On the calibrated score the pooled ROC passes through the strategy's own
  calls (at 0) and sweeps one offset from every class's threshold. The raw confidence is stored too;
* model-infer: the class's inference network's member-minus-non-member logit (member iff > 0).

Pooled over classes and targets, they give each strategy's AUC (95 % bootstrap interval over the
targets), TPR at 0.1 % and 1 % FPR and ε (:func:`etio.attacks.roc.roc_metrics`; the trace columns
``<prefix>AUC``, ``<prefix>TPR0.1``, ``<prefix>TPR1``, ``<prefix>Eps``). The evaluation sets hold a few
hundred non-members, so the TPRs are usually missing, with the reason in the result's ``roc``. The
scores go to one file per configuration and strategy (:func:`strategy_scores_table`).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from etio.attacks.attack_model import AttackModelSpec, train_attack_models
from etio.attacks.base import Attack, register_attack
from etio.attacks.lowfpr import pairs_table
from etio.attacks.outputs import ModelOutputs, derived_seed, generator_for
from etio.attacks.roc import RocSettings, roc_metrics, roc_trace_values
from etio.attacks.settings import ROBUST_ATTACK_NAMES, RobustSettings
from etio.core.schema import ROBUST_STRATEGIES

#: The excerpt's inference network: hidden layers 200 and 20, two outputs.
INFERENCE_NETWORK = (200, 20)
CONFIDENCE_STRATEGIES = ("conf_benign", "conf_untargeted")
MODEL_STRATEGIES = ("model_benign", "model_untargeted", "model_targeted")


#: Inputs per PGD batch (memory).
PGD_CHUNK = 2048


def attack_budget(view_eps: float, settings: RobustSettings) -> float:
    return float(settings.eps) if settings.eps > 0 else float(view_eps)


def targets_of(model_ids_by_repeat: Sequence[Sequence[int]], per_repeat: int) -> list[int]:
    return [int(m) for ids in model_ids_by_repeat for m in list(ids)[:per_repeat]]


# --------------------------------------------------------------------------------------
# Features: benign, untargeted and targeted predictions
# --------------------------------------------------------------------------------------

def _inputs(outputs: ModelOutputs, target: int, n_nonmembers: int):
    """Inputs, labels and membership of one target: its subset, then the (first) test points."""
    rows = outputs.rows(target)
    xm, ym = outputs.splits.pool_x[rows], outputs.pool_y[rows]
    xn, yn = outputs.splits.test_x[:n_nonmembers], torch.as_tensor(outputs.splits.test_y).long()[:n_nonmembers]
    x = torch.cat([torch.as_tensor(xm), torch.as_tensor(xn)]).to(outputs.device)
    y = torch.cat([ym, yn]).to(outputs.device)
    member = torch.zeros(len(y), dtype=torch.bool, device=outputs.device)
    member[:len(ym)] = True
    return x, y, member


def prediction_features(outputs: ModelOutputs, targets: Sequence[int], strategies: Sequence[str], eps: float,
                        settings: RobustSettings, box, seed: int, key: str, n_nonmembers: int):
    """Per target: (labels, membership, {feature kind: [n, d] probabilities}) for the strategies asked."""
    from etio.traces.robust import pgd, uniform_start

    need_untargeted = any(s in strategies for s in ("conf_untargeted", "model_untargeted"))
    need_targeted = "model_targeted" in strategies
    out = []
    chunk = PGD_CHUNK
    for target in targets:
        x, y, member = _inputs(outputs, target, n_nonmembers)
        forward = lambda xe, t=target: outputs.forward_each([t] * len(xe), xe)  # noqa: E731
        with torch.no_grad():
            benign = torch.cat([forward(x[i:i + chunk].unsqueeze(0))[0] for i in range(0, len(x), chunk)])
        c = benign.shape[-1]
        feats = {"benign": benign.softmax(-1)}
        gen = generator_for(seed, key, "robust-start", target)
        eps_t = torch.tensor([eps], device=outputs.device)

        def adversarial(xs, ys, wrong=None):
            probs = []
            for i in range(0, len(xs), chunk):
                xb, yb = xs[i:i + chunk].unsqueeze(0), ys[i:i + chunk].unsqueeze(0)
                start = uniform_start(gen, xb.shape).to(outputs.device)
                tb = None if wrong is None else wrong[i:i + chunk].unsqueeze(0)
                adv = pgd(forward, xb, yb, eps_t, settings.step_size, settings.pgd_steps, box, start, target=tb)
                with torch.no_grad():
                    probs.append(forward(adv)[0].softmax(-1))
            return torch.cat(probs)

        if need_untargeted:
            feats["untargeted"] = adversarial(x, y)
        if need_targeted:
            # The C − 1 wrong labels of each input in label order, so that position i of the
            # feature vector always belongs to the i-th wrong label of the class.
            wrong = torch.stack([(y + j) % c for j in range(1, c)], dim=1).sort(dim=1).values   # [n, C−1]
            xs = x.unsqueeze(1).expand(len(x), c - 1, *x.shape[1:]).reshape(-1, *x.shape[1:])
            feats["targeted"] = adversarial(xs, y.repeat_interleave(c - 1), wrong.reshape(-1)).reshape(
                len(x), (c - 1) * c)
        out.append((y, member, feats))
    return out


# --------------------------------------------------------------------------------------
# The class-label dependent protocol
# --------------------------------------------------------------------------------------

def calibration_split(y: torch.Tensor, member: torch.Tensor, num_classes: int, fraction: float,
                      rng: np.random.Generator) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per class with enough points: (class, calibration rows, evaluation rows).

    Calibration: ``floor(fraction · members of the class)`` members (at least 1) and as many
    non-members, drawn at random; evaluation: every other member and non-member of the class.
    A class needs a member and a non-member on each side.
    """
    y_np, m_np = y.cpu().numpy(), member.cpu().numpy()
    out = []
    for cls in range(num_classes):
        mem = np.flatnonzero((y_np == cls) & m_np)
        non = np.flatnonzero((y_np == cls) & ~m_np)
        n_cal = max(1, int(math.floor(fraction * len(mem))))
        if len(mem) - n_cal < 1 or len(non) - n_cal < 1:
            continue
        mem, non = rng.permutation(mem), rng.permutation(non)
        out.append((cls, np.sort(np.concatenate([mem[:n_cal], non[:n_cal]])),
                    np.sort(np.concatenate([mem[n_cal:], non[n_cal:]]))))
    return out


def best_threshold(scores: np.ndarray, is_member: np.ndarray) -> float:
    """The threshold (member iff score ≥ it) with the best balanced accuracy on the calibration set;
    ties go to the smallest such threshold."""
    candidates = np.unique(scores)
    best, best_acc = float(candidates[0]), -1.0
    for t in candidates:
        called = scores >= t
        acc = 0.5 * (called[is_member].mean() + (~called[~is_member]).mean())
        if acc > best_acc + 1e-12:
            best, best_acc = float(t), acc
    return best


def _strategy_feature(strategy: str) -> str:
    return {"conf_benign": "benign", "conf_untargeted": "untargeted", "model_benign": "benign",
            "model_untargeted": "untargeted", "model_targeted": "targeted"}[strategy]


def run_robust_strategies(outputs: ModelOutputs, model_ids_by_repeat, num_classes: int, strategies: Sequence[str],
                          view_eps: float, settings: RobustSettings, seed: int, key: str,
                          box=None, roc: RocSettings = RocSettings()) -> dict[str, dict]:
    """Every requested strategy on the configuration's targets; one result dict per strategy.

    Each result holds the strategy's accuracies, the ROC metrics of its per-example scores (``roc``, and
    the trace columns) and the scores themselves (``scores``: :func:`strategy_scores_table`).
    """
    eps = attack_budget(view_eps, settings)
    targets = targets_of(model_ids_by_repeat, settings.targets)
    n_non = outputs.n_test if settings.nonmembers == 0 else min(settings.nonmembers, outputs.n_test)
    features = prediction_features(outputs, targets, strategies, eps, settings, box, seed, key, n_non)
    splits = [calibration_split(y, member, num_classes, settings.calibration,
                                np.random.default_rng(derived_seed(seed, key, "robust-calibration", t)))
              for t, (y, member, _) in zip(targets, features)]
    # per strategy: (target index, class, calls, membership, evaluation rows, score, confidence or None)
    decisions: dict[str, list[tuple]] = {s: [] for s in strategies}

    for strategy in strategies:
        if strategy not in CONFIDENCE_STRATEGIES:
            continue
        kind = _strategy_feature(strategy)
        for ti, (y, member, feats) in enumerate(features):
            conf = feats[kind].gather(1, y.view(-1, 1)).squeeze(1).double().cpu().numpy()
            m_np = member.cpu().numpy()
            for cls, cal, ev in splits[ti]:
                tau = best_threshold(conf[cal], m_np[cal])
                decisions[strategy].append((ti, np.full(len(ev), cls), conf[ev] >= tau, m_np[ev], ev,
                                            conf[ev] - tau, conf[ev]))

    model_jobs = [(strategy, ti, cls, cal, ev) for strategy in strategies if strategy in MODEL_STRATEGIES
                  for ti in range(len(features)) for cls, cal, ev in splits[ti]]
    # One stack per feature width: padding the 10-wide benign features to the 90-wide targeted
    # ones would double the work of the stack's optimiser for nothing.
    by_width: dict[int, list] = {}
    for job in model_jobs:
        by_width.setdefault(features[job[1]][2][_strategy_feature(job[0])].shape[1], []).append(job)
    for width in sorted(by_width):
        _model_infer(by_width[width], features, settings, seed, key, decisions)

    results = {}
    for strategy in strategies:
        prefix = ROBUST_STRATEGIES[strategy][0]
        rows = decisions[strategy]
        mem_accs, non_accs, per_class = [], [], {}
        for ti in range(len(targets)):
            mine = [r for r in rows if r[0] == ti]
            if not mine:
                continue
            called = np.concatenate([r[2] for r in mine])
            truth = np.concatenate([r[3] for r in mine])
            cls = np.concatenate([r[1] for r in mine])
            mem_accs.append(float(called[truth].mean()))
            non_accs.append(float((~called[~truth]).mean()))
            for c in np.unique(cls):
                sel = cls == c
                acc = 0.5 * (called[sel & truth].mean() + (~called[sel & ~truth]).mean())
                per_class.setdefault(int(c), []).append(float(acc))
        mem, non = (float(np.mean(mem_accs)), float(np.mean(non_accs))) if mem_accs else (math.nan, math.nan)
        table = strategy_scores_table(outputs, targets, rows)
        # the metrics are those of the stored (float32) scores, so anyone can recompute them from the file
        metrics = roc_metrics(table["score"], table["member"].astype(bool), roc, groups=table["model"])
        results[strategy] = {
            f"{prefix}MemAcc": mem, f"{prefix}NonmemAcc": non, f"{prefix}Acc": (mem + non) / 2,
            **roc_trace_values(prefix, metrics, roc.alphas),
            "roc": metrics,
            "score": SCORE_MEANING[strategy in CONFIDENCE_STRATEGIES],
            "scores": table,
            "per_class_acc": {str(c): float(np.mean(v)) for c, v in sorted(per_class.items())},
            "targets": targets, "eps": eps, "pgd_steps": settings.pgd_steps, "step_size": settings.step_size,
            "calibration": settings.calibration, "nonmembers": n_non,
            "classes_attacked": sorted(per_class),
        }
    return results


#: What a strategy's ``score`` column holds, by whether it is a confidence strategy (stored in its result).
SCORE_MEANING = {True: "confidence in the true label minus the class's threshold (member iff >= 0)",
                 False: "the class's inference network's member-minus-non-member logit (member iff > 0)"}


def strategy_scores_table(outputs: ModelOutputs, targets: Sequence[int], rows) -> np.ndarray:
    """The per-example scores of one strategy (:func:`etio.attacks.lowfpr.pairs_table`): one row per
    evaluation point of each target, targets then classes in the order attacked; ``model``, ``test``,
    ``point``, ``member``, ``class``, ``score`` (float32), and for the confidence strategies the raw
    ``confidence`` (float32)."""
    model, test, point, member, cls, score, conf = [], [], [], [], [], [], []
    for ti, c, _, truth, ev, s, raw in rows:
        pool_rows = outputs.rows(targets[ti]).numpy()
        n_members = len(pool_rows)          # the target's subset comes first (_inputs), then the test points
        model.append(np.full(len(ev), targets[ti]))
        test.append(ev >= n_members)
        point.append(np.where(ev < n_members, pool_rows[np.minimum(ev, n_members - 1)], ev - n_members))
        member.append(truth)
        cls.append(c)
        score.append(s)
        conf.append(raw)
    joined = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)  # noqa: E731
    scores = {"score": joined(score, np.float64)}
    if rows and rows[0][6] is not None:
        scores["confidence"] = joined(conf, np.float64)
    return pairs_table(joined(model, np.int32), joined(test, np.int8), joined(point, np.int32),
                       joined(member, np.int8), scores, {"class": joined(cls, np.int32)})


def _model_infer(jobs, features, settings: RobustSettings, seed: int, key: str, decisions) -> None:
    """Train every (strategy, target, class) inference network in one stack and record its calls."""
    dims = [features[ti][2][_strategy_feature(s)].shape[1] for s, ti, *_ in jobs]
    width = max(dims)
    n_cal = max(len(cal) for *_, cal, _ in jobs)
    n_ev = max(len(ev) for *_, ev in jobs)
    device = features[0][0].device
    b = len(jobs)
    train_x = torch.zeros(b, n_cal, width, device=device)
    train_y = torch.zeros(b, n_cal, dtype=torch.long, device=device)
    train_valid = torch.zeros(b, n_cal, dtype=torch.bool, device=device)
    eval_x = torch.zeros(b, n_ev, width, device=device)
    eval_y = torch.zeros(b, n_ev, dtype=torch.bool, device=device)
    eval_valid = torch.zeros(b, n_ev, dtype=torch.bool, device=device)
    for i, (strategy, ti, cls, cal, ev) in enumerate(jobs):
        _, member, feats = features[ti]
        f = feats[_strategy_feature(strategy)].float()
        cal_t, ev_t = torch.as_tensor(cal, device=device), torch.as_tensor(ev, device=device)
        train_x[i, :len(cal), :f.shape[1]] = f[cal_t]
        train_y[i, :len(cal)] = member[cal_t].long()
        train_valid[i, :len(cal)] = True
        eval_x[i, :len(ev), :f.shape[1]] = f[ev_t]
        eval_y[i, :len(ev)] = member[ev_t]
        eval_valid[i, :len(ev)] = True
    spec = AttackModelSpec(hidden=INFERENCE_NETWORK, epochs=settings.epochs)
    seeds = [derived_seed(seed, key, "robust-inference", s, ti, cls) for s, ti, cls, _, _ in jobs]
    models = train_attack_models(train_x, train_y, spec, seeds, in_dims=dims, valid=train_valid)
    with torch.no_grad():
        logits = models.logits(eval_x)
        called = logits[..., 1] > logits[..., 0]           # StackedMLP.predict_member, on the same logits
        margin = (logits[..., 1] - logits[..., 0]).double().cpu().numpy()
    for i, (strategy, ti, cls, cal, ev) in enumerate(jobs):
        n = len(ev)
        decisions[strategy].append((ti, np.full(n, cls), called[i, :n].cpu().numpy(), eval_y[i, :n].cpu().numpy(),
                                    ev, margin[i, :n], None))


class RobustStrategies(Attack):
    """The robust study's inference strategies (Song et al., Table 7), run together on the same targets."""

    names = ROBUST_ATTACK_NAMES
    result_keys = ("roc",)      # the strategies' ROC columns and score files

    def problems(self, view, names, settings) -> list[str]:
        ids = view.model_ids_by_repeat
        if not ids or min(len(r) for r in ids) < settings.robust.targets:
            return [f"[attacks.robust] targets = {settings.robust.targets} exceeds the models per repeat of {view.key}"]
        return []

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        start = time.perf_counter()
        box = None
        if view.dataset is not None:
            from etio.traces.datasets import dataset_info
            from etio.traces.robust import pixel_box

            box = pixel_box(dataset_info(view.dataset)).to(outputs.device)
        results = run_robust_strategies(outputs, view.model_ids_by_repeat, view.num_classes, names, view.adv_eps,
                                        settings.robust, settings.seed, view.key, box, settings.lowfpr().roc)
        share = (time.perf_counter() - start) / len(names)
        for name in names:
            on_result(name, {**results[name], "seconds": share})


register_attack(RobustStrategies())
