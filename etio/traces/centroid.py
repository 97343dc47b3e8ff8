"""Centroid distance between a model's outputs on members and on non-members (spec §5).

For each model m: C_tr = mean of g(out_m(x)) over its training subset, C_te = mean over the
test set, distance ‖C_tr − C_te‖₂, where out = logits for CE models and softmax
probabilities for MSE models (the authors' "last layer"), and g is

- ``origin``: the output vector itself (C coordinates);
- ``sorted_k``: the k largest entries, in ascending order (3rd largest, 2nd, largest for k = 3).

The configuration's value is the mean distance over all N·n models. (The authors' code
returns the fraction of finite distances instead — a bug marked FIXME there.)
"""

from __future__ import annotations

import torch

#: trace column -> number of sorted entries kept (None: unsorted)
VARIANTS = {"CentroidDistance(sorted_3)": 3, "CentroidDistance(sorted_10)": 10, "CentroidDistance(origin)": None}


def last_layer(logits: torch.Tensor, loss: str) -> torch.Tensor:
    return logits.softmax(-1) if loss == "mse" else logits


def _project(out: torch.Tensor, keep: int | None) -> torch.Tensor:
    if keep is None:
        return out
    return out.sort(-1).values[..., -min(keep, out.shape[-1]):]


def centroid_distances(train_logits, test_logits, loss: str) -> dict[str, float]:
    """The three centroid columns for logits ``[K, s, C]`` (own subsets) and ``[K, T, C]`` (test)."""
    tr = last_layer(torch.as_tensor(train_logits).double(), loss)
    te = last_layer(torch.as_tensor(test_logits).double(), loss)
    out = {}
    for column, keep in VARIANTS.items():
        per_model = (_project(tr, keep).mean(1) - _project(te, keep).mean(1)).norm(dim=-1)   # [K]
        out[column] = float(per_model.mean())
    return out
