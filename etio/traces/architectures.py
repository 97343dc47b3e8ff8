"""The architectures' names and the paper's widths, as plain data: reading a config or a store's
settings needs them, and must not wait for torch (:mod:`etio.traces.models` builds the models)."""

from __future__ import annotations

#: Every architecture :func:`etio.traces.models.build_model` builds, in the order it lists them.
ARCH_NAMES = ("mlp_1hidden", "alexnetwol", "resnet34", "densenet161", "wide_resnet")

#: Widths of the paper per architecture (spec §2).
PAPER_WIDTHS = {
    "mlp_1hidden": [16, 32, 64, 128, 256],
    "alexnetwol": [16, 32, 64, 128, 256],
    "resnet34": [2, 4, 8, 16, 32],
    "densenet161": [2, 4, 8, 16, 32],
}
