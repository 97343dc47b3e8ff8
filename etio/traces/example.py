"""Example trace table drawn from a known linear-Gaussian structural model.

``etio/data/example_traces.csv`` is a trace table in the authors' 53-column schema whose
generalization and attack columns come from the structural model below, so the causal graph
behind it is known (:data:`TRUE_ARCS`). It lets the learning stage be checked end to end:
the learned graph should recover these arcs. The model, its coefficients and the row layout
are documented in ``etio/data/example_traces.md``. Regenerate the file with::

    python -m etio.traces.example etio/data/example_traces.csv --seed 0

Rows follow the authors' configuration grid (weight decay x epochs x dataset x training-set
size x loss x scheduler x architecture x width: 880 rows, 280 CE and 160 MSE per weight
decay). NumParams are the true parameter counts of those architectures. Each variable of the
model is drawn on a standardised scale from its parents plus independent Gaussian noise, then
mapped affinely to a plausible range (an affine map of a column changes neither the Gaussian
network's score nor the learned structure). Unlike real traces, the identities
``AccDiff = TrainAcc - TestAcc`` etc. hold only up to that noise: an exact identity would make
a Gaussian network degenerate.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from etio.core.schema import ATTACKS, TRACE_COLUMNS, features_for
from etio.core.paths import DATA_DIR
from etio.traces.models import AUTHORS_ARCHS_BY_DATASET, AUTHORS_NUM_PARAMS, AUTHORS_WIDTHS, paper_lr

EXAMPLE_TRACES_PATH = DATA_DIR / "example_traces.csv"

# --------------------------------------------------------------------------------------
# The structural model (standardised scale)
# --------------------------------------------------------------------------------------

#: child -> ([(parent, coefficient), ...], noise standard deviation), in topological order.
#: Roots: NumParams (standardised parameter count) and TrainSize (-1 for 1k, +1 for 5k).
STRUCTURAL_MODEL: dict[str, tuple[list[tuple[str, float]], float]] = {
    "TrainAcc": ([("NumParams", 0.6), ("TrainSize", -0.5)], 0.6),
    "TrainLoss": ([("NumParams", -0.6), ("TrainSize", 0.5)], 0.6),
    "TrainVar": ([("NumParams", 0.7)], 0.7),
    "TestVar": ([("NumParams", 0.5), ("TrainSize", -0.6)], 0.6),
    "TrainBias2": ([("TrainLoss", 0.8), ("TrainVar", -0.5)], 0.4),
    "TestLoss": ([("TrainLoss", 0.5), ("TrainVar", 0.6)], 0.5),
    "TestBias2": ([("TestLoss", 0.8), ("TestVar", -0.5)], 0.4),
    "TestAcc": ([("TrainAcc", 0.5), ("TestLoss", -0.6)], 0.5),
    "AccDiff": ([("TrainAcc", 0.8), ("TestAcc", -0.8)], 0.3),
    "LossDiff": ([("TestLoss", 0.8), ("TrainLoss", -0.7)], 0.3),
    "CentroidDistance(origin)": ([("AccDiff", 0.7), ("NumParams", 0.4)], 0.5),
    "CentroidDistance(sorted_3)": ([("AccDiff", 0.6), ("TrainVar", 0.5)], 0.5),
    "CentroidDistance(sorted_10)": ([("CentroidDistance(sorted_3)", 0.9)], 0.3),
    "MLLeakAcc": ([("AccDiff", 0.7), ("CentroidDistance(origin)", 0.4), ("TestVar", 0.4)], 0.35),
    "MLLeakLAcc": ([("AccDiff", 0.8), ("TestVar", 0.5)], 0.35),
    "Top3MLLeakAcc": ([("AccDiff", 0.6), ("CentroidDistance(sorted_3)", 0.5)], 0.35),
    "Top3MLLeakLAcc": ([("AccDiff", 0.7), ("TrainVar", 0.4), ("CentroidDistance(sorted_3)", 0.4)], 0.35),
    "Oak17Acc": ([("AccDiff", 0.6), ("TrainVar", 0.45), ("NumParams", 0.4)], 0.35),
    "ThresholdAcc": ([("LossDiff", 0.8), ("TrainSize", -0.4)], 0.35),
    "MemguardAcc": ([("AccDiff", 0.5), ("CentroidDistance(sorted_3)", 0.5)], 0.35),
}

#: Every arc of the model (Python column names).
TRUE_ARCS: list[tuple[str, str]] = [(p, child) for child, (parents, _) in STRUCTURAL_MODEL.items() for p, _ in parents]


def true_arcs_for(attack: str) -> list[tuple[str, str]]:
    """The model's arcs among the nodes of ``attack``'s graph (its 13 features and the attack)."""
    nodes = set(features_for(attack)) | {attack}
    return [(u, v) for u, v in TRUE_ARCS if u in nodes and v in nodes]


#: (centre, scale) of the affine map ``centre + scale * z / sd(z)`` from the structural scale
#: to trace units (sd over the whole table), CE at
#: weight decay 5e-4. MSE losses are reported on a smaller scale; a high weight decay narrows
#: the generalization gap and weakens the attacks (see :func:`_units`).
_UNITS = {
    "TrainAcc": (0.90, 0.025), "TestAcc": (0.62, 0.07), "AccDiff": (0.28, 0.06),
    "TrainLoss": (0.35, 0.07), "TestLoss": (1.6, 0.3), "LossDiff": (1.25, 0.25),
    "TrainVar": (0.20, 0.04), "TestVar": (0.45, 0.09), "TrainBias2": (0.15, 0.03), "TestBias2": (1.1, 0.2),
    "CentroidDistance(origin)": (2.0, 0.4), "CentroidDistance(sorted_3)": (0.9, 0.2),
    "CentroidDistance(sorted_10)": (1.3, 0.25),
    "MLLeakAcc": (0.66, 0.05), "MLLeakLAcc": (0.68, 0.05), "Top3MLLeakAcc": (0.65, 0.05),
    "Top3MLLeakLAcc": (0.67, 0.05), "Oak17Acc": (0.64, 0.05), "ThresholdAcc": (0.63, 0.05),
    "MemguardAcc": (0.55, 0.03),
}
_LOSS_COLUMNS = {"TrainLoss", "TestLoss", "LossDiff", "TrainVar", "TestVar", "TrainBias2", "TestBias2"}


def _units(column: str, loss: str, weight_decay: float) -> tuple[float, float]:
    centre, scale = _UNITS[column]
    if loss == "mse" and column in _LOSS_COLUMNS:
        centre, scale = centre * 0.4, scale * 0.4
    if weight_decay > 0.001 and (column == "AccDiff" or column in ATTACKS):
        centre -= 0.04
    return centre, scale


# --------------------------------------------------------------------------------------
# The configuration grid (the authors' trace rows)
# --------------------------------------------------------------------------------------

_DATASETS_BY_LOSS = {"ce": ["cifar10", "cifar100", "mnist"], "mse": ["cifar10", "mnist"]}


def configuration_grid() -> pd.DataFrame:
    """The identity columns and NumParams of every row, in the authors' row order."""
    rows = []
    for wd, epochs, dataset, size, loss, scheduler in itertools.product(
            [0.005, 0.0005], [500, 400], ["cifar10", "cifar100", "mnist"], ["5k", "1k"], ["ce", "mse"],
            ["with_scheduler", "without_scheduler"]):
        if dataset not in _DATASETS_BY_LOSS[loss]:
            continue
        for arch in AUTHORS_ARCHS_BY_DATASET[dataset]:
            for width in AUTHORS_WIDTHS[arch]:
                ten, hundred = AUTHORS_NUM_PARAMS[(arch, width)]
                rows.append({
                    "WeightDecay": wd, "EpochNum": epochs, "Dataset": dataset, "Arch": arch, "Width": width,
                    "TrainSize": size, "Loss": loss, "Scheduler?": scheduler,
                    "lr": paper_lr(arch, loss, 0.1),
                    "NumParams": hundred if dataset == "cifar100" else ten,
                })
    return pd.DataFrame(rows)


