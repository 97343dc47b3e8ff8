"""The trained models of one configuration, evaluated together (the store hands them over)."""

from __future__ import annotations

from typing import Iterable

from etio.traces.models._registry import get_model


class Ensemble:
    """The trained models of one configuration, queried as they were trained: many at once,
    through the architecture's own forward (:meth:`ModelFamily.query_forward`)."""

    def __init__(self, record, state: dict, device):
        import torch

        self.record = record
        self.device = torch.device(device)
        self.state = {k: v.to(self.device) for k, v in state.items()}
        self._forward = get_model(record.arch).query_forward(record.width, record.num_classes,
                                                             tuple(record.input_shape))

    def _select(self, model_ids: Iterable[int]):
        import torch

        idx = torch.as_tensor([int(i) - 1 for i in model_ids], device=self.device)
        return {k: v.index_select(0, idx) for k, v in self.state.items()}

    def logits(self, model_ids, x, chunk: int = 2048):
        """Pre-softmax outputs ``[len(model_ids), len(x), C]`` of those models on ``x``."""
        import torch

        x = x.to(self.device)
        sel = self._select(model_ids)
        with torch.no_grad():
            outs = [self._forward(sel, x[start:start + chunk], False) for start in range(0, len(x), chunk)]
        return torch.cat(outs, dim=1)

    def logits_each(self, model_ids, x):
        """Differentiable outputs ``[M, n, C]``: model ``model_ids[i]`` on its own inputs ``x[i]``."""
        return self._forward(self._select(model_ids), x.to(self.device), True)

    def probs(self, model_ids, x):
        return self.logits(model_ids, x).softmax(-1)
