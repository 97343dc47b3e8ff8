"""The architectures of the traces and what "width" means for each (paper §5.1), one folder each.

All models return pre-softmax logits. For MSE training the authors' models end with a
softmax; here the softmax is applied by the loss (:mod:`etio.traces.training`) and by the estimators,
which is the same function of the parameters, and keeps the pre-softmax vector available
to the attacks (MemGuard perturbs it).

The folder ``<name>/`` of this package is the architecture ``name``: ``network.py`` its
``nn.Module`` and its forward pass of many models at once, ``__init__.py`` its registration
(:mod:`etio.traces.models._registry`). Everything else asks the registry: :func:`get_model`,
:func:`list_models`, :func:`build_model`, :func:`count_params`. ``_paper.py`` holds the paper's
grid of these architectures as data. Importing this package does not import torch.
"""

from etio.traces.models._ensemble import Ensemble
from etio.traces.models._paper import (AUTHORS_ARCHS_BY_DATASET, AUTHORS_NUM_PARAMS, AUTHORS_WIDTHS,
                                       PAPER_ARCHITECTURES, PAPER_LR_OVERRIDES, PAPER_WIDTHS, paper_architecture,
                                       paper_lr)
from etio.traces.models._registry import (ModelFamily, build_model, check_model, count_params, get_model,
                                          list_models, num_params, register_model)

__all__ = ["AUTHORS_ARCHS_BY_DATASET", "AUTHORS_NUM_PARAMS", "AUTHORS_WIDTHS", "Ensemble", "ModelFamily",
           "PAPER_ARCHITECTURES", "PAPER_LR_OVERRIDES", "PAPER_WIDTHS", "build_model", "check_model",
           "count_params", "get_model", "list_models", "num_params", "paper_architecture", "paper_lr",
           "register_model"]