def generate(seed: int = 0) -> pd.DataFrame:
    """Draw the example trace table (53 columns, the authors' order)."""
    rng = np.random.default_rng(seed)
    table = configuration_grid()
    n = len(table)
    num_params = table["NumParams"].to_numpy(float)
    z = {
        "NumParams": (num_params - num_params.mean()) / num_params.std(),
        "TrainSize": np.where(table["TrainSize"] == "5k", 1.0, -1.0),
    }
    for child, (parents, noise) in STRUCTURAL_MODEL.items():
        z[child] = sum(coef * z[parent] for parent, coef in parents) + noise * rng.standard_normal(n)

    loss = table["Loss"].to_numpy()
    wd = table["WeightDecay"].to_numpy(float)
    for column in _UNITS:
        centre_scale = np.array([_units(column, l, w) for l, w in zip(loss, wd)])
        table[column] = centre_scale[:, 0] + centre_scale[:, 1] * z[column] / z[column].std()

    def spread(acc: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
        # Member / non-member accuracies whose mean is the balanced accuracy.
        d = np.minimum(gap + 0.02 * rng.standard_normal(n), 1.0 - acc)
        return acc + d, acc - d

    for prefix in ("MLLeak", "MLLeakL", "Top3MLLeak", "Top3MLLeakL"):
        table[f"{prefix}MemAcc"], table[f"{prefix}NonmemAcc"] = spread(table[f"{prefix}Acc"].to_numpy(), 0.12)
    table["Oak17MemAcc"], table["Oak17NonmemAcc"] = spread(table["Oak17Acc"].to_numpy(), 0.08)
    table["ThresholdMemAcc"], table["ThresholdNonMemAcc"] = spread(table["ThresholdAcc"].to_numpy(), 0.15)
    table["Threshold"] = table["TrainLoss"]  # the attack's threshold is the average training loss

    # MemGuard ran only at weight decay 5e-4 and not on MNIST (no output recorder for the MLP).
    defended = (wd < 0.001) & (table["Dataset"].to_numpy() != "mnist")
    memguard = {
        "MemguardTrainAcc": table["TrainAcc"] - 0.01 * np.abs(rng.standard_normal(n)),
        "MemguardTestAcc": table["TestAcc"] - 0.01 * np.abs(rng.standard_normal(n)),
        "MemguardTrainLoss": table["TrainLoss"] * (1.05 + 0.02 * rng.standard_normal(n)),
        "MemguardTestLoss": table["TestLoss"] * (1.05 + 0.02 * rng.standard_normal(n)),
        "MemguardTestVar": table["TestVar"] * (1.1 + 0.03 * rng.standard_normal(n)),
    }
    memguard["MemguardTestBias2"] = memguard["MemguardTestLoss"] - memguard["MemguardTestVar"]
    memguard["MemguardAccDiff"] = memguard["MemguardTrainAcc"] - memguard["MemguardTestAcc"]
    memguard["MemguardLossDiff"] = memguard["MemguardTestLoss"] - memguard["MemguardTrainLoss"]
    member, nonmember = spread(table["MemguardAcc"].to_numpy(), 0.05)
    memguard.update({"MemguardMemberAcc": member, "MemguardNonmemberAcc": nonmember,
                     "MemguardAcc": table["MemguardAcc"]})
    for column, values in memguard.items():
        table[column] = np.where(defended, values, np.nan)
    return table[TRACE_COLUMNS]


def write(path: Path, seed: int = 0) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    generate(seed).to_csv(path, index=False, float_format="%.8g")


def load() -> pd.DataFrame:
    """The bundled example trace table, as read from ``etio/data/example_traces.csv``."""
    return pd.read_csv(EXAMPLE_TRACES_PATH)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m etio.traces.example", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write(args.out, args.seed)


if __name__ == "__main__":
    main()
