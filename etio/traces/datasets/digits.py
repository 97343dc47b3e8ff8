"""``digits``: scikit-learn's 8×8 handwritten digits (1797 images, shipped with scikit-learn), the embedded default.

A fixed, seeded draw of 600 images is the training pool and the remaining 1197 images are the
test set (a small pool keeps the N·n models of a configuration cheap; a large test set keeps the
test-side estimates precise). Nothing is read from a data directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from etio.traces.datasets._common import normalize
from etio.traces.datasets._registry import DatasetInfo, LoadedData, register_dataset

#: Seed of the fixed digits train/test hold-out (not a split seed: the test set never changes).
DIGITS_HOLDOUT_SEED = 20220607

# Mean/std of the digits pool after scaling pixels to [0, 1] (computed once, fixed here so the
# transform does not depend on the split).
DIGITS = DatasetInfo("digits", 10, (64,), 600, 1197, (0.3047,), (0.3763,), False)


def load_digits(info: DatasetInfo, data_dir: Path | None = None) -> LoadedData:
    import torch
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = np.random.RandomState(DIGITS_HOLDOUT_SEED).permutation(len(y))
    pool, test = order[: info.pool_size], order[info.pool_size:]
    x = normalize(x, info)
    return LoadedData(info, x[pool].contiguous(), y[pool].contiguous(), x[test].contiguous(), y[test].contiguous(),
                      source="sklearn.datasets.load_digits")


register_dataset(DIGITS, load=load_digits)
