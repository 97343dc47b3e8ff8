"""LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022).

The study already trains LiRA's shadow models: in a configuration every pool point is a
member of exactly N models (one per repeat) and a non-member of the others, and every model
shares the target's recipe. For a target model t and a point x the references are the
configuration's other models: IN references trained on x, OUT references did not. The target
is never its own reference, and no OUT reference has trained on x (the membership matrix says
which models did).

Signal: the logit-scaled confidence of the true label, φ = log(p_y / (1 − p_y)), computed
from the logits as φ = z_y − logsumexp_{j≠y} z_j (no softmax is formed, so φ stays finite when
p_y rounds to 1).

Reference statistics per (target, x): μ = the median of φ over the references (as the
authors' code), σ = their standard deviation around the mean (ddof 1: with two references the
population form would halve the variance). *Per-example* variance uses each x's own σ (it needs
two references); *fixed* variance LiRA's global σ, one per side for the whole configuration
(:func:`global_sd`): the within-example standard deviation pooled over every point and every
model of the configuration on that side — Carlini et al. recommend it when references are few.
A point's OUT σ pools only models that did not train on a point, so no model that trained on x
enters an offline score of x; the same σ serves every target (with a σ that does not depend on the
point, the offline fixed-variance ROC is that of φ_t − μ_out).

* **online**: log N(φ_t; μ_in, σ_in²) − log N(φ_t; μ_out, σ_out²). Only points with an IN
  reference are scored: pool points, never test points (no model trained on them).
* **offline** (OUT references only): the one-sided test of the paper, Λ = Pr[Z ≤ φ_t] with
  Z ~ N(μ_out, σ_out²), reported as −ln(1 − Λ) (computed with ``log_ndtr``, monotone in Λ so the
  ROC is the paper's). Not the negated OUT log-density some code uses: that is a two-sided
  test, which also calls a point whose confidence is far *below* the non-members' a member,
  while training only raises a member's confidence. −ln(1 − Λ) keeps confident members apart
  where Λ itself rounds to 1.

**Query augmentations** (``[attacks].lowfpr_augmentations``; Carlini et al. query each point under
the training augmentations): φ then has one value per augmentation a, and the reference statistics
(μ, σ, the global σ) are taken per augmentation: a diagonal Gaussian over the augmentations. The
online score is the sum over a of the per-augmentation log likelihood ratios (the log ratio of the
two diagonal Gaussians). The offline score stays a one-sided test: with z_a = (φ_t,a − μ_out,a)/σ_out,a,
independent N(0, 1) under OUT, Z = Σ_a z_a / √A is N(0, 1), and the score is −ln(1 − Pr[N(0, 1) ≤ Z])
(the test of a shift of every z_a upward; with one augmentation the score above).

With N = 3 a member of the target has only N − 1 = 2 IN references besides the target, a
non-member of it N = 3: the per-example σ_in of an online score rests on two values and differs
in precision between members and non-members. The trace columns therefore report the fixed-
variance variants (``[attacks].lira_variance``); all four are in the per-example scores.
"""

from __future__ import annotations

import numpy as np
import torch

#: The four variants, in the order their scores are stored.
LIRA_VARIANTS = ("offline", "offline_fixed", "online", "online_fixed")


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """φ = z_y − logsumexp_{j≠y} z_j in float64, for logits ``[..., X, C]`` and labels ``[X]``."""
    z = logits.double()
    y = labels.to(z.device).expand(z.shape[:-1]).unsqueeze(-1)
    z_y = torch.gather(z, -1, y).squeeze(-1)
    others = z.scatter(-1, y, float("-inf"))
    return z_y - torch.logsumexp(others, dim=-1)


