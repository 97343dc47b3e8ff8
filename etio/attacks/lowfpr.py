"""Membership inference at low false-positive rates on one configuration (attack ``lowfpr``).

Every model of the configuration is a target, attacked on every point: the pool points
(members of the models whose subset holds them) and the test points (members of none).
For each target the others are its reference models (:mod:`.lira`, :mod:`.rmia`). Per target
and point the attack keeps one score per method:

* ``threshold``: minus the loss (Yeom et al.; the trace column ``ThresholdAcc`` thresholds it at
  ``TrainLoss``);
* ``lira_offline``, ``lira_offline_fixed``, ``lira_online``, ``lira_online_fixed``;
* ``rmia`` (offline, ``a`` chosen on a reference model, γ from ``[attacks].rmia_gamma``).

The ROC of each method pools all targets of the configuration (members positives, non-members
negatives; :mod:`.roc`). Online LiRA scores only pool points (a test point has no IN reference),
so its ROC has fewer negatives than the others; each ROC records how many it rests on.

On a dataset trained with augmentation LiRA and RMIA query every point under the augmentations of
``[attacks].lowfpr_augmentations`` (:func:`augmented_confidences`); the threshold attack keeps the
identity query, and the result names the queries (``augmentations``) when there are more than one.

The scores go to one file per configuration (:func:`scores_table`, read back with
``etio.traces.store.TraceStore.read_scores``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from etio.attacks.base import Attack, register_attack
from etio.attacks.lira import LIRA_VARIANTS, lira_scores, logit_confidence
from etio.attacks.outputs import ModelOutputs
from etio.attacks.rmia import choose_a, query_probability, rmia_scores
from etio.attacks.roc import RocSettings, roc_metrics, roc_trace_values
from etio.attacks.threshold import per_sample_loss
from etio.core.vocabulary import LOWFPR_STAGE

#: Score columns of the per-example file, in order.
SCORE_METHODS = ("threshold", *(f"lira_{v}" for v in LIRA_VARIANTS), "rmia")


@dataclass(frozen=True)
class LowFprSettings:
    references: int = 0            # references per side and point; 0 = every other eligible model
    lira_variance: str = "fixed"   # which LiRA variance the trace columns report: "fixed" or "per_example"
    rmia_gamma: float = 2.0
    roc: RocSettings = RocSettings()
    augmentations: str = "auto"    # [attacks].lowfpr_augmentations: LiRA's and RMIA's queries


#: Trace-column prefix of each method whose ROC metrics are trace columns (``fixed`` default).
def reported_methods(variance: str) -> dict[str, str]:
    suffix = "_fixed" if variance == "fixed" else ""
    return {"Threshold": "threshold", "LiraOffline": f"lira_offline{suffix}", "LiraOnline": f"lira_online{suffix}",
            "Rmia": "rmia"}


@dataclass
class PointSet:
    """The points every target is attacked on: pool rows (sorted), then test rows."""

    pool_rows: np.ndarray
    n_test: int
    inside: np.ndarray        # [M, X] bool: model i (of model_ids) trained on point x
    model_ids: list[int]

    @property
    def split(self) -> np.ndarray:
        return np.array(["pool"] * len(self.pool_rows) + ["test"] * self.n_test, dtype=object)

    @property
    def index(self) -> np.ndarray:
        return np.concatenate([self.pool_rows, np.arange(self.n_test)])

    @property
    def population(self) -> np.ndarray:
        return np.arange(len(self.pool_rows), len(self.pool_rows) + self.n_test)


def point_set(outputs: ModelOutputs, model_ids: list[int]) -> PointSet:
    subsets = outputs.subsets.numpy()
    pool_rows = np.unique(subsets[np.asarray(model_ids) - 1])
    position = np.full(int(pool_rows.max()) + 1, -1)
    position[pool_rows] = np.arange(len(pool_rows))
    inside = np.zeros((len(model_ids), len(pool_rows) + outputs.n_test), dtype=bool)
    for i, m in enumerate(model_ids):
        inside[i, position[subsets[m - 1]]] = True
    return PointSet(pool_rows, outputs.n_test, inside, list(model_ids))


def gather_logits(outputs: ModelOutputs, points: PointSet,
                  model_ids: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[M, X, C]`` of every model (or of ``model_ids``) on every point, and the labels ``[X]``.

    Every model is queried on the same points (:meth:`ModelOutputs.on_pool`, kept for the other attacks:
    ML-Leaks' ROC queries its targets as this attack queries them).
    """
    ids = points.model_ids if model_ids is None else list(model_ids)
    logits = torch.cat([outputs.on_pool(ids, points.pool_rows), outputs.on_test(ids)], dim=1)
    labels = torch.cat([outputs.pool_y[torch.as_tensor(points.pool_rows)].to(outputs.device), outputs.test_y])
    return logits, labels


