"""ML-Leaks single-shadow-model attack (Salem et al.), four variants.

For a tuple (target, shadow, nm) of models of one configuration, the attacker trains an
attack model on the shadow's outputs: the shadow's own training subset is labelled
"member", the training subset of the third model ``nm`` (points the shadow has never
seen) "non-member". The attack model is then evaluated on the target: its training subset
(members) against the first test points (non-members), equally many of each (the accuracy
columns, as the paper). The ROC metrics (``<prefix>AUC``, ``<prefix>TPR*``, ``<prefix>Eps``)
and the per-example scores use every point the attack model can score soundly (:func:`roc_points`):
the target's whole training subset against every test point and every pool point outside the
tuple's three subsets.

Variants (trace columns ``MLLeak*``, ``MLLeakL*``, ``Top3MLLeak*``, ``Top3MLLeakL*``):
the softmax vector as it is (sorted top-10 when there are more than 10 classes), or its
3 largest values sorted; each with or without the true class index as one more feature.
The attack accuracy of a configuration is the mean over all tuples (the paper's 30 runs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from etio.attacks.attack_model import AttackModelSpec, StackedMLP, balanced_accuracies, train_attack_models
from etio.attacks.base import Attack, register_attack
from etio.attacks.outputs import ModelOutputs, derived_seed
from etio.attacks.roc import RocSettings, roc_metrics, roc_trace_values
from etio.attacks.settings import MLLEAK_NAMES


@dataclass(frozen=True)
class Variant:
    name: str
    top_k: int          # keep this many probabilities
    always_sort: bool   # sort (descending) even when top_k covers every class
    with_label: bool
    column_prefix: str  # trace columns <prefix>MemAcc, <prefix>NonmemAcc, <prefix>Acc


VARIANTS: dict[str, Variant] = {
    "mlleak": Variant("mlleak", 10, False, False, "MLLeak"),
    "mlleak_l": Variant("mlleak_l", 10, False, True, "MLLeakL"),
    "top3": Variant("top3", 3, True, False, "Top3MLLeak"),
    "top3_l": Variant("top3_l", 3, True, True, "Top3MLLeakL"),
}

Tuple3 = tuple[int, int, int]


def prediction_features(probs: torch.Tensor, labels: torch.Tensor, variant: Variant) -> torch.Tensor:
    """Attack input from softmax vectors ``[..., n, C]`` and true labels ``[n]`` -> ``[..., n, d]``."""
    n_classes = probs.shape[-1]
    if variant.always_sort or n_classes > variant.top_k:
        probs = probs.topk(min(variant.top_k, n_classes), dim=-1).values  # sorted, largest first
    if variant.with_label:
        label = labels.to(probs.dtype).expand(*probs.shape[:-1]).unsqueeze(-1)
        probs = torch.cat([probs, label], dim=-1)
    return probs


def feature_dim(n_classes: int, variant: Variant) -> int:
    return min(variant.top_k, n_classes) + int(variant.with_label)


def draw_tuples(model_ids_by_repeat: Sequence[Sequence[int]], count: int, seed: int) -> list[Tuple3]:
    """``count`` (target, shadow, nm) tuples, spread evenly over the repeats.

    Within a repeat the targets are distinct, and shadow and nm are two further distinct
    models of the same repeat (so their training subsets are disjoint from the target's).
    The caller checks that every repeat has enough models (see :func:`tuples_per_repeat`).
    """
    rng = np.random.default_rng(seed)
    tuples: list[Tuple3] = []
    for ids, k in zip(model_ids_by_repeat, tuples_per_repeat(len(model_ids_by_repeat), count)):
        ids = np.asarray(ids)
        for target in rng.choice(ids, size=k, replace=False):
            others = ids[ids != target]
            shadow, nm = rng.choice(others, size=2, replace=False)
            tuples.append((int(target), int(shadow), int(nm)))
    return tuples


def tuples_per_repeat(n_repeats: int, count: int) -> list[int]:
    return [count // n_repeats + (r < count % n_repeats) for r in range(n_repeats)]


Request = tuple[Tuple3, str]   # (tuple, variant name): one attack model


@dataclass
class AttackData:
    """Stacked attack-model training and evaluation sets, one row per request."""

    train_x: torch.Tensor   # [B, n_train, d]
    train_y: torch.Tensor   # [B, n_train]
    eval_x: torch.Tensor    # [B, n_eval, d]
    eval_y: torch.Tensor    # [B, n_eval]
    in_dims: list[int]


def _pad(x: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, width - x.shape[-1]))


def build_attack_data(outputs: ModelOutputs, requests: Sequence[Request], eval_size: int) -> AttackData:
    """Shadow members vs nm's subset for training; target members vs ``eval_size`` test points for evaluation."""
    # every output the requests need, in one batched query
    outputs.on_subsets([pair for (target, shadow, nm), _ in requests
                        for pair in ((shadow, shadow), (shadow, nm), (target, target))])
    n_classes = outputs.on_subset(requests[0][0][0]).shape[-1]
    width = max(feature_dim(n_classes, VARIANTS[v]) for _, v in requests)
    targets = sorted({t for (t, _, _), _ in requests})
    test_probs = torch.softmax(outputs.on_test(targets)[:, :eval_size], dim=-1)
    test_row = {t: i for i, t in enumerate(targets)}
    test_labels = outputs.test_y[:eval_size]
    train_x, train_y, eval_x, eval_y, in_dims = [], [], [], [], []
    for (target, shadow, nm), name in requests:
        variant = VARIANTS[name]
        shadow_in = torch.softmax(outputs.on_subset(shadow), -1)
        shadow_out = torch.softmax(outputs.on_subset(shadow, subset_of=nm), -1)
        target_in = torch.softmax(outputs.on_subset(target), -1)[:eval_size]
        target_out = test_probs[test_row[target]]
        shadow_lab = torch.cat([outputs.labels_of(shadow), outputs.labels_of(nm)])
        target_lab = torch.cat([outputs.labels_of(target)[:eval_size], test_labels])
        train_x.append(_pad(prediction_features(torch.cat([shadow_in, shadow_out]), shadow_lab, variant), width))
        eval_x.append(_pad(prediction_features(torch.cat([target_in, target_out]), target_lab, variant), width))
        train_y.append(torch.cat([torch.ones(len(shadow_in)), torch.zeros(len(shadow_out))]).long())
        eval_y.append(torch.cat([torch.ones(len(target_in)), torch.zeros(len(target_out))]).long())
        in_dims.append(feature_dim(n_classes, variant))
    device = outputs.device
    return AttackData(torch.stack(train_x), torch.stack(train_y).to(device), torch.stack(eval_x),
                      torch.stack(eval_y).to(device), in_dims)


@dataclass
class RocPoints:
    """The points each request's attack model is scored on for its ROC, over the configuration's points
    (pool rows sorted, then test rows: :class:`etio.attacks.lowfpr.PointSet`).

    Members: the target's whole training subset. Non-members: every test point and every pool point in none
    of the tuple's three subsets; the shadow's and nm's subsets trained the attack model and are left out.
    """

    target_probs: torch.Tensor   # [T, X, C]: softmax outputs of each target on every point
    target_row: dict[int, int]   # target model id -> its row of target_probs
    labels: torch.Tensor         # [X]
    member: np.ndarray           # [B, X] bool: the request's target trained on the point
    scored: np.ndarray           # [B, X] bool: the point is in the request's ROC
    test: np.ndarray             # [X] int8: 1 for a test point
    point: np.ndarray            # [X] int32: the point's row in the pool or the test set


def roc_points(outputs: ModelOutputs, requests: Sequence[Request], model_ids: Sequence[int]) -> RocPoints:
    """The ROC's points of every request (:class:`RocPoints`); ``model_ids``: every model of the configuration.

    The targets are queried on every pool point some model trained on and on every test point, the
    queries the ``lowfpr`` attack makes (one batched query, cached for it).
    """
    from etio.attacks.lowfpr import gather_logits, point_set

    points = point_set(outputs, list(model_ids))
    targets = sorted({t for (t, _, _), _ in requests})
    logits, labels = gather_logits(outputs, points, targets)
    position = {m: i for i, m in enumerate(points.model_ids)}
    inside = points.inside
    used = np.stack([inside[position[s]] | inside[position[n]] for (_, s, n), _ in requests])
    member = np.stack([inside[position[t]] for (t, _, _), _ in requests]) & ~used
    return RocPoints(torch.softmax(logits, dim=-1), {t: i for i, t in enumerate(targets)}, labels, member, ~used,
                     np.r_[np.zeros(len(points.pool_rows)), np.ones(points.n_test)].astype(np.int8),
                     points.index.astype(np.int32))


def roc_margins(models: StackedMLP, requests: Sequence[Request], points: RocPoints,
                max_floats: int = 2 ** 24) -> np.ndarray:
    """``[B, X]`` float32: attack model ``i``'s member-minus-non-member logit on request ``i``'s target's
    outputs on every point (the accuracy path's features), as many requests per stacked forward as keep
    its widest layer within ``max_floats`` values."""
    n_points = points.labels.shape[0]
    width = models.weights[0].shape[1]
    widest = max(width, *(w.shape[-1] for w in models.weights))
    chunk = max(1, max_floats // max(1, n_points * widest))
    out = np.empty((len(requests), n_points), dtype=np.float32)
    with torch.no_grad():
        for first in range(0, len(requests), chunk):
            part = requests[first:first + chunk]
            x = torch.stack([_pad(prediction_features(points.target_probs[points.target_row[t]], points.labels,
                                                      VARIANTS[v]), width) for (t, _, _), v in part])
            logits = models.select(list(range(first, first + len(part)))).logits(x)
            out[first:first + len(part)] = (logits[..., 1] - logits[..., 0]).float().cpu().numpy()
    return out


def train_requested_models(outputs: ModelOutputs, requests: Sequence[Request], spec: AttackModelSpec,
                           seed_of: Callable[[Request], int]) -> tuple[StackedMLP, AttackData]:
    """One attack model per request, all trained at once; model ``i`` is seeded by ``seed_of(requests[i])``."""
    data = build_attack_data(outputs, requests, min(outputs.subset_size, outputs.n_test))
    models = train_attack_models(data.train_x, data.train_y, spec, [seed_of(r) for r in requests], data.in_dims)
    return models, data


def summarize_mlleaks(requests: Sequence[Request], models: StackedMLP, data: AttackData,
                      variant_names: Sequence[str], points: RocPoints,
                      roc: RocSettings = RocSettings()) -> dict[str, dict]:
    """Per variant the trace columns: means over every tuple of that variant's requests.

    Returns ``{variant: {"<prefix>MemAcc": ..., "<prefix>NonmemAcc": ..., "<prefix>Acc": ...,
    "tuples": [...], "per_tuple": {...}}}`` (the authors' parser dropped one of the 30 logs;
    every tuple counts here). The evaluation set of the accuracies is balanced, so the overall
    accuracy is the mean of the member and non-member accuracies.

    Each attack model's per-example score is its member-minus-non-member logit on ``points`` (the target's
    whole subset and every point the tuple's models did not train on; :class:`RocPoints`); the ROC of a
    variant pools its tuples (:func:`etio.attacks.roc.roc_metrics`, the targets as the AUC interval's
    groups): ``<prefix>AUC``, ``<prefix>TPR0.1``, ``<prefix>TPR1``, ``<prefix>Eps``, and the per-example
    table under ``scores`` (:func:`etio.attacks.lowfpr.pairs_table`: model, test, point, member, tuple, score).
    """
    from etio.attacks.lowfpr import pairs_table

    with torch.no_grad():
        mem, non = balanced_accuracies(models.predict_member(data.eval_x), data.eval_y)
    margin = roc_margins(models, requests, points)
    mem, non = mem.cpu(), non.cpu()
    results = {}
    for name in variant_names:
        rows = [i for i, (_, v) in enumerate(requests) if v == name]
        p = VARIANTS[name].column_prefix
        m, n = mem[rows], non[rows]
        acc = (m + n) / 2
        results[name] = {
            f"{p}MemAcc": float(m.mean()),
            f"{p}NonmemAcc": float(n.mean()),
            f"{p}Acc": float(acc.mean()),
            "tuples": [list(requests[i][0]) for i in rows],
            "per_tuple": {"MemAcc": m.tolist(), "NonmemAcc": n.tolist(), "Acc": acc.tolist()},
            "eval_size": int(data.eval_y.shape[1] // 2),
            "roc_set": "members: each tuple's target's training subset; non-members: every test point and every "
                       "pool point in none of the tuple's three subsets",
        }
        which, column = np.nonzero(points.scored[rows])                        # tuple-major, point order
        targets = np.asarray([requests[i][0][0] for i in rows])[which]        # the AUC interval's groups
        score, member = margin[rows][which, column], points.member[rows][which, column]
        metrics = roc_metrics(score, member, roc, groups=targets)
        results[name].update(roc_trace_values(p, metrics, roc.alphas))
        results[name]["roc"] = metrics
        results[name]["scores"] = pairs_table(targets, points.test[column], points.point[column], member,
                                              {"score": score}, {"tuple": which})
    return results


def mlleak_tuples(view, settings) -> list[Tuple3]:
    """The configuration's (target, shadow, nm) tuples; MemGuard defends targets drawn from the same list."""
    return draw_tuples(view.model_ids_by_repeat, settings.mlleak_tuples, derived_seed(settings.seed, view.key, "tuples"))


def tuple_problems(view, settings) -> list[str]:
    """Why the configuration's ML-Leaks tuples cannot be drawn (MemGuard draws its targets from them too)."""
    per_repeat = min(len(ids) for ids in view.model_ids_by_repeat) if view.model_ids_by_repeat else 0
    if per_repeat < 3:
        return [f"ML-Leaks needs at least 3 models per repeat (target, shadow, non-member model); "
                f"{view.key} has {per_repeat}"]
    wanted = max(tuples_per_repeat(len(view.model_ids_by_repeat), settings.mlleak_tuples))
    if wanted > per_repeat:
        return [f"mlleak_tuples = {settings.mlleak_tuples} needs {wanted} distinct targets per repeat, but "
                f"{view.key} has {per_repeat} models per repeat ({len(view.model_ids_by_repeat)} repeats); "
                f"use mlleak_tuples ≤ {per_repeat * len(view.model_ids_by_repeat)}"]
    return []


def select_data(data: AttackData, rows: Sequence[int]) -> AttackData:
    """The rows ``rows`` of ``data``."""
    return AttackData(data.train_x[rows], data.train_y[rows], data.eval_x[rows], data.eval_y[rows],
                      [data.in_dims[i] for i in rows])


class MLLeaks(Attack):
    """The four ML-Leaks variants: one attack model per (tuple, variant) from the shared batch."""

    names = MLLEAK_NAMES
    result_keys = ("roc_set",)   # the ROC on every point the attack models can score

    def problems(self, view, names, settings) -> list[str]:
        return tuple_problems(view, settings)

    def requests(self, view, names, settings) -> list:
        return [(t, v) for t in mlleak_tuples(view, settings) for v in names]

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        start = time.perf_counter()
        tuples = set(mlleak_tuples(view, settings))
        mine = [r for r in batch.requests if r[1] in names and r[0] in tuples]
        index = batch.index
        points = roc_points(outputs, mine, [m for ids in view.model_ids_by_repeat for m in ids])
        results = summarize_mlleaks(mine, batch.models.select([index[r] for r in mine]),
                                    select_data(batch.data, [index[r] for r in mine]), names, points,
                                    settings.lowfpr().roc)
        share = (time.perf_counter() - start) / len(names)
        for name in names:
            n_models = sum(1 for r in mine if r[1] == name)
            on_result(name, {**results[name], "epochs": batch.epochs, "seconds": share + batch.per_model * n_models})


register_attack(MLLeaks())