def limit_references(mask: np.ndarray, references: int) -> np.ndarray:
    """Keep the first ``references`` eligible models (model order) of each point; 0 keeps all."""
    if not references:
        return mask
    return mask & (np.cumsum(mask, axis=0) <= references)


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the masked-in values (mean of the two middle ones); NaN where none."""
    k = mask.sum(axis=0)
    ordered = np.sort(np.where(mask, values, np.nan), axis=0)          # NaN last
    lo = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(ordered, (k // 2)[None].clip(max=values.shape[0] - 1), axis=0)[0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def reference_statistics(values: np.ndarray, mask: np.ndarray) -> dict:
    """Per point (axis 1): median, per-example sd (ddof 1), and the pooled within-point sd."""
    k = mask.sum(axis=0)
    safe = np.where(mask, values, 0.0)
    mean = safe.sum(axis=0) / np.maximum(k, 1)
    squares = (np.where(mask, values - mean, 0.0) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(k >= 2, np.sqrt(squares / (k - 1)), np.nan)
    dof = int(np.maximum(k - 1, 0).sum())
    pooled = float(np.sqrt(squares.sum() / dof)) if dof else float("nan")
    return {"median": masked_median(values, mask), "sd": sd, "pooled": pooled, "count": k}


def global_sd(values: np.ndarray, mask: np.ndarray) -> float:
    """LiRA's global σ of one side: sqrt(Σ_x Σ_m (φ_mx − φ̄_x)² / Σ_x (k_x − 1)) over the masked-in (model, point)
    values, φ̄_x and k_x the mean and count of point x's masked-in values (NaN when no point has two)."""
    k = mask.sum(axis=0)
    mean = np.where(mask, values, 0.0).sum(axis=0) / np.maximum(k, 1)
    dof = int(np.maximum(k - 1, 0).sum())
    squares = float((np.where(mask, values - mean, 0.0) ** 2).sum())
    return float(np.sqrt(squares / dof)) if dof else float("nan")


def _floor(sd):
    return np.maximum(sd, 1e-12)


def online_score(phi_t: np.ndarray, mu_in, sd_in, mu_out, sd_out) -> np.ndarray:
    """log N(φ_t; μ_in, σ_in²) − log N(φ_t; μ_out, σ_out²)."""
    sd_in, sd_out = _floor(sd_in), _floor(sd_out)
    return (np.log(sd_out) - np.log(sd_in) - (phi_t - mu_in) ** 2 / (2 * sd_in ** 2)
            + (phi_t - mu_out) ** 2 / (2 * sd_out ** 2))