def augmented_confidences(outputs: ModelOutputs, points: PointSet, labels: torch.Tensor, phi: np.ndarray,
                          augmentations, info) -> np.ndarray:
    """φ ``[A, M, X]`` of every model on every point under each query augmentation: the identity's
    ``phi`` (the cached query) first, then the others, every model on every augmentation of a block of
    points in one batched query (:meth:`ModelOutputs.augmented_blocks`), each block's logits reduced to φ
    before the next (CIFAR-100's 100 logits per query are never all held)."""
    out = np.empty((len(augmentations), *phi.shape))
    out[0] = phi
    for first, logits in outputs.augmented_blocks(points.model_ids, points.pool_rows, augmentations[1:], info):
        out[1:, :, first:first + logits.shape[2]] = \
            logit_confidence(logits, labels[first:first + logits.shape[2]]).cpu().numpy()
    return out


def run_lowfpr(outputs: ModelOutputs, model_ids: list[int], loss: str, settings: LowFprSettings,
               dataset=None) -> dict:
    """Scores of every method for every (target, point), their ROC metrics and trace values.

    ``dataset``: the configuration's :class:`~etio.traces.datasets.DatasetInfo` (None: unknown, queries
    not augmented); on a dataset trained with augmentation LiRA and RMIA query the augmentations of
    ``settings.augmentations``, on any other the identity alone. The result's ``scores`` entry is the
    per-example table (:func:`scores_table`); the rest is JSON.
    """
    from etio.attacks.settings import query_augmentations

    augmentations = query_augmentations(settings.augmentations, bool(dataset is not None and dataset.augment))
    points = point_set(outputs, model_ids)
    logits, labels = gather_logits(outputs, points)
    # a few models at a time: no float64 copy of every model's logits at once (CIFAR-100: 100 classes)
    threshold, phi = np.empty(points.inside.shape), np.empty(points.inside.shape)
    for start in range(0, len(model_ids), 8):
        part = logits[start:start + 8]
        threshold[start:start + 8] = (-per_sample_loss(part, labels, loss)).double().cpu().numpy()
        phi[start:start + 8] = logit_confidence(part, labels).cpu().numpy()
    scores = {"threshold": threshold}          # the identity query, as the paper's threshold attack
    if len(augmentations) > 1:
        phi = augmented_confidences(outputs, points, labels, phi, augmentations, dataset)     # [A, M, X]
    for variant, s in lira_scores(phi, points.inside, settings.references).items():
        scores[f"lira_{variant}"] = s
    prob = query_probability(phi)
    a, aucs = choose_a(prob, points.inside, points.population, settings.rmia_gamma, reference=0,
                       references=settings.references)
    scores["rmia"] = rmia_scores(prob, points.inside, points.population, a, settings.rmia_gamma, settings.references)
    # the metrics are those of the stored (float32) scores, so anyone can recompute them from the file
    scores = {name: s.astype(np.float32) for name, s in scores.items()}
    # ROC metrics of the reported methods (the other LiRA variance's scores are in the file)
    reported = reported_methods(settings.lira_variance)
    targets = np.repeat(np.asarray(model_ids), points.inside.shape[1])      # the AUC's bootstrap resamples them
    metrics = {name: roc_metrics(scores[name].ravel(), points.inside.ravel(), settings.roc, groups=targets)
               for name in reported.values()}
    values = {}
    for prefix, method in reported.items():
        m = metrics[method]
        values.update(roc_trace_values(prefix, m, settings.roc.alphas))
        if prefix != "Threshold":     # ThresholdAcc is the paper's column (tau = TrainLoss)
            values[f"{prefix}Acc"] = m["Acc"]
    return {
        **values,
        "metrics": metrics,
        "reported": reported,
        "rmia": {"a": a, "auc_by_a": aucs, "a_chosen_on_model": model_ids[0], "gamma": settings.rmia_gamma,
                 "population": "test points"},
        "targets": len(model_ids),
        "points": {"pool": int(len(points.pool_rows)), "test": int(points.n_test)},
        "references": settings.references or "all other models",
        # only with more than one query: results of unaugmented queries keep the bytes they had
        **({"augmentations": [a.name for a in augmentations]} if len(augmentations) > 1 else {}),
        "scores": scores_table(points, scores),
    }


