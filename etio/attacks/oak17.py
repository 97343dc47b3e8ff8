"""Shokri et al.'s multiple-shadow-model attack (trace columns ``Oak17*``, paper: ShadowAcc).

The target is the first model of the first repeat; every other model of that repeat is a
shadow. ``2 * set_size`` test points are split at random into the target's non-members
and the shadows' non-members. Each shadow contributes its outputs on its own training
subset (members) and on the shadows' non-members; one attack model per true class learns
member vs non-member from the shadows' softmax vectors, and is evaluated on the target's
members and non-members of that class. The whole attack runs once per seed.

The accuracies are those of that balanced evaluation (``set_size`` members and non-members per
seed). The ROC metrics (``Oak17AUC``, ``Oak17TPR*``, ``Oak17Eps``) and the per-example scores use
every point the attack can score soundly: per seed, the target's whole training subset (members)
and every test point the seed's shadows did not use (non-members: the target's half of the first
``2 * set_size`` test points and every test point after them), each scored by the attack model of
its true class.

Oak17Acc is the unweighted mean over classes and seeds of the per-class balanced accuracy
(mean of member and non-member accuracy). Oak17MemAcc is the accuracy on members and
Oak17NonmemAcc on non-members (the authors' parser stored these two the other way round).

The authors' attack-model configuration file is not published; the attack model follows
the reference implementation of Shokri et al.'s attack (:data:`SHOKRI_ATTACK_MODEL`).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from etio.attacks.attack_model import AttackModelSpec, balanced_accuracies, train_attack_models
from etio.attacks.base import Attack, register_attack
from etio.attacks.outputs import ModelOutputs, derived_seed, generator_for
from etio.attacks.roc import RocSettings, roc_metrics, roc_trace_values

#: One hidden layer of 64 tanh units, 2-way softmax, Adam lr 0.01, batch 100, 100 epochs,
#: L2 penalty 1e-6 on the weights.
SHOKRI_ATTACK_MODEL = AttackModelSpec(hidden=(64,), lr=0.01, epochs=100, batch_size=100, l2=1e-6)


def oak17_set_size(subset_size: int, n_test: int) -> int:
    return min(subset_size, n_test // 2)


def run_oak17(outputs: ModelOutputs, target: int, shadows: Sequence[int], n_classes: int,
              spec: AttackModelSpec, seeds: Sequence[int], seed_base: int, key: str,
              roc: RocSettings = RocSettings()) -> dict:
    """Per-class attack models for every seed, trained together; the ``Oak17*`` trace columns.

    Besides the accuracies: the ROC of the attack on the target's whole subset and every test point not
    used as a shadow non-member, seeds and classes pooled (``Oak17AUC``, ``Oak17TPR0.1``, ``Oak17TPR1``,
    ``Oak17Eps``), and the per-example scores (``scores``: :func:`etio.attacks.lowfpr.pairs_table`).
    """
    from etio.attacks.lowfpr import pairs_table

    set_size = oak17_set_size(outputs.subset_size, outputs.n_test)
    # every output needed, in one batched query per kind (the lines below read the cache)
    outputs.on_test([*shadows, target]), outputs.on_subsets([(s, s) for s in [*shadows, target]])
    shadow_test_all = torch.softmax(outputs.on_test(list(shadows))[:, :2 * set_size], -1)   # [S, 2m, C]
    target_test_all = torch.softmax(outputs.on_test([target])[0, :2 * set_size], -1)        # [2m, C]
    test_y = outputs.test_y[:2 * set_size]
    shadow_in = torch.cat([torch.softmax(outputs.on_subset(s)[:set_size], -1) for s in shadows])
    shadow_in_y = torch.cat([outputs.labels_of(s)[:set_size] for s in shadows])
    target_in = torch.softmax(outputs.on_subset(target)[:set_size], -1)
    target_in_y = outputs.labels_of(target)[:set_size]

    train_sets, eval_sets, baselines, shadow_used = [], [], [], []
    for seed in seeds:
        # The random split of the 2m test points into target and shadow non-members.
        perm = torch.randperm(2 * set_size, generator=generator_for(seed_base, key, "oak17-split", seed))
        target_idx, shadow_idx = perm[:set_size].to(outputs.device), perm[set_size:].to(outputs.device)
        shadow_out = shadow_test_all[:, shadow_idx].reshape(-1, n_classes)
        shadow_out_y = test_y[shadow_idx].repeat(len(shadows))
        target_out, target_out_y = target_test_all[target_idx], test_y[target_idx]
        shadow_used.append(shadow_idx.cpu().numpy())
        for c in range(n_classes):
            tin, tout = shadow_in[shadow_in_y == c], shadow_out[shadow_out_y == c]
            ein, eout = target_in[target_in_y == c], target_out[target_out_y == c]
            train_sets.append((torch.cat([tin, tout]), _membership(len(tin), len(tout))))
            eval_sets.append((torch.cat([ein, eout]), _membership(len(ein), len(eout))))
            # "Member iff correctly classified", the baseline the authors log next to the attack.
            baselines.append(((ein.argmax(-1) == c).double().mean().item() if len(ein) else float("nan"),
                              (eout.argmax(-1) != c).double().mean().item() if len(eout) else float("nan")))
    train_x, train_y, train_valid = _stack(train_sets, outputs.device)
    eval_x, eval_y, eval_valid = _stack(eval_sets, outputs.device)
    model_seeds = [derived_seed(seed_base, key, "oak17-model", seed, c) for seed in seeds for c in range(n_classes)]
    models = train_attack_models(train_x, train_y, spec, model_seeds, valid=train_valid)
    with torch.no_grad():
        mem, non = balanced_accuracies(models.predict_member(eval_x), eval_y, eval_valid)
    mem, non = mem.cpu().numpy(), non.cpu().numpy()
    # The ROC's points: the target's whole subset (members), then every test point (non-members of the
    # seeds whose shadows did not use them), each scored by its true class's model of every seed.
    n_members = outputs.subset_size
    roc_x = torch.cat([torch.softmax(outputs.on_subset(target), -1), torch.softmax(outputs.on_test([target])[0], -1)])
    roc_y = torch.cat([outputs.labels_of(target), outputs.test_y])
    margin = class_model_margins(models, roc_x, roc_y, n_classes, len(seeds))                   # [seeds, X]
    scored = np.ones(margin.shape, dtype=bool)
    for i, used in enumerate(shadow_used):
        scored[i, n_members + used] = False
    which, column = np.nonzero(scored)                                              # seed-major, point order
    score, member = margin[which, column], column < n_members
    metrics = roc_metrics(score, member, roc, groups=np.full(len(score), target))   # one target: no AUC interval
    point = np.r_[outputs.rows(target).numpy(), np.arange(outputs.n_test)]
    per_class = (mem + non) / 2
    base = np.asarray(baselines, dtype=float)
    return {
        "Oak17MemAcc": float(np.nanmean(mem)),
        "Oak17NonmemAcc": float(np.nanmean(non)),
        "Oak17Acc": float(np.nanmean(per_class)),
        "target": int(target),
        "shadows": [int(s) for s in shadows],
        "seeds": [int(s) for s in seeds],
        "set_size": set_size,
        "roc_set": "members: the target's training subset; non-members: every test point not used as a shadow "
                   "non-member in the seed's split",
        "attack_model": {"hidden": list(spec.hidden), "lr": spec.lr, "epochs": spec.epochs,
                         "batch_size": spec.batch_size, "l2": spec.l2},
        **roc_trace_values("Oak17", metrics, roc.alphas),
        "roc": metrics,
        "scores": pairs_table(np.full(len(score), target), column >= n_members, point[column], member,
                              {"score": score}, {"seed": np.asarray(seeds)[which]}),
        "per_class": {"MemAcc": _listed(mem), "NonmemAcc": _listed(non), "Acc": _listed(per_class)},
        "baseline": {"MemAcc": float(np.nanmean(base[:, 0])), "NonmemAcc": float(np.nanmean(base[:, 1])),
                     "Acc": float(np.nanmean(base.mean(axis=1)))},
    }


def class_model_margins(models, x: torch.Tensor, y: torch.Tensor, n_classes: int, n_seeds: int) -> np.ndarray:
    """``[n_seeds, X]`` float32: each point's member-minus-non-member logit under its true class's attack
    model of each seed (``models`` seed-major, class-minor). One stacked forward: the points grouped by
    class into ``[n_classes, n_max, C]`` (zero rows fill the smaller classes), repeated for every seed."""
    y = y.cpu()
    counts = torch.bincount(y, minlength=n_classes)
    order = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(y)) - starts[y[order]]
    grouped = torch.zeros(n_classes, max(1, int(counts.max())), x.shape[-1], device=x.device)
    grouped[y.to(x.device), rank.to(x.device)] = x
    with torch.no_grad():
        logits = models.logits(grouped.repeat(n_seeds, 1, 1))
    margin = (logits[..., 1] - logits[..., 0]).float().view(n_seeds, n_classes, -1)
    return margin[:, y.to(x.device), rank.to(x.device)].cpu().numpy()


def _membership(n_in: int, n_out: int) -> torch.Tensor:
    return torch.cat([torch.ones(n_in, dtype=torch.long), torch.zeros(n_out, dtype=torch.long)])


def _stack(sets, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad per-class sets of different sizes to one ``[B, n_max, C]`` stack with a validity mask."""
    n_max = max(1, max(len(y) for _, y in sets))
    width = sets[0][0].shape[-1]
    x = torch.zeros(len(sets), n_max, width, device=device)
    y = torch.zeros(len(sets), n_max, dtype=torch.long, device=device)
    valid = torch.zeros(len(sets), n_max, dtype=torch.bool, device=device)
    for i, (xi, yi) in enumerate(sets):
        x[i, :len(yi)] = xi
        y[i, :len(yi)] = yi.to(device)
        valid[i, :len(yi)] = True
    return x, y, valid


def _listed(a: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in a]


class Oak17(Attack):
    """Shokri et al.'s shadow models: the first repeat's first model is the target, the others its shadows."""

    names = ("oak17",)
    result_keys = ("roc_set",)   # the ROC on every point the attack models can score

    def problems(self, view, names, settings) -> list[str]:
        first = view.model_ids_by_repeat[0] if view.model_ids_by_repeat else []
        if len(first) < 2:
            return [f"Oak17 needs a target and at least one shadow in the first repeat; {view.key} has "
                    f"{len(first)} model(s)"]
        if settings.oak17_shadows > len(first) - 1:
            return [f"oak17_shadows = {settings.oak17_shadows} but {view.key} has only {len(first) - 1} "
                    f"other models in its first repeat"]
        return []

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        start = time.perf_counter()
        first = view.model_ids_by_repeat[0]
        shadows = first[1:1 + settings.oak17_shadows] if settings.oak17_shadows else first[1:]
        spec = AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": settings.oak17_epochs})
        result = run_oak17(outputs, first[0], shadows, view.num_classes, spec, settings.oak17_seeds,
                           settings.seed, view.key, settings.lowfpr().roc)
        on_result("oak17", {**result, "seconds": time.perf_counter() - start})


register_attack(Oak17())
