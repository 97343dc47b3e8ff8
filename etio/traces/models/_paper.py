"""The paper's architectures and the authors' grid of them, as plain data (no torch: reading a
config or a store's settings needs them). An architecture the paper did not train has no entry here.
"""

from __future__ import annotations

#: Widths of the paper per architecture (spec §2), in the order ``etio bench train`` runs them.
PAPER_WIDTHS = {
    "mlp_1hidden": [16, 32, 64, 128, 256],
    "alexnetwol": [16, 32, 64, 128, 256],
    "resnet34": [2, 4, 8, 16, 32],
    "densenet161": [2, 4, 8, 16, 32],
}

#: The paper's architectures as the report lists them.
PAPER_ARCHITECTURES = ("alexnetwol", "densenet161", "resnet34", "mlp_1hidden")

#: The authors' learning rates other than ``training.lr``: ``(architecture, loss, lr)``.
PAPER_LR_OVERRIDES = (("alexnetwol", "ce", 0.01),)

#: The architectures of each dataset in the authors' trace, in its row order.
AUTHORS_ARCHS_BY_DATASET = {
    "cifar10": ["resnet34", "densenet161", "alexnetwol"],
    "cifar100": ["resnet34", "densenet161", "alexnetwol"],
    "mnist": ["mlp_1hidden"],
}

#: The widths of each architecture in the authors' trace, in its row order.
AUTHORS_WIDTHS = {"resnet34": [32, 16, 8, 4, 2], "densenet161": [32, 16, 8, 4, 2],
                  "alexnetwol": [256, 128, 64, 32, 16], "mlp_1hidden": [256, 128, 64, 32, 16]}

#: NumParams of the authors' trace per (architecture, width) for 10 / 100 classes.
AUTHORS_NUM_PARAMS = {
    ("resnet34", 2): (21516, 23046), ("resnet34", 4): (84542, 87512), ("resnet34", 8): (335154, 341004),
    ("resnet34", 16): (1334618, 1346228), ("resnet34", 32): (5326506, 5349636),
    ("densenet161", 2): (102823, 112183), ("densenet161", 4): (269716, 287356),
    ("densenet161", 8): (870610, 904720), ("densenet161", 16): (3142282, 3209332),
    ("densenet161", 32): (11965162, 12098092),
    ("alexnetwol", 16): (159578, 165428), ("alexnetwol", 32): (624810, 636420),
    ("alexnetwol", 64): (2472266, 2495396), ("alexnetwol", 128): (9835146, 9881316),
    ("alexnetwol", 256): (39232778, 39325028),
    ("mlp_1hidden", 16): (12704, None), ("mlp_1hidden", 32): (25408, None), ("mlp_1hidden", 64): (50816, None),
    ("mlp_1hidden", 128): (101632, None), ("mlp_1hidden", 256): (203264, None),
}


def paper_architecture(dataset: str) -> str:
    """The architecture the authors trained on ``dataset`` (the first of its row order)."""
    return AUTHORS_ARCHS_BY_DATASET[dataset][0]


def paper_lr(arch: str, loss: str, default: float) -> float:
    """The authors' learning rate of ``arch`` under ``loss`` (``default`` where they used training.lr)."""
    return {(a, l_): lr for a, l_, lr in PAPER_LR_OVERRIDES}.get((arch, loss), default)