def scores_table(points: PointSet, scores: dict[str, np.ndarray]) -> np.ndarray:
    """One record per (model, point): model id, test (1) or pool (0) point, its row there, membership,
    each method's score (float32; NaN where the method does not score the point)."""
    m, x = points.inside.shape
    dtype = np.dtype([("model", "<i4"), ("test", "i1"), ("point", "<i4"), ("member", "i1")]
                     + [(name, "<f4") for name in SCORE_METHODS])
    table = np.zeros(m * x, dtype=dtype)
    table["model"] = np.repeat(np.asarray(points.model_ids, dtype=np.int32), x)
    table["test"] = np.tile(np.r_[np.zeros(len(points.pool_rows)), np.ones(points.n_test)].astype(np.int8), m)
    table["point"] = np.tile(points.index.astype(np.int32), m)
    table["member"] = points.inside.ravel().astype(np.int8)
    for name in SCORE_METHODS:
        table[name] = scores[name].ravel()
    return table


def pairs_table(model, test, point, member, scores: dict[str, np.ndarray], extra: dict | None = None) -> np.ndarray:
    """Per-example scores of an attack that scores chosen (model, point) pairs (ML-Leaks, Oak17, MemGuard): the
    layout of :func:`scores_table`, with ``extra`` integer columns (the tuple, the seed) after ``member``."""
    extra = extra or {}
    dtype = np.dtype([("model", "<i4"), ("test", "i1"), ("point", "<i4"), ("member", "i1")]
                     + [(name, "<i4") for name in extra] + [(name, "<f4") for name in scores])
    table = np.zeros(len(np.asarray(model)), dtype=dtype)
    table["model"], table["test"], table["point"], table["member"] = model, test, point, member
    for name, values in {**extra, **scores}.items():
        table[name] = values
    return table


def _dataset_of(view):
    """The configuration's dataset (None when the view does not name one)."""
    from etio.traces.datasets import dataset_info

    return dataset_info(view.dataset) if view.dataset else None


class LowFpr(Attack):
    """LiRA, RMIA and the loss threshold scored on every model's points, with their ROC metrics."""

    names = (LOWFPR_STAGE,)

    def problems(self, view, names, settings) -> list[str]:
        n_models = sum(len(ids) for ids in view.model_ids_by_repeat)
        if n_models < 3:
            return [f"the low-FPR attacks need at least 3 models (a target and its references); {view.key} "
                    f"has {n_models}"]
        return []

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        start = time.perf_counter()
        result = run_lowfpr(outputs, [m for ids in view.model_ids_by_repeat for m in ids], view.loss,
                            settings.lowfpr(), _dataset_of(view))
        on_result(LOWFPR_STAGE, {**result, "seconds": time.perf_counter() - start})


register_attack(LowFpr())
