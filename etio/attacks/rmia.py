"""RMIA (Zarifzadeh et al., "Low-Cost High-Power Membership Inference Attacks", ICML 2024), offline.

Pr(x | θ) is the model's softmax probability of x's true label. For a target t the references
are the configuration's other models that did not train on x (offline: OUT references only;
the target is never one), and Pr(x) is approximated from their mean Pr_OUT(x) as

    Pr(x) ≈ ½((1 + a)·Pr_OUT(x) + (1 − a)),

the authors' linear correction for the missing IN references. The population samples z are
the test points (members of no model), with Pr(z) from the same references and formula. The
pairwise likelihood ratio is LR(x, z) = (Pr(x | θ_t) / Pr(x)) / (Pr(z | θ_t) / Pr(z)), and the
score of x is the fraction of z with LR(x, z) ≥ γ; a test point is never its own z.

Under query augmentations (``[attacks].lowfpr_augmentations``) Pr(x | θ) of every model is the mean
over the augmented queries of x (:func:`query_probability`), for x and z alike.

``a`` is chosen as the authors describe: one reference model (the configuration's first) is
attacked with the others as its references, for each a of a grid, and the a with the largest
AUC is kept for every target of the configuration.

Vectorised: per target, the ratios of the population are sorted once and every x is placed
among them with ``searchsorted`` (no |X| × |Z| comparison).
"""

from __future__ import annotations

import numpy as np

#: The values of ``a`` tried when it is chosen on a reference model.
A_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def true_label_probability(phi: np.ndarray) -> np.ndarray:
    """Pr(x | θ), the softmax probability of the true label, from LiRA's φ = log(p_y / (1 − p_y)):
    p_y = 1 / (1 + e^(−φ)) (no second softmax over the logits)."""
    from scipy.special import expit

    return expit(np.asarray(phi, dtype=float))


def query_probability(phi: np.ndarray) -> np.ndarray:
    """Pr(x | θ) ``[M, X]`` from φ ``[M, X]``, or from φ ``[A, M, X]`` under A query augmentations: the
    mean over the augmentations of each one's Pr(x | θ) (as LiRA's queries, :mod:`.lira`)."""
    prob = true_label_probability(phi)
    return prob if prob.ndim == 2 else prob.mean(axis=0)


def out_reference_mean(prob: np.ndarray, inside: np.ndarray, target: int, references: int = 0) -> np.ndarray:
    """Pr_OUT(x): mean of Pr(x | θ') over the models other than ``target`` that did not train on x."""
    from etio.attacks.lira import limit_references

    mask = ~inside
    mask[target] = False
    mask = limit_references(mask, references)
    k = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, np.where(mask, prob, 0.0).sum(axis=0) / k, np.nan)


def out_reference_means(prob: np.ndarray, inside: np.ndarray, references: int = 0,
                        columns: int = 256) -> np.ndarray:
    """Pr_OUT(x) of every target ``[M, X]``: row t is :func:`out_reference_mean` of target t, the same bits for
    the probabilities (≥ +0) of C-ordered arrays of several points that :func:`rmia_scores` passes.

    There numpy's masked sum adds the reference models' rows in model order, each to the running sum of the
    ones before (it sums pairwise only along a contiguous axis: one point, or a Fortran-ordered array).
    Row t's sum is therefore the prefix of the rows before t followed by the rows after it, one at a time:
    every target starts from its prefix (one cumulative sum) and all of them add the next row together, the
    sum of target t taking row t + s at step s. Half the additions of one mean per target, in M whole-array
    steps over blocks of ``columns`` points that stay in the cache. A model that trained on x adds +0.0,
    which changes no sum of probabilities, as the masked sum does. With a limit on the references each
    target's own mean is taken (the limit picks other models per target).
    """
    n_models, n_points = prob.shape
    if references:
        return np.stack([out_reference_mean(prob, inside, t, references) for t in range(n_models)])
    outside = np.where(inside, 0.0, prob)
    sums = np.empty(outside.shape, dtype=outside.dtype)
    for first in range(0, n_points, columns):
        block = outside[:, first:first + columns]
        acc = sums[:, first:first + columns]
        acc[0] = 0.0
        np.cumsum(block[:-1], axis=0, out=acc[1:])
        for step in range(1, n_models):
            acc[:n_models - step] += block[step:]
    k = (~inside).sum(axis=0)[None, :] - ~inside          # the other models that did not train on x
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, sums / k, np.nan)


def marginal(pr_out: np.ndarray, a: float) -> np.ndarray:
    """The offline Pr(x) ≈ ½((1 + a)·Pr_OUT(x) + (1 − a))."""
    return 0.5 * ((1 + a) * pr_out + (1 - a))


def rmia_target_scores(prob_t: np.ndarray, pr_out: np.ndarray, population: np.ndarray, a: float,
                       gamma: float) -> np.ndarray:
    """Score of every point for one target: the fraction of population z with LR(x, z) ≥ γ.

    ``prob_t``, ``pr_out``: ``[X]``; ``population``: indices of the z among the points.
    LR(x, z) ≥ γ  ⇔  ratio(z) ≤ ratio(x)/γ, counted by ``searchsorted`` on the sorted ratios of z.
    """
    ratio = prob_t / marginal(pr_out, a)
    ratio_z = np.sort(ratio[population])
    count = np.searchsorted(ratio_z, ratio / gamma, side="right").astype(float)
    size = np.full(ratio.shape, float(len(population)))
    in_population = np.zeros(ratio.shape, dtype=bool)
    in_population[population] = True
    # a population point is not compared with itself: LR(x, x) = 1 was counted when γ ≤ 1
    count[in_population] -= float(gamma <= 1.0)
    size[in_population] -= 1
    scores = count / size
    scores[~np.isfinite(ratio)] = np.nan
    return scores


def rmia_scores(prob: np.ndarray, inside: np.ndarray, population: np.ndarray, a: float, gamma: float,
                references: int = 0) -> np.ndarray:
    """Scores ``[M, X]``: row t is model t attacked on every point (one loop over targets)."""
    prob, inside = np.asarray(prob, dtype=float), np.asarray(inside, dtype=bool)
    pr_out = out_reference_means(prob, inside, references)
    return np.stack([rmia_target_scores(prob[t], pr_out[t], population, a, gamma) for t in range(prob.shape[0])])


def choose_a(prob: np.ndarray, inside: np.ndarray, population: np.ndarray, gamma: float, reference: int = 0,
             references: int = 0, grid=A_GRID) -> tuple[float, dict[str, float]]:
    """The ``a`` whose RMIA on reference model ``reference`` (the others as its references) has the largest AUC.

    Members of the reference model are positives, the population points negatives; ties keep the smallest a.
    """
    from etio.attacks.roc import rank_auc

    pr_out = out_reference_mean(prob, inside, reference, references)
    members = inside[reference]
    rows = members | np.isin(np.arange(prob.shape[1]), population)
    aucs = {}
    for a in grid:
        s = rmia_target_scores(prob[reference], pr_out, population, a, gamma)
        keep = rows & np.isfinite(s)
        aucs[f"{a:g}"] = rank_auc(members[keep], s[keep])
    best = max(grid, key=lambda a: (aucs[f"{a:g}"], -a))
    return float(best), aucs