def leave_one_out_statistics(values: np.ndarray, mask: np.ndarray) -> dict:
    """Reference statistics of every target at once: row t describes the masked-in models of each point
    other than model t (the target is never its own reference).

    For each point the side's values are sorted once; a target inside the side removes its own rank
    from the sorted list (the median is read at shifted indices) and its own deviation from the sums
    (mean and variance by difference, around the side's mean for accuracy). Returns ``median``, ``sd``
    (ddof 1) and ``count`` ``[M, X]`` and ``pooled`` ``[M]``, as :func:`reference_statistics` per target.
    """
    n_models, n_points = values.shape
    k = mask.sum(axis=0)                                                   # [X]
    # each point's models sorted, the side first (ascending, NaN last, as masked_median sorts it), then the
    # others: rows of the transpose, a contiguous sort each. The others sort last as +inf, except at a point
    # whose side holds +inf or NaN (they would tie with it or sort before it): there the side is a key of its own.
    order = np.argsort(np.where(mask, values, np.inf).T, axis=1, kind="stable")
    unbounded = np.any(mask & ~(values < np.inf), axis=0)
    if unbounded.any():
        order[unbounded] = np.lexsort((values.T[unbounded], ~mask.T[unbounded]))
    ordered = np.take_along_axis(values.T, order, axis=1)                  # [X, M]
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n_models), order.shape), axis=1)
    rank = rank.T                                                          # [M, X]: each model's place at x
    own = mask                                                             # [M, X]: the target is in the side
    count = k[None, :] - own                                               # references of (t, x)

    def at(i):  # element i of each point's sorted list, for per-point indices i [X]
        return ordered[np.arange(n_points), np.clip(i, 0, n_models - 1)]

    # A target outside the side has the side's median. One inside it takes its own place out of the list:
    # the element i of what remains is element i + 1 at or after that place, element i before it. So every
    # (t, x) takes one of a few values per point, chosen by its place: the same elements, the same sums.
    median_all = np.where(k > 0, (at((k - 1) // 2) + at(k // 2)) / 2, np.nan)
    lo, hi = np.maximum((k - 2) // 2, 0), np.maximum((k - 1) // 2, 0)     # of the k - 1 left by one inside
    without = (np.where(lo >= rank, at(lo + 1), at(lo)) + np.where(hi >= rank, at(hi + 1), at(hi))) / 2
    median = np.where(own, np.where(k - 1 > 0, without, np.nan), median_all[None, :])
    safe = np.where(mask, values, 0.0)
    centre = safe.sum(axis=0) / np.maximum(k, 1)                           # the side's mean per point
    dev = np.where(mask, values - centre, 0.0)
    # Sums of the side less the target's own deviation, Σdev − dev·own and Σdev² − dev²·own, then the
    # within-point squares Σdev² − total² / count (nothing to take away without references). In place, in
    # three [M, X] buffers, each named anew for what it holds: the same operations on the same operands as
    # whole-array expressions (each sum over the models is taken before its buffer is overwritten).
    dev_squared = np.multiply(dev, dev)
    total = np.subtract(dev.sum(axis=0)[None, :], np.multiply(dev, own, out=dev), out=dev)
    own_squared = np.multiply(dev_squared, own)
    squares = np.subtract(dev_squared.sum(axis=0)[None, :], own_squared, out=dev_squared)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_part = np.divide(np.multiply(total, total, out=total), np.maximum(count, 1), out=total)
        mean_part[count <= 0] = 0.0
        within = np.maximum(np.subtract(squares, mean_part, out=squares), 0.0, out=squares)
        sd = np.sqrt(np.divide(within, count - 1, out=own_squared), out=own_squared)
        sd[count < 2] = np.nan
        dof = np.maximum(count - 1, 0).sum(axis=1)
        pooled = np.where(dof > 0, np.sqrt(within.sum(axis=1) / np.maximum(dof, 1)), np.nan)
    return {"median": median, "sd": sd, "pooled": pooled, "count": count}


def lira_scores(phi: np.ndarray, inside: np.ndarray, references: int = 0) -> dict[str, np.ndarray]:
    """Scores ``[M, X]`` of every variant: row t is model t attacked on every point, NaN where undefined.

    ``phi``: ``[M, X]`` φ of every model on every point, or ``[A, M, X]`` under A query augmentations;
    ``inside[m, x]``: model m trained on x. ``references``: at most that many references per side (0:
    every eligible model). Each augmentation's reference statistics are taken as for a single query
    (per example, or its own global σ per side); online the sum over augmentations of the log
    likelihood ratios, offline −ln(1 − Φ(Σ_a z_a / √A)), z_a = (φ_t,a − μ_out,a)/σ_out,a — with one
    query −ln(1 − Λ), Λ = Pr[Z ≤ φ_t], Z ~ N(μ_out, σ_out²), and :func:`online_score`. With every eligible model as reference
    all targets are scored at once (:func:`leave_one_out_statistics`); with a limit, one loop over
    targets, each over all models and points at once.
    """
    from scipy.special import log_ndtr

    phi = np.asarray(phi, dtype=float)
    phi = phi[None] if phi.ndim == 2 else phi
    inside = np.asarray(inside, dtype=bool)
    n_aug, n_models = phi.shape[:2]
    z = {"offline": np.zeros(phi.shape[1:]), "offline_fixed": np.zeros(phi.shape[1:])}
    llr = {"online": np.zeros(phi.shape[1:]), "online_fixed": np.zeros(phi.shape[1:])}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for values in phi:
            sd_in, sd_out = global_sd(values, inside), global_sd(values, ~inside)   # the fixed variance: one σ per side
            if not references:
                o, i = leave_one_out_statistics(values, ~inside), leave_one_out_statistics(values, inside)
                z["offline"] += standardized(values, o["median"], o["sd"])
                z["offline_fixed"] += standardized(values, o["median"], sd_out)
                llr["online"] += online_score(values, i["median"], i["sd"], o["median"], o["sd"])
                llr["online_fixed"] += online_score(values, i["median"], sd_in, o["median"], sd_out)
                continue
            for t in range(n_models):
                others = np.ones(n_models, dtype=bool)
                others[t] = False
                o = reference_statistics(values, limit_references(~inside & others[:, None], references))
                i = reference_statistics(values, limit_references(inside & others[:, None], references))
                z["offline"][t] += standardized(values[t], o["median"], o["sd"])
                z["offline_fixed"][t] += standardized(values[t], o["median"], sd_out)
                llr["online"][t] += online_score(values[t], i["median"], i["sd"], o["median"], o["sd"])
                llr["online_fixed"][t] += online_score(values[t], i["median"], sd_in, o["median"], sd_out)
        out = {v: -log_ndtr(-(z[v] / np.sqrt(n_aug))) for v in z}
        out.update(llr)
    out = {v: out[v] for v in LIRA_VARIANTS}
    for v in LIRA_VARIANTS:
        out[v][~np.isfinite(out[v])] = np.nan
    return out


def standardized(phi_t: np.ndarray, mu_out: np.ndarray, sd_out) -> np.ndarray:
    """z = (φ_t − μ_out) / σ_out: N(0, 1) when the target did not train on the point."""
    return (phi_t - mu_out) / _floor(sd_out)
