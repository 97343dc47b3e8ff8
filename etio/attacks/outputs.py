"""What the attacks see of a configuration: the outputs of its trained models.

An attacker only queries models, so every attack works on :class:`ModelOutputs`: the
pre-softmax outputs of a model on its own training subset (members), on another model's
subset, or on the test set (non-members). Outputs are computed once and cached, since
ML-Leaks, Oak17, the threshold attack and MemGuard all query the same models.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Iterator, Protocol, Sequence

import torch


class Splits(Protocol):
    """The data split of a configuration (``etio.traces.store.DataSplits``)."""

    pool_x: torch.Tensor
    pool_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    subsets: "object"  # np.int64 [n_models, s]; model id k trains on pool rows subsets[k-1]


class Ensemble(Protocol):
    """The trained models of a configuration (``etio.traces.store`` ensemble)."""

    def logits(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor: ...

    def logits_each(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Differentiable: model ``model_ids[i]`` on ``x[i]`` (only the robust strategies need it)."""
        ...


class ModelOutputs:
    """Cached pre-softmax outputs of a configuration's models, on the attack device."""

    def __init__(self, splits: Splits, ensemble: Ensemble, device: str | torch.device = "cpu") -> None:
        self.splits, self.ensemble, self.device = splits, ensemble, torch.device(device)
        self.subsets = torch.as_tensor(splits.subsets, dtype=torch.long)
        self.pool_y = torch.as_tensor(splits.pool_y).long()
        self.test_y = torch.as_tensor(splits.test_y).long().to(self.device)
        self._own: dict[int, torch.Tensor] = {}
        self._test: dict[int, torch.Tensor] = {}

    @property
    def subset_size(self) -> int:
        return int(self.subsets.shape[1])

    @property
    def n_test(self) -> int:
        return int(self.test_y.shape[0])

    def rows(self, model_id: int) -> torch.Tensor:
        """Pool rows of model ``model_id``'s training subset (1-based id)."""
        return self.subsets[model_id - 1]

    def labels_of(self, model_id: int) -> torch.Tensor:
        return self.pool_y[self.rows(model_id)].to(self.device)

    def on_subset(self, model_id: int, subset_of: int | None = None) -> torch.Tensor:
        """Logits ``[s, C]`` of ``model_id`` on the training subset of ``subset_of`` (default: its own)."""
        subset_of = model_id if subset_of is None else subset_of
        if subset_of == model_id and model_id in self._own:
            return self._own[model_id]
        x = self.splits.pool_x[self.rows(subset_of)]
        out = self._query([model_id], x)[0]
        if subset_of == model_id:
            self._own[model_id] = out
        return out

    def on_test(self, model_ids: Sequence[int]) -> torch.Tensor:
        """Logits ``[len(model_ids), n_test, C]`` on the test set (one batched query for the missing ones)."""
        missing = [m for m in dict.fromkeys(model_ids) if m not in self._test]
        if missing:
            out = self._query(missing, self.splits.test_x)
            for m, o in zip(missing, out):
                self._test[m] = o
        return torch.stack([self._test[m] for m in model_ids])

    def forward_each(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits ``[M, n, C]`` of model ``model_ids[i]`` on its own inputs ``x[i]``
        (the adversarial strategies need gradients with respect to the inputs)."""
        return self.ensemble.logits_each(list(model_ids), x).float().to(self.device)

    def _query(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ensemble.logits(list(model_ids), x).detach().float().to(self.device)


def derived_seed(base: int, *parts: object) -> int:
    """A seed for one (configuration, attack, ...) that does not depend on processing order.

    Resuming a run, or running one attack alone, must give the same numbers as a full run.
    """
    text = "/".join([str(base), *map(str, parts)])
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def generator_for(base: int, *parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(base, *parts))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore the previous setting.

    Attack models and MemGuard work on many tiny tensors: one thread is the fastest, and
    several threads on a busy machine are many times slower (measured: 13x on 2 shared cores).
    """
    previous = torch.get_num_threads()
    if n and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
