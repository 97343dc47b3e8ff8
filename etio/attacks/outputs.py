"""What the attacks see of a configuration: the outputs of its trained models.

An attacker only queries models, so every attack works on :class:`ModelOutputs`: the
pre-softmax outputs of a model on its own training subset (members), on another model's
subset, or on the test set (non-members). Outputs are computed once and cached, since
ML-Leaks, Oak17, the threshold attack and MemGuard all query the same models, and each attack
asks for all the outputs it needs at once: one batched query of many models costs little more
than a query of one (a DenseNet161 query is some 600 small operations, whatever the models).
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
        """Model ``model_ids[i]`` on ``x[i]``; differentiable (the robust strategies take its gradients)."""
        ...


class ModelOutputs:
    """Cached pre-softmax outputs of a configuration's models, on the attack device."""

    def __init__(self, splits: Splits, ensemble: Ensemble, device: str | torch.device = "cpu") -> None:
        self.splits, self.ensemble, self.device = splits, ensemble, torch.device(device)
        self.subsets = torch.as_tensor(splits.subsets, dtype=torch.long)
        self.pool_y = torch.as_tensor(splits.pool_y).long()
        self.test_y = torch.as_tensor(splits.test_y).long().to(self.device)
        self._subset: dict[tuple[int, int], torch.Tensor] = {}     # (model, subset of) -> [s, C]
        self._test: dict[int, torch.Tensor] = {}
        self._pool_rows: torch.Tensor | None = None                  # the rows of _pool's outputs
        self._pool: dict[int, torch.Tensor] = {}                     # model -> [len(_pool_rows), C]
        self._pool_position = torch.empty(0, dtype=torch.long)

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
        return self.on_subsets([(model_id, model_id if subset_of is None else subset_of)])[0]

    def on_subsets(self, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Logits ``[len(pairs), s, C]``: for each ``(model, subset_of)``, that model on the training
        subset of ``subset_of`` (one batched query for the missing ones)."""
        missing = [p for p in dict.fromkeys(pairs) if p not in self._subset]
        for p in [p for p in missing if p[0] in self._pool]:       # already queried on the pool (on_pool):
            at = self._pool_position[self.rows(p[1])]                  # the same bits, taken from there
            if bool((at >= 0).all()):
                self._subset[p] = self._pool[p[0]][at]
                missing.remove(p)
        if missing:
            rows = torch.stack([self.rows(of) for _, of in missing])
            for p, out in zip(missing, self._query_each([m for m, _ in missing], rows)):
                self._subset[p] = out
        return torch.stack([self._subset[p] for p in pairs])

    def on_test(self, model_ids: Sequence[int]) -> torch.Tensor:
        """Logits ``[len(model_ids), n_test, C]`` on the test set (one batched query for the missing ones)."""
        missing = [m for m in dict.fromkeys(model_ids) if m not in self._test]
        if missing:
            out = self._query(missing, self.splits.test_x)
            for m, o in zip(missing, out):
                self._test[m] = o
        return torch.stack([self._test[m] for m in model_ids])

    def on_pool(self, model_ids: Sequence[int], rows, input_bytes: int = 2 ** 28) -> torch.Tensor:
        """Logits ``[len(model_ids), len(rows), C]`` of every model on the same pool rows ``rows``.

        The models share their inputs, so the missing ones are queried together (each row gathered once,
        not once per model as :meth:`on_subsets` gathers a subset for each of its models), on as many rows
        at a time as keep models x rows of inputs within ``input_bytes`` (what a query of that many models
        holds besides: a convolutional network's activations grow with both); the outputs are kept for later
        calls with the same rows.
        """
        rows = torch.as_tensor(rows, dtype=torch.long)
        if self._pool_rows is None or not torch.equal(self._pool_rows, rows):
            self._pool_rows, self._pool = rows, {}
            self._pool_position = torch.full((len(self.pool_y),), -1, dtype=torch.long)   # pool row -> its index
            self._pool_position[rows] = torch.arange(len(rows))
        missing = [m for m in dict.fromkeys(model_ids) if m not in self._pool]
        if missing:
            row_bytes = self.splits.pool_x[0].numel() * self.splits.pool_x.element_size()
            block = max(1, input_bytes // (row_bytes * len(missing)))
            out = torch.cat([self._query(missing, self.splits.pool_x[rows[start:start + block]])
                             for start in range(0, len(rows), block)], dim=1)
            for m, o in zip(missing, out):
                self._pool[m] = o
        return torch.stack([self._pool[m] for m in model_ids])

    def augmented_blocks(self, model_ids: Sequence[int], pool_rows, augmentations: Sequence, info,
                         rows_per_pass: int = 2048) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first, logits [len(augmentations), len(model_ids), n, C])`` for consecutive blocks of the points
        (the pool rows ``pool_rows``, then every test point; ``first``: the block's first point), each
        point under every augmentation (:class:`etio.attacks.settings.QueryAugmentation`, applied with the
        training augmentation's crop of the zero-padded image and its mirror,
        :func:`etio.traces.datasets.augment_batch`; ``info``: the dataset, for its normalisation).

        One forward pass per block queries every model on every augmentation of the block's points (at
        most ``rows_per_pass`` augmented images); nothing is cached, and a caller that reduces each block
        holds no more than one block's logits.
        """
        from etio.traces.datasets import augment_batch

        ids, n_aug = list(model_ids), len(augmentations)
        crops = torch.tensor([[4 - a.down, 4 - a.right] for a in augmentations], dtype=torch.long)
        flips = torch.tensor([bool(a.mirror) for a in augmentations])
        pool_rows = torch.as_tensor(pool_rows, dtype=torch.long)
        n_pool, block = len(pool_rows), max(1, rows_per_pass // max(n_aug, 1))
        for start in range(0, n_pool + self.n_test, block):
            index = torch.arange(start, min(start + block, n_pool + self.n_test))
            pool_part, test_part = index[index < n_pool], index[index >= n_pool] - n_pool
            x = torch.cat([self.splits.pool_x[pool_rows[pool_part]], self.splits.test_x[test_part]])
            n = len(x)
            images = augment_batch(x.unsqueeze(0).expand(n_aug, *x.shape), crops[:, None].expand(n_aug, n, 2),
                                   flips[:, None].expand(n_aug, n), info)
            out = self._query(ids, images.reshape(n_aug * n, *x.shape[1:]))        # [M, A*n, C]
            yield start, out.reshape(len(ids), n_aug, n, -1).transpose(0, 1)

    def forward_each(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits ``[M, n, C]`` of model ``model_ids[i]`` on its own inputs ``x[i]``
        (the adversarial strategies need gradients with respect to the inputs)."""
        return self.ensemble.logits_each(list(model_ids), x).float().to(self.device)

    def _query(self, model_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ensemble.logits(list(model_ids), x).detach().float().to(self.device)

    def _query_each(self, model_ids: Sequence[int], rows: torch.Tensor, chunk: int = 2048,
                    input_bytes: int = 2 ** 28) -> torch.Tensor:
        """Model ``model_ids[i]`` on pool rows ``rows[i]``, ``chunk`` rows at a time, and as many models
        at a time as keep their gathered inputs within ``input_bytes`` (every model of a configuration
        on the subsets covering a 60 000-image pool would otherwise gather tens of GB of images)."""
        ids = list(model_ids)
        row_bytes = self.splits.pool_x[0].numel() * self.splits.pool_x.element_size()
        group = max(1, input_bytes // (row_bytes * min(chunk, rows.shape[1])))
        parts = []
        with torch.no_grad():
            for first in range(0, len(ids), group):
                outs = []
                for start in range(0, rows.shape[1], chunk):
                    x = self.splits.pool_x[rows[first:first + group, start:start + chunk]]
                    outs.append(self.ensemble.logits_each(ids[first:first + group], x).detach().float()
                                .to(self.device))
                parts.append(torch.cat(outs, dim=1))
        return torch.cat(parts, dim=0)


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
